// Recovery anywhere (docs/cluster.md §8, C-17), on three real chorusd: a subscriber on a node
// that follows nothing yet subscribes with recovery from (epoch, offset P) while publications
// keep coming (published through a third node, forwarded to the primary). The node holds the
// subscribe until its copy of the channel is live, then answers from the copy: the recovered
// publications and the live ones together are exactly P+1..N, in order, each once (no gap and
// no duplicate at the switch from recovery to live); publishing stops only after the
// subscriber has received live publications, so the switch happens while it goes on.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterRecoveryTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

TEST_F(NodeClusterRecoveryTest, C17_RecoverOnAFreshNodeDuringPublishingNoGapNoDuplicate) {
  // B (2) is not a replica of the partition: it has no backup copy and follows nothing yet.
  const std::string ch = ChannelWithReplicas(1, 3, "rec");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  constexpr uint64_t kBefore = 20, kMax = 5000, kLive = 10;
  std::string epoch;
  for (uint64_t i = 1; i <= kBefore; ++i) {
    json r = ResultOf(Api(a, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(r.is_null());
    ASSERT_EQ(r["offset"], i);
    epoch = r["epoch"].get<std::string>();
  }
  // Publishing goes on through C (forwarded to A) while B's subscriber recovers, until the
  // subscriber has seen kLive live publications (so the switch happens mid-stream).
  std::atomic<uint64_t> published{kBefore};
  std::atomic<bool> failed{false}, stop{false};
  std::thread publisher([&] {
    for (uint64_t i = kBefore + 1; i <= kMax && !stop; ++i) {
      json r = ResultOf(Api(c, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
      if (r.is_null() || r["offset"] != i) {
        failed = true;
        return;
      }
      published = i;
    }
  });
  // Stops and joins the publisher however the test ends (an ASSERT returns early).
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{stop, publisher};
  ASSERT_TRUE(EventuallyTrue([&] { return published.load() >= kBefore + 10 || failed; }, 20s));
  EXPECT_EQ(Metric(b, "chorus_cluster_followed_channels"), 0);  // B follows nothing yet

  RawSession sub(ctx_, b.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  auto r = sub.Call("subscribe",
                    P({{"channel", ch}, {"recover", true}, {"epoch", epoch}, {"offset", kBefore}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_TRUE(r->Bool("result.recovered"));
  EXPECT_EQ(r->Str("result.epoch"), epoch);
  std::vector<uint64_t> got = OffsetsOf(*r, "result.publications");
  const size_t recovered = got.size();
  EXPECT_GE(recovered, 10u);  // kBefore + 10 were published before the subscribe
  if (!got.empty()) {
    EXPECT_EQ(r->Uint("result.offset"), got.back());
  }
  for (uint64_t n = 0; n < kLive; ++n) {
    auto f = sub.Push("pub", ch, 10s);
    if (!f) break;
    got.push_back(f->Uint("data.offset"));
  }
  stop = true;
  publisher.join();
  ASSERT_FALSE(failed.load()) << "a publish through C failed";
  const uint64_t total = published.load();
  ASSERT_LT(total, kMax) << "the subscriber saw no live publication while publishing went on";
  while (got.empty() || got.back() < total) {
    auto f = sub.Push("pub", ch, 10s);
    ASSERT_TRUE(f) << "missing live publication after " << (got.empty() ? 0 : got.back());
    got.push_back(f->Uint("data.offset"));
  }
  EXPECT_TRUE(sub.Call("ping"));
  EXPECT_FALSE(sub.Push("pub", ch, 300ms)) << "a publication was delivered twice";
  std::vector<uint64_t> want;
  for (uint64_t i = kBefore + 1; i <= total; ++i) want.push_back(i);
  EXPECT_EQ(got, want) << recovered << " recovered, then live";
  EXPECT_GT(got.size(), recovered + kLive - 1);
  EXPECT_EQ(Metric(b, "chorus_cluster_followed_channels"), 1);
}

// C-17, a channel not created yet on its primary: a subscribe on another node (an interest
// follower, and the partition's backup) is answered with the primary's epoch, so a publication
// made later continues that line and a recovery from the subscribe's position is exact
// (recovered: true), instead of this node's own epoch that the primary's would replace.
TEST_F(NodeClusterRecoveryTest, C17_AChannelNotCreatedYetIsAnsweredWithThePrimarysEpoch) {
  const std::string ch = ChannelWithReplicas(1, 3, "fresh");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  RawSession on_b(ctx_, b.native(), 10'000), on_c(ctx_, c.native(), 10'000);
  ASSERT_FALSE(ConnectAs(on_b, "sb").empty());
  ASSERT_FALSE(ConnectAs(on_c, "sc").empty());
  auto rb = on_b.Call("subscribe", P({{"channel", ch}}));  // B: interest follower
  ASSERT_TRUE(rb && rb->Has("result")) << ErrorCode(rb);
  auto rc = on_c.Call("subscribe", P({{"channel", ch}}));  // C: the partition's backup
  ASSERT_TRUE(rc && rc->Has("result")) << ErrorCode(rc);
  json h = ResultOf(Api(a, "history", json{{"channel", ch}, {"limit", 0}}.dump()));
  ASSERT_FALSE(h.is_null());
  const std::string epoch = h["epoch"].get<std::string>();
  EXPECT_FALSE(epoch.empty()) << "the primary did not open the channel";
  EXPECT_EQ(rb->Str("result.epoch"), epoch);
  EXPECT_EQ(rc->Str("result.epoch"), epoch);
  EXPECT_EQ(rb->Uint("result.offset"), 0u);
  json pub = ResultOf(Api(b, "publish", json{{"channel", ch}, {"data", {{"n", 1}}}}.dump()));
  ASSERT_FALSE(pub.is_null());
  EXPECT_EQ(pub["epoch"], epoch);
  EXPECT_EQ(pub["offset"], 1);
  for (RawSession* s : {&on_b, &on_c}) {
    auto f = s->Push("pub", ch, 10s);
    ASSERT_TRUE(f) << "publication not delivered";
    EXPECT_EQ(f->Uint("data.offset"), 1u);
  }
  // A client that left right after its subscribe recovers from that position exactly.
  RawSession again(ctx_, b.native(), 10'000);
  ASSERT_FALSE(ConnectAs(again, "sa").empty());
  auto rr = again.Call("subscribe",
                       P({{"channel", ch}, {"recover", true}, {"epoch", epoch}, {"offset", 0}}));
  ASSERT_TRUE(rr && rr->Has("result")) << ErrorCode(rr);
  EXPECT_TRUE(rr->Bool("result.recovered"));
  EXPECT_EQ(OffsetsOf(*rr, "result.publications"), (std::vector<uint64_t>{1}));
}

}  // namespace
}  // namespace chorus::testing
