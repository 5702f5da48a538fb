// chp_bench d): one replica agent following `subtrees` subtrees (one 100-byte key each) of one
// server, both on tcp loopback in this process (server on a thread of its own):
//   1. time to sync all: Follow every subtree, until AllLive;
//   2. steady state: `updates` sets round-robin over the subtrees; updates/s, agent thread CPU
//      per update, process CPU per update; and the agent's CPU with nothing changing (the
//      position sweep of CS-26 still arrives: n POSITIONs per sweep period);
//   3. time to detect a stale subtree: the agent stops polling; the server fills the link
//      (publisher and subscriber HWMs, LinkHwm, plus the TCP buffers) with sets of subtree 0,
//      then sets the probe subtree (its KVPUB is dropped at the full HWM) and runs 3 heartbeat
//      ticks (the probe's changed-subtree POSITION is usually dropped too); then the agent polls
//      again and we time until its copy of the probe reaches the server's position. When the
//      changed-subtree POSITION was dropped, only the sweep tells (reported as "by sweep").
#include "chp_bench_scale.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "chp/agent.h"
#include "chp/server.h"
#include "chp_bench_util.h"

namespace chp_bench {
namespace {

using namespace chorus::chp;
using std::chrono::milliseconds;

// Publisher and subscriber HWM: above the sweep's burst (half the subtrees per tick, CS-26),
// and small enough that the stale probe fills the link in about a second.
int LinkHwm(size_t subtrees) {
  return static_cast<int>(std::max<size_t>(10'000, subtrees));
}

class Counter : public ReplicaObserver {
 public:
  void OnChange(std::string_view, std::string_view, const Record&) override { ++changes; }
  uint64_t changes = 0;
};

std::string Name(size_t i) {
  return "sub" + std::to_string(i);
}

}  // namespace

ScaleResult RunScale(size_t subtrees, uint64_t updates, int sweep_ms, size_t sweep_rate) {
  ScaleResult result;
  result.subtrees = subtrees;
  const size_t probe = subtrees - 1;
  std::promise<std::string> bound;
  // Commands to the server thread: 1 steady updates, 2 stale probe; 0 when done.
  std::atomic<int> command{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> probe_seq{0};
  std::atomic<uint64_t> applied{0};  // steady-state updates the agent applied so far

  std::thread server_thread([&] {
    zmq::context_t ctx(1);
    ServerOptions so;
    so.publisher_hwm = LinkHwm(subtrees);
    so.sweep_period = milliseconds(sweep_ms);
    so.max_sweep_rate = sweep_rate;
    auto created = Server::Create(ctx, so);
    if (!created) {
      bound.set_value("");
      return;
    }
    Server& srv = **created;
    Value value;
    for (size_t i = 0; i < subtrees; ++i) (void)srv.Set(Name(i) + "/k", value.With(i));
    bound.set_value(srv.command_endpoint());
    while (!stop.load()) {
      const int c = command.load();
      if (c == 1) {
        // Paced: at most half the HWM ahead of the agent, so nothing is dropped.
        const uint64_t window = static_cast<uint64_t>(LinkHwm(subtrees)) / 2;
        for (uint64_t i = 0; i < updates; ++i) {
          (void)srv.Put(Name(i % subtrees) + "/k", value.With(i));
          if (i % 1000 == 999) srv.RunOnce(milliseconds(0));
          while (i >= applied.load() + window && !stop.load()) srv.RunOnce(milliseconds(0));
        }
        command = 0;
      } else if (c == 2) {
        // Both HWMs and the loopback TCP buffers (several MB): then every publication drops.
        const uint64_t fill = 4 * static_cast<uint64_t>(LinkHwm(subtrees)) + 400'000;
        for (uint64_t i = 0; i < fill; ++i) (void)srv.Put(Name(0) + "/k", value.With(i));
        auto pos = srv.Set(Name(probe) + "/k", value.With(1));
        if (pos) probe_seq = pos->seq;
        const auto until = Clock::now() + 3 * so.heartbeat_interval;
        while (Clock::now() < until) srv.RunOnce(milliseconds(5));
        command = 0;
      }
      srv.RunOnce(milliseconds(1));
    }
  });

  const std::string endpoint = bound.get_future().get();
  if (!endpoint.empty()) {
    zmq::context_t ctx(1);
    AgentOptions ao;
    ao.endpoints = {endpoint};
    ao.rcv_hwm = LinkHwm(subtrees);
    Counter counter;
    ReplicaAgent agent(ctx, ao, &counter);
    auto poll_until = [&](const auto& pred, std::chrono::seconds limit) {
      const auto deadline = Clock::now() + limit;
      while (!pred() && Clock::now() < deadline) agent.RunOnce(milliseconds(10));
      return pred();
    };
    // 1. Sync all.
    const auto t0 = Clock::now();
    const double sync_cpu0 = ProcessCpuSeconds();
    for (size_t i = 0; i < subtrees; ++i) (void)agent.Follow(Name(i));
    if (poll_until([&] { return agent.AllLive(); }, std::chrono::seconds(120))) {
      result.sync_all_s = Seconds(Clock::now() - t0);
      result.sync_all_cpu_s = ProcessCpuSeconds() - sync_cpu0;
      result.requests = agent.stats().requests;
      // 2. Steady state.
      const uint64_t before = counter.changes;
      const double cpu0 = ThreadCpuSeconds();
      const double pcpu0 = ProcessCpuSeconds();
      const auto u0 = Clock::now();
      command = 1;
      poll_until(
          [&] {
            applied = counter.changes - before;
            return counter.changes - before >= updates;
          },
          std::chrono::seconds(120));
      result.updates = updates;
      result.applied = counter.changes - before;
      const double secs = Seconds(Clock::now() - u0);
      result.updates_per_s = secs > 0 ? static_cast<double>(result.applied) / secs : 0;
      result.agent_cpu_us = PerMessageUs(ThreadCpuSeconds() - cpu0, result.applied);
      result.process_cpu_us = PerMessageUs(ProcessCpuSeconds() - pcpu0, updates);
      // Idle: 2 s with nothing changing (the sweep still runs).
      poll_until([&] { return command.load() == 0; }, std::chrono::seconds(10));
      const double idle0 = ThreadCpuSeconds();
      const auto i0 = Clock::now();
      poll_until([] { return false; }, std::chrono::seconds(2));
      result.idle_agent_cpu = (ThreadCpuSeconds() - idle0) / Seconds(Clock::now() - i0);
      // 3. Stale probe: the agent does not poll while the server fills the link.
      const SubtreeReplica* p = agent.Find(Name(probe));
      const uint64_t behind0 = p->stats().behind;
      command = 2;
      while (command.load() != 0) std::this_thread::sleep_for(milliseconds(1));  // the stall
      const auto r0 = Clock::now();
      const bool caught =
          poll_until([&] { return p->live() && p->position().seq >= probe_seq.load(); },
                     std::chrono::seconds(30));
      result.stale_detect_s = Seconds(Clock::now() - r0);
      // "behind" counts a POSITION ahead of the copy; a dropped KVPUB and a gap would not.
      result.stale_by_sweep = p->stats().behind > behind0 && result.stale_detect_s > 0.05;
      result.ok = caught && result.applied == updates;
    }
  }
  stop = true;
  server_thread.join();
  return result;
}

void PrintScale(const char* tag, const ScaleResult& r, double raw_per_s) {
  std::printf("d) %zu subtrees followed %s: sync all in %.3f s, process CPU %.3f s (%" PRIu64
              " requests)\n",
              r.subtrees, tag, r.sync_all_s, r.sync_all_cpu_s, r.requests);
  std::printf("   steady state: %" PRIu64 " of %" PRIu64
              " updates applied, %.0f updates/s (%.3f of raw zmq); CPU per update: agent thread "
              "%.2f us, process %.2f us\n",
              r.applied, r.updates, r.updates_per_s,
              raw_per_s > 0 ? r.updates_per_s / raw_per_s : 0, r.agent_cpu_us, r.process_cpu_us);
  std::printf("   idle (position sweep only): agent thread %.1f%% of a core\n",
              r.idle_agent_cpu * 100);
  std::printf("   stale subtree detected %.3f s after the agent polled again (%s)\n",
              r.stale_detect_s,
              r.stale_by_sweep ? "by a POSITION: sweep or changed-subtree tick"
                               : "by the update stream, its KVPUB was not dropped");
}

}  // namespace chp_bench
