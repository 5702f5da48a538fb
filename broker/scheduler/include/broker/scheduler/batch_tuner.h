// BatchTuner: seed 001's "calculate [BATCH SIZE] using historical data". Multiplicative growth
// while writes are fast, halving when they are slow or fail; at the minimum size a failure means
// "skip ahead" (the caller gives up on that row). Pure value, owned by one task.
#pragma once

#include <algorithm>
#include <cstdint>

namespace chorus::broker::scheduler {

struct BatchTunerConfig {
  uint32_t min = 1, max = 512, initial = 32;
  int64_t target_latency_us = 50'000;  // a batch slower than this shrinks the next one
};

class BatchTuner {
 public:
  explicit BatchTuner(BatchTunerConfig c, uint32_t remembered = 0)
      : c_(c), size_(std::clamp(remembered ? remembered : c.initial, c.min, c.max)) {}
  uint32_t size() const { return size_; }
  bool at_min() const { return size_ == c_.min; }
  void OnSuccess(int64_t latency_us, uint32_t rows) {
    if (latency_us > c_.target_latency_us) {
      size_ = std::max(c_.min, size_ / 2);
    } else if (rows >= size_ && latency_us * 2 <= c_.target_latency_us) {
      size_ = std::min(c_.max, size_ * 2);  // grow only after a full batch that was fast
    }
  }
  void OnFailure() { size_ = std::max(c_.min, size_ / 2); }

 private:
  BatchTunerConfig c_;
  uint32_t size_;
};

}  // namespace chorus::broker::scheduler
