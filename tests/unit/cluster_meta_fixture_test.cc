// Issue 12, test 7: the control plane's decisions on libraft's deterministic in-memory fixture
// with random kills, restarts, network splits and one-way drops, many seeds, 3 and 5 voters.
// Invariants (cluster_meta_sim.h), checked after every applied entry and every step:
//  - never two primaries for one partition in one partition epoch (in any map), and never two
//    members committing for one partition in one epoch;
//  - a partition epoch never goes back; no primary commits at an epoch older than one that
//    already committed (stale primaries are fenced);
//  - every committed publication is on the primary that commits next in the same lineage;
//  - the maps of all voters are equal after the same number of entries (no committed entry lost
//    or changed); only members of the map are replicas or primaries;
//  - the minority side of a split applies nothing beyond what was committed before the split,
//    and no proposal of a minority leader commits during the split.
#include <gtest/gtest.h>

#include "cluster_meta_sim.h"

namespace chorus::cluster::sim {
namespace {

SimStats RunSeeds(unsigned servers, uint32_t replication_factor, uint32_t first_seed,
                  uint32_t seeds) {
  SimStats total;
  for (uint32_t seed = first_seed; seed < first_seed + seeds; ++seed) {
    SimConfig config;
    config.servers = servers;
    config.seed = seed;
    config.replication_factor = replication_factor;
    Sim sim(config);
    EXPECT_TRUE(sim.Run()) << sim.violation;
    if (!sim.violation.empty()) break;
    EXPECT_EQ(sim.CheckConverged(), "") << "seed " << seed << " n=" << servers;
    total.steps += sim.stats.steps;
    total.commits += sim.stats.commits;
    total.kills += sim.stats.kills;
    total.revivals += sim.stats.revivals;
    total.restarts += sim.stats.restarts;
    total.splits += sim.stats.splits;
    total.promotions += sim.stats.promotions;
    total.new_lineages += sim.stats.new_lineages;
    total.handoffs += sim.stats.handoffs;
    total.minority_proposals += sim.stats.minority_proposals;
    total.leaves += sim.stats.leaves;
    total.exits += sim.stats.exits;
  }
  std::printf(
      "n=%u R=%u seeds=%u steps=%llu commits=%llu kills=%llu revivals=%llu restarts=%llu "
      "splits=%llu "
      "promotions=%llu new_lineages=%llu handoffs=%llu minority_proposals=%llu leaves=%llu "
      "exits=%llu\n",
      servers, replication_factor, seeds, (unsigned long long)total.steps,
      (unsigned long long)total.commits, (unsigned long long)total.kills,
      (unsigned long long)total.revivals, (unsigned long long)total.restarts,
      (unsigned long long)total.splits, (unsigned long long)total.promotions,
      (unsigned long long)total.new_lineages, (unsigned long long)total.handoffs,
      (unsigned long long)total.minority_proposals, (unsigned long long)total.leaves,
      (unsigned long long)total.exits);
  return total;
}

TEST(ClusterMetaFixture, ThreeVotersRandomFaults) {
  SimStats s = RunSeeds(3, 2, 1, 14);
  // The faults did happen: a test whose scenario never fails over proves nothing.
  EXPECT_GT(s.promotions, 0u);
  EXPECT_GT(s.splits, 0u);
  EXPECT_GT(s.commits, 0u);
  EXPECT_GT(s.handoffs, 0u);
}

TEST(ClusterMetaFixture, FiveVotersRandomFaults) {
  SimStats s = RunSeeds(5, 2, 1001, 6);
  EXPECT_GT(s.promotions, 0u);
  EXPECT_GT(s.splits, 0u);
  EXPECT_GT(s.exits, 0u) << "members left by handoff and exited";
}

TEST(ClusterMetaFixture, FiveVotersThreeReplicasRandomFaults) {
  SimStats s = RunSeeds(5, 3, 2001, 6);
  EXPECT_GT(s.promotions, 0u);
  EXPECT_GT(s.splits, 0u);
}

}  // namespace
}  // namespace chorus::cluster::sim
