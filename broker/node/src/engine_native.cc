// The native client protocol's transport on the engine's ROUTER (docs/protocol/native.md):
// frames in, sessions by routing id, commands handed to HandleCommand (engine_session.cc).
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/node/engine.h"
#include "broker/node/log.h"
#include "broker/protocol/native_codec.h"
#include "sync_service.h"
#include "transports.h"

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

void Engine::ReplyNative(const std::string& routing_id, const std::string& body) {
  zmq::message_t msg(body.data(), body.size());
  (void)native_transport_->SendTo(routing_id, msg);  // not a session: nothing to close
}

void Engine::HandleNative(const std::string& routing_id, std::string_view frame) {
  ++counters_.commands;
  ClientCommand cmd;
  const Encoder& enc = native_transport_->encoder();
  auto error = [&](Errc e) { return enc.Error(cmd.id, ToCode(e), make_error_code(e).message()); };
  if (!DecodeNativeCommand(frame, cmd)) {
    ++counters_.malformed;
    if (cmd.id != 0) ReplyNative(routing_id, error(Errc::kBadRequest));
    return;
  }
  Session* s = sessions_.FindByPeer(*native_transport_, routing_id, 0);
  if (s == nullptr) {
    // A connect, also one with bad params (107); an unknown method (104) carries no request.
    if (std::holds_alternative<ConnectRequest>(cmd.request) &&
        cmd.error != ToCode(Errc::kMethodNotFound)) {
      Session& fresh = sessions_.Open(*native_transport_, routing_id, 0, NowMs());
      const SubscriberId id = fresh.id;
      HandleCommand(fresh, cmd);
      Session* after = FindSession(id);
      if (after != nullptr && !after->connected) sessions_.Forget(id);  // refused: no session
      return;
    }
    if (const ClosedSession* closed = sessions_.FindClosed(*native_transport_, routing_id, 0)) {
      // N-1: tell a closed session why
      ReplyNative(routing_id, enc.DisconnectPush(closed->code, closed->reason, closed->reconnect));
      return;
    }
    ReplyNative(routing_id, error(Errc::kUnauthorized));
    return;
  }
  s->last_seen_ms = NowMs();
  // The sync methods are not client protocol requests (no WebSocket form): looked up only for
  // what the codec found unknown, so other commands pay nothing.
  if (cmd.error == ToCode(Errc::kMethodNotFound) && s->connected && HandleNativeSync(*s, frame)) {
    return;
  }
  HandleCommand(*s, cmd);
}

bool Engine::HandleNativeSync(Session& s, std::string_view frame) {
  NativeCommand nc;
  if (!DecodeCommand(frame, nc) || !SyncService::IsSyncMethod(nc.method)) return false;
  const Encoder& enc = native_transport_->encoder();
  if (!sync_) {
    SendTo(s, enc.Error(nc.id, ToCode(Errc::kNotAvailable),
                        "not available: the sync scheduler is disabled ([scheduler] enabled)"));
    return true;
  }
  // params (a msgpack map, absent = empty) as the server API's JSON params.
  nlohmann::json params = nlohmann::json::object();
  if (nc.params != nullptr) {
    msgpack::sbuffer buf;
    msgpack::pack(buf, *nc.params);
    params = nlohmann::json::from_msgpack(buf.data(), buf.data() + buf.size(), true, false);
  }
  if (s.user.empty()) {  // AsUser's first rule, answered here (no user to route by)
    const SyncService::Reply r = sync_->AsUser(nc.method, s.user, std::move(params), NowMs());
    const nlohmann::json& e = r.body["error"];
    SendTo(s, enc.Error(nc.id, e.value("code", ToCode(Errc::kInternal)), e.value("message", "")));
    return true;
  }
  // Served by the primary of `sync:<user>` (engine_sync.cc); the session may be gone when a
  // forwarded call is answered: it is found again by id.
  RouteSync(nc.method, std::move(params), s.user,
            [this, sid = s.id, cmd = nc.id](int status, const nlohmann::json& body) {
              Session* sp = FindSession(sid);
              if (sp == nullptr) return;
              if (status == 200 && body.contains("result")) {
                const std::vector<uint8_t> result = nlohmann::json::to_msgpack(body["result"]);
                SendTo(*sp, EncodeRawResult(
                                cmd, std::string_view(reinterpret_cast<const char*>(result.data()),
                                                      result.size())));
                return;
              }
              const nlohmann::json e = body.is_object() && body.contains("error")
                                           ? body["error"]
                                           : nlohmann::json::object();
              SendTo(*sp, native_transport_->encoder().Error(
                              cmd, e.value("code", ToCode(Errc::kInternal)),
                              e.value("message", std::string("internal error"))));
            });
  return true;
}

}  // namespace chorus::broker::node
