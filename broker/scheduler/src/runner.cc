#include "broker/scheduler/runner.h"

#include <algorithm>
#include <cassert>
#include <exception>

namespace chorus::broker::scheduler {

using Clock = std::chrono::steady_clock;

std::string ValidateConfig(const RunnerConfig& c) {
  if (auto s = ValidateConfig(c.scheduler); !s.empty()) return s;
  if (c.heartbeat_interval_ms <= 0 || c.heartbeat_interval_ms >= c.scheduler.lease_ms) {
    return "heartbeat_interval_ms must be in (0, lease_ms)";
  }
  if (c.inbox_capacity < 16) return "inbox_capacity must be at least 16";
  if (c.spare_workers > 1024) return "spare_workers must be at most 1024";
  if (!c.in_process && c.workers.endpoint.empty()) {
    return "without in-process workers an external worker endpoint is needed";
  }
  if (c.workers.max_workers == 0 || c.workers.max_workers > 4096) {
    return "workers.max_workers must be in 1..4096";
  }
  if (c.workers.timeout_ms < 0) return "workers.timeout_ms must be >= 0";
  return {};
}

// A worker's view of its lease: Heartbeat() is false once the owner revoked it; otherwise it
// sends a renewal at most every heartbeat_interval_ms (dropped, not blocking, if the inbox is
// full: the next call tries again well before the lease ends).
class Runner::WorkerContext final : public TaskContext {
 public:
  WorkerContext(Runner& r, const Work& w) : r_(r), w_(w), last_(Clock::now()) {}
  bool Heartbeat() override {
    if (w_.revoked->load()) return false;
    const auto now = Clock::now();
    if (now - last_ >= std::chrono::milliseconds(r_.config_.heartbeat_interval_ms)) {
      last_ = now;
      (void)r_.inbox_.TryPush(HeartbeatMsg{w_.lease.task, w_.lease.token});
    }
    return true;
  }

 private:
  Runner& r_;
  const Work& w_;
  Clock::time_point last_;
};

Runner::Runner(RunnerConfig config, Executor executor, std::string* error)
    : config_(std::move(config)),
      executor_(std::move(executor)),
      start_(Clock::now()),
      inbox_(config_.inbox_capacity),
      work_(config_.scheduler.slots + config_.spare_workers) {
  assert(ValidateConfig(config_).empty());
  if (!config_.workers.endpoint.empty()) {
    std::string why;
    zctx_ = std::make_unique<zmq::context_t>(1);
    hub_ = WorkerHub::Start(
        *zctx_, config_.workers.endpoint,
        [this](WorkerHub::Inbound&& in) { return inbox_.Push(std::move(in)); }, &why);
    if (error != nullptr) *error = why;
  }
  owner_ = std::thread([this] { OwnerLoop(); });
  const uint32_t n = config_.in_process ? config_.scheduler.slots + config_.spare_workers : 0;
  for (uint32_t i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Runner::~Runner() {
  Stop();
}

int64_t Runner::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
}

void Runner::Stop() {
  if (stopped_.exchange(true)) return;
  (void)inbox_.Push(StopMsg{});
  owner_.join();
  inbox_.Close();
  hub_.reset();  // after Close: a hub blocked on a full inbox returns
  // API calls that raced with Stop get an answer, not a broken promise.
  while (auto m = inbox_.PopFor(std::chrono::milliseconds(0))) {
    if (auto* sub = std::get_if<SubmitMsg>(&*m)) sub->reply.set_value(Errc::kShuttingDown);
    if (auto* c = std::get_if<CancelMsg>(&*m)) c->reply.set_value(Errc::kShuttingDown);
    if (auto* st = std::get_if<StatusMsg>(&*m)) st->reply.set_value(Errc::kShuttingDown);
    if (auto* sm = std::get_if<StatsMsg>(&*m)) sm->reply.set_value(SchedulerStats{});
    if (auto* wm = std::get_if<WorkersMsg>(&*m)) wm->reply.set_value(WorkerStats{});
    if (auto* mm = std::get_if<MirrorMsg>(&*m)) mm->reply.set_value(StateMirror::Changes{});
    if (auto* am = std::get_if<AdoptMsg>(&*m)) am->reply.set_value(Errc::kShuttingDown);
  }
  work_.Close();
  for (auto& w : workers_) w.join();
}

Result<JobId> Runner::Submit(JobSpec spec, std::vector<TaskSpec> tasks) {
  SubmitMsg m{std::move(spec), std::move(tasks), {}};
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return Errc::kShuttingDown;
  return f.get();
}

Result<Unit> Runner::Cancel(JobId job) {
  CancelMsg m{job, {}};
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return Errc::kShuttingDown;
  return f.get();
}

Result<JobInfo> Runner::Status(JobId job) {
  StatusMsg m{job, {}};
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return Errc::kShuttingDown;
  return f.get();
}

SchedulerStats Runner::Stats() {
  StatsMsg m;
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return {};
  return f.get();
}

std::string Runner::worker_endpoint() const {
  return hub_ ? hub_->endpoint() : std::string();
}

Runner::WorkerStats Runner::Workers() {
  WorkersMsg m;
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return {};
  return f.get();
}

StateMirror::Changes Runner::MirrorChanges(size_t max) {
  MirrorMsg m{max, {}};
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return {};
  return f.get();
}

Result<std::vector<JobId>> Runner::Adopt(std::vector<StateEntry> state,
                                         std::vector<ChpRecord> held) {
  AdoptMsg m{std::move(state), std::move(held), {}};
  auto f = m.reply.get_future();
  if (!inbox_.Push(std::move(m))) return Errc::kShuttingDown;
  return f.get();
}

void Runner::OwnerLoop() {
  Scheduler s(config_.scheduler);
  if (hub_) sender_ = hub_->MakeSender();
  SetCapacity(s);
  bool stop = false;
  while (!stop) {
    const int64_t now = NowMs();
    const int64_t wake = s.NextWakeMs();
    const int64_t wait = std::clamp<int64_t>(wake == kNever ? 1000 : wake - now, 0, 1000);
    if (auto m = inbox_.PopFor(std::chrono::milliseconds(wait))) {
      Handle(*m, s, &stop);
      // Drain what else is waiting before dispatching (bounded: the inbox is).
      for (int i = 0; i < 256 && !stop; ++i) {
        auto more = inbox_.PopFor(std::chrono::milliseconds(0));
        if (!more) break;
        Handle(*more, s, &stop);
      }
    }
    if (stop) break;
    if (!remotes_.empty()) DetachSilent(s);
    std::vector<std::string> targets;  // where each admitted lease goes, in dispatch order
    auto leases =
        s.Dispatch(NowMs(), [&](const std::string& kind) { return Admit(kind, &targets); });
    for (size_t i = 0; i < leases.size(); ++i) {
      Work w{std::move(leases[i]), std::make_shared<std::atomic<bool>>(false), targets.at(i)};
      live_[w.lease.task] = w;
      Route(std::move(w));
    }
    for (const Revoked& r : s.TakeRevoked()) {
      auto it = live_.find(r.task);
      if (it != live_.end() && it->second.lease.token == r.token) {
        it->second.revoked->store(true);
        if (!it->second.rid.empty() && remotes_.count(it->second.rid) != 0) {
          (void)sender_->Send(it->second.rid, wire::RevokeMsg{r.task, r.token});
        }
        Released(it->second);
        live_.erase(it);
      }
    }
  }
  for (auto& [id, w] : live_) w.revoked->store(true);  // running tasks should wind down
  live_.clear();
  sender_.reset();  // this thread's socket
}

void Runner::Handle(Msg& m, Scheduler& s, bool* stop) {
  const int64_t now = NowMs();
  if (auto* sub = std::get_if<SubmitMsg>(&m)) {
    sub->reply.set_value(s.Submit(sub->spec, std::move(sub->tasks), now));
  } else if (auto* c = std::get_if<CancelMsg>(&m)) {
    c->reply.set_value(s.Cancel(c->job, now));
  } else if (auto* st = std::get_if<StatusMsg>(&m)) {
    st->reply.set_value(s.Job(st->job));
  } else if (auto* sm = std::get_if<StatsMsg>(&m)) {
    sm->reply.set_value(s.Stats());
  } else if (auto* wm = std::get_if<WorkersMsg>(&m)) {
    WorkerStats ws = worker_counters_;
    ws.attached = remotes_.size();
    for (const auto& [rid, r] : remotes_) {
      ws.slots += r.slots;
      ws.busy += r.busy;
    }
    wm->reply.set_value(ws);
  } else if (auto* mm = std::get_if<MirrorMsg>(&m)) {
    auto worker_of = [this](TaskId t) -> uint64_t {
      auto it = live_.find(t);
      if (it == live_.end() || it->second.rid.empty()) return 0;
      auto r = remotes_.find(it->second.rid);
      return r == remotes_.end() ? 0 : r->second.id;
    };
    mm->reply.set_value(mirror_.Diff(ToChpRecords(s, worker_of), mm->max));
  } else if (auto* am = std::get_if<AdoptMsg>(&m)) {
    auto adopted = s.Adopt(am->state, now);
    if (adopted) mirror_.Assume(am->held);
    am->reply.set_value(std::move(adopted));
  } else if (auto* in = std::get_if<WorkerHub::Inbound>(&m)) {
    HandleRemote(*in, s);
  } else if (auto* hb = std::get_if<HeartbeatMsg>(&m)) {
    (void)s.Heartbeat(hb->task, hb->token, now);  // a stale heartbeat is simply ignored
  } else if (auto* d = std::get_if<DoneMsg>(&m)) {
    auto it = live_.find(d->task);
    if (it != live_.end() && it->second.lease.token == d->token && it->second.rid.empty()) {
      Released(it->second);
      live_.erase(it);
    }
    (void)s.Complete(d->task, d->token, std::move(d->outcome), now);  // stale: ignored, counted
  } else {
    *stop = true;
  }
}

void Runner::WorkerLoop() {
  while (auto w = work_.Pop()) {
    WorkerContext ctx(*this, *w);
    TaskOutcome out;
    try {
      out = executor_(w->lease, ctx);
    } catch (const std::exception& e) {  // the boundary: a task's exception is its failure
      out = TaskOutcome{};
      out.ok = false;
      out.error = std::string("task threw: ") + e.what();
    }
    if (!w->revoked->load()) {
      (void)inbox_.Push(DoneMsg{w->lease.task, w->lease.token, std::move(out)});
    } else {
      // Revoked: report anyway so the fencing is exercised and counted, but never block on it.
      (void)inbox_.TryPush(DoneMsg{w->lease.task, w->lease.token, std::move(out)});
    }
  }
}

}  // namespace chorus::broker::scheduler
