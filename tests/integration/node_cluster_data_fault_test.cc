// The forwarding path when the primary does not answer (docs/cluster.md §5, C-6; issue 12):
// a publish on B for a channel whose primary A is stopped (SIGSTOP) is answered, once the
// forward timeout (3 s) passes, with the temporary error 114 "unavailable, retry", both through
// the server API and to a native client; once the map has failed A's partitions over, the same
// publish on B succeeds on the new primary (a new line: no in-sync backup existed, §6 step 2).
#include <signal.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterDataFault : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

TEST_F(NodeClusterDataFault, C6_NoAnswerFromThePrimaryIsATemporaryError) {
  const std::string ch = ChannelWithPrimary(1, "stop");
  NodeProcess &a = Node(1), &b = Node(2);
  json first = ResultOf(Api(b, "publish", json{{"channel", ch}, {"data", {{"n", 1}}}}.dump()));
  ASSERT_FALSE(first.is_null());
  ASSERT_EQ(first["offset"], 1);
  const std::string epoch = first["epoch"].get<std::string>();

  RawSession s(ctx_, b.native());
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  a.process().Signal(SIGSTOP);
  // Both sent while B's map still names A (A is declared dead only after dead_after_ms).
  const uint64_t id = s.Send("publish", P({{"channel", ch}, {"data", "{\"n\":2}"}}));
  const auto t0 = std::chrono::steady_clock::now();
  HttpResult r = Api(b, "publish", json{{"channel", ch}, {"data", {{"n", 3}}}}.dump());
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200);
  json j = json::parse(r.body);
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_EQ(j["error"]["code"], 114) << r.body;
  EXPECT_GE(waited, 2500ms);  // the forward timeout, not an early failure
  auto reply = s.Reply(id, 10s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(ErrorCode(reply), 114u);
  EXPECT_GE(Metric(b, "chorus_cluster_forward_timeouts_total"), 2);

  // The map fails A over (it is silent); publishing on B then works against the new primary.
  json after;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json c = ResultOf(Api(b, "cluster", "{}"));
        if (c.is_null()) return false;
        const json& p = c["partitions"][PartitionOfChannel(ch, kPartitions)];
        return p["primary"] != 1 && p["primary"] != 0;
      },
      15s));
  json again = ResultOf(Api(b, "publish", json{{"channel", ch}, {"data", {{"n", 4}}}}.dump()));
  ASSERT_FALSE(again.is_null());
  EXPECT_EQ(again["offset"], 1);  // placed afresh: no in-sync backup held A's line
  EXPECT_NE(again["epoch"], epoch);

  a.process().Signal(SIGCONT);
  EXPECT_TRUE(a.Stop()) << "unclean shutdown of node 1";
  nodes_[0].reset();
}

}  // namespace
}  // namespace chorus::testing
