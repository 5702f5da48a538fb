// chorus-worker: an external worker process for the sync scheduler (docs/protocol/worker.md,
// CWP/1). It attaches to a node's worker endpoint, declares its slots and task kinds, and runs
// the leases it is given: the reference sync task's kinds (`list`, `sync`, `diff`, `finish`,
// on the same file system as the node) and `sleep` (payload: milliseconds, a diagnostic task
// without I/O for tests and benchmarks).
//
// Threads and ownership: the main thread owns the DEALER to the node and an inproc PULL; each
// of the `--slots` task threads owns one PUSH to that PULL and sends its heartbeats and
// results there; the main thread forwards them to the node. Leases reach the task threads on a
// bounded queue; a revoke sets the task's flag, which its next Heartbeat() returns as false.
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "broker/scheduler/bounded_queue.h"
#include "broker/scheduler/sync_task.h"
#include "broker/scheduler/worker_wire.h"

namespace sch = chorus::broker::scheduler;
namespace wire = chorus::broker::scheduler::wire;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};
const char* kResults = "inproc://chorus-worker-results";
constexpr int64_t kMaxSleepMs = 600'000;

struct Item {
  sch::Lease lease;
  std::shared_ptr<std::atomic<bool>> revoked;
};

bool Send(zmq::socket_t& s, const wire::Message& m) {
  const std::string f = wire::Encode(m);
  return s.send(zmq::message_t(f.data(), f.size()), zmq::send_flags::dontwait).has_value();
}

// A task thread's view of its lease: heartbeats go to the main thread at most every interval.
class Context final : public sch::TaskContext {
 public:
  Context(zmq::socket_t& push, const Item& item, int64_t interval_ms)
      : push_(push), item_(item), interval_(interval_ms), last_(Clock::now()) {}
  bool Heartbeat() override {
    if (item_.revoked->load() || g_stop.load()) return false;
    const auto now = Clock::now();
    if (now - last_ >= interval_) {
      last_ = now;
      (void)Send(push_, wire::HeartbeatMsg{item_.lease.task, item_.lease.token});
    }
    return true;
  }

 private:
  zmq::socket_t& push_;
  const Item& item_;
  std::chrono::milliseconds interval_;
  Clock::time_point last_;
};

sch::TaskOutcome Fail(std::string why, bool permanent = false) {
  sch::TaskOutcome o;
  o.ok = false;
  o.permanent = permanent;
  o.error = std::move(why);
  return o;
}

// Kind `sleep`: waits `payload` ms, heartbeating; ends early when the lease is revoked.
sch::TaskOutcome Sleep(const sch::Lease& l, sch::TaskContext& ctx) {
  int64_t ms = 0;
  try {
    ms = std::stoll(l.payload);
  } catch (const std::exception&) {  // the boundary: a malformed payload
    return Fail("sleep: payload must be milliseconds", true);
  }
  if (ms < 0 || ms > kMaxSleepMs) return Fail("sleep: payload out of 0..600000", true);
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    if (!ctx.Heartbeat()) return Fail("sleep: lease revoked");
    std::this_thread::sleep_for(
        std::min<Clock::duration>(end - Clock::now(), std::chrono::milliseconds(20)));
  }
  sch::TaskOutcome o;
  o.items_total = o.items_done = 1;
  return o;
}

void TaskLoop(zmq::context_t& zctx, sch::BoundedQueue<Item>& queue, sch::SyncTasks& sync,
              const std::atomic<int64_t>& hb_ms) {
  zmq::socket_t push(zctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(kResults);
  while (auto item = queue.Pop()) {
    Context ctx(push, *item, hb_ms.load());
    sch::TaskOutcome out;
    try {
      out = item->lease.kind == "sleep" ? Sleep(item->lease, ctx) : sync.Run(item->lease, ctx);
    } catch (const std::exception& e) {  // the boundary: a task's exception is its failure
      out = Fail(std::string("task threw: ") + e.what());
    }
    const std::string f =
        wire::Encode(wire::DoneMsg{item->lease.task, item->lease.token, std::move(out)});
    (void)push.send(zmq::message_t(f.data(), f.size()), zmq::send_flags::none);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chorus-worker: an external worker for a Chorus node's sync scheduler"};
  std::string endpoint;
  uint32_t slots = 1, pool = 4;
  std::vector<std::string> kinds{"list", "sync", "diff", "finish", "sleep"};
  app.add_option("--connect", endpoint, "the node's scheduler.worker_endpoint")->required();
  app.add_option("--slots", slots, "tasks run at once")
      ->check(CLI::Range(1u, wire::kMaxWorkerSlots));
  app.add_option("--kinds", kinds, "task kinds this worker runs")->delimiter(',');
  app.add_option("--catalog-pool", pool, "SQLite connections per catalog")
      ->check(CLI::Range(1u, 256u));
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  std::signal(SIGTERM, [](int) { g_stop.store(true); });

  sch::SyncConfig sc;
  sc.pool.size = pool;
  sch::SyncTasks sync(sc);
  zmq::context_t zctx(1);
  zmq::socket_t pull(zctx, zmq::socket_type::pull);
  pull.bind(kResults);
  zmq::socket_t dealer(zctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameBytes));
  dealer.connect(endpoint);

  sch::BoundedQueue<Item> queue(slots);
  std::atomic<int64_t> hb_ms{1000};
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < slots; ++i) {
    threads.emplace_back([&] { TaskLoop(zctx, queue, sync, hb_ms); });
  }
  std::map<sch::TaskId, std::shared_ptr<std::atomic<bool>>> running;  // main thread
  const wire::Hello hello{wire::kVersion, slots, kinds};
  (void)Send(dealer, hello);
  auto last_sent = Clock::now();
  int rc = 0;
  zmq::pollitem_t items[] = {{dealer.handle(), 0, ZMQ_POLLIN, 0},
                             {pull.handle(), 0, ZMQ_POLLIN, 0}};
  while (!g_stop.load()) {
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(hb_ms.load()));
    } catch (const zmq::error_t&) {  // EINTR from a signal
      continue;
    }
    if (items[1].revents & ZMQ_POLLIN) {  // a task thread's heartbeat or result
      zmq::message_t f;
      (void)pull.recv(f);
      std::string why;
      auto m = wire::Decode(f.to_string_view(), &why);
      if (auto* d = m ? std::get_if<wire::DoneMsg>(&*m) : nullptr) running.erase(d->task);
      (void)dealer.send(f, zmq::send_flags::dontwait);
      last_sent = Clock::now();
    }
    if (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t f;
      (void)dealer.recv(f);
      std::string why;
      auto m = wire::Decode(f.to_string_view(), &why);
      if (!m) {
        std::cerr << "chorus-worker: malformed message from the node: " << why << "\n";
      } else if (auto* w = std::get_if<wire::Welcome>(&*m)) {
        hb_ms.store(std::max<int64_t>(1, w->heartbeat_ms));
        std::cout << "chorus-worker: attached to " << endpoint << " as worker " << w->worker
                  << " (slots " << slots << ")" << std::endl;
      } else if (auto* l = std::get_if<wire::LeaseMsg>(&*m)) {
        if (running.size() >= slots) {  // a revoked task still winding down holds the thread
          (void)Send(dealer, wire::DoneMsg{l->lease.task, l->lease.token,
                                           Fail("worker busy: every slot is still running")});
        } else {
          auto flag = std::make_shared<std::atomic<bool>>(false);
          running[l->lease.task] = flag;
          (void)queue.TryPush(Item{l->lease, flag});
        }
      } else if (auto* r = std::get_if<wire::RevokeMsg>(&*m)) {
        auto it = running.find(r->task);
        if (it != running.end()) it->second->store(true);
      } else if (auto* e = std::get_if<wire::ErrorMsg>(&*m)) {
        std::cerr << "chorus-worker: node error " << e->code << ": " << e->message << "\n";
        if (e->code == static_cast<uint32_t>(wire::ErrorCode::kHelloFirst)) {
          (void)Send(dealer, hello);  // the node forgot us (restart, timeout): attach again
        } else if (e->code == static_cast<uint32_t>(wire::ErrorCode::kRefused)) {
          rc = 1;
          break;
        }
      }
    }
    if (Clock::now() - last_sent >= std::chrono::milliseconds(hb_ms.load())) {
      (void)Send(dealer, wire::Ping{});  // W-6: liveness while idle
      last_sent = Clock::now();
    }
  }
  g_stop.store(true);
  for (auto& [task, flag] : running) flag->store(true);
  queue.Close();
  for (auto& t : threads) t.join();
  return rc;
}
