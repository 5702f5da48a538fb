// The engine bridge codec (docs/protocol/bridge.md): every frame the gateway and the engine
// exchange over the bridge's DEALER/ROUTER pair, encoded and decoded in this one place and used
// by both ends (the gateway's EngineClient and WebSocket hub, the engine's bridge reader).
// Rule numbers B-n are that spec's. Pure functions over zmq frames: no sockets, no Boost, safe
// from any thread. The frames never include the ROUTER's routing id: the engine strips it before
// decoding and puts it in front of what it encodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <zmq.hpp>

namespace chorus::broker::bridge {

using Frames = std::vector<zmq::message_t>;

// B-1: the first frame of every WebSocket message, both ways; an HTTP request or reply starts
// with its 8-byte correlation id instead, so the first frame's size tells the two apart.
inline constexpr std::string_view kWsTag = "ws";
// B-2: the size of correlation ids and connection ids (unsigned 64-bit, little-endian).
inline constexpr size_t kIdBytes = 8;

// HTTP request kinds (B-3, frame 2).
inline constexpr std::string_view kKindApi = "api";
inline constexpr std::string_view kKindHealth = "health";
inline constexpr std::string_view kKindMetrics = "metrics";

// WebSocket events, gateway -> engine (B-6, frame 2).
inline constexpr std::string_view kEventOpen = "open";      // payload: remote "ip:port"
inline constexpr std::string_view kEventFrame = "frame";    // payload: one text message
inline constexpr std::string_view kEventClosed = "closed";  // payload: close code, decimal text

// WebSocket commands, engine -> gateway (B-10, frame 2).
inline constexpr std::string_view kCommandSend = "send";
inline constexpr std::string_view kCommandFanout = "fanout";
inline constexpr std::string_view kCommandClose = "close";

// WebSocket close codes the gateway sends on its own (RFC 6455 §7.4.1). 3008 is the
// Centrifugo "slow" disconnect (broker/core/codes.h kDisconnectSlow; the node checks they agree).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
// Centrifugo's "bad request" disconnect: a binary frame on the JSON protocol (W-1).
inline constexpr uint16_t kCloseBadRequest = 3501;
inline constexpr uint16_t kCloseNoStatus = 1005;
inline constexpr uint16_t kCloseAbnormal = 1006;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseTryAgainLater = 1013;
inline constexpr uint16_t kCloseSlow = 3008;

// B-11: the largest close reason that fits a close frame (125 bytes of payload minus the code).
inline constexpr size_t kMaxCloseReason = 123;

// --- Ids (B-2).
std::string EncodeId(uint64_t id);
// False unless `frame` is exactly 8 bytes.
[[nodiscard]] bool DecodeId(std::string_view frame, uint64_t* id);
[[nodiscard]] bool DecodeId(const zmq::message_t& frame, uint64_t* id);
// Appends one 8-byte id to a fanout id list (B-10).
void AppendId(std::string& ids, uint64_t id);
// The ids of a fanout id list; empty when its size is 0 or not a multiple of 8.
std::vector<uint64_t> DecodeIds(std::string_view ids);

// --- HTTP, gateway -> engine (B-3) and back (B-4).
struct HttpRequest {
  uint64_t id = 0;
  std::string_view kind;    // kKindApi | kKindHealth | kKindMetrics (anything else: answer 404)
  std::string_view method;  // the <method> of POST /api/<method>; empty otherwise
  std::string_view body;
};
struct HttpReply {
  uint64_t id = 0;
  int status = 0;  // 200..599
  std::string content_type;
  std::string body;
  bool operator==(const HttpReply&) const = default;
};
Frames EncodeHttpRequest(uint64_t id, std::string_view kind, std::string_view method,
                         std::string_view body);
Frames EncodeHttpReply(uint64_t id, int status, std::string_view content_type,
                       std::string_view body);
// "200" .. "599"; anything else (1xx included) is not a valid reply status (B-4).
[[nodiscard]] bool ParseReplyStatus(std::string_view text, int* status);
// nullopt unless 4 frames, an 8-byte id and a valid status (B-4).
std::optional<HttpReply> DecodeHttpReply(const Frames& parts);

// --- WebSocket, gateway -> engine (B-6).
struct WsEvent {
  enum class Kind { kOpen, kFrame, kClosed };
  Kind kind = Kind::kOpen;
  uint64_t conn_id = 0;
  std::string_view payload;  // kOpen: remote address; kFrame: the text message
  uint32_t close_code = 0;   // kClosed: the code; 0 when the payload is not one (B-8)
};
Frames EncodeWsEvent(std::string_view event, uint64_t conn_id, std::string_view payload);
// True when `parts` is a WebSocket bridge message (its first frame is exactly "ws", B-1).
bool IsWsMessage(const Frames& parts);

// One gateway -> engine message, decoded (B-1, B-3, B-6); views into `parts`. nullopt when it
// is neither a 4-frame HTTP request nor a 4-frame WebSocket event with a known event name.
using GatewayMessage = std::variant<HttpRequest, WsEvent>;
std::optional<GatewayMessage> DecodeGatewayMessage(const Frames& parts);

// --- WebSocket, engine -> gateway (B-10).
Frames EncodeWsSend(uint64_t conn_id, std::string_view bytes);
// `ids`: N >= 1 ids appended with AppendId.
Frames EncodeWsFanout(std::string_view ids, std::string_view bytes);
Frames EncodeWsClose(uint64_t conn_id, uint32_t code, std::string_view reason);

// One engine -> gateway command, decoded.
struct WsCommand {
  enum class Kind { kSend, kFanout, kClose };
  Kind kind = Kind::kSend;
  std::vector<uint64_t> conn_ids;  // one for kSend and kClose, N for kFanout
  // kSend / kFanout: the message bytes, one buffer shared by every connection it goes to.
  std::shared_ptr<const std::string> payload;
  uint16_t code = 0;   // kClose
  std::string reason;  // kClose, at most kMaxCloseReason bytes (cut at a UTF-8 boundary)

  bool operator==(const WsCommand& o) const {
    return kind == o.kind && conn_ids == o.conn_ids && code == o.code && reason == o.reason &&
           (payload == o.payload || (payload && o.payload && *payload == *o.payload));
  }
};

// Decodes ["ws"] ["send"] [id] [bytes] | ["ws"] ["fanout"] [ids: N x 8 bytes] [bytes] |
// ["ws"] ["close"] [id] [code] [reason]. nullopt when malformed (B-10): wrong frame count,
// unknown command, an id frame of the wrong size (a fanout needs N >= 1), or a close code that
// may not be sent in a close frame.
std::optional<WsCommand> DecodeWsCommand(const Frames& parts);

// True for a close code a server may put in a close frame (RFC 6455 §7.4: 1000-1003,
// 1007-1014, 3000-4999).
bool SendableCloseCode(int code);

}  // namespace chorus::broker::bridge
