// EngineClient: the gateway's side of the engine bridge (README "Engine bridge"): a DEALER to
// the engine's ROUTER; requests carry a correlation id, replies are matched by it in any
// order, requests the engine leaves unanswered for `timeout` fail with kTimeout, and replies
// that arrive later (unknown ids) are counted and dropped. Messages whose first frame is
// "ws" (WebSocket commands) go to the WebSocket handler instead; SendRaw carries WebSocket
// events the other way over the same DEALER.
//
// Threads: one per shard; created, used and destroyed on the shard's io thread that runs `io`
// (it owns the DEALER and the ZmqAsioBridge over it). Callbacks run on that thread, never
// inside Submit(). Only the counters and the server-wide in-flight count (SharedState) are
// shared with the other shards.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>

#include "chp/errc.h"
#include "server_context.h"
#include "zmq_asio_bridge.h"

namespace chorus::broker::gateway::detail {

struct EngineReply {
  int status = 0;  // 200..599
  std::string content_type;
  std::string body;
};

struct EngineClientOptions {
  std::string endpoint;
  std::chrono::milliseconds timeout{5000};
  size_t max_in_flight = 10000;
};

class EngineClient {
 public:
  // The reply, or chp::Errc::kTimeout (no reply within the timeout) or kMalformed (the reply
  // did not follow the bridge format).
  using Callback = std::function<void(chp::Result<EngineReply>)>;

  // Creates the DEALER (linger 0; its routing id is the one the engine's ROUTER assigns, so
  // distinct per shard) and connects it. Errors as values (the zmq errno).
  static chp::Result<std::unique_ptr<EngineClient>> Create(boost::asio::io_context& io,
                                                           zmq::context_t& ctx,
                                                           EngineClientOptions options,
                                                           SharedState& shared);
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  void Start();  // begins receiving replies

  // Receives every engine message whose first frame is "ws" (README "WebSocket frames").
  // Without one such messages are counted as malformed and dropped.
  using WsHandler = std::function<void(const std::vector<zmq::message_t>& parts)>;
  void SetWsHandler(WsHandler handler) { ws_handler_ = std::move(handler); }

  // Sends one bridge message as is, without blocking. False when the DEALER would block or
  // the client is shut down (nothing was sent).
  [[nodiscard]] bool SendRaw(std::vector<zmq::message_t>& parts);

  // Sends one request. {} when sent: `done` then runs exactly once, later, unless Shutdown()
  // drops it first. kBusy when max_in_flight requests are waiting (all shards together),
  // kUnreachable when the DEALER would block (no engine): `done` is not called then.
  std::error_code Submit(std::string_view kind, std::string_view method, std::string_view body,
                         Callback done);

  // Drops every waiting request (callbacks destroyed, not called), stops the timer and the
  // bridge. Idempotent. The DEALER is closed by the destructor.
  void Shutdown();

  size_t in_flight() const { return pending_.size(); }  // this client's

 private:
  struct Pending {
    std::chrono::steady_clock::time_point deadline;
    Callback done;
  };

  EngineClient(boost::asio::io_context& io, zmq::socket_t socket, EngineClientOptions options,
               SharedState& shared);
  void OnMessage(std::vector<zmq::message_t>& parts);
  void Forget(size_t n);  // gives `n` places back to the server-wide in-flight count
  void ArmTimer();
  void OnTimer();

  EngineClientOptions options_;
  SharedState& shared_;
  Counters& counters_;
  zmq::socket_t socket_;
  ZmqAsioBridge bridge_;
  boost::asio::steady_timer timer_;
  WsHandler ws_handler_;
  bool timer_armed_ = false;
  bool shut_down_ = false;
  uint64_t next_id_ = 1;
  // Ids grow and every request has the same timeout, so the map's first entry always holds
  // the earliest deadline: one timer serves them all.
  std::map<uint64_t, Pending> pending_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // see ZmqAsioBridge
};

}  // namespace chorus::broker::gateway::detail
