// WebSocket sessions (the Centrifugo JSON protocol, docs/protocol/websocket.md) carried by the
// gateway over the bridge (docs/protocol/bridge.md): the gateway owns the connections; the
// engine owns the sessions and speaks the protocol. Frames go out through WsBridgeTransport.
#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/client_json.h"
#include "transports.h"

namespace chorus::broker::node {

void Engine::HandleWsEvent(const std::string& gateway, const bridge::WsEvent& event) {
  using Kind = bridge::WsEvent::Kind;
  const uint64_t conn_id = event.conn_id;
  Session* s = sessions_.FindByPeer(*ws_transport_, gateway, conn_id);
  if (event.kind == Kind::kOpen) {
    if (s != nullptr) return;  // duplicate open: keep the session
    sessions_.Open(*ws_transport_, gateway, conn_id, NowMs());
    return;
  }
  if (s == nullptr) return;  // closed meanwhile
  const SubscriberId id = s->id;
  if (event.kind == Kind::kClosed) {
    // B-8: the gateway's close code; without a readable one, "connection closed".
    const uint32_t code =
        event.close_code != 0 ? event.close_code : kDisconnectConnectionClosed.code;
    CloseSession(id, code, kDisconnectConnectionClosed.reason, true, /*try_push=*/false);
    return;
  }
  ++counters_.commands;
  s->last_seen_ms = NowMs();
  json::DecodedFrame frame = json::DecodeFrame(event.payload);
  if (frame.malformed) {  // W-5: not JSON: close with 3501 bad request
    ++counters_.malformed;
    Log().debug("websocket {}: malformed frame ({})", conn_id, frame.reason);
    CloseSession(id, kDisconnectBadRequest, true);
    return;
  }
  for (ClientCommand& cmd : frame.commands) {
    s = FindSession(id);
    if (s == nullptr) return;  // a command closed the session
    if (cmd.error != 0) {      // W-8: 104 / 107; the request itself is meaningless
      if (!s->connected || cmd.id == 0) {
        CloseSession(id, kDisconnectBadRequest, true);  // W-7, W-12
        return;
      }
      HandleCommand(*s, cmd);  // the error reply
      continue;
    }
    const bool is_connect = std::holds_alternative<ConnectRequest>(cmd.request);
    const bool is_send = std::holds_alternative<SendRequest>(cmd.request);
    if (cmd.id == 0 && !is_send) {  // W-7: a command without id cannot be answered
      CloseSession(id, kDisconnectBadRequest, true);
      return;
    }
    if (s->connected == is_connect) {  // W-12: connect first; W-14: only once
      CloseSession(id, kDisconnectBadRequest, true);
      return;
    }
    HandleCommand(*s, cmd);
    s = FindSession(id);
    if (is_connect && (s == nullptr || !s->connected)) return;  // W-13: nothing after a refusal
  }
}

void Engine::PingSessions(int64_t now_ms) {
  const int64_t interval_ms = options_.config.client.ping_interval_s * 1000;
  // One batch per transport whose protocol pings (W-9); a ping that cannot be sent is not a
  // missed message: the pong timeout judges the session.
  std::map<Transport*, std::vector<const Session*>> targets;
  sessions_.ForEach([&](Session& s) {
    if (!s.connected || now_ms - s.last_ping_ms < interval_ms) return;
    if (s.transport->encoder().ServerPing().empty()) return;
    s.last_ping_ms = now_ms;
    targets[s.transport].push_back(&s);
  });
  for (const auto& [transport, sessions] : targets) {
    (void)transport->Deliver(sessions, transport->encoder().ServerPing(),
                             [](SubscriberId, SendStatus) {});
  }
}

}  // namespace chorus::broker::node
