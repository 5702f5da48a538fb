// WsHub: the gateway's registry of open WebSocket connections and its side of the WebSocket
// bridge frames (README "Engine bridge", "WebSocket frames"). It assigns conn ids (from the
// server-wide counter in SharedState: unique per HttpServer), reports open/frame/closed to the
// engine over its shard's bridge DEALER, and dispatches the engine's send/fanout/close commands
// that arrive on that DEALER to the connections by id. No Beast: a connection is seen through
// the small WsConnection interface (ws_session.cc).
//
// Threads: one hub per shard, created, used and destroyed on the shard's io thread; the
// shard's connections register and unregister themselves on that thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>

#include "server_context.h"

namespace chorus::broker::gateway::detail {

// What the hub asks of one open WebSocket connection.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Queues one message (shared with the other connections of a fanout, never copied here).
  virtual void Push(std::shared_ptr<const std::string> message) = 0;
  // The engine closed the connection: close frame with `code`/`reason`, then drop; nothing is
  // reported back.
  virtual void CloseFromEngine(uint16_t code, const std::string& reason) = 0;
};

class WsHub {
 public:
  WsHub(boost::asio::io_context& io, ServerContext& ctx);
  WsHub(const WsHub&) = delete;
  WsHub& operator=(const WsHub&) = delete;

  // Registers `c` under a new conn id and reports `open` with its remote address. Returns
  // the id, or 0 when the engine cannot be told (the DEALER would block, or the server is
  // stopping): then nothing is registered and the connection must close without a report.
  uint64_t Open(WsConnection* c, std::string_view remote);

  // Reports one client text message. False when the DEALER would block (nothing was sent).
  [[nodiscard]] bool Frame(uint64_t id, std::string_view message);

  // Unregisters `id` (no command reaches it afterwards); when `report`, tells the engine
  // `closed` with `code`. A report the DEALER cannot take now is kept and retried (bounded by
  // max_connections; beyond that it is dropped and logged). Idempotent per id.
  void Closed(uint64_t id, uint16_t code, bool report);

  // One engine -> gateway message whose first frame is "ws".
  void OnEngineMessage(const std::vector<zmq::message_t>& parts);

  // Tries the pending `closed` reports once more, then stops retrying. The server calls it
  // after closing every connection and before shutting the bridge down.
  void Shutdown();

  size_t open_count() const { return conns_.size(); }

 private:
  bool Send(std::vector<zmq::message_t> parts);
  bool FlushUnsent();  // true when nothing is left
  void ArmRetry();

  ServerContext& ctx_;
  boost::asio::steady_timer retry_;
  bool retry_armed_ = false;
  bool shut_down_ = false;
  std::unordered_map<uint64_t, WsConnection*> conns_;
  std::deque<std::pair<uint64_t, uint16_t>> unsent_closed_;  // (conn id, code), oldest first
  std::shared_ptr<char> alive_ = std::make_shared<char>();   // see ZmqAsioBridge
};

}  // namespace chorus::broker::gateway::detail
