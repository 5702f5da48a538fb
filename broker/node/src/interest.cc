#include "interest.h"

#include <algorithm>
#include <optional>

#include <msgpack.hpp>

#include "broker/channels/chp_state_sink.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {

// The key within its subtree ("top", "h/3"), whether the record carries it whole or not.
std::string_view RelativeKey(std::string_view subtree, std::string_view key) {
  if (key.size() > subtree.size() && key.substr(0, subtree.size()) == subtree &&
      key[subtree.size()] == '/') {
    return key.substr(subtree.size() + 1);
  }
  return key;
}

// A msgpack map's member, or nullptr.
const msgpack::object* Member(const msgpack::object& m, std::string_view name) {
  if (m.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < m.via.map.size; ++i) {
    const auto& kv = m.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR &&
        std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == name) {
      return &kv.val;
    }
  }
  return nullptr;
}

// `top`: {n: channel, e: epoch, o: offset} (chp_state_sink.h).
bool DecodeTop(std::string_view bytes, StreamPosition& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* e = Member(oh.get(), "e");
    const msgpack::object* o = Member(oh.get(), "o");
    if (e == nullptr || o == nullptr) return false;
    out.epoch = e->as<std::string>();
    out.offset = o->as<uint64_t>();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// `h/<slot>`: {o: offset, t: time_ms, d: data, i: info|nil, g: tags}.
bool DecodePublication(std::string_view bytes, Publication& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& m = oh.get();
    const msgpack::object* o = Member(m, "o");
    const msgpack::object* t = Member(m, "t");
    const msgpack::object* d = Member(m, "d");
    const msgpack::object* i = Member(m, "i");
    const msgpack::object* g = Member(m, "g");
    if (o == nullptr || t == nullptr || d == nullptr) return false;
    Publication p;
    p.offset = o->as<uint64_t>();
    p.time_ms = t->as<int64_t>();
    p.data = d->as<std::string>();
    if (i != nullptr && !i->is_nil()) p.info = i->as<std::string>();
    if (g != nullptr) p.tags = g->as<std::map<std::string, std::string>>();
    if (p.offset == 0) return false;
    out = std::move(p);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

// Turns what one peer's replica applies into the engine's callbacks.
class InterestFollower::Observer final : public chp::ReplicaObserver {
 public:
  explicit Observer(InterestFollower& f) : f_(f) {}

  void OnReset(std::string_view subtree, const chp::Position& /*position*/,
               const chp::EntryMap& entries) override {
    const std::string* channel = ChannelOf(subtree);
    if (channel == nullptr || !f_.callbacks_.on_reset) return;
    StreamPosition top;
    bool has_top = false;
    std::vector<Publication> pubs;
    for (const auto& [key, entry] : entries) {
      const std::string_view k = RelativeKey(subtree, key);
      if (k == "top") {
        has_top = DecodeTop(entry.value, top);
      } else if (k.starts_with("h/")) {
        Publication p;
        if (DecodePublication(entry.value, p)) pubs.push_back(std::move(p));
      }
    }
    if (!has_top) return;  // the channel does not exist on the primary (yet)
    // The contiguous run ending at top (older slots may hold an earlier line's leftovers).
    std::sort(pubs.begin(), pubs.end(),
              [](const Publication& a, const Publication& b) { return a.offset > b.offset; });
    std::vector<Publication> run;
    uint64_t want = top.offset;
    for (Publication& p : pubs) {
      if (want == 0 || p.offset != want) break;
      run.push_back(std::move(p));
      --want;
    }
    std::reverse(run.begin(), run.end());
    f_.callbacks_.on_reset(*channel, top, std::move(run));
  }

  void OnChange(std::string_view subtree, std::string_view /*epoch*/,
                const chp::Record& record) override {
    const std::string* channel = ChannelOf(subtree);
    if (channel == nullptr || record.op != chp::Op::kSet) return;
    const std::string_view k = RelativeKey(subtree, record.key);
    if (k == "top") {
      StreamPosition top;
      if (DecodeTop(record.value, top) && f_.callbacks_.on_top) f_.callbacks_.on_top(*channel, top);
    } else if (k.starts_with("h/")) {
      Publication p;
      if (DecodePublication(record.value, p) && f_.callbacks_.on_publication) {
        f_.callbacks_.on_publication(*channel, std::move(p));
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
