// Rendezvous assignment with bounded load (docs/cluster.md §4.2): even spread, few moves.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "cluster/assignment.h"

namespace chorus::cluster {
namespace {

constexpr uint32_t kP = 256;

std::vector<MemberId> Members(std::initializer_list<MemberId> ids) {
  return ids;
}

std::vector<MemberId> Range(MemberId first, size_t n) {
  std::vector<MemberId> out;
  for (size_t i = 0; i < n; ++i) out.push_back(first + i * 7919);  // ids need not be dense
  return out;
}

// Checks the stated guarantees of Assign for `members` and returns nothing.
void ExpectBalanced(const std::vector<Placement>& a, const std::vector<MemberId>& members,
                    uint32_t rf) {
  size_t n = members.size();
  size_t r = std::min<size_t>(rf, n);
  size_t floor = kP * r / n, cap = (kP * r + n - 1) / n;
  size_t pcap = (kP + n - 1) / n;
  std::map<MemberId, size_t> load, pload;
  std::set<MemberId> allowed(members.begin(), members.end());
  ASSERT_EQ(a.size(), kP);
  for (const Placement& p : a) {
    ASSERT_EQ(p.replicas.size(), r);
    EXPECT_EQ(std::set<MemberId>(p.replicas.begin(), p.replicas.end()).size(), r);
    for (MemberId m : p.replicas) {
      EXPECT_TRUE(allowed.count(m)) << m;
      ++load[m];
    }
    ++pload[p.primary()];
  }
  for (MemberId m : members) {
    EXPECT_GE(load[m], floor) << "member " << m << " n=" << n;
    EXPECT_LE(load[m], cap) << "member " << m << " n=" << n;
    EXPECT_LE(pload[m], pcap + 1) << "member " << m << " n=" << n;
  }
}

TEST(ClusterAssignment, SpreadsReplicasAndPrimariesEvenly) {
  for (uint32_t rf : {1u, 2u, 3u}) {
    for (size_t n = 1; n <= 9; ++n) {
      auto members = Range(1, n);
      ExpectBalanced(Assign({}, members, rf, kP), members, rf);
    }
  }
}

TEST(ClusterAssignment, IsDeterministicAndIndependentOfMemberOrder) {
  auto a = Assign({}, Members({5, 3, 9, 1}), 2, kP);
  auto b = Assign({}, Members({1, 3, 5, 9}), 2, kP);
  EXPECT_EQ(a, b);
  EXPECT_EQ(Assign(a, Members({1, 3, 5, 9}), 2, kP), a) << "a balanced placement is kept";
}

TEST(ClusterAssignment, JoinMovesFewReplicas) {
  for (uint32_t rf : {1u, 2u, 3u}) {
    for (size_t n = 1; n <= 8; ++n) {
      auto members = Range(1, n);
      auto before = Assign({}, members, rf, kP);
      auto grown = members;
      grown.push_back(1000003);
      auto after = Assign(before, grown, rf, kP);
      ExpectBalanced(after, grown, rf);
      size_t r_after = std::min<size_t>(rf, n + 1);
      size_t added_slots = kP * (r_after - std::min<size_t>(rf, n));  // R grows with N up to R
      size_t optimum = (kP * r_after + n) / (n + 1);                  // ceil: the newcomer's share
      EXPECT_LE(CountMovedReplicas(before, after), std::max(optimum, added_slots) + n)
          << "rf=" << rf << " n=" << n;
    }
  }
}

TEST(ClusterAssignment, LeaveMovesOnlyTheLeaversReplicas) {
  for (uint32_t rf : {1u, 2u, 3u}) {
    for (size_t n = 2; n <= 9; ++n) {
      auto members = Range(1, n);
      auto before = Assign({}, members, rf, kP);
      MemberId leaver = members[n / 2];
      size_t held = 0;
      for (const Placement& p : before)
        held += std::count(p.replicas.begin(), p.replicas.end(), leaver);
      auto shrunk = members;
      shrunk.erase(std::find(shrunk.begin(), shrunk.end(), leaver));
      auto after = Assign(before, shrunk, rf, kP);
      ExpectBalanced(after, shrunk, rf);
      EXPECT_LE(CountMovedReplicas(before, after), held + 2 * n) << "rf=" << rf << " n=" << n;
    }
  }
}

TEST(ClusterAssignment, PrimariesStayWhereTheyAreWhenBalanced) {
  auto members = Range(1, 5);
  auto before = Assign({}, members, 2, kP);
  auto grown = members;
  grown.push_back(424242);
  auto after = Assign(before, grown, 2, kP);
  // The newcomer's share of primaries moves (about P/N), not a reshuffle.
  EXPECT_LE(CountMovedPrimaries(before, after), kP / 6 + 6);
}

TEST(ClusterAssignment, NoMembersNoPlacement) {
  auto a = Assign({}, {}, 2, 8);
  ASSERT_EQ(a.size(), 8u);
  for (const Placement& p : a) EXPECT_TRUE(p.replicas.empty());
}

}  // namespace
}  // namespace chorus::cluster
