// ChannelPresence: who is subscribed to one channel: one entry per connection, with user-level
// views (Chorus extra: first join / last leave of a user), O(1) stats and cursor paging.
// Pure logic; owned by the thread that owns the channel's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::broker {

// One connection's presence in a channel (Centrifugo ClientInfo). Anonymous connections have
// user "" and, as in Centrifugo's presence_stats, all of them count as one user.
struct PresenceEntry {
  std::string client;  // connection id, unique in the cluster
  std::string user;
  std::string conn_info;  // JSON, may be empty
  std::string chan_info;  // JSON, may be empty
  // The cluster member holding the connection and that member's incarnation (docs/cluster.md
  // C-21); 0 when the node has no cluster map yet (a node alone).
  uint64_t node = 0;
  uint64_t incarnation = 0;
  bool operator==(const PresenceEntry&) const = default;
};
std::ostream& operator<<(std::ostream& os, const PresenceEntry& e);

enum class PresenceEventType { kJoin, kLeave, kUserJoin, kUserLeave };
const char* PresenceEventTypeName(PresenceEventType t);

// `entry` is the connection that caused the event (also for user-level events).
struct PresenceEvent {
  PresenceEventType type = PresenceEventType::kJoin;
  PresenceEntry entry;
  bool operator==(const PresenceEvent&) const = default;
};
std::ostream& operator<<(std::ostream& os, const PresenceEvent& e);

struct PresenceStats {
  size_t num_clients = 0;
  size_t num_users = 0;
  bool operator==(const PresenceStats&) const = default;
};

struct PresencePage {
  std::vector<PresenceEntry> entries;  // sorted by client id
  std::string next_cursor;             // "" when this is the last page
};

class ChannelPresence {
 public:
  // Adds a connection. New client: [join], plus [user_join] after it when it is the user's first
  // connection here. Known client, same user: updates conn_info/chan_info/node/incarnation, no
  // events (a re-asserted entry, C-23, is idempotent). Known
  // client, other user: handled as Remove then Add (leave [, user_leave], join [, user_join]).
  // An empty client id is ignored (no events): "" is the paging cursor's start.
  std::vector<PresenceEvent> Add(PresenceEntry entry);

  // Removes a connection: [leave], plus [user_leave] after it when it was the user's last
  // connection here. Unknown client: no events.
  std::vector<PresenceEvent> Remove(std::string_view client);

  PresenceStats Stats() const { return {clients_.size(), users_.size()}; }
  bool empty() const { return clients_.empty(); }
  const PresenceEntry* Find(std::string_view client) const;
  // Connections of `user` in this channel.
  size_t ConnectionsOf(std::string_view user) const;

  // Up to `limit` (at least 1) entries with client id > cursor ("" = from the start), in client
  // id order. Stable under concurrent changes: an entry present during the whole iteration is
  // returned exactly once; entries added or removed meanwhile may or may not be.
  PresencePage Page(std::string_view cursor, size_t limit) const;

  // Distinct users, sorted.
  std::vector<std::string> Users() const;

 private:
  std::map<std::string, PresenceEntry, std::less<>> clients_;
  std::map<std::string, size_t, std::less<>> users_;  // user -> connections
};

}  // namespace chorus::broker
