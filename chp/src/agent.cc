// Implements docs/protocol/chp.md, "Replica behaviour" (the socket side; the per-subtree rules
// are in replica.cc).
#include "chp/agent.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <zmq_addon.hpp>

#include "chp/codec.h"
#include "chp/keys.h"

namespace chorus::chp {
namespace {

constexpr size_t kMaxReadsPerPoll = 4096;
enum LogKind : unsigned { kLogMalformed, kLogError, kLogFailover, kLogStall };
// A poll that returns this long after the link deadline it was given means a stall (CR-26).
constexpr auto kStallSlack = std::chrono::milliseconds(250);

// For tcp, the publisher is reached on the host used for the command endpoint and the port the
// server bound (spec: HELLO_OK), so servers bound to a wildcard address work.
std::string PublisherFor(const std::string& command, const std::string& publisher) {
  const std::string tcp = "tcp://";
  if (!command.starts_with(tcp) || !publisher.starts_with(tcp)) return publisher;
  const size_t host_end = command.rfind(':');
  const size_t port_pos = publisher.rfind(':');
  if (host_end == std::string::npos || port_pos == std::string::npos) return publisher;
  return command.substr(0, host_end) + publisher.substr(port_pos);
}

}  // namespace

ReplicaAgent::ReplicaAgent(zmq::context_t& ctx, AgentOptions options, ReplicaObserver* observer)
    : ctx_(ctx),
      options_(std::move(options)),
      observer_(observer),
      refused_(options_.endpoints.size(), false),
      rng_(std::random_device{}()) {}

ReplicaAgent::~ReplicaAgent() = default;

const std::string& ReplicaAgent::endpoint() const {
  static const std::string kNone;
  return options_.endpoints.empty() ? kNone : options_.endpoints[endpoint_index_];
}

ReplicaAgent::Slot& ReplicaAgent::AddReplica(const std::string& subtree,
                                             const SubtreeReplica* copy) {
  auto [it, inserted] =
      copy != nullptr
          ? replicas_.try_emplace(subtree, *copy)
          : replicas_.try_emplace(subtree, subtree, options_.max_queue, options_.max_queue_bytes,
                                  static_cast<int64_t>(options_.uuid_window.count()));
  if (!inserted) return slots_.find(std::string_view(subtree))->second;
  if (copy != nullptr) it->second.OnResubscribe();  // a new connection: subscribe, then resume
  Slot& s = slots_.emplace(subtree, Slot{&it->second, it->second.state()}).first->second;
  ++state_counts_[static_cast<size_t>(s.counted)];
  Note(s);
  return s;
}

void ReplicaAgent::RemoveReplica(const std::string& subtree) {
  auto it = slots_.find(std::string_view(subtree));
  if (it == slots_.end()) return;
  --state_counts_[static_cast<size_t>(it->second.counted)];
  queued_bytes_ -= it->second.queued_bytes;
  slots_.erase(it);  // queue entries naming it are skipped when taken
  replicas_.erase(subtree);
}

bool ReplicaAgent::WaitingForSubscriptions() const {
  if (follow_all_ && all_state_ == AllState::kWaitSubscribe) return true;
  return state_counts_[static_cast<size_t>(State::kWaitSubscribe)] > 0;
}

void ReplicaAgent::Unfollow(const std::string& subtree) {
  if (!replicas_.contains(subtree)) return;
  if (sub_ && !follow_all_) sub_->set(zmq::sockopt::unsubscribe, TopicPrefix(subtree));
  // Its sync request, if any, no longer holds a request slot (CR-9); a late reply is ignored.
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    auto next = std::next(it);
    if (it->second.subtree == subtree) EraseOutstanding(it);
    it = next;
  }
  RemoveReplica(subtree);
}

bool ReplicaAgent::AllLive() const {
  if (link_ != Link::kLive) return false;
  if (follow_all_ && all_state_ != AllState::kLive) return false;
  return state_counts_[static_cast<size_t>(State::kLive)] == replicas_.size();
}

const SubtreeReplica* ReplicaAgent::Find(std::string_view subtree) const {
  auto it = replicas_.find(subtree);
  return it == replicas_.end() ? nullptr : &it->second;
}

ReplicaStats ReplicaAgent::TotalReplicaStats() const {
  ReplicaStats t;
  for (const auto& [name, r] : replicas_) {
    const ReplicaStats& s = r.stats();
    t.snapshots += s.snapshots;
    t.resumes += s.resumes;
    t.gaps += s.gaps;
    t.epoch_changes += s.epoch_changes;
    t.behind += s.behind;
    t.rejected += s.rejected;
    t.applied += s.applied;
    t.stale += s.stale;
    t.overflows += s.overflows;
    t.failed_requests += s.failed_requests;
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Connection management

void ReplicaAgent::Connect(Clock::time_point now) {
  if (options_.endpoints.empty() || refused_[endpoint_index_]) return;
  dealer_.emplace(ctx_, zmq::socket_type::dealer);
  dealer_->set(zmq::sockopt::linger, 0);
  dealer_->set(zmq::sockopt::rcvhwm, options_.rcv_hwm);
  dealer_->connect(endpoint());
  hello_request_id_ = next_request_id_++;
  SendBody(Encode(Hello{kProtocolVersion, hello_request_id_}));
  link_ = Link::kHello;
  link_deadline_ = now + options_.connect_timeout;
}

const char* LinkEventName(LinkEvent e) {
  switch (e) {
    case LinkEvent::kUp:
      return "up";
    case LinkEvent::kDown:
      return "down";
    case LinkEvent::kServerChanged:
      return "server-changed";
  }
  return "?";
}

void ReplicaAgent::ReportLink(LinkEvent e, std::string previous) {
  if (e == LinkEvent::kUp || e == LinkEvent::kDown) {
    if (reported_up_ == (e == LinkEvent::kUp)) return;  // edges only
    reported_up_ = e == LinkEvent::kUp;
  }
  if (options_.on_link) options_.on_link(LinkState{e, endpoint(), server_id_, std::move(previous)});
}

void ReplicaAgent::Failover(Clock::time_point now, const char* why) {
  ++stats_.failovers;
  const bool peer = options_.mode == AgentOptions::Mode::kPeer;
  Log().warn("chp agent: {} {}; {}", endpoint(), why,
             peer ? "reconnecting" : "trying the next endpoint");
  ReportLink(LinkEvent::kDown);
  dealer_.reset();
  sub_.reset();
  ClearOutstanding();
  for (auto& [name, s] : slots_) {
    s.replica->OnRequestFailed();
    s.replica->OnResubscribe();
    Note(s);
  }
  if (follow_all_) all_state_ = AllState::kWaitSubscribe;
  // Cyclically to the next endpoint, skipping those that refused our version (CR-4); when every
  // one did, stay idle.
  for (size_t i = 1; i <= options_.endpoints.size() && !peer; ++i) {
    const size_t next = (endpoint_index_ + i) % options_.endpoints.size();
    if (!refused_[next]) {
      endpoint_index_ = next;
      break;
    }
  }
  link_ = Link::kIdle;
  Connect(now);
  if (link_ == Link::kIdle) {
    Log().error("chp agent: every endpoint refused protocol version {}", kProtocolVersion);
  }
}

void ReplicaAgent::OnHelloOk(const HelloOk& m, Clock::time_point now) {
  if (link_ != Link::kHello || m.request_id != hello_request_id_) return;
  ++stats_.connects;
  if (!server_id_.empty() && m.server_id != server_id_) {
    std::string previous = std::exchange(server_id_, m.server_id);
    ReportLink(LinkEvent::kServerChanged, std::move(previous));
  }
  server_id_ = m.server_id;
  sub_.emplace(ctx_, zmq::socket_type::sub);
  sub_->set(zmq::sockopt::linger, 0);
  sub_->set(zmq::sockopt::rcvhwm, options_.rcv_hwm);
  // A SUB sends its subscriptions through its send pipe and libzmq drops them silently at the
  // SNDHWM (default 1,000): with more followed subtrees, some would never be subscribed. It
  // sends nothing else, so the pipe holds at most one message per followed subtree (CR-34).
  sub_->set(zmq::sockopt::sndhwm, 0);
  sub_->connect(PublisherFor(endpoint(), m.publisher));
  sub_->set(zmq::sockopt::subscribe, kHugzTopic);
  if (follow_all_) {
    sub_->set(zmq::sockopt::subscribe, "");
  } else {
    for (const auto& [name, r] : replicas_) sub_->set(zmq::sockopt::subscribe, TopicPrefix(name));
  }
  link_ = Link::kSubscribing;
  link_deadline_ = now + options_.silence_timeout;
  subscribe_deadline_ = now + options_.subscribe_timeout;
  // KVSETs not yet acknowledged go again on the new connection; the UUID makes this safe.
  ResendUnacked(now);
  MarkAllApplied();  // CR-29: the new server learns where this replica is
  Log().info("chp agent: connected to {} (server {})", endpoint(), server_id_);
}

bool ReplicaAgent::SendBody(const std::string& body) {
  if (!dealer_) return false;
  // DEALER queues up to its HWM while connecting; beyond that the request times out and is
  // re-sent, so EAGAIN is not an error here.
  return dealer_->send(zmq::buffer(body), zmq::send_flags::dontwait).has_value();
}

// ---------------------------------------------------------------------------------------------
// Polling

size_t ReplicaAgent::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  if (link_ == Link::kIdle && !options_.endpoints.empty()) Connect(Clock::now());
  size_t n = 0;
  if (dealer_) {
    items.push_back({dealer_->handle(), 0, ZMQ_POLLIN, 0});
    ++n;
  }
  if (sub_) {
    items.push_back({sub_->handle(), 0, ZMQ_POLLIN, 0});
    ++n;
  }
  return n;
}

void ReplicaAgent::HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) {
  size_t i = 0;
  const bool dealer_ready = dealer_ && (items[i++].revents & ZMQ_POLLIN) != 0;
  const bool sub_ready = sub_ && (items[i++].revents & ZMQ_POLLIN) != 0;
  if (dealer_ready) ReadReplies(now);
  if (sub_ready && sub_) ReadPublisher(now);
  if (link_ != Link::kIdle && now - link_deadline_ > kStallSlack) {
    // The poll woke far past the link deadline it was given: this thread (or the process) was
    // stalled, and what the server sent meanwhile may not have reached the sockets yet. The
    // silence measured over a stall is not the server's: start the window again (CR-26).
    ++stats_.stalls;
    log_once_.Warn(
        kLogStall, "chp agent: stalled {} ms past the link deadline; not failing over",
        std::chrono::duration_cast<std::chrono::milliseconds>(now - link_deadline_).count());
    link_deadline_ =
        now + (link_ == Link::kHello ? options_.connect_timeout : options_.silence_timeout);
  }
  CheckTimeouts(now);
  SendRequests(now);
  SendApplied();
}

void ReplicaAgent::MarkApplied(const SubtreeReplica& r, const Position& before) {
  if (!options_.name.empty() && r.position() != before) applied_dirty_.push_back(r.subtree());
}

void ReplicaAgent::MarkAllApplied() {
  if (options_.name.empty()) return;
  for (const auto& [name, r] : replicas_) {
    if (!r.position().epoch.empty()) applied_dirty_.push_back(name);
  }
}

void ReplicaAgent::SendApplied() {
  if (applied_dirty_.empty()) return;
  if (link_ != Link::kLive && link_ != Link::kSubscribing) return;  // after HELLO_OK only
  std::sort(applied_dirty_.begin(), applied_dirty_.end());
  applied_dirty_.erase(std::unique(applied_dirty_.begin(), applied_dirty_.end()),
                       applied_dirty_.end());
  Applied m{options_.name, {}};
  for (const std::string& name : applied_dirty_) {
    const SubtreeReplica* r = Find(name);
    if (r == nullptr || r->position().epoch.empty()) continue;  // unfollowed, or nothing applied
    m.positions.push_back(AppliedEntry{name, r->position()});
    if (m.positions.size() == kMaxAppliedPerFrame) {
      SendBody(Encode(m));
      ++stats_.applied_sent;
      m.positions.clear();
    }
  }
  if (!m.positions.empty()) {
    SendBody(Encode(m));
    ++stats_.applied_sent;
  }
  applied_dirty_.clear();
}

void ReplicaAgent::ReadReplies(Clock::time_point now) {
  zmq::message_t msg;
  for (size_t n = 0; n < kMaxReadsPerPoll && dealer_; ++n) {
    if (!dealer_->recv(msg, zmq::recv_flags::dontwait)) return;
    if (msg.more()) {
      // Replies are single frames; drain and drop anything else.
      while (msg.more() && dealer_->recv(msg, zmq::recv_flags::dontwait)) {
      }
      ++stats_.malformed;
      continue;
    }
    auto decoded = DecodeReply(msg.to_string_view());
    if (!decoded) {
      ++stats_.malformed;
      log_once_.Warn(kLogMalformed, "chp agent: dropped a malformed reply ({} bytes)", msg.size());
      continue;
    }
    HandleReply(std::move(*decoded), now);
  }
}

void ReplicaAgent::HandleReply(ReplyMessage&& m, Clock::time_point now) {
  if (auto* ok = std::get_if<HelloOk>(&m)) {
    OnHelloOk(*ok, now);
  } else if (std::holds_alternative<KvSync>(m) || std::holds_alternative<Kthxbai>(m)) {
    HandleSyncFrame(std::move(m), now);
  } else if (auto* done = std::get_if<Done>(&m)) {
    if (!follow_all_ || done->request_id != all_request_id_) return;
    auto it = outstanding_.find(done->request_id);
    if (it != outstanding_.end()) EraseOutstanding(it);
    // Subtrees seen only as updates during the "*" sync did not exist at snapshot time: unborn.
    for (auto& [name, s] : slots_) {
      SubtreeReplica& r = *s.replica;
      if (r.state() == State::kSyncing && r.request_id() == all_request_id_) {
        r.OnSyncEnd(Kthxbai{all_request_id_, name, {}, 0, SyncMode::kSnapshot}, observer_);
        Note(s);
      }
    }
    all_state_ = AllState::kLive;
  } else if (auto* ack = std::get_if<KvAck>(&m)) {
    auto it = unacked_index_.find(ack->uuid);
    if (it == unacked_index_.end()) return;  // duplicate ack of a retried KVSET
    auto u = unacked_.find(it->second);
    AckHandler h = std::move(u->second.on_ack);
    EraseUnacked(u);
    if (h) h(*ack);
  } else if (auto* err = std::get_if<Error>(&m)) {
    ++stats_.errors;
    log_once_.Warn(kLogError, "chp agent: server error {}: {}", err->code, err->message);
    if (link_ == Link::kHello && err->request_id == hello_request_id_) {
      // CR-4: no further commands to a server that refused our version.
      if (err->code == static_cast<uint32_t>(Errc::kBadVersion)) refused_[endpoint_index_] = true;
      Failover(now, "refused HELLO");
      return;
    }
    auto it = outstanding_.find(err->request_id);
    if (it != outstanding_.end()) {
      // An invalid subtree cannot be followed; stop asking for it.
      const std::string subtree = it->second.subtree;
      EraseOutstanding(it);
      if (!subtree.empty()) RemoveReplica(subtree);
    }
  }
}

// KVSYNC and KTHXBAI: staged, or ending a subtree's sync (CR-12 .. CR-16, CR-21).
void ReplicaAgent::HandleSyncFrame(ReplyMessage&& m, Clock::time_point now) {
  auto* sync = std::get_if<KvSync>(&m);
  auto* end = std::get_if<Kthxbai>(&m);
  const uint64_t request_id = sync ? sync->request_id : end->request_id;
  const std::string& subtree = sync ? sync->subtree : end->subtree;
  auto it = outstanding_.find(request_id);
  if (it == outstanding_.end()) return;  // a request we gave up on
  const bool all = request_id == all_request_id_ && follow_all_;
  if (!all && subtree != it->second.subtree) return;  // not this request's reply (CR-8)
  if (sync != nullptr) ExtendOutstanding(it, now + options_.request_timeout);
  Slot* s = SlotFor(subtree, all);
  if (s == nullptr) {
    if (!all) EraseOutstanding(it);  // unfollowed meanwhile: free the slot (CR-9)
    return;
  }
  SubtreeReplica& r = *s->replica;
  if (all && r.request_id() != all_request_id_) {
    r.OnSubscribed();
    (void)r.MakeRequest(all_request_id_);
  }
  if (sync != nullptr) {
    r.OnSyncRecords(sync->request_id, std::move(sync->records));
  } else {
    const Position before = r.position();
    r.OnSyncEnd(*end, observer_);
    MarkApplied(r, before);
    if (!all) {
      EraseOutstanding(it);
    } else {
      ExtendOutstanding(it, now + options_.request_timeout);
    }
  }
  Note(*s);
}

ReplicaAgent::Slot* ReplicaAgent::SlotFor(const std::string& subtree, bool create) {
  auto it = slots_.find(std::string_view(subtree));
  if (it != slots_.end()) return &it->second;
  if (!create || !IsValidSubtree(subtree)) return nullptr;
  return &AddReplica(subtree);
}

void ReplicaAgent::ReadPublisher(Clock::time_point now) {
  std::vector<zmq::message_t> frames;
  for (size_t n = 0; n < kMaxReadsPerPoll; ++n) {
    frames.clear();
    if (!zmq::recv_multipart(*sub_, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
    link_deadline_ = now + options_.silence_timeout;
    if (frames.size() != 2) {
      ++stats_.malformed;
      continue;
    }
    // The bulk of the traffic decodes into a reused KVPUB (no allocation once warm).
    if (DecodeKvPubInto(frames[0].to_string_view(), frames[1].to_string_view(), scratch_pub_)) {
      HandleKvPub(scratch_pub_);
      continue;
    }
    if (DecodePositionInto(frames[0].to_string_view(), frames[1].to_string_view(),
                           scratch_position_)) {
      HandlePosition(scratch_position_);
      continue;
    }
    auto decoded = DecodePub(frames[0].to_string_view(), frames[1].to_string_view());
    if (!decoded) {
      ++stats_.malformed;
      log_once_.Warn(kLogMalformed, "chp agent: dropped a malformed publication");
      continue;
    }
    HandlePub(std::move(*decoded));
  }
}

void ReplicaAgent::HandlePub(PubMessage&& m) {
  if (auto* hugz = std::get_if<Hugz>(&m)) {
    if (hugz->server_id != server_id_ && link_ != Link::kHello) {
      // The server behind this endpoint restarted: requests sent to the old one are lost. Ask
      // again now rather than after the request timeout; the epochs tell replicas to re-snapshot.
      Log().info("chp agent: {} is now server {} (was {})", endpoint(), hugz->server_id,
                 server_id_);
      std::string previous = std::exchange(server_id_, hugz->server_id);
      ClearOutstanding();
      // Every followed subtree resyncs, the live ones too (CR-28): for a subtree the new server
      // does not hold, its one welcome POSITION may be lost and nothing else would tell. Each
      // asks to resume from its position; the server answers with a snapshot when it cannot.
      for (auto& [name, s] : slots_) {
        s.replica->OnServerChanged();
        Note(s);
      }
      MarkAllApplied();
      // Following all: subtrees the new server lacks get no POSITION; only a new "*" snapshot
      // (DONE resets the ones it does not list) removes them.
      if (follow_all_ && all_state_ != AllState::kWaitSubscribe) all_state_ = AllState::kNeedSync;
      ResendUnacked(Clock::now());
      if (!previous.empty()) ReportLink(LinkEvent::kServerChanged, std::move(previous));
    }
    if (link_ == Link::kSubscribing) {
      link_ = Link::kLive;
      ReportLink(LinkEvent::kUp);
    }
    if (follow_all_ && all_state_ == AllState::kWaitSubscribe) all_state_ = AllState::kNeedSync;
    return;
  }
  if (auto* pub = std::get_if<KvPub>(&m)) {
    HandleKvPub(*pub);
  } else if (auto* pos = std::get_if<PositionMsg>(&m)) {
    HandlePosition(*pos);
  }
}

void ReplicaAgent::HandleKvPub(KvPub& m) {
  ++stats_.updates;
  Slot* s = SlotFor(m.subtree, follow_all_);
  if (s == nullptr) return;
  SubtreeReplica& r = *s->replica;
  if (follow_all_ && r.state() == State::kWaitSubscribe) {
    r.OnSubscribed();
    if (all_state_ == AllState::kLive && r.position().epoch.empty()) {
      // Born after the "*" snapshot: start unborn and let the sequence rules decide.
      (void)r.MakeRequest(0);
      r.OnSyncEnd(Kthxbai{0, m.subtree, {}, 0, SyncMode::kSnapshot}, observer_);
    } else if (all_state_ == AllState::kSyncing) {
      (void)r.MakeRequest(all_request_id_);
    }
  }
  if (!r.live() &&
      queued_bytes_ + SubtreeReplica::QueuedBytes(m.record) > options_.max_total_queue_bytes) {
    // CR-11: the queues of all subtrees together are full; this subtree's goes (and it syncs
    // again after its current sync), so the bound holds whatever the number of subtrees.
    r.DiscardQueue();
    Note(*s);
  }
  // In place: the record's strings are reused for the next update unless it is queued.
  if (options_.name.empty()) {
    r.OnUpdateInPlace(m.epoch, m.record, observer_, m.term);
  } else {
    const Position before = r.position();
    r.OnUpdateInPlace(m.epoch, m.record, observer_, m.term);
    MarkApplied(r, before);
  }
  Note(*s);
}

void ReplicaAgent::HandlePosition(const PositionMsg& m) {
  Slot* s = SlotFor(m.subtree, follow_all_ && all_state_ == AllState::kLive);
  if (s == nullptr) return;
  SubtreeReplica& r = *s->replica;
  // A subtree first seen after the "*" snapshot starts unborn (CR-22). Only then: after a
  // failover every subtree waits for its subscription again, and one with content must keep
  // it until the next "*" snapshot replaces it (the POSITION may precede the "*" request).
  if (follow_all_ && all_state_ == AllState::kLive && r.state() == State::kWaitSubscribe &&
      r.position().epoch.empty()) {
    r.OnSubscribed();
    (void)r.MakeRequest(0);
    r.OnSyncEnd(Kthxbai{0, m.subtree, {}, 0, SyncMode::kSnapshot}, observer_);
  }
  r.OnPosition(m.position, m.term);  // CR-19, CR-36
  Note(*s);
}

}  // namespace chorus::chp
