// Publications kept in no history across nodes (docs/cluster.md §5 C-12, §16.8), on three real
// chorusd (R = 2). Channels whose primary is node 1: a channel of the default namespace (no
// history, no presence), a `nohist:` channel (presence, no history) and a `chat:` channel
// published with skip_history. Subscribers on node 3; publishes through node 2's server API
// (forwarded to the primary). Node 3 follows the channels of partitions it does not back up
// (interest, C-16) and gets the others from its backup copy: every publication arrives once,
// in order, on both paths. Node 2 holds no subscriber: it delivers nothing and its interest
// follower receives no update (the counters show it).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterEphemeral : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  // A channel `<prefix><stem><i>` whose partition has `primary` and `backup` as its replicas.
  std::string Named(const std::string& prefix, uint64_t primary, uint64_t backup,
                    const std::string& stem) const {
    for (int i = 0;; ++i) {
      const std::string ch = prefix + stem + std::to_string(i);
      const json& p = table_[PartitionOfChannel(ch, kPartitions)];
      if (p["primary"] != primary) continue;
      for (const json& r : p["replicas"]) {
        if (r == backup) return ch;
      }
    }
  }
};

TEST_F(NodeClusterEphemeral, C12_NoHistoryPublicationsReachFollowingNodesOnceInOrder) {
  NodeProcess &b = Node(2), &c = Node(3);
  struct Case {
    std::string channel;
    bool skip_history;
  };
  // Node 3 not a replica (interest) and node 3 the backup (its backup copy), for each kind.
  const std::vector<Case> cases = {
      {Named("", 1, 2, "plain"), false},       {Named("", 1, 3, "plain"), false},
      {Named("nohist:", 1, 2, "pres"), false}, {Named("nohist:", 1, 3, "pres"), false},
      {Named("chat:", 1, 2, "skip"), true},    {Named("chat:", 1, 3, "skip"), true},
  };
  RawSession sub(ctx_, c.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  for (const Case& k : cases) {
    auto r = sub.Call("subscribe", P({{"channel", k.channel}}));
    ASSERT_TRUE(r && r->Has("result")) << k.channel << ": " << ErrorCode(r);
  }
  // Node 3 follows the three channels it does not back up on their primary, and its backup
  // copy of node 1 is live.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        return MetricValue(c, "chorus_cluster_followed_live") == 3 &&
               MetricValue(c, "chorus_cluster_backup_primaries") >= 1;
      },
      15s));
  // The followers receive only what is written after their follow is live: a first
  // publication per channel is retried until node 3 delivers it (the stream starts there).
  std::map<std::string, int> start;
  for (const Case& k : cases) {
    ASSERT_TRUE(EventuallyTrue(
        [&] {
          json body = {{"channel", k.channel}, {"data", {{"probe", 1}}}};
          if (k.skip_history) body["skip_history"] = true;
          if (ResultOf(Api(b, "publish", body.dump())).is_null()) return false;
          return sub.Push("pub", k.channel, 200ms).has_value();
        },
        15s))
        << k.channel;
  }
  while (sub.Push("pub", "", 300ms)) {
  }
  const int64_t b_delivered = MetricValue(b, "chorus_cluster_remote_delivered_total");
  const int64_t b_updates = MetricValue(b, "chorus_cluster_updates_received_total");
  const int64_t c_delivered = MetricValue(c, "chorus_cluster_remote_delivered_total");
  constexpr int kCount = 40;
  for (int i = 1; i <= kCount; ++i) {
    for (const Case& k : cases) {
      json body = {{"channel", k.channel}, {"data", {{"n", i}}}};
      if (k.skip_history) body["skip_history"] = true;
      json r = ResultOf(Api(b, "publish", body.dump()));
      ASSERT_FALSE(r.is_null()) << k.channel << " publish " << i;
      EXPECT_EQ(r.value("offset", 0), 0) << "kept in no history";
    }
  }
  std::map<std::string, std::vector<int>> got;
  for (int n = 0; n < kCount * static_cast<int>(cases.size()); ++n) {
    auto f = sub.Push("pub", "", 10s);
    ASSERT_TRUE(f) << "missing publications after " << n;
    json d = json::parse(f->Str("data.data"), nullptr, false);
    ASSERT_TRUE(d.is_object() && d.contains("n")) << f->Str("data.data");
    got[f->Str("channel")].push_back(d["n"].get<int>());
  }
  EXPECT_TRUE(sub.Call("ping"));
  EXPECT_FALSE(sub.Push("pub", "", 300ms)) << "a publication was delivered twice";
  std::vector<int> want;
  for (int i = 1; i <= kCount; ++i) want.push_back(i);
  for (const Case& k : cases) EXPECT_EQ(got[k.channel], want) << k.channel;
  EXPECT_EQ(MetricValue(c, "chorus_cluster_remote_delivered_total") - c_delivered,
            kCount * static_cast<int64_t>(cases.size()));
  // The uninterested node: nothing delivered, no update received for followed channels.
  EXPECT_EQ(MetricValue(b, "chorus_cluster_remote_delivered_total"), b_delivered);
  EXPECT_EQ(b_delivered, 0);
  EXPECT_EQ(MetricValue(b, "chorus_cluster_updates_received_total"), b_updates);
  EXPECT_EQ(b_updates, 0);
  EXPECT_GE(MetricValue(Node(1), "chorus_cluster_ephemeral_mirrored_total"),
            kCount * static_cast<int64_t>(cases.size()));
}

}  // namespace
}  // namespace chorus::testing
