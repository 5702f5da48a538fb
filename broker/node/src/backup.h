// BackupFollower: backups follow their partitions' subtrees (docs/cluster.md C-16, §16.2). A
// backup does not know its partitions' channel names in advance, so it follows everything on
// each primary it backs up (one chp::ReplicaAgent per such primary, CHP `*`: snapshot of every
// subtree, then every update) and keeps only the subtrees of the partitions it backs up there
// (cluster::PartitionOfSubtree, or the `top` record's channel name for hashed subtree names).
// What is kept is decoded (channel_records.h) and handed to the engine's callbacks, which apply
// it to the node's ChannelTable copy, check the partition epoch (C-13) and acknowledge (C-8).
// Cost, stated plainly: the primary sends this node its other partitions' updates too (with
// R=2 on 3 nodes about twice what is needed); a per-partition index subtree would avoid it.
// Owned by the engine thread: the agents are Pollables of the engine's loop; callbacks run there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "channel_records.h"
#include "chp/agent.h"

namespace chorus::broker::node {

struct BackupCallbacks {
  // A snapshot of a channel on `member` (its primary): top and the contiguous run of retained
  // publications ending at top.top.offset.
  std::function<void(uint64_t member, const CopyTop& top, std::vector<Publication> pubs)> on_reset;
  std::function<void(uint64_t member, const CopyTop& top)> on_top;
  std::function<void(uint64_t member, const std::string& channel, Publication pub)> on_publication;
  // A publication kept in no history (`x`, C-12), live changes only.
  std::function<void(uint64_t member, const std::string& channel, Publication pub)> on_ephemeral;
  // Presence (`p/<client>`, C-21): a snapshot's entries, then each change (nullptr: left).
  std::function<void(const std::string& channel, std::vector<PresenceEntry> entries)>
      on_presence_reset;
  std::function<void(const std::string& channel, const std::string& client,
                     const PresenceEntry* entry)>
      on_presence;
};

class BackupFollower {
 public:
  BackupFollower(zmq::context_t& ctx, BackupCallbacks callbacks,
                 std::chrono::milliseconds heartbeat);
  ~BackupFollower();

  // The primaries this node backs up: member -> (CHP command endpoint, the partitions it is
  // primary of and this node a backup of). Agents of members no longer listed are closed.
  struct Target {
    std::string chp;
    std::set<uint32_t> partitions;
  };
  void SetTargets(std::map<uint64_t, Target> targets, uint32_t partition_count);
  // C-24: every copy is dropped (agents closed, CHP copies gone); the next SetTargets follows
  // the primaries again from a fresh snapshot.
  void DropAll();
  // The copy of `member`'s subtrees cannot be continued from what arrived (a gap, a line whose
  // start was missed): its agent is replaced by ApplyResyncs (a fresh `*` snapshot). Safe to call
  // from a callback; the agent is replaced only by ApplyResyncs, outside any poll.
  void RequestResync(uint64_t member) { resync_.insert(member); }
  bool ResyncPending(uint64_t member) const { return resync_.count(member) != 0; }
  void ApplyResyncs();
  uint64_t resyncs() const { return resyncs_; }
  // The copy of `member`'s subtrees is complete and current (`*` snapshot done, link up).
  bool Live(uint64_t member) const;
  bool Follows(uint64_t member) const { return peers_.count(member) != 0; }
  size_t primaries() const { return peers_.size(); }
  uint64_t updates_received() const;
  // This node's copy of `subtree` from a primary it backs up (nullptr when it holds none): what
  // a promotion continues (engine_failover.cc). Valid until the next SetTargets.
  const chp::SubtreeReplica* Copy(std::string_view subtree) const;
  // The subtrees starting with `prefix` (e.g. "s.", the scheduler's) this node holds a copy of
  // from any primary it backs up, with partition `partition` (cluster::PartitionOfSubtree).
  std::vector<std::string> CopiedSubtrees(std::string_view prefix, uint32_t partition) const;

  void AppendParts(std::vector<chp::Pollable*>& parts);

 private:
  class Observer;
  struct Peer {
    Target target;
    std::unique_ptr<Observer> observer;
    std::unique_ptr<chp::ReplicaAgent> agent;
  };
  zmq::context_t& ctx_;
  BackupCallbacks callbacks_;
  std::chrono::milliseconds heartbeat_;
  uint32_t partition_count_ = 0;
  void StartPeer(uint64_t member, Target target);
  // The member's agent stops being polled but its copy stays readable (Copy) until the agent
  // that replaces it is live (ApplyResyncs prunes).
  void Retire(uint64_t member);
  std::map<uint64_t, Peer> peers_;
  std::map<uint64_t, Peer> retired_;  // replaced agents, read by Copy until the new one is live
  std::set<uint64_t> resync_;
  uint64_t resyncs_ = 0;
  uint64_t updates_of_dropped_ = 0;
};

}  // namespace chorus::broker::node
