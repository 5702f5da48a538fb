// chorus::client::Client: one session with a Chorus node over the native protocol
// (docs/protocol/native.md): one DEALER socket per session, automatic reconnect with
// resubscription and recovery, keepalive pings, and exactly-once delivery of each offset.
//
// Threading: not thread-safe. A Client is owned by the thread that polls it (RunOnce, or
// chp::PollOnce over many clients); every callback runs on that thread, from inside RunOnce /
// HandleEvents. Callbacks may call any method of the client except the *Sync ones and the
// destructor.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "chorus/client/errc.h"
#include "chorus/client/options.h"
#include "chorus/client/types.h"
#include "chp/loop.h"

namespace chorus::client {

namespace detail {
class ClientCore;
}

template <typename T>
using Callback = std::function<void(Result<T>)>;

// Session-level events. All optional.
struct ClientHandlers {
  std::function<void(const ConnectResult&)> on_connected;  // after every successful connect
  std::function<void(const DisconnectInfo&)>
      on_disconnected;                         // a session ended, or the client stopped
  std::function<void(const Error&)> on_error;  // a connect attempt failed (the client retries)
};

// Events of one subscription. All optional.
struct SubscriptionHandlers {
  // Each offset at most once, in order (offset-0 publications, from channels without history,
  // are never filtered).
  std::function<void(const Publication&)> on_publication;
  std::function<void(const ClientInfo&)> on_join;
  std::function<void(const ClientInfo&)> on_leave;
  std::function<void(const ClientInfo&)> on_user_join;
  std::function<void(const ClientInfo&)> on_user_leave;
  // After every successful (re)subscribe. `was_recovering && !recovered` means publications may
  // have been missed: reload state.
  std::function<void(const SubscribeResult&)> on_subscribed;
  // The subscription ended: the node's `unsubscribe` push, or Unsubscribe() (code 0).
  std::function<void(uint32_t code, const std::string& reason)> on_unsubscribed;
  // The node refused the subscribe; the subscription is dropped (Subscribe again to retry).
  std::function<void(const Error&)> on_error;
};

enum class ClientState {
  kClosed,      // not started, Disconnect() called, or a terminal disconnect
  kConnecting,  // connect in flight or waiting to reconnect
  kConnected,
};

struct ClientStats {
  uint64_t connects = 0;      // successful connect replies
  uint64_t sessions = 0;      // DEALER sockets opened
  uint64_t pings = 0;         // pings sent
  uint64_t timeouts = 0;      // requests failed with kTimeout
  uint64_t malformed = 0;     // frames from the node dropped as undecodable
  uint64_t unmatched = 0;     // replies whose id matched no pending request
  uint64_t duplicates = 0;    // publications dropped as already delivered
  uint64_t publications = 0;  // publications delivered
  uint64_t buffer_drops = 0;  // publications dropped: max_buffered reached while subscribing
};

class Client final : public chp::Pollable {
 public:
  // `ctx` must outlive the client. Call Validate(options) first; invalid options are a bug.
  Client(zmq::context_t& ctx, ClientOptions options, ClientHandlers handlers = {});
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- Asynchronous API. A method returning an error does not call its callback; otherwise the
  // callback is called exactly once (a reply, or kTimeout / kConnectionLost / kClosed), unless
  // the client is destroyed first. Requests made while (re)connecting wait for the session.

  // Starts the session (no-op while connecting or connected). `cb` gets the first connect
  // result, or the error that stopped the client (a refused connect, a terminal disconnect).
  void Connect(Callback<ConnectResult> cb = nullptr);
  // Sends `disconnect` and closes the session; pending requests fail with kClosed. No reconnect.
  void Disconnect();

  // Adds a subscription, subscribed now or once connected, and after every reconnect.
  // Errors: 105 when already subscribed here, 106 over max_subscriptions, 107 empty channel.
  Result<Unit> Subscribe(std::string channel, SubscribeOptions options,
                         SubscriptionHandlers handlers);
  // Removes the subscription (on_unsubscribed(0, ...) runs) and tells the node.
  Result<Unit> Unsubscribe(std::string_view channel, Callback<Unit> cb = nullptr);
  // `data` is JSON text, sent as given (the node refuses non-JSON with 107).
  Result<Unit> Publish(std::string channel, std::string data, Callback<PublishResult> cb);
  // One page of presence; cursor "" = first page, limit 0 = the node's default.
  Result<Unit> Presence(std::string channel, std::string cursor, uint32_t limit,
                        Callback<PresenceResult> cb);
  Result<Unit> PresenceStats(std::string channel, Callback<PresenceStatsResult> cb);
  Result<Unit> History(std::string channel, HistoryOptions options, Callback<HistoryResult> cb);
  // The sync scheduler (native.md N-22, N-23): jobs of this session's user only. The node
  // answers 108 when its scheduler is disabled, 103 for an anonymous session.
  Result<Unit> SyncSubmit(SyncSubmitOptions options, Callback<uint64_t> cb);  // -> job id
  Result<Unit> SyncStatus(uint64_t job, Callback<SyncJob> cb);
  Result<Unit> SyncJobs(Callback<std::vector<SyncJob>> cb);  // the user's last jobs, newest first
  Result<Unit> SyncCancel(uint64_t job, Callback<Unit> cb);  // 113 when it already finished

  // --- Blocking conveniences for tools and tests: poll this client until the outcome. Never
  // call them from a callback. ConnectSync stops waiting after `timeout` (the client keeps
  // trying); the others wait at most request_timeout (plus a margin).
  Result<ConnectResult> ConnectSync(std::chrono::milliseconds timeout);
  Result<PublishResult> PublishSync(std::string channel, std::string data);
  Result<PresenceResult> PresenceSync(std::string channel, std::string cursor = "",
                                      uint32_t limit = 0);
  Result<PresenceStatsResult> PresenceStatsSync(std::string channel);
  Result<HistoryResult> HistorySync(std::string channel, HistoryOptions options);
  Result<uint64_t> SyncSubmitSync(SyncSubmitOptions options);
  Result<SyncJob> SyncStatusSync(uint64_t job);
  Result<std::vector<SyncJob>> SyncJobsSync();
  Result<Unit> SyncCancelSync(uint64_t job);

  // --- Polling (chp::Pollable). RunOnce waits at most `max_wait` for socket events or timers.
  void RunOnce(std::chrono::milliseconds max_wait);
  size_t AddPollItems(std::vector<zmq::pollitem_t>& items) override;
  void HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) override;
  chp::Clock::time_point NextDeadline() const override;

  // --- State.
  ClientState state() const;
  bool connected() const { return state() == ClientState::kConnected; }
  const std::string& client_id() const;               // "" until connected
  const std::string& endpoint() const;                // the endpoint of the current or next session
  bool IsSubscribed(std::string_view channel) const;  // subscribe answered on this session
  // The last delivered position of a channel (or the subscribe result's), when known.
  std::optional<StreamPosition> Position(std::string_view channel) const;
  size_t pending() const;  // requests waiting for a reply or for the session
  const ClientStats& stats() const;

 private:
  std::unique_ptr<detail::ClientCore> core_;
};

}  // namespace chorus::client
