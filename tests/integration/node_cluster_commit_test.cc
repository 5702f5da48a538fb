// Publish path and commit (docs/cluster.md §5 C-8, C-9, C-11, C-12, C-16; §16.2) on three real
// chorusd forming one cluster with R = 2 and short timings:
//  - C-11: each backup, once it follows its primaries and acknowledges their channels, is
//    reported caught up and enters its partitions' in_sync through the map.
//  - C-8 / C-9: with the backup in sync, a publish (through the server API on a third node, or
//    on the primary) is answered only once the backup applied it: the backup's copy holds the
//    publication when the publisher gets its offset; subscribers on the primary and on the third
//    node (an interested node, C-16) get every offset once, in order.
//  - C-12: a channel without history is published, delivered and answered as before, without
//    waiting for acknowledgements.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterCommitTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  // The top offset of `channel` in `node`'s own copy (server API `history`), -1 on failure.
  int64_t TopOn(NodeProcess& node, const std::string& channel, std::string* epoch = nullptr) {
    json h = ResultOf(Api(node, "history", json{{"channel", channel}, {"limit", 0}}.dump()));
    if (h.is_null() || !h.contains("offset")) return -1;
    if (epoch != nullptr) *epoch = h.value("epoch", "");
    return h["offset"].get<int64_t>();
  }
};

// C-11: every partition's backup enters in_sync once it caught up (reported by the primary).
TEST_F(NodeClusterCommitTest, C11_CaughtUpBackupsEnterInSync) {
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json c = ResultOf(Api(Node(1), "cluster", "{}"));
        if (c.is_null()) return false;
        for (const json& p : c["partitions"]) {
          if (p["in_sync"].size() != 2) return false;
        }
        return true;
      },
      20s));
  for (uint64_t m = 1; m <= 3; ++m) {
    EXPECT_GE(Metric(Node(m), "chorus_cluster_backup_primaries"), 1) << "node " << m;
  }
}

// C-8, C-9: answered after the backup applied; every subscriber sees each offset once, in order.
TEST_F(NodeClusterCommitTest, C8_C9_PublishIsAnsweredOnlyAfterTheBackupApplied) {
  const std::string ch = ChannelWithReplicas(1, 2, "commit");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(a, ch), 2); }, 20s));

  RawSession sub_a(ctx_, a.native(), 10'000), sub_c(ctx_, c.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub_a, "sa").empty());
  ASSERT_FALSE(ConnectAs(sub_c, "sc").empty());
  for (RawSession* s : {&sub_a, &sub_c}) {
    auto r = s->Call("subscribe", P({{"channel", ch}}));
    ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  }
  ASSERT_TRUE(EventuallyTrue([&] { return Metric(c, "chorus_cluster_followed_live") == 1; }, 10s));

  constexpr uint64_t kCount = 40;
  std::string epoch;
  for (uint64_t i = 1; i <= kCount; ++i) {
    // Half through the third node (forwarded, answered after the commit), half on the primary.
    NodeProcess& via = i % 2 == 0 ? a : c;
    json p = ResultOf(Api(via, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(p.is_null()) << "publish " << i;
    ASSERT_EQ(p["offset"].get<uint64_t>(), i);
    if (epoch.empty()) epoch = p["epoch"].get<std::string>();
    // At reply time the backup already applied it (it acked before the commit). Its history
    // shows it once the commit position reaches it there (C-9 for reads, §16.7): the `top`
    // carrying the new commit position follows the reply.
    ASSERT_GE(Metric(b, "chorus_cluster_backup_applied_total"), static_cast<double>(i))
        << "publish " << i;
    std::string backup_epoch;
    ASSERT_TRUE(
        EventuallyTrue([&] { return TopOn(b, ch, &backup_epoch) >= static_cast<int64_t>(i); }, 5s))
        << "publish " << i;
    ASSERT_EQ(backup_epoch, epoch);
  }
  EXPECT_EQ(Metric(a, "chorus_cluster_commit_wait_total"), kCount);
  EXPECT_GE(Metric(b, "chorus_cluster_backup_applied_total"), kCount);
  EXPECT_EQ(Metric(b, "chorus_cluster_backup_refused_total"), 0);
  EXPECT_EQ(Metric(a, "chorus_cluster_commit_timeouts_total"), 0);
  for (RawSession* s : {&sub_a, &sub_c}) {
    for (uint64_t i = 1; i <= kCount; ++i) {
      auto f = s->Push("pub", ch);
      ASSERT_TRUE(f) << "publication " << i << " not delivered";
      ASSERT_EQ(f->Uint("data.offset"), i);
    }
    EXPECT_TRUE(s->Call("ping"));
    EXPECT_FALSE(s->Push("pub", ch, 300ms)) << "a publication was delivered twice";
  }
  EXPECT_EQ(Metric(c, "chorus_cluster_remote_gaps_total"), 0);
  // Nothing waits any more.
  EXPECT_TRUE(EventuallyTrue(
      [&] { return MetricValue(a, "chorus_queue_depth{queue=\"uncommitted\"}") == 0; }));
}

// C-12: no history, no offsets to protect: published at once, delivered, answered offset 0.
TEST_F(NodeClusterCommitTest, C12_ChannelWithoutHistoryIsNotWaitedFor) {
  std::string ch;
  for (int i = 0; ch.empty(); ++i) {
    const std::string cand = "nohist:c12-" + std::to_string(i);
    if (PrimaryOf(cand) == 1) ch = cand;
  }
  NodeProcess& a = Node(1);
  ASSERT_TRUE(EventuallyTrue([&] { return PartitionOn(a, ch)["in_sync"].size() == 2; }, 20s));
  RawSession sub(ctx_, a.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  auto r = sub.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  for (int i = 1; i <= 5; ++i) {
    json p = ResultOf(Api(Node(3), "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(p.is_null()) << "publish " << i;
    EXPECT_EQ(p.value("offset", 0), 0);
    auto f = sub.Push("pub", ch);
    ASSERT_TRUE(f) << "publication " << i << " not delivered";
  }
  EXPECT_EQ(Metric(a, "chorus_cluster_commit_wait_total"), 0);
}

}  // namespace
}  // namespace chorus::testing
