// Engine: sockets, the loop, sessions and the operations shared by the native protocol and the
// HTTP API. Native commands are in engine_native.cc, the HTTP API in engine_api.cc.
#include "broker/node/engine.h"

#include <algorithm>
#include <cstring>
#include <future>

#include "broker/node/log.h"
#include "chp/types.h"

namespace chorus::broker::node {

namespace {
constexpr std::chrono::milliseconds kSweepInterval{1000};
constexpr int64_t kConnectDeadlineMs = 10'000;  // an open WebSocket must connect within this
// An expired connection token is given this long to be refreshed before the node closes the
// connection with 3005 (Centrifugo's client_expired_close_delay).
constexpr int64_t kExpiredCloseDelayS = 25;
}  // namespace

Engine::Engine(zmq::context_t& ctx, EngineOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      registry_(options_.config.MakeRegistry()),
      table_(registry_, nullptr, options_.channel_idle_drop_ms),
      native_(ctx, zmq::socket_type::router),
      bridge_(ctx, zmq::socket_type::router),
      rng_(std::random_device{}()),
      started_(chp::Clock::now()) {}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(zmq::context_t& ctx, EngineOptions options) {
  std::unique_ptr<Engine> e(new Engine(ctx, std::move(options)));
  auto bound = e->Bind();
  if (!bound) return bound.error();
  return e;
}

Result<Unit> Engine::Bind() {
  const auto& cfg = options_.config;
  chp::ServerOptions so;
  so.command_endpoint = cfg.cluster.chp_command;
  so.publisher_endpoint = cfg.cluster.chp_publisher;
  so.server_id = options_.node_id;
  so.heartbeat_interval = std::chrono::milliseconds(cfg.cluster.heartbeat_ms);
  auto server = chp::Server::Create(ctx_, so);
  if (!server) {
    Log().error("cannot bind the CHP endpoints {} / {}: {}", so.command_endpoint,
                so.publisher_endpoint, server.error().message());
    return Errc::kInternal;
  }
  chp_ = std::move(*server);
  sink_ = std::make_unique<ChpStateSink>(*chp_, options_.node_id);
  table_.set_sink(sink_.get());
  try {
    native_.set(zmq::sockopt::router_mandatory, 1);
    native_.set(zmq::sockopt::sndhwm, static_cast<int>(cfg.native.send_hwm));
    native_.set(zmq::sockopt::rcvhwm, 100'000);
    native_.set(zmq::sockopt::linger, 0);
    // Reconnect storms (a node restart, a load balancer flip) arrive as bursts of connects:
    // ZeroMQ's default listen backlog of 100 drops SYNs and stretches them over seconds.
    native_.set(zmq::sockopt::backlog, 4096);
    native_.set(zmq::sockopt::maxmsgsize,
                static_cast<int64_t>(cfg.limits.max_publication_bytes + 64 * 1024));
    native_.bind(cfg.native.endpoint);
    native_endpoint_ = native_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    Log().error("cannot bind native.endpoint {}: {}", cfg.native.endpoint, e.what());
    return Errc::kInternal;
  }
  try {
    bridge_.set(zmq::sockopt::router_mandatory, 1);
    // Fan-out messages to the gateway go through this pipe; when it is full the WebSocket
    // subscribers concerned are closed as slow (engine_ws.cc), so the bound is memory's.
    bridge_.set(zmq::sockopt::sndhwm, 100'000);
    bridge_.set(zmq::sockopt::rcvhwm, 100'000);
    bridge_.set(zmq::sockopt::linger, 0);
    bridge_.bind(options_.bridge_endpoint);
  } catch (const zmq::error_t& e) {
    Log().error("cannot bind the gateway bridge {}: {}", options_.bridge_endpoint, e.what());
    return Errc::kInternal;
  }
  return Unit{};
}

EngineEndpoints Engine::endpoints() const {
  return {native_endpoint_, chp_->command_endpoint(), chp_->publisher_endpoint(),
          options_.bridge_endpoint};
}

int64_t Engine::NowMs() const {
  return static_cast<int64_t>(chp::WallMs());
}

void Engine::RunOnce(std::chrono::milliseconds max_wait) {
  chp::PollOnce({chp_.get(), this}, max_wait);
}

size_t Engine::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  items.push_back({native_.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({bridge_.handle(), 0, ZMQ_POLLIN, 0});
  return 2;
}

void Engine::HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) {
  if (items[0].revents & ZMQ_POLLIN) ReadNative();
  if (items[1].revents & ZMQ_POLLIN) ReadBridge();
  RunPendingCloses();
  if (now >= next_sweep_) {
    Sweep(NowMs());
    next_sweep_ = now + kSweepInterval;
  }
}

chp::Clock::time_point Engine::NextDeadline() const {
  return next_sweep_;
}

Engine::Session* Engine::FindSession(SubscriberId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Engine::SendStatus Engine::Send(const std::string& routing_id, zmq::message_t& body) {
  try {
    if (!native_.send(zmq::buffer(routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      // The pipe looks full, but the socket learns of the peer's reads only from commands it
      // processes lazily (send/recv look at most every ~1 ms): process them (ZMQ_EVENTS does,
      // unthrottled) and try once more, so a session that reads is not taken for slow (N-16).
      (void)native_.get(zmq::sockopt::events);
      if (!native_.send(zmq::buffer(routing_id),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return SendStatus::kSlow;  // ROUTER_MANDATORY: this peer's pipe is at its HWM
      }
    }
    zmq::message_t copy;
    copy.copy(body);  // shares the buffer (reference counted) for all but tiny bodies
    (void)native_.send(copy, zmq::send_flags::dontwait);
    return SendStatus::kSent;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return SendStatus::kGone;
    Log().warn("native send failed: {}", e.what());
    return SendStatus::kGone;
  }
}

void Engine::Reply(const std::string& routing_id, const std::string& body) {
  zmq::message_t msg(body.data(), body.size());
  const SendStatus st = Send(routing_id, msg);
  if (st == SendStatus::kSent) return;
  auto it = by_routing_.find(routing_id);
  if (it == by_routing_.end()) return;  // not a session (e.g. an error to a stranger)
  if (st == SendStatus::kSlow) {
    ++counters_.drops_slow;
    CloseLater(it->second, kDisconnectSlow, "slow");
  } else {
    ++counters_.drops_gone;
    CloseLater(it->second, 3000, "connection closed");
  }
}

void Engine::SendTo(Session& s, const std::string& body) {
  if (s.transport == Transport::kNative) {
    Reply(s.routing_id, body);
    return;
  }
  char id[8];
  std::memcpy(id, &s.conn_id, sizeof id);
  if (!SendBridge(s.routing_id, {"ws", "send", std::string_view(id, sizeof id), body})) {
    ++counters_.drops_slow;
    CloseLater(s.id, kDisconnectSlow, "slow");
  }
}

void Engine::Fanout(const Channel& ch, const std::function<std::string(const Encoder&)>& encode,
                    bool presence_only) {
  if (ch.subscribers.empty()) return;
  std::optional<std::string> native_body, json_body;
  std::optional<zmq::message_t> native_msg;
  std::map<std::string, std::string> ws_targets;  // gateway -> connection ids (8 bytes each)
  for (SubscriberId id : ch.subscribers) {
    Session* s = FindSession(id);
    if (s == nullptr) continue;
    if (presence_only) {
      auto sub = s->subs.find(ch.name);
      if (sub == s->subs.end() || !sub->second.join_leave) continue;
    }
    // A session that already missed a message is closing: sending it later ones would leave a
    // hole in what it received before the close (N-13), so it gets nothing more.
    if (std::any_of(pending_closes_.begin(), pending_closes_.end(),
                    [id](const PendingClose& p) { return p.id == id; })) {
      ++counters_.drops_slow;
      continue;
    }
    if (s->transport == Transport::kWebSocket) {
      if (!json_body) json_body = encode(JsonEncoder());
      if (json_body->empty()) continue;
      std::string& ids = ws_targets[s->routing_id];
      ids.append(reinterpret_cast<const char*>(&s->conn_id), sizeof s->conn_id);
      continue;
    }
    if (!native_body) {
      native_body = encode(NativeEncoder());
      native_msg.emplace(native_body->data(), native_body->size());
    }
    if (native_body->empty()) continue;
    switch (Send(s->routing_id, *native_msg)) {
      case SendStatus::kSent:
        ++counters_.deliveries;
        break;
      case SendStatus::kSlow:
        ++counters_.drops_slow;
        CloseLater(id, kDisconnectSlow, "slow");
        break;
      case SendStatus::kGone:
        ++counters_.drops_gone;
        CloseLater(id, 3000, "connection closed");
        break;
    }
  }
  for (const auto& [gateway, ids] : ws_targets) {
    const size_t n = ids.size() / sizeof(uint64_t);
    if (SendBridge(gateway, {"ws", "fanout", ids, *json_body})) {
      counters_.deliveries += n;
      continue;
    }
    // The gateway's pipe is full: every one of its subscribers here missed this message.
    counters_.drops_slow += n;
    for (size_t k = 0; k < n; ++k) {
      uint64_t conn = 0;
      std::memcpy(&conn, ids.data() + k * sizeof conn, sizeof conn);
      auto it = by_conn_.find({gateway, conn});
      if (it != by_conn_.end()) CloseLater(it->second, kDisconnectSlow, "slow");
    }
  }
}

void Engine::CloseLater(SubscriberId id, uint32_t code, std::string_view reason) {
  for (const auto& p : pending_closes_) {
    if (p.id == id) return;
  }
  pending_closes_.push_back({id, code, std::string(reason)});
}

void Engine::RunPendingCloses() {
  // Closing sends leave pushes, which may find more slow sessions: loop until quiet.
  while (!pending_closes_.empty()) {
    auto batch = std::move(pending_closes_);
    pending_closes_.clear();
    for (const auto& p : batch) {
      CloseSession(p.id, p.code, p.reason, /*reconnect=*/true, /*try_push=*/p.code != 3000);
    }
  }
}

Result<PublishOutcome> Engine::PublishAndDeliver(std::string_view channel, std::string data,
                                                 std::optional<std::string> info,
                                                 std::map<std::string, std::string> tags,
                                                 const PresenceEntry* publisher,
                                                 bool skip_history) {
  auto out = table_.Publish(channel, std::move(data), std::move(info), std::move(tags), NowMs(),
                            skip_history);
  if (!out) return out;
  if (out->channel != nullptr && !out->channel->subscribers.empty()) {
    const Publication& pub = out->publication;
    const std::string& name = out->channel->name;
    Fanout(*out->channel, [&](const Encoder& e) { return e.PubPush(name, pub, publisher); });
  }
  return out;
}

void Engine::PushPresenceEvents(const Channel& ch, const std::vector<PresenceEvent>& events) {
  for (const auto& e : events) {
    const bool user_level =
        e.type == PresenceEventType::kUserJoin || e.type == PresenceEventType::kUserLeave;
    if (user_level ? !ch.options->user_presence : !ch.options->join_leave) continue;
    Fanout(
        ch, [&](const Encoder& enc) { return enc.PresencePush(ch.name, e.type, e.entry); },
        /*presence_only=*/true);
  }
}

void Engine::LeaveChannel(Session& s, std::string_view channel, bool push_unsubscribe,
                          uint32_t code, std::string_view reason) {
  auto it = s.subs.find(channel);
  if (it == s.subs.end()) return;
  const std::string name = it->first;
  s.subs.erase(it);
  if (push_unsubscribe) SendTo(s, EncoderOf(s).UnsubscribePush(name, code, reason));
  Channel* ch = table_.Find(name);
  if (ch == nullptr) return;
  const int64_t now = NowMs();
  std::vector<PresenceEvent> events;
  if (ch->options->presence) events = table_.Leave(*ch, s.client, now);
  ch->subscribers.erase(s.id);
  PushPresenceEvents(*ch, events);
  table_.Unsubscribe(*ch, s.id, now);  // may drop the channel: ch is not used after this
}

void Engine::CloseSession(SubscriberId id, uint32_t code, std::string_view reason, bool reconnect,
                          bool try_push) {
  Session* sp = FindSession(id);
  if (sp == nullptr) return;
  Session& s = *sp;
  if (try_push) {
    if (s.transport == Transport::kNative) {
      const std::string body = NativeEncoder().DisconnectPush(code, reason, reconnect);
      zmq::message_t msg(body.data(), body.size());
      (void)Send(s.routing_id, msg);
    } else {
      CloseWsConnection(s, code, reason);  // a WebSocket close frame carries code and reason
    }
  }
  Log().debug("session {} (user '{}') closed: {} {}", s.client, s.user, code, reason);
  ++counters_.disconnects[code];
  while (!s.subs.empty()) {
    LeaveChannel(s, s.subs.begin()->first, false, 0, "");
  }
  if (s.transport == Transport::kNative) {
    if (closed_.size() >= options_.closed_memory && !closed_order_.empty()) {
      closed_.erase(closed_order_.front());
      closed_order_.pop_front();
    }
    if (closed_.emplace(s.routing_id, Closed{code, std::string(reason), reconnect}).second) {
      closed_order_.push_back(s.routing_id);
    }
  }
  ForgetSession(id);
}

Engine::Session& Engine::NewSession(Transport t, std::string routing_id, uint64_t conn_id) {
  const SubscriberId id = next_session_id_++;
  Session& s = sessions_[id];
  s.id = id;
  s.transport = t;
  s.routing_id = std::move(routing_id);
  s.conn_id = conn_id;
  s.opened_ms = s.last_seen_ms = NowMs();
  if (t == Transport::kNative) {
    by_routing_[s.routing_id] = id;
  } else {
    by_conn_[{s.routing_id, conn_id}] = id;
  }
  return s;
}

void Engine::ForgetSession(SubscriberId id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (it->second.transport == Transport::kNative) {
    by_routing_.erase(it->second.routing_id);
  } else {
    by_conn_.erase({it->second.routing_id, it->second.conn_id});
  }
  sessions_.erase(it);
}

void Engine::Sweep(int64_t now_ms) {
  const auto& cc = options_.config.client;
  const int64_t limit_ms = (cc.ping_interval_s + cc.pong_timeout_s) * 1000;
  struct Expired {
    SubscriberId id;
    uint32_t code;
    const char* reason;
    bool reconnect;
  };
  std::vector<Expired> expired;
  for (const auto& [id, s] : sessions_) {
    if (!s.connected) {
      if (now_ms - s.opened_ms > kConnectDeadlineMs) expired.push_back({id, 3502, "stale", false});
    } else if (s.expires_s != 0 && now_ms / 1000 >= s.expires_s + kExpiredCloseDelayS) {
      expired.push_back({id, 3005, "connection expired", true});
    } else if (now_ms - s.last_seen_ms > limit_ms) {
      expired.push_back({id, 3012, "no pong", true});
    }
  }
  for (const auto& e : expired) CloseSession(e.id, e.code, e.reason, e.reconnect, true);
  PingWebSockets(now_ms);
  table_.Sweep(now_ms);
}

void Engine::Shutdown() {
  std::vector<SubscriberId> ids;
  for (const auto& [id, s] : sessions_) ids.push_back(id);
  for (SubscriberId id : ids) CloseSession(id, 3001, "shutdown", true, true);
}

// ---------------------------------------------------------------------------------------------
// EngineThread

Result<std::unique_ptr<EngineThread>> EngineThread::Start(zmq::context_t& ctx,
                                                          EngineOptions options) {
  std::unique_ptr<EngineThread> t(new EngineThread());
  std::promise<Result<EngineEndpoints>> bound;
  auto ready = bound.get_future();
  EngineThread* self = t.get();
  t->thread_ = std::thread([self, &ctx, options = std::move(options), &bound]() mutable {
    auto engine = Engine::Create(ctx, std::move(options));
    if (!engine) {
      bound.set_value(engine.error());
      return;
    }
    bound.set_value((*engine)->endpoints());
    while (!self->stop_.load(std::memory_order_relaxed)) {
      try {
        (*engine)->RunOnce(std::chrono::milliseconds(100));
      } catch (const std::exception& e) {
        // One catch per thread loop (STYLE): log and keep serving.
        Log().error("engine loop: {}", e.what());
      }
    }
    (*engine)->Shutdown();
  });
  auto r = ready.get();
  if (!r) {
    t->thread_.join();
    return r.error();
  }
  t->endpoints_ = *r;
  return t;
}

void EngineThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

EngineThread::~EngineThread() {
  Stop();
}

}  // namespace chorus::broker::node
