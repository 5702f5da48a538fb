// Transport: how the engine reaches the peer of one client session, whatever carries it. Today
// two: the native ROUTER (docs/protocol/native.md) and WebSocket connections of a gateway over
// the bridge (docs/protocol/bridge.md); a request forwarded by another node of the cluster can
// become a third without touching the command handlers, which only see `Session` and
// `Transport`. Implementations live in node/src (transports.h); every one belongs to the engine
// thread, which owns the sockets they write to.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "broker/channels/channel_table.h"  // SubscriberId
#include "broker/protocol/protocol_encoder.h"

namespace chorus::broker::node {

struct Session;

enum class SendStatus { kSent, kSlow, kGone };

// What differs between the client protocols a transport carries (rules cited).
struct TransportTraits {
  // N-17: a later command from the peer of a closed session learns why it was closed.
  bool remembers_closed = false;
  // W-13: a refused connect (other than 109) closes the connection instead of a reply.
  bool close_on_refused_connect = false;
  // N-13: every subscription takes join/leave pushes (WebSocket: when asked, W-21).
  bool always_join_leave = false;
  // Native clients always ask for recoverable subscriptions.
  bool always_asks_recovery = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // The protocol spoken to this transport's peers.
  virtual const Encoder& encoder() const = 0;
  virtual const TransportTraits& traits() const = 0;
  // One message to the peer of `s`, without blocking.
  virtual SendStatus Send(const Session& s, std::string_view body) = 0;
  // The same message (encoded once) to every session of `targets` (all of this transport);
  // `missed` is called for each one it could not reach. Returns how many it reached.
  using Missed = std::function<void(SubscriberId, SendStatus)>;
  virtual size_t Deliver(const std::vector<const Session*>& targets, std::string_view body,
                         const Missed& missed) = 0;
  // Tells the peer that its session ends (a disconnect push, a close frame); best effort.
  virtual void Close(const Session& s, uint32_t code, std::string_view reason, bool reconnect) = 0;
};

}  // namespace chorus::broker::node
