#include "broker/core/namespaces.h"

#include "chp/keys.h"

#include <utility>

namespace chorus::broker {
namespace {

std::string Key(std::string_view prefix, std::string_view name) {
  std::string key(prefix);
  key += '.';
  key += name;
  return key;
}

// First problem of one namespace's options, keys under `prefix`.
std::optional<std::string> ValidateOptions(const ChannelOptions& o, const std::string& prefix) {
  const auto fail = [&](std::string_view name, std::string_view what) {
    return std::optional<std::string>(Key(prefix, name) + ": " + std::string(what));
  };
  if (o.history_ttl_ms < 0) return fail("history_ttl_ms", "must be >= 0");
  if (o.history_size > 0 && o.history_ttl_ms == 0) {
    return fail("history_ttl_ms", "history_size > 0 requires history_ttl_ms > 0");
  }
  if (o.history_ttl_ms > 0 && o.history_size == 0) {
    return fail("history_size", "history_ttl_ms > 0 requires history_size > 0");
  }
  if (o.force_recovery && !o.HistoryEnabled()) {
    return fail("force_recovery",
                "recovery requires history (history_size and history_ttl_ms > 0)");
  }
  if (o.allow_recovery && !o.HistoryEnabled()) {
    return fail("allow_recovery",
                "recovery requires history (history_size and history_ttl_ms > 0)");
  }
  if (o.user_presence && !o.presence) {
    return fail("user_presence", "user_presence requires presence");
  }
  if (o.presence_page_size == 0 || o.presence_page_size > kMaxPresencePageSize) {
    return fail("presence_page_size",
                "must be between 1 and " + std::to_string(kMaxPresencePageSize));
  }
  return std::nullopt;
}

}  // namespace

Errc ValidateChannelName(std::string_view channel, const Limits& limits) {
  if (channel.empty()) return Errc::kBadRequest;
  if (channel.size() > limits.max_channel_length) return Errc::kLimitExceeded;
  for (const unsigned char c : channel) {
    if (c < 0x20 || c == 0x7F) return Errc::kBadRequest;
  }
  if (!chp::IsValidUtf8(channel)) return Errc::kBadRequest;
  return Errc::kOk;
}

std::string_view NamespaceOf(std::string_view channel) {
  if (!channel.empty() && channel.front() == kPrivatePrefix) channel.remove_prefix(1);
  const size_t colon = channel.find(kNamespaceBoundary);
  if (colon == std::string_view::npos) return {};
  return channel.substr(0, colon);
}

bool IsValidNamespaceName(std::string_view name) {
  if (name.size() < 2) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

NamespaceRegistry::NamespaceRegistry(ChannelOptions defaults,
                                     std::map<std::string, ChannelOptions> namespaces,
                                     Limits limits)
    : defaults_(std::move(defaults)),
      namespaces_(std::make_move_iterator(namespaces.begin()),
                  std::make_move_iterator(namespaces.end())),
      limits_(limits) {}

Result<ResolvedChannel> NamespaceRegistry::Resolve(std::string_view channel) const {
  if (const Errc e = ValidateChannelName(channel, limits_); e != Errc::kOk) return e;
  const std::string_view ns = NamespaceOf(channel);
  if (ns.empty()) return ResolvedChannel{std::string(), &defaults_};
  const auto it = namespaces_.find(ns);
  if (it == namespaces_.end()) return Errc::kUnknownChannel;
  return ResolvedChannel{it->first, &it->second};
}

std::optional<std::string> NamespaceRegistry::Validate() const {
  if (auto e = ValidateOptions(defaults_, std::string(kDefaultOptionsKey))) return e;
  for (const auto& [name, options] : namespaces_) {
    const std::string prefix = Key(kNamespacesKey, name);
    if (!IsValidNamespaceName(name)) {
      return prefix + ": namespace name must match ^[-a-zA-Z0-9_]{2,}$";
    }
    if (auto e = ValidateOptions(options, prefix)) return e;
  }
  const std::string limits(kLimitsKey);
  if (limits_.max_channel_length == 0) return Key(limits, "max_channel_length") + ": must be > 0";
  if (limits_.max_channels_per_connection == 0) {
    return Key(limits, "max_channels_per_connection") + ": must be > 0";
  }
  if (limits_.max_json_depth == 0 || limits_.max_json_depth > kMaxJsonDepth) {
    return Key(limits, "max_json_depth") + ": must be 1.." + std::to_string(kMaxJsonDepth);
  }
  if (limits_.max_channels == 0) return Key(limits, "max_channels") + ": must be > 0";
  if (limits_.idle_channel_ttl_ms <= 0) return Key(limits, "idle_channel_ttl_ms") + ": must be > 0";
  if (limits_.max_publication_bytes == 0) {
    return Key(limits, "max_publication_bytes") + ": must be > 0";
  }
  return std::nullopt;
}

Errc CanSubscribe(const ChannelOptions& options, bool anonymous) {
  const bool allowed =
      anonymous ? options.allow_subscribe_for_anonymous : options.allow_subscribe_for_client;
  return allowed ? Errc::kOk : Errc::kPermissionDenied;
}

Errc CanPublish(const ChannelOptions& options, bool anonymous) {
  const bool allowed =
      anonymous ? options.allow_publish_for_anonymous : options.allow_publish_for_client;
  return allowed ? Errc::kOk : Errc::kPermissionDenied;
}

Errc CanPresence(const ChannelOptions& options, bool anonymous) {
  if (!options.presence) return Errc::kNotAvailable;
  const bool allowed =
      anonymous ? options.allow_presence_for_anonymous : options.allow_presence_for_client;
  return allowed ? Errc::kOk : Errc::kPermissionDenied;
}

Errc CanHistory(const ChannelOptions& options, bool anonymous) {
  if (!options.HistoryEnabled()) return Errc::kNotAvailable;
  const bool allowed =
      anonymous ? options.allow_history_for_anonymous : options.allow_history_for_client;
  return allowed ? Errc::kOk : Errc::kPermissionDenied;
}

bool ShouldRecover(const ChannelOptions& options, bool anonymous, bool client_asked) {
  if (!options.HistoryEnabled()) return false;
  if (options.force_recovery) return true;
  return client_asked && options.allow_recovery && CanHistory(options, anonymous) == Errc::kOk;
}

}  // namespace chorus::broker
