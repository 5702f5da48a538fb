// The channel -> partition hash (docs/cluster.md §4.1, rule C-5). Pure, stable across versions:
// tools and tests compute a channel's owner with it, so it must never change.
#pragma once

#include <cstdint>
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

}  // namespace chorus::cluster
