#include "broker/core/namespaces.h"

#include <utility>

namespace chorus::broker {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], 0 if invalid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

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
  for (size_t i = 0; i < channel.size();) {
    const size_t len = Utf8SequenceLength(channel, i);
    if (len == 0) return Errc::kBadRequest;
    if (len == 1) {
      const auto c = static_cast<unsigned char>(channel[i]);
      if (c < 0x20 || c == 0x7F) return Errc::kBadRequest;
    }
    i += len;
  }
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
