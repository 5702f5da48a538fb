// The scheduling core; the model and its guarantees are in docs/scheduler.md.
#include "broker/scheduler/scheduler.h"

#include <algorithm>
#include <cassert>

namespace chorus::broker::scheduler {
namespace {

constexpr size_t kMaxUserLength = 128;
constexpr size_t kMaxFieldLength = 4096;
constexpr size_t kMaxKindLength = 64;

}  // namespace

bool IsValidUser(const std::string& u) {
  if (u.empty() || u.size() > kMaxUserLength) return false;
  return std::all_of(u.begin(), u.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '@' || c == '-';
  });
}

namespace {

bool ValidField(const std::string& f, size_t max) {
  if (f.empty() || f.size() > max) return false;
  return std::none_of(f.begin(), f.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

}  // namespace

std::string ValidateConfig(const SchedulerConfig& c) {
  if (c.slots == 0 || c.slots > 4096) return "slots must be in 1..4096";
  if (c.tiers.empty()) return "at least one tier is needed";
  for (size_t i = 0; i < c.tiers.size(); ++i) {
    const auto& t = c.tiers[i];
    if (!ValidField(t.name, kMaxKindLength)) return "tier name must be 1..64 printable bytes";
    if (t.quantum == 0 || t.quantum > 1000) return "tier '" + t.name + "': quantum in 1..1000";
    for (size_t j = 0; j < i; ++j) {
      if (c.tiers[j].name == t.name) return "tier '" + t.name + "' is listed twice";
    }
  }
  if (c.lease_ms <= 0) return "lease_ms must be positive";
  if (c.max_attempts == 0) return "max_attempts must be at least 1";
  if (c.backoff_base_ms < 0 || c.backoff_max_ms < c.backoff_base_ms) {
    return "backoff must satisfy 0 <= backoff_base_ms <= backoff_max_ms";
  }
  if (c.first_token == 0 || c.first_id == 0) return "first_token and first_id must be positive";
  if (c.id_limit != 0 && c.id_limit <= c.first_id) return "id_limit must be above first_id";
  if (c.max_jobs == 0 || c.max_live_tasks == 0) return "max_jobs and max_live_tasks must be > 0";
  return {};
}

const char* ToString(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "?";
}

const char* ToString(TaskState s) {
  switch (s) {
    case TaskState::kPending:
      return "pending";
    case TaskState::kRunning:
      return "running";
    case TaskState::kBackoff:
      return "backoff";
    case TaskState::kDone:
      return "done";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kCancelled:
      return "cancelled";
  }
  return "?";
}

Scheduler::Scheduler(SchedulerConfig config)
    : config_(std::move(config)),
      slots_(config_.slots, 0),
      capacity_(config_.slots),
      next_job_(config_.first_id),
      next_task_(config_.first_id),
      next_token_(config_.first_token) {
  assert(ValidateConfig(config_).empty());
  for (const auto& t : config_.tiers) quantum_by_tier_[t.name] = t.quantum;
}

Result<Unit> Scheduler::ValidateTask(const TaskSpec& t) const {
  if (!ValidField(t.kind, kMaxKindLength)) return Errc::kBadRequest;
  if (t.payload.size() > config_.max_payload_bytes) return Errc::kBadRequest;
  return Unit{};
}

Result<JobId> Scheduler::Submit(const JobSpec& spec, std::vector<TaskSpec> tasks, int64_t now) {
  if (!IsValidUser(spec.user) || !ValidField(spec.source, kMaxFieldLength) ||
      !ValidField(spec.catalog, kMaxFieldLength) || tasks.empty()) {
    return Errc::kBadRequest;
  }
  auto tier = quantum_by_tier_.find(spec.tier);
  if (tier == quantum_by_tier_.end()) return Errc::kUnknownTier;
  for (const auto& t : tasks) {
    if (auto v = ValidateTask(t); !v) return v.error();
  }
  if (jobs_.size() - finished_jobs_.size() >= config_.max_jobs ||
      live_tasks_ + tasks.size() > config_.max_live_tasks) {
    return Errc::kLimitExceeded;
  }
  if (config_.id_limit != 0 &&
      (next_job_ >= config_.id_limit || next_task_ + tasks.size() > config_.id_limit)) {
    return Errc::kLimitExceeded;  // the id block is used up (2^40 ids in chorusd)
  }
  const JobId id = next_job_++;
  JobEntry& job = jobs_[id];
  job.info.id = id;
  job.info.spec = spec;
  job.info.submitted_ms = now;
  UserQueue& uq = users_[spec.user];
  uq.quantum = tier->second;  // a user's latest job sets its tier
  uq.tier = spec.tier;
  for (auto& t : tasks) AddTask(job, std::move(t));
  MaybeFinishJob(job, now);  // only final tasks: release them at once
  Forget();
  return id;
}

void Scheduler::AddTask(JobEntry& job, TaskSpec spec) {
  const TaskId id = next_task_++;
  Task& t = tasks_[id];
  t.id = id;
  t.job = job.info.id;
  t.spec = std::move(spec);
  job.tasks.push_back(id);
  ++job.info.counts.tasks_total;
  ++live_tasks_;
  if (t.spec.final) {
    job.held_final.push_back(id);
  } else {
    ++job.unfinished_nonfinal;
    MakeReady(t);
  }
}

void Scheduler::MakeReady(Task& task) {
  task.state = TaskState::kPending;
  const std::string& user = jobs_.at(task.job).info.spec.user;
  UserQueue& uq = users_[user];
  uq.ready.push_back(task.id);
  ++counters_.queued;
  if (!uq.in_ring) {
    uq.in_ring = true;
    uq.deficit = 0;
    uq.turn_started = false;
    ring_.push_back(user);
  }
}

void Scheduler::ReleaseBackoff(int64_t now) {
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    const TaskId id = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    --counters_.backoff;
    MakeReady(tasks_.at(id));
  }
}

void Scheduler::Expire(int64_t now) {
  while (!leases_.empty() && leases_.begin()->first <= now) {
    Task& t = tasks_.at(leases_.begin()->second);
    revoked_.push_back({t.id, t.token});
    JobEntry& job = jobs_.at(t.job);
    ++job.info.counts.leases_expired;
    ++counters_.leases_expired;
    EndLease(t);
    FailAttempt(t, "lease expired (attempt " + std::to_string(t.attempts) + ")", false, now);
  }
}

void Scheduler::SetSlots(uint32_t slots) {
  capacity_ = std::min<uint32_t>(slots, 65536);
  if (slots_.size() < capacity_) slots_.resize(capacity_, 0);
}

std::vector<Lease> Scheduler::Dispatch(int64_t now, const Admit& admit) {
  Expire(now);
  ReleaseBackoff(now);
  std::vector<Lease> out;
  // Deficit round robin with unit task cost: the user at the head of the ring gets `quantum`
  // credits once per turn and starts one task per credit; a turn interrupted by a lack of slots
  // resumes (with its remaining credit) when a slot frees, so shares hold under any slot timing.
  bool refused = false;
  while (!refused && running_ < capacity_ && !ring_.empty()) {
    const std::string user = ring_.front();
    UserQueue& uq = users_.at(user);
    if (!uq.turn_started) {
      uq.deficit += uq.quantum;
      uq.turn_started = true;
    }
    while (uq.deficit > 0 && running_ < capacity_ && !uq.ready.empty()) {
      Task& t = tasks_.at(uq.ready.front());
      if (admit && !admit(t.spec.kind)) {
        refused = true;
        break;
      }
      uq.ready.pop_front();
      --counters_.queued;
      --uq.deficit;
      StartLease(t, jobs_.at(t.job), now, out);
    }
    if (uq.ready.empty()) {
      uq.in_ring = false;
      uq.deficit = 0;
      uq.turn_started = false;
      ring_.pop_front();
    } else if (uq.deficit == 0) {
      uq.turn_started = false;
      ring_.pop_front();
      ring_.push_back(user);
    }  // else: out of slots (or refused) mid-turn; the user stays at the head with its credit
  }
  return out;
}

void Scheduler::StartLease(Task& t, JobEntry& job, int64_t now, std::vector<Lease>& out) {
  uint32_t slot = 0;
  while (slot < slots_.size() && slots_[slot] != 0) ++slot;
  if (slot == slots_.size()) slots_.push_back(0);  // capacity grew back while slots were busy
  slots_[slot] = t.id;
  t.slot = slot;
  t.state = TaskState::kRunning;
  t.token = next_token_++;
  t.deadline_ms = now + config_.lease_ms;
  ++t.attempts;
  ++running_;
  ++counters_.dispatched;
  leases_.insert({t.deadline_ms, t.id});
  ++job.info.counts.tasks_running;
  if (job.info.state == JobState::kQueued) job.info.state = JobState::kRunning;
  Lease l;
  l.task = t.id;
  l.job = job.info.id;
  l.spec = job.info.spec;
  l.kind = t.spec.kind;
  l.payload = t.spec.payload;
  l.token = t.token;
  l.deadline_ms = t.deadline_ms;
  l.attempt = t.attempts;
  l.slot = slot;
  l.job_failed_tasks = job.info.counts.tasks_failed;
  out.push_back(std::move(l));
}

void Scheduler::EndLease(Task& t) {
  leases_.erase({t.deadline_ms, t.id});
  slots_[t.slot] = 0;
  --running_;
  --jobs_.at(t.job).info.counts.tasks_running;
  t.token = 0;  // no token matches any more: every late call is stale
}

Result<Unit> Scheduler::Heartbeat(TaskId task, LeaseToken token, int64_t now) {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return Errc::kUnknownTask;
  Task& t = it->second;
  if (t.state != TaskState::kRunning || t.token != token) return Errc::kStaleLease;
  leases_.erase({t.deadline_ms, t.id});
  t.deadline_ms = std::max(t.deadline_ms, now + config_.lease_ms);
  leases_.insert({t.deadline_ms, t.id});
  return Unit{};
}

Result<Unit> Scheduler::Complete(TaskId task, LeaseToken token, TaskOutcome outcome, int64_t now) {
  auto it = tasks_.find(task);
  if (it == tasks_.end()) {
    ++counters_.stale_results;
    return Errc::kUnknownTask;
  }
  Task& t = it->second;
  if (t.state != TaskState::kRunning || t.token != token) {
    ++counters_.stale_results;
    return Errc::kStaleLease;
  }
  JobEntry& job = jobs_.at(t.job);
  EndLease(t);
  Result<Unit> result = Unit{};
  if (outcome.ok) {
    for (const auto& c : outcome.children) {
      if (auto v = ValidateTask(c); !v) result = v.error();
    }
    if (result && live_tasks_ + outcome.children.size() > config_.max_live_tasks) {
      result = Errc::kLimitExceeded;
    }
    if (!result) {
      outcome.ok = false;
      outcome.error = "task produced invalid children: " + result.error().message();
    }
  }
  if (!outcome.ok) {
    FailAttempt(t, outcome.error, outcome.permanent, now);
    return result;
  }
  job.info.counts.items_total += outcome.items_total;
  job.info.counts.items_done += outcome.items_done;
  job.info.counts.items_failed += outcome.items_failed;
  if (!outcome.error.empty()) AddError(job, outcome.error);
  for (auto& c : outcome.children) AddTask(job, std::move(c));
  ++counters_.completed;
  ++counters_.completed_by_tier[job.info.spec.tier];
  FinishTask(t, TaskState::kDone);
  MaybeFinishJob(job, now);
  return result;
}

void Scheduler::FailAttempt(Task& t, const std::string& error, bool permanent, int64_t now) {
  JobEntry& job = jobs_.at(t.job);
  if (permanent || t.attempts >= config_.max_attempts) {
    AddError(job, t.spec.kind + " task " + std::to_string(t.id) + " failed after " +
                      std::to_string(t.attempts) + " attempt(s): " + error);
    ++job.info.counts.tasks_failed;
    ++counters_.failed;
    FinishTask(t, TaskState::kFailed);
    MaybeFinishJob(job, now);
    return;
  }
  ++job.info.counts.retries;
  ++counters_.retries;
  const int shift = static_cast<int>(std::min<uint32_t>(t.attempts - 1, 40));
  const int64_t delay = std::min(config_.backoff_max_ms, config_.backoff_base_ms << shift);
  t.state = TaskState::kBackoff;
  t.not_before_ms = now + std::max<int64_t>(0, delay);
  backoff_.insert({t.not_before_ms, t.id});
  ++counters_.backoff;
}

void Scheduler::FinishTask(Task& t, TaskState state) {
  t.state = state;
  --live_tasks_;
  JobEntry& job = jobs_.at(t.job);
  if (!t.spec.final) --job.unfinished_nonfinal;
  if (state == TaskState::kDone) ++job.info.counts.tasks_done;
}

void Scheduler::MaybeFinishJob(JobEntry& job, int64_t now) {
  if (job.unfinished_nonfinal == 0 && !job.held_final.empty()) {
    for (TaskId id : job.held_final) MakeReady(tasks_.at(id));
    job.held_final.clear();
    return;
  }
  const uint64_t finished = job.info.counts.tasks_done + job.info.counts.tasks_failed;
  if (finished < job.info.counts.tasks_total || IsFinal(job.info.state)) return;
  job.info.state = job.info.counts.tasks_failed > 0 ? JobState::kFailed : JobState::kSucceeded;
  job.info.finished_ms = now;
  for (TaskId id : job.tasks) tasks_.erase(id);
  job.tasks.clear();
  finished_jobs_.push_back(job.info.id);
}

void Scheduler::AddError(JobEntry& job, std::string error) {
  if (job.info.errors.size() < config_.max_errors_per_job) {
    job.info.errors.push_back(std::move(error));
  } else {
    ++job.info.errors_dropped;
  }
}

Result<Unit> Scheduler::Cancel(JobId id, int64_t now) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Errc::kUnknownJob;
  JobEntry& job = it->second;
  if (IsFinal(job.info.state)) return Errc::kJobFinished;
  UserQueue& uq = users_.at(job.info.spec.user);
  for (TaskId tid : job.tasks) {
    Task& t = tasks_.at(tid);
    switch (t.state) {
      case TaskState::kRunning:
        revoked_.push_back({t.id, t.token});
        EndLease(t);
        break;
      case TaskState::kBackoff:
        backoff_.erase({t.not_before_ms, t.id});
        --counters_.backoff;
        break;
      case TaskState::kPending: {
        auto r = std::find(uq.ready.begin(), uq.ready.end(), t.id);
        if (r != uq.ready.end()) {  // held final tasks are pending but not queued
          uq.ready.erase(r);
          --counters_.queued;
        }
        break;
      }
      default:
        continue;  // already finished
    }
    t.state = TaskState::kCancelled;
    --live_tasks_;
    tasks_.erase(tid);
  }
  if (uq.ready.empty() && uq.in_ring) {
    uq.in_ring = false;
    ring_.erase(std::find(ring_.begin(), ring_.end(), job.info.spec.user));
  }
  job.tasks.clear();
  job.held_final.clear();
  job.unfinished_nonfinal = 0;
  job.info.state = JobState::kCancelled;
  job.info.finished_ms = now;
  finished_jobs_.push_back(id);
  Forget();
  return Unit{};
}

void Scheduler::Forget() {
  while (jobs_.size() > config_.max_jobs && !finished_jobs_.empty()) {
    jobs_.erase(finished_jobs_.front());
    finished_jobs_.pop_front();
  }
}

Result<JobInfo> Scheduler::Job(JobId id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return Errc::kUnknownJob;
  return it->second.info;
}

std::vector<Revoked> Scheduler::TakeRevoked() {
  return std::exchange(revoked_, {});
}

int64_t Scheduler::NextWakeMs() const {
  int64_t t = kNever;
  if (!leases_.empty()) t = std::min(t, leases_.begin()->first);
  if (!backoff_.empty()) t = std::min(t, backoff_.begin()->first);
  return t;
}

SchedulerStats Scheduler::Stats() const {
  SchedulerStats s = counters_;
  s.running = running_;
  s.free_slots = running_ < capacity_ ? capacity_ - running_ : 0;
  s.jobs_live = jobs_.size() - finished_jobs_.size();
  return s;
}

}  // namespace chorus::broker::scheduler
