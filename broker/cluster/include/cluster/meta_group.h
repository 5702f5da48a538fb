// MetaGroup: this node's member of the meta Raft group that holds the cluster map
// (docs/cluster.md §3.3), on libraft's libuv backend (on-disk log and snapshots, raft_uv_tcp).
//
// Threads: Start() creates one loop thread that owns the libuv loop, the raft instance and the
// MetaFsm; nothing else touches them. Other threads talk to it only through Propose() and
// Status(), which queue a task for the loop thread (uv_async: the one mutex guards that queue)
// and return a future. Destruction closes raft and joins the thread.
#pragma once

#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster_map.h"
#include "cluster/controller.h"

namespace chorus::cluster {

struct MetaGroupConfig {
  MemberId id = 0;       // raft server id == member id (non-zero)
  std::string address;   // "host:port" this voter binds AND advertises (libraft uses one string)
  std::string data_dir;  // existing directory for libraft's log and snapshots
  // The initial voters, used to bootstrap when data_dir holds no log (ignored otherwise). Empty
  // for a node that joins later as a standby (the leader adds it with AddStandby).
  std::vector<std::pair<MemberId, std::string>> voters;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_timeout_ms = 100;
  unsigned snapshot_threshold = 1024;  // entries between snapshots
  // The controller (docs/cluster.md §6) runs on this member while it leads, every tick_ms.
  bool run_controller = false;
  ControllerConfig controller;
  unsigned tick_ms = 100;
  int64_t lease_ms = 800;  // C-25: must stay below controller.dead_after_ms
  // When non-zero, a leading controller bootstraps the partition table with these sizes.
  uint32_t bootstrap_partitions = 0;
  uint32_t bootstrap_replication_factor = 2;
};

// A commit lease (C-25): valid for duration_ms from when the member SENT its heartbeat (its own
// clock), and only with a map view that applied at least min_entries entries.
struct Lease {
  int64_t duration_ms = 0;
  uint64_t min_entries = 0;
};

struct MetaStatus {
  bool is_leader = false;
  MemberId leader_id = 0;  // 0 when unknown
  uint64_t entries = 0;    // command entries applied
  ClusterMap map;
};

class MetaGroup {
 public:
  // Initialises libuv and libraft on a new loop thread, bootstraps when fresh, starts raft.
  static Result<std::unique_ptr<MetaGroup>> Start(const MetaGroupConfig& config);
  ~MetaGroup();
  MetaGroup(const MetaGroup&) = delete;
  MetaGroup& operator=(const MetaGroup&) = delete;

  // Proposes `cmd` (this member must be the leader: otherwise kNotLeader). Completes once the
  // entry is applied here (Unit, or the map's rejection) or failed (see meta_fsm.h).
  std::future<Result<Unit>> Propose(Command cmd);
  // A consistent copy of this member's view, taken on the loop thread.
  std::future<MetaStatus> Status();
  // Leader only: adds a node to the Raft configuration as a standby (it replicates the log and
  // applies the map but does not vote; docs/cluster.md C-2). Completes when both configuration
  // changes (add as spare, then assign standby) are committed.
  std::future<Result<Unit>> AddStandby(MemberId id, std::string address);
  // Leader only: completes once a barrier entry proposed now is committed, i.e. a majority still
  // follows this leader (the lease rule C-25 grants leases after such a barrier).
  std::future<Result<Unit>> Barrier();
  // With run_controller: a member's heartbeat to this member's controller. The lease comes once
  // a barrier started after the heartbeat has committed; kNotLeader when this member does not
  // lead; kBadState when the map holds that incarnation dead (C-24: take a new one).
  std::future<Result<Lease>> SendHeartbeat(Heartbeat hb);
  // With run_controller: a primary's report (C-10, C-11, C-19); dropped when not leading.
  void SendReport(ReplicaReport report);

 private:
  struct Impl;
  explicit MetaGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::cluster
