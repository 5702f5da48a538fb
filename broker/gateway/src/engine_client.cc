#include "engine_client.h"

#include "broker/gateway/bridge_codec.h"
#include "broker/gateway/log.h"

namespace chorus::broker::gateway::detail {

namespace asio = boost::asio;

chp::Result<std::unique_ptr<EngineClient>> EngineClient::Create(asio::io_context& io,
                                                                zmq::context_t& ctx,
                                                                EngineClientOptions options,
                                                                SharedState& shared) {
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(options.endpoint);
    return std::unique_ptr<EngineClient>(
        new EngineClient(io, std::move(socket), std::move(options), shared));
  } catch (const zmq::error_t& e) {
    Log().error("engine bridge: cannot connect to '{}': {}", options.endpoint, e.what());
    return std::error_code(e.num(), std::generic_category());
  }
}

EngineClient::EngineClient(asio::io_context& io, zmq::socket_t socket, EngineClientOptions options,
                           SharedState& shared)
    : options_(std::move(options)),
      shared_(shared),
      counters_(shared.counters),
      socket_(std::move(socket)),
      bridge_(io, socket_, [this](std::vector<zmq::message_t>& parts) { OnMessage(parts); }),
      timer_(io) {}

EngineClient::~EngineClient() {
  Shutdown();
}

void EngineClient::Start() {
  bridge_.Start();
}

std::error_code EngineClient::Submit(std::string_view kind, std::string_view method,
                                     std::string_view body, Callback done) {
  if (shut_down_) return chp::Errc::kUnreachable;
  // Take a place in the server-wide bound first, so that shards racing for the last one
  // cannot both get it.
  if (shared_.in_flight.fetch_add(1, std::memory_order_relaxed) >= options_.max_in_flight) {
    Forget(1);
    return chp::Errc::kBusy;
  }
  const uint64_t id = next_id_++;
  bridge::Frames parts = bridge::EncodeHttpRequest(id, kind, method, body);
  bool sent = false;
  try {
    sent = bridge_.Send(parts);
  } catch (...) {  // unexpected libzmq errors: the io thread's loop logs them
    Forget(1);
    throw;
  }
  if (!sent) {
    Forget(1);
    return chp::Errc::kUnreachable;
  }
  pending_.emplace(id,
                   Pending{std::chrono::steady_clock::now() + options_.timeout, std::move(done)});
  ArmTimer();
  return {};
}

bool EngineClient::SendRaw(std::vector<zmq::message_t>& parts) {
  if (shut_down_) return false;
  return bridge_.Send(parts);
}

void EngineClient::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  Forget(pending_.size());
  pending_.clear();
  timer_.cancel();
  bridge_.Stop();
}

void EngineClient::OnMessage(std::vector<zmq::message_t>& parts) {
  // WebSocket commands start with the 2-byte frame "ws", replies with an 8-byte id.
  if (bridge::IsWsMessage(parts)) {
    if (ws_handler_) return ws_handler_(parts);
    Bump(counters_.ws_malformed);
    return;
  }
  uint64_t id = 0;
  if (parts.empty() || !bridge::DecodeId(parts[0], &id)) {
    Bump(counters_.malformed_replies);
    Log().warn("engine bridge: reply without an 8-byte correlation id dropped");
    return;
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    Bump(counters_.unmatched_replies);
    Log().debug("engine bridge: reply for unknown id {} dropped (late or duplicate)", id);
    return;
  }
  Callback done = std::move(it->second.done);
  pending_.erase(it);
  Forget(1);

  std::optional<bridge::HttpReply> reply = bridge::DecodeHttpReply(parts);
  if (!reply) {
    Bump(counters_.malformed_replies);
    Log().warn("engine bridge: malformed reply for id {} ({} frames)", id, parts.size());
    done(chp::Errc::kMalformed);
    return;
  }
  Bump(counters_.engine_replies);
  done(EngineReply{reply->status, std::move(reply->content_type), std::move(reply->body)});
}

void EngineClient::Forget(size_t n) {
  shared_.in_flight.fetch_sub(n, std::memory_order_relaxed);
}

void EngineClient::ArmTimer() {
  if (timer_armed_ || shut_down_ || pending_.empty()) return;
  timer_armed_ = true;
  timer_.expires_at(pending_.begin()->second.deadline);
  timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code&) {
    if (alive.expired()) return;
    timer_armed_ = false;
    if (!shut_down_) OnTimer();
  });
}

void EngineClient::OnTimer() {
  const auto now = std::chrono::steady_clock::now();
  while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
    Callback done = std::move(pending_.begin()->second.done);
    pending_.erase(pending_.begin());
    Forget(1);
    Bump(counters_.engine_timeouts);
    done(chp::Errc::kTimeout);
  }
  ArmTimer();
}

}  // namespace chorus::broker::gateway::detail
