#include "chp/replica.h"

#include <algorithm>
#include <utility>

#include "chp/loop.h"

namespace chorus::chp {

const char* StateName(SubtreeReplica::State s) {
  switch (s) {
    case SubtreeReplica::State::kWaitSubscribe:
      return "wait-subscribe";
    case SubtreeReplica::State::kNeedSync:
      return "need-sync";
    case SubtreeReplica::State::kSyncing:
      return "syncing";
    case SubtreeReplica::State::kLive:
      return "live";
  }
  return "?";
}

namespace {
// CR-31: the clock is read only for an entry with a TTL.
int64_t ExpiresAt(uint64_t ttl_ms) {
  return ttl_ms == 0 ? 0 : MonotonicMs() + static_cast<int64_t>(std::min(ttl_ms, kMaxTtlMs));
}
}  // namespace

SubtreeReplica::SubtreeReplica(std::string subtree, size_t max_queue, size_t max_queue_bytes,
                               int64_t window_ms)
    : subtree_(std::move(subtree)),
      max_queue_(max_queue),
      max_queue_bytes_(max_queue_bytes),
      window_ms_(window_ms) {}

void SubtreeReplica::OnSubscribed() {
  if (state_ == State::kWaitSubscribe) state_ = State::kNeedSync;
}

void SubtreeReplica::OnResubscribe() {
  state_ = State::kWaitSubscribe;
  staged_.clear();
  queue_.clear();
  queue_bytes_ = 0;
  overflowed_ = false;
}

Icanhaz SubtreeReplica::MakeRequest(uint64_t request_id) {
  state_ = State::kSyncing;
  request_id_ = request_id;
  staged_.clear();
  Icanhaz req{request_id, subtree_, {}};
  if (!want_full_) {
    req.from = position_;
    req.term = term_;  // CR-30
  }
  return req;
}

void SubtreeReplica::OnRequestFailed() {
  if (state_ != State::kSyncing) return;
  ++stats_.failed_requests;
  staged_.clear();
  state_ = State::kNeedSync;
}

void SubtreeReplica::OnServerChanged() {
  if (state_ == State::kSyncing) {
    OnRequestFailed();
  } else if (state_ == State::kLive) {
    Resync(false);
  }
}

void SubtreeReplica::Resync(bool full) {
  want_full_ = want_full_ || full;
  staged_.clear();
  state_ = State::kNeedSync;
}

SubtreeReplica::Verdict SubtreeReplica::ApplyLive(const std::string& epoch, Record& record,
                                                  ReplicaObserver* obs,
                                                  std::optional<uint64_t> term) {
  if (position_.epoch.empty()) {
    // An unborn subtree (spec §Replica: empty epoch) accepts the first change of any epoch,
    // and its term (CR-36).
    if (record.seq != 1) return Verdict::kGap;
    position_.epoch = epoch;
    if (term) {
      term_ = *term;
      term_start_ = 1;
    }
  } else if (epoch != position_.epoch) {
    return Verdict::kEpoch;
  } else if (record.seq <= position_.seq) {
    return Verdict::kStale;
  } else if (term && *term > term_) {
    return Verdict::kTerm;  // CR-36.1: a newer writer's change; the server judges the line
  } else if (term && *term < term_) {
    return Verdict::kStale;  // CR-36.1: a change of a line the server has left behind
  } else if (record.seq != position_.seq + 1) {
    return Verdict::kGap;
  }
  position_.seq = record.seq;
  if (record.uuid != Uuid{}) {
    const int64_t now = MonotonicMs();
    Remember(record.uuid, record.seq, now, now);  // CR-35
  }
  if (record.op == Op::kSet) {
    ReplicaEntry& e = entries_[record.key];
    e.value = record.value;
    e.seq = record.seq;
    e.expires_at_ms = ExpiresAt(record.ttl_ms);
  } else {
    entries_.erase(record.key);
  }
  ++stats_.applied;
  if (obs != nullptr) obs->OnChange(subtree_, position_.epoch, record);
  return Verdict::kApplied;
}

void SubtreeReplica::OnUpdate(const std::string& epoch, Record record, ReplicaObserver* obs,
                              std::optional<uint64_t> term) {
  OnUpdateInPlace(epoch, record, obs, term);
}

void SubtreeReplica::OnUpdateInPlace(const std::string& epoch, Record& record, ReplicaObserver* obs,
                                     std::optional<uint64_t> term) {
  if (state_ != State::kLive) {
    if (state_ == State::kWaitSubscribe) state_ = State::kNeedSync;
    if (overflowed_) return;
    const size_t bytes = QueuedBytes(record);
    if (queue_.size() >= max_queue_ || queue_bytes_ + bytes > max_queue_bytes_) {
      DiscardQueue();
      return;
    }
    queue_bytes_ += bytes;
    queue_.push_back(Queued{epoch, std::move(record), term});
    return;
  }
  switch (ApplyLive(epoch, record, obs, term)) {
    case Verdict::kApplied:
      return;
    case Verdict::kStale:
      ++stats_.stale;
      return;
    case Verdict::kGap:
      ++stats_.gaps;
      Resync(false);
      return;
    case Verdict::kEpoch:
      ++stats_.epoch_changes;
      Resync(true);
      return;
    case Verdict::kTerm:
      // CR-36: resume from our position with our term; the change waits for the reply and is
      // replayed under the term the reply gives (CR-16).
      ++stats_.term_changes;
      Resync(false);
      OnUpdateInPlace(epoch, record, obs, term);  // queued now
      return;
  }
}

void SubtreeReplica::DiscardQueue() {
  // Dropping queued updates would leave a hole: remember and resync after this sync ends.
  if (!overflowed_) ++stats_.overflows;
  overflowed_ = true;
  queue_.clear();
  queue_bytes_ = 0;
}

void SubtreeReplica::OnPosition(const Position& p, std::optional<uint64_t> term) {
  if (state_ == State::kWaitSubscribe) {
    state_ = State::kNeedSync;
    return;
  }
  if (state_ != State::kLive) return;
  if (p.epoch != position_.epoch) {
    // Includes the server having lost the subtree (empty epoch) and a subtree born meanwhile.
    ++stats_.epoch_changes;
    Resync(true);
  } else if (term && *term > term_ && !p.epoch.empty()) {
    // CR-36: a newer term of our epoch (a promoted backup); resume with our term, and the server
    // answers a resume when our position is on its line (CS-30), a snapshot when it is not.
    ++stats_.term_changes;
    Resync(false);
  } else if (p.seq > position_.seq) {
    ++stats_.behind;
    Resync(false);
  }
}

void SubtreeReplica::OnSyncRecords(uint64_t request_id, std::vector<Record>&& records) {
  if (state_ != State::kSyncing || request_id != request_id_) return;
  if (staged_.empty()) {
    staged_ = std::move(records);
  } else {
    staged_.insert(staged_.end(), std::make_move_iterator(records.begin()),
                   std::make_move_iterator(records.end()));
  }
}

void SubtreeReplica::OnSyncEnd(const Kthxbai& end, ReplicaObserver* obs) {
  if (state_ != State::kSyncing || end.request_id != request_id_) return;
  bool ok = end.count == staged_.size();
  if (ok && end.mode == SyncMode::kSnapshot) {
    // A snapshot holds only present entries, none newer than its terminator.
    for (const Record& r : staged_) {
      ok = ok && r.op == Op::kSet && r.seq <= end.position.seq;
    }
  } else if (ok && end.mode == SyncMode::kResume) {
    // A resume continues our own stream: same epoch, consecutive sequences up to the end.
    ok = end.position.epoch == position_.epoch;
    uint64_t expect = position_.seq + 1;
    for (const Record& r : staged_) {
      ok = ok && r.seq == expect++;
    }
    ok = ok && expect - 1 == end.position.seq;
  }
  if (!ok) {
    ++stats_.rejected;
    staged_.clear();
    Resync(true);
    return;
  }
  if (end.mode == SyncMode::kSnapshot) {
    entries_.clear();
    entries_.reserve(staged_.size());
    for (Record& r : staged_) {
      entries_[std::move(r.key)] = ReplicaEntry{std::move(r.value), r.seq, ExpiresAt(r.ttl_ms)};
    }
    position_ = end.position;
    // CR-35: the snapshot's window replaces ours; an entry of age a was answered a ms ago.
    window_.clear();
    const int64_t now = end.window.empty() ? 0 : MonotonicMs();
    for (const WindowEntry& w : end.window) {
      const auto age = static_cast<int64_t>(std::min<uint64_t>(w.age_ms, kMaxTtlMs));
      Remember(w.uuid, w.seq, now - age, now);
    }
    ++stats_.snapshots;
    if (obs != nullptr) obs->OnReset(subtree_, position_, entries_);
  } else {
    // CR-30: the resume continues under the reply's term (taken first, so that the records
    // apply whatever term they were written in).
    for (Record& r : staged_) ApplyLive(position_.epoch, r, obs, std::nullopt);
    ++stats_.resumes;
  }
  staged_.clear();
  want_full_ = false;
  term_ = end.term;  // CR-30
  term_start_ = end.term_start;
  state_ = State::kLive;
  Drain(obs);
}

std::vector<Record> SubtreeReplica::SnapshotRecords(int64_t now_ms) const {
  std::vector<Record> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) {
    uint64_t ttl = 0;
    if (e.expires_at_ms != 0) {
      ttl = e.expires_at_ms > now_ms ? static_cast<uint64_t>(e.expires_at_ms - now_ms) : 1;
    }
    out.push_back(Record{key, Op::kSet, e.value, ttl, e.seq});
  }
  return out;
}

void SubtreeReplica::Remember(const Uuid& uuid, uint64_t seq, int64_t at_ms, int64_t now_ms) {
  ForgetOld(now_ms);
  if (at_ms + window_ms_ <= now_ms) return;
  window_.push_back(WindowSlot{uuid, seq, at_ms});
  if (window_.size() > kMaxWindow) window_.pop_front();
}

void SubtreeReplica::ForgetOld(int64_t now_ms) {
  while (!window_.empty() && window_.front().at_ms + window_ms_ <= now_ms) window_.pop_front();
}

std::vector<WindowEntry> SubtreeReplica::Window(int64_t now_ms) const {
  std::vector<WindowEntry> out;
  out.reserve(window_.size());
  for (const WindowSlot& w : window_) {
    if (w.at_ms + window_ms_ <= now_ms) continue;
    out.push_back(
        WindowEntry{w.uuid, w.seq, static_cast<uint64_t>(std::max<int64_t>(now_ms - w.at_ms, 0))});
  }
  return out;
}

SubtreeCopy SubtreeReplica::Copy(int64_t now_ms) const {
  return SubtreeCopy{position_, term_, term_start_, SnapshotRecords(now_ms), Window(now_ms)};
}

void SubtreeReplica::Drain(ReplicaObserver* obs) {
  if (overflowed_) {
    overflowed_ = false;
    queue_.clear();
    queue_bytes_ = 0;
    Resync(false);
    return;
  }
  while (!queue_.empty() && state_ == State::kLive) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    queue_bytes_ -= QueuedBytes(q.record);
    OnUpdate(q.epoch, std::move(q.record), obs, q.term);
  }
  if (state_ != State::kLive) {
    queue_.clear();
    queue_bytes_ = 0;
  }
}

}  // namespace chorus::chp
