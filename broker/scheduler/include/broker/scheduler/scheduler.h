// Scheduler: the pure core of the sync scheduler (docs/scheduler.md). Jobs, tasks, fixed slots,
// deficit round robin over users, leases with tokens, retries with backoff, cancel.
//
// No threads, no sockets, no clock: every call takes the current time as int64 milliseconds. The
// object is owned by one thread (the runner's owner thread, or a test); it is not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "broker/scheduler/errc.h"

namespace chorus::broker::scheduler {

using JobId = uint64_t;
using TaskId = uint64_t;
using LeaseToken = uint64_t;

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct TierConfig {
  std::string name;
  uint32_t quantum = 1;  // tasks a user of this tier may start per round-robin turn
  bool operator==(const TierConfig&) const = default;
};

// The scheduler's configuration; check it with ValidateConfig before constructing a Scheduler.
struct SchedulerConfig {
  uint32_t slots = 4;  // tasks running at once on this node
  std::vector<TierConfig> tiers{{"normal", 1}, {"premium", 3}};
  int64_t lease_ms = 30'000;      // a lease not renewed within this time expires
  uint32_t max_attempts = 4;      // a task runs at most this many times, then it is failed
  int64_t backoff_base_ms = 500;  // delay before attempt n+1 is base * 2^(n-1), capped
  int64_t backoff_max_ms = 60'000;
  LeaseToken first_token = 1;  // tokens grow from here (a new primary starts above the old)
  uint64_t first_id = 1;       // job and task ids grow from here (unique per node and term)
  // Ids this scheduler allocates stay below id_limit (0 = no limit): [first_id, id_limit) is
  // its block. Restore/Adopt move the next ids above restored ids inside the block only, so a
  // node adopting another owner's jobs (ids of another block) keeps allocating in its own.
  uint64_t id_limit = 0;
  size_t max_jobs = 10'000;           // jobs remembered (finished ones are forgotten oldest first)
  size_t max_live_tasks = 1'000'000;  // tasks not yet finished, over all jobs
  size_t max_errors_per_job = 32;     // further errors are counted, not kept
  size_t max_payload_bytes = 1 << 20;
};

// Empty when `config` is usable, else the reason.
std::string ValidateConfig(const SchedulerConfig& config);

enum class JobState : uint8_t { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
enum class TaskState : uint8_t { kPending, kRunning, kBackoff, kDone, kFailed, kCancelled };
const char* ToString(JobState s);
const char* ToString(TaskState s);
inline bool IsFinal(JobState s) {
  return s >= JobState::kSucceeded;
}

// What a caller submits. `user` is used in channel and key names (`sync:<user>`), so it is
// limited to [A-Za-z0-9_.@-], 1..128 bytes; `source` and `catalog` are opaque to the core
// (non-empty, <= 4096 bytes, no control characters).
bool IsValidUser(const std::string& user);  // [A-Za-z0-9_.@-], 1..128 bytes

struct JobSpec {
  std::string user;
  std::string tier = "normal";
  std::string source;
  std::string catalog;
  bool operator==(const JobSpec&) const = default;
};

struct TaskSpec {
  std::string kind;     // 1..64 bytes, e.g. "list", "sync", "prune", "finish"
  std::string payload;  // opaque to the core, <= max_payload_bytes
  // A final task becomes ready only when every other task of its job is finished (a per-job
  // finaliser; it never waits for another job).
  bool final = false;
};

struct JobCounts {
  uint64_t tasks_total = 0, tasks_done = 0, tasks_failed = 0, tasks_running = 0;
  uint64_t retries = 0, leases_expired = 0;
  // Items (files) as reported by task outcomes.
  uint64_t items_total = 0, items_done = 0, items_failed = 0;
  bool operator==(const JobCounts&) const = default;
};

struct JobInfo {
  JobId id = 0;
  JobSpec spec;
  JobState state = JobState::kQueued;
  JobCounts counts;
  std::vector<std::string> errors;  // at most max_errors_per_job
  uint64_t errors_dropped = 0;
  int64_t submitted_ms = 0, finished_ms = 0;
};

// A task handed to a worker. The worker renews it with Heartbeat and ends it with Complete,
// both carrying `token`; a call with any other token is ignored (fencing).
struct Lease {
  TaskId task = 0;
  JobId job = 0;
  JobSpec spec;
  std::string kind, payload;
  LeaseToken token = 0;
  int64_t deadline_ms = 0;
  uint32_t attempt = 0;  // 1 for the first run
  uint32_t slot = 0;
  uint64_t job_failed_tasks = 0;  // failed tasks of the job so far (a finaliser may care)
};

struct TaskOutcome {
  bool ok = true;
  bool permanent = false;  // a failure that retrying cannot fix (e.g. the source is missing)
  std::string error;
  std::vector<TaskSpec> children;  // new tasks of the same job (a listing produces these)
  uint64_t items_total = 0, items_done = 0, items_failed = 0;  // added to the job's counts
};

// A lease that ended without a result (expired or cancelled): the runner tells the worker.
struct Revoked {
  TaskId task = 0;
  LeaseToken token = 0;
  bool operator==(const Revoked&) const = default;
};

struct SchedulerStats {
  uint64_t queued = 0, running = 0, backoff = 0, free_slots = 0, jobs_live = 0;
  uint64_t dispatched = 0, completed = 0, failed = 0, retries = 0, leases_expired = 0;
  uint64_t stale_results = 0;
  std::map<std::string, uint64_t> completed_by_tier;
};

// One replicated key/value of the scheduler's state: key `sync:<user>/job/<job>` or
// `sync:<user>/task/<job>/<task>` (CHP subtree `sync:<user>`), value one msgpack array.
// docs/scheduler.md, "Replication as CHP key/values".
struct StateEntry {
  std::string key, value;
  bool operator==(const StateEntry&) const = default;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config);  // `config` must pass ValidateConfig

  // Adds a job with its first tasks (at least one, e.g. the listing). Errors: kBadRequest,
  // kUnknownTier, kLimitExceeded; a rejected job changes nothing.
  Result<JobId> Submit(const JobSpec& spec, std::vector<TaskSpec> tasks, int64_t now);
  // Cancels a job: pending tasks are dropped, running leases revoked (their slots are free at
  // once; their late results are ignored). Errors: kUnknownJob, kJobFinished.
  Result<Unit> Cancel(JobId job, int64_t now);
  Result<JobInfo> Job(JobId job) const;

  // Whether a task of `kind` can start now; when true the caller has reserved a place for it
  // (the next lease Dispatch returns). Used by the runner to route leases to workers that
  // declared the kind (docs/protocol/worker.md W-5).
  using Admit = std::function<bool(const std::string& kind)>;

  // Expires overdue leases, releases tasks whose backoff has passed, then fills free slots by
  // deficit round robin over users with ready tasks. Returns the new leases. With `admit`, a
  // task it refuses stops this dispatch round: the user at the head keeps its turn and credit
  // (no user overtakes it), so fairness is unchanged and capacity that cannot run the head
  // user's next task waits.
  std::vector<Lease> Dispatch(int64_t now, const Admit& admit = {});
  // Changes the number of slots (node capacity: in-process slots plus attached workers' slots,
  // 0..65536). Running tasks keep their slot; a lower count only stops new dispatches until
  // enough of them end.
  void SetSlots(uint32_t slots);
  // Expires overdue leases only (Dispatch does this too).
  void Expire(int64_t now);
  // Renews a lease until now + lease_ms. Errors: kUnknownTask, kStaleLease.
  Result<Unit> Heartbeat(TaskId task, LeaseToken token, int64_t now);
  // Ends a lease with its outcome. A stale token or finished task is ignored (kStaleLease /
  // kUnknownTask) and changes nothing. Errors in `outcome` (children) give kBadRequest and
  // count as a failure of the task.
  Result<Unit> Complete(TaskId task, LeaseToken token, TaskOutcome outcome, int64_t now);

  // Leases ended without a result since the last call (expired or cancelled).
  std::vector<Revoked> TakeRevoked();
  // The earliest time something happens without a call (lease deadline, backoff end).
  int64_t NextWakeMs() const;
  SchedulerStats Stats() const;
  const SchedulerConfig& config() const { return config_; }

  // Every remembered job and every unfinished task, ordered by key id. Leases (slot, token,
  // deadline) are not part of it.
  std::vector<StateEntry> ExportState() const;
  // A scheduler holding `state` (e.g. read back by a new primary): tasks that were running are
  // pending again (they run again: at-least-once), backoffs keep their end, counts and errors
  // are kept. `config.first_token` / `first_id` should be above the old owner's (ids already in
  // `state` are kept and the next ids start above them). Errors: kBadRequest (malformed key or
  // value, task of an unknown or finished job, duplicate), kUnknownTier.
  static Result<std::unique_ptr<Scheduler>> Restore(SchedulerConfig config,
                                                    const std::vector<StateEntry>& state,
                                                    int64_t now);
  // Adds `state` (e.g. one user's jobs read back from a replica by a node that became their
  // owner) to this live scheduler, as Restore would: tasks that were running elsewhere are
  // pending again. All or nothing: the state is checked as by Restore and refused when a job or
  // task id is already present here (kBadRequest). Returns the adopted jobs' ids.
  Result<std::vector<JobId>> Adopt(const std::vector<StateEntry>& state, int64_t now);

  // A read-only view for mirrors and tools (O(live tasks)): per user with live jobs, its queue;
  // every running lease.
  struct QueueView {
    std::string user, tier;
    uint32_t quantum = 0;
    uint64_t ready = 0, running = 0, backoff = 0, held = 0, jobs_live = 0;
  };
  struct LeaseView {
    std::string user, kind;
    TaskId task = 0;
    JobId job = 0;
    LeaseToken token = 0;
    uint32_t slot = 0, attempt = 0;
    int64_t deadline_ms = 0;
  };
  std::vector<QueueView> Queues() const;
  std::vector<LeaseView> Leases() const;
  uint32_t slots() const { return capacity_; }

 private:
  struct Task {
    TaskId id = 0;
    JobId job = 0;
    TaskSpec spec;
    TaskState state = TaskState::kPending;
    uint32_t attempts = 0;
    LeaseToken token = 0;
    int64_t deadline_ms = 0, not_before_ms = 0;
    uint32_t slot = 0;
  };
  struct JobEntry {
    JobInfo info;
    std::vector<TaskId> tasks;       // every unfinished task of the job
    std::vector<TaskId> held_final;  // final tasks waiting for the others
    uint64_t unfinished_nonfinal = 0;
  };
  struct UserQueue {
    std::deque<TaskId> ready;
    uint32_t quantum = 1;
    std::string tier;
    uint32_t deficit = 0;
    bool in_ring = false, turn_started = false;
  };

  Result<Unit> ValidateTask(const TaskSpec& t) const;
  void AddTask(JobEntry& job, TaskSpec spec);
  void MakeReady(Task& task);
  void StartLease(Task& task, JobEntry& job, int64_t now, std::vector<Lease>& out);
  void EndLease(Task& task);
  void FailAttempt(Task& task, const std::string& error, bool permanent, int64_t now);
  void FinishTask(Task& task, TaskState state);
  void MaybeFinishJob(JobEntry& job, int64_t now);
  void AddError(JobEntry& job, std::string error);
  void ReleaseBackoff(int64_t now);
  void Forget();
  // An id of this scheduler's block [first_id, id_limit) (every id without a limit).
  bool InBlock(uint64_t id) const {
    return config_.id_limit == 0 || (id >= config_.first_id && id < config_.id_limit);
  }
  Result<Unit> RestoreJob(const std::string& user, JobId id, const std::string& value);
  Result<Unit> RestoreTask(const std::string& user, JobId job, TaskId id, const std::string& value,
                           int64_t now);
  void FinishRestore(int64_t now);
  void FinishAdopt(const std::vector<JobId>& jobs, int64_t now);

  SchedulerConfig config_;
  std::unordered_map<std::string, uint32_t> quantum_by_tier_;
  std::unordered_map<JobId, JobEntry> jobs_;
  std::deque<JobId> finished_jobs_;  // oldest first, forgotten beyond max_jobs
  std::unordered_map<TaskId, Task> tasks_;
  std::unordered_map<std::string, UserQueue> users_;
  std::deque<std::string> ring_;                  // users with ready tasks, in round-robin order
  std::set<std::pair<int64_t, TaskId>> leases_;   // (deadline, task) of running tasks
  std::set<std::pair<int64_t, TaskId>> backoff_;  // (not_before, task)
  std::vector<TaskId> slots_;                     // 0 = free; may exceed capacity_
  uint32_t capacity_;                             // slots that may be busy at once
  std::vector<Revoked> revoked_;
  JobId next_job_;
  TaskId next_task_;
  LeaseToken next_token_;
  uint64_t running_ = 0, live_tasks_ = 0, ready_count_ = 0;
  SchedulerStats counters_;
};

}  // namespace chorus::broker::scheduler
