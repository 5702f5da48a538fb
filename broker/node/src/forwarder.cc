#include "forwarder.h"

#include <memory>
#include <vector>

#include <zmq_addon.hpp>

#include "ack_codec.h"
#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {
constexpr int kBatch = 256;  // messages read per socket per poll
}  // namespace

Forwarder::Forwarder(zmq::context_t& ctx, ForwarderOptions options, Serve serve,
                     OnMessage on_message)
    : ctx_(ctx),
      options_(options),
      serve_(std::move(serve)),
      on_message_(std::move(on_message)),
      router_(ctx, zmq::socket_type::router) {}

std::string Forwarder::Bind(const std::string& endpoint, std::string* why) {
  try {
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::sndhwm, 100'000);
    router_.set(zmq::sockopt::rcvhwm, 100'000);
    router_.bind(endpoint);
    return router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    *why = e.what();
    return "";
  }
}

Forwarder::Peer* Forwarder::PeerFor(uint64_t member, const std::string& endpoint) {
  auto it = peers_.find(member);
  if (it != peers_.end() && it->second.endpoint == endpoint) return &it->second;
  if (it != peers_.end()) peers_.erase(it);  // the member moved (a restart): a fresh socket
  try {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::sndhwm, 100'000);
    d.set(zmq::sockopt::rcvhwm, 100'000);
    d.connect(endpoint);
    return &peers_.emplace(member, Peer{endpoint, std::move(d)}).first->second;
  } catch (const zmq::error_t& e) {
    Log().warn("forward: cannot connect to member {} at {}: {}", member, endpoint, e.what());
    return nullptr;
  }
}

bool Forwarder::Send(uint64_t member, const std::string& endpoint, ForwardRequest req, Done done) {
  const size_t bytes = req.channel.size() + req.data.size() + (req.info ? req.info->size() : 0);
  if (pending_.size() >= options_.max_in_flight ||
      pending_bytes_ + bytes > options_.max_in_flight_bytes) {
    ++stats_.refused;
    return false;
  }
  Peer* peer = PeerFor(member, endpoint);
  if (peer == nullptr) {
    ++stats_.refused;
    return false;
  }
  req.id = next_id_++;
  const std::string body = EncodeForwardRequest(req);
  if (!peer->dealer.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
    ++stats_.refused;  // the pipe to that member is full
    return false;
  }
  ++stats_.forwarded;
  pending_bytes_ += bytes;
  pending_.emplace(req.id, Pending{chp::Clock::now() + options_.timeout, bytes, std::move(done)});
  return true;
}

bool Forwarder::SendMessage(uint64_t member, const std::string& endpoint, const std::string& body) {
  return SendOther(member, endpoint, body);
}

bool Forwarder::SendOther(uint64_t member, const std::string& endpoint, std::string_view body) {
  Peer* peer = PeerFor(member, endpoint);
  return peer != nullptr &&
         peer->dealer.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::dontwait);
}

size_t Forwarder::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
  for (auto& [id, peer] : peers_) items.push_back({peer.dealer.handle(), 0, ZMQ_POLLIN, 0});
  return 1 + peers_.size();
}

void Forwarder::HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) {
  if (items[0].revents & ZMQ_POLLIN) ReadRouter();
  size_t i = 1;
  // A callback may call Send, which may add a peer: collect the ready ones first.
  std::vector<uint64_t> ready;
  for (auto& [id, peer] : peers_) {
    if (items[i++].revents & ZMQ_POLLIN) ready.push_back(id);
  }
  // Replies are matched first and their callbacks run after: a callback may Send (a retry),
  // which may replace a peer's socket.
  std::vector<std::pair<Done, ForwardReply>> answered;
  for (uint64_t id : ready) {
    auto it = peers_.find(id);
    if (it != peers_.end()) ReadPeer(it->second, answered);
  }
  for (auto& [done, reply] : answered) done(&reply);
  Expire(now);
}

chp::Clock::time_point Forwarder::NextDeadline() const {
  return pending_.empty() ? chp::Clock::time_point::max() : pending_.begin()->second.deadline;
}

void Forwarder::ReadRouter() {
  for (int i = 0; i < kBatch; ++i) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      return;
    }
    ForwardRequest req;
    if (parts.size() != 2 || !DecodeForwardRequest(parts[1].to_string_view(), req)) {
      // Other kinds (peer_codec.h ranges): the commit path's one-way messages (10-19) to
      // `on_message_`, services' requests (AddService, the fan-out's 40-49) to their handler,
      // the others (presence, 30-39) to `other_request_`.
      const uint32_t kind = parts.size() == 2 ? PeerMessageKind(parts[1].to_string_view()) : 0;
      std::string other;
      const Service* service = nullptr;
      for (const Service& sv : services_) {
        if (kind != 0 && kind >= sv.first && kind <= sv.last) service = &sv;
      }
      if (kind >= 10 && kind <= 19 && on_message_) {
        on_message_(parts[1].to_string_view());
      } else if (service != nullptr) {
        // A service's request (e.g. the fan-out, 40-49): answered at once, or dropped.
        std::optional<std::string> answer = service->serve(parts[1].to_string_view());
        if (!answer) {
          ++stats_.malformed;
        } else {
          SendBack(parts[0], *answer);
        }
      } else if (parts.size() != 2 || !other_request_ ||
                 !other_request_(parts[1].to_string_view(), &other)) {
        ++stats_.malformed;
      } else if (!other.empty()) {
        SendBack(parts[0], other);
      }
      continue;
    }
    ++stats_.served;
    auto routing = std::make_shared<std::string>(parts[0].to_string());
    serve_(req, [this, routing, sender = req.sender](const ForwardReply& reply) {
      const std::string body = EncodeForwardReply(reply);
      try {
        if (!router_.send(zmq::buffer(*routing),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
            !router_.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
          Log().warn("forward: reply to member {} dropped (pipe full)", sender);
        }
      } catch (const zmq::error_t& e) {
        Log().warn("forward: reply to member {} lost: {}", sender, e.what());  // gone
      }
    });
  }
}

void Forwarder::SendBack(const zmq::message_t& routing_id, const std::string& body) {
  try {
    zmq::message_t id(routing_id.data(), routing_id.size());
    if (!router_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
        !router_.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
      Log().warn("peer: answer dropped (pipe full)");
    }
  } catch (const zmq::error_t& e) {
    Log().warn("peer: answer lost: {}", e.what());  // the asker is gone
  }
}

void Forwarder::AddService(uint32_t first, uint32_t last, ServeOther serve) {
  services_.push_back({first, last, std::move(serve)});
}

void Forwarder::ReadPeer(Peer& peer, std::vector<std::pair<Done, ForwardReply>>& answered) {
  for (int i = 0; i < kBatch; ++i) {
    zmq::message_t msg;
    if (!peer.dealer.recv(msg, zmq::recv_flags::dontwait)) return;
    ForwardReply reply;
    if (!DecodeForwardReply(msg.to_string_view(), reply)) {
      if (other_reply_) {
        other_reply_(msg.to_string_view());
      } else {
        ++stats_.malformed;
      }
      continue;
    }
    auto it = pending_.find(reply.id);
    if (it == pending_.end()) continue;  // answered after its timeout: already told
    pending_bytes_ -= it->second.bytes;
    answered.emplace_back(std::move(it->second.done), std::move(reply));
    pending_.erase(it);
    ++stats_.replies;
  }
}

void Forwarder::Expire(chp::Clock::time_point now) {
  while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
    Pending p = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    pending_bytes_ -= p.bytes;
    ++stats_.timeouts;
    p.done(nullptr);
  }
}

}  // namespace chorus::broker::node
