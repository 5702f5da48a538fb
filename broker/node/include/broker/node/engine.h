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
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <zmq.hpp>

#include "broker/channels/channel_table.h"
#include "broker/channels/chp_state_sink.h"
#include "broker/config/config.h"
#include "broker/gateway/bridge_codec.h"
#include "broker/node/session_table.h"
#include "broker/node/transport.h"
#include "broker/protocol/auth.h"
#include "broker/protocol/client_protocol.h"
#include "broker/protocol/native_codec.h"
#include "broker/protocol/protocol_encoder.h"
#include "chp/loop.h"
#include "chp/server.h"

namespace chorus::cluster {
struct Partition;
}

namespace chorus::broker::node {

class AddressGuard;       // address_guard.h
class BackupFollower;     // backup.h
struct AckEntry;          // ack_codec.h
struct CommitState;       // commit.h
struct CopyTop;           // channel_records.h
class FanoutClient;       // fanout.h
class Forwarder;          // forwarder.h
class InterestFollower;   // interest.h
class PartitionRoles;     // partition_roles.h
struct ForwardReply;      // peer_codec.h
struct ForwardRequest;    // peer_codec.h
class NativeTransport;    // transports.h
class PresenceLink;       // presence_link.h
struct PresenceAnswer;    // presence_codec.h
struct PresenceQuery;     // presence_codec.h
struct PresenceUpdate;    // presence_codec.h
struct ClusterView;       // cluster_view.h
class WsBridgeTransport;  // transports.h
class SyncService;        // sync_service.h

struct EngineOptions {
  NodeConfig config;
  std::string node_id;
  std::string bridge_endpoint;  // inproc:// ROUTER for the gateway
  TokenKeys token_keys;
  size_t history_max_limit = 1000;  // largest history page (limit < 0 or more)
  size_t max_recovery = 1000;       // more missed publications than this: recovered:false
  size_t closed_memory = 65536;     // N-17: routing ids of closed sessions remembered
  // The ClusterAgent's inproc PAIR that sends applied cluster maps; "" = none (cluster_agent.h).
  std::string cluster_view_endpoint;
  // Forwarded publishes (docs/cluster.md §5, C-6): requests awaiting their primary's reply are
  // bounded in count and bytes; a reply later than the timeout gives the publisher 114. The
  // timeout stays below the gateway's engine timeout (5 s, answered 503).
  size_t forward_max_in_flight = 10'000;
  size_t forward_max_in_flight_bytes = 64ull << 20;
  std::chrono::milliseconds forward_timeout{3000};
  // The cluster-wide server API (docs/cluster.md §13): a member that does not answer a fan-out
  // within this gives the caller 114. Calls in flight are bounded in count and bytes.
  std::chrono::milliseconds fanout_timeout{2000};
  size_t fanout_max_calls = 256;
  size_t fanout_max_in_flight_bytes = 64ull << 20;
  size_t fanout_max_reply_bytes = 16ull << 20;
  // A sequential `/api/batch` starts no command after this much time (those get 114), so that
  // the last one started, given at most max(forward_timeout, fanout_timeout), is answered
  // before the gateway's 5 s engine timeout.
  std::chrono::milliseconds batch_start_budget{1500};
};

struct EngineEndpoints {
  std::string native;
  std::string chp_command;
  std::string chp_publisher;
  std::string bridge;
  std::string peer;  // the data-plane ROUTER (cluster.peer_endpoint, bound)
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
  // Closes every session with kDisconnectShutdown; called before the thread exits.
  void Shutdown();

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) override;
  chp::Clock::time_point NextDeadline() const override;

  const ChannelTable& channels() const { return table_; }
  const EngineCounters& counters() const { return counters_; }

 private:
  // How a subscription is made: by a subscribe command or by the server at connect.
  struct SubscribeMode {
    bool join_leave = false;     // the subscription takes join/leave pushes
    bool asks_recovery = false;  // the client asked for a recoverable subscription
    bool positioned = false;     // the client asked for a positioned one
    bool server_side = false;
  };
  class Api;  // the server API's method -> handler table (engine_api.cc)
  friend class Api;

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
  // False when `channel` is not held yet, would keep state (`keeps_state`), and `s` has used
  // up its Limits::channel_creations_per_second.
  bool ChargeChannelCreation(Session& s, std::string_view channel, bool keeps_state);
  Result<Unit> SubscribeServerSide(Session& s, const std::vector<std::string>& channels,
                                   const ConnectRequest& r, ConnectResult& out);
  Result<Unit> ServerSubscribe(const std::vector<SubscriberId>& targets, const std::string& channel,
                               const SubscribeRecovery& from);
  // A client publish: the checks, then RoutePublish; the reply is sent when it is known.
  Result<Unit> CheckPublish(Session& s, const PublishRequest& r);
  void StartPublish(Session& s, uint64_t cmd_id, const PublishRequest& r);
  Result<PresenceResult> OnPresence(Session& s, const PresenceRequest& r);
  Result<PresenceStats> OnPresenceStats(Session& s, const PresenceStatsRequest& r);
  Result<HistoryResultOut> OnHistory(Session& s, const HistoryRequest& r);
  Result<RefreshResult> OnRefresh(Session& s, const RefreshRequest& r);
  Result<SubRefreshResult> OnSubRefresh(Session& s, const SubRefreshRequest& r);
  std::string OnRpc(Session& s, uint64_t id, const RpcRequest& r);
  static const Encoder& EncoderOf(const Session& s) { return s.transport->encoder(); }

  // Native protocol transport (engine_native.cc).
  void ReadNative();
  void HandleNative(const std::string& routing_id, std::string_view frame);
  void ReplyNative(const std::string& routing_id, const std::string& body);
  // The sync methods of a connected native session (N-22, N-23); false when `frame`'s method
  // is not one of them. engine_native.cc.
  bool HandleNativeSync(Session& s, std::string_view frame);

  // WebSocket sessions through the gateway bridge (engine_ws.cc).
  void HandleWsEvent(const std::string& gateway, const bridge::WsEvent& event);
  // The node's ping to every connected session whose protocol has one, each ping interval.
  void PingSessions(int64_t now_ms);

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
  void CloseSession(SubscriberId id, const CloseCode& c, bool try_push) {
    CloseSession(id, c.code, c.reason, c.reconnect, try_push);
  }
  // Closes after the current batch of work (a session that missed a message: slow or gone).
  // `c` is a named code of codes.h: its reason is static text, kept by reference.
  void CloseLater(SubscriberId id, const CloseCode& c);
  void MissedMessage(SubscriberId id, SendStatus why);
  void RunPendingCloses();
  void Sweep(int64_t now_ms);
  Session* FindSession(SubscriberId id) { return sessions_.Find(id); }
  int64_t NowMs() const;

  // HTTP API and observability through the bridge (engine_api.cc).
  void ReadBridge();
  struct HttpAnswer {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    bool deferred = false;  // answered later through HttpLater (not sent now)
  };
  void AnswerBridge(const zmq::message_t& routing_id, const bridge::HttpRequest& request);
  // A deferred answer: the handler (a forwarded publish) calls `later` once with the answer.
  using HttpLater = std::function<void(const HttpAnswer&)>;
  HttpAnswer HandleApi(std::string_view method, std::string_view body, const HttpLater* later);
  void SendBridgeReply(const std::string& routing_id, uint64_t request_id, const HttpAnswer& a);
  HttpAnswer Health() const;
  HttpAnswer Metrics() const;
  // Publishes the sync scheduler's due progress events on their `sync:<user>` channels.
  void SyncTick();
  // The sync scheduler in the cluster (engine_sync.cc): a call served by the primary of
  // `sync:<user>` (forwarded there, kinds 50/51; `session_user` "" for the server API, else a
  // native session's user); `done` runs once, maybe before this returns. `member` != 0: retry
  // against that member (named by the last answerer).
  using SyncDone = std::function<void(int status, const nlohmann::json& body)>;
  void RouteSync(const std::string& method, nlohmann::json params, const std::string& session_user,
                 SyncDone done, int attempt = 0, uint64_t member = 0);
  std::optional<std::string> ServeSyncCall(std::string_view bytes);
  // Promotion (engine_failover.cc): the `s.<user>` copies of `partition` held as a backup
  // become this node's, and their jobs join its scheduler.
  void AdoptSyncUsers(uint32_t partition, uint64_t partition_epoch);

  // The cluster map from the ClusterAgent (engine_cluster.cc).
  void ReadClusterView();

  // The cluster-wide server API (engine_fanout.cc; docs/cluster.md §13, §16.3): `info`,
  // `channels`, `disconnect`, `unsubscribe`, `subscribe`, `send`, `refresh` run here and on
  // every other member the applied map does not list as dead; the parts are merged. Answered
  // through `later` when other members are asked.
  class ClusterApi;
  friend class ClusterApi;
  HttpAnswer FanoutApi(std::string_view method, const nlohmann::json& params,
                       const HttpLater* later);
  // A fan-out request from another member (peer kinds 40-49): the reply's bytes, or nullopt
  // (dropped) when malformed.
  std::optional<std::string> ServeFanout(std::string_view bytes);

  // The data plane (engine_forward.cc): where a channel's publishes go (C-6, C-7).
  struct PublishJob {
    std::string channel;
    std::string data;
    std::optional<std::string> info;
    std::map<std::string, std::string> tags;
    bool skip_history = false;
  };
  using PublishDone = std::function<void(Result<PublishResult>)>;
  struct Route {
    bool local = true;  // this node publishes (primary, alone, or no placement yet)
    uint64_t member = 0;
    std::string endpoint;
    uint32_t partition = 0;
    uint64_t epoch = 0;
    bool unreachable = false;  // another member is primary but its endpoint is unknown
  };
  Route RouteOf(std::string_view channel) const;
  // Publishes locally when this node is the channel's primary (or the map does not place it
  // yet), else forwards to the primary; `done` runs once, maybe before this returns.
  void RoutePublish(PublishJob job, const PresenceEntry* publisher, PublishDone done);
  void ForwardPublish(const Route& route, PublishJob job, PublishDone done, int attempt);
  // Answers a forwarded publish through `answer`, once, after its commit (C-9) or at once.
  void ServeForward(const ForwardRequest& r, std::function<void(const ForwardReply&)> answer);
  // Interest routing (engine_interest.cc, C-16): a channel whose local subscribers changed, or
  // every channel after a new map, is re-examined before the next poll (never from inside one:
  // following and unfollowing change the agents being polled).
  void UpdateInterest(std::string_view channel) { interest_dirty_.emplace(channel); }
  void RefreshInterests();
  void ApplyInterests();
  void OnRemoteReset(const std::string& channel, const CopyTop& top, std::vector<Publication> pubs);
  void OnRemoteTop(const std::string& channel, const CopyTop& top);
  void OnRemotePublication(const std::string& channel, Publication pub);
  // A copied line this node must not continue (it became primary): a new epoch, subscribers
  // closed with 3010 so they recover (recovered: false).
  void LoseRemoteLine(const std::string& channel);
  // `channel`'s local history now holds a line copied from another primary (engine_failover.cc).
  void MarkRemoteLine(const std::string& channel);
  // Failover (engine_failover.cc, docs/cluster.md §16 "Failover (as built)"): what an applied map
  // changed in this node's partition roles. Promoted (lineage kept): each channel whose copy is
  // here continues its line (CHP Adopt, same channel epoch, next offset). Lost (C-15): the subtrees
  // dropped, the channels now copies of the new primary's line.
  void ApplyPartitionRoles();
  void ContinueCopiedLine(const std::string& channel, uint64_t partition_epoch);
  void LeaveLine(const std::string& channel);
  // C-17: a client subscribe to a channel of another primary whose copy here is not live yet
  // waits (bounded) and is then handled against the live copy. True when parked.
  struct ParkedSubscribe {
    SubscriberId session = 0;
    ClientCommand cmd;
    chp::Clock::time_point deadline;
  };
  bool ParkSubscribe(Session& s, const ClientCommand& cmd, const SubscribeRequest& r);
  void RunParked();

  // The commit path of a primary (engine_commit.cc, docs/cluster.md C-8..C-11, C-14).
  void PublishLocal(PublishJob job, const PresenceEntry* publisher, PublishDone done,
                    const Route& route);
  bool WaitsForQuorum(const cluster::Partition& p) const;
  std::vector<uint64_t> CommitQuorum(const cluster::Partition& p) const;
  void TryCommit(std::string channel);
  void FillTopExtras(std::string_view channel, TopExtras& x) const;
  void OnPeerMessage(std::string_view body);
  void OnCommitMap();
  void CommitTick();
  void SendReplicaReports(chp::Clock::time_point now);
  // C-19 (engine_handoff.cc): the partitions this node is primary of whose pending handoff can
  // complete (the target in in_sync).
  std::vector<uint32_t> HandoffsReady() const;
  std::chrono::milliseconds ReplicaLag() const;
  std::string CommitMetricsText() const;
  // Commit leases (engine_lease.cc, C-25): required once the map has other members.
  bool LeaseRequired() const;
  bool HoldsLease() const;
  bool OnLeaseMessage(std::string_view frame);  // false: not a lease message
  std::string LeaseMetricsText() const;
  // Backups and copies (engine_backup.cc, C-8, C-9, C-13, C-16).
  enum class BackupCheck { kNotMine, kRefused, kAccepted };
  bool BacksUp(uint32_t partition) const;
  bool CopyLive(const std::string& channel) const;
  // CopyLive and, for a recovering subscribe, the copy holds the epoch it names.
  bool CopyReady(const SubscribeRequest& r);
  void RefreshBackups();
  BackupCheck CheckBackup(uint64_t member, const std::string& channel, uint64_t partition_epoch,
                          AckEntry& ack);
  Channel* CopyChannel(const std::string& channel);
  void AckCopy(uint64_t member, AckEntry ack, const Channel& ch);
  void OnBackupReset(uint64_t member, const CopyTop& top, std::vector<Publication> pubs);
  void OnBackupTop(uint64_t member, const CopyTop& top);
  void MaintainBackups();   // C-24 drop at a new incarnation, re-syncs asked for (outside polls)
  void DropBackupCopies();  // C-24
  void OnBackupPublication(uint64_t member, const std::string& channel, Publication pub);
  void FlushAcks(bool heartbeat);
  void ApplyCopyReset(Channel& ch, const CopyTop& t, std::vector<Publication> pubs);
  void ApplyCopyTop(Channel& ch, const CopyTop& t);
  void ApplyCopyPublication(Channel& ch, Publication pub);
  void DeliverCopy(Channel& ch, uint64_t committed);
  uint64_t ReadLimit(const Channel& ch) const;  // C-9 for reads: the commit position
  // Publications kept in no history across nodes (engine_ephemeral.cc, C-12).
  void MirrorEphemeral(std::string_view channel, const Publication& pub);
  void DeliverEphemeral(const std::string& channel, const Publication& pub);
  void OnRemoteEphemeral(const std::string& channel, Publication pub);
  void OnBackupEphemeral(uint64_t member, const std::string& channel, Publication pub);
  // Cluster-wide presence (engine_presence.cc; docs/cluster.md §10, C-21..C-23). A channel's
  // presence lives on its primary: a local client's join or leave is applied here when this
  // node is the primary (the events returned, to push), else sent to the primary (nothing to
  // push now: the change comes back through the followed copy).
  std::vector<PresenceEvent> PresenceJoin(Session& s, Channel& ch, const std::string& chan_info);
  std::vector<PresenceEvent> PresenceLeave(Session& s, Channel& ch);
  PresenceEntry LocalEntry(const Session& s, const std::string& chan_info) const;
  bool ServePeerMessage(std::string_view body, std::string* reply);
  void OnPeerAnswer(std::string_view body);
  void ServePresenceUpdate(const PresenceUpdate& u);
  // C-23 repair: drops `member`'s entries in `partition`'s channels that `held` does not list.
  void DropUnheldPresence(uint64_t member, uint32_t partition,
                          const std::set<std::pair<std::string, std::string>>& held);
  PresenceAnswer ServePresenceQuery(const PresenceQuery& q);
  // After each newly applied map: C-22 (entries of dead or restarted members dropped by the
  // primaries, one leave each), C-23 (local presence re-asserted where the primary changed).
  void OnPresenceMap();
  void OnRemotePresenceReset(const std::string& channel, std::vector<PresenceEntry> entries);
  void SeedPresenceFromBackup(const std::string& channel);
  void OnRemotePresence(const std::string& channel, const std::string& client,
                        const PresenceEntry* entry);
  // The channel's presence is answered from this node's table: it is the primary (or alone),
  // or follows a live copy, or cannot reach the primary.
  bool PresenceHere(const std::string& channel) const;
  using PresenceAnswered = std::function<void(const PresenceAnswer* answer)>;  // null: failed
  // Asks the primary; false when it cannot be asked (`done` not called).
  bool AskPresence(const std::string& channel, uint32_t mode, std::string cursor, uint32_t limit,
                   PresenceAnswered done);
  // Client presence / presence_stats for a channel of another primary (no live copy here):
  // answered when the primary's answer arrives. False: answered by the normal path.
  bool AskPresenceFor(Session& s, uint64_t cmd_id, const std::string& channel, bool stats,
                      const std::string& cursor, uint32_t limit);
  // The same for the rpc extras chorus.presence_page and chorus.presence_users.
  bool AskPresenceRpc(Session& s, uint64_t cmd_id, const RpcRequest& r);

  zmq::context_t& ctx_;
  EngineOptions options_;
  // Per-address connection bounds of the native and CHP listeners (ZAP); null when none is set.
  // Declared before the sockets it watches, so it is destroyed after them.
  std::unique_ptr<AddressGuard> guard_;
  NamespaceRegistry registry_;
  std::unique_ptr<chp::Server> chp_;
  std::unique_ptr<ChpStateSink> sink_;
  ChannelTable table_;
  zmq::socket_t native_;
  zmq::socket_t bridge_;
  std::string native_endpoint_;
  std::string peer_endpoint_;
  EngineCounters counters_;
  std::mt19937_64 rng_;
  chp::Clock::time_point started_;
  chp::Clock::time_point next_sweep_{};

  std::unique_ptr<NativeTransport> native_transport_;
  std::unique_ptr<WsBridgeTransport> ws_transport_;
  SessionTable sessions_;
  std::vector<std::pair<SubscriberId, CloseCode>> pending_closes_;

  zmq::socket_t cluster_view_;                  // PAIR, connected to the ClusterAgent
  std::unique_ptr<ClusterView> cluster_;        // the latest applied map (never null)
  std::unique_ptr<Forwarder> forwarder_;        // the data-plane ROUTER and DEALERs (never null)
  std::unique_ptr<FanoutClient> fanout_;        // the cluster-wide API's DEALERs (never null)
  std::unique_ptr<InterestFollower> interest_;  // channels followed on other primaries
  std::unique_ptr<PartitionRoles> roles_;       // this node's role per partition, last map
  std::unique_ptr<BackupFollower> backup_;      // the primaries this node backs up
  std::unique_ptr<CommitState> commit_;         // uncommitted publications, acks (commit.h)
  std::unique_ptr<PresenceLink> presence_;      // presence to and from other nodes (never null)
  std::vector<uint64_t> presence_primaries_;    // by partition: the primary last acted on
  uint64_t presence_entries_ = UINT64_MAX;      // the map's applied() count last acted on
  // Followed channels whose copy of the presence took its first snapshot (engine_presence.cc).
  std::set<std::string, std::less<>> presence_synced_;
  std::set<std::string, std::less<>> interest_dirty_;
  std::set<std::string, std::less<>> remote_lines_;  // channels whose copy holds a primary's line
  std::list<ParkedSubscribe> parked_;                // C-17, in arrival order
  std::map<std::string, size_t, std::less<>> parked_channels_;  // channel -> parked subscribes
  uint64_t view_entries_ = UINT64_MAX;  // the map's applied() count last acted on
  uint64_t remote_delivered_ = 0;       // publications from other primaries delivered here
  uint64_t ephemeral_mirrored_ = 0;     // publications without history written for followers
  uint64_t remote_gaps_ = 0;            // of them, applied after a gap in offsets
  uint64_t lines_continued_ = 0;        // copied lines continued here after a promotion
  uint64_t lines_lost_ = 0;             // copied lines this node became primary of, not kept
  uint64_t lines_left_ = 0;             // own lines given up when another member became primary
  // The sync scheduler when [scheduler] enabled (its runner's threads own the scheduler state).
  std::unique_ptr<SyncService> sync_;
  std::unique_ptr<FanoutClient> sync_calls_;  // sync calls forwarded to primaries (never null)
  uint64_t sync_calls_forwarded_ = 0, sync_calls_retried_ = 0;
  uint64_t sync_adoptions_ = 0, sync_adoptions_failed_ = 0;
  chp::Clock::time_point next_sync_tick_ = chp::Clock::time_point::max();
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
  // C-20: asks the engine thread to close every client session with 3001 "shutdown" (reconnect
  // advice) while the node keeps running; ClientsDisconnected() turns true once it did.
  void DisconnectClients() { disconnect_.store(true); }
  bool ClientsDisconnected() const { return disconnected_.load(); }
  void Stop();

 private:
  EngineThread() = default;
  std::atomic<bool> stop_{false};
  std::atomic<bool> disconnect_{false};
  std::atomic<bool> disconnected_{false};
  std::thread thread_;
  EngineEndpoints endpoints_;
};

}  // namespace chorus::broker::node
