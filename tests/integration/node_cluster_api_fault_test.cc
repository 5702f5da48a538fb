// The cluster-wide server API when a member does not answer (docs/cluster.md §13, C-43, C-44):
// C is stopped with SIGSTOP while the map still lists it alive (dead_after_ms is 8 s here, so
// the calls below all fall in that window); `disconnect` sent to A fails as a whole with 114
// naming member 3, once the fan-out deadline (2 s) has passed and before the gateway's 5 s; the
// action still took effect on the member that answered. In a parallel batch only the command
// that fanned out gets 114; in a sequential one the commands after it are not started past the
// batch's time budget (114 too). Once the map declares C dead, `info` on A answers again with
// the two live nodes.
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

class NodeClusterApiFault : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3, {"cluster.dead_after_ms=8000"}); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  // The answer of a call and how long it took.
  static json Timed(const NodeProcess& node, const std::string& method, const json& body,
                    std::chrono::milliseconds* took) {
    const auto t0 = std::chrono::steady_clock::now();
    HttpResult r = Api(node, method, body.dump());
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  t0);
    EXPECT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? json() : j;
  }
};

TEST_F(NodeClusterApiFault, C43_AMemberThatDoesNotAnswerFailsTheCallWith114) {
  NodeProcess &a = Node(1), &c = Node(3);
  RawSession on_b(ctx_, Node(2).native());
  ASSERT_FALSE(ConnectAs(on_b, "zed").empty());
  // Its backup is B: with C stopped, A's publishes commit on B's acks (C-8) and do not wait.
  const std::string ch_a = ChannelWithReplicas(1, 2, "fa");

  c.process().Signal(SIGSTOP);
  // Sent while A's map still lists C alive (it is declared dead only after dead_after_ms).
  std::chrono::milliseconds took{};
  json r = Timed(a, "disconnect", {{"user", "zed"}}, &took);
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], 114) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("member(s) 3"), std::string::npos)
      << r.dump();
  EXPECT_GE(took, 1800ms) << "answered before the fan-out deadline";
  EXPECT_LT(took, 4500ms) << "answered after the deadline, near the gateway's 5 s";
  // B answered: its session was closed all the same (the error says it may have happened).
  auto push = on_b.Push("disconnect");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 3503u);
  EXPECT_GE(Metric(a, "chorus_cluster_fanout_timeouts_total"), 1);

  // In a parallel batch: the fanned-out command gets 114 in its place; the publishes around it
  // succeed, answered in command order.
  const json commands = {{{"publish", {{"channel", ch_a}, {"data", 1}}}},
                         {{"info", json::object()}},
                         {{"publish", {{"channel", ch_a}, {"data", 2}}}}};
  json batch = Timed(a, "batch", {{"commands", commands}, {"parallel", true}}, &took);
  ASSERT_TRUE(batch.contains("replies")) << batch.dump();
  ASSERT_EQ(batch["replies"].size(), 3u);
  EXPECT_EQ(batch["replies"][0]["publish"]["offset"], 1) << batch.dump();
  EXPECT_EQ(batch["replies"][1]["error"]["code"], 114) << batch.dump();
  EXPECT_EQ(batch["replies"][2]["publish"]["offset"], 2) << batch.dump();
  EXPECT_GE(took, 1800ms);
  EXPECT_LT(took, 4500ms);
  // Sequential: the publish after the silent `info` would start past the batch's time budget
  // (1.5 s): it is not started and gets 114 as well; the one before it was published.
  batch = Timed(a, "batch", {{"commands", commands}}, &took);
  ASSERT_TRUE(batch.contains("replies")) << batch.dump();
  ASSERT_EQ(batch["replies"].size(), 3u);
  EXPECT_EQ(batch["replies"][0]["publish"]["offset"], 3) << batch.dump();
  EXPECT_EQ(batch["replies"][1]["error"]["code"], 114) << batch.dump();
  EXPECT_EQ(batch["replies"][2]["error"]["code"], 114) << batch.dump();
  EXPECT_LT(took, 4500ms);
  json h = ResultOf(Api(a, "history", json{{"channel", ch_a}, {"limit", -1}}.dump()));
  ASSERT_FALSE(h.is_null());
  EXPECT_EQ(h["publications"].size(), 3u) << "the command not started was not published";

  // Once the map declares C dead, C is no longer asked: `info` lists A and B.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json info = ResultOf(Api(a, "info", "{}"));
        return !info.is_null() && info["nodes"].size() == 2;
      },
      30s));
  c.process().Signal(SIGCONT);
  EXPECT_TRUE(c.Stop()) << "unclean shutdown of node 3";
  nodes_[2].reset();
}

}  // namespace
}  // namespace chorus::testing
