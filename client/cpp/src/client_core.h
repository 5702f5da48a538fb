// The session state machine behind chorus::client::Client (docs/protocol/native.md). Owned by
// the thread that polls it, like the Client that wraps it; see client.h for the contract.
//
// States: kClosed -> (Connect) kConnecting -> (connect reply) kConnected. A lost session (dead
// ping, disconnect push with reconnect, connect/subscribe timeout, 101 to a command) closes the
// DEALER and goes back to kConnecting with a backoff; the next session is a new DEALER socket,
// hence a new routing id. A terminal disconnect or Disconnect() goes to kClosed.
//
// Callbacks may re-enter the core (Unsubscribe from on_publication, Disconnect from on_error...):
// state is updated before each callback runs, callbacks are copied (shared_ptr) before they are
// called, and every loop re-checks its subject after a callback.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "chorus/client/client.h"
#include "codec.h"

namespace chorus::client::detail {

using chp::Clock;

class ClientCore {
 public:
  ClientCore(zmq::context_t& ctx, ClientOptions options, ClientHandlers handlers);
  ~ClientCore();

  void Connect(Callback<ConnectResult> cb);
  void Disconnect();
  Result<Unit> Subscribe(std::string channel, SubscribeOptions options,
                         SubscriptionHandlers handlers);
  Result<Unit> Unsubscribe(std::string_view channel, Callback<Unit> cb);
  Result<Unit> Publish(std::string channel, std::string data, Callback<PublishResult> cb);
  Result<Unit> Presence(std::string channel, std::string cursor, uint32_t limit,
                        Callback<PresenceResult> cb);
  Result<Unit> PresenceStats(std::string channel, Callback<PresenceStatsResult> cb);
  Result<Unit> History(std::string channel, HistoryOptions options, Callback<HistoryResult> cb);
  Result<Unit> SyncSubmit(SyncSubmitOptions options, Callback<uint64_t> cb);
  Result<Unit> SyncStatus(uint64_t job, Callback<SyncJob> cb);
  Result<Unit> SyncJobs(Callback<std::vector<SyncJob>> cb);
  Result<Unit> SyncCancel(uint64_t job, Callback<Unit> cb);

  size_t AddPollItems(std::vector<zmq::pollitem_t>& items);
  void HandleEvents(const zmq::pollitem_t* items, Clock::time_point now);
  Clock::time_point NextDeadline() const;

  ClientState state() const { return state_; }
  const std::string& client_id() const { return client_id_; }
  const std::string& endpoint() const { return options_.endpoints[endpoint_index_]; }
  const ConnectResult& connect_result() const { return connect_result_; }
  const Error& last_error() const { return last_error_; }
  bool IsSubscribed(std::string_view channel) const;
  std::optional<StreamPosition> Position(std::string_view channel) const;
  size_t pending() const { return pending_.size(); }
  const ClientStats& stats() const { return stats_; }
  const ClientOptions& options() const { return options_; }

 private:
  // A request's completion: the reply frame, or a local error (timeout, session lost, closed).
  using Done = std::function<void(Result<const ServerFrame*>)>;
  struct Pending {
    Clock::time_point deadline;
    bool sent = false;
    bool user = true;  // counted against max_pending (subscribes are not)
    std::string body;  // kept until sent
    Done done;
  };
  enum class SubState { kPending, kSubscribing, kSubscribed };
  struct Subscription {
    uint64_t id = 0;  // distinguishes a resubscribe after Unsubscribe from the old one
    std::string channel;
    SubscribeOptions options;
    std::shared_ptr<SubscriptionHandlers> handlers;
    SubState state = SubState::kPending;
    uint64_t request_id = 0;
    bool want_recover = false;  // the next subscribe asks for recovery from (epoch, offset)
    bool has_position = false;
    std::string epoch;
    uint64_t offset = 0;                // last delivered offset, or the subscribe result's
    std::vector<Publication> buffered;  // pushed while the subscribe was in flight
  };

  // Registers a user request; `encode` builds the frame for the given id.
  Result<Unit> StartRequest(const std::function<std::string(uint64_t)>& encode, Done done);
  void Post(std::function<void()> fn) { posted_.push_back(std::move(fn)); }

  void StartSession(Clock::time_point now);
  // Ends the current session (or attempt). Reconnects after a backoff when info.reconnect.
  void EndSession(DisconnectInfo info, Clock::time_point now);
  Clock::duration NextBackoff();
  bool Send(const std::string& body);

  void ReadSocket(Clock::time_point now);
  void HandleFrame(std::string_view bytes, Clock::time_point now);
  void HandleReply(ServerFrame& frame, Clock::time_point now);
  void HandlePush(ServerFrame& frame, Clock::time_point now);
  void OnConnectReply(ServerFrame& frame, Clock::time_point now);
  void Timers(Clock::time_point now);
  void ProcessTimeouts(Clock::time_point now);
  void Malformed(const Error& e);

  void SendSubscribe(Subscription& s, Clock::time_point now);
  void OnSubscribeReply(const std::string& channel, uint64_t sub_id, Result<const ServerFrame*> r,
                        Clock::time_point now);
  void ApplySubscribed(Subscription& s, SubscribeResult res);
  void OnPublication(Subscription& s, Publication pub);
  void Deliver(Subscription& s, const Publication& pub);
  Subscription* FindSub(std::string_view channel, uint64_t id);
  void DropSub(std::string_view channel, uint64_t id, uint32_t code, std::string reason);

  zmq::context_t& ctx_;
  ClientOptions options_;
  ClientHandlers handlers_;
  ClientStats stats_;

  ClientState state_ = ClientState::kClosed;
  std::optional<zmq::socket_t> socket_;
  uint64_t generation_ = 0;         // bumped for every socket opened or closed
  uint64_t polled_generation_ = 0;  // generation_ when AddPollItems added the socket, else 0
  size_t endpoint_index_ = 0;
  uint32_t attempts_ = 0;  // failed attempts since the last successful connect
  Clock::time_point reconnect_at_{};
  std::vector<Callback<ConnectResult>> connect_cbs_;
  ConnectResult connect_result_;
  std::string client_id_;
  Error last_error_;

  uint64_t next_id_ = 1;
  uint64_t connect_id_ = 0;
  Clock::time_point connect_deadline_{};
  uint64_t ping_id_ = 0;
  Clock::duration ping_every_{};
  Clock::duration pong_wait_{};
  Clock::time_point next_ping_{};
  Clock::time_point pong_deadline_{};

  std::unordered_map<uint64_t, Pending> pending_;
  size_t user_pending_ = 0;
  std::deque<std::pair<Clock::time_point, uint64_t>> timeouts_;  // creation order = deadline order
  std::deque<uint64_t> unsent_;                                  // ids waiting for a session

  std::map<std::string, Subscription, std::less<>> subs_;
  uint64_t next_sub_id_ = 1;
  std::vector<std::function<void()>> posted_;  // run at the next HandleEvents
  std::mt19937_64 rng_;
};

}  // namespace chorus::client::detail
