// PresenceLink: the engine's presence traffic to other nodes (docs/cluster.md §10, C-21):
// joins and leaves of local clients for channels whose primary is another member, sent in the
// order they happen over the Forwarder's DEALER to that member (ZeroMQ keeps one pipe's order),
// and presence reads asked of a primary. A member whose pipe is full gets its updates queued
// here, in order, bounded in bytes; past the bound they are dropped and counted (the next
// re-assertion, C-23, repairs joins). Reads in flight are bounded in count and time out.
// Owned by the engine thread; no sockets of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "chp/loop.h"
#include "presence_codec.h"

namespace chorus::broker::node {

class Forwarder;

struct PresenceLinkStats {
  uint64_t updates_sent = 0;     // joins and leaves handed to a peer's pipe
  uint64_t updates_dropped = 0;  // beyond the queue bound, or the member unknown
  uint64_t updates_applied = 0;  // received from other nodes and applied as primary
  uint64_t updates_refused = 0;  // received but refused (not primary, stale, dead sender)
  uint64_t queries_sent = 0;     // presence reads asked of a primary
  uint64_t queries_served = 0;   // presence reads answered for other nodes
  uint64_t query_timeouts = 0;
  uint64_t dead_entries_dropped = 0;  // C-22: entries of dead or restarted members removed
  uint64_t reasserted = 0;            // C-23: local entries sent again after a primary change
  uint64_t unheld_dropped = 0;        // C-23: entries their holder no longer lists (kind 34)
};

class PresenceLink {
 public:
  static constexpr size_t kMaxQueuedBytes = 16u << 20;  // per member
  static constexpr size_t kMaxQueries = 10'000;
  static constexpr size_t kMaxHeld = 100'000;
  static constexpr std::chrono::milliseconds kQueryTimeout{3000};

  using Answered = std::function<void(const PresenceAnswer* answer)>;  // nullptr: timed out

  explicit PresenceLink(Forwarder& forwarder) : forwarder_(forwarder) {}

  // Sends an update to `member` after whatever is queued for it.
  void Send(uint64_t member, const std::string& endpoint, const PresenceUpdate& u);
  // Asks `member`; false (and `done` not called) when the bounds are reached or it is unreachable.
  bool Ask(uint64_t member, const std::string& endpoint, PresenceQuery q, Answered done);
  // An answer from a peer: runs its callback once.
  void OnAnswer(const PresenceAnswer& a);
  // Retries queued updates and expires queries; called once per engine loop.
  void Tick(chp::Clock::time_point now);
  chp::Clock::time_point NextDeadline() const;

  // Updates from a newer map than this node's: served again after the next map (bounded).
  void Hold(const PresenceUpdate& u);
  std::vector<PresenceUpdate> TakeHeld();

  PresenceLinkStats& stats() { return stats_; }
  const PresenceLinkStats& stats() const { return stats_; }
  size_t queued_bytes() const;

 private:
  struct Queue {
    std::string endpoint;
    std::deque<std::string> bodies;
    size_t bytes = 0;
  };
  struct Pending {
    chp::Clock::time_point deadline;
    Answered done;
  };
  void Flush(uint64_t member, Queue& q);

  Forwarder& forwarder_;
  std::map<uint64_t, Queue> queues_;     // members with updates waiting for pipe room
  std::map<uint64_t, Pending> pending_;  // by query id (ids grow: also by deadline)
  std::vector<PresenceUpdate> held_;
  uint64_t next_id_ = 1;
  PresenceLinkStats stats_;
};

}  // namespace chorus::broker::node
