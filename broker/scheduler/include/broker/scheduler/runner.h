// Runner: the scheduler core on one owner thread plus in-process worker threads.
//
// Threads and ownership: the owner thread alone touches the Scheduler; worker threads run tasks
// and talk to the owner only through its bounded inbox (results, heartbeats); API calls (Submit,
// Cancel, Status, Stats) are messages too, answered through a promise. Leases go to workers on a
// bounded work queue. A lease that expires or is cancelled is flagged revoked: the task sees it
// on its next Heartbeat (false) and its late result is ignored by token. A task that hangs for
// good keeps its worker thread but not its slot: `spare_workers` threads absorb such tasks.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broker/scheduler/bounded_queue.h"
#include "broker/scheduler/scheduler.h"
#include "broker/scheduler/state_records.h"
#include "broker/scheduler/sync_task.h"
#include "broker/scheduler/worker_hub.h"

namespace chorus::broker::scheduler {

// External workers (docs/protocol/worker.md): processes attached over ZeroMQ.
struct WorkersConfig {
  std::string endpoint;     // "" = no external workers; e.g. tcp://127.0.0.1:0
  size_t max_workers = 64;  // workers attached at once (1..4096)
  int64_t timeout_ms = 0;   // a worker silent this long is detached; 0 = 3 heartbeat intervals
};

struct RunnerConfig {
  // `scheduler.slots` is the number of in-process slots; attached workers add theirs.
  SchedulerConfig scheduler;
  bool in_process = true;  // false: only external workers run tasks
  WorkersConfig workers;
  uint32_t spare_workers = 2;            // worker threads beyond the slots (for hung tasks)
  int64_t heartbeat_interval_ms = 1000;  // a task's Heartbeat() sends at most this often
  size_t inbox_capacity = 4096;
};

std::string ValidateConfig(const RunnerConfig& config);

class Runner {
 public:
  using Executor = std::function<TaskOutcome(const Lease&, TaskContext&)>;

  // Starts the owner and worker threads. `config` must pass ValidateConfig. With an external
  // worker endpoint, `*error` (when given) says why it could not be bound (then no external
  // worker can attach; check worker_endpoint()).
  Runner(RunnerConfig config, Executor executor, std::string* error = nullptr);
  ~Runner();  // Stop()
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Result<JobId> Submit(JobSpec spec, std::vector<TaskSpec> tasks);
  Result<Unit> Cancel(JobId job);
  Result<JobInfo> Status(JobId job);
  SchedulerStats Stats();
  // The bound worker endpoint ("" without external workers).
  std::string worker_endpoint() const;
  struct WorkerStats {
    uint64_t attached = 0, slots = 0, busy = 0;  // gauges: workers, their slots, leases held
    uint64_t hellos_refused = 0, detached = 0;   // counters
  };
  WorkerStats Workers();
  // The changes of the scheduler's CHP records since the last call, at most `max`
  // (state_records.h). One caller (the engine thread, which owns the CHP server).
  StateMirror::Changes MirrorChanges(size_t max);
  // Scheduler::Adopt on the owner thread: jobs read back from a replica join this scheduler.
  // `held` are the records the CHP server already holds for them (StateMirror::Assume).
  Result<std::vector<JobId>> Adopt(std::vector<StateEntry> state, std::vector<ChpRecord> held = {});
  // Stops dispatching, waits for running tasks to return, joins every thread. A task that never
  // returns blocks Stop: executors must end when Heartbeat() says the lease is gone.
  void Stop();

 private:
  struct SubmitMsg {
    JobSpec spec;
    std::vector<TaskSpec> tasks;
    std::promise<Result<JobId>> reply;
  };
  struct CancelMsg {
    JobId job;
    std::promise<Result<Unit>> reply;
  };
  struct StatusMsg {
    JobId job;
    std::promise<Result<JobInfo>> reply;
  };
  struct StatsMsg {
    std::promise<SchedulerStats> reply;
  };
  struct WorkersMsg {
    std::promise<WorkerStats> reply;
  };
  struct MirrorMsg {
    size_t max;
    std::promise<StateMirror::Changes> reply;
  };
  struct AdoptMsg {
    std::vector<StateEntry> state;
    std::vector<ChpRecord> held;
    std::promise<Result<std::vector<JobId>>> reply;
  };
  struct HeartbeatMsg {
    TaskId task;
    LeaseToken token;
  };
  struct DoneMsg {
    TaskId task;
    LeaseToken token;
    TaskOutcome outcome;
  };
  struct StopMsg {};
  using Msg = std::variant<SubmitMsg, CancelMsg, StatusMsg, StatsMsg, HeartbeatMsg, DoneMsg,
                           StopMsg, WorkersMsg, MirrorMsg, AdoptMsg, WorkerHub::Inbound>;
  struct Work {
    Lease lease;
    std::shared_ptr<std::atomic<bool>> revoked;
    std::string rid;  // the external worker holding it; "" = in-process
  };
  // An attached external worker (owner thread only).
  struct Remote {
    uint64_t id = 0;
    uint32_t slots = 0, busy = 0;
    std::vector<std::string> kinds;
    int64_t last_seen_ms = 0;
  };
  class WorkerContext;

  int64_t NowMs() const;
  void OwnerLoop();
  void Handle(Msg& m, Scheduler& s, bool* stop);
  void WorkerLoop();
  // External workers (runner_remote.cc), owner thread only.
  void HandleRemote(WorkerHub::Inbound& in, Scheduler& s);
  void Hello(const std::string& rid, const wire::Hello& h, Scheduler& s);
  bool Admit(const std::string& kind, std::vector<std::string>* targets);
  void Route(Work w);
  void Released(const Work& w);  // a lease ended (result, revoke): its place is free
  void DetachSilent(Scheduler& s);
  void SetCapacity(Scheduler& s);

  const RunnerConfig config_;
  const Executor executor_;
  const std::chrono::steady_clock::time_point start_;
  BoundedQueue<Msg> inbox_;
  BoundedQueue<Work> work_;
  // Owner thread only: revoke flags of the leases handed out, by task.
  std::unordered_map<TaskId, Work> live_;
  // External workers: the hub (its own thread) and, on the owner thread, its sender.
  std::unique_ptr<zmq::context_t> zctx_;  // only with an external worker endpoint
  std::unique_ptr<WorkerHub> hub_;
  std::unique_ptr<WorkerHub::Sender> sender_;
  std::map<std::string, Remote> remotes_;  // by routing id (owner thread)
  uint32_t inproc_busy_ = 0;               // owner thread
  uint64_t next_worker_id_ = 1;
  WorkerStats worker_counters_;  // owner thread
  StateMirror mirror_;           // owner thread
  std::thread owner_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};
};

// The reference sync task as a runner executor.
inline Runner::Executor SyncExecutor(SyncTasks& tasks) {
  return [&tasks](const Lease& l, TaskContext& ctx) { return tasks.Run(l, ctx); };
}

}  // namespace chorus::broker::scheduler
