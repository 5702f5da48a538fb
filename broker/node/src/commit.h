// The commit state of the data plane (docs/cluster.md §5 C-8..C-11, §16.2), owned by the
// engine thread. Primary side: per channel, the publications not yet committed (bounded in
// count and bytes over the node), the backups' acknowledged positions, and the C-11 growth the
// primary reported. Backup and copy side: acknowledgements to send, publications held until
// their `top` record confirms them (C-13), publications applied but not committed yet (C-9).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ack_codec.h"
#include "broker/core/history.h"
#include "broker/core/presence.h"
#include "broker/protocol/client_protocol.h"
#include "chp/loop.h"
#include "lease.h"

namespace chorus::broker::node {

struct UncommittedPublication {
  uint64_t offset = 0;
  chp::Clock::time_point at;
  size_t bytes = 0;
  Publication pub;  // delivered to the local subscribers at the commit
  std::optional<PresenceEntry> publisher;
  std::function<void(Result<PublishResult>)> done;  // null once answered (timeout: 114)
};

struct ChannelCommit {
  uint32_t partition = 0;
  uint64_t committed = 0;  // the highest committed offset of `epoch`
  std::string epoch;
  std::deque<UncommittedPublication> pending;  // in offset order
};

struct CommitStats {
  uint64_t committed = 0;       // publications committed after waiting for acks
  uint64_t wait_us_sum = 0;     // their time from publish to commit
  uint64_t timeouts = 0;        // publishers answered 114 while their publication waited
  uint64_t refused = 0;         // publishes refused with 114: the uncommitted bound
  uint64_t dropped = 0;         // uncommitted publications dropped: no longer primary
  uint64_t acks_received = 0;   // ack entries received from backups
  uint64_t acks_ignored = 0;    // of them, at another partition epoch or channel epoch
  uint64_t reports = 0;         // replica reports sent to the controller (C-10, C-11)
  uint64_t backup_applied = 0;  // publications applied to backup copies
  uint64_t backup_refused = 0;  // records refused: an older partition epoch (C-13)
  uint64_t copy_held_back = 0;  // copied publications delivered only after their commit
  uint64_t acks_sent = 0;       // ack messages sent to primaries
  uint64_t lease_held = 0;      // publications that waited for a lease before committing (C-25)
  uint64_t copies_dropped = 0;  // C-24: every backup copy dropped at a new incarnation
};

struct CommitState {
  // ---- primary ----
  std::map<std::string, ChannelCommit, std::less<>> channels;  // with uncommitted publications
  size_t count = 0;  // uncommitted publications, all channels
  size_t bytes = 0;  // their channel + data + info bytes
  struct Acked {
    std::string epoch;
    uint64_t offset = 0;
  };
  std::map<std::string, std::map<uint64_t, Acked>, std::less<>> acked;  // channel -> member
  std::map<uint64_t, chp::Clock::time_point> heard;  // member -> its last ack message
  struct Growth {
    uint64_t version = 0;  // the partition version reported
    std::set<uint64_t> members;
  };
  std::map<uint32_t, Growth> growth;  // C-11: counted in the quorum until the map passes version
  chp::Clock::time_point next_report{};
  // ---- backup and copies ----
  std::map<uint64_t, std::map<std::string, AckEntry>> acks_out;  // primary -> channel -> latest
  // Channels whose ack changed and was not sent yet, by primary (sent after each poll; kept
  // when the send failed, so it is tried again).
  std::map<uint64_t, std::set<std::string, std::less<>>> acks_dirty;
  chp::Clock::time_point next_ack_resend{};  // the next heartbeat's ack message
  uint64_t ack_beats = 0;                    // heartbeats so far
  bool acks_resend_all = false;              // the map changed: every ack again, next heartbeat
  uint64_t incarnation = 0;                  // this node's incarnation the copies belong to (C-24)
  std::map<std::string, std::vector<Publication>, std::less<>> held;        // waiting for their top
  std::map<std::string, std::deque<Publication>, std::less<>> undelivered;  // above the commit
  // Copies whose history holds publications above the commit: what reads may show (C-9).
  std::map<std::string, CommitState::Acked, std::less<>> copy_committed;
  CommitStats stats;
  LeaseHolder lease;  // C-25 (lease.h)
};

}  // namespace chorus::broker::node
