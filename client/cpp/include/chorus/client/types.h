// Message value types of the native client protocol (docs/protocol/native.md, "Methods" and
// "Push bodies"): plain values with defaulted ==, printable, no I/O. JSON payloads (publication
// data, client and channel info) are kept as the JSON text the node sent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace chorus::client {

// `{client, user, conn_info, chan_info}` of a publisher or presence member.
struct ClientInfo {
  std::string client;
  std::string user;
  std::string conn_info;  // JSON text, "" = none
  std::string chan_info;  // JSON text, "" = none
  bool operator==(const ClientInfo&) const = default;
};

// A position in a channel's stream (broker-core.md, "Streams").
struct StreamPosition {
  uint64_t offset = 0;
  std::string epoch;
  bool operator==(const StreamPosition&) const = default;
};

// A publication map. `offset` is 0 when the channel keeps no history.
struct Publication {
  uint64_t offset = 0;
  std::string data;                // JSON text
  std::optional<ClientInfo> info;  // absent when published through the server API
  std::map<std::string, std::string> tags;
  bool operator==(const Publication&) const = default;
};

// `connect` result. `ping` and `pong` are in seconds.
struct ConnectResult {
  std::string client;
  std::string version;
  uint32_t ping = 0;
  uint32_t pong = 0;
  bool operator==(const ConnectResult&) const = default;
};

// `subscribe` result. When handed to SubscriptionHandlers::on_subscribed, `publications` is
// empty: the recovered publications are delivered to on_publication right after, oldest first.
struct SubscribeResult {
  bool recoverable = false;
  std::string epoch;
  uint64_t offset = 0;  // the stream top
  bool recovered = false;
  bool was_recovering = false;
  std::vector<Publication> publications;
  bool operator==(const SubscribeResult&) const = default;
};

// `publish` result: both 0 / "" when the channel keeps no history.
struct PublishResult {
  uint64_t offset = 0;
  std::string epoch;
  bool operator==(const PublishResult&) const = default;
};

// `presence` result: one page.
struct PresenceResult {
  std::map<std::string, ClientInfo> presence;  // client id -> info
  std::string next_cursor;                     // "" on the last page
  bool operator==(const PresenceResult&) const = default;
};

// `presence_stats` result.
struct PresenceStatsResult {
  uint64_t num_clients = 0;
  uint64_t num_users = 0;
  bool operator==(const PresenceStatsResult&) const = default;
};

// `sync_submit` params (native.md N-22): a source directory on the node (under its
// scheduler.source_roots), a catalog name (^[A-Za-z0-9_-]{1,64}$) and a tier ("" = the node's
// default). The job's user is the session's (N-23).
struct SyncSubmitOptions {
  std::string source, catalog, tier;
  bool operator==(const SyncSubmitOptions&) const = default;
};

// A sync job as `sync_status` reports it (docs/scheduler.md, "Running in chorusd"): state
// queued | running | succeeded | failed | cancelled; phase listing | syncing | the state;
// done / failed / total count files.
struct SyncJob {
  uint64_t id = 0;
  std::string user, tier, source, catalog, state, phase;
  uint64_t done = 0, failed = 0, total = 0;
  struct Tasks {
    uint64_t total = 0, done = 0, failed = 0, running = 0, retries = 0, leases_expired = 0;
    bool operator==(const Tasks&) const = default;
  } tasks;
  std::vector<std::string> errors;
  uint64_t errors_dropped = 0;
  bool final() const { return state == "succeeded" || state == "failed" || state == "cancelled"; }
  bool operator==(const SyncJob&) const = default;
};

// `history` parameters. limit: 0 = position only, < 0 = up to the node's maximum.
struct HistoryOptions {
  int64_t limit = 0;
  std::optional<StreamPosition> since;
  bool reverse = false;
  bool operator==(const HistoryOptions&) const = default;
};

// `history` result.
struct HistoryResult {
  std::vector<Publication> publications;
  std::string epoch;
  uint64_t offset = 0;
  bool operator==(const HistoryResult&) const = default;
};

// Why a session ended: a `disconnect` push, or the client's own reason (Errc codes 1..99).
// `reconnect` tells whether the client is going to reconnect.
struct DisconnectInfo {
  uint32_t code = 0;
  std::string reason;
  bool reconnect = false;
  bool operator==(const DisconnectInfo&) const = default;
};

std::ostream& operator<<(std::ostream& os, const ClientInfo& v);
std::ostream& operator<<(std::ostream& os, const StreamPosition& v);
std::ostream& operator<<(std::ostream& os, const Publication& v);
std::ostream& operator<<(std::ostream& os, const ConnectResult& v);
std::ostream& operator<<(std::ostream& os, const SubscribeResult& v);
std::ostream& operator<<(std::ostream& os, const PublishResult& v);
std::ostream& operator<<(std::ostream& os, const DisconnectInfo& v);
std::ostream& operator<<(std::ostream& os, const SyncJob& v);

}  // namespace chorus::client
