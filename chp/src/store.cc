#include "chp/store.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <random>

namespace chorus::chp {

std::string RandomEpoch() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

Store::Store(StoreOptions options) : options_(std::move(options)) {
  if (!options_.new_epoch) options_.new_epoch = RandomEpoch;
}

Subtree& Store::GetOrCreate(std::string_view subtree) {
  auto it = subtrees_.find(subtree);
  if (it != subtrees_.end()) return it->second;
  Subtree st;
  st.epoch = options_.new_epoch();
  return subtrees_.emplace(std::string(subtree), std::move(st)).first->second;
}

Record& Backlog::PushSlot() {
  if (size_ == ring_.size()) {
    // Full: grow by one slot, after the newest (rotate first so the ring starts at 0).
    std::rotate(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(head_), ring_.end());
    head_ = 0;
    ring_.emplace_back();
  }
  ++size_;
  return ring_[(head_ + size_ - 1) % ring_.size()];
}

Record Backlog::TakeFront() {
  Record r = std::move(ring_[head_]);
  PopFront();
  return r;
}

const Record* Store::Append(Subtree& st, std::string_view name, std::string_view key, Op op,
                            std::string_view value, uint64_t ttl_ms, const Uuid& uuid) {
  const uint64_t seq = ++st.seq;
  if (!st.changed) {
    st.changed = true;
    changed_.emplace_back(name);
  }
  Backlog& b = st.backlog;
  if (!b.empty() && b.size() >= options_.backlog_records) {
    // At the count cap the oldest leaves first, so its slot takes the new record in place.
    st.backlog_bytes -= b.front().key.size() + b.front().value.size();
    b.PopFront();
  }
  Record& slot = b.PushSlot();
  slot.key.assign(key);
  slot.value.assign(value);
  if (slot.value.capacity() > 2 * slot.value.size() + 64) slot.value.shrink_to_fit();
  slot.op = op;
  slot.ttl_ms = ttl_ms;
  slot.seq = seq;
  slot.uuid = uuid;
  st.backlog_bytes += key.size() + value.size();
  while (!b.empty() &&
         (b.size() > options_.backlog_records || st.backlog_bytes > options_.backlog_bytes)) {
    st.backlog_bytes -= b.front().key.size() + b.front().value.size();
    if (b.size() == 1) {
      // A single record larger than the byte cap leaves the backlog empty: resume past it is
      // impossible and the replica takes a snapshot, which is correct. Keep it for the caller
      // (moved out, so the ring does not keep its large buffer).
      spill_ = b.TakeFront();
      return &spill_;
    }
    b.PopFront();
  }
  return &b.back();
}

void Store::TakeChanged(size_t max, std::vector<std::string>& out) {
  size_t taken = 0;
  while (taken < max && changed_head_ < changed_.size()) {
    std::string& name = changed_[changed_head_++];
    // A name is listed once per subtree while its flag is set; a dropped subtree (or one dropped
    // and created again, listed twice) is announced by the server's removal instead.
    auto it = subtrees_.find(name);
    if (it == subtrees_.end() || !it->second.changed) continue;
    it->second.changed = false;
    out.push_back(std::move(name));
    ++taken;
  }
  if (changed_head_ == changed_.size()) {
    changed_.clear();
    changed_head_ = 0;
  } else if (changed_head_ > 4096 && changed_head_ * 2 > changed_.size()) {
    changed_.erase(changed_.begin(), changed_.begin() + static_cast<std::ptrdiff_t>(changed_head_));
    changed_head_ = 0;
  }
}

Result<Store::Applied> Store::Apply(std::string_view subtree, std::string_view key, Op op,
                                    std::string_view value, uint64_t ttl_ms, int64_t now_ms) {
  auto r = ApplyRef(subtree, key, op, value, ttl_ms, now_ms);
  if (!r) return r.error();
  Applied out;
  if (r->subtree != nullptr) out.position = r->subtree->position();
  out.changed = r->changed;
  if (r->record != nullptr) out.record = *r->record;
  return out;
}

Result<Store::AppliedRef> Store::ApplyRef(std::string_view subtree, std::string_view key, Op op,
                                          std::string_view value, uint64_t ttl_ms, int64_t now_ms,
                                          const Uuid& uuid) {
  if (ttl_ms > kMaxTtlMs) return Errc::kBadTtl;
  if (op == Op::kSet) {
    Subtree* existing = nullptr;
    StoredEntry* found = nullptr;  // the entry when the key exists: one lookup, not two
    if (auto it = subtrees_.find(subtree); it != subtrees_.end()) {
      existing = &it->second;
      if (auto eit = existing->entries.find(key); eit != existing->entries.end()) {
        found = &eit->second;
      }
    }
    const bool is_new_key = found == nullptr;
    if (is_new_key && key_count_ >= options_.max_keys) return Errc::kFull;
    const size_t old_bytes = found != nullptr ? key.size() + found->value.size() : 0;
    const size_t new_bytes = key.size() + value.size();
    if (new_bytes > old_bytes && bytes_ - old_bytes + new_bytes > options_.max_bytes) {
      return Errc::kFull;
    }
    bytes_ = bytes_ - old_bytes + new_bytes;
    Subtree& st = existing != nullptr ? *existing : GetOrCreate(subtree);
    StoredEntry& e = found != nullptr ? *found : st.entries[std::string(key)];
    if (is_new_key) ++key_count_;
    st.value_bytes = st.value_bytes - e.value.size() + value.size();
    if (e.expires_at_ms != 0) --ttl_entries_;
    e.value.assign(value);
    e.expires_at_ms = ttl_ms == 0 ? 0 : now_ms + static_cast<int64_t>(ttl_ms);
    const Record* rec = Append(st, subtree, key, Op::kSet, value, ttl_ms, uuid);
    e.seq = rec->seq;
    if (e.expires_at_ms != 0) {
      ++ttl_entries_;
      expiries_.push(Expiry{e.expires_at_ms, e.seq, std::string(subtree), std::string(key)});
      CompactExpiries();
    }
    return AppliedRef{&st, true, rec};
  }
  // Delete (kExpire is reserved for the server's own expiry).
  if (op != Op::kDelete) return Errc::kMalformed;
  auto it = subtrees_.find(subtree);
  if (it == subtrees_.end()) return AppliedRef{};
  Subtree& st = it->second;
  auto eit = st.entries.find(key);
  if (eit == st.entries.end()) return AppliedRef{&st, false, nullptr};
  if (eit->second.expires_at_ms != 0) --ttl_entries_;
  st.value_bytes -= eit->second.value.size();
  bytes_ -= eit->first.size() + eit->second.value.size();
  st.entries.erase(eit);
  --key_count_;
  return AppliedRef{&st, true, Append(st, subtree, key, Op::kDelete, {}, 0, uuid)};
}

size_t Store::Expire(int64_t now_ms, const std::function<void(const Change&)>& on_expired) {
  size_t n = 0;
  while (!expiries_.empty() && expiries_.top().at_ms <= now_ms) {
    Expiry x = expiries_.top();
    expiries_.pop();
    auto it = subtrees_.find(x.subtree);
    if (it == subtrees_.end()) continue;
    Subtree& st = it->second;
    auto eit = st.entries.find(x.key);
    // Stale heap entry: the key was rewritten or deleted after this expiry was scheduled (or its
    // subtree dropped and created again, restarting the sequences: the time tells them apart).
    if (eit == st.entries.end() || eit->second.seq != x.seq ||
        eit->second.expires_at_ms != x.at_ms) {
      continue;
    }
    st.value_bytes -= eit->second.value.size();
    bytes_ -= eit->first.size() + eit->second.value.size();
    st.entries.erase(eit);
    --key_count_;
    --ttl_entries_;
    const Record* rec = Append(st, it->first, x.key, Op::kExpire, {}, 0);
    if (on_expired) on_expired(Change{it->first, st.epoch, rec, st.term});
    ++n;
  }
  return n;
}

int64_t Store::NextExpiry() const {
  return expiries_.empty() ? -1 : expiries_.top().at_ms;
}

bool Store::Drop(std::string_view subtree) {
  auto it = subtrees_.find(subtree);
  if (it == subtrees_.end()) return false;
  for (const auto& [key, e] : it->second.entries) {
    bytes_ -= key.size() + e.value.size();
    if (e.expires_at_ms != 0) --ttl_entries_;
  }
  key_count_ -= it->second.entries.size();
  subtrees_.erase(it);  // its heap entries go stale: Expire and CompactExpiries skip them
  return true;
}

void Store::CompactExpiries() {
  // Rewriting a TTL key leaves its old heap entry behind; rebuild when stale ones dominate so the
  // heap stays proportional to the live TTL entries.
  if (expiries_.size() < 1024 || expiries_.size() < 4 * ttl_entries_) return;
  std::vector<Expiry> live;
  live.reserve(ttl_entries_);
  while (!expiries_.empty()) {
    Expiry x = expiries_.top();
    expiries_.pop();
    auto it = subtrees_.find(x.subtree);
    if (it == subtrees_.end()) continue;
    auto eit = it->second.entries.find(x.key);
    if (eit != it->second.entries.end() && eit->second.seq == x.seq &&
        eit->second.expires_at_ms == x.at_ms) {
      live.push_back(std::move(x));
    }
  }
  expiries_ = decltype(expiries_)(std::greater<>(), std::move(live));
}

const Subtree* Store::Find(std::string_view subtree) const {
  auto it = subtrees_.find(subtree);
  return it == subtrees_.end() ? nullptr : &it->second;
}

Position Store::PositionOf(std::string_view subtree) const {
  const Subtree* st = Find(subtree);
  return st == nullptr ? Position{} : st->position();
}

bool Store::OnLine(const Subtree& st, const Position& from, uint64_t from_term) {
  if (from.epoch.empty() || from.epoch != st.epoch) return false;
  if (from_term == st.term) return true;
  return st.has_prev_term && from_term == st.prev_term && from.seq < st.term_start;
}

Result<const Subtree*> Store::Adopt(std::string_view subtree, const Position& at,
                                    uint64_t prev_term, uint64_t term,
                                    const std::vector<Record>& entries, int64_t now_ms) {
  if (subtrees_.contains(subtree)) return Errc::kBusy;
  if (term <= prev_term || at.epoch.empty()) return Errc::kMalformed;
  size_t bytes = 0;
  for (const Record& r : entries) bytes += r.key.size() + r.value.size();
  if (key_count_ + entries.size() > options_.max_keys || bytes_ + bytes > options_.max_bytes) {
    return Errc::kFull;
  }
  Subtree& st = subtrees_.emplace(std::string(subtree), Subtree{}).first->second;
  st.epoch = at.epoch;
  st.seq = at.seq;
  st.term = term;
  st.term_start = at.seq + 1;
  st.prev_term = prev_term;
  st.has_prev_term = true;
  for (const Record& r : entries) {
    StoredEntry& e = st.entries[r.key];
    e.value = r.value;
    e.seq = r.seq;
    st.value_bytes += r.value.size();
    if (r.ttl_ms > 0) {
      e.expires_at_ms = now_ms + static_cast<int64_t>(r.ttl_ms);
      ++ttl_entries_;
      expiries_.push(Expiry{e.expires_at_ms, e.seq, std::string(subtree), r.key});
    }
  }
  key_count_ += st.entries.size();
  bytes_ += bytes;
  return &st;
}

bool Store::ResumeFrom(std::string_view subtree, const Position& from, std::vector<Record>& out,
                       uint64_t from_term) const {
  const Subtree* st = Find(subtree);
  if (st == nullptr || !OnLine(*st, from, from_term) || from.seq > st->seq) return false;
  if (from.seq == st->seq) return true;  // up to date: nothing to send
  if (st->backlog.empty() || st->backlog.front().seq > from.seq + 1) return false;
  const size_t first = from.seq + 1 - st->backlog.front().seq;
  out.reserve(out.size() + st->backlog.size() - first);
  for (size_t i = first; i < st->backlog.size(); ++i) out.push_back(st->backlog[i]);
  return true;
}

uint64_t Store::RemainingTtl(const StoredEntry& e, int64_t now_ms) {
  if (e.expires_at_ms == 0) return 0;
  return e.expires_at_ms > now_ms ? static_cast<uint64_t>(e.expires_at_ms - now_ms) : 1;
}

}  // namespace chorus::chp
