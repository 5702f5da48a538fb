// Issue 12 test 4, the zombie (docs/cluster.md C-15, C-24, §16.3): a primary SIGSTOPped past the
// dead timeout while publishing goes on through another node, then SIGCONT. Three real chorusd
// with short timings (heartbeat 100 ms, dead after 600 ms), R = 2. Checked: the channel's
// history stays one line (one epoch, offsets contiguous, one payload per offset across every
// acknowledgement and every node's history); the zombie rejoins with a new incarnation and, as
// a backup, is back in partitions' replicas and in their in_sync once it caught up (C-11), its
// copy holding what its primary commits; nothing it accepts conflicts: a publish sent to it while
// it was stopped (served when it runs again, possibly on its stale map) is either refused or
// acknowledged on the one line, and publishes through it afterwards continue the line.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "msgpack_pack.h"
#include "node_cluster_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterZombie : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      nodes_[i]->process().Signal(SIGCONT);
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }

  json MemberOn(NodeProcess& on, uint64_t id) {
    json c = ResultOf(Api(on, "cluster", "{}"));
    if (c.is_null()) return nullptr;
    for (const json& m : c["members"]) {
      if (m["id"] == id) return m;
    }
    return nullptr;
  }

  json Publish(NodeProcess& via, const std::string& ch, uint64_t n) {
    return ResultOf(Api(via, "publish", json{{"channel", ch}, {"data", {{"n", n}}}}.dump()));
  }

  // Every publication of `ch` in `on`'s history: offset -> data; `epoch` set.
  std::map<uint64_t, std::string> HistoryOn(NodeProcess& on, const std::string& ch,
                                            std::string* epoch) {
    std::map<uint64_t, std::string> out;
    json h = ResultOf(Api(on, "history", json{{"channel", ch}, {"limit", -1}}.dump()));
    if (h.is_null()) return out;
    if (epoch != nullptr) *epoch = h["epoch"].get<std::string>();
    for (const json& p : h["publications"]) out[p["offset"].get<uint64_t>()] = p["data"].dump();
    return out;
  }
};

TEST_F(NodeClusterZombie, C24_AStoppedPrimaryRejoinsAsABackupAndNothingItAcceptsConflicts) {
  const std::string ch = ChannelWithPrimary(1, "zombie");
  uint64_t backup = 0;
  for (const json& r : table_[PartitionOfChannel(ch, kPartitions)]["replicas"]) {
    if (r.get<uint64_t>() != 1) backup = r.get<uint64_t>();
  }
  ASSERT_NE(backup, 0u);
  const uint64_t other = 5 - backup;
  NodeProcess &a = Node(1), &b = Node(backup), &y = Node(other);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(a, ch), backup); }, 10s))
      << "member " << backup << " never joined in_sync (C-11)";
  const json a_before = MemberOn(y, 1);
  ASSERT_FALSE(a_before.is_null());

  // Acknowledged publications: offset -> payload, one epoch. A conflict (one offset, two
  // payloads) or a second epoch fails here.
  std::mutex mu;
  std::map<uint64_t, std::string> acked;
  std::string epoch;
  auto record = [&](const json& r, uint64_t n, const std::string& who) {
    std::lock_guard<std::mutex> l(mu);
    const uint64_t offset = r["offset"].get<uint64_t>();
    const std::string data = json{{"n", n}}.dump();
    if (epoch.empty()) epoch = r["epoch"].get<std::string>();
    EXPECT_EQ(r["epoch"], epoch) << who << ": offset " << offset << " on another line";
    auto [it, fresh] = acked.emplace(offset, data);
    EXPECT_TRUE(fresh) << who << ": offset " << offset << " acknowledged twice (" << it->second
                       << ", " << data << ")";
  };
  for (uint64_t n = 1; n <= 10; ++n) {
    json r = Publish(a, ch, n);
    ASSERT_FALSE(r.is_null());
    record(r, n, "A");
  }

  // Publishing through Y at about 100/s (114 answers are not acknowledged).
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> n_next{1000};
  std::thread publisher([&] {
    while (!stop) {
      const uint64_t n = n_next++;
      json r = Publish(y, ch, n);
      if (!r.is_null()) record(r, n, "Y");
      std::this_thread::sleep_for(10ms);  // the rate, not a synchronisation
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, publisher};
  auto count = [&] {
    std::lock_guard<std::mutex> l(mu);
    return acked.size();
  };
  ASSERT_TRUE(EventuallyTrue([&] { return count() >= 20; }, 20s));

  a.process().Signal(SIGSTOP);
  // A publish sent to the zombie while it is stopped: served when it runs again.
  std::thread to_zombie;
  json zombie_answer;
  to_zombie = std::thread([&] { zombie_answer = Publish(a, ch, 999); });
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json p = PartitionOn(y, ch);
        return !p.is_null() && p["primary"] == backup;
      },
      15s))
      << "no promotion of member " << backup;
  const size_t at_promotion = count();
  ASSERT_TRUE(EventuallyTrue([&] { return count() >= at_promotion + 20; }, 20s))
      << "publishing through Y does not go on after the promotion";

  a.process().Signal(SIGCONT);
  to_zombie.join();
  if (!zombie_answer.is_null()) record(zombie_answer, 999, "the zombie (sent while stopped)");
  // C-24: it rejoins with a new incarnation.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json m = MemberOn(y, 1);
        return !m.is_null() && m["state"] == "alive" &&
               m["incarnation"].get<uint64_t>() > a_before["incarnation"].get<uint64_t>();
      },
      15s))
      << "member 1 was not re-added with a new incarnation";
  // Publishes through the zombie continue the line (forwarded to the new primary).
  for (uint64_t n = 2000; n < 2005; ++n) {
    json r;
    ASSERT_TRUE(EventuallyTrue([&] { return !(r = Publish(a, ch, n)).is_null(); }, 10s));
    record(r, n, "A after SIGCONT");
  }
  EXPECT_GE(Metric(a, "chorus_cluster_pub_forwarded_total"), 1);

  // It rejoins as a backup: in some partition's replicas and in its in_sync once caught up
  // (C-11); the controller may then move partitions back to it by handoff (C-19), which needs
  // it in in_sync first. Every partition that holds it gets it in sync.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json c = ResultOf(Api(y, "cluster", "{}"));
        if (c.is_null()) return false;
        size_t as_backup = 0;
        for (const json& p : c["partitions"]) {
          // Primary again only by a handoff, which needs it in in_sync first (C-19): counted.
          bool replica = false;
          for (const json& r : p["replicas"]) replica = replica || r == 1;
          if (!replica) continue;
          if (!InSync(p, 1)) return false;
          ++as_backup;
        }
        return as_backup > 0;
      },
      30s))
      << "member 1 is not back as an in-sync backup";
  stop = true;
  publisher.join();

  // One line: the new primary's history is contiguous, one epoch, and holds every
  // acknowledged publication with its payload (all of them fit the 100-entry window here, or
  // the oldest are checked against what is left).
  std::map<uint64_t, std::string> all;
  {
    std::lock_guard<std::mutex> l(mu);
    all = acked;
  }
  ASSERT_FALSE(all.empty());
  const uint64_t last = all.rbegin()->first;
  std::string e_b;
  const std::map<uint64_t, std::string> hb = HistoryOn(b, ch, &e_b);
  EXPECT_EQ(e_b, epoch);
  ASSERT_FALSE(hb.empty());
  EXPECT_EQ(hb.rbegin()->first, last);
  EXPECT_EQ(hb.size(), last - hb.begin()->first + 1) << "a hole in the new primary's history";
  for (const auto& [offset, data] : all) {
    if (offset < hb.begin()->first) continue;  // out of the history window
    auto it = hb.find(offset);
    ASSERT_TRUE(it != hb.end()) << "acknowledged offset " << offset << " lost";
    EXPECT_EQ(it->second, data) << "offset " << offset << " has two payloads";
  }
  // The zombie's own view of the channel is the same line: no publication of its own.
  std::string e_a;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        const std::map<uint64_t, std::string> ha = HistoryOn(a, ch, &e_a);
        return ha.empty() || (e_a == epoch && ha.rbegin()->first == last);
      },
      10s));
  for (const auto& [offset, data] : HistoryOn(a, ch, &e_a)) {
    auto it = hb.find(offset);
    if (it != hb.end()) {
      EXPECT_EQ(data, it->second) << "the zombie holds another offset " << offset;
    }
  }

  // Its backup copy holds what its primary commits: a channel of a partition it backs up now.
  json c = ResultOf(Api(y, "cluster", "{}"));
  ASSERT_FALSE(c.is_null());
  std::string backed;
  for (int i = 0; backed.empty() && i < 100'000; ++i) {
    const std::string cand = "chat:backed" + std::to_string(i);
    const json& p = c["partitions"][PartitionOfChannel(cand, kPartitions)];
    if (p["primary"] != 1 && InSync(p, 1)) backed = cand;
  }
  ASSERT_FALSE(backed.empty());
  for (uint64_t n = 1; n <= 5; ++n) ASSERT_FALSE(Publish(y, backed, n).is_null());
  std::map<uint64_t, std::string> copy;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        copy = HistoryOn(a, backed, nullptr);
        return copy.size() == 5;
      },
      10s))
      << "the rejoined backup's copy of " << backed << " holds " << copy.size();
  EXPECT_EQ(copy.begin()->first, 1u);
  EXPECT_EQ(copy.rbegin()->first, 5u);
}

// C-13 for replication: a backup refuses (does not apply, does not acknowledge) a primary's
// records at a partition epoch older than its map's, and counts them. What a zombie primary
// writes after the map moved on is provoked directly: a `top` record of the channel's subtree at
// partition epoch 0 (the map's is 1 or more), written into the primary's CHP server with a CHP
// KVSET (docs/protocol/chp.md), claiming 50 publications the backup never received. Accepted, it
// would move the copy (a re-sync, or before this branch a jump that acknowledged offset 50).
TEST_F(NodeClusterZombie, C13_ABackupRefusesReplicationAtAnOlderPartitionEpoch) {
  const std::string ch = ChannelWithPrimary(1, "fence");
  uint64_t backup = 0;
  for (const json& r : table_[PartitionOfChannel(ch, kPartitions)]["replicas"]) {
    if (r.get<uint64_t>() != 1) backup = r.get<uint64_t>();
  }
  ASSERT_NE(backup, 0u);
  NodeProcess &a = Node(1), &b = Node(backup);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(a, ch), backup); }, 10s));
  std::string epoch;
  for (uint64_t n = 1; n <= 3; ++n) {
    json r = Publish(a, ch, n);
    ASSERT_FALSE(r.is_null());
    epoch = r["epoch"].get<std::string>();
  }
  // Acknowledged, so the backup holds 1..3 (C-8).
  std::string e_b;
  // Its history shows them once the commit position reaches it there (§16.7).
  ASSERT_TRUE(EventuallyTrue([&] { return HistoryOn(b, ch, &e_b).size() == 3u; }, 5s));
  const int64_t refused_before = Metric(b, "chorus_cluster_backup_refused_total");
  const int64_t resyncs_before = Metric(b, "chorus_cluster_backup_resyncs_total");
  ASSERT_GE(refused_before, 0);
  ASSERT_GE(resyncs_before, 0);

  zmq::socket_t d(ctx_, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.connect(a.chp_command());
  const std::string top =
      Pack().Map(4).Str("n").Str(ch).Str("e").Str(epoch).Str("o").U(50).Str("p").U(0).str();
  const std::string uuid(16, '\x5a');
  const std::string kvset = Pack()
                                .Array(6)
                                .U(7)  // KVSET
                                .Bin(uuid)
                                .Str("c." + ch + "/top")
                                .U(0)  // set
                                .Bin(top)
                                .U(0)
                                .str();
  d.send(zmq::buffer(kvset), zmq::send_flags::none);
  zmq::pollitem_t item{d.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(5000)), 1) << "no KVACK";
  zmq::message_t ack;
  ASSERT_TRUE(d.recv(ack));

  ASSERT_TRUE(EventuallyTrue(
      [&] { return Metric(b, "chorus_cluster_backup_refused_total") > refused_before; }, 10s))
      << "the backup did not refuse the record at partition epoch 0 (C-13)";
  EXPECT_EQ(Metric(b, "chorus_cluster_backup_resyncs_total"), resyncs_before)
      << "the refused record moved the copy";
  const std::map<uint64_t, std::string> hb = HistoryOn(b, ch, &e_b);
  EXPECT_EQ(e_b, epoch);
  ASSERT_FALSE(hb.empty());
  EXPECT_EQ(hb.rbegin()->first, 3u) << "the refused top was applied";
  // The primary's own next publication (at its current partition epoch) is applied as usual:
  // acknowledged, so the backup holds it.
  json r = Publish(a, ch, 4);
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["offset"], 4);
  EXPECT_EQ(HistoryOn(b, ch, &e_b).rbegin()->first, 4u);
}

}  // namespace
}  // namespace chorus::testing
