// The replica agent (docs/protocol/chp.md, "Replica behaviour"): follows subtrees of one logical
// server, given as a list of command endpoints tried in order (failover after silence). Owns a
// DEALER (HELLO, ICANHAZ, KVSET) and a SUB, and one SubtreeReplica per followed subtree.
// Not thread-safe: owned by the thread that polls it; observer and ack callbacks run there.
// To follow several servers from one thread, poll several agents with PollOnce.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "chp/errc.h"
#include "chp/log.h"
#include "chp/loop.h"
#include "chp/replica.h"
#include "chp/types.h"

namespace chorus::chp {

// CR-33: what the link to the server did. Reported to AgentOptions::on_link.
enum class LinkEvent {
  kUp,             // HELLO answered and the publisher heard from: the link is live
  kDown,           // a live link was lost (publisher silent, HELLO refused)
  kServerChanged,  // another server (a new server id) answers at the endpoint
};
struct LinkState {
  LinkEvent event = LinkEvent::kUp;
  std::string endpoint;            // the command endpoint of the link
  std::string server_id;           // the server id now (kDown: the one lost)
  std::string previous_server_id;  // kServerChanged: the id before
};
const char* LinkEventName(LinkEvent e);

struct AgentOptions {
  // Failover: endpoints of one logical server, tried in order (the tools' mode). Peer: one
  // cluster peer, endpoints.front() only; after silence the agent reconnects to it instead of
  // moving on, and the owner learns the link's state from on_link (CR-33).
  enum class Mode { kFailover, kPeer };
  Mode mode = Mode::kFailover;
  std::vector<std::string> endpoints;  // command endpoints, failover order
  // Link state changes, on the agent's thread, in order: kDown once per live link lost, kUp once
  // per link that becomes live, kServerChanged once per new server id, before the kUp that
  // follows it when HELLO_OK tells. Both modes report; the callback must not destroy the agent.
  std::function<void(const LinkState&)> on_link;
  std::chrono::milliseconds connect_timeout{1000};   // HELLO unanswered: try the next endpoint
  std::chrono::milliseconds silence_timeout{2000};   // publisher silent: fail over
  std::chrono::milliseconds subscribe_timeout{500};  // no welcome POSITION: sync anyway
  std::chrono::milliseconds request_timeout{3000};   // no progress on a sync or KVSET: re-send
  // CR-11: updates queued per subtree while it syncs, in number and in bytes (key and value
  // plus 24 per update), and the bytes queued for all subtrees together.
  size_t max_queue = 100'000;
  size_t max_queue_bytes = SubtreeReplica::kDefaultMaxQueueBytes;
  size_t max_total_queue_bytes = size_t{256} << 20;
  // CR-9: sync requests in flight per connection; subtrees waiting for a slot are served in the
  // order they came to need a sync (FIFO), so none starves.
  size_t max_outstanding = 256;
  size_t max_unacked = 10'000;  // KVSETs awaiting KVACK
  // CR-35: how long each subtree's UUID window keeps an applied update's UUID (the server's
  // dedup_window_ms, CS-10), for a promoted copy (SubtreeReplica::Copy, Server::Adopt).
  std::chrono::milliseconds uuid_window{10'000};
  // CR-32: a KVSET unacknowledged this long after it was first sent is given up and reported
  // as kTimeout; less than the server's dedup window (CS-10), so a retry is never applied twice.
  std::chrono::milliseconds kvset_give_up{8000};
  int rcv_hwm = 100'000;
  // Non-empty: report applied positions to the server under this name (CR-29, APPLIED), so a
  // primary knows how far this replica got. At most kMaxReplicaNameBytes.
  std::string name;
};

struct AgentStats {
  uint64_t connects = 0;   // HELLO_OK received
  uint64_t failovers = 0;  // connections abandoned for silence or no HELLO_OK
  uint64_t requests = 0;   // ICANHAZ sent
  uint64_t timeouts = 0;   // sync requests re-sent after request_timeout
  uint64_t errors = 0;     // ERROR replies
  uint64_t malformed = 0;  // frames dropped as undecodable
  uint64_t kvset_retries = 0;
  uint64_t kvset_given_up = 0;  // KVSETs reported as kTimeout (CR-32)
  uint64_t updates = 0;         // KVPUB received
  uint64_t stalls = 0;          // polls far past the link deadline (not counted as silence)
  uint64_t applied_sent = 0;    // APPLIED frames sent (CR-29)
};

class ReplicaAgent final : public Pollable {
 public:
  using AckHandler = std::function<void(const KvAck&)>;

  ReplicaAgent(zmq::context_t& ctx, AgentOptions options, ReplicaObserver* observer = nullptr);
  ~ReplicaAgent() override;

  Result<Unit> Follow(const std::string& subtree);
  // Follows `subtree` from `copy`, a replica of it kept by another agent (the subtree's owner
  // moved: a backup promoted with Server::Adopt, CS-29). The copy's content, position and term
  // are kept and its first sync asks to resume (CR-7, CR-30): a server on the same line (CS-30)
  // answers with a resume, any other with a snapshot. kBadKey when `copy` is of another subtree.
  Result<Unit> Follow(const std::string& subtree, const SubtreeReplica& copy);
  // Follows every subtree the server has or will have (spec: "*" snapshot plus prefix "").
  void FollowAll();
  void Unfollow(const std::string& subtree);

  // Sends a KVSET with a fresh UUID, re-sent until acknowledged (the server applies it once).
  Result<Uuid> Set(std::string_view key, std::string_view value, uint64_t ttl_ms = 0,
                   AckHandler on_ack = nullptr);
  Result<Uuid> Erase(std::string_view key, AckHandler on_ack = nullptr);

  void RunOnce(std::chrono::milliseconds max_wait) { PollOnce({this}, max_wait); }
  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) override;
  Clock::time_point NextDeadline() const override;

  // Connected: HELLO answered and the publisher heard from within the silence timeout.
  bool connected() const { return link_ == Link::kLive; }
  // Every followed subtree is live (and, when following all, the "*" snapshot is complete).
  bool AllLive() const;
  const std::string& server_id() const { return server_id_; }
  const std::string& endpoint() const;
  const SubtreeReplica* Find(std::string_view subtree) const;
  const std::map<std::string, SubtreeReplica, std::less<>>& replicas() const { return replicas_; }
  const AgentStats& stats() const { return stats_; }
  ReplicaStats TotalReplicaStats() const;
  size_t unacked() const { return unacked_.size(); }
  // Bytes of updates queued by subtrees that are not live (CR-11), all subtrees together.
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  enum class Link { kIdle, kHello, kSubscribing, kLive };
  using State = SubtreeReplica::State;
  struct Outstanding {
    std::string subtree;  // empty for the "*" request
    Clock::time_point deadline;
  };
  // Agent-side bookkeeping of one followed subtree: the state last counted in state_counts_ and
  // whether it sits in the need-sync or wait-subscribe queue. Kept in step by Note().
  struct Slot {
    SubtreeReplica* replica = nullptr;
    State counted = State::kWaitSubscribe;
    bool queued = false;      // in need_sync_
    bool waiting = false;     // in wait_subscribe_
    size_t queued_bytes = 0;  // replica->queued_bytes() as last counted in queued_bytes_
  };
  struct Unacked {
    Uuid uuid;
    std::string body;
    AckHandler on_ack;
    Clock::time_point deadline;  // next retry (also the key in retries_)
    Clock::time_point give_up;
  };
  struct UuidHash {
    size_t operator()(const Uuid& u) const noexcept;
  };

  void Connect(Clock::time_point now);
  void ReportLink(LinkEvent e, std::string previous = {});
  void Failover(Clock::time_point now, const char* why);
  void OnHelloOk(const HelloOk& m, Clock::time_point now);
  void ReadReplies(Clock::time_point now);
  void ReadPublisher(Clock::time_point now);
  void HandleReply(ReplyMessage&& m, Clock::time_point now);
  void HandleSyncFrame(ReplyMessage&& m, Clock::time_point now);
  void HandlePub(PubMessage&& m);
  void HandleKvPub(KvPub& m);  // moves from m.record only when the update is queued
  void HandlePosition(const PositionMsg& m);
  void SendRequests(Clock::time_point now);
  void EndSubscribeWait();
  void CheckTimeouts(Clock::time_point now);
  void CheckUnacked(Clock::time_point now);
  void ResendUnacked(Clock::time_point now);
  // CR-29: remember a subtree whose position may have moved; send them all at the end of a poll.
  void MarkApplied(const SubtreeReplica& r, const Position& before);
  void MarkAllApplied();
  void SendApplied();
  bool SendBody(const std::string& body);
  Slot* SlotFor(const std::string& subtree, bool create);
  Slot& AddReplica(const std::string& subtree, const SubtreeReplica* copy = nullptr);
  Result<Unit> Follow(const std::string& subtree, const SubtreeReplica* copy);
  void RemoveReplica(const std::string& subtree);
  // Counts the replica's state and queues it when it needs a sync or waits for its
  // subscription. Called after every call that may change a replica's state.
  void Note(Slot& s);
  void ExtendSubscribeDeadline();
  bool WaitingForSubscriptions() const;
  // Outstanding requests and their deadlines (request_deadlines_) change together.
  void AddOutstanding(uint64_t id, std::string subtree, Clock::time_point deadline);
  void ExtendOutstanding(std::unordered_map<uint64_t, Outstanding>::iterator it,
                         Clock::time_point deadline);
  void EraseOutstanding(std::unordered_map<uint64_t, Outstanding>::iterator it);
  void ClearOutstanding();
  void SetRetry(uint64_t order, Unacked& u, Clock::time_point deadline);
  void EraseUnacked(std::map<uint64_t, Unacked>::iterator it);
  Result<Uuid> SendSet(KvSet m, AckHandler on_ack);

  zmq::context_t& ctx_;
  AgentOptions options_;
  ReplicaObserver* observer_;
  AgentStats stats_;
  LogOnce log_once_;

  std::optional<zmq::socket_t> dealer_;
  std::optional<zmq::socket_t> sub_;
  Link link_ = Link::kIdle;
  size_t endpoint_index_ = 0;
  std::vector<bool> refused_;  // endpoints that answered HELLO with kBadVersion (CR-4)
  std::string server_id_;
  uint64_t next_request_id_ = 1;
  uint64_t hello_request_id_ = 0;
  Clock::time_point link_deadline_{};  // HELLO or silence deadline
  Clock::time_point subscribe_deadline_{};
  bool reported_up_ = false;  // kUp reported and no kDown since (CR-33)

  std::map<std::string, SubtreeReplica, std::less<>> replicas_;  // sorted: iteration order matters
  // Hash index of replicas_ with the agent's bookkeeping; kept in step with replicas_.
  std::unordered_map<std::string, Slot, StringHash, std::equal_to<>> slots_;
  std::array<size_t, 4> state_counts_{};  // replicas per State, as last noted
  size_t queued_bytes_ = 0;               // update queues of all replicas, as last noted
  // Subtrees that need a sync, in the order they came to need it (CR-9); entries are checked
  // when taken, so one that left need-sync meanwhile is skipped.
  std::deque<std::string> need_sync_;
  std::deque<std::string> wait_subscribe_;  // subtrees waiting for their subscription (CR-6)
  std::unordered_map<uint64_t, Outstanding> outstanding_;
  std::set<std::pair<Clock::time_point, uint64_t>> request_deadlines_;  // (deadline, request id)

  bool follow_all_ = false;
  enum class AllState {
    kWaitSubscribe,
    kNeedSync,
    kSyncing,
    kLive
  } all_state_ = AllState::kWaitSubscribe;
  uint64_t all_request_id_ = 0;

  // KVSETs awaiting KVACK keyed by the order first sent (re-sent in that order, so a retried set
  // and delete of one key cannot swap; given up in that order), indexed by UUID, and their retry
  // deadlines in deadline order: a poll touches only the ones due.
  std::map<uint64_t, Unacked> unacked_;
  std::unordered_map<Uuid, uint64_t, UuidHash> unacked_index_;
  std::set<std::pair<Clock::time_point, uint64_t>> retries_;  // (deadline, order)
  uint64_t next_unacked_order_ = 0;
  std::mt19937_64 rng_;
  std::vector<std::string> applied_dirty_;  // subtrees to report (CR-29), may repeat
  KvPub scratch_pub_;                       // ReadPublisher's reused KVPUB
  PositionMsg scratch_position_;            // and POSITION
};

}  // namespace chorus::chp
