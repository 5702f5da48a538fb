// The controller: what the meta group's leader decides from liveness and replication reports
// (docs/cluster.md §6). Pure and level-triggered: Decide() compares the applied map with what was
// observed and returns the commands that close the gap; a lost or rejected proposal is simply
// decided again on a later tick. Time is passed in (milliseconds, any monotonic origin). Owned by
// the meta group's thread; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "cluster/cluster_map.h"

namespace chorus::cluster {

struct ControllerConfig {
  // Silence after which a member is declared dead. Must exceed the commit lease (lease_ms plus a
  // margin for clock-rate drift; docs/cluster.md C-25), so a primary cut off from the controller
  // has stopped committing before its partitions move.
  int64_t dead_after_ms = 2000;
  // Partitions moving at once (replica added and catching up, or a handoff pending).
  uint32_t max_moves_in_flight = 8;
  // A fresh cluster (no partition placed yet) is placed only this long after the controller took
  // office, so the heartbeats of every member that is up have arrived and the first placement
  // spreads over all of them (moving a partition later needs a handoff). 0 = at once.
  int64_t initial_placement_delay_ms = 0;
};

// A member's heartbeat to the controller. Carries what AddMember needs, so a new member (or a
// restarted one with a larger incarnation) is added by the controller without another protocol.
// `leaving` is set from SIGTERM on: the controller then proposes SetLeaving, drains the member
// and removes it, and never adds it back (the node exits once it sees itself removed).
struct Heartbeat {
  MemberId id = 0;
  uint64_t incarnation = 0;
  Endpoints endpoints;
  bool leaving = false;
  bool operator==(const Heartbeat&) const = default;
};

// What the primary of a partition reports (docs/cluster.md C-10, C-11, C-19). `version` is the
// partition version of the primary's map when it reported: an in-sync expansion is proposed with
// exactly that expected version, so it can only apply on the map the primary saw (the primary
// counts a reported member in its commit quorum until its map passes that version).
struct ReplicaReport {
  PartitionId partition = 0;
  MemberId primary = 0;
  uint64_t epoch = 0;
  uint64_t version = 0;
  std::vector<MemberId> caught_up;  // backups that acknowledged the primary's top position
  std::vector<MemberId> lagging;    // in-sync backups without an ack for longer than the lag bound
  bool handoff_ready = false;       // handoff_to is in in_sync: may switch (cluster.md §16.11)
  bool operator==(const ReplicaReport&) const = default;
};

class Controller {
 public:
  explicit Controller(ControllerConfig config) : config_(config) {}

  // This node's meta voter became Raft leader at now_ms: forget old observations and give every
  // member a grace period of dead_after_ms before declaring it dead.
  void OnElected(int64_t now_ms);
  void OnHeartbeat(const Heartbeat& hb, int64_t now_ms);
  // Keeps the latest report per partition.
  void OnReport(const ReplicaReport& report);

  // The commands to propose now, in order. Each is valid on the map obtained by applying the
  // previous ones to `map` (they are checked on a scratch copy), so if nothing else is applied in
  // between, all of them are accepted.
  std::vector<Command> Decide(const ClusterMap& map, int64_t now_ms) const;

 private:
  struct Seen {
    uint64_t incarnation = 0;
    int64_t last_ms = 0;
    Endpoints endpoints;
    bool leaving = false;
  };

  ControllerConfig config_;
  int64_t elected_ms_ = 0;
  std::map<MemberId, Seen> seen_;
  std::map<PartitionId, ReplicaReport> reports_;
};

}  // namespace chorus::cluster
