// Commit leases, the node side (docs/cluster.md C-25, §16.8). The controller grants a member a
// lease for each heartbeat it received once a Raft barrier proposed after it has committed
// (cluster::MetaGroup::SendHeartbeat): valid for `duration_ms` from when the member SENT that
// heartbeat, by its own clock, and only with a map view that applied at least `min_entries`.
// A primary commits only while it holds such a lease, so a primary cut off from the controller
// stops committing lease_ms after its last granted heartbeat, before any controller can declare
// it dead (dead_after_ms > lease_ms).
//
// Wire (msgpack arrays):
//   heartbeat, member -> seeds' agents: [id, incarnation, chp, api, raft, leaving, seq]
//     (cluster_agent.cc; `seq` is new, a 6-element heartbeat is still accepted, without lease)
//   grant, the leader's agent -> the member's agent, on the same DEALER/ROUTER pair:
//     ["l", member, incarnation, seq, duration_ms, min_entries]
//   lease, the agent -> its engine over the view PAIR (one frame):
//     ["L", expiry (steady clock, ns since its epoch), min_entries]
// Each class has one owner thread: HeartbeatClock the agent's, LeaseHolder the engine's.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::broker::node {

struct LeaseReply {
  uint64_t member = 0;
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  int64_t duration_ms = 0;
  uint64_t min_entries = 0;
};
std::string EncodeLeaseReply(const LeaseReply& r);
bool DecodeLeaseReply(std::string_view bytes, LeaseReply& out);

struct LeaseGrant {
  int64_t expiry_ns = 0;  // std::chrono::steady_clock, since its epoch
  uint64_t min_entries = 0;
};
std::string EncodeLeaseGrant(const LeaseGrant& g);
bool DecodeLeaseGrant(std::string_view bytes, LeaseGrant& out);

// The agent's record of when each recent heartbeat was sent (at most 64 remembered).
class HeartbeatClock {
 public:
  uint64_t Sent(int64_t now_ns);                      // a new seq, sent now
  std::optional<int64_t> SentAt(uint64_t seq) const;  // nullopt: unknown or forgotten
 private:
  uint64_t next_ = 1;
  std::deque<std::pair<uint64_t, int64_t>> sent_;
};

// The engine's leases. Valid(now, entries): some lease not expired at `now` whose min_entries
// the engine's applied map has reached (a newer lease may wait for a newer map: the older
// one still counts meanwhile).
class LeaseHolder {
 public:
  void Add(const LeaseGrant& g);
  bool Valid(int64_t now_ns, uint64_t entries) const;
  uint64_t grants() const { return grants_; }

 private:
  std::deque<LeaseGrant> leases_;  // expiry ascending; at most 32
  uint64_t grants_ = 0;
};

}  // namespace chorus::broker::node
