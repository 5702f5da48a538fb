// The Centrifugo client protocol v2 in JSON (what the `centrifuge` npm SDK 5.x speaks over
// WebSocket), docs/protocol/websocket.md: decoding a text frame into ClientCommands and encoding
// replies and pushes. The only place WebSocket JSON messages are (de)serialised; the sibling of
// native_codec.h. Pure functions, no I/O, safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/history.h"
#include "broker/core/presence.h"
#include "broker/protocol/client_protocol.h"

namespace chorus::broker::json {

inline constexpr size_t kMaxCommandsPerFrame = 100;  // W-4
inline constexpr size_t kMaxDataDepth = 64;          // W-6: nesting of a `data` value
// The server's ping, and a client's pong: an empty object (W-9).
inline constexpr std::string_view kPing = "{}";
// Built-in rpc methods (W-20): Chorus extras reachable from the unmodified SDK.
inline constexpr std::string_view kRpcPresencePage = "chorus.presence_page";
inline constexpr std::string_view kRpcPresenceUsers = "chorus.presence_users";

// One decoded text frame (W-3..W-8).
struct DecodedFrame {
  // The commands in frame order, pongs left out. A command with `error` != 0 could not be
  // decoded: 107 (not an object, a bad `id`, a field of the wrong type, a publish without data)
  // or 104 (an object with an id and none of the known method fields). Its `request` is then
  // meaningless; answer `id` with the error, or close with 3501 when id == 0 (W-7).
  std::vector<ClientCommand> commands;
  size_t pongs = 0;         // lines that were `{}` (no id, no method field)
  bool malformed = false;   // some line is not JSON, too deep or too many lines: close with 3501;
                            // `commands` is then empty (nothing in the frame is executed)
  std::string_view reason;  // why it is malformed (static text, for logs)
};

// Decodes one WebSocket text message: commands separated by '\n', blank lines skipped (W-3).
// Data values (publish/rpc/send `data`) are returned minified; strings are valid UTF-8.
[[nodiscard]] DecodedFrame DecodeFrame(std::string_view text,
                                       size_t max_commands = kMaxCommandsPerFrame);

// A ClientInfo as compact JSON: {"client","user"[,"conn_info","chan_info" spliced raw]} (the
// form Publication::info keeps; the native codec's ClientInfoToJson is this).
std::string ClientInfoJson(const PresenceEntry& e);

// --- Replies: one JSON object each, `{"id":N,"<method>":{...}}`. Zero, empty and false fields
// are left out (W-11) except where the SDK reads them without a default (presence_stats
// counts, the presence map).
std::string EncodeReply(uint32_t id, const ConnectResult& r);
std::string EncodeReply(uint32_t id, const SubscribeResult& r);
std::string EncodeReply(uint32_t id, const PublishResult& r);
std::string EncodeReply(uint32_t id, const PresenceResult& r);
std::string EncodeReply(uint32_t id, const PresenceStats& r);
std::string EncodeReply(uint32_t id, const HistoryResultOut& r);
std::string EncodeReply(uint32_t id, const RefreshResult& r);
std::string EncodeReply(uint32_t id, const SubRefreshResult& r);
std::string EncodeUnsubscribeReply(uint32_t id);  // {"id":N,"unsubscribe":{}}
std::string EncodePingReply(uint32_t id);         // {"id":N,"ping":{}}
// `data_json`: compact JSON spliced as is ("" = no data field).
std::string EncodeRpcReply(uint32_t id, std::string_view data_json);
std::string EncodeError(uint32_t id, uint32_t code, std::string_view message,
                        bool temporary = false);

// --- Built-in rpc methods (W-20). Params decoders return nullopt when `data_json` is not an
// object with a string `channel` and correctly typed optional fields (answer 107).
// chorus.presence_page: {"channel": str, "cursor": str, "limit": uint}.
std::optional<PresenceRequest> DecodePresencePageParams(std::string_view data_json);
// chorus.presence_users: {"channel": str}.
std::optional<PresenceStatsRequest> DecodePresenceUsersParams(std::string_view data_json);
// {"id":N,"rpc":{"data":{"presence":{...},"next_cursor":".."}}}
std::string EncodePresencePageRpcReply(uint32_t id, const PresenceResult& r);
// {"id":N,"rpc":{"data":{"users":[...],"num_users":N}}}
std::string EncodePresenceUsersRpcReply(uint32_t id, const std::vector<std::string>& users,
                                        size_t num_users);

// --- Pushes: `{"push":{"channel":"..","<type>":{...}}}`. Each is built once per event and
// sent as is to every subscriber. Publication::data and info are spliced raw (compact JSON).
std::string EncodePubPush(std::string_view channel, const Publication& p);
std::string EncodeJoinPush(std::string_view channel, const PresenceEntry& e);
std::string EncodeLeavePush(std::string_view channel, const PresenceEntry& e);
std::string EncodeUnsubscribePush(std::string_view channel, uint32_t code, std::string_view reason);
std::string EncodeDisconnectPush(uint32_t code, std::string_view reason, bool reconnect);
std::string EncodeMessagePush(std::string_view data_json);
// A server-side subscription made after connect (server API `subscribe`, W-25).
std::string EncodeSubscribePush(std::string_view channel, const SubscribeResult& r);

// Appends one encoded message to an outgoing frame, '\n'-separated (W-10).
void AppendToFrame(std::string& frame, std::string_view message);

}  // namespace chorus::broker::json
