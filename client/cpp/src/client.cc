// chorus::client::Client: forwards to detail::ClientCore; the blocking conveniences live here.
#include "chorus/client/client.h"

#include <algorithm>

#include "client_core.h"

namespace chorus::client {
namespace {

using chp::Clock;
using std::chrono::milliseconds;

// Polls `c` until the callback handed to `start` ran, or `limit` passed. The result slot is
// shared with the callback, so a reply arriving after we gave up writes to live memory.
template <typename T, typename Start>
Result<T> Await(Client& c, milliseconds limit, Start start) {
  auto out = std::make_shared<std::optional<Result<T>>>();
  Result<Unit> started = start([out](Result<T> r) { out->emplace(std::move(r)); });
  if (!started) return started.error();
  const auto deadline = Clock::now() + limit;
  while (!out->has_value()) {
    const auto now = Clock::now();
    if (now >= deadline) return Error(Errc::kTimeout, "no outcome within the wait");
    c.RunOnce(std::min(milliseconds(100),
                       std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1)));
  }
  return std::move(**out);
}

}  // namespace

Result<Unit> Validate(const ClientOptions& o) {
  auto bad = [](std::string what) { return Error(Errc::kBadRequest, std::move(what)); };
  if (o.endpoints.empty()) return bad("endpoints: at least one is needed");
  for (const auto& e : o.endpoints) {
    if (e.empty()) return bad("endpoints: empty endpoint");
  }
  if (o.request_timeout.count() <= 0) return bad("request_timeout: must be > 0");
  if (o.ping_interval && o.ping_interval->count() < 0) return bad("ping_interval: must be >= 0");
  if (o.pong_timeout && o.pong_timeout->count() <= 0) return bad("pong_timeout: must be > 0");
  if (o.reconnect_min.count() <= 0) return bad("reconnect_min: must be > 0");
  if (o.reconnect_max < o.reconnect_min) return bad("reconnect_max: must be >= reconnect_min");
  if (!(o.reconnect_jitter >= 0.0 && o.reconnect_jitter <= 1.0)) {
    return bad("reconnect_jitter: must be in [0, 1]");
  }
  if (o.max_pending == 0) return bad("max_pending: must be > 0");
  if (o.max_subscriptions == 0) return bad("max_subscriptions: must be > 0");
  if (o.max_reads_per_poll == 0) return bad("max_reads_per_poll: must be > 0");
  if (o.sndhwm < 0 || o.rcvhwm < 0) return bad("sndhwm/rcvhwm: must be >= 0");
  return Unit{};
}

Client::Client(zmq::context_t& ctx, ClientOptions options, ClientHandlers handlers)
    : core_(std::make_unique<detail::ClientCore>(ctx, std::move(options), std::move(handlers))) {}

Client::~Client() = default;

void Client::Connect(Callback<ConnectResult> cb) {
  core_->Connect(std::move(cb));
}
void Client::Disconnect() {
  core_->Disconnect();
}

Result<Unit> Client::Subscribe(std::string channel, SubscribeOptions options,
                               SubscriptionHandlers handlers) {
  return core_->Subscribe(std::move(channel), std::move(options), std::move(handlers));
}
Result<Unit> Client::Unsubscribe(std::string_view channel, Callback<Unit> cb) {
  return core_->Unsubscribe(channel, std::move(cb));
}
Result<Unit> Client::Publish(std::string channel, std::string data, Callback<PublishResult> cb) {
  return core_->Publish(std::move(channel), std::move(data), std::move(cb));
}
Result<Unit> Client::Presence(std::string channel, std::string cursor, uint32_t limit,
                              Callback<PresenceResult> cb) {
  return core_->Presence(std::move(channel), std::move(cursor), limit, std::move(cb));
}
Result<Unit> Client::PresenceStats(std::string channel, Callback<PresenceStatsResult> cb) {
  return core_->PresenceStats(std::move(channel), std::move(cb));
}
Result<Unit> Client::History(std::string channel, HistoryOptions options,
                             Callback<HistoryResult> cb) {
  return core_->History(std::move(channel), std::move(options), std::move(cb));
}

Result<Unit> Client::SyncSubmit(SyncSubmitOptions options, Callback<uint64_t> cb) {
  return core_->SyncSubmit(std::move(options), std::move(cb));
}
Result<Unit> Client::SyncStatus(uint64_t job, Callback<SyncJob> cb) {
  return core_->SyncStatus(job, std::move(cb));
}
Result<Unit> Client::SyncJobs(Callback<std::vector<SyncJob>> cb) {
  return core_->SyncJobs(std::move(cb));
}
Result<Unit> Client::SyncCancel(uint64_t job, Callback<Unit> cb) {
  return core_->SyncCancel(job, std::move(cb));
}

Result<ConnectResult> Client::ConnectSync(milliseconds timeout) {
  core_->Connect(nullptr);
  const auto deadline = Clock::now() + timeout;
  while (core_->state() == ClientState::kConnecting) {
    const auto now = Clock::now();
    if (now >= deadline) return Error(Errc::kTimeout, "not connected within the wait");
    RunOnce(std::min(milliseconds(100),
                     std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1)));
  }
  if (core_->state() == ClientState::kConnected) return core_->connect_result();
  return core_->last_error();
}

Result<PublishResult> Client::PublishSync(std::string channel, std::string data) {
  return Await<PublishResult>(*this, core_->options().request_timeout + milliseconds(1000),
                              [&](Callback<PublishResult> cb) {
                                return Publish(std::move(channel), std::move(data), std::move(cb));
                              });
}

Result<PresenceResult> Client::PresenceSync(std::string channel, std::string cursor,
                                            uint32_t limit) {
  return Await<PresenceResult>(*this, core_->options().request_timeout + milliseconds(1000),
                               [&](Callback<PresenceResult> cb) {
                                 return Presence(std::move(channel), std::move(cursor), limit,
                                                 std::move(cb));
                               });
}

Result<PresenceStatsResult> Client::PresenceStatsSync(std::string channel) {
  return Await<PresenceStatsResult>(*this, core_->options().request_timeout + milliseconds(1000),
                                    [&](Callback<PresenceStatsResult> cb) {
                                      return PresenceStats(std::move(channel), std::move(cb));
                                    });
}

Result<HistoryResult> Client::HistorySync(std::string channel, HistoryOptions options) {
  return Await<HistoryResult>(*this, core_->options().request_timeout + milliseconds(1000),
                              [&](Callback<HistoryResult> cb) {
                                return History(std::move(channel), std::move(options),
                                               std::move(cb));
                              });
}

Result<uint64_t> Client::SyncSubmitSync(SyncSubmitOptions options) {
  return Await<uint64_t>(
      *this, core_->options().request_timeout + milliseconds(1000),
      [&](Callback<uint64_t> cb) { return SyncSubmit(std::move(options), std::move(cb)); });
}

Result<SyncJob> Client::SyncStatusSync(uint64_t job) {
  return Await<SyncJob>(*this, core_->options().request_timeout + milliseconds(1000),
                        [&](Callback<SyncJob> cb) { return SyncStatus(job, std::move(cb)); });
}

Result<std::vector<SyncJob>> Client::SyncJobsSync() {
  return Await<std::vector<SyncJob>>(
      *this, core_->options().request_timeout + milliseconds(1000),
      [&](Callback<std::vector<SyncJob>> cb) { return SyncJobs(std::move(cb)); });
}

Result<Unit> Client::SyncCancelSync(uint64_t job) {
  return Await<Unit>(*this, core_->options().request_timeout + milliseconds(1000),
                     [&](Callback<Unit> cb) { return SyncCancel(job, std::move(cb)); });
}

void Client::RunOnce(milliseconds max_wait) {
  chp::PollOnce({this}, max_wait);  // also waits for the next timer when there is no socket
}

size_t Client::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  return core_->AddPollItems(items);
}
void Client::HandleEvents(const zmq::pollitem_t* items, chp::Clock::time_point now) {
  core_->HandleEvents(items, now);
}
chp::Clock::time_point Client::NextDeadline() const {
  return core_->NextDeadline();
}

ClientState Client::state() const {
  return core_->state();
}
const std::string& Client::client_id() const {
  return core_->client_id();
}
const std::string& Client::endpoint() const {
  return core_->endpoint();
}
bool Client::IsSubscribed(std::string_view channel) const {
  return core_->IsSubscribed(channel);
}
std::optional<StreamPosition> Client::Position(std::string_view channel) const {
  return core_->Position(channel);
}
size_t Client::pending() const {
  return core_->pending();
}
const ClientStats& Client::stats() const {
  return core_->stats();
}

}  // namespace chorus::client
