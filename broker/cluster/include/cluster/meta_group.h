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

 private:
  struct Impl;
  explicit MetaGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::cluster
