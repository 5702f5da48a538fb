// Helpers shared by the parts of chp_bench (chp_bench.cc, chp_bench_scale.cc): clocks, CPU
// time and the 100-byte msgpack value every measurement sends.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include "chp/loop.h"

namespace chp_bench {

using chorus::chp::Clock;

inline constexpr size_t kPayloadBytes = 100;
inline constexpr int kUnlimitedHwm = 0;  // zmq: 0 = no limit, so nothing is dropped at the HWM

inline double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time of the whole process (every thread, libzmq's I/O threads included), in seconds.
inline double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

inline double PerMessageUs(double cpu_s, uint64_t n) {
  return n > 0 ? cpu_s * 1e6 / static_cast<double>(n) : 0;
}

// CPU time of the calling thread, in seconds: a figure that the load of other processes on a
// shared machine disturbs less than wall time.
inline double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A 100-byte msgpack value: bin 8 header (2 bytes) + 98 bytes, the first 8 of them a counter so
// consecutive values differ.
class Value {
 public:
  Value() {
    buf_.assign(kPayloadBytes, 'v');
    buf_[0] = static_cast<char>(0xc4);
    buf_[1] = static_cast<char>(kPayloadBytes - 2);
  }
  std::string_view With(uint64_t n) {
    std::memcpy(buf_.data() + 2, &n, sizeof n);
    return buf_;
  }

 private:
  std::string buf_;
};

}  // namespace chp_bench
