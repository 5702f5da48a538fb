// Configuration of a native client session: one typed value, validated once (Validate), passed
// to the Client constructor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chorus/client/errc.h"
#include "chorus/client/types.h"

namespace chorus::client {

struct ClientOptions {
  // Node endpoints (`native.endpoint`), e.g. "tcp://127.0.0.1:7001". The first is used first;
  // every reconnect moves on to the next one, wrapping around.
  std::vector<std::string> endpoints;
  // Credentials of `connect`: the JWT when not empty, else `user` (node with client_insecure).
  std::string token;
  std::string user;
  std::string info;  // connection info, JSON text ("" = none)

  // A command unanswered for this long fails with Errc::kTimeout. A `connect` or `subscribe`
  // timeout also ends the session (the client reconnects).
  std::chrono::milliseconds request_timeout{5000};
  // Keepalive: by default `ping` and `pong` of the connect result (N-4). Overrides, mainly for
  // tests and tools; a zero ping interval disables pings.
  std::optional<std::chrono::milliseconds> ping_interval;
  std::optional<std::chrono::milliseconds> pong_timeout;
  // Reconnect delay: min(reconnect_max, reconnect_min * 2^attempt), of which a random
  // `reconnect_jitter` fraction is taken off (0 = no jitter, 1 = anywhere in [0, delay]).
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{20'000};
  double reconnect_jitter = 0.5;

  // Bounds. Requests over max_pending fail at once with Errc::kPendingLimit.
  size_t max_pending = 10'000;
  size_t max_subscriptions = 10'000;
  // Publications pushed for a channel while its subscribe is in flight, held until the reply.
  size_t max_buffered = 10'000;
  // Frames read per HandleEvents, so one busy client does not starve others on the same thread.
  size_t max_reads_per_poll = 1'000;
  int sndhwm = 10'000;
  int rcvhwm = 100'000;
  uint64_t seed = 0;  // jitter RNG seed; 0 = random
};

// Checks the options; the error names the offending field.
Result<Unit> Validate(const ClientOptions& options);

// Options of one subscription.
struct SubscribeOptions {
  // Resubscribe with `recover: true` from the last delivered position after a reconnect (N-15),
  // when the node said the subscription is `recoverable`.
  bool recover = true;
  // When set, the first subscribe already asks for recovery from here (e.g. a position the
  // application stored).
  std::optional<StreamPosition> since;
  std::string info;  // channel info, JSON text ("" = none)
};

}  // namespace chorus::client
