// chp_bench part d): one agent following many subtrees of one server (issue 11, "Scale to
// 100,000 followed subtrees"). See chp_bench_scale.cc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chp_bench {

struct ScaleResult {
  size_t subtrees = 0;
  double sync_all_s = 0;      // Follow of every subtree -> AllLive
  double sync_all_cpu_s = 0;  // process CPU (every thread) meanwhile: less disturbed by load
  uint64_t requests = 0;      // ICANHAZ sent for it
  uint64_t updates = 0;       // steady state: updates issued, round-robin over the subtrees
  uint64_t applied = 0;
  double updates_per_s = 0;
  double agent_cpu_us = 0;      // agent thread CPU per applied update
  double process_cpu_us = 0;    // every thread (server, agent, libzmq) per update
  double idle_agent_cpu = 0;    // agent thread CPU share (of one core) with nothing changing
  double stale_detect_s = 0;    // stale probe: resume of the stalled agent -> probe caught up
  bool stale_by_sweep = false;  // the probe's own POSITION after the change was dropped too
  bool ok = false;
};

// Runs the whole of d) with `subtrees` subtrees and `updates` steady-state updates.
// sweep_ms, sweep_rate: the server's sweep_period and max_sweep_rate (CS-26).
ScaleResult RunScale(size_t subtrees, uint64_t updates, int sweep_ms = 1000,
                     size_t sweep_rate = 25'000);
void PrintScale(const char* tag, const ScaleResult& r, double raw_per_s);

}  // namespace chp_bench
