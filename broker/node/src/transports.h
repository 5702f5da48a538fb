// The engine's two transports (transport.h): native sessions on the native ROUTER and
// WebSocket sessions carried by a gateway over the bridge ROUTER (docs/protocol/bridge.md,
// frames from broker/gateway/bridge_codec.h). Both write to sockets the engine owns, on the
// engine thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "broker/gateway/bridge_codec.h"
#include "broker/node/transport.h"

namespace chorus::broker::node {

// Sends [routing id] + `frames` on a ROUTER without blocking: false when the peer's pipe is
// full (after one retry, see the .cc) or the peer is gone.
bool SendRouted(zmq::socket_t& router, std::string_view routing_id, bridge::Frames& frames);

class NativeTransport final : public Transport {
 public:
  explicit NativeTransport(zmq::socket_t& router) : router_(router) {}
  const Encoder& encoder() const override { return NativeEncoder(); }
  const TransportTraits& traits() const override;
  SendStatus Send(const Session& s, std::string_view body) override;
  size_t Deliver(const std::vector<const Session*>& targets, std::string_view body,
                 const Missed& missed) override;
  void Close(const Session& s, uint32_t code, std::string_view reason, bool reconnect) override;

  // One frame to a routing id that may have no session (errors to strangers, N-1 answers).
  SendStatus SendTo(const std::string& routing_id, zmq::message_t& body);

 private:
  zmq::socket_t& router_;
};

class WsBridgeTransport final : public Transport {
 public:
  explicit WsBridgeTransport(zmq::socket_t& bridge) : bridge_(bridge) {}
  const Encoder& encoder() const override { return JsonEncoder(); }
  const TransportTraits& traits() const override;
  SendStatus Send(const Session& s, std::string_view body) override;
  // One `fanout` command per gateway (B-9): the gateway writes the same bytes to each.
  size_t Deliver(const std::vector<const Session*>& targets, std::string_view body,
                 const Missed& missed) override;
  void Close(const Session& s, uint32_t code, std::string_view reason, bool reconnect) override;

 private:
  zmq::socket_t& bridge_;
};

}  // namespace chorus::broker::node
