// Engine: sockets, the loop, sessions and the operations shared by the native protocol and the
// HTTP API. Native commands are in engine_native.cc, the HTTP API in engine_api.cc.
#include "broker/node/engine.h"

#include <algorithm>
#include <cstring>
#include <future>

#include "address_guard.h"
#include "backup.h"
#include "broker/node/log.h"
#include "chp/types.h"
#include "cluster_view.h"
#include "commit.h"
#include "fanout.h"
#include "forwarder.h"
#include "interest.h"
#include "open_codec.h"
#include "partition_roles.h"
#include "peer_codec.h"
#include "presence_link.h"
#include "sync_service.h"
#include "transports.h"

namespace chorus::broker::node {

namespace {
constexpr std::chrono::milliseconds kSweepInterval{1000};
constexpr int64_t kConnectDeadlineMs = 10'000;  // an open WebSocket must connect within this
// An expired connection token is given this long to be refreshed before the node closes the
// connection (kDisconnectExpired; Centrifugo's client_expired_close_delay).
constexpr int64_t kExpiredCloseDelayS = 25;
}  // namespace

Engine::Engine(zmq::context_t& ctx, EngineOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      registry_(options_.config.MakeRegistry()),
      table_(registry_, nullptr, options_.config.limits.idle_channel_ttl_ms),
      native_(ctx, zmq::socket_type::router),
      bridge_(ctx, zmq::socket_type::router),
      rng_(std::random_device{}()),
      started_(chp::Clock::now()),
      native_transport_(std::make_unique<NativeTransport>(native_)),
      ws_transport_(std::make_unique<WsBridgeTransport>(bridge_)),
      sessions_(options_.closed_memory),
      cluster_view_(ctx, zmq::socket_type::pair),
      cluster_(std::make_unique<ClusterView>()) {
  ForwarderOptions fo;
  fo.max_in_flight = options_.forward_max_in_flight;
  fo.max_in_flight_bytes = options_.forward_max_in_flight_bytes;
  fo.timeout = options_.forward_timeout;
  forwarder_ = std::make_unique<Forwarder>(
      ctx_, fo,
      [this](const ForwardRequest& r, Forwarder::Answer answer) {
        ServeForward(r, std::move(answer));
      },
      [this](std::string_view body) { OnPeerMessage(body); });
  presence_ = std::make_unique<PresenceLink>(*forwarder_);
  forwarder_->SetOtherHandlers(
      [this](std::string_view body, std::string* reply) { return ServePeerMessage(body, reply); },
      [this](std::string_view body) { OnPeerAnswer(body); });
  FanoutOptions fan;
  fan.timeout = options_.fanout_timeout;
  fan.max_calls = options_.fanout_max_calls;
  fan.max_in_flight_bytes = options_.fanout_max_in_flight_bytes;
  fan.max_reply_bytes = options_.fanout_max_reply_bytes;
  fanout_ = std::make_unique<FanoutClient>(ctx_, fan);
  forwarder_->AddService(kFanoutRequestKind, kFanoutRequestKind,
                         [this](std::string_view bytes) { return ServeFanout(bytes); });
  // C-17: a node holding a subscribe asks this primary to open a channel (open_codec.h). Only
  // the primary of a placed partition creates it, for a channel keeping history; idempotent.
  forwarder_->AddService(
      kOpenChannelKind, kOpenChannelKind,
      [this](std::string_view bytes) -> std::optional<std::string> {
        std::string channel;
        if (!DecodeOpenChannel(bytes, channel)) return std::nullopt;
        auto resolved = table_.Resolve(channel);  // validates the name
        const Route route = RouteOf(channel);
        if (resolved && resolved->options->HistoryEnabled() && route.local && route.member != 0 &&
            table_.Find(channel) == nullptr) {
          (void)table_.Open(channel, NowMs());  // writes its `top`: the followers get the epoch
        }
        return EncodeOpenChannelAnswer();
      });
  fan.request_kind = kSyncCallKind;
  fan.reply_kind = kSyncReplyKind;
  fan.timeout = options_.forward_timeout;
  sync_calls_ = std::make_unique<FanoutClient>(ctx_, fan);
  forwarder_->AddService(kSyncCallKind, kSyncCallKind,
                         [this](std::string_view bytes) { return ServeSyncCall(bytes); });
  InterestCallbacks ic;
  ic.on_reset = [this](const std::string& ch, const CopyTop& top, std::vector<Publication> pubs) {
    OnRemoteReset(ch, top, std::move(pubs));
  };
  ic.on_top = [this](const std::string& ch, const CopyTop& top) { OnRemoteTop(ch, top); };
  ic.on_publication = [this](const std::string& ch, Publication p) {
    OnRemotePublication(ch, std::move(p));
  };
  ic.on_ephemeral = [this](const std::string& ch, Publication p) {
    OnRemoteEphemeral(ch, std::move(p));
  };
  ic.on_presence_reset = [this](const std::string& ch, std::vector<PresenceEntry> entries) {
    OnRemotePresenceReset(ch, std::move(entries));
  };
  ic.on_presence = [this](const std::string& ch, const std::string& client,
                          const PresenceEntry* e) { OnRemotePresence(ch, client, e); };
  interest_ = std::make_unique<InterestFollower>(
      ctx_, std::move(ic), std::chrono::milliseconds(options_.config.cluster.heartbeat_ms));
  roles_ = std::make_unique<PartitionRoles>();
  BackupCallbacks bc;
  bc.on_reset = [this](uint64_t m, const CopyTop& top, std::vector<Publication> pubs) {
    OnBackupReset(m, top, std::move(pubs));
  };
  bc.on_top = [this](uint64_t m, const CopyTop& top) { OnBackupTop(m, top); };
  bc.on_presence_reset = [this](const std::string& ch, std::vector<PresenceEntry> entries) {
    OnRemotePresenceReset(ch, std::move(entries));
  };
  bc.on_presence = [this](const std::string& ch, const std::string& client,
                          const PresenceEntry* e) { OnRemotePresence(ch, client, e); };
  bc.on_publication = [this](uint64_t m, const std::string& ch, Publication p) {
    OnBackupPublication(m, ch, std::move(p));
  };
  bc.on_ephemeral = [this](uint64_t m, const std::string& ch, Publication p) {
    OnBackupEphemeral(m, ch, std::move(p));
  };
  backup_ = std::make_unique<BackupFollower>(
      ctx_, std::move(bc), std::chrono::milliseconds(options_.config.cluster.heartbeat_ms));
  commit_ = std::make_unique<CommitState>();
  // The gateway closes a slow connection on its own with the same code the engine uses.
  static_assert(bridge::kCloseSlow == kDisconnectSlow.code);
}

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
  so.reply_pipe_hwm = static_cast<int>(cfg.cluster.chp_reply_pipe_hwm);
  so.max_peer_pending_bytes = cfg.cluster.chp_max_peer_pending_bytes;
  so.max_pending_bytes = cfg.cluster.chp_max_pending_bytes;
  so.max_command_bytes = static_cast<int64_t>(cfg.cluster.chp_max_command_bytes);
  so.store.max_bytes = cfg.cluster.chp_max_store_bytes;
  // The largest value written, so the XPUB HWM's byte budget is sized for it (CS-35).
  so.max_value_bytes = EffectiveChpMaxValueBytes(cfg);
  if (cfg.native.max_connections_per_address > 0 ||
      cfg.cluster.chp_max_connections_per_address > 0) {
    auto guard = AddressGuard::Create(ctx_);
    if (!guard) return guard.error();
    guard_ = std::move(*guard);
  }
  if (guard_ && cfg.cluster.chp_max_connections_per_address > 0) {
    so.before_bind = [this, limit = cfg.cluster.chp_max_connections_per_address](
                         zmq::socket_t& socket, std::string_view role) {
      if (!guard_->Watch(socket, "chp_" + std::string(role), limit)) throw zmq::error_t();
    };
  }
  auto server = chp::Server::Create(ctx_, so);
  if (!server) {
    Log().error("cannot bind the CHP endpoints {} / {}: {}", so.command_endpoint,
                so.publisher_endpoint, server.error().message());
    return Errc::kInternal;
  }
  chp_ = std::move(*server);
  sink_ = std::make_unique<ChpStateSink>(*chp_, options_.node_id);
  // A cluster primary's `top` carries the commit position and the partition epoch (§16.2).
  sink_->set_top_extras(
      [this](std::string_view channel, TopExtras& x) { FillTopExtras(channel, x); });
  table_.set_sink(sink_.get());
  table_.set_read_limit([this](const Channel& ch) { return ReadLimit(ch); });
  try {
    native_.set(zmq::sockopt::router_mandatory, 1);
    native_.set(zmq::sockopt::sndhwm, static_cast<int>(cfg.native.send_hwm));
    // Back-pressure on pipelined commands, bounded in bytes (native.max_input_bytes): the
    // receive pipe holds that many bytes of the largest frames; beyond, ZeroMQ stops reading
    // the session's TCP socket.
    const int64_t max_frame = static_cast<int64_t>(cfg.limits.max_publication_bytes + 64 * 1024);
    const int64_t frames = std::max<int64_t>(1, cfg.native.max_input_bytes / max_frame);
    native_.set(zmq::sockopt::rcvhwm, static_cast<int>(std::min<int64_t>(frames, 100'000)));
    native_.set(zmq::sockopt::linger, 0);
    // Reconnect storms (a node restart, a load balancer flip) arrive as bursts of connects:
    // ZeroMQ's default listen backlog of 100 drops SYNs and stretches them over seconds.
    native_.set(zmq::sockopt::backlog, 4096);
    native_.set(zmq::sockopt::maxmsgsize, max_frame);
    if (guard_ && !guard_->Watch(native_, "native", cfg.native.max_connections_per_address)) {
      return Errc::kInternal;
    }
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
  try {
    cluster_view_.set(zmq::sockopt::linger, 0);
    cluster_view_.set(zmq::sockopt::rcvhwm, 16);
    if (!options_.cluster_view_endpoint.empty())
      cluster_view_.connect(options_.cluster_view_endpoint);
  } catch (const zmq::error_t& e) {
    Log().error("cannot connect the cluster view {}: {}", options_.cluster_view_endpoint, e.what());
    return Errc::kInternal;
  }
  {
    std::string why;
    peer_endpoint_ = forwarder_->Bind(cfg.cluster.peer_endpoint, &why);
    if (peer_endpoint_.empty()) {
      Log().error("cannot bind cluster.peer_endpoint {}: {}", cfg.cluster.peer_endpoint, why);
      return Errc::kInternal;
    }
  }
  if (cfg.scheduler.enabled) {
    std::string why;
    sync_ = SyncService::Create(cfg.scheduler, &why, cfg.cluster.member_id);
    if (!sync_) {
      Log().error("cannot start the sync scheduler: {}", why);
      return Errc::kInternal;
    }
    if (!sync_->worker_endpoint().empty()) {
      Log().info("sync scheduler: external workers attach at {}", sync_->worker_endpoint());
    }
    next_sync_tick_ = chp::Clock::now();
  }
  return Unit{};
}

EngineEndpoints Engine::endpoints() const {
  return {native_endpoint_, chp_->command_endpoint(), chp_->publisher_endpoint(),
          options_.bridge_endpoint, peer_endpoint_};
}

int64_t Engine::NowMs() const {
  return static_cast<int64_t>(chp::WallMs());
}

void Engine::RunOnce(std::chrono::milliseconds max_wait) {
  ApplyInterests();
  std::vector<chp::Pollable*> parts = {chp_.get(), this, forwarder_.get(), fanout_.get(),
                                       sync_calls_.get()};
  interest_->AppendParts(parts);
  backup_->AppendParts(parts);
  // Publications waiting for their commit: woken often enough for their timeouts and reports.
  if (commit_->count != 0 || cluster_->received) {
    max_wait = std::min(max_wait, std::chrono::milliseconds(50));
  }
  chp::PollOnce(parts, max_wait);
  FlushAcks(/*heartbeat=*/false);  // what the backup copies applied in this poll (C-8)
  CommitTick();
  presence_->Tick(chp::Clock::now());  // C-21: queued presence updates, read timeouts
  RunParked();                         // C-17: subscribes whose copy went live (or timed out)
  RunPendingCloses();                  // forwarded publishes answered may have found slow sessions
}

size_t Engine::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  items.push_back({native_.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({bridge_.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({cluster_view_.handle(), 0, ZMQ_POLLIN, 0});
  return 3 + (guard_ ? guard_->AddPollItems(items) : 0);
}

void Engine::HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) {
  if (guard_) guard_->HandleEvents(items + 3);
  if (items[0].revents & ZMQ_POLLIN) ReadNative();
  if (items[1].revents & ZMQ_POLLIN) ReadBridge();
  if (items[2].revents & ZMQ_POLLIN) ReadClusterView();
  RunPendingCloses();
  if (now >= next_sweep_) {
    Sweep(NowMs());
    next_sweep_ = now + kSweepInterval;
  }
  if (sync_ && now >= next_sync_tick_) {
    SyncTick();
    RunPendingCloses();
    next_sync_tick_ = now + std::chrono::milliseconds(sync_->interval_ms());
  }
}

chp::Clock::time_point Engine::NextDeadline() const {
  return std::min({next_sweep_, next_sync_tick_, presence_->NextDeadline()});
}

void Engine::SyncTick() {
  for (SyncService::Event& e : sync_->Tick(NowMs())) {
    auto out = PublishAndDeliver(e.channel, std::move(e.data), std::nullopt, {});
    if (!out) Log().warn("sync progress on {} not published: {}", e.channel, out.error().message());
  }
  sync_->Mirror(*chp_);  // the scheduler's state into subtrees s.<user> (docs/scheduler.md)
}

void Engine::SendTo(Session& s, const std::string& body) {
  const SendStatus st = s.transport->Send(s, body);
  if (st != SendStatus::kSent) MissedMessage(s.id, st);
}

void Engine::MissedMessage(SubscriberId id, SendStatus why) {
  if (why == SendStatus::kSlow) {
    ++counters_.drops_slow;
    CloseLater(id, kDisconnectSlow);
  } else {
    ++counters_.drops_gone;
    CloseLater(id, kDisconnectConnectionClosed);
  }
}

void Engine::Fanout(const Channel& ch, const std::function<std::string(const Encoder&)>& encode,
                    bool presence_only) {
  if (ch.subscribers.empty()) return;
  // Targets grouped by transport; each transport's encoding is made once.
  struct Group {
    Transport* transport;
    std::vector<const Session*> targets;
  };
  std::vector<Group> groups;
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
                    [id](const auto& p) { return p.first == id; })) {
      ++counters_.drops_slow;
      continue;
    }
    auto g = std::find_if(groups.begin(), groups.end(),
                          [s](const Group& x) { return x.transport == s->transport; });
    if (g == groups.end()) g = groups.insert(groups.end(), Group{s->transport, {}});
    g->targets.push_back(s);
  }
  for (const Group& g : groups) {
    const std::string body = encode(g.transport->encoder());
    if (body.empty()) continue;  // no such push in this protocol
    counters_.deliveries += g.transport->Deliver(
        g.targets, body, [this](SubscriberId id, SendStatus why) { MissedMessage(id, why); });
  }
}

void Engine::CloseLater(SubscriberId id, const CloseCode& c) {
  for (const auto& p : pending_closes_) {
    if (p.first == id) return;
  }
  pending_closes_.emplace_back(id, c);
}

void Engine::RunPendingCloses() {
  // Closing sends leave pushes, which may find more slow sessions: loop until quiet.
  while (!pending_closes_.empty()) {
    auto batch = std::move(pending_closes_);
    pending_closes_.clear();
    for (const auto& [id, c] : batch) {
      // A peer that is gone is not told (there is no one to tell).
      CloseSession(id, c, /*try_push=*/c != kDisconnectConnectionClosed);
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
  if (ch->options->presence) events = PresenceLeave(s, *ch);  // C-21: on the primary
  ch->subscribers.erase(s.id);
  PushPresenceEvents(*ch, events);
  table_.Unsubscribe(*ch, s.id, now);  // may drop the channel: ch is not used after this
  UpdateInterest(name);                // C-16: unfollowed after the last local subscriber
}

void Engine::CloseSession(SubscriberId id, uint32_t code, std::string_view reason, bool reconnect,
                          bool try_push) {
  Session* sp = FindSession(id);
  if (sp == nullptr) return;
  Session& s = *sp;
  if (try_push) s.transport->Close(s, code, reason, reconnect);
  Log().debug("session {} (user '{}') closed: {} {}", s.client, s.user, code, reason);
  ++counters_.disconnects[code];
  while (!s.subs.empty()) {
    LeaveChannel(s, s.subs.begin()->first, false, 0, "");
  }
  const ClosedSession closed{code, std::string(reason), reconnect};
  sessions_.Forget(id, &closed);
}

void Engine::Sweep(int64_t now_ms) {
  const auto& cc = options_.config.client;
  const int64_t limit_ms = (cc.ping_interval_s + cc.pong_timeout_s) * 1000;
  std::vector<std::pair<SubscriberId, CloseCode>> expired;
  sessions_.ForEach([&](const Session& s) {
    if (!s.connected) {
      if (now_ms - s.opened_ms > kConnectDeadlineMs) expired.emplace_back(s.id, kDisconnectStale);
    } else if (s.expires_s != 0 && now_ms / 1000 >= s.expires_s + kExpiredCloseDelayS) {
      expired.emplace_back(s.id, kDisconnectExpired);
    } else if (now_ms - s.last_seen_ms > limit_ms) {
      expired.emplace_back(s.id, kDisconnectNoPong);
    }
  });
  for (const auto& [id, c] : expired) CloseSession(id, c, /*try_push=*/true);
  PingSessions(now_ms);
  table_.Sweep(now_ms);
}

void Engine::Shutdown() {
  std::vector<SubscriberId> ids;
  sessions_.ForEach([&](const Session& s) { ids.push_back(s.id); });
  for (SubscriberId id : ids) CloseSession(id, kDisconnectShutdown, /*try_push=*/true);
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
        if (self->disconnect_.load() && !self->disconnected_.load()) {
          (*engine)->Shutdown();  // C-20: 3001 "shutdown", reconnect (a drained node)
          self->disconnected_.store(true);
        }
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
