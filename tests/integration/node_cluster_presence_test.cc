// Cluster-wide presence (docs/cluster.md §10, C-21; issue 12) on three real chorusd forming one
// cluster map: a channel's presence lives on its partition primary A. A client on B subscribes:
// B sends the join to A; A's presence, B's followed copy and C's followed copy all list the
// client with B as its node; a subscriber on C gets exactly one join (and one user_join) and,
// once the client leaves, exactly one leave (and one user_leave). A node that holds no copy
// answers `presence` and `presence_stats` by asking the primary. The peer wire is checked with
// hand-built msgpack: an update at an older partition epoch, or from a member the map does not
// hold, changes nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "gateway_ws_client.h"
#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterPresenceTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  // True when `node`'s presence of `channel` is exactly `want` (client -> member).
  static bool PresenceIs(const NodeProcess& node, const std::string& channel,
                         const std::map<std::string, uint64_t>& want) {
    auto got = PresenceOn(node, channel);
    return got && *got == want;
  }
};

// C-21: joins and leaves go to the primary; every node answers the primary's presence; a
// subscriber on a third node gets each join and leave exactly once.
TEST_F(NodeClusterPresenceTest, C21_PresenceBelongsToThePrimaryAndReachesEveryNodeOnce) {
  // B is neither the primary nor the backup (R = 2): it holds no copy unless it follows.
  const std::string ch = ChannelWithReplicas(1, 3, "pres");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);

  RawSession watcher(ctx_, c.native());
  const std::string w = ConnectAs(watcher, "watcher");
  ASSERT_FALSE(w.empty());
  auto r = watcher.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  PresencePushLog wlog;
  // The watcher's own join comes back from the primary through C's copy, once.
  ASSERT_TRUE(EventuallyTrue([&] {
    wlog.Collect(watcher);
    return wlog.Count("join", w) == 1;
  }));
  EXPECT_TRUE(PresenceIs(a, ch, {{w, 3}}));

  RawSession bob(ctx_, b.native());
  const std::string bc = ConnectAs(bob, "bob");
  ASSERT_FALSE(bc.empty());
  r = bob.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);

  const std::map<std::string, uint64_t> both = {{w, 3}, {bc, 2}};
  for (NodeProcess* n : {&a, &b, &c}) {
    EXPECT_TRUE(EventuallyTrue([&] { return PresenceIs(*n, ch, both); }))
        << "presence on " << n->native();
  }
  json st = ResultOf(Api(c, "presence_stats", json{{"channel", ch}}.dump()));
  ASSERT_FALSE(st.is_null());
  EXPECT_EQ(st["num_clients"], 2);
  EXPECT_EQ(st["num_users"], 2);
  // Bob's own session sees its own join once (through its node's copy), and no join for the
  // watcher, who was there before bob subscribed (as Centrifugo).
  PresencePushLog blog;
  ASSERT_TRUE(EventuallyTrue([&] {
    blog.Collect(bob);
    return blog.Count("join", bc) == 1;
  }));
  EXPECT_TRUE(bob.Call("ping"));
  blog.Collect(bob, 300ms);
  EXPECT_EQ(blog.Count("join", bc), 1u) << "its own join pushed twice";
  EXPECT_EQ(blog.Count("join", w), 0u) << "a join for a client present before the subscribe";

  ASSERT_TRUE(EventuallyTrue([&] {
    wlog.Collect(watcher);
    return wlog.Count("join", bc) == 1 && wlog.Count("user_join", bc) == 1;
  }));
  EXPECT_TRUE(watcher.Call("ping"));
  wlog.Collect(watcher, 300ms);
  EXPECT_EQ(wlog.Count("join", bc), 1u) << "a join pushed twice";
  EXPECT_EQ(wlog.Count("user_join", bc), 1u);
  EXPECT_EQ(wlog.Count("join", w), 1u);
  EXPECT_EQ(Metric(b, "chorus_cluster_presence_sent_total"), 1);
  EXPECT_GE(Metric(a, "chorus_cluster_presence_applied_total"), 2);

  // Bob leaves: exactly one leave (and user_leave) on C; every node drops him.
  auto u = bob.Call("unsubscribe", P({{"channel", ch}}));
  ASSERT_TRUE(u && !u->Has("error")) << ErrorCode(u);
  ASSERT_TRUE(EventuallyTrue([&] {
    wlog.Collect(watcher);
    return wlog.Count("leave", bc) == 1 && wlog.Count("user_leave", bc) == 1;
  }));
  for (NodeProcess* n : {&a, &b, &c}) {
    EXPECT_TRUE(EventuallyTrue([&] {
      return PresenceIs(*n, ch, {{w, 3}});
    })) << "presence on "
        << n->native();
  }
  EXPECT_TRUE(watcher.Call("ping"));
  wlog.Collect(watcher, 300ms);
  EXPECT_EQ(wlog.Count("leave", bc), 1u) << "a leave pushed twice";
  EXPECT_EQ(wlog.Count("join", bc), 1u);
  EXPECT_EQ(wlog.Count("leave", w), 0u);

  // B follows nothing now: its answers come from the primary (asked over the peer wire).
  ASSERT_TRUE(EventuallyTrue([&] { return Metric(b, "chorus_cluster_followed_channels") == 0; }));
  const double asked = Metric(b, "chorus_cluster_presence_queries_total");
  EXPECT_TRUE(PresenceIs(b, ch, {{w, 3}}));
  st = ResultOf(Api(b, "presence_stats", json{{"channel", ch}}.dump()));
  ASSERT_FALSE(st.is_null());
  EXPECT_EQ(st["num_clients"], 1);
  EXPECT_EQ(Metric(b, "chorus_cluster_presence_queries_total"), asked + 2);
  // A native client on B asking presence_stats gets the primary's answer too.
  auto ps = bob.Call("presence_stats", P({{"channel", ch}}));
  ASSERT_TRUE(ps && ps->Has("result")) << ErrorCode(ps);
  EXPECT_EQ(ps->Uint("result.num_clients"), 1u);
  auto pr = bob.Call("presence", P({{"channel", ch}}));
  ASSERT_TRUE(pr && pr->Has("result")) << ErrorCode(pr);
  EXPECT_TRUE(pr->Has("result.presence." + w)) << "presence asked of the primary";

  // A WebSocket client on B: the chorus.presence_users rpc extra is the primary's too.
  gateway_test::WsClient ws(static_cast<uint16_t>(b.http_port()));
  ASSERT_TRUE(ws.Send(R"({"id":1,"connect":{}})"));
  auto line = ws.Read();
  ASSERT_TRUE(line && json::parse(*line).contains("connect")) << line.value_or("(nothing)");
  ASSERT_TRUE(ws.Send(
      json{{"id", 2}, {"rpc", {{"method", "chorus.presence_users"}, {"data", {{"channel", ch}}}}}}
          .dump()));
  line = ws.Read();
  ASSERT_TRUE(line);
  const json rpc = json::parse(*line);
  ASSERT_EQ(rpc.value("id", 0), 2) << *line;
  EXPECT_EQ(rpc["rpc"]["data"]["users"], json::array({"watcher"})) << *line;
  EXPECT_EQ(rpc["rpc"]["data"]["num_users"], 1) << *line;
  EXPECT_EQ(Metric(b, "chorus_cluster_presence_queries_total"), asked + 5);
}

// C-21 on the peer wire (hand-built msgpack, docs/cluster.md §16.5): the primary applies a
// join at the current partition epoch from a live member; one at an older epoch, one from a
// member the map does not hold, and a malformed frame change nothing.
TEST_F(NodeClusterPresenceTest, C21_PeerUpdatesAreCheckedAgainstTheMap) {
  const std::string ch = ChannelWithPrimary(1, "wire");
  const uint32_t part = PartitionOfChannel(ch, kPartitions);
  const uint64_t epoch = table_[part]["epoch"].get<uint64_t>();
  json cl = ResultOf(Api(Node(1), "cluster", "{}"));
  ASSERT_FALSE(cl.is_null());
  std::string a_api;
  uint64_t b_incarnation = 0;
  for (const json& m : cl["members"]) {
    if (m["id"] == 1) a_api = m["endpoints"]["api"].get<std::string>();
    if (m["id"] == 2) b_incarnation = m["incarnation"].get<uint64_t>();
  }
  ASSERT_FALSE(a_api.empty());
  auto update = [&](uint64_t sender, uint64_t inc, uint64_t with_epoch, const std::string& client) {
    return Pack()
        .Array(11)
        .U(30)
        .U(sender)
        .U(inc)
        .U(part)
        .U(with_epoch)
        .Str(ch)
        .Bool(true)
        .Str(client)
        .Str("u-" + client)
        .Str("")
        .Str("")
        .str();
  };
  zmq::socket_t d(ctx_, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.connect(a_api);
  d.send(zmq::buffer(update(2, b_incarnation, epoch - 1, "stale")));
  d.send(zmq::buffer(update(9, 1, epoch, "stranger")));
  d.send(zmq::buffer(std::string("\x93\x1e\x02", 3)));
  d.send(zmq::buffer(update(2, b_incarnation, epoch, "fresh")));
  ASSERT_TRUE(EventuallyTrue([&] { return PresenceIs(Node(1), ch, {{"fresh", 2}}); }));
  EXPECT_EQ(Metric(Node(1), "chorus_cluster_presence_refused_total"), 2);
}

}  // namespace
}  // namespace chorus::testing
