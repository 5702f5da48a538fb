#include "ws_hub.h"

#include <chrono>

#include "broker/gateway/bridge_codec.h"
#include "broker/gateway/log.h"
#include "engine_client.h"

namespace chorus::broker::gateway::detail {

using bridge::DecodeWsCommand;
using bridge::EncodeWsEvent;
using bridge::kCloseSlow;
using bridge::kEventClosed;
using bridge::kEventFrame;
using bridge::kEventOpen;
using bridge::WsCommand;

namespace {
// While `closed` reports wait for the DEALER, they are retried this often.
constexpr std::chrono::milliseconds kRetryInterval{20};
}  // namespace

WsHub::WsHub(boost::asio::io_context& io, ServerContext& ctx) : ctx_(ctx), retry_(io) {}

uint64_t WsHub::Open(WsConnection* c, std::string_view remote) {
  if (shut_down_ || ctx_.stopping) return 0;
  const uint64_t id = ctx_.shared->next_conn_id.fetch_add(1, std::memory_order_relaxed);
  if (!Send(EncodeWsEvent(kEventOpen, id, remote))) {
    Log().warn("ws: engine bridge would block; connection {} from {} refused", id, remote);
    return 0;
  }
  conns_.emplace(id, c);
  Bump(ctx_.counters->ws_open);
  return id;
}

bool WsHub::Frame(uint64_t id, std::string_view message) {
  if (!Send(EncodeWsEvent(kEventFrame, id, message))) return false;
  Bump(ctx_.counters->ws_frames_in);
  return true;
}

void WsHub::Closed(uint64_t id, uint16_t code, bool report) {
  if (conns_.erase(id) == 0) return;
  Bump(ctx_.counters->ws_closed);
  if (code == kCloseSlow) Bump(ctx_.counters->ws_slow_closed);
  if (!report) return;
  if (Send(EncodeWsEvent(kEventClosed, id, std::to_string(code)))) return;
  if (unsent_closed_.size() >= ctx_.options.max_connections) {
    Log().error("ws: engine bridge blocked; 'closed' report for connection {} dropped", id);
    return;
  }
  unsent_closed_.emplace_back(id, code);
  ArmRetry();
}

void WsHub::OnEngineMessage(const std::vector<zmq::message_t>& parts) {
  std::optional<WsCommand> c = DecodeWsCommand(parts);
  if (!c) {
    Bump(ctx_.counters->ws_malformed);
    Log().warn("ws: malformed engine command dropped ({} frames, '{}')", parts.size(),
               parts.size() > 1 ? parts[1].to_string() : std::string());
    return;
  }
  for (const uint64_t id : c->conn_ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) {
      Bump(ctx_.counters->ws_unknown_conn);  // it may have just closed
      continue;
    }
    if (c->kind == WsCommand::Kind::kClose) {
      // Unregister first: the connection is gone for the engine already.
      WsConnection* conn = it->second;
      Closed(id, c->code, /*report=*/false);
      conn->CloseFromEngine(c->code, c->reason);
    } else {
      it->second->Push(c->payload);
    }
  }
}

void WsHub::Shutdown() {
  if (shut_down_) return;
  FlushUnsent();
  shut_down_ = true;
  unsent_closed_.clear();
  retry_.cancel();
}

bool WsHub::Send(std::vector<zmq::message_t> parts) {
  if (shut_down_ || ctx_.engine == nullptr) return false;
  // Pending `closed` reports go first, so the engine hears about connections in order.
  if (!FlushUnsent()) return false;
  return ctx_.engine->SendRaw(parts);
}

bool WsHub::FlushUnsent() {
  while (!unsent_closed_.empty()) {
    const auto [id, code] = unsent_closed_.front();
    auto parts = EncodeWsEvent(kEventClosed, id, std::to_string(code));
    if (ctx_.engine == nullptr || !ctx_.engine->SendRaw(parts)) return false;
    unsent_closed_.pop_front();
  }
  return true;
}

void WsHub::ArmRetry() {
  if (retry_armed_ || shut_down_) return;
  retry_armed_ = true;
  retry_.expires_after(kRetryInterval);
  retry_.async_wait([this, alive = std::weak_ptr<char>(alive_)](const boost::system::error_code&) {
    if (alive.expired()) return;
    retry_armed_ = false;
    if (shut_down_) return;
    if (!FlushUnsent()) ArmRetry();
  });
}

}  // namespace chorus::broker::gateway::detail
