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
    if (k == "x") {  // C-12: the channel is named in the record (it may have no `top`)
      Publication p;
      std::string channel;
      if (DecodeEphemeral(record.value, channel, p) && Wanted(subtree, channel) &&
          f_.callbacks_.on_ephemeral) {
        f_.callbacks_.on_ephemeral(member_, channel, std::move(p));
      }
      return;
    }
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
      // Partitions gained are in the copy already (everything is followed), but their
      // channels were filtered out so far: a new agent re-reads them all by snapshot. The old
      // one is retired, not dropped: until the new one is live, a promotion continues from the
      // copies it holds of the partitions this node already backs up there (Copy). Dropping it
      // lost the line of a partition whose primary died in that window although this node was
      // in its in_sync (seen in a test run).
      bool gained = false;
      for (uint32_t part : target.partitions) {
        gained = gained || p->second.target.partitions.count(part) == 0;
      }
      if (!gained) {
        p->second.target = std::move(target);
        continue;
      }
      Retire(member);
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

void BackupFollower::Retire(uint64_t member) {
  auto p = peers_.find(member);
  if (p == peers_.end()) return;
  if (auto r = retired_.find(member); r != retired_.end()) {  // an older one's
    updates_of_dropped_ += r->second.agent->stats().updates;
    retired_.erase(r);
  }
  retired_.emplace(member, std::move(p->second));
  peers_.erase(p);
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
    Retire(member);
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
  // First the copy from the member followed as the partition's primary: every agent follows
  // everything on its member, so another member's agent may hold the same subtree as that
  // member's local mirror of the channel (no `h/<slot>` record); adopting that one lost the
  // publications waiting for their commit at a handoff (docs/cluster.md §16.11).
  if (auto part = cluster::PartitionOfSubtree(subtree, partition_count_)) {
    for (const auto& [member, peer] : peers_) {
      if (peer.target.partitions.count(*part) == 0) continue;
      const chp::SubtreeReplica* r = peer.agent->Find(subtree);
      if (r != nullptr && !r->position().epoch.empty()) return r;
    }
  }
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

std::vector<std::string> BackupFollower::CopiedSubtrees(std::string_view prefix,
                                                        uint32_t partition) const {
  std::vector<std::string> out;
  for (const auto& [member, peer] : peers_) {
    const auto& replicas = peer.agent->replicas();
    for (auto it = replicas.lower_bound(prefix);
         it != replicas.end() && std::string_view(it->first).starts_with(prefix); ++it) {
      if (it->second.position().epoch.empty()) continue;  // no snapshot yet
      if (cluster::PartitionOfSubtree(it->first, partition_count_) != partition) continue;
      if (std::find(out.begin(), out.end(), it->first) == out.end()) out.push_back(it->first);
    }
  }
  return out;
}

void BackupFollower::AppendParts(std::vector<chp::Pollable*>& parts) {
  for (auto& [member, peer] : peers_) parts.push_back(peer.agent.get());
}

}  // namespace chorus::broker::node
