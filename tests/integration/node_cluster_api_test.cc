// The cluster-wide server API (docs/cluster.md §13, C-40..C-45) on three real chorusd forming
// one cluster map (node_cluster_support.h): each method is called on one node and its effect is
// checked on sessions of another node (native sessions made by hand, one WebSocket client through
// Beast); `/api/batch` with publishes to channels of three primaries; the fan-out wire itself
// with hand-built msgpack (fanout_codec.h is not used here).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gateway_ws_client.h"
#include "msgpack_pack.h"
#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterApiTest : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  // The whole answer of a server API call (`{"result":...}` or `{"error":...}`).
  static json Call(const NodeProcess& node, const std::string& method, const json& body) {
    HttpResult r = Api(node, method, body.dump());
    json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? json() : j;
  }
  std::unique_ptr<RawSession> Connected(uint64_t member, const std::string& user) {
    auto s = std::make_unique<RawSession>(ctx_, Node(member).native());
    EXPECT_FALSE(ConnectAs(*s, user).empty()) << user << " on node " << member;
    return s;
  }
  static std::set<std::string> Keys(const json& o) {
    std::set<std::string> out;
    for (auto it = o.begin(); it != o.end(); ++it) out.insert(it.key());
    return out;
  }
};

// C-40: `info` on B lists the three nodes, each with its own counts (a client on C is counted
// on C's entry only).
TEST_F(NodeClusterApiTest, C40_InfoListsEveryNode) {
  auto on_c = Connected(3, "carol");
  auto sub = on_c->Call("subscribe", P({{"channel", "chat:info"}}));
  ASSERT_TRUE(sub && sub->Has("result")) << ErrorCode(sub);
  json info = ResultOf(Api(Node(2), "info", "{}"));
  ASSERT_FALSE(info.is_null());
  ASSERT_EQ(info["nodes"].size(), 3u) << info.dump();
  std::set<std::string> uids;
  uint64_t clients = 0, subs = 0;
  for (const json& n : info["nodes"]) {
    uids.insert(n["uid"].get<std::string>());
    for (const char* k : {"name", "version", "num_users", "num_channels", "uptime"}) {
      EXPECT_TRUE(n.contains(k)) << k << " in " << n.dump();
    }
    clients += n["num_clients"].get<uint64_t>();
    subs += n["num_subs"].get<uint64_t>();
  }
  EXPECT_EQ(uids.size(), 3u) << "one entry per node";
  EXPECT_EQ(clients, 1u);
  EXPECT_EQ(subs, 1u);
  // C's own entry holds the client: the entry whose uid is C's node id (its `info` alone).
  json c_info = ResultOf(Api(Node(3), "info", "{}"));
  ASSERT_FALSE(c_info.is_null());
  const std::string c_uid = c_info["nodes"][0]["uid"];
  for (const json& n : info["nodes"]) {
    EXPECT_EQ(n["num_clients"].get<uint64_t>(), n["uid"] == c_uid ? 1u : 0u) << n.dump();
  }
  EXPECT_EQ(info["cluster"]["members"].size(), 3u);
  EXPECT_GE(Metric(Node(3), "chorus_cluster_fanout_served_total"), 1);
  EXPECT_GE(Metric(Node(2), "chorus_cluster_fanout_calls_total"), 1);
}

// C-41: `channels` on A is the union of every node's channels with subscribers, client counts
// summed, the pattern applied on each node.
TEST_F(NodeClusterApiTest, C41_ChannelsIsTheUnionWithCountsSummed) {
  auto on_c = Connected(3, "carol");
  auto on_b = Connected(2, "bob");
  auto on_a = Connected(1, "alice");
  for (auto [s, ch] : std::vector<std::pair<RawSession*, std::string>>{{on_c.get(), "chat:only-c"},
                                                                       {on_b.get(), "chat:both"},
                                                                       {on_c.get(), "chat:both"},
                                                                       {on_a.get(), "short:a"}}) {
    auto r = s->Call("subscribe", P({{"channel", ch}}));
    ASSERT_TRUE(r && r->Has("result")) << ch << ": " << ErrorCode(r);
  }
  json all = ResultOf(Api(Node(1), "channels", "{}"));
  ASSERT_FALSE(all.is_null());
  EXPECT_EQ(Keys(all["channels"]), (std::set<std::string>{"chat:only-c", "chat:both", "short:a"}))
      << all.dump();
  EXPECT_EQ(all["channels"]["chat:only-c"]["num_clients"], 1);
  EXPECT_EQ(all["channels"]["chat:both"]["num_clients"], 2);
  json chat = ResultOf(Api(Node(1), "channels", R"({"pattern":"chat:*"})"));
  ASSERT_FALSE(chat.is_null());
  EXPECT_EQ(Keys(chat["channels"]), (std::set<std::string>{"chat:only-c", "chat:both"}));
  EXPECT_EQ(Api(Node(1), "channels", R"({"pattern":1})").status, 400);  // checked before asking
}

// C-42 disconnect: a native client and a WebSocket client on C are closed by `disconnect` sent
// to A; a client of another user on B is not touched.
TEST_F(NodeClusterApiTest, C42_DisconnectReachesSessionsOnEveryNode) {
  auto victim = Connected(3, "victim");
  auto other = Connected(2, "other");
  gateway_test::WsClient ws(static_cast<uint16_t>(Node(3).http_port()));
  ASSERT_TRUE(ws.ok());
  ASSERT_TRUE(ws.Send(R"({"id":1,"connect":{}})"));
  std::string ws_client;
  for (int i = 0; i < 5 && ws_client.empty(); ++i) {
    auto m = ws.Read(5s);
    ASSERT_TRUE(m) << "no connect reply";
    json j = json::parse(*m, nullptr, false);
    if (j.is_object() && j.contains("connect")) ws_client = j["connect"]["client"];
  }
  ASSERT_FALSE(ws_client.empty());

  json r = Call(Node(1), "disconnect", {{"user", "victim"}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  auto push = victim->Push("disconnect");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 3503u);
  r = Call(Node(1), "disconnect",
           {{"client", ws_client}, {"disconnect", {{"code", 4001}, {"reason", "bye"}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  ASSERT_TRUE(ws.WaitClosed(5s));
  EXPECT_EQ(static_cast<int>(ws.reason().code), 4001);
  auto ping = other->Call("ping");
  EXPECT_TRUE(ping && ping->Has("result")) << "another user is untouched";
  json info = ResultOf(Api(Node(1), "info", "{}"));
  ASSERT_FALSE(info.is_null());
  uint64_t clients = 0;
  for (const json& n : info["nodes"]) clients += n["num_clients"].get<uint64_t>();
  EXPECT_EQ(clients, 1u);
}

// C-42 unsubscribe: the user's subscription on C ends (an unsubscribe push) when `unsubscribe`
// is sent to B; `channels` no longer lists it.
TEST_F(NodeClusterApiTest, C42_UnsubscribeReachesEveryNode) {
  auto on_c = Connected(3, "carol");
  auto r = on_c->Call("subscribe", P({{"channel", "chat:unsub"}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  json res = Call(Node(2), "unsubscribe", {{"user", "carol"}, {"channel", "chat:unsub"}});
  ASSERT_TRUE(res.contains("result")) << res.dump();
  ASSERT_TRUE(on_c->Push("unsubscribe", "chat:unsub"));
  json chans = ResultOf(Api(Node(2), "channels", "{}"));
  ASSERT_FALSE(chans.is_null());
  EXPECT_FALSE(chans["channels"].contains("chat:unsub")) << chans.dump();
}

// C-42 subscribe: `subscribe` sent to A gives a user on C a server-side subscription to a
// channel whose primary is B; a publish through A then reaches it.
TEST_F(NodeClusterApiTest, C42_SubscribeReachesEveryNode) {
  const std::string ch = ChannelWithPrimary(2, "ssub");
  auto on_c = Connected(3, "carol");
  json r = Call(Node(1), "subscribe", {{"user", "carol"}, {"channel", ch}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  ASSERT_TRUE(on_c->Push("subscribe", ch));
  // C follows the channel on B once its subscriber is there (C-16); then a publish arrives.
  ASSERT_TRUE(
      EventuallyTrue([&] { return Metric(Node(3), "chorus_cluster_followed_live") == 1; }, 10s));
  json p = ResultOf(Api(Node(1), "publish", json{{"channel", ch}, {"data", {{"n", 1}}}}.dump()));
  ASSERT_FALSE(p.is_null());
  auto pub = on_c->Push("pub", ch);
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->Uint("data.offset"), p["offset"].get<uint64_t>());
}

// C-42 send: a user connected on A and on C gets the message on both sessions when `send` is
// sent to B.
TEST_F(NodeClusterApiTest, C42_SendReachesAUserOnEveryNode) {
  auto on_a = Connected(1, "dana");
  auto on_c = Connected(3, "dana");
  auto bystander = Connected(3, "eve");
  json r = Call(Node(2), "send", {{"user", "dana"}, {"data", {{"hello", 1}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  for (RawSession* s : {on_a.get(), on_c.get()}) {
    auto m = s->Push("message");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("data.data"), R"({"hello":1})");
  }
  EXPECT_TRUE(bystander->Call("ping"));
  for (const auto& f : bystander->pushes()) EXPECT_NE(f.Str("push"), "message");
}

// C-42 refresh: `refresh` with `expired: true` sent to A closes the user's session on C with
// 3005 (Centrifugo's refresh of a connection's expiry).
TEST_F(NodeClusterApiTest, C42_RefreshReachesEveryNode) {
  auto on_c = Connected(3, "fay");
  json r = Call(Node(1), "refresh", {{"user", "fay"}, {"expired", true}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  auto push = on_c->Push("disconnect");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 3005u);
  EXPECT_EQ(Api(Node(1), "refresh", R"({"user":"fay","expired":"yes"})").status, 400);
}

// C-44: a batch on B with publishes to channels whose primaries are A, B and C, twice each,
// all succeed with their primary's offsets, replies in command order; commands that fan out
// (`info`, `send`) are answered in their place. Sequential and `parallel`.
TEST_F(NodeClusterApiTest, C44_BatchForwardsPublishesAndFansOutInOrder) {
  const std::vector<std::string> chans = {ChannelWithPrimary(1, "xa"), ChannelWithPrimary(2, "xb"),
                                          ChannelWithPrimary(3, "xc")};
  auto on_c = Connected(3, "gil");
  for (bool parallel : {false, true}) {
    const uint64_t round = parallel ? 2 : 1;
    json commands = json::array();
    for (const std::string& ch : chans) {
      commands.push_back(
          {{"method", "publish"}, {"params", {{"channel", ch}, {"data", {{"round", round}}}}}});
    }
    commands.push_back({{"info", json::object()}});
    commands.push_back({{"send", {{"user", "gil"}, {"data", round}}}});
    commands.push_back({{"broadcast", {{"channels", chans}, {"data", {{"b", round}}}}}});
    json r = Call(Node(2), "batch", {{"commands", commands}, {"parallel", parallel}});
    ASSERT_TRUE(r.contains("replies")) << r.dump();
    const json& rep = r["replies"];
    ASSERT_EQ(rep.size(), 6u) << r.dump();
    ASSERT_TRUE(rep[5].contains("broadcast")) << rep[5].dump();
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(rep[i].contains("publish")) << rep[i].dump();
      const uint64_t pub = rep[i]["publish"]["offset"];
      const uint64_t bc = rep[5]["broadcast"]["responses"][i]["result"]["offset"];
      if (parallel) {  // started together: either may be first on the primary
        EXPECT_EQ((std::set<uint64_t>{pub, bc}), (std::set<uint64_t>{3, 4})) << chans[i];
      } else {  // in command order
        EXPECT_EQ(pub, 1u) << chans[i];
        EXPECT_EQ(bc, 2u) << chans[i];
      }
    }
    ASSERT_TRUE(rep[3].contains("info")) << rep[3].dump();
    EXPECT_EQ(rep[3]["info"]["nodes"].size(), 3u);
    EXPECT_TRUE(rep[4].contains("send")) << rep[4].dump();
    auto m = on_c->Push("message");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("data.data"), std::to_string(round));
  }
  // Each line lives on its primary only, the sequential batch's two first and in order.
  for (size_t i = 0; i < 3; ++i) {
    json h =
        ResultOf(Api(Node(i + 1), "history", json{{"channel", chans[i]}, {"limit", -1}}.dump()));
    ASSERT_FALSE(h.is_null());
    ASSERT_EQ(h["publications"].size(), 4u) << chans[i];
    EXPECT_EQ(h["publications"][0]["data"]["round"], 1);
    EXPECT_EQ(h["publications"][1]["data"]["b"], 1);
  }
  // Two batches x (a publish + a broadcast) x the two channels whose primary is not B.
  EXPECT_EQ(Metric(Node(2), "chorus_cluster_pub_forwarded_total"), 8);
}

// C-45: the fan-out wire, hand-built msgpack on C's peer endpoint: a request is answered with
// C's own part; an unknown method gets 104, params that are not an object 107; a malformed
// frame is dropped without an answer and C keeps serving.
TEST_F(NodeClusterApiTest, C45_FanoutWireAnswersItsPartAndDropsMalformedFrames) {
  auto on_c = Connected(3, "hal");
  auto r = on_c->Call("subscribe", P({{"channel", "chat:wire"}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  json c = ResultOf(Api(Node(1), "cluster", "{}"));
  ASSERT_FALSE(c.is_null());
  std::string endpoint;
  for (const json& m : c["members"]) {
    if (m["id"] == 3) endpoint = m["endpoints"]["api"];
  }
  ASSERT_FALSE(endpoint.empty());
  zmq::socket_t d(ctx_, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.connect(endpoint);
  auto ask = [&](const std::string& body) -> std::optional<Frame> {
    d.send(zmq::buffer(body));
    zmq::pollitem_t item{d.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) <= 0) return std::nullopt;
    zmq::message_t m;
    (void)d.recv(m);
    return Frame{msgpack::unpack(static_cast<const char*>(m.data()), m.size())};
  };
  auto request = [](uint64_t id, const std::string& method, const std::string& params) {
    return Pack().Array(5).U(40).U(id).U(7).Str(method).Str(params).str();
  };
  auto field = [](const Frame& f, uint32_t i) { return f.root().via.array.ptr[i]; };

  auto ok = ask(request(21, "channels", R"({"pattern":"chat:*"})"));
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->root().via.array.size, 4u);
  EXPECT_EQ(field(*ok, 0).as<uint64_t>(), 41u);
  EXPECT_EQ(field(*ok, 1).as<uint64_t>(), 21u);
  EXPECT_EQ(field(*ok, 2).as<uint32_t>(), 0u);
  json part = json::parse(field(*ok, 3).as<std::string>());
  EXPECT_EQ(part, (json{{"channels", {{"chat:wire", {{"num_clients", 1}}}}}}));

  EXPECT_FALSE(ask(Pack().Array(3).U(40).U(22).Str("x").str()));  // wrong shape: no answer
  EXPECT_FALSE(ask("\xc1"));                                      // not msgpack: no answer
  auto unknown = ask(request(23, "publish", "{}"));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(field(*unknown, 2).as<uint32_t>(), 104u);
  auto not_object = ask(request(24, "info", "[1]"));
  ASSERT_TRUE(not_object);
  EXPECT_EQ(field(*not_object, 2).as<uint32_t>(), 107u);
  auto bad_params = ask(request(25, "send", R"({"user":"hal"})"));  // data is required
  ASSERT_TRUE(bad_params);
  EXPECT_EQ(field(*bad_params, 2).as<uint32_t>(), 107u);
  // An action through the raw wire acts on C's sessions.
  auto sent = ask(request(26, "send", R"({"user":"hal","data":"raw"})"));
  ASSERT_TRUE(sent);
  EXPECT_EQ(field(*sent, 2).as<uint32_t>(), 0u);
  auto m = on_c->Push("message");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("data.data"), R"("raw")");
  // The frame of kind 40 with the wrong shape; the bytes of no kind at all are the peer
  // ROUTER's to drop (forwarder.h), not counted as a fan-out.
  EXPECT_EQ(Metric(Node(3), "chorus_cluster_fanout_malformed_total"), 1);
}

}  // namespace
}  // namespace chorus::testing
