// PartitionRoles (broker/node/src/partition_roles.h): which partitions an applied map made this
// node primary of by promotion (lineage kept: the copied lines continue, docs/cluster.md §6 step
// 2), afresh (a new lineage: new lines), and which it lost (C-15). Maps are built with the real
// commands of cluster_map.h.
#include <gtest/gtest.h>

#include "cluster/cluster_map.h"
#include "partition_roles.h"

namespace chorus::broker::node {
namespace {

using cluster::ClusterMap;
using Kind = RoleChange::Kind;

class PartitionRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(map_.Apply(cluster::Bootstrap{4, 2}).ok());
    for (uint64_t id : {1, 2, 3}) {
      ASSERT_TRUE(map_.Apply(cluster::AddMember{id, 100, {"chp", "api", ""}}).ok());
    }
  }
  uint64_t Version(uint32_t p) const { return map_.FindPartition(p)->version; }
  void Apply(const cluster::Command& c) { ASSERT_TRUE(map_.Apply(c).ok()) << c; }

  ClusterMap map_;
};

TEST_F(PartitionRolesTest, FirstMapIsTheBaselineAndFirstPlacementIsFresh) {
  PartitionRoles roles;
  EXPECT_TRUE(roles.Update(map_, 2).empty());  // nothing placed yet, and the baseline
  Apply(cluster::AssignPartition{0, Version(0), {2, 1}});
  Apply(cluster::AssignPartition{1, Version(1), {1, 2}});
  const auto changes = roles.Update(map_, 2);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], (RoleChange{0, Kind::kFresh, map_.FindPartition(0)->epoch}));
  EXPECT_TRUE(roles.Update(map_, 2).empty());  // the same map again: nothing new
}

TEST_F(PartitionRolesTest, C15_PromotionKeepsTheLineAndTheOldPrimaryLosesThePartition) {
  Apply(cluster::AssignPartition{0, Version(0), {1, 2}});
  Apply(cluster::AssignPartition{1, Version(1), {1, 3}});
  Apply(cluster::SetInSync{0, Version(0), {1, 2}});
  PartitionRoles on2, on1;
  (void)on2.Update(map_, 2);
  (void)on1.Update(map_, 1);
  Apply(cluster::MarkDead{1, 100});
  Apply(cluster::PromoteBackup{0, Version(0), 2});
  const uint64_t epoch = map_.FindPartition(0)->epoch;
  auto changes = on2.Update(map_, 2);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], (RoleChange{0, Kind::kPromoted, epoch}));
  // Partition 1 had no in-sync backup: placed afresh on 3 with a new lineage, nothing for 2.
  Apply(cluster::AssignPartition{1, Version(1), {3}});
  EXPECT_TRUE(on2.Update(map_, 2).empty());
  // The old primary (a zombie that sees the map later) lost both at once.
  changes = on1.Update(map_, 1);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, Kind::kLost);
  EXPECT_EQ(changes[1].kind, Kind::kLost);
  EXPECT_EQ(changes[1].partition, 1u);
}

TEST_F(PartitionRolesTest, ANewLineageIsFreshEvenForAFormerBackup) {
  Apply(cluster::AssignPartition{0, Version(0), {1, 2}});
  PartitionRoles on2;
  (void)on2.Update(map_, 2);
  // 2 was a backup but never in sync: the controller places the partition afresh on it.
  Apply(cluster::MarkDead{1, 100});
  Apply(cluster::AssignPartition{0, Version(0), {2}});
  auto changes = on2.Update(map_, 2);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::kFresh);
}

TEST_F(PartitionRolesTest, MissedMapsInBetweenStillCompareLineages) {
  Apply(cluster::AssignPartition{0, Version(0), {1, 2}});
  Apply(cluster::SetInSync{0, Version(0), {1, 2}});
  PartitionRoles on3;
  (void)on3.Update(map_, 3);
  // 1 dies, 2 is promoted, 3 added and caught up, 2 dies, 3 promoted: 3 sees only the end.
  Apply(cluster::MarkDead{1, 100});
  Apply(cluster::PromoteBackup{0, Version(0), 2});
  Apply(cluster::AddReplica{0, Version(0), 3});
  Apply(cluster::SetInSync{0, Version(0), {2, 3}});
  Apply(cluster::MarkDead{2, 100});
  Apply(cluster::PromoteBackup{0, Version(0), 3});
  auto changes = on3.Update(map_, 3);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Kind::kPromoted);
}

}  // namespace
}  // namespace chorus::broker::node
