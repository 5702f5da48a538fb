// The engine's side of the gateway bridge (docs/protocol/bridge.md): reading the gateway's
// messages (WebSocket events and HTTP requests), sending HTTP answers (now or later: a
// forwarded publish is answered when its primary replies), and /health. The server API itself
// is engine_api.cc.
#include <optional>

#include "broker/node/engine.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {
constexpr size_t kBridgeBatch = 256;  // bridge messages handled per poll
}  // namespace

void Engine::ReadBridge() {
  for (size_t i = 0; i < kBridgeBatch; ++i) {
    bridge::Frames frames;
    zmq::message_t part;
    if (!bridge_.recv(part, zmq::recv_flags::dontwait)) return;
    zmq::message_t routing_id = std::move(part);
    while (true) {
      const bool more = frames.empty() ? routing_id.more() : frames.back().more();
      if (!more) break;
      zmq::message_t next;
      (void)bridge_.recv(next, zmq::recv_flags::none);
      frames.push_back(std::move(next));
    }
    std::optional<bridge::GatewayMessage> msg = bridge::DecodeGatewayMessage(frames);
    if (!msg) {
      Log().warn("bridge: dropped a message of {} frames", frames.size());
      continue;
    }
    if (const auto* ws = std::get_if<bridge::WsEvent>(&*msg)) {
      HandleWsEvent(routing_id.to_string(), *ws);
      continue;
    }
    AnswerBridge(routing_id, std::get<bridge::HttpRequest>(*msg));
  }
  RunPendingCloses();
}

void Engine::SendBridgeReply(const std::string& routing_id, uint64_t request_id,
                             const HttpAnswer& a) {
  bridge::Frames reply = bridge::EncodeHttpReply(request_id, a.status, a.content_type, a.body);
  try {
    bridge_.send(zmq::buffer(routing_id.data(), routing_id.size()), zmq::send_flags::sndmore);
    for (size_t k = 0; k < reply.size(); ++k) {
      bridge_.send(reply[k],
                   k + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    Log().warn("bridge: reply lost: {}", e.what());  // the gateway went away
  }
}

Engine::HttpAnswer Engine::Health() const {
  return {200, "application/json", R"({"status":"ok"})"};
}

}  // namespace chorus::broker::node
