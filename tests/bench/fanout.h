// The fan-out measurement shared by broker_bench and its peers (tests/bench/peer_*.h): one
// publisher, N subscribers, 100-byte JSON payloads carrying their send time, published in
// bursts, each burst delivered to every subscriber before the next. Every system under test is
// measured by this same code so the ratios compare like with like (docs/benchmarks.md);
// ws_fanout and its Nchan peer (nchan_fanout.h) use its payload, quantile and CPU helpers too.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace chorus::bench {

using Clock = std::chrono::steady_clock;

// Steady-clock nanoseconds (the time stamp inside a payload).
uint64_t NowNs();

// A 100-byte JSON payload `{"t":<ns>,"p":"xxx…"}` carrying the send time.
std::string Payload(uint64_t t_ns);

// The send time out of a frame or message holding a payload; 0 when there is none.
uint64_t SendTime(const char* data, size_t size);

// The q-quantile of `v` in microseconds (reorders `v`).
double Percentile(std::vector<uint32_t>& v, double q);

// CPU seconds (user + system) from a /proc stat file (/proc/<pid>/stat,
// /proc/<pid>/task/<tid>/stat); 0 when unreadable.
double CpuSecondsOf(const std::string& stat_path);

// CPU seconds process `pid` has used (/proc/<pid>/stat); 0 when unreadable.
double CpuSeconds(int pid);

struct Figures {
  double msgs_per_s = 0;  // deliveries (publications x subscribers) per second
  double p50_us = 0;      // publish -> receipt
  double p99_us = 0;
  uint64_t delivered = 0;
  bool complete = true;  // every burst reached every subscriber (and, where the system
                         // answers a publish, every publish was answered without error)
};

// Counts deliveries and keeps their latencies. Owner: one receiver thread calls Record and
// Commit; any thread reads received(); Take only once that receiver thread has stopped.
class Deliveries {
 public:
  Deliveries() { samples_.reserve(1 << 21); }
  // Records one received message; messages without a send time (replies, probes) are ignored.
  void Record(const char* data, size_t size) {
    const uint64_t t = SendTime(data, size);
    if (t == 0) return;
    const uint64_t lat = NowNs() - t;
    if (samples_.size() < samples_.capacity()) {
      samples_.push_back(static_cast<uint32_t>(std::min<uint64_t>(lat, UINT32_MAX)));
    }
    ++count_;
  }
  // Makes the count recorded so far visible to received().
  void Commit() { received_.store(count_, std::memory_order_release); }
  uint64_t received() const { return received_.load(std::memory_order_acquire); }
  std::vector<uint32_t> Take() { return std::move(samples_); }

 private:
  std::vector<uint32_t> samples_;
  uint64_t count_ = 0;
  std::atomic<uint64_t> received_{0};
};

// Publishes `messages` payloads in bursts of `burst` through `publish(payload)`, waiting (20 s
// at most) for each burst to reach all `subs` subscribers before the next. `Rx` has
// `uint64_t received() const` and `std::vector<uint32_t> TakeSamples()` (stops its receiver).
template <typename Rx, typename PublishFn>
Figures RunBursts(Rx& rx, size_t subs, int messages, int burst, PublishFn&& publish) {
  Figures f;
  const auto start = Clock::now();
  uint64_t expected = 0;
  for (int sent = 0; sent < messages;) {
    const int n = std::min(burst, messages - sent);
    for (int i = 0; i < n; ++i) publish(Payload(NowNs()));
    sent += n;
    expected += static_cast<uint64_t>(n) * subs;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (rx.received() < expected && Clock::now() < deadline) std::this_thread::yield();
    if (rx.received() < expected) {
      f.complete = false;
      break;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  auto samples = rx.TakeSamples();
  f.delivered = rx.received();
  f.msgs_per_s = static_cast<double>(f.delivered) / secs;
  f.p50_us = Percentile(samples, 0.50);
  f.p99_us = Percentile(samples, 0.99);
  return f;
}

}  // namespace chorus::bench
