// External workers over ZeroMQ (docs/protocol/worker.md, CWP/1): one test per WK rule against a
// real Runner with its worker endpoint on loopback. Raw-wire tests build frames by hand on a
// DEALER; the process tests run the real `chorus-worker` (kill -9 mid-task, the reference sync).
#include <gtest/gtest.h>
#include <signal.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/scheduler/runner.h"
#include "broker/scheduler/worker_wire.h"
#include "scheduler_sync_support.h"
#include "test_util.h"

namespace chorus::broker::scheduler {
namespace {

using chorus::testing::ChildProcess;
using chorus::testing::EventuallyTrue;
using std::chrono::milliseconds;
using Packer = msgpack::packer<msgpack::sbuffer>;

RunnerConfig Config(int64_t lease_ms = 5000, int64_t heartbeat_ms = 100) {
  RunnerConfig c;
  c.in_process = false;
  c.scheduler.slots = 1;  // in-process slots: unused without in-process workers
  c.scheduler.lease_ms = lease_ms;
  c.scheduler.backoff_base_ms = 20;
  c.scheduler.backoff_max_ms = 100;
  c.heartbeat_interval_ms = heartbeat_ms;
  c.workers.endpoint = "tcp://127.0.0.1:0";
  c.workers.max_workers = 2;
  c.workers.timeout_ms = 6 * heartbeat_ms;
  return c;
}

// A runner whose executor is never used (no in-process workers).
struct Node {
  explicit Node(RunnerConfig c)
      : runner(
            std::move(c), [](const Lease&, TaskContext&) { return TaskOutcome{}; }, &error) {}
  std::string error;
  Runner runner;
  std::string endpoint() const { return runner.worker_endpoint(); }
};

// A worker speaking raw frames on its own DEALER.
class RawWorker {
 public:
  explicit RawWorker(const std::string& endpoint) : ctx_(1), s_(ctx_, zmq::socket_type::dealer) {
    s_.set(zmq::sockopt::linger, 0);
    s_.connect(endpoint);
  }
  void SendFrame(const std::string& bytes) {
    (void)s_.send(zmq::message_t(bytes.data(), bytes.size()), zmq::send_flags::none);
  }
  void Send(const wire::Message& m) { SendFrame(wire::Encode(m)); }
  // The next message, or nullopt after `timeout` (decoding failures fail the test).
  std::optional<wire::Message> Recv(milliseconds timeout = milliseconds(3000)) {
    zmq::pollitem_t item{s_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t f;
    (void)s_.recv(f);
    std::string why;
    auto m = wire::Decode(f.to_string_view(), &why);
    EXPECT_TRUE(m) << why;
    return m;
  }
  // The next message of type T within `timeout`, skipping others; pings the node meanwhile.
  template <typename T>
  std::optional<T> Expect(milliseconds timeout = milliseconds(3000)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      auto m = Recv(milliseconds(50));
      if (m && std::holds_alternative<T>(*m)) return std::get<T>(*m);
      Send(wire::Ping{});
    }
    return std::nullopt;
  }
  uint32_t ExpectError(milliseconds timeout = milliseconds(3000)) {
    auto e = Expect<wire::ErrorMsg>(timeout);
    return e ? e->code : 0;
  }
  wire::Welcome Attach(uint32_t slots, std::vector<std::string> kinds) {
    Send(wire::Hello{wire::kVersion, slots, std::move(kinds)});
    auto w = Expect<wire::Welcome>();
    EXPECT_TRUE(w);
    return w.value_or(wire::Welcome{});
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t s_;
};

std::string Pack(const std::function<void(Packer&)>& f) {
  msgpack::sbuffer b;
  Packer p(b);
  f(p);
  return std::string(b.data(), b.size());
}

constexpr uint32_t kMalformed = 1, kHelloFirst = 2, kRefused = 3, kAlreadyAttached = 4;

Result<JobId> SubmitKinds(Runner& r, const std::vector<std::string>& kinds,
                          const std::string& payload = "") {
  std::vector<TaskSpec> tasks;
  for (const auto& k : kinds) tasks.push_back({k, payload, false});
  return r.Submit({"anna", "normal", "/src", "/catalog"}, std::move(tasks));
}

bool JobIs(Runner& r, JobId id, JobState s) {
  auto st = r.Status(id);
  return st && st->state == s;
}

TEST(SchedulerWorker, WK1_OneFrameMapUnknownKeysIgnoredMoreFramesRefused) {
  Node node(Config());
  ASSERT_EQ(node.error, "");
  RawWorker w(node.endpoint());
  w.SendFrame(Pack([](Packer& p) {
    p.pack_map(5);
    p.pack("type"), p.pack("hello"), p.pack("version"), p.pack(1), p.pack("slots"), p.pack(2);
    p.pack("kinds"), p.pack(std::vector<std::string>{"sleep"});
    p.pack("future_key"), p.pack("ignored");
  }));
  auto welcome = w.Expect<wire::Welcome>();
  ASSERT_TRUE(welcome);
  EXPECT_GT(welcome->worker, 0u);
  // Two frames in one message: refused.
  const std::string ping = wire::Encode(wire::Ping{});
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(node.endpoint());
  std::array<zmq::const_buffer, 2> two = {zmq::buffer(ping), zmq::buffer(ping)};
  ASSERT_TRUE(zmq::send_multipart(raw, two));
  zmq::pollitem_t item{raw.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, milliseconds(3000)), 1);
  zmq::message_t f;
  (void)raw.recv(f);
  std::string why;
  auto m = wire::Decode(f.to_string_view(), &why);
  ASSERT_TRUE(m && std::holds_alternative<wire::ErrorMsg>(*m));
  EXPECT_EQ(std::get<wire::ErrorMsg>(*m).code, kMalformed);
  EXPECT_EQ(node.runner.Workers().attached, 1u);
}

TEST(SchedulerWorker, WK2_MalformedFramesAreRefusedAndChangeNothing) {
  Node node(Config());
  RawWorker w(node.endpoint());
  const std::vector<std::string> bad = {
      std::string("\xc1", 1),  // not msgpack
      Pack([](Packer& p) {
        p.pack(std::vector<int>{1, 2});
      }),                                                                 // not a map
      Pack([](Packer& p) { p.pack_map(1), p.pack("type"), p.pack(5); }),  // type not a string
      Pack([](Packer& p) { p.pack_map(1), p.pack("type"), p.pack("nonsense"); }),
      Pack([](Packer& p) {  // slots of the wrong type
        p.pack_map(4), p.pack("type"), p.pack("hello"), p.pack("version"), p.pack(1);
        p.pack("slots"), p.pack("two"), p.pack("kinds"), p.pack(std::vector<std::string>{"a"});
      }),
      wire::Encode(wire::RevokeMsg{1, 1}),  // a type only nodes send
      wire::Encode(wire::Welcome{1, 1, 1, 1}),
  };
  for (const auto& frame : bad) {
    w.SendFrame(frame);
    EXPECT_EQ(w.ExpectError(), kMalformed);
  }
  EXPECT_EQ(node.runner.Workers().attached, 0u);
  // An attached worker's malformed `done` changes nothing either.
  w.Attach(1, {"sleep"});
  auto job = SubmitKinds(node.runner, {"sleep"});
  ASSERT_TRUE(job);
  auto lease = w.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(lease);
  w.SendFrame(Pack([&](Packer& p) {
    p.pack_map(4), p.pack("type"), p.pack("done"), p.pack("task"), p.pack(lease->lease.task);
    p.pack("token"), p.pack("not a token"), p.pack("ok"), p.pack(true);
  }));
  EXPECT_EQ(w.ExpectError(), kMalformed);
  auto st = node.runner.Status(*job);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::kRunning);
  EXPECT_EQ(st->counts.tasks_done, 0u);
  EXPECT_EQ(st->counts.tasks_running, 1u);
  w.Send(wire::DoneMsg{lease->lease.task, lease->lease.token, TaskOutcome{}});
  EXPECT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); }));
}

TEST(SchedulerWorker, WK3_HelloFirstAndOnlyOnce) {
  Node node(Config());
  RawWorker w(node.endpoint());
  w.Send(wire::HeartbeatMsg{1, 1});
  EXPECT_EQ(w.ExpectError(), kHelloFirst);
  w.Send(wire::DoneMsg{1, 1, TaskOutcome{}});
  EXPECT_EQ(w.ExpectError(), kHelloFirst);
  EXPECT_EQ(node.runner.Workers().attached, 0u);
  w.Attach(3, {"sleep"});
  w.Send(wire::Hello{wire::kVersion, 5, {"sleep"}});
  EXPECT_EQ(w.ExpectError(), kAlreadyAttached);
  const auto ws = node.runner.Workers();
  EXPECT_EQ(ws.attached, 1u);
  EXPECT_EQ(ws.slots, 3u);  // the second hello changed nothing
}

TEST(SchedulerWorker, WK4_HelloIsValidatedAndWelcomed) {
  Node node(Config(5000, 100));
  const std::vector<wire::Hello> refused = {
      {2, 1, {"sleep"}},                  // version
      {1, 0, {"sleep"}},                  // no slots
      {1, 1025, {"sleep"}},               // too many slots
      {1, 1, {}},                         // no kinds
      {1, 1, {""}},                       // empty kind
      {1, 1, {std::string(65, 'k')}},     // kind too long
      {1, 1, {std::string("a\x01", 2)}},  // not printable
  };
  for (const auto& h : refused) {
    RawWorker w(node.endpoint());
    w.Send(h);
    EXPECT_EQ(w.ExpectError(), kRefused);
  }
  EXPECT_EQ(node.runner.Workers().attached, 0u);
  EXPECT_EQ(node.runner.Workers().hellos_refused, refused.size());
  RawWorker a(node.endpoint()), b(node.endpoint()), c(node.endpoint());
  const wire::Welcome wa = a.Attach(2, {"sleep"});
  EXPECT_EQ(wa.lease_ms, 5000);
  EXPECT_EQ(wa.heartbeat_ms, 100);
  EXPECT_EQ(wa.timeout_ms, 600);
  const wire::Welcome wb = b.Attach(3, {"sleep"});
  EXPECT_NE(wa.worker, wb.worker);
  c.Send(wire::Hello{wire::kVersion, 1, {"sleep"}});  // max_workers = 2
  EXPECT_EQ(c.ExpectError(), kRefused);
  EXPECT_EQ(node.runner.Stats().free_slots, 5u);  // the workers' slots are the capacity
}

TEST(SchedulerWorker, WK5_NoMoreLeasesThanSlotsAndOnlyDeclaredKinds) {
  Node node(Config());
  RawWorker a(node.endpoint());
  a.Attach(2, {"a"});
  auto job = SubmitKinds(node.runner, {"a", "a", "a", "b"});
  ASSERT_TRUE(job);
  auto l1 = a.Expect<wire::LeaseMsg>(), l2 = a.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(l1 && l2);
  EXPECT_EQ(l1->lease.kind, "a");
  EXPECT_EQ(l2->lease.kind, "a");
  EXPECT_EQ(node.runner.Workers().busy, 2u);
  // Both slots busy: nothing more for this worker until one ends.
  EXPECT_FALSE(a.Expect<wire::LeaseMsg>(milliseconds(300)));
  a.Send(wire::DoneMsg{l1->lease.task, l1->lease.token, TaskOutcome{}});
  auto l3 = a.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(l3);
  EXPECT_EQ(l3->lease.kind, "a");
  a.Send(wire::DoneMsg{l2->lease.task, l2->lease.token, TaskOutcome{}});
  a.Send(wire::DoneMsg{l3->lease.task, l3->lease.token, TaskOutcome{}});
  // Kind b is never leased to a worker that did not declare it, even with its slots free.
  ASSERT_TRUE(EventuallyTrue([&] { return node.runner.Status(*job)->counts.tasks_done == 3; }));
  EXPECT_FALSE(a.Expect<wire::LeaseMsg>(milliseconds(300)));
  EXPECT_EQ(node.runner.Stats().queued, 1u);
  RawWorker b(node.endpoint());
  b.Attach(1, {"b"});
  auto lb = b.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->lease.kind, "b");
  b.Send(wire::DoneMsg{lb->lease.task, lb->lease.token, TaskOutcome{}});
  EXPECT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); }));
}

TEST(SchedulerWorker, WK6_ASilentWorkerIsDetachedAndMayAttachAgain) {
  Node node(Config(5000, 100));  // timeout 600 ms
  RawWorker w(node.endpoint());
  w.Attach(4, {"sleep"});
  EXPECT_EQ(node.runner.Stats().free_slots, 4u);
  ASSERT_TRUE(EventuallyTrue([&] { return node.runner.Workers().attached == 0; }));
  EXPECT_EQ(node.runner.Workers().detached, 1u);
  EXPECT_EQ(node.runner.Stats().free_slots, 0u);
  w.Send(wire::Ping{});
  EXPECT_EQ(w.ExpectError(), kHelloFirst);
  w.Attach(4, {"sleep"});
  EXPECT_EQ(node.runner.Workers().attached, 1u);
}

TEST(SchedulerWorker, WK7_HeartbeatsRenewTheLeaseAndAForeignOneIsRevoked) {
  Node node(Config(400, 100));
  RawWorker w(node.endpoint()), other(node.endpoint());
  w.Attach(1, {"sleep"});
  other.Attach(1, {"other"});
  auto job = SubmitKinds(node.runner, {"sleep"});
  ASSERT_TRUE(job);
  auto l = w.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(l);
  // Three lease lengths of heartbeats every 100 ms: the lease never expires.
  for (int i = 0; i < 12; ++i) {
    w.Send(wire::HeartbeatMsg{l->lease.task, l->lease.token});
    other.Send(wire::Ping{});
    EXPECT_FALSE(w.Recv(milliseconds(100)));
  }
  EXPECT_EQ(node.runner.Stats().leases_expired, 0u);
  // A stale token, and another worker's heartbeat with the right token: revoked, not renewed.
  w.Send(wire::HeartbeatMsg{l->lease.task, l->lease.token + 1});
  auto r = w.Expect<wire::RevokeMsg>();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->token, l->lease.token + 1);
  other.Send(wire::HeartbeatMsg{l->lease.task, l->lease.token});
  auto r2 = other.Expect<wire::RevokeMsg>();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->task, l->lease.task);
  w.Send(wire::DoneMsg{l->lease.task, l->lease.token, TaskOutcome{}});
  EXPECT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); }));
  EXPECT_EQ(node.runner.Stats().leases_expired, 0u);
}

// WK-8 (stale and foreign results ignored) after WK-9 (expiry, revoke, retry with a new token).
TEST(SchedulerWorker, WK8_WK9_AStaleTokenIsIgnoredAfterTheLeaseExpired) {
  Node node(Config(300, 100));
  RawWorker w(node.endpoint()), other(node.endpoint());
  w.Attach(1, {"sleep"});
  other.Attach(1, {"other"});
  auto job = SubmitKinds(node.runner, {"sleep"});
  ASSERT_TRUE(job);
  auto first = w.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->lease.attempt, 1u);
  // No heartbeat (pings only, so the worker stays attached): the lease expires and is revoked,
  // then the task is leased again (attempt 2, a new token).
  auto revoke = w.Expect<wire::RevokeMsg>();
  ASSERT_TRUE(revoke);
  EXPECT_EQ(revoke->token, first->lease.token);
  auto second = w.Expect<wire::LeaseMsg>();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->lease.task, first->lease.task);
  EXPECT_EQ(second->lease.attempt, 2u);
  EXPECT_NE(second->lease.token, first->lease.token);
  EXPECT_EQ(node.runner.Stats().leases_expired, 1u);
  // The late result of attempt 1, and the right token from a worker not holding the lease.
  TaskOutcome bad;
  bad.items_done = 99;
  w.Send(wire::DoneMsg{first->lease.task, first->lease.token, bad});
  other.Send(wire::DoneMsg{second->lease.task, second->lease.token, bad});
  ASSERT_TRUE(EventuallyTrue([&] { return node.runner.Stats().stale_results == 2; }));
  auto st = node.runner.Status(*job);
  EXPECT_EQ(st->state, JobState::kRunning);
  EXPECT_EQ(st->counts.items_done, 0u);
  w.Send(wire::HeartbeatMsg{second->lease.task, second->lease.token});
  TaskOutcome good;
  good.items_total = good.items_done = 1;
  w.Send(wire::DoneMsg{second->lease.task, second->lease.token, good});
  ASSERT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); }));
  EXPECT_EQ(node.runner.Status(*job)->counts.items_done, 1u);
}

// WK-9 (a dead worker holds no slot past its lease) and WK-10 (the task runs again: at least once).
TEST(SchedulerWorker, WK9_WK10_AKilledWorkersLeaseExpiresAndTheTaskRunsAgainElsewhere) {
  // Detached 300 ms after its last message, before its lease (500 ms) expires: the retry can
  // only go to B. (With a longer timeout the retry may go to the dead A first and expire again.)
  RunnerConfig c = Config(500, 100);
  c.workers.timeout_ms = 300;
  Node node(c);
  ChildProcess a(CHORUS_WORKER_BIN,
                 {"--connect", node.endpoint(), "--slots", "1", "--kinds", "sleep"});
  ASSERT_NE(a.ReadLine().find("attached"), std::string::npos);
  auto job = SubmitKinds(node.runner, {"sleep"}, "3000");
  ASSERT_TRUE(job);
  ASSERT_TRUE(EventuallyTrue([&] { return node.runner.Workers().busy == 1; }));
  a.Signal(SIGKILL);  // mid-task: the sleep lasts 3 s
  a.Wait();
  ChildProcess b(CHORUS_WORKER_BIN,
                 {"--connect", node.endpoint(), "--slots", "1", "--kinds", "sleep"});
  ASSERT_NE(b.ReadLine().find("attached"), std::string::npos);
  ASSERT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); },
                             std::chrono::seconds(15)));
  const auto st = node.runner.Status(*job);
  EXPECT_EQ(st->counts.leases_expired, 1u);
  EXPECT_EQ(st->counts.retries, 1u);
  EXPECT_EQ(st->counts.tasks_done, 1u);
  EXPECT_EQ(node.runner.Workers().detached, 1u);  // A, once silent
}

TEST(SchedulerWorker, ChorusWorkerRunsTheReferenceSyncTask) {
  testing::TempDir dir;
  for (int i = 0; i < 40; ++i) {
    testing::WriteFile(dir / ("src/d" + std::to_string(i % 4) + "/f" + std::to_string(i)),
                       "content " + std::to_string(i));
  }
  Node node(Config(5000, 100));
  ChildProcess worker(CHORUS_WORKER_BIN, {"--connect", node.endpoint(), "--slots", "2"});
  ASSERT_NE(worker.ReadLine().find("attached"), std::string::npos);
  const JobSpec spec{"anna", "normal", dir / "src", dir / "catalog.db"};
  auto job = node.runner.Submit(spec, SyncTasks::FirstTasks());
  ASSERT_TRUE(job);
  ASSERT_TRUE(EventuallyTrue([&] { return JobIs(node.runner, *job, JobState::kSucceeded); },
                             std::chrono::seconds(15)));
  EXPECT_EQ(node.runner.Status(*job)->counts.items_done, 40u);
  CatalogPool pool(dir / "catalog.db", PoolConfig{});
  EXPECT_EQ(testing::CatalogRows(pool, SyncTasks::Scope(spec)), testing::Expected(dir / "src"));
}

}  // namespace
}  // namespace chorus::broker::scheduler
