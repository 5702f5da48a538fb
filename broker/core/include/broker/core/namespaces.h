// Channel namespaces: per-namespace channel options, limits, channel name rules and the
// permission checks of the Centrifugo channel model (centrifugal.dev, "Channels").
// Pure logic; the registry is immutable after construction and may be shared read-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "broker/core/errc.h"

namespace chorus::broker {

// Options of one namespace. As in Centrifugo there is no inheritance: a namespace gets exactly
// the options it declares, with these defaults.
struct ChannelOptions {
  bool presence = false;        // keep presence; enables presence / presence_stats
  bool join_leave = false;      // send join/leave pushes to subscribers
  bool user_presence = false;   // Chorus extra: user-level join/leave (first join / last leave)
  uint32_t history_size = 0;    // publications kept per channel; 0 = history off
  int64_t history_ttl_ms = 0;   // each publication is kept this long after it was published
  bool force_recovery = false;  // recover on every resubscribe that carries a position
  bool allow_recovery = false;  // recover when the client asks for it
  bool allow_subscribe_for_client = true;
  bool allow_subscribe_for_anonymous = false;
  bool allow_publish_for_client = false;
  bool allow_publish_for_anonymous = false;
  bool allow_presence_for_client = true;
  bool allow_presence_for_anonymous = false;
  bool allow_history_for_client = true;
  bool allow_history_for_anonymous = false;
  uint32_t presence_page_size = 100;  // entries per presence page

  bool HistoryEnabled() const { return history_size > 0 && history_ttl_ms > 0; }
  bool operator==(const ChannelOptions&) const = default;
};

// Bounds on what clients and API callers can make a node hold or do (docs/operations.md,
// "Security"). A rate of 0 means "no limit".
struct Limits {
  size_t max_channel_length = 255;  // bytes
  size_t max_channels_per_connection = 128;
  size_t max_publication_bytes = 65536;
  // Nesting of JSON from outside (API bodies, native data and infos): 1..kMaxJsonDepth. The
  // WebSocket path is fixed at 64 (W-6).
  size_t max_json_depth = 64;
  size_t max_channels = 100'000;  // channels with state on this node; one more is refused (106)
  // Channels one connection may create per second (token bucket of one second's worth); one
  // more is refused with 111.
  size_t channel_creations_per_second = 1000;
  // Publishes one connection may make per second (one second's worth of burst); 111 beyond.
  size_t publications_per_second = 10'000;
  // An empty channel (no subscriber, no presence, no retained publication) that keeps a stream
  // position is dropped after this long idle (its epoch and offset are then lost).
  int64_t idle_channel_ttl_ms = 300'000;
  bool operator==(const Limits&) const = default;
};

inline constexpr uint32_t kMaxPresencePageSize = 10'000;
// The largest Limits::max_json_depth: every recursive walk of a JSON value (nlohmann's dump())
// stays far inside a thread's stack at this depth.
inline constexpr size_t kMaxJsonDepth = 1000;
inline constexpr char kNamespaceBoundary = ':';
inline constexpr char kPrivatePrefix = '$';

// Configuration key prefixes used in Validate() messages (the TOML loader uses the same layout):
// defaults under `channel.`, namespace N under `namespaces.N.`, limits under `limits.`.
inline constexpr std::string_view kDefaultOptionsKey = "channel";
inline constexpr std::string_view kNamespacesKey = "namespaces";
inline constexpr std::string_view kLimitsKey = "limits";

// Checks a channel name against the limits: empty, invalid UTF-8 or a control character
// (U+0000..U+001F, U+007F) -> kBadRequest; longer than max_channel_length bytes -> kLimitExceeded
// (Centrifugo v2 answers 106 for a too long channel). Returns kOk when valid.
Errc ValidateChannelName(std::string_view channel, const Limits& limits);

// The namespace part of a channel: the text before the first ':' after an optional leading '$'
// (private prefix), "" when there is no ':' ("$public:chat" -> "public", "news" -> "").
std::string_view NamespaceOf(std::string_view channel);

// Namespace names follow Centrifugo: ^[-a-zA-Z0-9_]{2,}$.
bool IsValidNamespaceName(std::string_view name);

struct ResolvedChannel {
  std::string ns;                           // "" for the default namespace
  const ChannelOptions* options = nullptr;  // owned by the registry
};

class NamespaceRegistry {
 public:
  NamespaceRegistry() = default;
  NamespaceRegistry(ChannelOptions defaults, std::map<std::string, ChannelOptions> namespaces,
                    Limits limits = {});

  // Validates the name (ValidateChannelName) and finds its namespace: no namespace part ->
  // default options; a namespace that is not configured -> kUnknownChannel.
  Result<ResolvedChannel> Resolve(std::string_view channel) const;

  // Checks the whole configuration. Returns the first problem as "<key>: <what is wrong>"
  // (e.g. "namespaces.chat.history_ttl_ms: history_size > 0 requires history_ttl_ms > 0"),
  // or nullopt when valid. Defaults first, then namespaces in name order, then limits.
  std::optional<std::string> Validate() const;

  const ChannelOptions& defaults() const { return defaults_; }
  const std::map<std::string, ChannelOptions, std::less<>>& namespaces() const {
    return namespaces_;
  }
  const Limits& limits() const { return limits_; }

 private:
  ChannelOptions defaults_;
  std::map<std::string, ChannelOptions, std::less<>> namespaces_;
  Limits limits_;
};

// Permission checks. `anonymous` is a connection without a user id. Each returns kOk when
// allowed; kNotAvailable when the feature is off in the namespace (checked first);
// kPermissionDenied when the namespace does not allow it to this kind of client.
Errc CanSubscribe(const ChannelOptions& options, bool anonymous);
Errc CanPublish(const ChannelOptions& options, bool anonymous);
Errc CanPresence(const ChannelOptions& options, bool anonymous);  // presence and presence_stats
Errc CanHistory(const ChannelOptions& options, bool anonymous);

// Whether a subscribe that carries a stream position is answered with recovery: history on, and
// either force_recovery, or allow_recovery and the client asked and may read history (as in
// Centrifugo, a client-requested recovery needs the history permission).
bool ShouldRecover(const ChannelOptions& options, bool anonymous, bool client_asked);

}  // namespace chorus::broker
