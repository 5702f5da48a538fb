// Every disconnect and unsubscribe code the node sends, named once with its reason and its
// reconnect advice (Centrifugo client protocol v2, "Error and disconnect codes";
// docs/protocol/websocket.md and native.md). A client error code is an `Errc` (errc.h); the
// one Chorus adds, 114 "unavailable, retry" (temporary: the cluster could not complete a
// forwarded publish in time), is Errc::kUnavailable there.
// Disconnect codes 3000..3499 tell the client to reconnect, 3500..3999 not to; 4000..4999 are
// the application's (4500.. not to reconnect), reachable through the server API `disconnect`.
#pragma once

#include <cstdint>
#include <string_view>

namespace chorus::broker {

struct CloseCode {
  uint32_t code = 0;
  std::string_view reason;
  bool reconnect = true;  // unsubscribe codes: resubscribe
  bool operator==(const CloseCode&) const = default;
};

// The peer went away (or the node lost it): nothing is sent, the session is forgotten.
inline constexpr CloseCode kDisconnectConnectionClosed{3000, "connection closed", true};
// The client ended its own session (native `disconnect`, N-5): it does not want to reconnect.
inline constexpr CloseCode kDisconnectByClient{3000, "connection closed", false};
inline constexpr CloseCode kDisconnectShutdown{3001, "shutdown", true};
// The connection token expired and was not refreshed in time.
inline constexpr CloseCode kDisconnectExpired{3005, "connection expired", true};
// A queue towards the client was full (BRIEF: back-pressure); it catches up after reconnecting.
inline constexpr CloseCode kDisconnectSlow{3008, "slow", true};
// A recovery could not be completed without a gap (recovery.h, StreamFault).
inline constexpr CloseCode kDisconnectInsufficientState{3010, "insufficient state", true};
inline constexpr CloseCode kDisconnectNoPong{3012, "no pong", true};
inline constexpr CloseCode kDisconnectInvalidToken{3500, "invalid token", false};
inline constexpr CloseCode kDisconnectBadRequest{3501, "bad request", false};
// Opened and never connected within the connect deadline.
inline constexpr CloseCode kDisconnectStale{3502, "stale", false};
// The server API's `disconnect` without a code of its own.
inline constexpr CloseCode kDisconnectForce{3503, "force disconnect", false};

// The codes the server API `disconnect` accepts, and whether one tells the client to reconnect.
inline constexpr uint32_t kMinDisconnectCode = 3000;
inline constexpr uint32_t kMaxDisconnectCode = 4999;
constexpr bool DisconnectReconnects(uint32_t code) {
  return !((code >= 3500 && code < 4000) || code >= 4500);
}

// Unsubscribe pushes (server API `unsubscribe`): 2000..2499 do not resubscribe.
inline constexpr CloseCode kUnsubscribeServer{2000, "server unsubscribe", false};

}  // namespace chorus::broker
