// Open-loop publishing at a fixed rate for cluster_bench (one code path for chorus and its
// peers, as fanout.h is for broker_bench): payload i carries its *scheduled* send time, so a
// publisher that falls behind its schedule shows up in the latency instead of hiding it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "fanout.h"

namespace chorus::bench {

// Publishes `count` payloads at `rate` per second through `publish(payload)` (the call also
// drains whatever the system answers), then waits (`drain` at most) until `rx` received all of
// them, `subs` times each (one per subscriber). `Rx` as for RunBursts: received() and TakeSamples()
// (stops its receiver). `complete` is false when a publication was not delivered in time.
template <typename Rx, typename PublishFn>
Figures RunPaced(Rx& rx, int count, double rate, PublishFn&& publish, size_t subs = 1,
                 std::chrono::milliseconds drain = std::chrono::seconds(5)) {
  const uint64_t expected = static_cast<uint64_t>(count) * subs;
  Figures f;
  const uint64_t start_ns = NowNs();
  const double period_ns = 1e9 / rate;
  for (int i = 0; i < count; ++i) {
    const uint64_t due = start_ns + static_cast<uint64_t>(i * period_ns);
    // Pacing the schedule, not synchronisation: nothing is waited for here.
    std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(due)));
    publish(Payload(due));
  }
  const auto deadline = Clock::now() + drain;
  while (rx.received() < expected && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // polling with a deadline
  }
  const double secs = static_cast<double>(NowNs() - start_ns) / 1e9;
  auto samples = rx.TakeSamples();
  f.delivered = rx.received();
  f.complete = f.delivered >= expected;
  f.msgs_per_s = static_cast<double>(f.delivered) / secs;
  f.p50_us = Percentile(samples, 0.50);
  f.p99_us = Percentile(samples, 0.99);
  return f;
}

// One paced run of a system: `count` publications at `rate`/s, measured with RunPaced.
using PacedRun = std::function<Figures(int count, double rate)>;

// The highest of `rates` (ascending) whose run of `seconds` each is complete with p99 under
// `p99_limit_us`; the search stops at the first rate that fails. 0 when the first fails.
inline double HighestRateUnder(const PacedRun& run, const std::vector<double>& rates,
                               double seconds, double p99_limit_us, Figures* at_best = nullptr) {
  double best = 0;
  for (double rate : rates) {
    const Figures f = run(static_cast<int>(rate * seconds), rate);
    if (!f.complete || f.p99_us >= p99_limit_us) break;
    best = rate;
    if (at_best != nullptr) *at_best = f;
  }
  return best;
}

}  // namespace chorus::bench
