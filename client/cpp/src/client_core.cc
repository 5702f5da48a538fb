// Sessions, requests, keepalive and reconnect (docs/protocol/native.md, "Sessions", "Commands").
// Subscriptions and delivery are in subscriptions.cc.
#include "client_core.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "log.h"

namespace chorus::client::detail {
namespace {

constexpr auto kNever = Clock::time_point::max();

template <typename T, typename Decode>
std::function<void(Result<const ServerFrame*>)> Typed(Callback<T> cb, Decode decode) {
  return [cb = std::move(cb), decode](Result<const ServerFrame*> r) {
    if (!cb) return;
    if (!r) return cb(r.error());
    const ServerFrame& f = **r;
    if (f.error) return cb(*f.error);
    cb(decode(f.result));
  };
}

}  // namespace

ClientCore::ClientCore(zmq::context_t& ctx, ClientOptions options, ClientHandlers handlers)
    : ctx_(ctx),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()) {
  if (options_.endpoints.empty()) options_.endpoints.push_back("tcp://127.0.0.1:0");
}

ClientCore::~ClientCore() = default;  // the socket closes with linger 0

// ---------------------------------------------------------------------------------------------
// Session lifecycle.

void ClientCore::Connect(Callback<ConnectResult> cb) {
  if (state_ == ClientState::kConnected) {
    if (cb) Post([cb = std::move(cb), r = connect_result_] { cb(r); });
    return;
  }
  if (cb) connect_cbs_.push_back(std::move(cb));
  if (state_ == ClientState::kConnecting) return;
  state_ = ClientState::kConnecting;
  attempts_ = 0;
  last_error_ = {};
  reconnect_at_ = Clock::now();  // the first session opens at the next HandleEvents
}

void ClientCore::Disconnect() {
  if (state_ == ClientState::kClosed) return;
  if (socket_) {
    // N-5: `disconnect` has no reply; a short linger lets the frame leave before the close.
    Send(EncodeDisconnect(next_id_++));
    socket_->set(zmq::sockopt::linger, 200);
  }
  EndSession({static_cast<uint32_t>(Errc::kClosed), "Disconnect() called", false}, Clock::now());
}

void ClientCore::StartSession(Clock::time_point now) {
  const std::string& ep = endpoint();
  try {
    socket_.emplace(ctx_, zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->set(zmq::sockopt::sndhwm, options_.sndhwm);
    socket_->set(zmq::sockopt::rcvhwm, options_.rcvhwm);
    socket_->connect(ep);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    ++generation_;
    EndSession({static_cast<uint32_t>(Errc::kConnectionLost),
                "cannot connect to " + ep + ": " + e.what(), true},
               now);
    return;
  }
  ++generation_;
  ++stats_.sessions;
  connect_id_ = next_id_++;
  connect_deadline_ = now + options_.request_timeout;
  Log().debug("session {} to {}", stats_.sessions, ep);
  if (!Send(EncodeConnect(connect_id_, options_.token, options_.user, options_.info))) {
    EndSession({static_cast<uint32_t>(Errc::kSendFailed), "connect not sent", true}, now);
  }
}

Clock::duration ClientCore::NextBackoff() {
  const double base_ms = std::min<double>(static_cast<double>(options_.reconnect_max.count()),
                                          static_cast<double>(options_.reconnect_min.count()) *
                                              std::pow(2.0, std::min(attempts_, 30u)));
  ++attempts_;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double ms = base_ms * (1.0 - options_.reconnect_jitter * u(rng_));
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

void ClientCore::EndSession(DisconnectInfo info, Clock::time_point now) {
  const bool was_connected = state_ == ClientState::kConnected;
  if (socket_) {
    socket_.reset();
    ++generation_;
  }
  connect_id_ = 0;
  ping_id_ = 0;
  client_id_.clear();
  for (auto& [channel, s] : subs_) {
    s.state = SubState::kPending;
    s.request_id = 0;
    s.buffered.clear();
  }
  // Requests sent on this session will get no reply; unsent ones wait for the next session,
  // unless the client stops.
  std::vector<Done> failed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.sent || !info.reconnect) {
      if (it->second.user) --user_pending_;
      failed.push_back(std::move(it->second.done));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (pending_.empty()) {
    timeouts_.clear();
    unsent_.clear();
  }
  std::vector<Callback<ConnectResult>> connect_cbs;
  Error error(info.code, info.reason);
  if (info.reconnect) {
    state_ = ClientState::kConnecting;
    endpoint_index_ = (endpoint_index_ + 1) % options_.endpoints.size();
    reconnect_at_ = now + NextBackoff();
    Log().info("session ended ({} {}); reconnecting to {}", info.code, info.reason, endpoint());
  } else {
    state_ = ClientState::kClosed;
    last_error_ = error;
    connect_cbs.swap(connect_cbs_);
    Log().info("session ended ({} {}); not reconnecting", info.code, info.reason);
  }
  // Callbacks last: the state above is final, whatever they do.
  const Error lost = info.reconnect ? Error(Errc::kConnectionLost, info.reason) : error;
  for (auto& done : failed) {
    if (done) done(lost);
  }
  for (auto& cb : connect_cbs) cb(error);
  if (was_connected || !info.reconnect) {
    if (handlers_.on_disconnected) handlers_.on_disconnected(info);
  } else if (handlers_.on_error) {
    handlers_.on_error(error);
  }
}

bool ClientCore::Send(const std::string& body) {
  if (!socket_) return false;
  try {
    return socket_->send(zmq::buffer(body), zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t& e) {
    Log().warn("send failed: {}", e.what());
    return false;
  }
}

void ClientCore::OnConnectReply(ServerFrame& frame, Clock::time_point now) {
  connect_id_ = 0;
  if (frame.error) {
    const Error e = *frame.error;
    // 100 internal, 108 not available, 111 too many requests: worth another attempt. Anything
    // else (101 unauthorized, 109 token expired, 107...) will not get better by retrying.
    const bool retry =
        e.Is(Errc::kInternal) || e.Is(Errc::kNotAvailable) || e.Is(Errc::kTooManyRequests);
    EndSession({e.code, "connect refused: " + e.message, retry}, now);
    return;
  }
  auto r = DecodeConnectResult(frame.result);
  if (!r) {
    ++stats_.malformed;
    EndSession({r.error().code, "connect reply: " + r.error().message, true}, now);
    return;
  }
  state_ = ClientState::kConnected;
  ++stats_.connects;
  attempts_ = 0;
  connect_result_ = *r;
  client_id_ = r->client;
  using std::chrono::seconds;
  ping_every_ = options_.ping_interval.value_or(seconds(r->ping));
  pong_wait_ = options_.pong_timeout.value_or(seconds(r->pong));
  if (pong_wait_ <= Clock::duration::zero()) pong_wait_ = ping_every_;  // no grace given
  next_ping_ = ping_every_ > Clock::duration::zero() ? now + ping_every_ : kNever;
  Log().debug("connected to {} as {}", endpoint(), client_id_);

  // Resubscribe everything (N-15), then send the requests made while connecting.
  const uint64_t gen = generation_;
  for (auto& [channel, s] : subs_) {
    if (s.state == SubState::kPending) SendSubscribe(s, now);
    if (gen != generation_) return;
  }
  std::deque<uint64_t> unsent;
  unsent.swap(unsent_);
  std::vector<Done> failed;
  for (uint64_t id : unsent) {
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.sent) continue;
    if (Send(it->second.body)) {
      it->second.sent = true;
      it->second.body.clear();
    } else {
      --user_pending_;
      failed.push_back(std::move(it->second.done));
      pending_.erase(it);
    }
  }
  auto cbs = std::move(connect_cbs_);
  connect_cbs_.clear();
  const ConnectResult result = connect_result_;
  for (auto& done : failed) done(Error(Errc::kSendFailed, "send queue full"));
  if (handlers_.on_connected) handlers_.on_connected(result);
  for (auto& cb : cbs) cb(result);
}

// ---------------------------------------------------------------------------------------------
// Requests.

Result<Unit> ClientCore::StartRequest(const std::function<std::string(uint64_t)>& encode,
                                      Done done) {
  if (state_ == ClientState::kClosed) return Error(Errc::kClosed, "client is not connected");
  if (user_pending_ >= options_.max_pending) {
    return Error(Errc::kPendingLimit, "too many pending requests");
  }
  const uint64_t id = next_id_++;
  Pending p;
  p.deadline = Clock::now() + options_.request_timeout;
  p.done = std::move(done);
  std::string body = encode(id);
  if (state_ == ClientState::kConnected) {
    if (!Send(body)) return Error(Errc::kSendFailed, "send queue full");
    p.sent = true;
  } else {
    p.body = std::move(body);
    unsent_.push_back(id);
  }
  timeouts_.emplace_back(p.deadline, id);
  pending_.emplace(id, std::move(p));
  ++user_pending_;
  return Unit{};
}

Result<Unit> ClientCore::Publish(std::string channel, std::string data,
                                 Callback<PublishResult> cb) {
  return StartRequest([&](uint64_t id) { return EncodePublish(id, channel, data); },
                      Typed(std::move(cb), DecodePublishResult));
}

Result<Unit> ClientCore::Presence(std::string channel, std::string cursor, uint32_t limit,
                                  Callback<PresenceResult> cb) {
  return StartRequest([&](uint64_t id) { return EncodePresence(id, channel, cursor, limit); },
                      Typed(std::move(cb), DecodePresenceResult));
}

Result<Unit> ClientCore::PresenceStats(std::string channel, Callback<PresenceStatsResult> cb) {
  return StartRequest([&](uint64_t id) { return EncodePresenceStats(id, channel); },
                      Typed(std::move(cb), DecodePresenceStatsResult));
}

Result<Unit> ClientCore::History(std::string channel, HistoryOptions options,
                                 Callback<HistoryResult> cb) {
  return StartRequest([&](uint64_t id) { return EncodeHistory(id, channel, options); },
                      Typed(std::move(cb), DecodeHistoryResult));
}

Result<Unit> ClientCore::SyncSubmit(SyncSubmitOptions options, Callback<uint64_t> cb) {
  return StartRequest([&](uint64_t id) { return EncodeSyncSubmit(id, options); },
                      Typed(std::move(cb), DecodeSyncSubmitResult));
}

Result<Unit> ClientCore::SyncStatus(uint64_t job, Callback<SyncJob> cb) {
  if (job == 0) return Error(Errc::kBadRequest, "sync_status: job must be > 0");
  return StartRequest([&](uint64_t id) { return EncodeSyncStatus(id, job); },
                      Typed(std::move(cb), DecodeSyncStatusResult));
}

Result<Unit> ClientCore::SyncJobs(Callback<std::vector<SyncJob>> cb) {
  return StartRequest([&](uint64_t id) { return EncodeSyncStatus(id, 0); },
                      Typed(std::move(cb), DecodeSyncJobsResult));
}

Result<Unit> ClientCore::SyncCancel(uint64_t job, Callback<Unit> cb) {
  return StartRequest([&](uint64_t id) { return EncodeSyncCancel(id, job); },
                      Typed(std::move(cb), DecodeEmptyResult));
}

// ---------------------------------------------------------------------------------------------
// Polling.

size_t ClientCore::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  if (!socket_) {
    polled_generation_ = 0;
    return 0;
  }
  items.push_back({socket_->handle(), 0, ZMQ_POLLIN, 0});
  polled_generation_ = generation_;
  return 1;
}

void ClientCore::HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) {
  // The socket may have been replaced since AddPollItems (by a callback of another Pollable).
  const bool readable = polled_generation_ != 0 && polled_generation_ == generation_ &&
                        items != nullptr && (items[0].revents & ZMQ_POLLIN) != 0;
  polled_generation_ = 0;
  if (readable) ReadSocket(now);
  Timers(now);
}

Clock::time_point ClientCore::NextDeadline() const {
  if (!posted_.empty()) return Clock::now();  // not time_point::min(): callers subtract now
  Clock::time_point t = kNever;
  if (state_ == ClientState::kConnecting && !socket_) t = std::min(t, reconnect_at_);
  if (connect_id_ != 0) t = std::min(t, connect_deadline_);
  if (state_ == ClientState::kConnected) {
    t = std::min(t, ping_id_ != 0 ? pong_deadline_ : next_ping_);
  }
  if (!timeouts_.empty()) t = std::min(t, timeouts_.front().first);
  return t;
}

void ClientCore::ReadSocket(Clock::time_point now) {
  const uint64_t gen = generation_;
  for (size_t i = 0; i < options_.max_reads_per_poll && socket_ && gen == generation_; ++i) {
    zmq::message_t msg;
    try {
      if (!socket_->recv(msg, zmq::recv_flags::dontwait)) return;
      if (msg.more()) {  // one frame per message (spec "Frames"): drop the whole message
        while (msg.more() && socket_->recv(msg, zmq::recv_flags::dontwait)) {
        }
        Malformed(Error(Errc::kMalformed, "multipart message"));
        continue;
      }
    } catch (const zmq::error_t& e) {
      Log().warn("recv failed: {}", e.what());
      return;
    }
    HandleFrame(msg.to_string_view(), now);
  }
}

void ClientCore::Malformed(const Error& e) {
  ++stats_.malformed;
  // Logged at warn for the 1st, 2nd, 4th, 8th... occurrence; a broken peer cannot flood the log.
  if ((stats_.malformed & (stats_.malformed - 1)) == 0) {
    Log().warn("dropped a frame from the node ({} so far): {}", stats_.malformed, e.message);
  }
}

void ClientCore::HandleFrame(std::string_view bytes, Clock::time_point now) {
  auto frame = DecodeFrame(bytes);
  if (!frame) return Malformed(frame.error());
  if (frame->is_push) {
    HandlePush(*frame, now);
  } else {
    HandleReply(*frame, now);
  }
}

void ClientCore::HandleReply(ServerFrame& frame, Clock::time_point now) {
  if (frame.id == connect_id_ && connect_id_ != 0) return OnConnectReply(frame, now);
  if (state_ != ClientState::kConnected) {
    ++stats_.unmatched;
    return;
  }
  // N-1: 101 to a command of a live session means the node does not know this routing id any
  // more (e.g. libzmq reconnected the TCP connection under a new one): start a new session.
  const bool unknown_session = frame.error && frame.error->Is(Errc::kUnauthorized);
  const uint64_t gen = generation_;
  if (frame.id == ping_id_ && ping_id_ != 0) {
    ping_id_ = 0;  // pong; the next ping is already scheduled
  } else if (auto it = pending_.find(frame.id); it != pending_.end()) {
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.user) --user_pending_;
    if (p.done) p.done(&frame);
  } else {
    ++stats_.unmatched;
    return;
  }
  if (unknown_session && gen == generation_ && state_ == ClientState::kConnected) {
    EndSession({frame.error->code, "session unknown to the node: " + frame.error->message, true},
               now);
  }
}

void ClientCore::Timers(Clock::time_point now) {
  if (!posted_.empty()) {
    auto posted = std::move(posted_);
    posted_.clear();
    for (auto& fn : posted) fn();
  }
  if (state_ == ClientState::kConnecting && !socket_ && now >= reconnect_at_) {
    StartSession(now);
  }
  if (connect_id_ != 0 && now >= connect_deadline_) {
    EndSession({static_cast<uint32_t>(Errc::kTimeout), "connect timed out", true}, now);
  }
  if (state_ == ClientState::kConnected) {
    if (ping_id_ != 0 && now >= pong_deadline_) {
      // N-4: an unanswered ping means the connection is dead.
      EndSession({static_cast<uint32_t>(Errc::kPingTimeout), "ping not answered", true}, now);
    } else if (ping_id_ == 0 && now >= next_ping_) {
      ping_id_ = next_id_++;
      next_ping_ = now + ping_every_;
      pong_deadline_ = now + pong_wait_;
      ++stats_.pings;
      if (!Send(EncodePing(ping_id_))) {
        EndSession({static_cast<uint32_t>(Errc::kPingTimeout), "ping not sent", true}, now);
      }
    }
  }
  ProcessTimeouts(now);
}

void ClientCore::ProcessTimeouts(Clock::time_point now) {
  while (!timeouts_.empty()) {
    const auto [deadline, id] = timeouts_.front();
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      timeouts_.pop_front();
      continue;
    }
    if (deadline > now) break;
    timeouts_.pop_front();
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.user) --user_pending_;
    ++stats_.timeouts;
    if (p.done) p.done(Error(Errc::kTimeout, "no reply within request_timeout"));
  }
  // Completed requests leave their entries behind; compact when they dominate.
  if (timeouts_.size() > 1024 && timeouts_.size() > 4 * pending_.size()) {
    std::erase_if(timeouts_, [&](const auto& e) { return !pending_.contains(e.second); });
  }
}

}  // namespace chorus::client::detail
