#include "interest.h"

#include <algorithm>
#include <optional>

#include "broker/channels/chp_state_sink.h"
#include "broker/node/log.h"
#include "channel_records.h"

namespace chorus::broker::node {

// Turns what one peer's replica applies into the engine's callbacks.
class InterestFollower::Observer final : public chp::ReplicaObserver {
 public:
  explicit Observer(InterestFollower& f) : f_(f) {}

  void OnReset(std::string_view subtree, const chp::Position& /*position*/,
               const chp::EntryMap& entries) override {
    const std::string* channel = ChannelOf(subtree);
    if (channel == nullptr) return;
    ChannelSnapshot snap = DecodeChannelSnapshot(subtree, entries);
    if (f_.callbacks_.on_presence_reset) {
      f_.callbacks_.on_presence_reset(*channel, std::move(snap.presence));
    }
    if (!snap.has_top || !f_.callbacks_.on_reset) return;  // no history here (yet)
    f_.callbacks_.on_reset(*channel, snap.top, std::move(snap.run));
  }

  void OnChange(std::string_view subtree, std::string_view /*epoch*/,
                const chp::Record& record) override {
    const std::string* channel = ChannelOf(subtree);
    if (channel == nullptr) return;
    const std::string_view k = RelativeKey(subtree, record.key);
    if (k.starts_with("p/")) {
      if (!f_.callbacks_.on_presence) return;
      const std::string client(k.substr(2));
      if (record.op != chp::Op::kSet) return f_.callbacks_.on_presence(*channel, client, nullptr);
      PresenceEntry e;
      if (DecodePresence(client, record.value, e)) f_.callbacks_.on_presence(*channel, client, &e);
      return;
    }
    if (record.op != chp::Op::kSet) return;
    if (k == "top") {
      CopyTop top;
      if (DecodeTop(record.value, top) && f_.callbacks_.on_top) f_.callbacks_.on_top(*channel, top);
    } else if (k.starts_with("h/")) {
      Publication p;
      if (DecodePublication(record.value, p) && f_.callbacks_.on_publication) {
        f_.callbacks_.on_publication(*channel, std::move(p));
      }
    } else if (k == "x") {
      Publication p;
      std::string named;
      if (DecodeEphemeral(record.value, named, p) && named == *channel &&
          f_.callbacks_.on_ephemeral) {
        f_.callbacks_.on_ephemeral(*channel, std::move(p));
      }
    }
  }

 private:
  const std::string* ChannelOf(std::string_view subtree) const {
    auto it = f_.channel_of_.find(std::string(subtree));
    return it == f_.channel_of_.end() ? nullptr : &it->second;
  }
  InterestFollower& f_;
};

InterestFollower::InterestFollower(zmq::context_t& ctx, InterestCallbacks callbacks,
                                   std::chrono::milliseconds heartbeat)
    : ctx_(ctx), callbacks_(std::move(callbacks)), heartbeat_(heartbeat) {}

InterestFollower::~InterestFollower() = default;

void InterestFollower::Follow(const std::string& channel, uint64_t member, const std::string& chp) {
  // The channel's primary moved: its copy goes along, so the new primary, when it continues
  // the same line (a promoted backup, CS-29), answers with a resume (CS-30), not a snapshot.
  std::optional<chp::SubtreeReplica> moved_copy;
  auto f = followed_.find(channel);
  if (f != followed_.end()) {
    auto p = peers_.find(f->second);
    if (f->second == member && p != peers_.end() && p->second.endpoint == chp) return;
    const chp::SubtreeReplica* copy = Copy(channel);
    if (copy != nullptr && !copy->position().epoch.empty()) moved_copy = *copy;
    Unfollow(channel);
  }
  auto p = peers_.find(member);
  if (p != peers_.end() && p->second.endpoint != chp) {
    // The member restarted elsewhere: its channels are followed again on the new server.
    std::vector<std::string> moved;
    for (const auto& [ch, m] : followed_) {
      if (m == member) moved.push_back(ch);
    }
    for (const auto& ch : moved) Unfollow(ch);
    p = peers_.end();
  }
  if (p == peers_.end()) {
    chp::AgentOptions o;
    o.endpoints = {chp};
    // Silence: three of the primary's heartbeats, as the CHP replica default scaled down.
    o.silence_timeout =
        std::max<std::chrono::milliseconds>(heartbeat_ * 3, std::chrono::milliseconds(300));
    Peer peer;
    peer.endpoint = chp;
    peer.observer = std::make_unique<Observer>(*this);
    peer.agent = std::make_unique<chp::ReplicaAgent>(ctx_, o, peer.observer.get());
    p = peers_.emplace(member, std::move(peer)).first;
  }
  const std::string subtree = ChannelSubtree(channel);
  auto r =
      moved_copy ? p->second.agent->Follow(subtree, *moved_copy) : p->second.agent->Follow(subtree);
  if (!r) {
    Log().warn("interest: cannot follow {} on member {}: {}", channel, member, r.error().message());
    if (p->second.channels == 0) DropPeer(member);
    return;
  }
  channel_of_[subtree] = channel;
  followed_[channel] = member;
  ++p->second.channels;
}

void InterestFollower::Unfollow(const std::string& channel) {
  auto f = followed_.find(channel);
  if (f == followed_.end()) return;
  const uint64_t member = f->second;
  followed_.erase(f);
  const std::string subtree = ChannelSubtree(channel);
  channel_of_.erase(subtree);
  auto p = peers_.find(member);
  if (p == peers_.end()) return;
  p->second.agent->Unfollow(subtree);
  if (--p->second.channels == 0) DropPeer(member);  // the last one: close the connection
}

void InterestFollower::DropPeer(uint64_t member) {
  auto p = peers_.find(member);
  if (p == peers_.end()) return;
  updates_of_dropped_ += p->second.agent->stats().updates;
  peers_.erase(p);
}

uint64_t InterestFollower::FollowedOn(const std::string& channel) const {
  auto f = followed_.find(channel);
  return f == followed_.end() ? 0 : f->second;
}

size_t InterestFollower::live() const {
  size_t n = 0;
  for (const auto& [ch, member] : followed_) {
    auto p = peers_.find(member);
    if (p == peers_.end()) continue;
    const chp::SubtreeReplica* r = p->second.agent->Find(ChannelSubtree(ch));
    if (r != nullptr && r->live()) ++n;
  }
  return n;
}

bool InterestFollower::Live(const std::string& channel) const {
  const chp::SubtreeReplica* r = Copy(channel);
  return r != nullptr && r->live();
}

const chp::SubtreeReplica* InterestFollower::Copy(const std::string& channel) const {
  auto f = followed_.find(channel);
  if (f == followed_.end()) return nullptr;
  auto p = peers_.find(f->second);
  if (p == peers_.end()) return nullptr;
  return p->second.agent->Find(ChannelSubtree(channel));
}

void InterestFollower::AppendParts(std::vector<chp::Pollable*>& parts) {
  for (auto& [member, peer] : peers_) parts.push_back(peer.agent.get());
}

uint64_t InterestFollower::updates_received() const {
  uint64_t n = updates_of_dropped_;
  for (const auto& [member, peer] : peers_) n += peer.agent->stats().updates;
  return n;
}

}  // namespace chorus::broker::node
