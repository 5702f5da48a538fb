// MetaGroup over real sockets: three members on 127.0.0.1 (libraft's uv backend, raft_uv_tcp,
// on-disk logs in a temporary directory) elect a leader, replicate cluster map commands, survive
// a member restart from its log and the loss of the leader.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "cluster/meta_group.h"
#include "test_util.h"

namespace chorus::cluster {
namespace {

using namespace std::chrono_literals;
using chorus::testing::EventuallyTrue;

// libraft's transport binds the address it also advertises, so it cannot bind port 0 and report
// the port: take a free loopback port from the kernel and release it (decision record).
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

template <typename T>
std::optional<T> Get(std::future<T> f, std::chrono::milliseconds timeout = 5s) {
  if (f.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return f.get();
}

class ClusterMetaUv : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/chorus-meta-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (MemberId id = 1; id <= 3; ++id) {
      int port = FreeLoopbackPort();
      ASSERT_GT(port, 0);
      voters_.emplace_back(id, "127.0.0.1:" + std::to_string(port));
      std::filesystem::create_directories(root_ / std::to_string(id));
    }
    groups_.resize(3);
    for (size_t i = 0; i < 3; ++i) StartMember(i);
  }

  void TearDown() override {
    groups_.clear();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void StartMember(size_t i) { StartMember(i, voters_[i].first, voters_[i].second, voters_); }

  void StartMember(size_t i, MemberId id, const std::string& address,
                   const std::vector<std::pair<MemberId, std::string>>& voters) {
    MetaGroupConfig config;
    config.id = id;
    config.address = address;
    config.data_dir = (root_ / std::to_string(config.id)).string();
    std::filesystem::create_directories(config.data_dir);
    config.voters = voters;
    config.election_timeout_ms = 300;
    config.heartbeat_timeout_ms = 50;
    config.snapshot_threshold = snapshot_threshold_;
    if (run_controller_) {
      config.run_controller = true;
      config.controller.dead_after_ms = 1500;
      config.lease_ms = 500;
      config.tick_ms = 50;
      config.bootstrap_partitions = 8;
      config.bootstrap_replication_factor = 2;
    }
    auto g = MetaGroup::Start(config);
    ASSERT_TRUE(g.ok()) << g.error().message();
    groups_[i] = std::move(*g);
  }

  // Index of the member that is leader (and knows it), or -1.
  int Leader() {
    for (size_t i = 0; i < groups_.size(); ++i) {
      if (!groups_[i]) continue;
      auto s = Get(groups_[i]->Status());
      if (s && s->is_leader) return static_cast<int>(i);
    }
    return -1;
  }

  // Proposes on whichever member leads, retrying while leadership moves.
  bool ProposeOnLeader(const Command& cmd) {
    return EventuallyTrue(
        [&] {
          int l = Leader();
          if (l < 0) return false;
          auto r = Get(groups_[l]->Propose(cmd));
          return r && r->ok();
        },
        10s);
  }

  bool AllApplied(uint64_t entries) {
    bool ok = EventuallyTrue(
        [&] {
          std::optional<ClusterMap> first;
          for (auto& g : groups_) {
            if (!g) continue;
            auto s = Get(g->Status());
            if (!s || s->entries < entries) return false;
            if (first && !(s->map == *first)) return false;
            first = s->map;
          }
          return true;
        },
        10s);
    if (!ok) {
      for (size_t i = 0; i < groups_.size(); ++i) {
        if (!groups_[i]) continue;
        auto s = Get(groups_[i]->Status());
        if (s) {
          ADD_FAILURE() << "member " << i << " leader=" << s->is_leader << " entries=" << s->entries
                        << "\n"
                        << s->map;
        }
      }
    }
    return ok;
  }

  unsigned snapshot_threshold_ = 1024;
  bool run_controller_ = false;
  std::filesystem::path root_;
  std::vector<std::pair<MemberId, std::string>> voters_;
  std::vector<std::unique_ptr<MetaGroup>> groups_;
};

TEST_F(ClusterMetaUv, ThreeMembersElectALeaderAndReplicateTheMap) {
  ASSERT_TRUE(EventuallyTrue([&] { return Leader() >= 0; }, 10s)) << "no leader elected";
  ASSERT_TRUE(ProposeOnLeader(Bootstrap{16, 2}));
  ASSERT_TRUE(ProposeOnLeader(AddMember{1, 7, {"tcp://127.0.0.1:1", "", voters_[0].second}}));
  ASSERT_TRUE(AllApplied(2));
  auto s = Get(groups_[0]->Status());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->map.partition_count(), 16u);
  ASSERT_NE(s->map.FindMember(1), nullptr);
  EXPECT_EQ(s->map.FindMember(1)->incarnation, 7u);

  // A follower refuses proposals: only the leader appends.
  int l = Leader();
  ASSERT_GE(l, 0);
  auto follower = static_cast<size_t>((l + 1) % 3);
  auto r = Get(groups_[follower]->Propose(SetLeaving{1}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error(), make_error_code(Errc::kNotLeader));

  // A command the map rejects is committed as a no-op everywhere and reported to the proposer.
  r = Get(groups_[l]->Propose(MarkDead{1, 6}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error(), make_error_code(Errc::kStaleIncarnation));
  EXPECT_TRUE(AllApplied(3));
}

// Entry payloads of odd lengths (libraft's uv log needs multiples of 8: MetaFsm pads them) and
// snapshots on disk are read back by a restarted member.
TEST_F(ClusterMetaUv, MapSurvivesAMemberRestartAndTheLossOfTheLeader) {
  groups_.clear();  // restart all three with frequent snapshots
  groups_.resize(3);
  snapshot_threshold_ = 4;
  for (size_t i = 0; i < 3; ++i) StartMember(i);
  ASSERT_TRUE(ProposeOnLeader(Bootstrap{8, 2}));
  ASSERT_TRUE(ProposeOnLeader(AddMember{2, 1, {"a", "b", ""}}));
  for (uint64_t inc = 2; inc <= 6; ++inc) {  // restarts of member 2: more entries, snapshots
    ASSERT_TRUE(ProposeOnLeader(MarkDead{2, inc - 1}));
    ASSERT_TRUE(ProposeOnLeader(AddMember{2, inc, {"a", "bb", ""}}));
  }
  ASSERT_TRUE(AllApplied(12));

  // Restart a follower from its on-disk log and snapshot.
  int l = Leader();
  ASSERT_GE(l, 0);
  auto follower = static_cast<size_t>((l + 1) % 3);
  groups_[follower].reset();
  bool has_snapshot = false;
  for (const auto& e : std::filesystem::directory_iterator(root_ / std::to_string(follower + 1))) {
    if (e.path().filename().string().rfind("snapshot-", 0) == 0) has_snapshot = true;
  }
  EXPECT_TRUE(has_snapshot) << "the restart should load a snapshot";
  ASSERT_TRUE(ProposeOnLeader(AddMember{3, 1, {"c", "d", ""}}));
  StartMember(follower);
  ASSERT_TRUE(AllApplied(13));

  // Lose the leader: the two others elect one and keep changing the map.
  l = Leader();
  ASSERT_GE(l, 0);
  groups_[l].reset();
  ASSERT_TRUE(ProposeOnLeader(SetLeaving{3}));
  ASSERT_TRUE(AllApplied(14));
  for (auto& g : groups_) {
    if (!g) continue;
    auto s = Get(g->Status());
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->map.FindMember(3)->state, MemberState::kLeaving);
    EXPECT_EQ(s->map.FindMember(2)->incarnation, 6u);
  }
}

// C-2: a node beyond the voters joins as a Raft standby and applies the same map; a barrier on
// the leader completes (the lease rule's building block), on a follower it is refused.
TEST_F(ClusterMetaUv, AStandbyJoinsAndAppliesTheMap) {
  ASSERT_TRUE(ProposeOnLeader(Bootstrap{4, 2}));
  ASSERT_TRUE(ProposeOnLeader(AddMember{4, 1, {"e", "f", ""}}));
  int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  std::string address = "127.0.0.1:" + std::to_string(port);
  groups_.resize(4);
  StartMember(3, 4, address, {});  // not bootstrapped: waits to be added
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        int l = Leader();
        if (l < 0) return false;
        auto r = Get(groups_[l]->AddStandby(4, address), 10s);
        return r && r->ok();
      },
      15s));
  ASSERT_TRUE(ProposeOnLeader(SetLeaving{4}));
  ASSERT_TRUE(AllApplied(3));
  auto s = Get(groups_[3]->Status());
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->is_leader);
  ASSERT_NE(s->map.FindMember(4), nullptr);
  EXPECT_EQ(s->map.FindMember(4)->state, MemberState::kLeaving);

  int l = Leader();
  ASSERT_GE(l, 0);
  auto b = Get(groups_[l]->Barrier());
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->ok());
  b = Get(groups_[3]->Barrier());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->error(), make_error_code(Errc::kNotLeader));
}

// The controller on the leader (ControllerLoop): bootstraps, adds heartbeating members, places
// partitions, grows in_sync from reports, grants leases after a barrier, declares a silent
// member dead and promotes in-sync backups (lineage kept), and refuses a lease to the dead one.
class ClusterControllerUv : public ClusterMetaUv {
 protected:
  void SetUp() override {
    run_controller_ = true;
    ClusterMetaUv::SetUp();
  }

  // One round: every member in `alive` heartbeats to every group (the leader answers with a
  // lease), then every primary of the leader's map reports its alive backups caught up.
  // Returns the leader's map, if a leader answered.
  std::optional<ClusterMap> Round(const std::set<MemberId>& alive) {
    for (MemberId m : alive) {
      for (auto& g : groups_) {
        auto lease = Get(g->SendHeartbeat(Heartbeat{m, 1, {"chp", "api", ""}, false}), 2s);
        if (lease && lease->ok()) last_lease_ = **lease;
      }
    }
    int l = Leader();
    if (l < 0) return std::nullopt;
    auto s = Get(groups_[l]->Status());
    if (!s) return std::nullopt;
    for (const Partition& p : s->map.partitions()) {
      if (p.primary == 0 || !alive.count(p.primary)) continue;
      ReplicaReport rep{p.id, p.primary, p.epoch, p.version, {}, {}, true};
      for (MemberId r : p.replicas) {
        if (r != p.primary && alive.count(r)) rep.caught_up.push_back(r);
      }
      groups_[l]->SendReport(rep);
    }
    return s->map;
  }

  Lease last_lease_;
};

TEST_F(ClusterControllerUv, PlacesPartitionsThenFailsOverASilentMember) {
  auto placed = [](const ClusterMap& map, const std::set<MemberId>& alive) {
    if (!map.bootstrapped()) return false;
    for (MemberId m : alive) {
      const Member* mem = map.FindMember(m);
      if (mem == nullptr || mem->state != MemberState::kAlive) return false;
    }
    for (const Partition& p : map.partitions()) {
      if (!alive.count(p.primary) || p.in_sync.size() != 2) return false;
    }
    return true;
  };
  std::optional<ClusterMap> map;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        map = Round({1, 2, 3});
        return map && placed(*map, {1, 2, 3});
      },
      20s))
      << (map ? ::testing::PrintToString(*map) : "no leader");
  EXPECT_EQ(last_lease_.duration_ms, 500);
  EXPECT_GT(last_lease_.min_entries, 0u);
  std::map<PartitionId, Partition> before;
  size_t primaries_of_3 = 0;
  for (const Partition& p : map->partitions()) {
    before[p.id] = p;
    primaries_of_3 += p.primary == 3;
  }
  ASSERT_GT(primaries_of_3, 0u) << "the failover below must move primaries";

  // Member 3 falls silent: dead after 1.5 s, its partitions promoted, history kept.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        map = Round({1, 2});
        return map && map->FindMember(3)->state == MemberState::kDead && placed(*map, {1, 2});
      },
      20s))
      << (map ? ::testing::PrintToString(*map) : "no leader");
  for (const Partition& p : map->partitions()) {
    EXPECT_EQ(p.lineage, before[p.id].lineage) << "promoted, not placed afresh: " << p;
    if (before[p.id].primary == 3) {
      EXPECT_GT(p.epoch, before[p.id].epoch) << p;
    }
  }
  // The dead incarnation gets no lease (C-24).
  int l = Leader();
  ASSERT_GE(l, 0);
  auto lease = Get(groups_[l]->SendHeartbeat(Heartbeat{3, 1, {}, false}));
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->error(), make_error_code(Errc::kBadState));
}

}  // namespace
}  // namespace chorus::cluster
