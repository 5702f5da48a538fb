// The WebSocket part of the engine bridge (README "Engine bridge", "WebSocket frames"): the
// events the gateway sends about its WebSocket connections and the commands the engine sends
// back. Pure encoding and decoding of zmq frames; no sockets, no Boost.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

namespace chorus::broker::gateway::detail {

// First frame of every WebSocket bridge message, both ways. HTTP replies start with an
// 8-byte correlation id instead, so the first frame's size tells the two apart.
inline constexpr std::string_view kWsTag = "ws";

// Gateway -> engine events (frame 2).
inline constexpr std::string_view kWsOpen = "open";      // payload: remote "ip:port"
inline constexpr std::string_view kWsFrame = "frame";    // payload: one text message
inline constexpr std::string_view kWsClosed = "closed";  // payload: close code, decimal text

// Close codes the gateway uses (RFC 6455 §7.4.1; 3008 is Centrifugo's "slow").
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
inline constexpr uint16_t kCloseNoStatus = 1005;
inline constexpr uint16_t kCloseAbnormal = 1006;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseTryAgainLater = 1013;
inline constexpr uint16_t kCloseSlow = 3008;

// The largest close reason that fits a close frame (125 bytes of payload minus the code).
inline constexpr size_t kMaxCloseReason = 123;

// ["ws"] [event] [conn id: 8 bytes LE] [payload].
std::vector<zmq::message_t> EncodeWsEvent(std::string_view event, uint64_t conn_id,
                                          std::string_view payload);

// True when `parts` is a WebSocket bridge message (its first frame is exactly "ws").
bool IsWsMessage(const std::vector<zmq::message_t>& parts);

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
// ["ws"] ["close"] [id] [code] [reason]. nullopt when malformed: wrong frame count, unknown
// command, an id frame of the wrong size (a fanout needs N >= 1), or a close code that may not
// be sent in a close frame (RFC 6455 §7.4: 1000-1003, 1007-1014, 3000-4999).
std::optional<WsCommand> DecodeWsCommand(const std::vector<zmq::message_t>& parts);

// True for a close code a server may put in a close frame.
bool SendableCloseCode(int code);

}  // namespace chorus::broker::gateway::detail
