#include "backup.h"

#include <algorithm>

#include "broker/node/log.h"
#include "cluster/partition.h"

namespace chorus::broker::node {

// Turns what one primary's replica applies into the engine's callbacks, for the subtrees of the
// partitions this node backs up there only.
class BackupFollower::Observer final : public chp::ReplicaObserver {
 public:
  Observer(BackupFollower& f, uint64_t member) : f_(f), member_(member) {}

  void OnReset(std::string_view subtree, const chp::Position& /*position*/,
               const chp::EntryMap& entries) override {
    ChannelSnapshot snap = DecodeChannelSnapshot(subtree, entries);
    // The channel's presence (C-21), whether or not it keeps history.
    const std::string channel =
        snap.has_top ? snap.top.channel : cluster::ChannelOfSubtree(subtree).value_or("");
    if (channel.empty() || !Wanted(subtree, channel)) return;
    channels_[std::string(subtree)] = channel;
    if (f_.callbacks_.on_presence_reset) {
      f_.callbacks_.on_presence_reset(channel, std::move(snap.presence));
    }
    if (snap.has_top && f_.callbacks_.on_reset) {
      f_.callbacks_.on_reset(member_, snap.top, std::move(snap.run));
    }
  }

  void OnChange(std::string_view subtree, std::string_view /*epoch*/,
                const chp::Record& record) override {
    const std::string_view k = RelativeKey(subtree, record.key);
    if (k.starts_with("p/")) {
      auto it = channels_.find(std::string(subtree));
      std::string channel = it != channels_.end() ? it->second : "";
      if (channel.empty()) channel = cluster::ChannelOfSubtree(subtree).value_or("");
      if (channel.empty() || !Wanted(subtree, channel) || !f_.callbacks_.on_presence) return;
      const std::string client(k.substr(2));
      if (record.op != chp::Op::kSet) return f_.callbacks_.on_presence(channel, client, nullptr);
      PresenceEntry e;
      if (DecodePresence(client, record.value, e)) f_.callbacks_.on_presence(channel, client, &e);
      return;
    }
    if (record.op != chp::Op::kSet) return;
    if (k == "top") {
      CopyTop top;
      if (!DecodeTop(record.value, top) || !Wanted(subtree, top.channel)) return;
      channels_[std::string(subtree)] = top.channel;
      if (f_.callbacks_.on_top) f_.callbacks_.on_top(member_, top);
    } else if (k.starts_with("h/")) {
      // A channel's `top` always comes before its first publication (the channel's creation
      // writes it), so the channel is known here when it is wanted.
      auto it = channels_.find(std::string(subtree));
      if (it == channels_.end() || !Wanted(subtree, it->second)) return;
      Publication p;
      if (DecodePublication(record.value, p) && f_.callbacks_.on_publication) {
        f_.callbacks_.on_publication(member_, it->second, std::move(p));
      }
    }
  }

  // Partitions gained on this primary: their subtrees are in the agent's copy already (it
  // follows everything) but were filtered out so far; each live one is handed over as a reset.
  void ReplayGained(const chp::ReplicaAgent& agent, const std::set<uint32_t>& gained) {
    for (const auto& [subtree, replica] : agent.replicas()) {
      if (!replica.live()) continue;  // its sync, when done, resets it through OnReset
      auto p = cluster::PartitionOfSubtree(subtree, f_.partition_count_);
      if (!p) {
        ChannelSnapshot snap = DecodeChannelSnapshot(subtree, replica.entries());
        if (!snap.has_top || snap.top.channel.empty()) continue;
        p = cluster::PartitionOf(snap.top.channel, f_.partition_count_);
      }
      if (gained.count(*p) != 0) OnReset(subtree, replica.position(), replica.entries());
    }
  }

 private:
  bool Wanted(std::string_view subtree, const std::string& channel) const {
    auto peer = f_.peers_.find(member_);
    if (peer == f_.peers_.end() || f_.partition_count_ == 0) return false;
    auto p = cluster::PartitionOfSubtree(subtree, f_.partition_count_);
    if (!p) {
      if (channel.empty() || !subtree.starts_with("c#")) return false;
      p = cluster::PartitionOf(channel, f_.partition_count_);  // a hashed subtree name
    }
    return peer->second.target.partitions.count(*p) != 0;
  }
  BackupFollower& f_;
  uint64_t member_;
  std::map<std::string, std::string> channels_;  // subtree -> channel (from `top`)
};

BackupFollower::BackupFollower(zmq::context_t& ctx, BackupCallbacks callbacks,
                               std::chrono::milliseconds heartbeat)
    : ctx_(ctx), callbacks_(std::move(callbacks)), heartbeat_(heartbeat) {}

BackupFollower::~BackupFollower() = default;

void BackupFollower::SetTargets(std::map<uint64_t, Target> targets, uint32_t partition_count) {
  partition_count_ = partition_count;
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto t = targets.find(it->first);
    if (t == targets.end() || t->second.chp != it->second.target.chp) {
      updates_of_dropped_ += it->second.agent->stats().updates;
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [member, target] : targets) {
    auto p = peers_.find(member);
    if (p != peers_.end()) {
      // Partitions gained are in the copy already (everything is followed): their channels,
      // filtered out so far, are handed over from it. The agent is kept: a new one would
      // discard the copies of the partitions this node already backs up there until its
      // snapshot, and a promotion in between would find nothing to continue (a lost line).
      std::set<uint32_t> gained;
      for (uint32_t part : target.partitions) {
        if (p->second.target.partitions.count(part) == 0) gained.insert(part);
      }
      p->second.target = std::move(target);
      if (!gained.empty()) p->second.observer->ReplayGained(*p->second.agent, gained);
      continue;
    }
    StartPeer(member, std::move(target));
  }
}

void BackupFollower::StartPeer(uint64_t member, Target target) {
  chp::AgentOptions o;
  o.mode = chp::AgentOptions::Mode::kPeer;
  o.endpoints = {target.chp};
  o.silence_timeout =
      std::max<std::chrono::milliseconds>(heartbeat_ * 3, std::chrono::milliseconds(300));
  Peer peer;
  peer.target = std::move(target);
  peer.observer = std::make_unique<Observer>(*this, member);
  peer.agent = std::make_unique<chp::ReplicaAgent>(ctx_, o, peer.observer.get());
  peer.agent->FollowAll();
  Log().info("backup: following member {} ({} partitions)", member, peer.target.partitions.size());
  peers_.emplace(member, std::move(peer));
}

void BackupFollower::DropAll() {
  for (auto& [member, peer] : peers_) updates_of_dropped_ += peer.agent->stats().updates;
  for (auto& [member, peer] : retired_) updates_of_dropped_ += peer.agent->stats().updates;
  peers_.clear();
  retired_.clear();
  resync_.clear();
}

void BackupFollower::ApplyResyncs() {
  for (uint64_t member : resync_) {
    auto p = peers_.find(member);
    if (p == peers_.end()) continue;
    Target target = p->second.target;
    // The old copy stays readable (not polled) until the new one is live: a promotion in
    // between continues from it (Copy).
    if (auto r = retired_.find(member); r != retired_.end()) {  // an older re-sync's
      updates_of_dropped_ += r->second.agent->stats().updates;
      retired_.erase(r);
    }
    retired_.emplace(member, std::move(p->second));
    peers_.erase(p);
    ++resyncs_;
    Log().info("backup: the copy of member {} is re-synced by snapshot", member);
    StartPeer(member, std::move(target));
  }
  resync_.clear();
  for (auto it = retired_.begin(); it != retired_.end();) {
    const bool done = peers_.count(it->first) == 0 || Live(it->first);
    if (done) updates_of_dropped_ += it->second.agent->stats().updates;
    it = done ? retired_.erase(it) : std::next(it);
  }
}

bool BackupFollower::Live(uint64_t member) const {
  auto p = peers_.find(member);
  return p != peers_.end() && resync_.count(member) == 0 && p->second.agent->connected() &&
         p->second.agent->AllLive();
}

uint64_t BackupFollower::updates_received() const {
  uint64_t n = updates_of_dropped_;
  for (const auto& [member, peer] : peers_) n += peer.agent->stats().updates;
  return n;
}

const chp::SubtreeReplica* BackupFollower::Copy(std::string_view subtree) const {
  for (const auto& [member, peer] : peers_) {
    const chp::SubtreeReplica* r = peer.agent->Find(subtree);
    if (r != nullptr && !r->position().epoch.empty()) return r;
  }
  for (const auto& [member, peer] : retired_) {
    const chp::SubtreeReplica* r = peer.agent->Find(subtree);
    if (r != nullptr && !r->position().epoch.empty()) return r;
  }
  return nullptr;
}

void BackupFollower::AppendParts(std::vector<chp::Pollable*>& parts) {
  for (auto& [member, peer] : peers_) parts.push_back(peer.agent.get());
}

}  // namespace chorus::broker::node
