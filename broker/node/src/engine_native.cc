// The native client protocol's transport on the engine's ROUTER (docs/protocol/native.md):
// frames in, sessions by routing id, commands handed to HandleCommand (engine_session.cc).
#include "broker/node/engine.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {
constexpr size_t kReadBatchNative = 1024;  // commands per poll, so the bridge never starves
}  // namespace

void Engine::ReadNative() {
  for (size_t i = 0; i < kReadBatchNative; ++i) {
    zmq::message_t rid, body;
    if (!native_.recv(rid, zmq::recv_flags::dontwait)) return;
    if (!rid.more()) continue;  // cannot happen on a ROUTER; defensive
    (void)native_.recv(body, zmq::recv_flags::none);
    if (body.more()) {  // N-6: one frame per command; drop the whole multipart message
      ++counters_.malformed;
      zmq::message_t extra;
      do {
        (void)native_.recv(extra, zmq::recv_flags::none);
      } while (extra.more());
      continue;
    }
    HandleNative(rid.to_string(), body.to_string_view());
  }
}

void Engine::HandleNative(const std::string& routing_id, std::string_view frame) {
  ++counters_.commands;
  ClientCommand cmd;
  if (!DecodeNativeCommand(frame, cmd)) {
    ++counters_.malformed;
    if (cmd.id != 0) Reply(routing_id, NativeEncoder().Error(cmd.id, 107, "bad request"));
    return;
  }
  auto it = by_routing_.find(routing_id);
  if (it == by_routing_.end()) {
    // A connect, also one with bad params (107); an unknown method (104) carries no request.
    if (std::holds_alternative<ConnectRequest>(cmd.request) && cmd.error != 104) {
      Session& s = NewSession(Transport::kNative, routing_id, 0);
      closed_.erase(routing_id);
      const SubscriberId id = s.id;
      HandleCommand(s, cmd);
      Session* after = FindSession(id);
      if (after != nullptr && !after->connected) ForgetSession(id);  // refused: no session
      return;
    }
    auto closed = closed_.find(routing_id);
    if (closed != closed_.end()) {  // N-1: tell a closed session why
      Reply(routing_id, NativeEncoder().DisconnectPush(closed->second.code, closed->second.reason,
                                                       closed->second.reconnect));
      return;
    }
    Reply(routing_id, NativeEncoder().Error(cmd.id, 101, "unauthorized"));
    return;
  }
  Session& s = sessions_.at(it->second);
  s.last_seen_ms = NowMs();
  HandleCommand(s, cmd);
}

}  // namespace chorus::broker::node
