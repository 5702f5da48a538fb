// A token bucket for per-connection operation rates (Limits::publications_per_second,
// Limits::channel_creations_per_second). Pure logic: the caller passes the time. Not
// thread-safe; each bucket belongs to one session on the engine thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace chorus::broker {

class TokenBucket {
 public:
  // Takes one token at `now_ms` from a bucket that refills `per_second` tokens each second and
  // holds at most one second's worth (a new bucket is full). `per_second` 0 = no limit (always
  // true). False (nothing taken) when the bucket is empty.
  bool Take(size_t per_second, int64_t now_ms) {
    if (per_second == 0) return true;
    const double cap = static_cast<double>(per_second);
    if (!started_) {
      started_ = true;
      tokens_ = cap;
    } else if (now_ms > last_ms_) {
      tokens_ = std::min(cap, tokens_ + cap * static_cast<double>(now_ms - last_ms_) / 1000.0);
    }
    last_ms_ = std::max(last_ms_, now_ms);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  bool started_ = false;
  double tokens_ = 0;
  int64_t last_ms_ = 0;
};

}  // namespace chorus::broker
