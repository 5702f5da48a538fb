// The controller (docs/cluster.md §6): failover keeping the history, a new lineage when none
// survives, in-sync changes from reports, rebalancing on join and leave, restarts.
#include <gtest/gtest.h>

#include <set>

#include "cluster/controller.h"

namespace chorus::cluster {
namespace {

constexpr int64_t kDead = 1000;

Heartbeat Hb(MemberId id, uint64_t inc = 1) {
  return {id, inc, {"chp" + std::to_string(id), "", ""}};
}

class ClusterControllerTest : public ::testing::Test {
 protected:
  ClusterControllerTest() : ctl_(ControllerConfig{kDead, 8, 0}) {
    EXPECT_TRUE(map_.Apply(Bootstrap{32, 2}).ok());
    ctl_.OnElected(now_);
  }

  // Applies every decision; each must be accepted (the controller checked them on a copy).
  size_t Step() {
    auto cmds = ctl_.Decide(map_, now_);
    for (const Command& c : cmds) {
      auto r = map_.Apply(c);
      EXPECT_TRUE(r.ok()) << c << ": " << r.error().message();
      EXPECT_EQ(map_.CheckInvariants(), "");
    }
    return cmds.size();
  }

  void Beat(const std::set<MemberId>& alive) {
    for (MemberId m : alive) {
      Heartbeat hb = Hb(m, incarnation_[m] ? incarnation_[m] : 1);
      hb.leaving = leaving_.count(m) != 0;
      ctl_.OnHeartbeat(hb, now_);
    }
  }

  // Every live primary reports: alive replicas caught up, ready to hand off.
  void ReportAllCaughtUp(const std::set<MemberId>& alive) {
    for (const Partition& p : map_.partitions()) {
      if (p.primary == 0 || !alive.count(p.primary)) continue;
      ReplicaReport rep{p.id, p.primary, p.epoch, p.version, {}, {}, true};
      for (MemberId m : p.replicas) {
        if (alive.count(m)) rep.caught_up.push_back(m);
      }
      ctl_.OnReport(rep);
    }
  }

  // Ticks (100 ms each) with heartbeats and reports until nothing is decided any more.
  void Converge(const std::set<MemberId>& alive, int max_ticks = 500) {
    for (int i = 0; i < max_ticks; ++i) {
      Beat(alive);
      ReportAllCaughtUp(alive);
      size_t n = Step();
      now_ += 100;
      if (n == 0 && i > 0) return;
    }
    FAIL() << "no convergence\n" << map_;
  }

  void ExpectPlacementIsTarget() {
    auto target = Assign(map_.CurrentPlacement(), map_.EligibleMembers(), 2, 32);
    EXPECT_EQ(map_.CurrentPlacement(), target) << map_;
    for (const Partition& p : map_.partitions()) {
      EXPECT_EQ(p.in_sync.size(), p.replicas.size()) << p;
    }
  }

  ClusterMap map_;
  Controller ctl_;
  int64_t now_ = 1'000'000;
  std::map<MemberId, uint64_t> incarnation_;
  std::set<MemberId> leaving_;
};

TEST_F(ClusterControllerTest, FreshClusterAddsMembersAndAssignsEveryPartition) {
  Beat({1, 2, 3});
  Step();
  ASSERT_EQ(map_.members().size(), 3u);
  for (const Partition& p : map_.partitions()) EXPECT_EQ(p.replicas.size(), 2u) << p;
  Converge({1, 2, 3});
  ExpectPlacementIsTarget();
}

// The node's setting for a multi-voter cluster: the first placement waits for heartbeats.
TEST(ClusterControllerInitialPlacement, FreshClusterIsPlacedOnlyAfterTheDelay) {
  Controller ctl(ControllerConfig{kDead, 8, /*initial_placement_delay_ms=*/500});
  ClusterMap map;
  ASSERT_TRUE(map.Apply(Bootstrap{16, 2}).ok());
  ctl.OnElected(1000);
  ctl.OnHeartbeat(Hb(1, 1), 1000);
  auto apply = [&](int64_t now) {
    for (const Command& c : ctl.Decide(map, now)) EXPECT_TRUE(map.Apply(c).ok()) << c;
  };
  apply(1000);
  ASSERT_EQ(map.members().size(), 1u);
  for (const Partition& p : map.partitions()) EXPECT_EQ(p.primary, 0u) << p;
  ctl.OnHeartbeat(Hb(1, 1), 1400);
  ctl.OnHeartbeat(Hb(2, 1), 1400);
  apply(1400);
  ASSERT_EQ(map.members().size(), 2u);
  for (const Partition& p : map.partitions()) EXPECT_EQ(p.primary, 0u) << p;
  apply(1500);
  for (const Partition& p : map.partitions()) {
    EXPECT_NE(p.primary, 0u) << p;
    EXPECT_EQ(p.replicas.size(), 2u) << p;  // both members, not the first one alone
  }
}

TEST_F(ClusterControllerTest, NewControllerWaitsAGracePeriodBeforeDeclaringDeath) {
  Converge({1, 2, 3});
  ctl_.OnElected(now_);  // a new leader: knows no heartbeats yet
  now_ += kDead - 1;
  EXPECT_EQ(Step(), 0u);
  now_ += 1;
  Beat({1, 2});
  Step();
  EXPECT_EQ(map_.FindMember(3)->state, MemberState::kDead);
  EXPECT_EQ(map_.FindMember(1)->state, MemberState::kAlive);
}

TEST_F(ClusterControllerTest, FailoverPromotesAnInSyncBackupKeepingLineage) {
  Converge({1, 2, 3});
  std::vector<Partition> before = map_.partitions();
  now_ += kDead;
  Beat({2, 3});
  Step();
  for (const Partition& b : before) {
    const Partition& a = map_.partitions()[b.id];
    EXPECT_NE(a.primary, 1u) << a;
    EXPECT_EQ(a.lineage, b.lineage) << a;
    if (b.primary == 1) {
      EXPECT_EQ(a.epoch, b.epoch + 1) << a;
      EXPECT_TRUE(b.IsInSync(a.primary)) << "promoted from in_sync: " << a;
    } else {
      EXPECT_EQ(a.epoch, b.epoch) << "untouched partitions keep their primary: " << a;
    }
  }
  Converge({2, 3});
  ExpectPlacementIsTarget();
}

TEST_F(ClusterControllerTest, NoSurvivingInSyncReplicaStartsANewLineage) {
  Converge({1, 2, 3});
  const Partition victim =
      *std::find_if(map_.partitions().begin(), map_.partitions().end(),
                    [](const Partition& p) { return p.IsReplica(1) && p.IsReplica(2); });
  now_ += kDead;
  Beat({3});
  Step();
  const Partition& a = map_.partitions()[victim.id];
  EXPECT_EQ(a.replicas, (std::vector<MemberId>{3}));
  EXPECT_EQ(a.lineage, victim.lineage + 1);
  EXPECT_EQ(a.epoch, victim.epoch + 1);
}

TEST_F(ClusterControllerTest, LaggingBackupLeavesInSyncAndReturnsWhenCaughtUp) {
  Converge({1, 2, 3});
  const Partition p = map_.partitions()[5];
  MemberId backup = p.replicas[1];
  ctl_.OnReport({p.id, p.primary, p.epoch, p.version, {}, {backup}, false});
  Step();
  EXPECT_FALSE(map_.partitions()[5].IsInSync(backup));
  // A stale report (older epoch) is ignored.
  const Partition q = map_.partitions()[5];
  ctl_.OnReport({q.id, q.primary, q.epoch - 1, q.version, {backup}, {}, false});
  EXPECT_EQ(Step(), 0u);
  // Caught up on an older version of the partition: not added (the primary did not count it).
  ctl_.OnReport({q.id, q.primary, q.epoch, q.version - 1, {backup}, {}, false});
  EXPECT_EQ(Step(), 0u);
  ctl_.OnReport({q.id, q.primary, q.epoch, q.version, {backup}, {}, false});
  Step();
  EXPECT_TRUE(map_.partitions()[5].IsInSync(backup));
}

TEST_F(ClusterControllerTest, JoinRebalancesThroughBoundedHandoffs) {
  Converge({1, 2, 3});
  auto before = map_.CurrentPlacement();
  Beat({1, 2, 3, 4});
  Step();
  size_t moving = 0;
  for (const Partition& p : map_.partitions()) {
    if (p.replicas.size() > p.in_sync.size() || p.handoff_to != 0) ++moving;
  }
  EXPECT_GT(moving, 0u);
  EXPECT_LE(moving, 8u) << "max_moves_in_flight";
  std::map<std::pair<PartitionId, uint64_t>, MemberId> primary_of;
  for (int i = 0; i < 500; ++i) {
    Beat({1, 2, 3, 4});
    ReportAllCaughtUp({1, 2, 3, 4});
    size_t n = Step();
    for (const Partition& p : map_.partitions()) {
      auto [it, fresh] = primary_of.emplace(std::make_pair(p.id, p.epoch), p.primary);
      EXPECT_EQ(it->second, p.primary) << "two primaries in one epoch: " << p;
    }
    now_ += 100;
    if (n == 0) break;
  }
  ExpectPlacementIsTarget();
  size_t held = 0;
  for (const Partition& p : map_.partitions()) held += p.IsReplica(4);
  EXPECT_EQ(held, 16u);  // 32 * 2 / 4
  EXPECT_LE(CountMovedReplicas(before, map_.CurrentPlacement()), 16u + 3u);
}

TEST_F(ClusterControllerTest, RestartMarksTheOldIncarnationDeadThenReadds) {
  Converge({1, 2, 3});
  incarnation_[2] = 2;
  Beat({2});
  Step();
  EXPECT_EQ(map_.FindMember(2)->incarnation, 2u);
  EXPECT_EQ(map_.FindMember(2)->state, MemberState::kAlive);
  for (const Partition& p : map_.partitions()) {
    EXPECT_FALSE(p.primary != 2 && p.IsInSync(2)) << "old copies are not trusted: " << p;
  }
  Converge({1, 2, 3});
  ExpectPlacementIsTarget();
}

TEST_F(ClusterControllerTest, LeavingMemberIsDrainedThenRemoved) {
  Converge({1, 2, 3});
  leaving_.insert(3);  // SIGTERM on node 3: its heartbeats say so, it keeps serving meanwhile
  Beat({1, 2, 3});
  Step();
  EXPECT_EQ(map_.FindMember(3)->state, MemberState::kLeaving);
  Converge({1, 2, 3});
  EXPECT_EQ(map_.FindMember(3), nullptr);
  for (const Partition& p : map_.partitions()) EXPECT_FALSE(p.IsReplica(3)) << p;
  ExpectPlacementIsTarget();
}

}  // namespace
}  // namespace chorus::cluster
