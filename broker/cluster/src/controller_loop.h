// ControllerLoop: the controller (controller.h) driven on a MetaGroup's loop thread while its
// member leads (docs/cluster.md §6, C-25). Internal to MetaGroup; owned by the loop thread.
#pragma once

#include <future>
#include <memory>
#include <vector>

#include "cluster/controller.h"
#include "cluster/meta_fsm.h"
#include "cluster/meta_group.h"

struct raft;
struct raft_barrier;

namespace chorus::cluster::detail {

using LeasePromise = std::shared_ptr<std::promise<Result<Lease>>>;

class ControllerLoop {
 public:
  ControllerLoop(struct raft* r, const MetaFsm* fsm, const MetaGroupConfig& config);
  ~ControllerLoop();  // fails the heartbeats still waiting for a barrier (kNotLeader)
  ControllerLoop(const ControllerLoop&) = delete;
  ControllerLoop& operator=(const ControllerLoop&) = delete;

  // Every tick_ms: notices leadership changes, bootstraps, decides and proposes (one batch of
  // proposals at a time, as the simulation does).
  void Tick(int64_t now_ms);
  // A member's heartbeat. The lease comes after a barrier started now has committed; kNotLeader
  // when this member does not lead; kBadState when the map holds this incarnation dead (C-24).
  void OnHeartbeat(const Heartbeat& hb, int64_t now_ms, LeasePromise promise);
  void OnReport(const ReplicaReport& report);
  // Before raft_close: no barrier is started any more. raft_close fails the pending barrier
  // while raft still reads as leader; starting a new one from that callback corrupted libraft's
  // request queue (SIGSEGV on SIGTERM soon after start, node_cluster_test).
  void Stop();

 private:
  struct BarrierRequest;
  static void BarrierDone(struct raft_barrier* barrier, int status);
  void StartBarrier();
  bool Leads() const;

  struct raft* raft_;
  const MetaFsm* fsm_;
  MetaGroupConfig config_;
  Controller controller_;
  uint64_t term_ = 0;        // the term this member leads in, 0 when it does not
  uint64_t generation_ = 0;  // +1 per term led: proposal callbacks of an older term are ignored
  unsigned inflight_ = 0;    // proposals of the current batch not yet completed
  bool barrier_inflight_ = false;
  bool stopping_ = false;
  std::vector<LeasePromise> waiting_;  // heartbeats waiting for the next barrier
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace chorus::cluster::detail
