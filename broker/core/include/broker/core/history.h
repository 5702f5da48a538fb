// ChannelHistory: one channel's publication stream: an epoch, a top offset, and a capped run of
// the latest publications (capped by count and by age). Implements the history and recovery
// semantics of docs/broker-core.md (after Centrifugo, "History and recovery").
// Pure logic: no sockets, the clock is passed in as milliseconds. Not thread-safe; owned by the
// thread that owns the channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/errc.h"

namespace chorus::broker {

struct Publication {
  uint64_t offset = 0;              // position in the stream, 1 for the first publication
  std::string data;                 // JSON payload as sent by the publisher
  std::optional<std::string> info;  // publisher's client info (JSON), when published by a client
  std::map<std::string, std::string> tags;
  int64_t time_ms = 0;  // when the primary appended it; TTL is counted from here
  bool operator==(const Publication&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Publication& p);

// A position in a channel's stream: the offset of the last publication seen and the epoch.
struct StreamPosition {
  uint64_t offset = 0;
  std::string epoch;
  bool operator==(const StreamPosition&) const = default;
};
std::ostream& operator<<(std::ostream& os, const StreamPosition& p);

// A history query, as in Centrifugo's history API: `limit` 0 returns the position only, a
// negative limit means no limit (the caller applies its own maximum), `since` is exclusive.
struct HistoryQuery {
  std::optional<StreamPosition> since;
  int64_t limit = 0;
  bool reverse = false;
};

struct HistoryResult {
  StreamPosition top;  // current top offset and epoch
  std::vector<Publication> publications;
};

struct RecoveryResult {
  bool recovered = false;
  StreamPosition top;                     // where the subscription continues from
  std::vector<Publication> publications;  // every publication after the asked offset, or none
};

class ChannelHistory {
 public:
  // `size` publications at most (0: keep none, only the position); each one kept `ttl_ms`
  // after its time_ms (<= 0: no age limit).
  ChannelHistory(std::string epoch, size_t size, int64_t ttl_ms);

  // Appends a publication: takes the next offset (top + 1) and time_ms = now_ms, then applies
  // both caps. Returns the new offset.
  uint64_t Append(Publication pub, int64_t now_ms);

  // History API (docs/broker-core.md, "History queries"). Errors:
  //  - since.epoch non-empty and not the current epoch          -> kUnrecoverablePosition
  //  - since.offset > top                                        -> kUnrecoverablePosition
  //  - forward from since: a publication after since is gone     -> kUnrecoverablePosition
  //  - reverse with since.offset == 0                            -> kBadRequest
  // `visible`: answer as if the stream ended at this offset (publications above it are not
  // committed yet in a cluster, docs/cluster.md C-9); kAll shows everything.
  static constexpr uint64_t kAll = UINT64_MAX;
  Result<HistoryResult> Get(const HistoryQuery& query, int64_t now_ms, uint64_t visible = kAll);

  // Recovery from a client's position: recovered only when `epoch` is the current epoch,
  // offset <= top, every publication in (offset, top] is still retained and there are at most
  // `max_publications` of them (0: no maximum). Never partial: when not recovered, no
  // publications. `top` is the current position either way.
  // With `visible`, as if the stream ended there (as Get).
  RecoveryResult Recover(std::string_view epoch, uint64_t offset, int64_t now_ms,
                         size_t max_publications = 0, uint64_t visible = kAll);

  // history_remove: drops every publication, keeps the epoch and the top offset (Centrifugo keeps
  // the stream position so subscribers are not disconnected for insufficient state).
  void Remove();

  // Starts a new stream: new epoch, top offset 0, no publications (the stream's past is lost).
  void Reset(std::string epoch);

  // Drops the publications whose age reached the TTL (time_ms + ttl_ms <= now_ms), oldest first.
  // Retained publications always form a contiguous run ending at the top.
  void Expire(int64_t now_ms);

  // Replica side: applies a publication replicated from the primary, keeping its offset and
  // time_ms. It must be top + 1: kReplicaStale (nothing changes) when <= top, kReplicaGap when
  // > top + 1 (the caller resyncs with Restore). The size cap applies; age is applied by Expire.
  Result<Unit> ApplyReplicated(Publication pub);

  // Replica side: replaces the state with a snapshot: position `top` and its retained
  // publications, which must be contiguous and end at top.offset (or be empty). kBadSnapshot
  // otherwise, and nothing changes.
  Result<Unit> Restore(StreamPosition top, std::vector<Publication> pubs);

  StreamPosition Top() const { return {top_, epoch_}; }
  // The position reads show: the top, or `visible` when it is lower.
  StreamPosition VisibleTop(uint64_t visible) const {
    return {visible < top_ ? visible : top_, epoch_};
  }
  const std::string& epoch() const { return epoch_; }
  uint64_t top_offset() const { return top_; }
  // Offset of the oldest retained publication; 0 when none is retained.
  uint64_t first_offset() const { return pubs_.empty() ? 0 : pubs_.front().offset; }
  size_t size() const { return pubs_.size(); }
  size_t capacity() const { return size_; }
  int64_t ttl_ms() const { return ttl_ms_; }

 private:
  void ApplySizeCap();
  // Retained publications with offset <= `top` (a prefix of pubs_).
  size_t CountUpTo(uint64_t top) const;

  std::string epoch_;
  uint64_t top_ = 0;
  size_t size_;
  int64_t ttl_ms_;
  std::deque<Publication> pubs_;  // contiguous offsets ending at top_ (when non-empty)
};

}  // namespace chorus::broker
