// The node-to-node presence messages on the peer endpoint (docs/cluster.md §10, C-21..C-23):
// a join or leave of a local client forwarded to the channel's partition primary, and a
// presence read asked of the primary by a node that holds no live copy of the channel. Plain
// value types; the msgpack encoding is here and used by both ends (peer type range 30-39).
//   update: [30, sender, incarnation, partition, partition_epoch, channel, join, client, user,
//            conn_info, chan_info]
//   sync:   [34, sender, incarnation, partition, partition_epoch, [[channel, client]...]]
//   query:  [32, id, sender, channel, mode, cursor, limit]
//   answer: [33, id, status, error, [[client, user, conn_info, chan_info, node, incarnation]...],
//            next_cursor, num_clients, num_users, [user...]]  (9 elements)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/core/presence.h"

#include "peer_codec.h"  // PeerMessageKind

namespace chorus::broker::node {

// A join (the entry) or a leave (entry.client only) of a client of `sender`, in the order the
// sender's engine saw them; the primary applies them in arrival order (one DEALER per peer).
struct PresenceUpdate {
  uint64_t sender = 0;       // member id
  uint64_t incarnation = 0;  // the sender's incarnation (C-22: a later one replaces it)
  uint32_t partition = 0;
  uint64_t partition_epoch = 0;  // the sender's map (C-13: older than the primary's: dropped)
  std::string channel;
  bool join = true;
  PresenceEntry entry;  // node/incarnation are not sent: they are sender/incarnation
  // A sync (kind 34; `channel`, `join` and `entry` unused): after a primary change the sender
  // lists every (channel, client) it holds in `partition`, after the joins it re-asserted
  // (C-23); the primary drops the sender's entries of that partition not listed, one leave
  // each (a leave sent to the dead primary is repaired this way).
  bool sync = false;
  std::vector<std::pair<std::string, std::string>> held;  // (channel, client), sync only
  bool operator==(const PresenceUpdate&) const = default;
};

enum class PresenceQueryMode : uint32_t { kPage = 0, kStats = 1, kUsers = 2 };

struct PresenceQuery {
  uint64_t id = 0;  // the sender's request id
  uint64_t sender = 0;
  std::string channel;
  PresenceQueryMode mode = PresenceQueryMode::kPage;
  std::string cursor;  // kPage: entries after this client id
  uint32_t limit = 0;  // kPage: at most this many (the asking node clamped it)
  bool operator==(const PresenceQuery&) const = default;
};

enum class PresenceAnswerStatus : uint32_t {
  kOk = 0,
  kNotPrimary = 1,  // the receiver's map does not make it the channel's primary
  kError = 2,       // `error` is a broker Errc
};

struct PresenceAnswer {
  uint64_t id = 0;
  PresenceAnswerStatus status = PresenceAnswerStatus::kOk;
  uint32_t error = 0;
  std::vector<PresenceEntry> entries;  // kPage
  std::string next_cursor;             // kPage
  uint64_t num_clients = 0;            // every mode
  uint64_t num_users = 0;
  std::vector<std::string> users;  // kUsers
  bool operator==(const PresenceAnswer&) const = default;
};

inline constexpr uint32_t kPresenceUpdateKind = 30;
inline constexpr uint32_t kPresenceQueryKind = 32;
inline constexpr uint32_t kPresenceAnswerKind = 33;
inline constexpr uint32_t kPresenceSyncKind = 34;

std::string EncodePresenceUpdate(const PresenceUpdate& u);  // kind 34 when u.sync
std::string EncodePresenceQuery(const PresenceQuery& q);
std::string EncodePresenceAnswer(const PresenceAnswer& a);
// False when `bytes` is not a well-formed message of that kind (it is then dropped).
bool DecodePresenceUpdate(std::string_view bytes, PresenceUpdate& out);  // kind 30 or 34
bool DecodePresenceQuery(std::string_view bytes, PresenceQuery& out);
bool DecodePresenceAnswer(std::string_view bytes, PresenceAnswer& out);

}  // namespace chorus::broker::node
