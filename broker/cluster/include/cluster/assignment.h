// Target placement of partitions on members: rendezvous (highest random weight) ranking with
// bounded load, sticky to the previous placement (docs/cluster.md §4.2). Pure and deterministic:
// every controller computes the same target from the same inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "cluster/partition.h"

namespace chorus::cluster {

using MemberId = uint64_t;

// The replicas of one partition, primary first. Empty when no member is eligible.
struct Placement {
  std::vector<MemberId> replicas;

  MemberId primary() const { return replicas.empty() ? 0 : replicas.front(); }
  bool operator==(const Placement&) const = default;
};

// SplitMix64's finaliser: a bijective 64-bit mixer.
constexpr uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Rendezvous score of member m for partition p: a partition prefers higher scores.
constexpr uint64_t Score(PartitionId p, MemberId m) {
  return Mix64(Mix64(p) ^ m);
}

// Computes the target placement of partition_count partitions with min(R, |eligible|) replicas
// each. `previous` (size partition_count, or empty for a fresh cluster) is kept where it stays
// valid and balanced. Guarantees (tested in cluster_assignment_test): every eligible member holds
// floor(P*r/N) or ceil(P*r/N) replicas; primaries per member at most ceil(P/N) + 1; replicas of a
// partition are distinct; members absent from `eligible` hold nothing.
std::vector<Placement> Assign(const std::vector<Placement>& previous,
                              const std::vector<MemberId>& eligible, uint32_t replication_factor,
                              uint32_t partition_count);

// Replica slots of `after` that `before` does not hold (what has to be copied to move).
size_t CountMovedReplicas(const std::vector<Placement>& before,
                          const std::vector<Placement>& after);

// Partitions whose primary differs between the two placements.
size_t CountMovedPrimaries(const std::vector<Placement>& before,
                           const std::vector<Placement>& after);

}  // namespace chorus::cluster
