#include "fanout.h"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace chorus::bench {

uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

std::string Payload(uint64_t t_ns) {
  char buf[128];
  const int n = snprintf(buf, sizeof buf, "{\"t\":%" PRIu64 ",\"p\":\"", t_ns);
  std::string s(buf, static_cast<size_t>(n));
  s.append(100 - s.size() - 2, 'x');
  s += "\"}";
  return s;
}

uint64_t SendTime(const char* data, size_t size) {
  static constexpr char kNeedle[] = "{\"t\":";
  const void* at = memmem(data, size, kNeedle, sizeof kNeedle - 1);
  if (at == nullptr) return 0;
  return strtoull(static_cast<const char*>(at) + sizeof kNeedle - 1, nullptr, 10);
}

double Percentile(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

double CpuSecondsOf(const std::string& stat_path) {
  FILE* f = fopen(stat_path.c_str(), "r");
  if (f == nullptr) return 0;
  char buf[1024];
  const size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');  // the command name may hold spaces
  unsigned long utime = 0, stime = 0;
  if (p == nullptr ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double CpuSeconds(int pid) {
  return CpuSecondsOf("/proc/" + std::to_string(pid) + "/stat");
}

}  // namespace chorus::bench
