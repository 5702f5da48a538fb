#include "forwarder.h"

#include <vector>

#include <zmq_addon.hpp>

#include "broker/node/log.h"

namespace chorus::broker::node {
namespace {
constexpr int kBatch = 256;  // messages read per socket per poll
}  // namespace

Forwarder::Forwarder(zmq::context_t& ctx, ForwarderOptions options, Serve serve)
    : ctx_(ctx),
      options_(options),
      serve_(std::move(serve)),
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
    if (parts.size() != 2) {
      ++stats_.malformed;
      continue;
    }
    ForwardRequest req;
    std::string body;
    if (DecodeForwardRequest(parts[1].to_string_view(), req)) {
      ++stats_.served;
      body = EncodeForwardReply(serve_(req));
    } else {
      std::optional<std::string> other = ServeOtherKind(parts[1].to_string_view());
      if (!other) {
        ++stats_.malformed;
        continue;
      }
      body = std::move(*other);
    }
    try {
      if (!router_.send(parts[0], zmq::send_flags::sndmore | zmq::send_flags::dontwait) ||
          !router_.send(zmq::buffer(body), zmq::send_flags::dontwait)) {
        Log().warn("peer: reply dropped (pipe full)");
      }
    } catch (const zmq::error_t& e) {
      Log().warn("peer: reply lost: {}", e.what());  // the sender is gone
    }
  }
}

void Forwarder::AddService(uint32_t first, uint32_t last, ServeOther serve) {
  services_.push_back({first, last, std::move(serve)});
}

std::optional<std::string> Forwarder::ServeOtherKind(std::string_view bytes) {
  const std::optional<uint32_t> kind = PeerMessageKind(bytes);
  if (!kind) return std::nullopt;
  for (const Service& s : services_) {
    if (*kind >= s.first && *kind <= s.last) return s.serve(bytes);
  }
  return std::nullopt;
}

void Forwarder::ReadPeer(Peer& peer, std::vector<std::pair<Done, ForwardReply>>& answered) {
  for (int i = 0; i < kBatch; ++i) {
    zmq::message_t msg;
    if (!peer.dealer.recv(msg, zmq::recv_flags::dontwait)) return;
    ForwardReply reply;
    if (!DecodeForwardReply(msg.to_string_view(), reply)) {
      ++stats_.malformed;
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
