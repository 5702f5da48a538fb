#include "cluster/meta_group.h"

#include <uv.h>
extern "C" {  // raft.h has no C++ guards
#include <raft.h>
#include <raft/uv.h>
}

#include <signal.h>

#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "cluster/meta_fsm.h"
#include "controller_loop.h"

namespace chorus::cluster {

struct MetaGroup::Impl {
  MetaGroupConfig config;
  // Loop-thread state.
  uv_loop_t loop{};
  uv_async_t wakeup{};
  raft_uv_transport transport{};
  raft_io io{};
  struct raft raft {};
  MetaFsm fsm;
  uv_timer_t tick{};
  uv_timer_t drain{};  // BeginStop's wait for appends in flight
  uint64_t drain_deadline = 0;
  bool tick_started = false;
  std::unique_ptr<detail::ControllerLoop> controller;  // with run_controller, after raft_start
  bool raft_started = false;
  bool raft_closed = false;  // OnRaftClosed ran
  bool stopping = false;
  // Cross-thread queue of tasks for the loop thread.
  std::mutex mu;
  std::deque<std::function<void()>> tasks;
  bool closed = false;  // guarded by mu: no task is accepted after Stop()
  std::thread thread;

  // Queues `task`; false when the group is stopping (the task is not run).
  bool Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) return false;
      tasks.push_back(std::move(task));
    }
    uv_async_send(&wakeup);
    return true;
  }

  static void OnWakeup(uv_async_t* handle) {
    auto* self = static_cast<Impl*>(handle->data);
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(self->mu);
      batch.swap(self->tasks);
    }
    for (auto& task : batch) task();
  }

  // Runs on the loop thread: closes raft and the async handle, so uv_run returns.
  static void OnTick(uv_timer_t* handle) {
    auto* self = static_cast<Impl*>(handle->data);
    if (self->controller && !self->stopping) {
      self->controller->Tick(static_cast<int64_t>(uv_now(&self->loop)));
    }
  }

  // Stopping takes two steps. BeginStop refuses new work and waits (a 2 ms timer, at most
  // kDrainMs) until every log entry appended is on disk and applied; FinishStop then closes
  // raft. libraft 0.15 crashes when raft_close cancels work in flight: a disk append (SIGSEGV
  // in the log's reference counts) or, seen in the e2e suite, a pending request (double free).
  static constexpr uint64_t kDrainMs = 1000;

  void BeginStop() {
    if (stopping) return;
    stopping = true;
    if (controller) controller->Stop();
    if (tick_started) {
      uv_timer_stop(&tick);
      uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
      tick_started = false;
    }
    if (!raft_started) return FinishStop();
    drain_deadline = uv_now(&loop) + kDrainMs;
    drain.data = this;
    uv_timer_init(&loop, &drain);
    uv_timer_start(&drain, &Impl::OnDrain, 0, 2);
  }

  static void OnDrain(uv_timer_t* handle) {
    auto* self = static_cast<Impl*>(handle->data);
    // Settled: every entry is on disk and applied, so no apply, barrier or change callback
    // is pending and raft_close has nothing to cancel.
    const raft_index last = raft_last_index(&self->raft);
    const bool settled = self->raft.last_stored >= last && raft_last_applied(&self->raft) >= last;
    if (!settled && uv_now(&self->loop) < self->drain_deadline) return;
    uv_timer_stop(handle);
    uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
    self->FinishStop();
  }

  void FinishStop() {
    if (raft_started) {
      raft.data = this;
      raft_close(&raft, &Impl::OnRaftClosed);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup), nullptr);
  }

  // libraft 0.15's io close callback can run twice (canonical/raft#341), freeing the address,
  // the log and the configuration again: seen as "double free" aborts on SIGTERM in the e2e
  // suite. The first run ends here: its frees are done, so the pointers are cleared and a second
  // run frees nothing (raft_free(NULL), an empty log, an empty configuration).
  static void OnRaftClosed(struct raft* r) {
    auto* self = static_cast<Impl*>(r->data);
    if (self->raft_closed) return;
    self->raft_closed = true;
    r->address = nullptr;
    r->log = raft_log{};
    raft_configuration_init(&r->configuration);
  }

  // Loop thread body. Initialisation result goes to `ready`.
  void Run(std::promise<Result<Unit>>& ready) {
    // A write to a peer that went away raises SIGPIPE in the writing thread; blocked here, the
    // write fails with EPIPE instead (libuv reports it, libraft reconnects). Only this thread's
    // mask changes, not the process's disposition.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    auto fail = [&ready](int stage) {
      (void)stage;
      ready.set_value(Errc::kRaft);
    };
    if (uv_loop_init(&loop) != 0) return fail(1);
    wakeup.data = this;
    if (uv_async_init(&loop, &wakeup, &Impl::OnWakeup) != 0) {
      uv_loop_close(&loop);
      return fail(2);
    }
    bool ok = raft_uv_tcp_init(&transport, &loop) == 0;
    bool io_ok = ok && raft_uv_init(&io, &loop, config.data_dir.c_str(), &transport) == 0;
    bool raft_ok =
        io_ok && raft_init(&raft, &io, fsm.fsm(), config.id, config.address.c_str()) == 0;
    if (raft_ok) {
      raft_configuration conf;
      raft_configuration_init(&conf);
      for (const auto& [id, addr] : config.voters) {
        if (raft_configuration_add(&conf, id, addr.c_str(), RAFT_VOTER) != 0) raft_ok = false;
      }
      // A node joining later (no voters given) starts with an empty configuration and waits
      // for the leader to add it.
      int rv = 0;
      if (raft_ok && !config.voters.empty()) rv = raft_bootstrap(&raft, &conf);
      if (!raft_ok || (rv != 0 && rv != RAFT_CANTBOOTSTRAP)) raft_ok = false;
      raft_configuration_close(&conf);
    }
    if (raft_ok) {
      raft_set_election_timeout(&raft, config.election_timeout_ms);
      raft_set_heartbeat_timeout(&raft, config.heartbeat_timeout_ms);
      raft_set_snapshot_threshold(&raft, config.snapshot_threshold);
      raft_set_pre_vote(&raft, true);
      raft_ok = raft_start(&raft) == 0;
      raft_started = raft_ok;
    }
    if (!raft_ok) {
      if (io_ok) {
        raft_close(&raft, nullptr);  // also closes io
      }
      uv_close(reinterpret_cast<uv_handle_t*>(&wakeup), nullptr);
      uv_run(&loop, UV_RUN_DEFAULT);
      if (io_ok) raft_uv_close(&io);
      if (ok) raft_uv_tcp_close(&transport);
      uv_loop_close(&loop);
      return fail(3);
    }
    if (config.run_controller) {
      controller = std::make_unique<detail::ControllerLoop>(&raft, &fsm, config);
      tick.data = this;
      uv_timer_init(&loop, &tick);
      uv_timer_start(&tick, &Impl::OnTick, config.tick_ms, config.tick_ms);
      tick_started = true;
    }
    ready.set_value(Unit{});
    uv_run(&loop, UV_RUN_DEFAULT);
    controller.reset();  // fails heartbeats still waiting for a barrier
    raft_uv_close(&io);
    raft_uv_tcp_close(&transport);
    uv_loop_close(&loop);
  }
};

namespace {

using Promise = std::shared_ptr<std::promise<Result<Unit>>>;

Errc FromRaft(int status) {
  if (status == 0) return Errc::kOk;
  if (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST) return Errc::kNotLeader;
  return Errc::kRaft;
}

void Settle(const Promise& promise, int status) {
  Errc e = FromRaft(status);
  promise->set_value(e == Errc::kOk ? Result<Unit>(Unit{}) : Result<Unit>(e));
}

// raft_add, then raft_assign(RAFT_STANDBY) once the first change is committed.
struct StandbyChange {
  struct raft_change change;  // first member: libraft hands back this pointer
  struct raft* raft = nullptr;
  MemberId id = 0;
  bool assigned = false;
  Promise promise;
};

void StandbyChanged(struct raft_change* change, int status) {
  auto* req = reinterpret_cast<StandbyChange*>(change);
  if (status == 0 && !req->assigned) {
    req->assigned = true;
    int rv = raft_assign(req->raft, &req->change, req->id, RAFT_STANDBY, &StandbyChanged);
    if (rv == 0) return;  // called again when committed
    status = rv;
  }
  Settle(req->promise, status);
  delete req;
}

struct BarrierRequest {
  struct raft_barrier barrier;  // first member
  Promise promise;
};

void BarrierDone(struct raft_barrier* barrier, int status) {
  auto* req = reinterpret_cast<BarrierRequest*>(barrier);
  Settle(req->promise, status);
  delete req;
}

}  // namespace

MetaGroup::MetaGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<MetaGroup>> MetaGroup::Start(const MetaGroupConfig& config) {
  if (config.id == 0 || config.address.empty() || config.data_dir.empty()) {
    return Errc::kInvalidArgument;
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  std::promise<Result<Unit>> ready;
  auto started = ready.get_future();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw, &ready] { raw->Run(ready); });
  Result<Unit> r = started.get();
  if (!r.ok()) {
    impl->thread.join();
    return r.error();
  }
  return std::unique_ptr<MetaGroup>(new MetaGroup(std::move(impl)));
}

MetaGroup::~MetaGroup() {
  Impl* impl = impl_.get();
  impl->Post([impl] { impl->BeginStop(); });
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    impl->closed = true;
  }
  impl->thread.join();
  // Tasks queued after the stop task never ran: complete their futures by destroying them
  // (their promises report broken_promise).
  impl->tasks.clear();
}

std::future<Result<Unit>> MetaGroup::Propose(Command cmd) {
  auto promise = std::make_shared<std::promise<Result<Unit>>>();
  auto future = promise->get_future();
  Impl* impl = impl_.get();
  bool queued = impl->Post([impl, promise, cmd = std::move(cmd)] {
    if (impl->stopping) {
      promise->set_value(Errc::kNotLeader);
      return;
    }
    auto r = chorus::cluster::Propose(&impl->raft, cmd,
                                      [promise](Result<Unit> done) { promise->set_value(done); });
    if (!r.ok()) promise->set_value(r.error());
  });
  if (!queued) promise->set_value(Errc::kNotLeader);
  return future;
}

std::future<MetaStatus> MetaGroup::Status() {
  auto promise = std::make_shared<std::promise<MetaStatus>>();
  auto future = promise->get_future();
  Impl* impl = impl_.get();
  bool queued = impl->Post([impl, promise] {
    MetaStatus s;
    if (!impl->stopping) {
      s.is_leader = raft_state(&impl->raft) == RAFT_LEADER;
      raft_id id = 0;
      const char* address = nullptr;
      raft_leader(&impl->raft, &id, &address);
      s.leader_id = id;
    }
    s.entries = impl->fsm.entries();
    s.map = impl->fsm.map();
    promise->set_value(std::move(s));
  });
  if (!queued) promise->set_value(MetaStatus{});
  return future;
}

std::future<Result<Unit>> MetaGroup::AddStandby(MemberId id, std::string address) {
  auto promise = std::make_shared<std::promise<Result<Unit>>>();
  auto future = promise->get_future();
  Impl* impl = impl_.get();
  bool queued = impl->Post([impl, promise, id, address = std::move(address)] {
    if (impl->stopping || raft_state(&impl->raft) != RAFT_LEADER) {
      promise->set_value(Errc::kNotLeader);
      return;
    }
    // Already in the configuration (added before, by this leader or an earlier one): done.
    for (unsigned i = 0; i < impl->raft.configuration.n; ++i) {
      if (impl->raft.configuration.servers[i].id == id) {
        promise->set_value(Unit{});
        return;
      }
    }
    auto* req = new StandbyChange{};
    req->raft = &impl->raft;
    req->id = id;
    req->promise = promise;
    int rv = raft_add(&impl->raft, &req->change, id, address.c_str(), &StandbyChanged);
    if (rv != 0) {
      Settle(promise, rv);
      delete req;
    }
  });
  if (!queued) promise->set_value(Errc::kNotLeader);
  return future;
}

std::future<Result<Unit>> MetaGroup::Barrier() {
  auto promise = std::make_shared<std::promise<Result<Unit>>>();
  auto future = promise->get_future();
  Impl* impl = impl_.get();
  bool queued = impl->Post([impl, promise] {
    if (impl->stopping || raft_state(&impl->raft) != RAFT_LEADER) {
      promise->set_value(Errc::kNotLeader);
      return;
    }
    auto* req = new BarrierRequest{};
    req->promise = promise;
    int rv = raft_barrier(&impl->raft, &req->barrier, &BarrierDone);
    if (rv != 0) {
      Settle(promise, rv);
      delete req;
    }
  });
  if (!queued) promise->set_value(Errc::kNotLeader);
  return future;
}

}  // namespace chorus::cluster

namespace chorus::cluster {

std::future<Result<Lease>> MetaGroup::SendHeartbeat(Heartbeat hb) {
  auto promise = std::make_shared<std::promise<Result<Lease>>>();
  auto future = promise->get_future();
  Impl* impl = impl_.get();
  bool queued = impl->Post([impl, promise, hb = std::move(hb)] {
    if (impl->stopping || !impl->controller) {
      promise->set_value(Errc::kNotLeader);
      return;
    }
    impl->controller->OnHeartbeat(hb, static_cast<int64_t>(uv_now(&impl->loop)), promise);
  });
  if (!queued) promise->set_value(Errc::kNotLeader);
  return future;
}

void MetaGroup::SendReport(ReplicaReport report) {
  Impl* impl = impl_.get();
  impl->Post([impl, report = std::move(report)] {
    if (!impl->stopping && impl->controller) impl->controller->OnReport(report);
  });
}

}  // namespace chorus::cluster
