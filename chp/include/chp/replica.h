// The replica state machine for one subtree (docs/protocol/chp.md, "Replica behaviour").
// Pure logic fed with decoded messages; it owns the local copy of the subtree. The agent
// (agent.h) moves it between sockets. Not thread-safe: owned by the agent's thread.
//
//   kWaitSubscribe --first message on the subtree's topic (or timeout)--> kNeedSync
//   kNeedSync --MakeRequest--> kSyncing --KTHXBAI accepted--> kLive
//   kLive --gap / epoch change / behind position / rejected snapshot--> kNeedSync
// Updates arriving before kLive are queued (bounded) and replayed after the snapshot, dropping
// those not newer than it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chp/types.h"

namespace chorus::chp {

struct ReplicaEntry {
  std::string value;
  uint64_t seq = 0;
  // CR-31: when the server will expire it, on this process's monotonic clock (ms; 0: no TTL):
  // the ttl_ms received added to the time it was applied here. Never acted on (CR-20); kept so
  // a promoted copy carries remaining TTLs. Not part of equality (content is value and seq).
  int64_t expires_at_ms = 0;
  bool operator==(const ReplicaEntry& o) const { return value == o.value && seq == o.seq; }
};
using EntryMap = std::unordered_map<std::string, ReplicaEntry>;

// Receives what a replica applies, in order. Called on the agent's thread.
class ReplicaObserver {
 public:
  virtual ~ReplicaObserver() = default;
  // The subtree's content was replaced by a snapshot at `position`.
  virtual void OnReset(std::string_view subtree, const Position& position,
                       const EntryMap& entries) {
    (void)subtree, (void)position, (void)entries;
  }
  // One change, applied in sequence order within `epoch`.
  virtual void OnChange(std::string_view subtree, std::string_view epoch, const Record& record) {
    (void)subtree, (void)epoch, (void)record;
  }
};

struct ReplicaStats {
  uint64_t snapshots = 0;        // full snapshots applied
  uint64_t resumes = 0;          // resume streams applied
  uint64_t gaps = 0;             // sequence gaps seen in the live stream
  uint64_t epoch_changes = 0;    // epoch changes seen
  uint64_t behind = 0;           // POSITION said we missed updates
  uint64_t rejected = 0;         // snapshots / resumes rejected (count or order mismatch)
  uint64_t applied = 0;          // live or replayed changes applied
  uint64_t stale = 0;            // updates dropped as not newer than our position
  uint64_t overflows = 0;        // queue overflows while syncing
  uint64_t failed_requests = 0;  // requests abandoned (timeout, failover, error)
  uint64_t term_changes = 0;     // CR-36: a live KVPUB or POSITION in a newer term
  bool operator==(const ReplicaStats&) const = default;
};

class SubtreeReplica {
 public:
  enum class State { kWaitSubscribe, kNeedSync, kSyncing, kLive };

  // CR-11: updates queued while not live are bounded in number and in bytes (key and value
  // bytes plus kQueuedOverheadBytes per update).
  // CR-35: the UUID window keeps each entry until its age reaches `window_ms` (the server's
  // dedup_window_ms, CS-10) and at most kMaxWindow entries (the newest).
  explicit SubtreeReplica(std::string subtree, size_t max_queue = 100'000,
                          size_t max_queue_bytes = kDefaultMaxQueueBytes,
                          int64_t window_ms = kDefaultWindowMs);
  static constexpr size_t kDefaultMaxQueueBytes = size_t{16} << 20;
  static constexpr int64_t kDefaultWindowMs = 10'000;
  static constexpr size_t kMaxWindow = kMaxWindowPerKthxbai;
  static constexpr size_t kQueuedOverheadBytes = 24;
  // What one update costs in the queue's byte bound.
  static size_t QueuedBytes(const Record& r) {
    return r.key.size() + r.value.size() + kQueuedOverheadBytes;
  }

  // The subscription is known to be active (a message arrived on its topic, or a timeout).
  void OnSubscribed();
  // Builds the request for the next sync and enters kSyncing. Resumes from the current position
  // unless the last sync was rejected or the epoch changed (then a full snapshot is asked for).
  Icanhaz MakeRequest(uint64_t request_id);
  // A request was lost (timeout, failover, error reply): ask again later, keep the local copy.
  void OnRequestFailed();
  // Back to kWaitSubscribe (the agent resubscribed on a new connection).
  void OnResubscribe();
  // The server behind the connection changed (new server id): a request in flight is lost and a
  // live copy may be stale. Syncing or live -> kNeedSync (resume from the position); the local
  // copy is kept.
  void OnServerChanged();

  // A KVPUB. `term` is its term (CS-33; nullopt: not known, no term rule). CR-36: a change
  // above the position in a newer term than the replica's is not applied; the subtree resyncs
  // by resume (the server judges the line, CS-30) and the change waits in the queue. One in an
  // older term is dropped.
  void OnUpdate(const std::string& epoch, Record record, ReplicaObserver* obs,
                std::optional<uint64_t> term = std::nullopt);
  // The same with the record in place: it is moved from only when queued (not live), so a
  // caller can reuse its strings for the next update (the agent's hot path).
  void OnUpdateInPlace(const std::string& epoch, Record& record, ReplicaObserver* obs,
                       std::optional<uint64_t> term = std::nullopt);
  // A POSITION. `term` is its term (CS-33; nullopt: no term rule). CR-36: a term greater than
  // the replica's makes a live subtree resync by resume.
  void OnPosition(const Position& p, std::optional<uint64_t> term = std::nullopt);
  void OnSyncRecords(uint64_t request_id, std::vector<Record>&& records);
  void OnSyncEnd(const Kthxbai& end, ReplicaObserver* obs);
  // Treats the queue as overflowed (CR-11): discards it and syncs again after the current sync.
  // The agent calls it when the queues of all its subtrees together pass their byte bound.
  void DiscardQueue();

  State state() const { return state_; }
  bool live() const { return state_ == State::kLive; }
  uint64_t request_id() const { return request_id_; }
  const std::string& subtree() const { return subtree_; }
  const Position& position() const { return position_; }
  // CR-30: the term of the last accepted KTHXBAI and the seq it began at.
  uint64_t term() const { return term_; }
  uint64_t term_start() const { return term_start_; }
  // The full copy as snapshot records with remaining TTLs (CR-31) at `now_ms` (monotonic), for a
  // backup to adopt it as primary (Server::Adopt, CS-29).
  std::vector<Record> SnapshotRecords(int64_t now_ms) const;
  // CR-35: the UUID window at `now_ms` (monotonic): the entries younger than window_ms, each
  // with its age, oldest first (what Server::Adopt takes, CS-31).
  std::vector<WindowEntry> Window(int64_t now_ms) const;
  size_t window_size() const { return window_.size(); }
  // Everything a promoted backup hands to its server (Server::Adopt(subtree, copy, term)):
  // position, term, term start, SnapshotRecords and Window at `now_ms`.
  SubtreeCopy Copy(int64_t now_ms) const;
  const EntryMap& entries() const { return entries_; }
  size_t queued() const { return queue_.size(); }
  size_t queued_bytes() const { return queue_bytes_; }
  const ReplicaStats& stats() const { return stats_; }

 private:
  struct Queued {
    std::string epoch;
    Record record;
    std::optional<uint64_t> term;
  };
  struct WindowSlot {
    Uuid uuid;
    uint64_t seq;
    int64_t at_ms;  // when the server answered it, on this process's monotonic clock
  };
  enum class Verdict { kApplied, kStale, kGap, kEpoch, kTerm };

  Verdict ApplyLive(const std::string& epoch, Record& record, ReplicaObserver* obs,
                    std::optional<uint64_t> term);
  // CR-35: remembers an applied change's UUID; forgets entries past the window or the bound.
  void Remember(const Uuid& uuid, uint64_t seq, int64_t at_ms, int64_t now_ms);
  void ForgetOld(int64_t now_ms);
  void Resync(bool full);
  void Drain(ReplicaObserver* obs);

  std::string subtree_;
  size_t max_queue_;
  size_t max_queue_bytes_;
  int64_t window_ms_;
  size_t queue_bytes_ = 0;
  State state_ = State::kWaitSubscribe;
  Position position_;
  uint64_t term_ = 0;
  uint64_t term_start_ = 0;
  EntryMap entries_;
  bool want_full_ = false;
  uint64_t request_id_ = 0;
  std::vector<Record> staged_;
  std::deque<Queued> queue_;
  bool overflowed_ = false;
  std::deque<WindowSlot> window_;  // CR-35, oldest first
  ReplicaStats stats_;
};

const char* StateName(SubtreeReplica::State s);

}  // namespace chorus::chp
