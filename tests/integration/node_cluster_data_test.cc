// The data plane's first slice (docs/cluster.md §5, §8; issue 12 test 1, first half) on three
// real chorusd forming one cluster map (the harness of node_cluster_test.cc):
//  - C-6 / C-7: a publish through the server API or a native client on B, for a channel whose
//    partition primary is A, is forwarded to A; A alone assigns offsets and keeps the channel
//    epoch; B answers with A's offset and epoch and holds nothing of the channel itself.
//  - C-16: a subscriber on C gets every publication once, in offset order, from C's copy of the
//    channel followed on A; the uninvolved node received no CHP update at all; C unfollows after
//    its last subscriber leaves.
// The channel's primary is found with the documented hash (C-5, computed here independently of
// the node's code) and the partition table the nodes agree on.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterDataTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

// C-6, C-7: publishes on B (API and native client) for a channel of A are answered with A's
// offsets and epoch; A's history holds them in order; B holds nothing of the channel.
TEST_F(NodeClusterDataTest, C6_C7_PublishOnAnyNodeIsForwardedToThePrimary) {
  // B (2) is not a replica of the channel's partition: it keeps no backup copy (C-16).
  const std::string ch = ChannelWithReplicas(1, 3, "fwd");
  NodeProcess &a = Node(1), &b = Node(2);
  std::string epoch;
  for (uint64_t i = 1; i <= 5; ++i) {
    json r = ResultOf(Api(b, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(r.is_null()) << "publish " << i;
    EXPECT_EQ(r["offset"].get<uint64_t>(), i);
    if (epoch.empty()) epoch = r["epoch"].get<std::string>();
    EXPECT_EQ(r["epoch"], epoch);
  }
  ASSERT_FALSE(epoch.empty());
  // A native client on B publishes too: offset 6 of the same line.
  RawSession s(ctx_, b.native());
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  auto p = s.Call("publish", P({{"channel", ch}, {"data", "{\"n\":6}"}}));
  ASSERT_TRUE(p && p->Has("result")) << ErrorCode(p);
  EXPECT_EQ(p->Uint("result.offset"), 6u);
  EXPECT_EQ(p->Str("result.epoch"), epoch);
  // The primary continues the same line for its own publishes.
  json own = ResultOf(Api(a, "publish", json{{"channel", ch}, {"data", {{"n", 7}}}}.dump()));
  ASSERT_FALSE(own.is_null());
  EXPECT_EQ(own["offset"], 7);
  EXPECT_EQ(own["epoch"], epoch);

  json ha = ResultOf(Api(a, "history", json{{"channel", ch}, {"limit", -1}}.dump()));
  ASSERT_FALSE(ha.is_null());
  EXPECT_EQ(ha["epoch"], epoch);
  ASSERT_EQ(ha["publications"].size(), 7u);
  for (uint64_t i = 0; i < 7; ++i) {
    EXPECT_EQ(ha["publications"][i]["offset"], i + 1);
    EXPECT_EQ(ha["publications"][i]["data"]["n"], i + 1);
  }
  // B kept nothing: no local line of its own for the channel.
  json hb = ResultOf(Api(b, "history", json{{"channel", ch}, {"limit", -1}}.dump()));
  ASSERT_FALSE(hb.is_null());
  EXPECT_EQ(hb["publications"].size(), 0u);
  EXPECT_NE(hb.value("epoch", ""), epoch);
  EXPECT_EQ(Metric(b, "chorus_cluster_pub_forwarded_total"), 6);
  EXPECT_EQ(Metric(a, "chorus_cluster_pub_served_total"), 6);
  EXPECT_EQ(Metric(a, "chorus_cluster_pub_forwarded_total"), 0);
}

// The peer wire (docs/cluster.md §16), raw msgpack built here: a node that is not the
// partition's primary answers kNotPrimary naming the primary (C-6); the primary refuses a
// request at an older partition epoch with kStaleEpoch (C-13) and publishes one at its epoch;
// a malformed frame gets no answer and the node keeps serving.
TEST_F(NodeClusterDataTest, C6_C13_PeerRequestsAreCheckedAgainstTheMap) {
  const std::string ch = ChannelWithPrimary(1, "wire");
  const uint32_t part = PartitionOfChannel(ch, kPartitions);
  const uint64_t epoch = table_[part]["epoch"].get<uint64_t>();
  ASSERT_GE(epoch, 1u);
  json c = ResultOf(Api(Node(1), "cluster", "{}"));
  ASSERT_FALSE(c.is_null());
  std::map<uint64_t, std::string> peer;  // member -> its `api` endpoint (the peer ROUTER)
  for (const json& m : c["members"]) {
    peer[m["id"].get<uint64_t>()] = m["endpoints"]["api"].get<std::string>();
  }
  auto request = [&](uint64_t id, uint64_t with_epoch, uint32_t partition) {
    return Pack()
        .Array(10)
        .U(1)
        .U(id)
        .U(partition)
        .U(with_epoch)
        .U(9)
        .Str(ch)
        .Str(R"({"w":1})")
        .Nil()
        .Map(0)
        .Bool(false)
        .str();
  };
  // The reply as [kind, id, status, error, offset, epoch, primary, partition_epoch].
  auto ask = [&](uint64_t member, const std::string& body) -> std::optional<Frame> {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.connect(peer[member]);
    d.send(zmq::buffer(body));
    zmq::pollitem_t item{d.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(3000)) <= 0) return std::nullopt;
    zmq::message_t m;
    (void)d.recv(m);
    return Frame{msgpack::unpack(static_cast<const char*>(m.data()), m.size())};
  };
  auto field = [](const Frame& f, uint32_t i) { return f.root().via.array.ptr[i]; };

  auto not_primary = ask(2, request(11, epoch, part));
  ASSERT_TRUE(not_primary);
  ASSERT_EQ(not_primary->root().via.array.size, 8u);
  EXPECT_EQ(field(*not_primary, 1).as<uint64_t>(), 11u);
  EXPECT_EQ(field(*not_primary, 2).as<uint32_t>(), 1u);  // kNotPrimary
  EXPECT_EQ(field(*not_primary, 6).as<uint64_t>(), 1u);  // the primary
  EXPECT_EQ(field(*not_primary, 7).as<uint64_t>(), epoch);

  auto stale = ask(1, request(12, epoch - 1, part));
  ASSERT_TRUE(stale);
  EXPECT_EQ(field(*stale, 2).as<uint32_t>(), 2u);  // kStaleEpoch
  EXPECT_EQ(field(*stale, 7).as<uint64_t>(), epoch);

  EXPECT_FALSE(ask(1, "\x93\x01\x02"));  // not a request: dropped, no answer
  auto wrong_part = ask(1, request(13, epoch, (part + 1) % kPartitions));
  ASSERT_TRUE(wrong_part);
  EXPECT_EQ(field(*wrong_part, 2).as<uint32_t>(), 3u);    // kError
  EXPECT_EQ(field(*wrong_part, 3).as<uint32_t>(), 107u);  // bad request

  auto ok = ask(1, request(14, epoch, part));
  ASSERT_TRUE(ok);
  EXPECT_EQ(field(*ok, 2).as<uint32_t>(), 0u);
  EXPECT_EQ(field(*ok, 4).as<uint64_t>(), 1u);  // the first offset of the channel
  json h = ResultOf(Api(Node(1), "history", json{{"channel", ch}, {"limit", -1}}.dump()));
  ASSERT_FALSE(h.is_null());
  EXPECT_EQ(h["epoch"], field(*ok, 5).as<std::string>());
  ASSERT_EQ(h["publications"].size(), 1u);
  EXPECT_EQ(h["publications"][0]["data"]["w"], 1);
}

// C-6 for `broadcast`: one request on B for channels of A, B and C; each is published by its
// own primary and the responses come back in the order of `channels`.
TEST_F(NodeClusterDataTest, C6_BroadcastReachesEachChannelsPrimary) {
  const std::vector<std::string> chans = {ChannelWithPrimary(1, "ba"), ChannelWithPrimary(2, "bb"),
                                          ChannelWithPrimary(3, "bc")};
  NodeProcess& b = Node(2);
  for (uint64_t round = 1; round <= 2; ++round) {
    json r =
        ResultOf(Api(b, "broadcast", json{{"channels", chans}, {"data", {{"r", round}}}}.dump()));
    ASSERT_FALSE(r.is_null());
    ASSERT_EQ(r["responses"].size(), 3u) << r.dump();
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(r["responses"][i].contains("result")) << r.dump();
      EXPECT_EQ(r["responses"][i]["result"]["offset"], round) << r.dump();
    }
  }
  // Each line lives on its primary only.
  for (size_t i = 0; i < 3; ++i) {
    json h =
        ResultOf(Api(Node(i + 1), "history", json{{"channel", chans[i]}, {"limit", -1}}.dump()));
    ASSERT_FALSE(h.is_null());
    EXPECT_EQ(h["publications"].size(), 2u) << chans[i];
  }
  EXPECT_EQ(Metric(b, "chorus_cluster_pub_forwarded_total"), 4);
}

// C-16 (issue 12 test 1, first half): the publisher's node B forwards to A; the subscriber on
// C gets offsets 1..N once each, in order, and C's copy has A's epoch; B received nothing.
TEST_F(NodeClusterDataTest, C16_SubscriberOnAThirdNodeGetsEveryOffsetOnceInOrder) {
  // C (3) is not a replica of the partition: it follows the channel for its subscriber only.
  const std::string ch = ChannelWithReplicas(1, 2, "live");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  RawSession sub(ctx_, c.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  auto r = sub.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  // C follows the channel on A once its copy is live (snapshot applied).
  ASSERT_TRUE(EventuallyTrue([&] { return Metric(c, "chorus_cluster_followed_live") == 1; }, 10s));
  EXPECT_EQ(Metric(c, "chorus_cluster_followed_channels"), 1);

  constexpr uint64_t kCount = 50;
  std::string epoch;
  for (uint64_t i = 1; i <= kCount; ++i) {
    json p = ResultOf(Api(b, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(p.is_null()) << "publish " << i;
    ASSERT_EQ(p["offset"].get<uint64_t>(), i);
    if (epoch.empty()) epoch = p["epoch"].get<std::string>();
    ASSERT_EQ(p["epoch"], epoch);
  }
  for (uint64_t i = 1; i <= kCount; ++i) {
    auto f = sub.Push("pub", ch);
    ASSERT_TRUE(f) << "publication " << i << " not delivered";
    ASSERT_EQ(f->Uint("data.offset"), i);
  }
  EXPECT_TRUE(sub.Call("ping"));
  EXPECT_FALSE(sub.Push("pub", ch, 300ms)) << "a publication was delivered twice";
  // C's copy is the primary's line: same epoch, same offsets.
  auto h = sub.Call("history", P({{"channel", ch}, {"limit", -1}}));
  ASSERT_TRUE(h && h->Has("result")) << ErrorCode(h);
  EXPECT_EQ(h->Str("result.epoch"), epoch);
  EXPECT_EQ(h->Uint("result.offset"), kCount);
  EXPECT_EQ(Metric(c, "chorus_cluster_remote_delivered_total"), kCount);
  EXPECT_EQ(Metric(c, "chorus_cluster_remote_gaps_total"), 0);
  EXPECT_GE(Metric(c, "chorus_cluster_updates_received_total"), 2 * kCount);  // h/ and top
  // B (publisher's node, no subscriber) and A (the primary) followed nothing, received nothing.
  EXPECT_EQ(Metric(b, "chorus_cluster_updates_received_total"), 0);
  EXPECT_EQ(Metric(b, "chorus_cluster_followed_channels"), 0);
  EXPECT_EQ(Metric(a, "chorus_cluster_updates_received_total"), 0);

  // The last local subscriber leaves: C unfollows.
  auto u = sub.Call("unsubscribe", P({{"channel", ch}}));
  ASSERT_TRUE(u && !u->Has("error")) << ErrorCode(u);
  EXPECT_TRUE(EventuallyTrue([&] { return Metric(c, "chorus_cluster_followed_channels") == 0; }));
  EXPECT_EQ(Metric(c, "chorus_cluster_followed_live"), 0);
}

}  // namespace
}  // namespace chorus::testing
