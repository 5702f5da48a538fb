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
#include <memory>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broker/scheduler/bounded_queue.h"
#include "broker/scheduler/scheduler.h"
#include "broker/scheduler/sync_task.h"

namespace chorus::broker::scheduler {

struct RunnerConfig {
  SchedulerConfig scheduler;
  uint32_t spare_workers = 2;            // worker threads beyond the slots (for hung tasks)
  int64_t heartbeat_interval_ms = 1000;  // a task's Heartbeat() sends at most this often
  size_t inbox_capacity = 4096;
};

std::string ValidateConfig(const RunnerConfig& config);

class Runner {
 public:
  using Executor = std::function<TaskOutcome(const Lease&, TaskContext&)>;

  // Starts the owner and worker threads. `config` must pass ValidateConfig.
  Runner(RunnerConfig config, Executor executor);
  ~Runner();  // Stop()
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Result<JobId> Submit(JobSpec spec, std::vector<TaskSpec> tasks);
  Result<Unit> Cancel(JobId job);
  Result<JobInfo> Status(JobId job);
  SchedulerStats Stats();
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
  using Msg =
      std::variant<SubmitMsg, CancelMsg, StatusMsg, StatsMsg, HeartbeatMsg, DoneMsg, StopMsg>;
  struct Work {
    Lease lease;
    std::shared_ptr<std::atomic<bool>> revoked;
  };
  class WorkerContext;

  int64_t NowMs() const;
  void OwnerLoop();
  void Handle(Msg& m, Scheduler& s, bool* stop);
  void WorkerLoop();

  const RunnerConfig config_;
  const Executor executor_;
  const std::chrono::steady_clock::time_point start_;
  BoundedQueue<Msg> inbox_;
  BoundedQueue<Work> work_;
  // Owner thread only: revoke flags of the leases handed out, by task.
  std::unordered_map<TaskId, Work> live_;
  std::thread owner_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};
};

// The reference sync task as a runner executor.
inline Runner::Executor SyncExecutor(SyncTasks& tasks) {
  return [&tasks](const Lease& l, TaskContext& ctx) { return tasks.Run(l, ctx); };
}

}  // namespace chorus::broker::scheduler
