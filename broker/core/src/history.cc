#include "broker/core/history.h"

#include <algorithm>
#include <utility>

namespace chorus::broker {

std::ostream& operator<<(std::ostream& os, const Publication& p) {
  os << "{offset=" << p.offset << " time_ms=" << p.time_ms << " data=" << p.data;
  if (p.info) os << " info=" << *p.info;
  for (const auto& [k, v] : p.tags) os << ' ' << k << '=' << v;
  return os << '}';
}

std::ostream& operator<<(std::ostream& os, const StreamPosition& p) {
  return os << (p.epoch.empty() ? "-" : p.epoch) << ':' << p.offset;
}

ChannelHistory::ChannelHistory(std::string epoch, size_t size, int64_t ttl_ms)
    : epoch_(std::move(epoch)), size_(size), ttl_ms_(ttl_ms) {}

uint64_t ChannelHistory::Append(Publication pub, int64_t now_ms) {
  Expire(now_ms);
  pub.offset = ++top_;
  pub.time_ms = now_ms;
  if (size_ > 0) {
    pubs_.push_back(std::move(pub));
    ApplySizeCap();
  }
  return top_;
}

void ChannelHistory::ApplySizeCap() {
  while (pubs_.size() > size_) pubs_.pop_front();
}

void ChannelHistory::Expire(int64_t now_ms) {
  if (ttl_ms_ <= 0) return;
  while (!pubs_.empty() && now_ms - pubs_.front().time_ms >= ttl_ms_) pubs_.pop_front();
}

size_t ChannelHistory::CountUpTo(uint64_t top) const {
  if (pubs_.empty() || top < pubs_.front().offset) return 0;
  return std::min(pubs_.size(), static_cast<size_t>(top - pubs_.front().offset + 1));
}

Result<HistoryResult> ChannelHistory::Get(const HistoryQuery& query, int64_t now_ms,
                                          uint64_t visible) {
  Expire(now_ms);
  const uint64_t top = std::min(top_, visible);
  const size_t count = CountUpTo(top);  // the retained publications reads may show
  HistoryResult result{{top, epoch_}, {}};
  if (query.since) {
    const StreamPosition& since = *query.since;
    if (!since.epoch.empty() && since.epoch != epoch_) return Errc::kUnrecoverablePosition;
    if (since.offset > top) return Errc::kUnrecoverablePosition;
    if (query.reverse && since.offset == 0) return Errc::kBadRequest;
  }
  if (query.limit == 0 || count == 0) {
    // Forward from a position with nothing retained after it: those publications are lost.
    if (query.since && !query.reverse && query.limit != 0 && query.since->offset < top) {
      return Errc::kUnrecoverablePosition;
    }
    return result;
  }
  const uint64_t first = pubs_.front().offset;
  const size_t limit = query.limit < 0 ? count : static_cast<size_t>(query.limit);
  auto& out = result.publications;
  if (!query.reverse) {
    size_t begin = 0;
    if (query.since) {
      const uint64_t next = query.since->offset + 1;
      if (next < first) return Errc::kUnrecoverablePosition;  // (since, first) is gone
      begin = static_cast<size_t>(next - first);              // == count when since == top
    }
    const size_t end = std::min(count, begin + std::min(limit, count));
    out.assign(pubs_.begin() + static_cast<std::ptrdiff_t>(begin),
               pubs_.begin() + static_cast<std::ptrdiff_t>(end));
  } else {
    // Newest first: from the top, or from just before since.offset.
    uint64_t last = top;
    if (query.since) last = query.since->offset - 1;
    if (last < first) return result;  // reached the oldest retained publication
    size_t index = static_cast<size_t>(last - first);
    while (out.size() < limit) {
      out.push_back(pubs_[index]);
      if (index == 0) break;
      --index;
    }
  }
  return result;
}

RecoveryResult ChannelHistory::Recover(std::string_view epoch, uint64_t offset, int64_t now_ms,
                                       size_t max_publications, uint64_t visible) {
  Expire(now_ms);
  const uint64_t top = std::min(top_, visible);
  RecoveryResult result{false, {top, epoch_}, {}};
  if (epoch != epoch_ || offset > top) return result;
  const uint64_t missed = top - offset;
  if (max_publications > 0 && missed > max_publications) return result;
  if (missed == 0) {
    result.recovered = true;
    return result;
  }
  const size_t count = CountUpTo(top);
  if (count == 0 || pubs_.front().offset > offset + 1) return result;  // some are gone
  const auto begin = pubs_.begin() + static_cast<std::ptrdiff_t>(offset + 1 - pubs_.front().offset);
  result.publications.assign(begin, pubs_.begin() + static_cast<std::ptrdiff_t>(count));
  result.recovered = true;
  return result;
}

void ChannelHistory::Remove() {
  pubs_.clear();
}

void ChannelHistory::Reset(std::string epoch) {
  epoch_ = std::move(epoch);
  top_ = 0;
  pubs_.clear();
}

Result<Unit> ChannelHistory::ApplyReplicated(Publication pub) {
  if (pub.offset <= top_) return Errc::kReplicaStale;
  if (pub.offset != top_ + 1) return Errc::kReplicaGap;
  top_ = pub.offset;
  if (size_ > 0) {
    pubs_.push_back(std::move(pub));
    ApplySizeCap();
  }
  return Unit{};
}

Result<Unit> ChannelHistory::Restore(StreamPosition top, std::vector<Publication> pubs) {
  if (!pubs.empty()) {
    if (pubs.back().offset != top.offset || pubs.front().offset == 0) return Errc::kBadSnapshot;
    for (size_t i = 1; i < pubs.size(); ++i) {
      if (pubs[i].offset != pubs[i - 1].offset + 1) return Errc::kBadSnapshot;
    }
  }
  epoch_ = std::move(top.epoch);
  top_ = top.offset;
  pubs_.assign(std::make_move_iterator(pubs.begin()), std::make_move_iterator(pubs.end()));
  ApplySizeCap();
  return Unit{};
}

}  // namespace chorus::broker
