// The data path's per-connection limits on a cluster (docs/cluster.md §16.12): a publish whose
// channel's primary is another node is forwarded (C-6) and creates the channel there, never on
// the publishing node, so it must not be charged a channel creation per publish there (the
// cause of cluster_bench's errored publishes: 111 "too many requests" above 1,000/s). Three
// real chorusd, R = 2, `limits.channel_creations_per_second=3`:
//  - 40 publishes from one native session on B to one channel whose primary is A all succeed;
//  - the creation limit still holds for distinct remote channels: a burst of new ones gets 111.
#include <gtest/gtest.h>

#include <string>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;

class NodeClusterRateTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3, {"limits.channel_creations_per_second=3"}); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

TEST_F(NodeClusterRateTest, ForwardedPublishesChargeOneCreationPerChannel) {
  const std::string ch = ChannelWithReplicas(1, 3, "rate");
  RawSession pub(ctx_, Node(2).native(), 10'000);
  ASSERT_FALSE(ConnectAs(pub, "publisher").empty());
  constexpr int kCount = 40;
  for (int i = 1; i <= kCount; ++i) {
    auto r =
        pub.Call("publish", P({{"channel", ch}, {"data", "{\"n\":" + std::to_string(i) + "}"}}));
    ASSERT_TRUE(r && r->Has("result")) << "publish " << i << ": error " << ErrorCode(r);
  }
  // Distinct channels whose primary is another node: each is a creation, 3/s with a burst of 3.
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string other = ChannelWithPrimary(1, "new" + std::to_string(i) + "x");
    auto r = pub.Call("publish", P({{"channel", other}, {"data", "{}"}}));
    ASSERT_TRUE(r);
    if (r->Has("error")) {
      EXPECT_EQ(ErrorCode(r), 111u);
      ++refused;
    }
  }
  EXPECT_GT(refused, 0) << "the channel creation limit no longer applies to remote channels";
}

}  // namespace
}  // namespace chorus::testing
