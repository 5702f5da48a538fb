// CHP throughput benchmark on tcp loopback, in one run:
//   a) raw libzmq PUB->SUB messages/s (2 frames: 16-byte topic + 100-byte payload);
//   b) CHP Server::Put -> ReplicaAgent updates/s for 100-byte msgpack values, and the ratio to a);
//   c) snapshot transfer of one large subtree to a fresh replica (Follow -> AllLive);
//   d) one agent following many subtrees (default 100,000): time to sync all, steady-state
//      updates/s and CPU per update, time to detect a stale subtree (chp_bench_scale.cc).
// Ends with one machine-readable line: "RESULT chp_bench key=value ...".
//   chp_bench [--smoke] [--messages N] [--snapshot-keys N] [--scale-subtrees N] [--phases abcd]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "chp/agent.h"
#include "chp/log.h"
#include "chp/server.h"
#include "chp_bench_scale.h"
#include "chp_bench_util.h"

namespace {

using chorus::chp::Clock;
using std::chrono::milliseconds;

using chp_bench::kPayloadBytes;
using chp_bench::kUnlimitedHwm;
using chp_bench::PerMessageUs;
using chp_bench::ProcessCpuSeconds;
using chp_bench::Seconds;
using chp_bench::ThreadCpuSeconds;
using chp_bench::Value;

// ---------------------------------------------------------------------------------------------
// a) raw libzmq

struct RawResult {
  uint64_t received = 0;
  double seconds = 0;
  double per_s = 0;
  double send_cpu_s = 0;     // publisher thread CPU while sending
  double recv_cpu_s = 0;     // subscriber thread CPU while receiving
  double process_cpu_s = 0;  // every thread, the whole measurement
};

RawResult RunRaw(uint64_t messages) {
  zmq::context_t pub_ctx(1);
  zmq::context_t sub_ctx(1);
  zmq::socket_t pub(pub_ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, kUnlimitedHwm);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind("tcp://127.0.0.1:*");
  const std::string endpoint = pub.get(zmq::sockopt::last_endpoint);
  zmq::socket_t ack(pub_ctx, zmq::socket_type::pair);
  ack.bind("inproc://raw-ack");

  const std::string topic = "bench/topic-0001";  // 16 bytes
  const std::string probe = "probe/topic-0000";
  RawResult result;

  std::thread subscriber([&] {
    zmq::socket_t sub(sub_ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::rcvhwm, kUnlimitedHwm);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvtimeo, 5000);  // bounded wait if something goes wrong
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(endpoint);
    zmq::socket_t acker(pub_ctx, zmq::socket_type::pair);
    acker.connect("inproc://raw-ack");
    bool acked = false;
    zmq::message_t t;
    zmq::message_t body;
    Clock::time_point first{};
    Clock::time_point last{};
    uint64_t n = 0;
    double cpu0 = 0;
    while (n < messages) {
      if (!sub.recv(t) || !t.more() || !sub.recv(body)) break;  // timeout
      if (t.size() == probe.size() && std::memcmp(t.data(), probe.data(), probe.size()) == 0) {
        if (!acked) {
          acker.send(zmq::str_buffer("ok"), zmq::send_flags::none);
          acked = true;
        }
        continue;
      }
      last = Clock::now();
      if (n == 0) {
        first = last;
        cpu0 = ThreadCpuSeconds();
      }
      ++n;
    }
    result.recv_cpu_s = ThreadCpuSeconds() - cpu0;
    result.received = n;
    result.seconds = Seconds(last - first);
  });

  // Probe until the subscriber has seen one: from then on the subscription is active and every
  // message sent reaches it (no HWM).
  const std::string payload(kPayloadBytes, 'p');
  for (;;) {
    pub.send(zmq::buffer(probe), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(payload), zmq::send_flags::none);
    zmq::pollitem_t item{ack.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, milliseconds(10));
    if ((item.revents & ZMQ_POLLIN) != 0) break;
  }
  zmq::message_t ok;
  (void)ack.recv(ok);
  const double cpu0 = ThreadCpuSeconds();
  for (uint64_t i = 0; i < messages; ++i) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(payload), zmq::send_flags::none);
  }
  result.send_cpu_s = ThreadCpuSeconds() - cpu0;
  subscriber.join();
  if (result.received > 1 && result.seconds > 0) {
    result.per_s = static_cast<double>(result.received - 1) / result.seconds;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// b) CHP server -> replica

class CountingObserver : public chorus::chp::ReplicaObserver {
 public:
  void OnReset(std::string_view, const chorus::chp::Position&,
               const chorus::chp::EntryMap&) override {
    ++resets;
  }
  void OnChange(std::string_view, std::string_view, const chorus::chp::Record&) override {
    last = Clock::now();
    if (changes == 0) first = last;
    ++changes;
  }
  uint64_t changes = 0;
  uint64_t resets = 0;
  Clock::time_point first{};
  Clock::time_point last{};
};

struct ChpResult {
  uint64_t applied = 0;
  uint64_t lost = 0;
  double seconds = 0;
  double per_s = 0;
  double publish_s = 0;      // time the server took to issue every Set
  double send_cpu_s = 0;     // server thread CPU while issuing them
  double recv_cpu_s = 0;     // replica thread CPU while applying them
  double process_cpu_s = 0;  // every thread, the whole measurement
  chorus::chp::ReplicaStats replica;
  uint64_t published = 0;
  bool ok = false;
};

// A server that never drops at the publisher's HWM, so every figure counts every message.
chorus::chp::Result<std::unique_ptr<chorus::chp::Server>> CreateBenchServer(zmq::context_t& ctx) {
  chorus::chp::ServerOptions so;
  so.publisher_hwm = kUnlimitedHwm;
  return chorus::chp::Server::Create(ctx, so);
}

struct Endpoints {
  std::string command;
  std::string publisher;
};

ChpResult RunChp(uint64_t messages, size_t keys, size_t subtrees) {
  using namespace chorus::chp;
  std::vector<std::string> names;
  std::vector<std::string> key_list;
  for (size_t s = 0; s < subtrees; ++s) names.push_back("bench" + std::to_string(s));
  for (size_t k = 0; k < keys; ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "/k-%06zu", k);
    key_list.push_back(names[k % subtrees] + buf);  // e.g. "bench3/k-000123": 15 bytes
  }

  std::promise<Endpoints> bound;
  std::atomic<bool> replica_ready{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> server_done{false};
  ChpResult result;

  std::thread server_thread([&] {
    zmq::context_t ctx(1);
    auto server = CreateBenchServer(ctx);
    if (!server) {
      bound.set_value({});
      return;
    }
    Server& srv = **server;
    Value value;
    for (size_t k = 0; k < keys; ++k) (void)srv.Set(key_list[k], value.With(k));
    bound.set_value({srv.command_endpoint(), srv.publisher_endpoint()});
    while (!replica_ready.load() && !stop.load()) srv.RunOnce(milliseconds(1));
    const auto t0 = Clock::now();
    const double cpu0 = ThreadCpuSeconds();
    for (uint64_t i = 0; i < messages && !stop.load(std::memory_order_relaxed); ++i) {
      (void)srv.Put(key_list[i % keys], value.With(i));
      if (i % 1000 == 999) srv.RunOnce(milliseconds(0));
    }
    result.send_cpu_s = ThreadCpuSeconds() - cpu0;
    result.publish_s = Seconds(Clock::now() - t0);
    result.published = srv.stats().published;
    server_done = true;
    while (!stop.load()) srv.RunOnce(milliseconds(5));
  });

  const Endpoints ep = bound.get_future().get();
  if (ep.command.empty()) {
    stop = true;
    server_thread.join();
    return result;
  }

  {
    zmq::context_t ctx(1);
    AgentOptions ao;
    ao.endpoints = {ep.command};
    ao.rcv_hwm = kUnlimitedHwm;
    CountingObserver obs;
    ReplicaAgent agent(ctx, ao, &obs);
    for (const auto& n : names) (void)agent.Follow(n);
    const auto live_deadline = Clock::now() + std::chrono::seconds(20);
    while (!agent.AllLive() && Clock::now() < live_deadline) agent.RunOnce(milliseconds(10));
    if (agent.AllLive()) {
      const ReplicaStats before = agent.TotalReplicaStats();
      const double cpu0 = ThreadCpuSeconds();
      replica_ready = true;
      // Until every change arrived, or the server finished and nothing came for a second.
      uint64_t seen = 0;
      auto progress = Clock::now();
      const auto hard_deadline = Clock::now() + std::chrono::seconds(300);
      while (obs.changes < messages && Clock::now() < hard_deadline) {
        agent.RunOnce(milliseconds(10));
        const auto now = Clock::now();
        if (obs.changes != seen) {
          seen = obs.changes;
          progress = now;
        } else if (server_done.load() && now - progress > std::chrono::seconds(1)) {
          break;
        }
      }
      result.recv_cpu_s = ThreadCpuSeconds() - cpu0;
      const ReplicaStats after = agent.TotalReplicaStats();
      result.replica = after;
      result.replica.snapshots -= before.snapshots;
      result.replica.gaps -= before.gaps;
      result.replica.resumes -= before.resumes;
      result.replica.overflows -= before.overflows;
      result.applied = obs.changes;
      result.lost = messages - std::min(messages, obs.changes);
      result.seconds = Seconds(obs.last - obs.first);
      if (obs.changes > 1 && result.seconds > 0) {
        result.per_s = static_cast<double>(obs.changes - 1) / result.seconds;
      }
      result.ok = true;
    }
    stop = true;
  }
  server_thread.join();
  return result;
}

// ---------------------------------------------------------------------------------------------
// c) snapshot transfer

struct SnapshotResult {
  uint64_t keys = 0;
  double populate_s = 0;
  double seconds = 0;
  double per_s = 0;
  bool ok = false;
};

SnapshotResult RunSnapshot(uint64_t keys) {
  using namespace chorus::chp;
  std::promise<Endpoints> bound;
  std::atomic<bool> stop{false};
  SnapshotResult result;

  std::thread server_thread([&] {
    zmq::context_t ctx(1);
    auto server = CreateBenchServer(ctx);
    if (!server) {
      bound.set_value({});
      return;
    }
    Server& srv = **server;
    Value value;
    const auto t0 = Clock::now();
    for (uint64_t k = 0; k < keys; ++k) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "snap/k-%08" PRIu64, k);
      (void)srv.Set(buf, value.With(k));
    }
    result.populate_s = Seconds(Clock::now() - t0);
    bound.set_value({srv.command_endpoint(), srv.publisher_endpoint()});
    while (!stop.load()) srv.RunOnce(milliseconds(5));
  });

  const Endpoints ep = bound.get_future().get();
  if (!ep.command.empty()) {
    zmq::context_t ctx(1);
    AgentOptions ao;
    ao.endpoints = {ep.command};
    ao.rcv_hwm = kUnlimitedHwm;
    ao.request_timeout = std::chrono::seconds(30);  // a 1M-key snapshot is one long request
    ReplicaAgent agent(ctx, ao);
    const auto connect_deadline = Clock::now() + std::chrono::seconds(10);
    while (!agent.connected() && Clock::now() < connect_deadline) agent.RunOnce(milliseconds(10));
    if (agent.connected()) {
      const auto t0 = Clock::now();
      (void)agent.Follow("snap");
      const auto deadline = t0 + std::chrono::seconds(120);
      while (!agent.AllLive() && Clock::now() < deadline) agent.RunOnce(milliseconds(10));
      const auto t1 = Clock::now();
      const SubtreeReplica* r = agent.Find("snap");
      if (agent.AllLive() && r != nullptr) {
        result.keys = r->entries().size();
        result.seconds = Seconds(t1 - t0);
        result.per_s = result.seconds > 0 ? static_cast<double>(result.keys) / result.seconds : 0;
        result.ok = result.keys == keys;
      }
    }
  }
  stop = true;
  server_thread.join();
  return result;
}

struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
};

Spread SpreadOf(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

// One line per measurement; `tag` is "[round/rounds]" or "best".
void PrintRaw(const char* tag, const RawResult& r) {
  std::printf("a) raw zmq PUB->SUB %s: %" PRIu64 " received in %.3f s = %.0f msg/s\n", tag,
              r.received, r.seconds, r.per_s);
  std::printf("   CPU per message: process %.2f us (send thread %.2f, recv thread %.2f)\n",
              PerMessageUs(r.process_cpu_s, r.received), PerMessageUs(r.send_cpu_s, r.received),
              PerMessageUs(r.recv_cpu_s, r.received));
}

void PrintChp(const char* tag, const ChpResult& r, uint64_t messages) {
  std::printf("b) CHP set->replica %s: %" PRIu64
              " applied in %.3f s = %.0f updates/s (server issued them in %.3f s)\n",
              tag, r.applied, r.seconds, r.per_s, r.publish_s);
  std::printf("   CPU per message: process %.2f us (server thread %.2f, replica thread %.2f)\n",
              PerMessageUs(r.process_cpu_s, messages), PerMessageUs(r.send_cpu_s, messages),
              PerMessageUs(r.recv_cpu_s, r.applied));
  std::printf("   lost=%" PRIu64 " gaps=%" PRIu64 " resyncs: snapshots=%" PRIu64 " resumes=%" PRIu64
              " overflows=%" PRIu64 "\n",
              r.lost, r.replica.gaps, r.replica.snapshots, r.replica.resumes, r.replica.overflows);
}

void PrintSnapshot(const char* tag, const SnapshotResult& r) {
  std::printf("c) snapshot %s: %" PRIu64
              " keys in %.3f s = %.0f keys/s (server populated in %.3f s)\n",
              tag, r.keys, r.seconds, r.per_s, r.populate_s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CHP throughput benchmark (raw libzmq vs CHP, snapshot transfer)"};
  bool smoke = false;
  uint64_t messages = 0;
  uint64_t snapshot_keys = 0;
  int repeat = 0;
  size_t keys = 10'000;
  size_t subtrees = 10;
  std::string phases = "abcd";
  size_t scale_subtrees = 0;
  uint64_t scale_updates = 0;
  int scale_sweep_ms = 1000;
  size_t scale_sweep_rate = 25'000;
  app.add_flag("--smoke", smoke, "small sizes, one round (a few seconds)");
  app.add_option("--messages", messages, "messages for a) and b) (default 2000000; smoke 50000)");
  app.add_option("--snapshot-keys", snapshot_keys,
                 "keys in the snapshot of c) (default 1000000; smoke 100000)");
  app.add_option("--repeat", repeat,
                 "rounds of each measurement: a) and b) interleaved, the median of the rounds' "
                 "ratios reported (default 5; smoke 1)")
      ->check(CLI::Range(1, 100));
  app.add_option("--keys", keys, "keyspace of b)")->check(CLI::PositiveNumber);
  app.add_option("--subtrees", subtrees, "subtrees of b)")->check(CLI::Range(1, 1000));
  app.add_option("--phases", phases,
                 "measurements to run, e.g. \"b\" for profiling (default abcd)");
  app.add_option("--scale-subtrees", scale_subtrees,
                 "subtrees followed in d) (default 100000; smoke 2000)")
      ->check(CLI::Range(size_t{2}, size_t{1'000'000}));
  app.add_option("--scale-updates", scale_updates,
                 "steady-state updates in d) (default 1000000; smoke 20000)");
  app.add_option("--scale-sweep-ms", scale_sweep_ms, "the server's sweep_period in d) (CS-26)")
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--scale-sweep-rate", scale_sweep_rate,
                 "the server's max_sweep_rate in d) (CS-26; 0: no bound)");
  CLI11_PARSE(app, argc, argv);
  if (messages == 0) messages = smoke ? 50'000 : 2'000'000;
  if (snapshot_keys == 0) snapshot_keys = smoke ? 100'000 : 1'000'000;
  if (repeat == 0) repeat = smoke ? 1 : 5;
  if (scale_subtrees == 0) scale_subtrees = smoke ? 2'000 : 100'000;
  if (scale_updates == 0) scale_updates = smoke ? 20'000 : 1'000'000;
  chorus::chp::Log().set_level(spdlog::level::warn);
  const auto run = [&](char phase) { return phases.find(phase) != std::string::npos; };

  std::printf("chp_bench: messages=%" PRIu64 " keys=%zu subtrees=%zu snapshot_keys=%" PRIu64
              " payload=%zu bytes repeat=%d, tcp loopback\n",
              messages, keys, subtrees, snapshot_keys, kPayloadBytes, repeat);
  std::fflush(stdout);

  // Rounds interleave a) and b), in alternating order (ab, ba, ab...), so both see the same
  // machine load; each round gives one CHP/raw ratio, and the median of the rounds' ratios is
  // the figure (with its spread), less sensitive to one lucky or unlucky raw run than the ratio
  // of the best of each. The best round of each is still printed.
  bool ok = true;
  RawResult raw;
  ChpResult chp;
  SnapshotResult snap;
  std::vector<double> ratios;
  std::vector<double> cpu_ratios;
  for (int round = 1; round <= repeat; ++round) {
    char tag[32];
    std::snprintf(tag, sizeof tag, "[%d/%d]", round, repeat);
    RawResult r_raw;
    ChpResult r_chp;
    const auto run_raw = [&] {
      const double cpu0 = ProcessCpuSeconds();
      r_raw = RunRaw(messages);
      r_raw.process_cpu_s = ProcessCpuSeconds() - cpu0;
      PrintRaw(tag, r_raw);
      ok = ok && r_raw.received == messages;
      if (r_raw.per_s > raw.per_s) raw = r_raw;
    };
    const auto run_chp = [&] {
      const double cpu0 = ProcessCpuSeconds();
      r_chp = RunChp(messages, keys, subtrees);
      r_chp.process_cpu_s = ProcessCpuSeconds() - cpu0;
      PrintChp(tag, r_chp, messages);
      ok = ok && r_chp.ok && r_chp.applied > 0;
      if (r_chp.per_s > chp.per_s) chp = r_chp;
    };
    const bool raw_first = round % 2 == 1;
    if (run('a') && raw_first) run_raw();
    if (run('b')) run_chp();
    if (run('a') && !raw_first) run_raw();
    if (run('a') && run('b') && r_raw.per_s > 0) {
      ratios.push_back(r_chp.per_s / r_raw.per_s);
      const double raw_cpu = PerMessageUs(r_raw.process_cpu_s, r_raw.received);
      const double chp_cpu = PerMessageUs(r_chp.process_cpu_s, messages);
      cpu_ratios.push_back(chp_cpu > 0 ? raw_cpu / chp_cpu : 0);
      std::printf("   round %d: CHP/raw throughput ratio %.3f, CPU-cost ratio %.3f\n", round,
                  ratios.back(), cpu_ratios.back());
    }
    std::fflush(stdout);
  }
  for (int round = 1; round <= repeat && run('c'); ++round) {
    char tag[32];
    std::snprintf(tag, sizeof tag, "[%d/%d]", round, repeat);
    const SnapshotResult r = RunSnapshot(snapshot_keys);
    PrintSnapshot(tag, r);
    ok = ok && r.ok;
    if (r.ok && (!snap.ok || r.seconds < snap.seconds)) snap = r;
    std::fflush(stdout);
  }

  // d) once, after the others (it holds the machine for a while at full size).
  chp_bench::ScaleResult scale;
  if (run('d')) {
    scale = chp_bench::RunScale(scale_subtrees, scale_updates, scale_sweep_ms, scale_sweep_rate);
    chp_bench::PrintScale("(one run)", scale, raw.per_s);
    ok = ok && scale.ok;
    std::fflush(stdout);
  }

  const Spread ratio = SpreadOf(ratios);
  const Spread cpu_ratio = SpreadOf(cpu_ratios);
  std::printf("best of %d:\n", repeat);
  if (run('a')) PrintRaw("best", raw);
  if (run('b')) PrintChp("best", chp, messages);
  if (run('a') && run('b')) {
    // CPU-cost ratio: CPU spent per message by the whole process, raw / CHP: what the
    // throughput ratio tends to when the machine is CPU-bound, less disturbed by other load.
    std::printf(
        "   CHP/raw throughput ratio over %zu interleaved rounds: median %.3f (min %.3f, max "
        "%.3f; target >= 0.50); CPU-cost ratio: median %.3f (min %.3f, max %.3f)\n",
        ratios.size(), ratio.median, ratio.min, ratio.max, cpu_ratio.median, cpu_ratio.min,
        cpu_ratio.max);
  }
  if (run('c')) {
    PrintSnapshot("best", snap);
    std::printf("   snapshot target: < 2 s for 1M keys\n");
  }
  if (run('d')) chp_bench::PrintScale("(one run)", scale, raw.per_s);
  std::printf(
      "RESULT chp_bench raw_msgs_per_s=%.0f chp_updates_per_s=%.0f ratio=%.3f ratio_min=%.3f "
      "ratio_max=%.3f cpu_ratio=%.3f chp_lost=%" PRIu64 " snapshot_keys=%" PRIu64
      " snapshot_s=%.3f "
      "snapshot_keys_per_s=%.0f scale_subtrees=%zu scale_sync_all_s=%.3f scale_sync_all_cpu_s=%.3f "
      "scale_updates_per_s=%.0f scale_agent_cpu_us=%.2f scale_stale_detect_s=%.3f\n",
      raw.per_s, chp.per_s, ratio.median, ratio.min, ratio.max, cpu_ratio.median, chp.lost,
      snap.keys, snap.seconds, snap.per_s, scale.subtrees, scale.sync_all_s, scale.sync_all_cpu_s,
      scale.updates_per_s, scale.agent_cpu_us, scale.stale_detect_s);
  std::fflush(stdout);

  // Failure means a measurement could not be made (inexact count, no snapshot), not "slow".
  if (!ok) std::fprintf(stderr, "chp_bench: FAILED (a measurement did not complete)\n");
  return ok ? 0 : 1;
}
