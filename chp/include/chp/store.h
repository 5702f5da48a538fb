// The server's replicated hashmap: subtrees of entries, each subtree with its own epoch and
// sequence, a bounded backlog of recent changes for resume, and server-clock TTLs.
// Pure logic: no sockets, the clock is passed in. Not thread-safe; owned by the server's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chp/errc.h"
#include "chp/types.h"

namespace chorus::chp {

struct StoreOptions {
  size_t max_keys = 10'000'000;
  // Key and value bytes of all entries together (CS-8): a set that would grow the store past it
  // is refused with kFull. Bounds what writers (KVSET from any peer) can make the server hold.
  size_t max_bytes = size_t{1} << 30;
  size_t backlog_records = 256;            // per subtree
  size_t backlog_bytes = 256 * 1024;       // per subtree (values + keys)
  std::function<std::string()> new_epoch;  // default: 16 random hex digits
};

struct StoredEntry {
  std::string value;
  uint64_t seq = 0;
  int64_t expires_at_ms = 0;  // 0: no TTL
};

// The last changes of a subtree, oldest first, in a ring: a new change overwrites the oldest
// slot's buffers in place, so the steady state allocates nothing (no deque blocks, no strings).
// Grows one slot at a time up to the backlog's count cap (subtrees with few changes stay small).
class Backlog {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Record& operator[](size_t i) const { return ring_[(head_ + i) % ring_.size()]; }
  const Record& front() const { return (*this)[0]; }
  const Record& back() const { return (*this)[size_ - 1]; }
  // A slot after the newest, holding whatever an older record left in it: assign every field.
  Record& PushSlot();
  // The oldest record leaves; its slot (and buffers) are reused by a later PushSlot.
  void PopFront() {
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
  // The oldest record, moved out and popped.
  Record TakeFront();

 private:
  std::vector<Record> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
};

using StoredEntries = std::unordered_map<std::string, StoredEntry, StringHash, std::equal_to<>>;

struct Subtree {
  std::string epoch;
  uint64_t seq = 0;
  StoredEntries entries;
  Backlog backlog;  // consecutive changes ending at `seq`
  size_t backlog_bytes = 0;
  size_t value_bytes = 0;
  // CS-29: who writes this history. A subtree created here starts at term 0 from seq 1; one
  // adopted at (epoch, n) continues the previous term's line from n + 1 under a new term.
  uint64_t term = 0;
  uint64_t term_start = 1;
  uint64_t prev_term = 0;
  bool has_prev_term = false;
  bool changed = false;  // listed in the store's changed subtrees (TakeChanged)

  Position position() const { return {epoch, seq}; }
};

// A change the store applied: the subtree it belongs to and the record with its sequence.
struct Change {
  std::string_view subtree;
  std::string_view epoch;
  const Record* record;
  uint64_t term = 0;  // the subtree's term (CS-33)
};

class Store {
 public:
  explicit Store(StoreOptions options = {});

  // Applies a set (ttl_ms 0: no TTL) or delete. A delete of a missing key changes nothing and
  // returns the current position without a new sequence (changed=false).
  struct Applied {
    Position position;
    bool changed = false;
    Record record;
  };
  Result<Applied> Apply(std::string_view subtree, std::string_view key, Op op,
                        std::string_view value, uint64_t ttl_ms, int64_t now_ms);

  // Apply without copying the record: `record` points at the store's copy (valid until the next
  // change to the store) or is null when nothing changed; `subtree` is the applied subtree.
  struct AppliedRef {
    const Subtree* subtree = nullptr;
    bool changed = false;
    const Record* record = nullptr;
  };
  // `uuid` is the client update's (CS-31), kept with the change in the backlog.
  Result<AppliedRef> ApplyRef(std::string_view subtree, std::string_view key, Op op,
                              std::string_view value, uint64_t ttl_ms, int64_t now_ms,
                              const Uuid& uuid = {});

  // Removes every entry whose TTL ran out by `now_ms`; calls `on_expired` for each, in order.
  size_t Expire(int64_t now_ms, const std::function<void(const Change&)>& on_expired);
  // Removes a subtree with its entries and backlog (CS-28); false when it is not held. Not a
  // change: no sequence. Created again, it gets a new epoch.
  bool Drop(std::string_view subtree);
  // Milliseconds of the earliest pending expiry, or -1.
  int64_t NextExpiry() const;

  const Subtree* Find(std::string_view subtree) const;
  Position PositionOf(std::string_view subtree) const;
  using Subtrees = std::unordered_map<std::string, Subtree, StringHash, std::equal_to<>>;
  const Subtrees& subtrees() const { return subtrees_; }
  // Subtrees changed since they were last taken (the server's POSITION per changed subtree,
  // CS-26), in the order they first changed: moves up to `max` names to `out`. Kept here, with
  // a flag in the subtree, so a change costs no look-up in a set of names.
  void TakeChanged(size_t max, std::vector<std::string>& out);
  size_t changed_count() const { return changed_.size() - changed_head_; }
  size_t key_count() const { return key_count_; }
  // Key and value bytes of all entries (what max_bytes bounds).
  size_t bytes() const { return bytes_; }

  // Records after `from` when the subtree's backlog still covers them (spec §Resume): fills `out`
  // and returns true; false means the caller must send a full snapshot.
  // `from_term` is the term of `from` (CS-30: resume only from a position on this line).
  bool ResumeFrom(std::string_view subtree, const Position& from, std::vector<Record>& out,
                  uint64_t from_term = 0) const;
  // CS-30: (from, from_term) is on the line of `st`.
  static bool OnLine(const Subtree& st, const Position& from, uint64_t from_term);

  // CS-29: takes a subtree it does not hold at `at` (a promoted backup's copy, `entries` as
  // snapshot records with remaining TTLs) under `term`, continuing `prev_term`'s line from
  // at.seq + 1. kBusy when held, kMalformed when term <= prev_term, kFull over a bound.
  Result<const Subtree*> Adopt(std::string_view subtree, const Position& at, uint64_t prev_term,
                               uint64_t term, const std::vector<Record>& entries, int64_t now_ms);

  // The remaining TTL of an entry at `now_ms` (0: none).
  static uint64_t RemainingTtl(const StoredEntry& e, int64_t now_ms);

 private:
  struct Expiry {
    int64_t at_ms;
    uint64_t seq;  // the entry's seq when scheduled; a mismatch means it changed since
    std::string subtree;
    std::string key;
    bool operator>(const Expiry& o) const { return at_ms > o.at_ms; }
  };

  Subtree& GetOrCreate(std::string_view subtree);
  // Appends a change with the next seq to the backlog of `st` (named `name`); returns the stored
  // record (in the backlog, or in `spill_` when it alone exceeds the backlog caps).
  const Record* Append(Subtree& st, std::string_view name, std::string_view key, Op op,
                       std::string_view value, uint64_t ttl_ms, const Uuid& uuid = {});
  void CompactExpiries();

  StoreOptions options_;
  Subtrees subtrees_;
  std::vector<std::string> changed_;  // names of changed subtrees, from changed_head_ on
  size_t changed_head_ = 0;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries_;
  size_t ttl_entries_ = 0;
  size_t key_count_ = 0;
  size_t bytes_ = 0;
  Record spill_;  // the last appended record when the backlog could not keep it
};

std::string RandomEpoch();

}  // namespace chorus::chp
