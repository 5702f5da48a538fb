// The engine: the thread that owns a node's channels (ChannelTable), their CHP mirror (an
// embedded chp::Server), the native client sessions (a ROUTER, docs/protocol/native.md) and
// the bridge the HTTP gateway talks to (a ROUTER on inproc, broker/gateway/README.md).
// Everything here is owned by the engine thread; other threads reach it only through its
// sockets. See docs/broker-node.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "broker/config/config.h"
#include "broker/node/auth.h"
#include "broker/node/channel_table.h"
#include "broker/node/chp_state_sink.h"
#include "broker/node/client_protocol.h"
#include "broker/node/native_codec.h"
#include "broker/node/protocol_encoder.h"
#include "chp/loop.h"
#include "chp/server.h"

namespace chorus::broker::node {

struct EngineOptions {
  NodeConfig config;
  std::string node_id;
  std::string bridge_endpoint;  // inproc:// ROUTER for the gateway
  TokenKeys token_keys;
  int64_t channel_idle_drop_ms = 24ll * 3600 * 1000;  // history position kept this long idle
  size_t history_max_limit = 1000;                    // largest history page (limit < 0 or more)
  size_t max_recovery = 1000;    // more missed publications than this: recovered:false
  size_t closed_memory = 65536;  // N-17: routing ids of closed sessions remembered
};

struct EngineEndpoints {
  std::string native;
  std::string chp_command;
  std::string chp_publisher;
  std::string bridge;
};

struct EngineCounters {
  uint64_t deliveries = 0;    // messages handed to a subscriber's socket
  uint64_t drops_slow = 0;    // messages not delivered: the session's pipe was full
  uint64_t drops_gone = 0;    // messages not delivered: the peer had disconnected
  uint64_t malformed = 0;     // native frames dropped as undecodable (N-6)
  uint64_t commands = 0;      // native commands handled
  uint64_t api_requests = 0;  // bridge requests handled
  uint64_t connects = 0;
  std::map<uint32_t, uint64_t> disconnects;  // by close code
};

class Engine final : public chp::Pollable {
 public:
  static Result<std::unique_ptr<Engine>> Create(zmq::context_t& ctx, EngineOptions options);
  ~Engine() override;

  EngineEndpoints endpoints() const;
  // Polls the engine and its CHP server once.
  void RunOnce(std::chrono::milliseconds max_wait);
  // Closes every session with 3001 (shutdown); called before the thread exits.
  void Shutdown();

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) override;
  chp::Clock::time_point NextDeadline() const override;

  const ChannelTable& channels() const { return table_; }
  const EngineCounters& counters() const { return counters_; }

 private:
  // A client session: a native DEALER (by routing id on the native ROUTER) or a WebSocket
  // connection of a gateway (by the gateway's bridge routing id and its connection id).
  enum class Transport : uint8_t { kNative, kWebSocket };
  struct Subscription {
    std::string chan_info;     // JSON
    bool join_leave = true;    // WebSocket: only when the client asked (W-21); native: always
    bool server_side = false;  // made by the connect token's `channels` (W-25, N-18)
  };
  // How a subscription is made: by a subscribe command or by the server at connect.
  struct SubscribeMode {
    bool join_leave = false;     // the subscription takes join/leave pushes
    bool asks_recovery = false;  // the client asked for a recoverable subscription
    bool positioned = false;     // the client asked for a positioned one
    bool server_side = false;
  };
  struct Session {
    SubscriberId id = 0;
    Transport transport = Transport::kNative;
    std::string routing_id;  // native: the DEALER's; WebSocket: the gateway's bridge DEALER's
    uint64_t conn_id = 0;    // WebSocket: the gateway's connection id
    bool connected = false;  // connect answered
    std::string client;      // client id (unique in the cluster)
    std::string user;
    std::string conn_info;
    bool insecure = false;
    int64_t opened_ms = 0;
    int64_t last_seen_ms = 0;
    int64_t last_ping_ms = 0;                               // WebSocket: the node's last `{}` ping
    int64_t expires_s = 0;                                  // connection token expiry (0: none)
    std::map<std::string, Subscription, std::less<>> subs;  // by channel
  };
  struct Closed {
    uint32_t code = 0;
    std::string reason;
    bool reconnect = true;
  };
  enum class SendStatus { kSent, kSlow, kGone };

  Engine(zmq::context_t& ctx, EngineOptions options);
  Result<Unit> Bind();

  // Client commands, whatever the protocol (engine_session.cc).
  void HandleCommand(Session& s, ClientCommand& cmd);
  Result<ConnectResult> OnConnect(Session& s, const ConnectRequest& r);
  Result<SubscribeResult> OnSubscribe(Session& s, const SubscribeRequest& r);
  void AfterSubscribe(Session& s, std::string_view channel);
  // The subscription once permitted: recovery from `from`, the session's entry, the result.
  // `reply_bytes` (connect: the sum over its subscriptions) bounds the recovered data.
  Result<SubscribeResult> SubscribeSession(Session& s, const std::string& channel,
                                           const ChannelOptions& opts, std::string chan_info,
                                           const SubscribeRecovery& from, SubscribeMode mode,
                                           size_t* reply_bytes);
  Result<Unit> SubscribeServerSide(Session& s, const std::vector<std::string>& channels,
                                   const ConnectRequest& r, ConnectResult& out);
  Result<Unit> ServerSubscribe(const std::vector<SubscriberId>& targets, const std::string& channel,
                               const SubscribeRecovery& from);
  Result<PublishResult> OnPublish(Session& s, const PublishRequest& r);
  Result<PresenceResult> OnPresence(Session& s, const PresenceRequest& r);
  Result<PresenceStats> OnPresenceStats(Session& s, const PresenceStatsRequest& r);
  Result<HistoryResultOut> OnHistory(Session& s, const HistoryRequest& r);
  Result<RefreshResult> OnRefresh(Session& s, const RefreshRequest& r);
  Result<SubRefreshResult> OnSubRefresh(Session& s, const SubRefreshRequest& r);
  std::string OnRpc(Session& s, uint64_t id, const RpcRequest& r);
  const Encoder& EncoderOf(const Session& s) const;

  // Native protocol transport (engine_native.cc).
  void ReadNative();
  void HandleNative(const std::string& routing_id, std::string_view frame);
  void Reply(const std::string& routing_id, const std::string& body);

  // WebSocket sessions through the gateway bridge (engine_ws.cc).
  void HandleWsEvent(const std::string& gateway, std::string_view event, uint64_t conn_id,
                     std::string_view payload);
  bool SendBridge(const std::string& gateway, std::initializer_list<std::string_view> frames);
  void CloseWsConnection(const Session& s, uint32_t code, std::string_view reason);
  void PingWebSockets(int64_t now_ms);

  // Shared operations (engine.cc).
  void SendTo(Session& s, const std::string& body);
  Result<PublishOutcome> PublishAndDeliver(std::string_view channel, std::string data,
                                           std::optional<std::string> info,
                                           std::map<std::string, std::string> tags,
                                           const PresenceEntry* publisher = nullptr,
                                           bool skip_history = false);
  // Encodes an event at most once per protocol and sends it to every subscriber of `ch`
  // (WebSocket subscribers: one fan-out message per gateway). An empty encoding is skipped.
  // `presence_only`: only to subscriptions that take join/leave pushes (W-21).
  void Fanout(const Channel& ch, const std::function<std::string(const Encoder&)>& encode,
              bool presence_only = false);
  void PushPresenceEvents(const Channel& ch, const std::vector<PresenceEvent>& events);
  void LeaveChannel(Session& s, std::string_view channel, bool push_unsubscribe, uint32_t code,
                    std::string_view reason);
  void CloseSession(SubscriberId id, uint32_t code, std::string_view reason, bool reconnect,
                    bool try_push);
  void CloseLater(SubscriberId id, uint32_t code, std::string_view reason);
  void RunPendingCloses();
  SendStatus Send(const std::string& routing_id, zmq::message_t& body);
  void Sweep(int64_t now_ms);
  Session* FindSession(SubscriberId id);
  Session& NewSession(Transport t, std::string routing_id, uint64_t conn_id);
  void ForgetSession(SubscriberId id);
  int64_t NowMs() const;

  // HTTP API and observability through the bridge (engine_api.cc).
  void ReadBridge();
  struct HttpAnswer {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  HttpAnswer HandleApi(std::string_view method, std::string_view body);
  HttpAnswer Health() const;
  HttpAnswer Metrics() const;

  zmq::context_t& ctx_;
  EngineOptions options_;
  NamespaceRegistry registry_;
  std::unique_ptr<chp::Server> chp_;
  std::unique_ptr<ChpStateSink> sink_;
  ChannelTable table_;
  zmq::socket_t native_;
  zmq::socket_t bridge_;
  std::string native_endpoint_;
  EngineCounters counters_;
  std::mt19937_64 rng_;
  chp::Clock::time_point started_;
  chp::Clock::time_point next_sweep_{};

  SubscriberId next_session_id_ = 1;
  std::unordered_map<SubscriberId, Session> sessions_;
  std::unordered_map<std::string, SubscriberId> by_routing_;          // native sessions
  std::map<std::pair<std::string, uint64_t>, SubscriberId> by_conn_;  // WebSocket sessions
  std::unordered_map<std::string, Closed> closed_;
  std::deque<std::string> closed_order_;
  struct PendingClose {
    SubscriberId id;
    uint32_t code;
    std::string reason;
  };
  std::vector<PendingClose> pending_closes_;
};

// Runs an Engine on a thread of its own (the engine thread). Start returns once the sockets
// are bound (or failed to bind).
class EngineThread {
 public:
  static Result<std::unique_ptr<EngineThread>> Start(zmq::context_t& ctx, EngineOptions options);
  ~EngineThread();
  EngineThread(const EngineThread&) = delete;
  EngineThread& operator=(const EngineThread&) = delete;
  const EngineEndpoints& endpoints() const { return endpoints_; }
  void Stop();

 private:
  EngineThread() = default;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  EngineEndpoints endpoints_;
};

}  // namespace chorus::broker::node
