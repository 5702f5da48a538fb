#include "broker/core/recovery.h"

#include <algorithm>

namespace chorus::broker {

const char* StreamFaultName(StreamFault f) {
  switch (f) {
    case StreamFault::kNone:
      return "none";
    case StreamFault::kBufferOverflow:
      return "buffer overflow";
    case StreamFault::kGap:
      return "gap";
    case StreamFault::kEpochChanged:
      return "epoch changed";
    case StreamFault::kBadRecoveryResult:
      return "bad recovery result";
  }
  return "?";
}

Delivery SubscriptionMerger::Fail(StreamFault f) {
  if (fault_ == StreamFault::kNone) fault_ = f;
  buffer_.clear();
  return Delivery{{}, fault_};
}

Delivery SubscriptionMerger::OnLive(std::string_view epoch, Publication pub) {
  if (fault_ != StreamFault::kNone) return Delivery{{}, fault_};
  if (!merged_) {
    if (buffer_.size() >= max_buffered_) return Fail(StreamFault::kBufferOverflow);
    buffer_.emplace_back(std::string(epoch), std::move(pub));
    return {};
  }
  if (epoch != position_.epoch) return Fail(StreamFault::kEpochChanged);
  if (pub.offset <= position_.offset) return {};  // duplicate
  if (pub.offset != position_.offset + 1) return Fail(StreamFault::kGap);
  position_.offset = pub.offset;
  Delivery d;
  d.publications.push_back(std::move(pub));
  return d;
}

Delivery SubscriptionMerger::Merge(RecoveryResult result) {
  if (fault_ != StreamFault::kNone) return Delivery{{}, fault_};
  if (merged_) return Fail(StreamFault::kBadRecoveryResult);
  merged_ = true;

  auto& recovered = result.publications;
  if (!recovered.empty()) {
    if (!result.recovered || recovered.back().offset != result.top.offset) {
      return Fail(StreamFault::kBadRecoveryResult);
    }
    for (size_t i = 1; i < recovered.size(); ++i) {
      if (recovered[i].offset != recovered[i - 1].offset + 1) {
        return Fail(StreamFault::kBadRecoveryResult);
      }
    }
  }
  position_ = result.top;

  // Live publications in offset order (stable: for equal offsets the first arrival wins).
  std::stable_sort(buffer_.begin(), buffer_.end(),
                   [](const auto& a, const auto& b) { return a.second.offset < b.second.offset; });
  for (const auto& [epoch, pub] : buffer_) {
    if (epoch != position_.epoch) return Fail(StreamFault::kEpochChanged);
  }
  Delivery d;
  d.publications = std::move(recovered);
  for (auto& [epoch, pub] : buffer_) {
    if (pub.offset <= position_.offset) continue;  // already recovered or a duplicate
    if (pub.offset != position_.offset + 1) return Fail(StreamFault::kGap);
    position_.offset = pub.offset;
    d.publications.push_back(std::move(pub));
  }
  buffer_.clear();
  buffer_.shrink_to_fit();
  return d;
}

}  // namespace chorus::broker
