// The client command set, independent of its encoding: the value types both client protocols
// decode into and encode from (native msgpack: native_codec.h, docs/protocol/native.md;
// Centrifugo JSON over WebSocket: client_json.h, docs/protocol/websocket.md). The engine's
// handlers work on these types only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "broker/core/history.h"
#include "broker/core/presence.h"

namespace chorus::broker {

// Where a subscription resumes: `recover` asks for the publications after epoch/offset.
struct SubscribeRecovery {
  bool recover = false;
  std::string epoch;
  uint64_t offset = 0;
  bool operator==(const SubscribeRecovery&) const = default;
};

// --- Requests (client -> node). JSON-valued fields (data, info) hold compact JSON text.
struct ConnectRequest {
  std::string token;          // JWT; "" = none
  std::string user;           // native only, honoured with client_insecure
  std::string info;           // JSON; native only, honoured with client_insecure
  std::string name, version;  // the SDK's self-description (informational)
  // Server-side subscriptions to recover (JSON `subs`): channel -> recover, epoch, offset.
  // Honoured only for channels the connection token subscribes (its `channels` claim).
  std::vector<std::pair<std::string, SubscribeRecovery>> subs;
  bool operator==(const ConnectRequest&) const = default;
};
struct SubscribeRequest {
  std::string channel;
  std::string token;  // subscription token (JWT with `channel` claim); "" = none
  std::string info;   // channel info JSON (native only)
  bool recover = false;
  std::string epoch;
  uint64_t offset = 0;
  bool positioned = false, recoverable = false, join_leave = false;  // JSON protocol flags
  bool operator==(const SubscribeRequest&) const = default;
};
struct UnsubscribeRequest {
  std::string channel;
  bool operator==(const UnsubscribeRequest&) const = default;
};
struct PublishRequest {
  std::string channel;
  std::string data;  // JSON text
  bool operator==(const PublishRequest&) const = default;
};
struct PresenceRequest {
  std::string channel;
  std::string cursor;  // Chorus extra: paging
  uint32_t limit = 0;  // 0 = the namespace's page size
  bool operator==(const PresenceRequest&) const = default;
};
struct PresenceStatsRequest {
  std::string channel;
  bool operator==(const PresenceStatsRequest&) const = default;
};
struct HistoryRequest {
  std::string channel;
  int64_t limit = 0;  // 0 = position only; < 0 = up to the node's maximum
  std::optional<StreamPosition> since;
  bool reverse = false;
  bool operator==(const HistoryRequest&) const = default;
};
struct RefreshRequest {
  std::string token;
  bool operator==(const RefreshRequest&) const = default;
};
struct SubRefreshRequest {
  std::string channel, token;
  bool operator==(const SubRefreshRequest&) const = default;
};
struct SendRequest {
  std::string data;
  bool operator==(const SendRequest&) const = default;
};
struct RpcRequest {
  std::string method, data;
  bool operator==(const RpcRequest&) const = default;
};
struct PingRequest {
  bool operator==(const PingRequest&) const = default;
};
struct DisconnectRequest {  // native only: the client ends its session
  bool operator==(const DisconnectRequest&) const = default;
};

using Request =
    std::variant<ConnectRequest, SubscribeRequest, UnsubscribeRequest, PublishRequest,
                 PresenceRequest, PresenceStatsRequest, HistoryRequest, RefreshRequest,
                 SubRefreshRequest, SendRequest, RpcRequest, PingRequest, DisconnectRequest>;

// One decoded command. `error` != 0 means it could not be decoded into a request: answer `id`
// with that code (107 bad request, 104 method not found) when id != 0.
struct ClientCommand {
  uint64_t id = 0;  // 0 = none; JSON protocol ids are uint32, native ones uint64
  Request request;
  uint32_t error = 0;
  bool operator==(const ClientCommand&) const = default;
};

// --- Results (node -> client).
struct SubscribeResult {
  bool recoverable = false, positioned = false;
  std::string epoch;
  uint64_t offset = 0;
  bool recovered = false, was_recovering = false;
  std::vector<Publication> publications;  // recovered, oldest first
  bool expires = false;
  uint32_t ttl_s = 0;
};
struct ConnectResult {
  std::string client, version;
  uint32_t ping_s = 0, pong_s = 0;  // JSON: `ping` seconds and `pong: true`
  bool expires = false;
  uint32_t ttl_s = 0;  // seconds until the token expires (when expires)
  // Server-side subscriptions made by the connect (the token's `channels`), in claim order.
  std::vector<std::pair<std::string, SubscribeResult>> subs;
};
struct PublishResult {
  uint64_t offset = 0;  // 0 / "" without history
  std::string epoch;
};
struct PresenceResult {
  std::vector<PresenceEntry> entries;
  std::string next_cursor;
};
struct HistoryResultOut {
  std::vector<Publication> publications;
  std::string epoch;
  uint64_t offset = 0;
};
struct RefreshResult {
  std::string client, version;
  bool expires = false;
  uint32_t ttl_s = 0;
};
struct SubRefreshResult {
  bool expires = false;
  uint32_t ttl_s = 0;
};
struct EmptyResult {};

}  // namespace chorus::broker
