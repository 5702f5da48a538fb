// The CHP server (docs/protocol/chp.md, "Server behaviour"): owns the Store, a ROUTER command
// socket (HELLO, ICANHAZ, KVSET) and an XPUB publisher (KVPUB, POSITION, HUGZ).
// Not thread-safe: every method runs on the owner thread, the one that polls it. ServerThread
// runs one on a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "chp/errc.h"
#include "chp/log.h"
#include "chp/loop.h"
#include "chp/store.h"
#include "chp/types.h"

namespace chorus::chp {

struct ServerOptions {
  std::string command_endpoint = "tcp://127.0.0.1:0";    // ROUTER; port 0 picks a free port
  std::string publisher_endpoint = "tcp://127.0.0.1:0";  // XPUB
  std::string server_id;                                 // default: random
  std::chrono::milliseconds heartbeat_interval{500};
  size_t max_value_bytes = kDefaultMaxValueBytes;
  // CS-26: every subtree held when a sweep starts is announced within the sweep's period,
  // max(sweep_period, n / max_sweep_rate) for n subtrees (so at least once in any window of two
  // periods), at least positions_per_sweep per heartbeat tick. max_sweep_rate bounds the
  // sweep's POSITIONs per second (0: no bound), so its cost does not grow past ~25,000
  // subtrees: a sync of n subtrees, which lasts in proportion to n, then does not pay n^2.
  std::chrono::milliseconds sweep_period{1000};
  size_t positions_per_sweep = 256;
  size_t max_sweep_rate = 25'000;
  size_t max_positions_per_tick = 10'000;
  // CS-10: accepted KVSET UUIDs are remembered for dedup_window_ms, and at most dedup_window of
  // them (past it the oldest go early, counted in dedup_evicted_early).
  std::chrono::milliseconds dedup_window_ms{10'000};
  size_t dedup_window = 1'048'576;
  // Reply flow control (CS-22): a peer's replies go to its ROUTER pipe until reply_pipe_hwm
  // messages wait there, then to a byte-counted queue. A reply that begins while the peer has
  // more than max_peer_pending_bytes queued is dropped whole; a reply that would take all peers'
  // queues past max_pending_bytes drops that peer's queue and the rest of the reply.
  size_t max_pending_bytes = size_t{1} << 30;        // queued reply bytes, all peers together
  size_t max_peer_pending_bytes = size_t{32} << 20;  // queued bytes that refuse a peer's next reply
  int reply_pipe_hwm = 32;                           // ROUTER SNDHWM (messages per peer pipe)
  size_t snapshot_batch_records = 512;
  size_t snapshot_batch_bytes = 256 * 1024;
  // XPUB SNDHWM in messages; 0 turns off every publisher bound (benchmarks), also CS-35's.
  int publisher_hwm = 100'000;
  // CS-35: what one subscriber's XPUB pipe may hold, in bytes: the SNDHWM is at most this over
  // the largest message (max_value_bytes + 1,088). 0: no byte bound.
  size_t publisher_max_bytes = size_t{4} << 30;
  // CS-34: a `*` reply goes on while its peer has at most this many reply bytes queued, and at
  // most this many bytes of it are sent per poll (plus one subtree's reply).
  size_t stream_chunk_bytes = size_t{1} << 20;
  int command_hwm = 1'000;  // ROUTER RCVHWM (commands per peer pipe waiting to be read)
  // ZMQ_MAXMSGSIZE of the command socket (CS-1): a peer sending a larger frame is disconnected
  // by libzmq before the frame is buffered. Above the frame limit (CW-8), so a body just over
  // it is still received and counted as malformed.
  int64_t max_command_bytes = static_cast<int64_t>(kMaxFrameBytes) + 64 * 1024;
  size_t max_applied = 1'000'000;    // (replica, subtree) applied positions recorded (CS-27)
  size_t removal_announcements = 8;  // heartbeat ticks a dropped subtree is announced (CS-28)
  StoreOptions store;
  // Called on the creating thread for the command ROUTER ("command") and the XPUB
  // ("publisher") after the options above are set and before they bind, e.g. to give them a ZAP
  // domain or a socket monitor (the broker's per-address bound). May throw zmq::error_t (then
  // Create fails as for a bind error).
  std::function<void(zmq::socket_t&, std::string_view role)> before_bind;
};

struct ServerStats {
  uint64_t changes = 0;  // sequenced changes (sets, deletes, expiries)
  uint64_t expiries = 0;
  uint64_t kvsets = 0;               // KVSET commands received
  uint64_t kvset_rejected = 0;       // answered with a non-zero status
  uint64_t duplicates = 0;           // KVSETs answered from the UUID window
  uint64_t conflicts = 0;            // conditional KVSETs refused (CS-32)
  uint64_t dedup_evicted_early = 0;  // UUIDs evicted by the count cap before their time
  uint64_t snapshots = 0;            // full snapshots served (per subtree)
  uint64_t resumes = 0;              // resume streams served
  uint64_t malformed = 0;            // frames dropped as undecodable
  uint64_t unknown = 0;              // frames with an unknown command code
  uint64_t dropped_replies = 0;      // peers whose queued replies were discarded (gone or over cap)
  uint64_t published = 0;            // messages handed to the publisher
  uint64_t applied = 0;              // positions recorded from APPLIED (CS-27)
  uint64_t applied_ignored = 0;   // APPLIED frames or positions ignored (bad name, subtree, bound)
  uint64_t dropped_subtrees = 0;  // subtrees dropped (CS-28)
  uint64_t streams = 0;           // `*` replies begun (CS-34)
  uint64_t streams_ended = 0;     // `*` replies ended early (dropped, peer gone, replaced)
  size_t pending_bytes = 0;       // reply bytes queued behind a full ROUTER pipe now
  size_t pending_peak = 0;
  size_t pending_peers = 0;         // peers with queued replies now
  size_t peer_pending_peak = 0;     // the most reply bytes one peer had queued
  uint64_t dropped_over_peer = 0;   // queues dropped for max_peer_pending_bytes
  uint64_t dropped_over_total = 0;  // queues dropped for max_pending_bytes
};

class Server final : public Pollable {
 public:
  using Observer = std::function<void(const Change&)>;
  // Called for every applied position recorded from APPLIED (CS-27), on the owner thread.
  using AppliedObserver =
      std::function<void(std::string_view replica, std::string_view subtree, const Position&)>;

  // Binds both sockets. Errors (bad endpoint, address in use) are returned, with the zmq
  // message logged.
  static Result<std::unique_ptr<Server>> Create(zmq::context_t& ctx, ServerOptions options);
  ~Server() override;

  const std::string& command_endpoint() const { return command_endpoint_; }
  const std::string& publisher_endpoint() const { return publisher_endpoint_; }
  const std::string& server_id() const { return options_.server_id; }

  // Local writes by the owner thread (no UUID window, value trusted to be msgpack).
  Result<Position> Set(std::string_view key, std::string_view value, uint64_t ttl_ms = 0);
  // Set without the position: returns the change's seq only, so the hot path copies no epoch
  // string (the broker's state mirror and chp_bench use it).
  Result<uint64_t> Put(std::string_view key, std::string_view value, uint64_t ttl_ms = 0);
  Result<Position> Erase(std::string_view key);
  // Called for every sequenced change, after it is published.
  void set_observer(Observer obs) { observer_ = std::move(obs); }
  void set_applied_observer(AppliedObserver obs) { applied_observer_ = std::move(obs); }

  // The position `replica` last reported for `subtree` with APPLIED (CS-27), if any.
  std::optional<Position> AppliedPosition(std::string_view replica, std::string_view subtree) const;
  // Forgets every position recorded for `replica` (a replica that left the cluster).
  void ForgetReplica(std::string_view replica);
  // Drops a subtree (CS-28): entries, backlog, applied positions; announced as unborn at once and
  // on the next removal_announcements heartbeat ticks. False when it is not held.
  bool Drop(std::string_view subtree);
  // CS-29: a promoted backup takes a subtree it does not hold from its replica copy: epoch and
  // seq of `at`, continuing `prev_term` (the copy's term) under `term` (> prev_term, e.g. the
  // partition epoch). `entries` are snapshot records (remaining TTLs). Replicas on the old line
  // resume (CS-30). Errors: kBadKey, kBusy (held), kMalformed (term), kFull.
  // `window` is the UUID window the backup received with the subtree (CS-31): a retry of one of
  // those updates is answered from it and not applied again.
  Result<Position> Adopt(std::string_view subtree, const Position& at, uint64_t prev_term,
                         uint64_t term, const std::vector<Record>& entries,
                         const std::vector<WindowEntry>& window = {});
  // The same from a replica's copy (SubtreeReplica::Copy: position, term, entries, window;
  // CR-35): Adopt(subtree, copy.position, copy.term, term, copy.entries, copy.window).
  Result<Position> Adopt(std::string_view subtree, const SubtreeCopy& copy, uint64_t term) {
    return Adopt(subtree, copy.position, copy.term, term, copy.entries, copy.window);
  }

  // Polls this server alone for up to `max_wait`.
  void RunOnce(std::chrono::milliseconds max_wait) { PollOnce({this}, max_wait); }

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) override;
  Clock::time_point NextDeadline() const override;

  const Store& store() const { return store_; }
  const ServerStats& stats() const { return stats_; }
  // The XPUB SNDHWM set from publisher_hwm and publisher_max_bytes (CS-35).
  int publisher_hwm() const;
  // `*` replies under way (CS-34).
  size_t active_streams() const { return streams_.size(); }
  // Reply messages queued behind full ROUTER pipes now, all peers (O(peers); for metrics).
  size_t pending_messages() const {
    size_t n = 0;
    for (const auto& [peer, q] : pending_) n += q.frames.size();
    return n;
  }

 private:
  struct Outgoing {
    std::vector<std::string> envelope;  // routing frames, identity first
    std::string body;
  };
  struct PeerQueue {
    std::deque<Outgoing> frames;
    size_t bytes = 0;
    bool discarding = false;  // over the cap: the rest of the current reply is dropped
  };
  enum class SendResult { kSent, kAgain, kGone };

  Server(zmq::context_t& ctx, ServerOptions options);
  void ReadCommands();
  void ReadSubscriptions();
  void HandleCommand(std::vector<std::string>&& envelope, std::string_view body);
  void HandleKvSet(const std::vector<std::string>& envelope, KvSet&& m);
  void HandleIcanhaz(const std::vector<std::string>& envelope, const Icanhaz& m);
  void HandleApplied(Applied&& m);
  void ServeSubtree(const std::vector<std::string>& envelope, uint64_t request_id,
                    const std::string& name, const Subtree* st, const Position& from,
                    uint64_t from_term);
  void Reply(const std::vector<std::string>& envelope, std::string body);
  // CS-34: `*` replies, streamed subtree by subtree (server_stream.cc).
  void StartStream(const std::vector<std::string>& envelope, uint64_t request_id);
  void AdvanceStreams();
  bool StreamRunnable() const;
  size_t QueuedFor(const std::string& peer) const;
  SendResult TrySend(const Outgoing& out);
  void FlushPending();
  void Publish(std::string_view topic, std::string_view body);
  // `full_key`: the change's `subtree/key` when the caller has it (the topic), else empty.
  void PublishChange(const Change& c, std::string_view full_key = {});
  void PublishPosition(std::string_view subtree);
  void Heartbeat(Clock::time_point now);
  void ExpireDue(Clock::time_point now);
  // Applies and publishes a change; returns its seq (the current one when nothing changed, 0
  // for an unborn subtree) and, when `pos` is given, the position as applied.
  Result<uint64_t> ApplyChecked(std::string_view key, Op op, std::string_view value,
                                uint64_t ttl_ms, const Uuid& uuid = {}, Position* pos = nullptr);
  // CS-32: the key's seq when it differs from `expected` (0: absent), else nothing.
  std::optional<uint64_t> Conflict(std::string_view key, uint64_t expected) const;

  ServerOptions options_;
  zmq::socket_t router_;
  zmq::socket_t xpub_;
  std::string command_endpoint_;
  std::string publisher_endpoint_;
  Store store_;
  Observer observer_;
  ServerStats stats_;
  LogOnce log_once_;

  std::unordered_map<std::string, PeerQueue> pending_;
  bool reply_begins_ = false;   // the next Reply starts a new reply
  bool reply_dropped_ = false;  // the reply under way is dropped (peer over its bound)
  bool reply_gone_ = false;     // a reply frame found its peer gone (EHOSTUNREACH)
  size_t reply_bytes_ = 0;      // body bytes handed to Reply (counts what a stream sent)
  struct Stream {
    std::vector<std::string> envelope;
    uint64_t request_id = 0;
    std::vector<std::string> names;  // the subtrees held when the request was handled
    size_t next = 0;
    uint64_t sent = 0;  // KTHXBAIs sent
  };
  std::unordered_map<std::string, Stream> streams_;  // by peer identity: one per peer
  Clock::time_point pollout_backoff_until_{};

  struct UuidHash {
    size_t operator()(const Uuid& u) const noexcept;
  };
  std::unordered_map<Uuid, KvAck, UuidHash> acks_;
  struct AckSlot {
    Uuid uuid;
    int64_t at_ms;        // when it was answered (monotonic ms)
    std::string subtree;  // empty: no subtree (a delete in an unborn subtree)
  };
  std::deque<AckSlot> ack_order_;  // accepted UUIDs, oldest first
  // CS-31: each subtree's accepted updates (a subsequence of ack_order_), for snapshots.
  struct WindowSlot {
    Uuid uuid;
    uint64_t seq;
    int64_t at_ms;
  };
  std::unordered_map<std::string, std::deque<WindowSlot>, StringHash, std::equal_to<>> windows_;
  void Remember(const KvAck& ack, std::string_view subtree, int64_t at_ms);
  void PopOldestAck();
  void EvictAcks(int64_t now_ms);
  std::vector<WindowEntry> WindowOf(std::string_view subtree, int64_t now_ms) const;

  AppliedObserver applied_observer_;
  // subtree -> replica -> last reported position (CS-27)
  std::unordered_map<std::string, std::unordered_map<std::string, Position>> applied_;
  size_t applied_pairs_ = 0;
  std::unordered_map<std::string, size_t> removed_;  // dropped subtree -> announcements left

  std::vector<std::string> changed_names_;  // a tick's changed subtrees (Store::TakeChanged)
  std::string pub_body_;                    // KVPUB encode buffer, reused
  std::string pub_topic_;                   // KVPUB topic of an expiry, reused
  std::string pos_topic_;                   // POSITION topic and body, reused
  std::string pos_body_;
  std::vector<std::string> sweep_;
  size_t sweep_pos_ = 0;
  Clock::time_point next_heartbeat_{};
};

// Runs a Server on a thread of its own, with its own zmq context.
class ServerThread {
 public:
  static Result<std::unique_ptr<ServerThread>> Start(ServerOptions options);
  ~ServerThread();
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;

  const std::string& command_endpoint() const { return command_endpoint_; }
  const std::string& publisher_endpoint() const { return publisher_endpoint_; }
  const std::string& server_id() const { return server_id_; }
  void Stop();

 private:
  ServerThread() = default;
  zmq::context_t ctx_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::string command_endpoint_;
  std::string publisher_endpoint_;
  std::string server_id_;
};

}  // namespace chorus::chp
