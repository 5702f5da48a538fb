// The cluster map state machine (docs/cluster.md §3.2): each command validated and applied
// deterministically; a rejected command changes nothing.
#include <gtest/gtest.h>

#include <sstream>

#include "cluster/cluster_map.h"

namespace chorus::cluster {
namespace {

Endpoints Ends(MemberId id) {
  std::string s = std::to_string(id);
  return {"tcp://127.0.0.1:1" + s, "tcp://127.0.0.1:2" + s, ""};
}

void MustApply(ClusterMap& map, const Command& cmd) {
  auto r = map.Apply(cmd);
  ASSERT_TRUE(r.ok()) << cmd << ": " << r.error().message() << "\n" << map;
  ASSERT_EQ(map.CheckInvariants(), "") << map;
}

// Expects `cmd` to be rejected with `e`, leaving the map unchanged.
void MustReject(ClusterMap& map, const Command& cmd, Errc e) {
  ClusterMap before = map;
  auto r = map.Apply(cmd);
  ASSERT_FALSE(r.ok()) << cmd;
  EXPECT_EQ(r.error(), make_error_code(e)) << cmd << ": " << r.error().message();
  EXPECT_EQ(map, before);
}

// Three members, 4 partitions, R = 2; partition 0 on {1, 2}.
ClusterMap ThreeMembers() {
  ClusterMap map;
  EXPECT_TRUE(map.Apply(Bootstrap{4, 2}).ok());
  for (MemberId id : {1, 2, 3}) EXPECT_TRUE(map.Apply(AddMember{id, 100, Ends(id)}).ok());
  EXPECT_TRUE(map.Apply(AssignPartition{0, 0, {1, 2}}).ok());
  EXPECT_TRUE(map.Apply(SetInSync{0, 1, {1, 2}}).ok());
  return map;
}

TEST(ClusterMap, BootstrapOnceWithValidSizes) {
  ClusterMap map;
  MustReject(map, AssignPartition{0, 0, {1}}, Errc::kNotBootstrapped);
  MustReject(map, Bootstrap{0, 2}, Errc::kInvalidArgument);
  MustReject(map, Bootstrap{kMaxPartitionCount + 1, 2}, Errc::kInvalidArgument);
  MustReject(map, Bootstrap{16, 0}, Errc::kInvalidArgument);
  MustReject(map, Bootstrap{16, kMaxReplicationFactor + 1}, Errc::kInvalidArgument);
  MustApply(map, Bootstrap{16, 2});
  EXPECT_EQ(map.partition_count(), 16u);
  EXPECT_EQ(map.partitions().size(), 16u);
  MustReject(map, Bootstrap{16, 2}, Errc::kAlreadyBootstrapped);
}

TEST(ClusterMap, AddMemberIsIdempotentAndRestartNeedsTheOldIncarnationDead) {
  ClusterMap map = ThreeMembers();
  MustReject(map, AddMember{0, 1, {}}, Errc::kInvalidArgument);
  MustReject(map, AddMember{4, 0, {}}, Errc::kInvalidArgument);
  MustApply(map, AddMember{1, 100, Ends(1)});  // a retried proposal: no-op
  MustReject(map, AddMember{1, 100, Ends(2)}, Errc::kInvalidArgument);
  MustReject(map, AddMember{1, 99, Ends(1)}, Errc::kStaleIncarnation);
  MustReject(map, AddMember{1, 101, Ends(1)}, Errc::kBadState);  // still alive at 100
  MustApply(map, MarkDead{1, 100});
  MustReject(map, AddMember{1, 100, Ends(1)}, Errc::kStaleIncarnation);  // a zombie
  // Still primary of partition 0 with its old incarnation's data: promote first.
  MustReject(map, AddMember{1, 101, Ends(1)}, Errc::kBadState);
  MustApply(map, PromoteBackup{0, map.FindPartition(0)->version, 2});
  MustApply(map, AddMember{1, 101, Ends(1)});
  EXPECT_EQ(map.FindMember(1)->state, MemberState::kAlive);
  EXPECT_EQ(map.FindMember(1)->incarnation, 101u);
}

TEST(ClusterMap, MarkDeadLeavesInSyncExceptAsPrimary) {
  ClusterMap map = ThreeMembers();
  MustReject(map, MarkDead{9, 100}, Errc::kUnknownMember);
  MustReject(map, MarkDead{2, 99}, Errc::kStaleIncarnation);
  uint64_t v = map.FindPartition(0)->version;
  MustApply(map, MarkDead{2, 100});
  EXPECT_EQ(map.FindPartition(0)->in_sync, (std::vector<MemberId>{1}));
  EXPECT_EQ(map.FindPartition(0)->version, v + 1);
  MustReject(map, MarkDead{2, 100}, Errc::kBadState);
  MustApply(map, MarkDead{1, 100});
  EXPECT_EQ(map.FindPartition(0)->primary, 1u) << "a dead primary stays until promoted";
  EXPECT_EQ(map.FindPartition(0)->in_sync, (std::vector<MemberId>{1}));
}

TEST(ClusterMap, PromoteBackupKeepsLineageAndBumpsEpoch) {
  ClusterMap map = ThreeMembers();
  const Partition before = *map.FindPartition(0);
  MustReject(map, PromoteBackup{0, before.version, 2}, Errc::kBadState);  // primary alive
  MustApply(map, MarkDead{1, 100});
  uint64_t v = map.FindPartition(0)->version;
  MustReject(map, PromoteBackup{0, v - 1, 2}, Errc::kStaleVersion);
  MustReject(map, PromoteBackup{0, v, 3}, Errc::kNotInSync);
  MustApply(map, PromoteBackup{0, v, 2});
  const Partition& p = *map.FindPartition(0);
  EXPECT_EQ(p.primary, 2u);
  EXPECT_EQ(p.replicas, (std::vector<MemberId>{2}));
  EXPECT_EQ(p.in_sync, (std::vector<MemberId>{2}));
  EXPECT_EQ(p.epoch, before.epoch + 1);
  EXPECT_EQ(p.lineage, before.lineage);
}

TEST(ClusterMap, ALeavingBackupMayBePromotedWhenItIsTheLastInSyncCopy) {
  ClusterMap map = ThreeMembers();
  MustApply(map, SetLeaving{2});
  MustApply(map, MarkDead{1, 100});
  MustApply(map, PromoteBackup{0, map.FindPartition(0)->version, 2});
  EXPECT_EQ(map.FindPartition(0)->primary, 2u);
}

TEST(ClusterMap, AssignPartitionOnlyWhenNoInSyncReplicaServes) {
  ClusterMap map = ThreeMembers();
  uint64_t v = map.FindPartition(0)->version;
  MustReject(map, AssignPartition{0, v, {3}}, Errc::kBadState);
  MustReject(map, AssignPartition{9, 0, {3}}, Errc::kUnknownPartition);
  MustReject(map, AssignPartition{1, 0, {}}, Errc::kInvalidArgument);
  MustReject(map, AssignPartition{1, 0, {1, 2, 3}}, Errc::kInvalidArgument);  // > R
  MustReject(map, AssignPartition{1, 0, {2, 2}}, Errc::kInvalidArgument);
  MustReject(map, AssignPartition{1, 0, {7}}, Errc::kBadState);  // not a member
  MustApply(map, MarkDead{1, 100});
  MustApply(map, MarkDead{2, 100});
  v = map.FindPartition(0)->version;
  uint64_t lineage = map.FindPartition(0)->lineage, epoch = map.FindPartition(0)->epoch;
  MustReject(map, AssignPartition{0, v, {2}}, Errc::kBadState);  // dead member
  MustApply(map, AssignPartition{0, v, {3}});
  EXPECT_EQ(map.FindPartition(0)->lineage, lineage + 1);
  EXPECT_EQ(map.FindPartition(0)->epoch, epoch + 1);
  EXPECT_EQ(map.FindPartition(0)->in_sync, (std::vector<MemberId>{3}));
}

TEST(ClusterMap, SetInSyncContainsThePrimaryWithinReplicas) {
  ClusterMap map = ThreeMembers();
  uint64_t v = map.FindPartition(0)->version;
  MustReject(map, SetInSync{0, v, {2}}, Errc::kInvalidArgument);
  MustReject(map, SetInSync{0, v, {1, 3}}, Errc::kInvalidArgument);
  MustReject(map, SetInSync{0, v, {1, 1}}, Errc::kInvalidArgument);
  MustApply(map, SetInSync{0, v, {2, 1}});
  EXPECT_EQ(map.FindPartition(0)->in_sync.front(), 1u) << "primary first";
  MustApply(map, SetInSync{0, v + 1, {1}});
  MustReject(map, SetInSync{0, v + 1, {1, 2}}, Errc::kStaleVersion);
}

TEST(ClusterMap, ReplicasAndHandoff) {
  ClusterMap map = ThreeMembers();
  auto v = [&map] { return map.FindPartition(0)->version; };
  MustReject(map, AddReplica{0, v(), 2}, Errc::kBadState);    // already a replica
  MustReject(map, BeginHandoff{0, v(), 3}, Errc::kBadState);  // not a replica
  MustApply(map, AddReplica{0, v(), 3});
  MustReject(map, AddReplica{1, 0, 3}, Errc::kBadState);  // unassigned partition
  MustApply(map, BeginHandoff{0, v(), 3});
  MustReject(map, BeginHandoff{0, v(), 2}, Errc::kBadState);   // one at a time
  MustReject(map, RemoveReplica{0, v(), 3}, Errc::kBadState);  // the handoff target
  MustReject(map, CompleteHandoff{0, v(), 3}, Errc::kNotInSync);
  MustApply(map, SetInSync{0, v(), {1, 2, 3}});
  MustReject(map, CompleteHandoff{0, v(), 2}, Errc::kBadState);
  uint64_t epoch = map.FindPartition(0)->epoch;
  MustApply(map, CompleteHandoff{0, v(), 3});
  const Partition& p = *map.FindPartition(0);
  EXPECT_EQ(p.primary, 3u);
  EXPECT_EQ(p.replicas.front(), 3u);
  EXPECT_EQ(p.epoch, epoch + 1);
  EXPECT_EQ(p.handoff_to, 0u);
  EXPECT_TRUE(p.IsInSync(1)) << "the old primary stays an in-sync backup";
  MustReject(map, RemoveReplica{0, v(), 3}, Errc::kBadState);  // the primary
  MustApply(map, RemoveReplica{0, v(), 1});
  EXPECT_FALSE(map.FindPartition(0)->IsInSync(1));
  MustReject(map, CancelHandoff{0, v()}, Errc::kBadState);
  MustApply(map, BeginHandoff{0, v(), 2});
  MustApply(map, CancelHandoff{0, v()});
}

TEST(ClusterMap, LeavingAndRemoval) {
  ClusterMap map = ThreeMembers();
  MustReject(map, RemoveMember{3}, Errc::kBadState);  // alive
  MustApply(map, SetLeaving{3});
  MustReject(map, SetLeaving{3}, Errc::kBadState);
  EXPECT_EQ(map.EligibleMembers(), (std::vector<MemberId>{1, 2}));
  MustApply(map, RemoveMember{3});
  EXPECT_EQ(map.FindMember(3), nullptr);
  MustApply(map, SetLeaving{2});
  MustReject(map, RemoveMember{2}, Errc::kBadState);  // still a replica
}

TEST(ClusterMap, SameCommandsGiveEqualMaps) {
  ClusterMap a = ThreeMembers(), b = ThreeMembers();
  EXPECT_EQ(a, b);
  std::ostringstream sa, sb;
  sa << a;
  sb << b;
  EXPECT_EQ(sa.str(), sb.str());
  EXPECT_NE(sa.str().find("p0{primary=1 replicas=[1,2] in_sync=[1,2]"), std::string::npos)
      << sa.str();
  EXPECT_TRUE(b.Apply(MarkDead{3, 100}).ok());
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace chorus::cluster
