#include "transports.h"

#include <map>

#include "broker/node/log.h"
#include "broker/node/session_table.h"

namespace chorus::broker::node {

bool SendRouted(zmq::socket_t& router, std::string_view routing_id, bridge::Frames& frames) {
  try {
    if (!router.send(zmq::buffer(routing_id.data(), routing_id.size()),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      // The pipe looks full, but the socket learns of the peer's reads only from commands it
      // processes lazily (send/recv look at most every ~1 ms): process them (ZMQ_EVENTS does,
      // unthrottled) and try once more, so a peer that reads is not taken for slow (N-16).
      (void)router.get(zmq::sockopt::events);
      if (!router.send(zmq::buffer(routing_id.data(), routing_id.size()),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return false;  // ROUTER_MANDATORY: this peer's pipe is at its HWM
      }
    }
    for (size_t i = 0; i < frames.size(); ++i) {
      const bool last = i + 1 == frames.size();
      (void)router.send(frames[i], last ? zmq::send_flags::dontwait
                                        : zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    }
    return true;
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) Log().warn("send to peer failed: {}", e.what());
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Native

const TransportTraits& NativeTransport::traits() const {
  static const TransportTraits kTraits{/*remembers_closed=*/true,
                                       /*close_on_refused_connect=*/false,
                                       /*always_join_leave=*/true,
                                       /*always_asks_recovery=*/true};
  return kTraits;
}

SendStatus NativeTransport::SendTo(const std::string& routing_id, zmq::message_t& body) {
  try {
    if (!router_.send(zmq::buffer(routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      // See SendRouted: process pending pipe activations and retry once (N-16).
      (void)router_.get(zmq::sockopt::events);
      if (!router_.send(zmq::buffer(routing_id),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return SendStatus::kSlow;  // ROUTER_MANDATORY: this peer's pipe is at its HWM
      }
    }
    zmq::message_t copy;
    copy.copy(body);  // shares the buffer (reference counted) for all but tiny bodies
    (void)router_.send(copy, zmq::send_flags::dontwait);
    return SendStatus::kSent;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return SendStatus::kGone;
    Log().warn("native send failed: {}", e.what());
    return SendStatus::kGone;
  }
}

SendStatus NativeTransport::Send(const Session& s, std::string_view body) {
  zmq::message_t msg(body.data(), body.size());
  return SendTo(s.routing_id, msg);
}

size_t NativeTransport::Deliver(const std::vector<const Session*>& targets, std::string_view body,
                                const Missed& missed) {
  zmq::message_t msg(body.data(), body.size());
  size_t sent = 0;
  for (const Session* s : targets) {
    const SendStatus st = SendTo(s->routing_id, msg);
    if (st == SendStatus::kSent) {
      ++sent;
    } else {
      missed(s->id, st);
    }
  }
  return sent;
}

void NativeTransport::Close(const Session& s, uint32_t code, std::string_view reason,
                            bool reconnect) {
  (void)Send(s, NativeEncoder().DisconnectPush(code, reason, reconnect));
}

// ---------------------------------------------------------------------------------------------
// WebSocket through the gateway bridge

const TransportTraits& WsBridgeTransport::traits() const {
  static const TransportTraits kTraits{/*remembers_closed=*/false,
                                       /*close_on_refused_connect=*/true,
                                       /*always_join_leave=*/false,
                                       /*always_asks_recovery=*/false};
  return kTraits;
}

SendStatus WsBridgeTransport::Send(const Session& s, std::string_view body) {
  bridge::Frames frames = bridge::EncodeWsSend(s.conn_id, body);
  // A full bridge pipe means this connection misses a message: it is closed as slow.
  return SendRouted(bridge_, s.routing_id, frames) ? SendStatus::kSent : SendStatus::kSlow;
}

size_t WsBridgeTransport::Deliver(const std::vector<const Session*>& targets, std::string_view body,
                                  const Missed& missed) {
  std::map<std::string_view, std::string> by_gateway;  // gateway -> connection ids (B-9)
  for (const Session* s : targets) bridge::AppendId(by_gateway[s->routing_id], s->conn_id);
  size_t sent = 0;
  for (const auto& [gateway, ids] : by_gateway) {
    const size_t n = ids.size() / bridge::kIdBytes;
    bridge::Frames frames = bridge::EncodeWsFanout(ids, body);
    if (SendRouted(bridge_, gateway, frames)) {
      sent += n;
      continue;
    }
    // The gateway's pipe is full: every one of its subscribers here missed this message.
    for (const Session* s : targets) {
      if (s->routing_id == gateway) missed(s->id, SendStatus::kSlow);
    }
  }
  return sent;
}

void WsBridgeTransport::Close(const Session& s, uint32_t code, std::string_view reason,
                              bool /*reconnect: a close frame carries code and reason only*/) {
  bridge::Frames frames = bridge::EncodeWsClose(s.conn_id, code, reason);
  (void)SendRouted(bridge_, s.routing_id, frames);
}

}  // namespace chorus::broker::node
