// WebSocket sessions (the Centrifugo JSON protocol, docs/protocol/websocket.md) carried by the
// gateway over the bridge (broker/gateway/README.md, "WebSocket bridge frames"): the gateway
// owns the connections; the engine owns the sessions and speaks the protocol.
#include <cstring>

#include "broker/node/client_json.h"
#include "broker/node/engine.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {

std::string ConnIdBytes(uint64_t id) {
  std::string out(sizeof id, '\0');
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

}  // namespace

bool Engine::SendBridge(const std::string& gateway,
                        std::initializer_list<std::string_view> frames) {
  try {
    if (!bridge_.send(zmq::buffer(gateway), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)bridge_.get(zmq::sockopt::events);  // process pending pipe activations, retry once
      if (!bridge_.send(zmq::buffer(gateway),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return false;
      }
    }
    size_t i = 0;
    for (std::string_view f : frames) {
      const bool last = ++i == frames.size();
      (void)bridge_.send(
          zmq::buffer(f.data(), f.size()),
          last ? zmq::send_flags::dontwait : zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    }
    return true;
  } catch (const zmq::error_t& e) {
    Log().warn("bridge: send to the gateway failed: {}", e.what());
    return false;
  }
}

void Engine::CloseWsConnection(const Session& s, uint32_t code, std::string_view reason) {
  const std::string code_text = std::to_string(code);
  (void)SendBridge(s.routing_id, {"ws", "close", ConnIdBytes(s.conn_id), code_text, reason});
}

void Engine::HandleWsEvent(const std::string& gateway, std::string_view event, uint64_t conn_id,
                           std::string_view payload) {
  auto it = by_conn_.find({gateway, conn_id});
  if (event == "open") {
    if (it != by_conn_.end()) return;  // duplicate open: keep the session
    NewSession(Transport::kWebSocket, gateway, conn_id);
    return;
  }
  if (it == by_conn_.end()) return;  // closed meanwhile
  const SubscriberId id = it->second;
  if (event == "closed") {
    uint32_t code = 3000;
    if (!payload.empty())
      code = static_cast<uint32_t>(std::strtoul(std::string(payload).c_str(), nullptr, 10));
    CloseSession(id, code, "connection closed", true, /*try_push=*/false);
    return;
  }
  if (event != "frame") return;
  ++counters_.commands;
  Session* s = FindSession(id);
  s->last_seen_ms = NowMs();
  json::DecodedFrame frame = json::DecodeFrame(payload);
  if (frame.malformed) {  // W-5: not JSON: close with 3501 bad request
    ++counters_.malformed;
    Log().debug("websocket {}: malformed frame ({})", conn_id, frame.reason);
    CloseSession(id, 3501, "bad request", false, true);
    return;
  }
  for (ClientCommand& cmd : frame.commands) {
    s = FindSession(id);
    if (s == nullptr) return;  // a command closed the session
    if (cmd.error != 0) {      // W-8: 104 / 107; the request itself is meaningless
      if (!s->connected || cmd.id == 0) {
        CloseSession(id, 3501, "bad request", false, true);  // W-7, W-12
        return;
      }
      HandleCommand(*s, cmd);  // the error reply
      continue;
    }
    const bool is_connect = std::holds_alternative<ConnectRequest>(cmd.request);
    const bool is_send = std::holds_alternative<SendRequest>(cmd.request);
    if (cmd.id == 0 && !is_send) {  // W-7: a command without id cannot be answered
      CloseSession(id, 3501, "bad request", false, true);
      return;
    }
    if (s->connected == is_connect) {  // W-12: connect first; W-14: only once
      CloseSession(id, 3501, "bad request", false, true);
      return;
    }
    HandleCommand(*s, cmd);
    s = FindSession(id);
    if (is_connect && (s == nullptr || !s->connected)) return;  // W-13: nothing after a refusal
  }
}

void Engine::PingWebSockets(int64_t now_ms) {
  const int64_t interval_ms = options_.config.client.ping_interval_s * 1000;
  std::map<std::string, std::string> targets;  // gateway -> connection ids
  for (auto& [id, s] : sessions_) {
    if (s.transport != Transport::kWebSocket || !s.connected) continue;
    if (now_ms - s.last_ping_ms < interval_ms) continue;
    s.last_ping_ms = now_ms;
    targets[s.routing_id].append(ConnIdBytes(s.conn_id));
  }
  for (const auto& [gateway, ids] : targets) {
    (void)SendBridge(gateway, {"ws", "fanout", ids, json::kPing});  // W-9
  }
}

}  // namespace chorus::broker::node
