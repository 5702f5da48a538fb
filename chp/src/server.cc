// Implements docs/protocol/chp.md, "Server behaviour". Rule ids (CS-n) cite the spec.
#include "chp/server.h"

#include <cstring>
#include <future>

#include <zmq_addon.hpp>

#include "chp/codec.h"
#include "chp/keys.h"

namespace chorus::chp {
namespace {

constexpr size_t kMaxCommandsPerPoll = 4096;
constexpr auto kPolloutBackoff = std::chrono::milliseconds(1);

enum LogKind : unsigned { kLogMalformed, kLogUnknown, kLogDropped, kLogDroppedPeer, kLogBadSub };

}  // namespace

size_t Server::UuidHash::operator()(const Uuid& u) const noexcept {
  // Both halves: UUIDs from a weak generator may share a prefix.
  uint64_t a = 0, b = 0;
  std::memcpy(&a, u.data(), sizeof a);
  std::memcpy(&b, u.data() + sizeof a, sizeof b);
  return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
}

Server::Server(zmq::context_t& ctx, ServerOptions options)
    : options_(std::move(options)),
      router_(ctx, zmq::socket_type::router),
      xpub_(ctx, zmq::socket_type::xpub),
      store_(options_.store) {
  if (options_.server_id.empty()) options_.server_id = RandomEpoch();
}

Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(zmq::context_t& ctx, ServerOptions options) {
  // A snapshot batch closes after crossing snapshot_batch_bytes, so it can hold one more
  // maximal record; both together must stay under the frame limit (spec CW-8).
  if (options.max_value_bytes > kMaxValueBytesLimit ||
      options.snapshot_batch_bytes > kMaxValueBytesLimit) {
    Log().error("chp server: max_value_bytes and snapshot_batch_bytes must be <= {}",
                kMaxValueBytesLimit);
    return Errc::kValueTooLarge;
  }
  std::unique_ptr<Server> s(new Server(ctx, std::move(options)));
  try {
    // HWMs and options before bind (platform note in the brief).
    s->router_.set(zmq::sockopt::router_mandatory, 1);  // S: never drop replies silently
    // CS-22: a small pipe in messages, so replies a peer does not read wait in the queue that
    // counts bytes; CS-1: frames over max_command_bytes are refused before being buffered.
    s->router_.set(zmq::sockopt::sndhwm, s->options_.reply_pipe_hwm);
    s->router_.set(zmq::sockopt::rcvhwm, s->options_.command_hwm);
    s->router_.set(zmq::sockopt::maxmsgsize, s->options_.max_command_bytes);
    // Subscriptions are a subtree prefix (at most 257 bytes) or "$HUGZ".
    s->xpub_.set(zmq::sockopt::maxmsgsize, int64_t{4096});
    s->router_.set(zmq::sockopt::linger, 0);
    s->xpub_.set(zmq::sockopt::xpub_verbose, 1);
    s->xpub_.set(zmq::sockopt::sndhwm, s->publisher_hwm());  // CS-35
    s->xpub_.set(zmq::sockopt::linger, 0);
    if (s->options_.before_bind) {
      s->options_.before_bind(s->router_, "command");
      s->options_.before_bind(s->xpub_, "publisher");
    }
    s->router_.bind(s->options_.command_endpoint);
    s->xpub_.bind(s->options_.publisher_endpoint);
    s->command_endpoint_ = s->router_.get(zmq::sockopt::last_endpoint);
    s->publisher_endpoint_ = s->xpub_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    Log().error("chp server: cannot bind {} / {}: {}", s->options_.command_endpoint,
                s->options_.publisher_endpoint, e.what());
    return std::error_code(e.num(), std::generic_category());
  }
  s->next_heartbeat_ = Clock::now();
  Log().info("chp server {} command={} publisher={}", s->options_.server_id, s->command_endpoint_,
             s->publisher_endpoint_);
  return s;
}

size_t Server::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  short router_events = ZMQ_POLLIN;
  if (!pending_.empty() && Clock::now() >= pollout_backoff_until_) router_events |= ZMQ_POLLOUT;
  items.push_back({router_.handle(), 0, router_events, 0});
  items.push_back({xpub_.handle(), 0, ZMQ_POLLIN, 0});
  return 2;
}

Clock::time_point Server::NextDeadline() const {
  Clock::time_point next = next_heartbeat_;
  const int64_t expiry = store_.NextExpiry();
  if (expiry >= 0) {
    next = std::min(next, Clock::time_point(std::chrono::milliseconds(expiry)));
  }
  if (!pending_.empty()) next = std::min(next, pollout_backoff_until_);
  if (StreamRunnable()) next = Clock::time_point{};  // a `*` reply can go on now (CS-34)
  return next;
}

void Server::HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) {
  if ((items[0].revents & ZMQ_POLLOUT) != 0 ||
      (!pending_.empty() && now >= pollout_backoff_until_)) {
    FlushPending();
  }
  if ((items[1].revents & ZMQ_POLLIN) != 0) ReadSubscriptions();
  if ((items[0].revents & ZMQ_POLLIN) != 0) ReadCommands();
  if (!streams_.empty()) AdvanceStreams();
  ExpireDue(now);
  if (now >= next_heartbeat_) Heartbeat(now);
}

// ---------------------------------------------------------------------------------------------
// Command socket

void Server::ReadCommands() {
  std::vector<zmq::message_t> frames;
  for (size_t n = 0; n < kMaxCommandsPerPoll; ++n) {
    frames.clear();
    auto got = zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait);
    if (!got) return;
    if (frames.size() < 2) {
      ++stats_.malformed;
      log_once_.Warn(kLogMalformed, "chp server: dropped a command without body frame");
      continue;
    }
    // Every frame before the last is routing envelope (identity, and the empty delimiter a REQ
    // peer adds); replies carry it back unchanged.
    std::vector<std::string> envelope;
    envelope.reserve(frames.size() - 1);
    for (size_t i = 0; i + 1 < frames.size(); ++i) envelope.push_back(frames[i].to_string());
    HandleCommand(std::move(envelope), frames.back().to_string_view());
  }
}

void Server::HandleCommand(std::vector<std::string>&& envelope, std::string_view body) {
  reply_begins_ = true;  // the next Reply is the first frame of this command's reply (CS-22)
  auto decoded = DecodeCommand(body);
  if (!decoded) {
    if (decoded.error() == make_error_code(Errc::kUnknownCommand)) {
      ++stats_.unknown;
      log_once_.Warn(kLogUnknown, "chp server: dropped a command with an unknown code");
    } else {
      ++stats_.malformed;
      log_once_.Warn(kLogMalformed, "chp server: dropped a malformed command ({} bytes)",
                     body.size());
    }
    return;
  }
  if (auto* hello = std::get_if<Hello>(&*decoded)) {
    if (hello->version != kProtocolVersion) {
      Reply(envelope, Encode(Error{hello->request_id, static_cast<uint32_t>(Errc::kBadVersion),
                                   "unsupported protocol version"}));
      return;
    }
    Reply(envelope, Encode(HelloOk{hello->request_id, kProtocolVersion, options_.server_id,
                                   publisher_endpoint_}));
  } else if (auto* req = std::get_if<Icanhaz>(&*decoded)) {
    HandleIcanhaz(envelope, *req);
  } else if (auto* set = std::get_if<KvSet>(&*decoded)) {
    HandleKvSet(envelope, std::move(*set));
  } else if (auto* applied = std::get_if<Applied>(&*decoded)) {
    HandleApplied(std::move(*applied));
  }
}

Result<uint64_t> Server::ApplyChecked(std::string_view key, Op op, std::string_view value,
                                      uint64_t ttl_ms, const Uuid& uuid, Position* pos) {
  auto parts = SplitKey(key);
  if (!parts) return parts.error();
  // The clock matters only for a TTL (reading it is a measurable part of a Set).
  const int64_t now_ms = ttl_ms == 0 ? 0 : MonotonicMs();
  auto applied = store_.ApplyRef(parts->subtree, parts->key, op, value, ttl_ms, now_ms, uuid);
  if (!applied) return applied.error();
  if (applied->subtree == nullptr) {
    if (pos != nullptr) *pos = Position{};
    return uint64_t{0};
  }
  // As applied, before any observer runs.
  const uint64_t seq = applied->subtree->seq;
  if (pos != nullptr) *pos = applied->subtree->position();
  if (applied->changed) {
    Change c{parts->subtree, applied->subtree->epoch, applied->record, applied->subtree->term};
    PublishChange(c, key);
  }
  return seq;
}

void Server::HandleIcanhaz(const std::vector<std::string>& envelope, const Icanhaz& m) {
  if (m.subtree == kAllSubtrees) {
    StartStream(envelope, m.request_id);  // CS-34: streamed subtree by subtree
    return;
  }
  if (!IsValidSubtree(m.subtree)) {
    Reply(envelope,
          Encode(Error{m.request_id, static_cast<uint32_t>(Errc::kBadKey), "invalid subtree"}));
    return;
  }
  ServeSubtree(envelope, m.request_id, m.subtree, store_.Find(m.subtree), m.from, m.term);
}

void Server::ServeSubtree(const std::vector<std::string>& envelope, uint64_t request_id,
                          const std::string& name, const Subtree* st, const Position& from,
                          uint64_t from_term) {
  KvSync batch{request_id, name, {}};
  size_t batch_bytes = 0;
  uint64_t count = 0;
  auto flush = [&] {
    if (batch.records.empty()) return;
    Reply(envelope, Encode(batch));
    batch.records.clear();
    batch_bytes = 0;
  };
  auto add = [&](Record r) {
    batch_bytes += r.key.size() + r.value.size() + 24;
    batch.records.push_back(std::move(r));
    ++count;
    if (batch.records.size() >= options_.snapshot_batch_records ||
        batch_bytes >= options_.snapshot_batch_bytes) {
      flush();
    }
  };

  // Resume when `from` is on this line (CS-30) and the backlog covers everything after it.
  std::vector<Record> missing;
  if (st != nullptr && !from.epoch.empty() && store_.ResumeFrom(name, from, missing, from_term)) {
    for (Record& r : missing) add(std::move(r));
    flush();
    ++stats_.resumes;
    Reply(envelope, Encode(Kthxbai{request_id, name, st->position(), count, SyncMode::kResume,
                                   st->term, st->term_start}));
    return;
  }
  Kthxbai end{request_id, name, {}, 0, SyncMode::kSnapshot};
  if (st != nullptr) {
    const int64_t now = MonotonicMs();
    for (const auto& [key, e] : st->entries) {
      add(Record{key, Op::kSet, e.value, Store::RemainingTtl(e, now), e.seq});
    }
    end.position = st->position();
    end.term = st->term;
    end.term_start = st->term_start;
    end.window = WindowOf(name, now);  // CS-31
  }
  flush();
  ++stats_.snapshots;
  end.count = count;
  Reply(envelope, Encode(end));
}

// Replies go out in order per peer. A full pipe (EAGAIN under ROUTER_MANDATORY) queues the rest
// for POLLOUT instead of dropping it (spec: no silent truncation).
void Server::Reply(const std::vector<std::string>& envelope, std::string body) {
  const std::string& peer = envelope.front();
  auto it = pending_.find(peer);
  if (reply_begins_) {
    // CS-22: a peer whose queue already holds more than its bound when a new reply begins gets
    // none of that reply (it times out and asks again). A peer that asks and never reads thus
    // holds its pipe, its bound and one reply, however often it asks.
    reply_begins_ = false;
    reply_dropped_ = it != pending_.end() && it->second.bytes > options_.max_peer_pending_bytes;
    if (reply_dropped_) {
      ++stats_.dropped_replies;
      ++stats_.dropped_over_peer;
      log_once_.Warn(kLogDroppedPeer,
                     "chp server: a peer has over {} reply bytes queued; dropping its new replies",
                     options_.max_peer_pending_bytes);
    }
  }
  if (reply_dropped_) return;
  reply_bytes_ += body.size();
  if (it == pending_.end()) {
    Outgoing out{envelope, std::move(body)};
    switch (TrySend(out)) {
      case SendResult::kSent:
        return;
      case SendResult::kGone:
        reply_gone_ = true;
        return;
      case SendResult::kAgain:
        break;
    }
    it = pending_.emplace(peer, PeerQueue{}).first;
    body = std::move(out.body);
  }
  PeerQueue& q = it->second;
  if (q.discarding) return;
  const size_t size = body.size() + 64;
  if (stats_.pending_bytes + size > options_.max_pending_bytes) {
    // CS-22: over the bound for all peers, discard this peer's queued replies and the rest of
    // this reply; the peer times out and asks again.
    ++stats_.dropped_replies;
    ++stats_.dropped_over_total;
    log_once_.Warn(kLogDropped,
                   "chp server: reply queue over {} bytes, discarding a peer's replies",
                   options_.max_pending_bytes);
    stats_.pending_bytes -= q.bytes;
    q.frames.clear();
    q.bytes = 0;
    q.discarding = true;
    return;
  }
  q.frames.push_back(Outgoing{envelope, std::move(body)});
  q.bytes += size;
  stats_.pending_bytes += size;
  stats_.pending_peak = std::max(stats_.pending_peak, stats_.pending_bytes);
  stats_.peer_pending_peak = std::max(stats_.peer_pending_peak, q.bytes);
  stats_.pending_peers = pending_.size();
}

Server::SendResult Server::TrySend(const Outgoing& out) {
  try {
    for (size_t i = 0; i < out.envelope.size(); ++i) {
      auto r = router_.send(zmq::buffer(out.envelope[i]),
                            zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      if (!r) return SendResult::kAgain;  // only the first frame can hit the HWM
    }
    router_.send(zmq::buffer(out.body), zmq::send_flags::dontwait);
    return SendResult::kSent;
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) throw;
    return SendResult::kGone;
  }
}

void Server::FlushPending() {
  bool progress = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    PeerQueue& q = it->second;
    bool gone = false;
    while (!q.frames.empty()) {
      const SendResult r = TrySend(q.frames.front());
      if (r == SendResult::kAgain) break;
      if (r == SendResult::kGone) {
        gone = true;
        break;
      }
      const size_t size = q.frames.front().body.size() + 64;
      q.bytes -= size;
      stats_.pending_bytes -= size;
      q.frames.pop_front();
      progress = true;
    }
    if (gone) {
      ++stats_.dropped_replies;
      stats_.pending_bytes -= q.bytes;
      it = pending_.erase(it);
    } else if (q.frames.empty()) {
      it = pending_.erase(it);  // also ends a discarding period: the next request starts clean
    } else {
      ++it;
    }
  }
  stats_.pending_peers = pending_.size();
  // ROUTER reports POLLOUT when any pipe has room; without progress, wait a little instead of
  // spinning on a pipe that is still full.
  if (!progress) pollout_backoff_until_ = Clock::now() + kPolloutBackoff;
}

// ---------------------------------------------------------------------------------------------
// Publisher

void Server::ReadSubscriptions() {
  zmq::message_t msg;
  for (size_t n = 0; n < kMaxCommandsPerPoll; ++n) {
    auto got = xpub_.recv(msg, zmq::recv_flags::dontwait);
    if (!got) return;
    const std::string_view sub = msg.to_string_view();
    if (sub.empty() || sub[0] != 1) continue;  // unsubscribe, or not a subscription
    const std::string_view prefix = sub.substr(1);
    // S: confirm every subscription with a message on its topic.
    if (std::string_view(kHugzTopic).starts_with(prefix)) {
      Publish(kHugzTopic, Encode(Hugz{kProtocolVersion, options_.server_id, WallMs(),
                                      store_.subtrees().size()}));
    } else if (prefix.size() >= 2 && prefix.back() == '/' &&
               IsValidSubtree(prefix.substr(0, prefix.size() - 1))) {
      PublishPosition(prefix.substr(0, prefix.size() - 1));
    } else {
      log_once_.Warn(kLogBadSub, "chp server: subscription to a prefix that is not a subtree");
    }
  }
}

void Server::Publish(std::string_view topic, std::string_view body) {
  // XPUB never blocks: at the HWM it drops, which replicas detect by sequence (spec §Heartbeats).
  xpub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  xpub_.send(zmq::buffer(body), zmq::send_flags::dontwait);
  ++stats_.published;
}

void Server::PublishChange(const Change& c, std::string_view full_key) {
  // Hot path: encode straight from the change into reused buffers (no KvPub copy of the record,
  // no topic string: a Set's full key is the topic, CK-4). The store lists the changed subtree
  // for the next tick's POSITION (CS-26).
  EncodeKvPubBody(c.epoch, *c.record, c.term, pub_body_);
  if (full_key.empty()) {
    pub_topic_.assign(c.subtree).push_back('/');
    pub_topic_.append(c.record->key);
    full_key = pub_topic_;
  }
  Publish(full_key, pub_body_);
  if (pub_body_.capacity() > (size_t{1} << 16)) std::string().swap(pub_body_);  // after a big value
  ++stats_.changes;
  if (observer_) observer_(c);
}

void Server::PublishPosition(std::string_view subtree) {
  // Into reused buffers: the sweep sends one per subtree per sweep_period (CS-26).
  pos_topic_.assign(subtree).push_back('/');
  if (const Subtree* st = store_.Find(subtree)) {
    EncodePositionBody(st->epoch, st->seq, st->term, st->term_start, pos_body_);  // CS-33
  } else {
    EncodePositionBody({}, 0, 0, 0, pos_body_);  // unborn (CS-6)
  }
  Publish(pos_topic_, pos_body_);
}

void Server::Heartbeat(Clock::time_point now) {
  next_heartbeat_ = now + options_.heartbeat_interval;
  EvictAcks(MonotonicMs(now));
  Publish(kHugzTopic,
          Encode(Hugz{kProtocolVersion, options_.server_id, WallMs(), store_.subtrees().size()}));
  // Changed subtrees first, so a replica that missed the last change hears of it within a tick.
  changed_names_.clear();
  store_.TakeChanged(options_.max_positions_per_tick, changed_names_);
  for (const std::string& name : changed_names_) PublishPosition(name);
  // Dropped subtrees (CS-28): announced as unborn on the next ticks, unless created again.
  for (auto it = removed_.begin(); it != removed_.end();) {
    if (store_.Find(it->first) == nullptr) PublishPosition(it->first);
    it =
        --it->second == 0 || store_.Find(it->first) != nullptr ? removed_.erase(it) : std::next(it);
  }
  // Then a rotating slice of all subtrees, in case a POSITION was itself dropped: sized so that
  // a sweep announces every subtree held at its start within sweep_period (CS-26).
  if (sweep_pos_ >= sweep_.size()) {
    sweep_.clear();
    sweep_pos_ = 0;
    for (const auto& [name, st] : store_.subtrees()) sweep_.push_back(name);
  }
  const size_t ticks = static_cast<size_t>(
      std::max<int64_t>(1, options_.sweep_period / options_.heartbeat_interval));
  size_t slice = (sweep_.size() + ticks - 1) / ticks;
  if (options_.max_sweep_rate > 0) {
    // The rate bound: the sweep's period stretches to n / max_sweep_rate above that many.
    const auto per_tick =
        static_cast<size_t>(static_cast<double>(options_.max_sweep_rate) *
                            std::chrono::duration<double>(options_.heartbeat_interval).count());
    slice = std::min(slice, std::max<size_t>(1, per_tick));
  }
  slice = std::max(options_.positions_per_sweep, slice);
  for (size_t i = 0; i < slice && sweep_pos_ < sweep_.size(); ++i) {
    PublishPosition(sweep_[sweep_pos_++]);
  }
}

void Server::ExpireDue(Clock::time_point now) {
  const int64_t next = store_.NextExpiry();
  if (next < 0 || next > MonotonicMs(now)) return;
  stats_.expiries += store_.Expire(MonotonicMs(now), [this](const Change& c) { PublishChange(c); });
}

Result<Position> Server::Set(std::string_view key, std::string_view value, uint64_t ttl_ms) {
  if (value.size() > options_.max_value_bytes) return Errc::kValueTooLarge;
  Position pos;
  auto r = ApplyChecked(key, Op::kSet, value, ttl_ms, {}, &pos);
  if (!r) return r.error();
  return pos;
}

Result<uint64_t> Server::Put(std::string_view key, std::string_view value, uint64_t ttl_ms) {
  if (value.size() > options_.max_value_bytes) return Errc::kValueTooLarge;
  return ApplyChecked(key, Op::kSet, value, ttl_ms);
}

Result<Position> Server::Erase(std::string_view key) {
  Position pos;
  auto r = ApplyChecked(key, Op::kDelete, {}, 0, {}, &pos);
  if (!r) return r.error();
  return pos;
}

// ---------------------------------------------------------------------------------------------
// ServerThread

Result<std::unique_ptr<ServerThread>> ServerThread::Start(ServerOptions options) {
  std::unique_ptr<ServerThread> t(new ServerThread());
  std::promise<std::error_code> bound;
  auto ready = bound.get_future();
  ServerThread* self = t.get();
  t->thread_ = std::thread([self, options = std::move(options), &bound]() mutable {
    auto server = Server::Create(self->ctx_, std::move(options));
    if (!server) {
      bound.set_value(server.error());
      return;
    }
    self->command_endpoint_ = (*server)->command_endpoint();
    self->publisher_endpoint_ = (*server)->publisher_endpoint();
    self->server_id_ = (*server)->server_id();
    bound.set_value({});
    while (!self->stop_.load(std::memory_order_relaxed)) {
      try {
        (*server)->RunOnce(std::chrono::milliseconds(20));
      } catch (const std::exception& e) {
        Log().error("chp server thread: {}", e.what());
      }
    }
  });
  if (std::error_code ec = ready.get()) {
    t->thread_.join();
    return ec;
  }
  return t;
}

void ServerThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

ServerThread::~ServerThread() {
  Stop();
}

}  // namespace chorus::chp
