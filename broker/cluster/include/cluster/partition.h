// The channel -> partition hash (docs/cluster.md §4.1, rule C-5). Pure, stable across versions:
// tools and tests compute a channel's owner with it, so it must never change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chorus::cluster {

using PartitionId = uint32_t;

inline constexpr uint32_t kDefaultPartitionCount = 256;
inline constexpr uint32_t kMaxPartitionCount = 65536;

// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes.
constexpr uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The partition of a channel (full name, namespace prefix included). partition_count > 0.
constexpr PartitionId PartitionOf(std::string_view channel, uint32_t partition_count) {
  return static_cast<PartitionId>(Fnv1a64(channel) % partition_count);
}

// The partition of a CHP subtree (the one function that maps subtrees to partitions):
// `c.<X>` is channel X (chp_state_sink.h escaping: `%25` -> '%', `%2F` -> '/'), `s.<u>` is the
// sync scheduler's subtree of user u, owned like channel `sync:<u>`. Nothing for other names
// and for `c#<hash>` (a channel name too long for a subtree name: its `top` record names it).
inline std::optional<std::string> ChannelOfSubtree(std::string_view subtree) {
  std::string out;
  std::string_view rest;
  if (subtree.starts_with("c.")) {
    rest = subtree.substr(2);
  } else if (subtree.starts_with("s.")) {
    out = "sync:";
    rest = subtree.substr(2);
  } else {
    return std::nullopt;
  }
  out.reserve(out.size() + rest.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      out.push_back(rest[i]);
      continue;
    }
    const std::string_view esc = rest.substr(i, 3);
    if (esc == "%25") {
      out.push_back('%');
    } else if (esc == "%2F") {
      out.push_back('/');
    } else {
      return std::nullopt;  // not an escape the sink writes
    }
    i += 2;
  }
  return out;
}

inline std::optional<PartitionId> PartitionOfSubtree(std::string_view subtree,
                                                     uint32_t partition_count) {
  auto channel = ChannelOfSubtree(subtree);
  if (!channel || partition_count == 0) return std::nullopt;
  return PartitionOf(*channel, partition_count);
}

}  // namespace chorus::cluster
