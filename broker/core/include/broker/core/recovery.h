// SubscriptionMerger: joins a subscription's recovered publications with the live stream so the
// client sees every publication once, in offset order, with no gap at the switch from recovery
// to live (docs/broker-core.md, "Recovery merge").
//
// Lifecycle: created when a subscribe starts, before the recovery (or position) read is sent.
// Live publications of the channel that arrive meanwhile go to OnLive() and are buffered (at
// most `max_buffered`). Merge() takes the RecoveryResult and returns what to deliver after the
// subscribe reply; from then on OnLive() passes publications through, dropping duplicates.
// Any fault is final: the caller disconnects the client with 3010 "insufficient state"; the
// client reconnects and recovers from the last position it saw.
// Pure logic; owned by the thread that owns the client connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/core/errc.h"
#include "broker/core/history.h"

namespace chorus::broker {

enum class StreamFault {
  kNone = 0,
  kBufferOverflow,     // more than max_buffered live publications before Merge
  kGap,                // a publication is missing between the recovered and the live ones
  kEpochChanged,       // a live publication belongs to another epoch than the subscription
  kBadRecoveryResult,  // recovered list not contiguous up to its top, or partial
};
const char* StreamFaultName(StreamFault f);

// Publications to deliver, in offset order; or a fault (and nothing to deliver).
struct Delivery {
  std::vector<Publication> publications;
  StreamFault fault = StreamFault::kNone;
  bool ok() const { return fault == StreamFault::kNone; }
  // Disconnect code the caller sends when !ok().
  static constexpr uint32_t kDisconnectCode = kDisconnectInsufficientState.code;
};

class SubscriptionMerger {
 public:
  explicit SubscriptionMerger(size_t max_buffered) : max_buffered_(max_buffered) {}

  // A live publication of the channel in `epoch`. Before Merge: buffered (empty delivery), or
  // kBufferOverflow. After Merge: delivered when it is the next offset, dropped when already
  // delivered (offset <= position), kGap when it skips offsets, kEpochChanged for another epoch.
  Delivery OnLive(std::string_view epoch, Publication pub);

  // Ends the set-up. Delivers `result.publications` (they must be contiguous, ascending and end
  // at result.top.offset; none unless recovered), then the buffered publications of the same
  // epoch after result.top.offset, in offset order and without duplicates. kGap if the buffered
  // ones do not continue at result.top.offset + 1; kEpochChanged if one has another epoch.
  // Calling Merge twice is a kBadRecoveryResult.
  Delivery Merge(RecoveryResult result);

  bool merged() const { return merged_; }
  StreamFault fault() const { return fault_; }
  // Last delivered position (valid after Merge).
  const StreamPosition& position() const { return position_; }
  size_t buffered() const { return buffer_.size(); }

 private:
  Delivery Fail(StreamFault f);

  size_t max_buffered_;
  bool merged_ = false;
  StreamFault fault_ = StreamFault::kNone;
  StreamPosition position_;
  std::vector<std::pair<std::string, Publication>> buffer_;  // (epoch, publication)
};

}  // namespace chorus::broker
