// The HTTP server API of a real chorusd (Centrifugo-compatible `POST /api/<method>`, answers
// `{"result":...}` or `{"error":{"code","message"}}`), checked against native sessions speaking
// the raw protocol (RawSession): every method the node serves, one test per behaviour.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using nlohmann::json;

// POST /api/<method>; expects HTTP 200 and a JSON object body.
json Call(const NodeProcess& node, const std::string& method, const json& body) {
  const HttpResult r = Api(node, method, body.dump());
  EXPECT_EQ(r.status, 200) << method << ": " << r.body;
  json j = json::parse(r.body, nullptr, false);
  EXPECT_TRUE(j.is_object()) << method << ": " << r.body;
  return j.is_object() ? j : json::object();
}

// The `result` of a successful call (fails the test on an error answer).
json Result(const NodeProcess& node, const std::string& method, const json& body) {
  json j = Call(node, method, body);
  EXPECT_TRUE(j.contains("result")) << method << " " << body.dump() << ": " << j.dump();
  return j.value("result", json::object());
}

// The error code of a call that must fail (0 when it did not).
uint64_t ErrorCode(const NodeProcess& node, const std::string& method, const json& body) {
  json j = Call(node, method, body);
  EXPECT_FALSE(j.contains("result")) << j.dump();
  return j.contains("error") ? j["error"].value("code", 0u) : 0u;
}

// A connected native session of `user` (client_insecure).
struct Client {
  std::unique_ptr<RawSession> s;
  std::string id;
  RawSession* operator->() { return s.get(); }
};

Client Connect(zmq::context_t& ctx, const NodeProcess& node, const std::string& user,
               const std::string& info = "") {
  Client c{std::make_unique<RawSession>(ctx, node.native()), ""};
  auto r =
      c->Call("connect", info.empty() ? P({{"user", user}}) : P({{"user", user}, {"info", info}}));
  EXPECT_TRUE(r && r->Has("result")) << user;
  if (r) c.id = r->Str("result.client");
  EXPECT_FALSE(c.id.empty());
  return c;
}

// Subscribes and returns the reply (nullopt on an error reply, with a test failure).
std::optional<Frame> Subscribe(Client& c, const std::string& channel) {
  auto r = c->Call("subscribe", P({{"channel", channel}}));
  EXPECT_TRUE(r && r->Has("result")) << channel;
  if (!r || !r->Has("result")) return std::nullopt;
  return r;
}

std::vector<uint64_t> Offsets(const json& history_result) {
  std::vector<uint64_t> out;
  for (const auto& p : history_result.value("publications", json::array())) {
    out.push_back(p.value("offset", 0u));
  }
  return out;
}

std::set<std::string> Keys(const json& obj) {
  std::set<std::string> out;
  for (const auto& [k, v] : obj.items()) out.insert(k);
  return out;
}

class NodeHttpApi : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.ready()) << node_.banner(); }
  zmq::context_t ctx_;
  NodeProcess node_;
};

TEST_F(NodeHttpApi, PublishReturnsNextOffsetAndEpochAndReachesNativeSubscribers) {
  Client sub = Connect(ctx_, node_, "alice");
  auto reply = Subscribe(sub, "chat:pub");
  ASSERT_TRUE(reply);
  const std::string epoch = reply->Str("result.epoch");
  ASSERT_FALSE(epoch.empty());
  for (uint64_t want = 1; want <= 3; ++want) {
    const json data = {{"text", "hello"}, {"n", want}};
    json r = Result(node_, "publish", {{"channel", "chat:pub"}, {"data", data}});
    EXPECT_EQ(r.value("offset", 0u), want);
    EXPECT_EQ(r.value("epoch", ""), epoch);
    auto push = sub->Push("pub", "chat:pub");
    ASSERT_TRUE(push) << "no pub push for offset " << want;
    EXPECT_EQ(push->Uint("data.offset"), want);
    EXPECT_EQ(json::parse(push->Str("data.data"), nullptr, false), data);
    EXPECT_FALSE(push->Has("data.info"));  // published by the server, not a client
  }
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, PublishWithoutHistoryHasNoPositionButIsDelivered) {
  Client sub = Connect(ctx_, node_, "alice");
  ASSERT_TRUE(Subscribe(sub, "nohist:x"));
  json r = Result(node_, "publish", {{"channel", "nohist:x"}, {"data", "plain"}});
  EXPECT_FALSE(r.contains("offset")) << r.dump();
  EXPECT_FALSE(r.contains("epoch")) << r.dump();
  auto push = sub->Push("pub", "nohist:x");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Str("data.data"), R"("plain")");
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, BroadcastPublishesToEveryChannelWithPerChannelErrors) {
  Client sub = Connect(ctx_, node_, "alice");
  ASSERT_TRUE(Subscribe(sub, "chat:b1"));
  ASSERT_TRUE(Subscribe(sub, "short:b2"));
  const json data = {{"all", true}};
  json r = Result(node_, "broadcast",
                  {{"channels", {"chat:b1", "short:b2", "nope:b3", "chat:b4"}}, {"data", data}});
  ASSERT_TRUE(r.contains("responses")) << r.dump();
  const json& responses = r["responses"];
  ASSERT_EQ(responses.size(), 4u) << r.dump();
  for (size_t i : {0u, 1u, 3u}) {
    EXPECT_EQ(responses[i]["result"].value("offset", 0u), 1u) << responses[i].dump();
  }
  EXPECT_FALSE(responses[2].contains("result"));
  EXPECT_EQ(responses[2]["error"].value("code", 0u), 102u) << responses[2].dump();
  for (const char* ch : {"chat:b1", "short:b2"}) {
    auto push = sub->Push("pub", ch);
    ASSERT_TRUE(push) << ch;
    EXPECT_EQ(json::parse(push->Str("data.data"), nullptr, false), data);
  }
  json h = Result(node_, "history", {{"channel", "chat:b4"}, {"limit", -1}});
  EXPECT_EQ(Offsets(h), (std::vector<uint64_t>{1}));
  // The channels must be strings.
  EXPECT_EQ(Api(node_, "broadcast", R"({"channels":["chat:a",1],"data":1})").status, 400);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, PresenceAndPresenceStatsListNativeSubscribers) {
  Client a1 = Connect(ctx_, node_, "alice");
  Client a2 = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob", R"({"name":"Bob"})");
  for (Client* c : {&a1, &a2}) ASSERT_TRUE(Subscribe(*c, "chat:room"));
  // Channel info comes from the server side only: a subscription token's `info` (N-20).
  const std::string token =
      MakeHs256Token("test-secret", "bob", 0, R"({"seat":7})", R"("channel":"chat:room")");
  auto sub = b->Call("subscribe", P({{"channel", "chat:room"}, {"token", token}}));
  ASSERT_TRUE(sub && sub->Has("result"));

  json p = Result(node_, "presence", {{"channel", "chat:room"}});
  ASSERT_TRUE(p.contains("presence")) << p.dump();
  EXPECT_EQ(Keys(p["presence"]), (std::set<std::string>{a1.id, a2.id, b.id}));
  EXPECT_EQ(p["presence"][a1.id].value("user", ""), "alice");
  EXPECT_EQ(p["presence"][a1.id].value("client", ""), a1.id);
  EXPECT_EQ(p["presence"][b.id].value("user", ""), "bob");
  EXPECT_EQ(p["presence"][b.id]["conn_info"], json({{"name", "Bob"}}));  // JSON values
  EXPECT_EQ(p["presence"][b.id]["chan_info"], json({{"seat", 7}}));
  EXPECT_FALSE(p["presence"][a1.id].contains("conn_info"));
  EXPECT_FALSE(p.contains("next_cursor"));

  json st = Result(node_, "presence_stats", {{"channel", "chat:room"}});
  EXPECT_EQ(st.value("num_clients", 0u), 3u);
  EXPECT_EQ(st.value("num_users", 0u), 2u);

  // A channel nobody is in.
  EXPECT_TRUE(Result(node_, "presence", {{"channel", "chat:empty"}})["presence"].empty());
  json empty = Result(node_, "presence_stats", {{"channel", "chat:empty"}});
  EXPECT_EQ(empty.value("num_clients", 99u), 0u);
  EXPECT_EQ(empty.value("num_users", 99u), 0u);
  EXPECT_TRUE(node_.Stop());
}

TEST(NodeHttpPresencePaging, NextCursorReturnsEveryMemberExactlyOnce) {
  NodeOptions o;
  o.extra_toml = "\n[namespaces.paged]\npresence = true\npresence_page_size = 2\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  zmq::context_t ctx;
  std::vector<Client> members;
  std::set<std::string> want;
  for (int i = 0; i < 5; ++i) {
    members.push_back(Connect(ctx, node, "user" + std::to_string(i)));
    ASSERT_TRUE(Subscribe(members.back(), "paged:room"));
    want.insert(members.back().id);
  }
  std::multiset<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    json body = {{"channel", "paged:room"}};
    if (!cursor.empty()) body["cursor"] = cursor;
    json page = Result(node, "presence", body);
    ASSERT_TRUE(page.contains("presence")) << page.dump();
    EXPECT_LE(page["presence"].size(), 2u) << page.dump();
    for (const auto& [client, info] : page["presence"].items()) seen.insert(client);
    cursor = page.value("next_cursor", "");
    ASSERT_LT(++pages, 10) << "paging does not end";
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);  // each once
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
  // An explicit limit above the page size is capped.
  json capped = Result(node, "presence", {{"channel", "paged:room"}, {"limit", 100}});
  EXPECT_EQ(capped["presence"].size(), 2u);
  EXPECT_TRUE(node.Stop());
}

TEST_F(NodeHttpApi, HistoryHonoursLimitSinceAndReverse) {
  std::string epoch;
  for (int i = 1; i <= 5; ++i) {
    json r = Result(node_, "publish", {{"channel", "chat:h"}, {"data", {{"i", i}}}});
    epoch = r.value("epoch", "");
  }
  ASSERT_FALSE(epoch.empty());
  json all = Result(node_, "history", {{"channel", "chat:h"}, {"limit", -1}});
  EXPECT_EQ(Offsets(all), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(all.value("epoch", ""), epoch);
  EXPECT_EQ(all.value("offset", 0u), 5u);
  EXPECT_EQ(all["publications"][2]["data"], json({{"i", 3}}));  // data as a JSON value

  EXPECT_EQ(Offsets(Result(node_, "history", {{"channel", "chat:h"}, {"limit", 2}})),
            (std::vector<uint64_t>{1, 2}));
  const json since = {{"offset", 2}, {"epoch", epoch}};
  EXPECT_EQ(
      Offsets(Result(node_, "history", {{"channel", "chat:h"}, {"limit", -1}, {"since", since}})),
      (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(
      Offsets(Result(node_, "history", {{"channel", "chat:h"}, {"limit", 2}, {"reverse", true}})),
      (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(
      Offsets(Result(node_, "history",
                     {{"channel", "chat:h"}, {"limit", -1}, {"reverse", true}, {"since", since}})),
      (std::vector<uint64_t>{1}));
  json position = Result(node_, "history", {{"channel", "chat:h"}, {"limit", 0}});
  EXPECT_TRUE(position["publications"].empty());
  EXPECT_EQ(position.value("offset", 0u), 5u);
  EXPECT_EQ(position.value("epoch", ""), epoch);

  const json wrong = {{"offset", 2}, {"epoch", epoch + "x"}};
  EXPECT_EQ(ErrorCode(node_, "history", {{"channel", "chat:h"}, {"limit", -1}, {"since", wrong}}),
            112u);
  const json future = {{"offset", 9}, {"epoch", epoch}};
  EXPECT_EQ(ErrorCode(node_, "history", {{"channel", "chat:h"}, {"limit", -1}, {"since", future}}),
            112u);
  EXPECT_EQ(Api(node_, "history", R"({"channel":"chat:h","limit":"all"})").status, 400);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, HistoryShowsTagsAndThePublishingClient) {
  Client sub = Connect(ctx_, node_, "bob");
  ASSERT_TRUE(Subscribe(sub, "chat:t"));
  json r = Result(node_, "publish",
                  {{"channel", "chat:t"}, {"data", {{"x", 1}}}, {"tags", {{"kind", "note"}}}});
  EXPECT_EQ(r.value("offset", 0u), 1u);
  auto push = sub->Push("pub", "chat:t");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Str("data.tags.kind"), "note");

  // A native client's publication carries its client info.
  auto pub = sub->Call("publish", P({{"channel", "chat:t"}, {"data", R"({"y":2})"}}));
  ASSERT_TRUE(pub && pub->Has("result"));
  EXPECT_EQ(pub->Uint("result.offset"), 2u);
  json h = Result(node_, "history", {{"channel", "chat:t"}, {"limit", -1}});
  ASSERT_EQ(h["publications"].size(), 2u) << h.dump();
  const json& first = h["publications"][0];
  EXPECT_EQ(first["tags"], json({{"kind", "note"}}));
  EXPECT_FALSE(first.contains("info"));
  const json& second = h["publications"][1];
  EXPECT_EQ(second["data"], json({{"y", 2}}));
  ASSERT_TRUE(second.contains("info")) << second.dump();
  EXPECT_EQ(second["info"].value("user", ""), "bob");
  EXPECT_EQ(second["info"].value("client", ""), sub.id);
  EXPECT_EQ(Api(node_, "publish", R"({"channel":"chat:t","data":1,"tags":{"a":1}})").status, 400);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, HistoryRemoveDropsPublicationsButKeepsThePosition) {
  for (int i = 1; i <= 3; ++i) Result(node_, "publish", {{"channel", "chat:hr"}, {"data", i}});
  const std::string epoch = Result(node_, "history", {{"channel", "chat:hr"}})["epoch"];
  json removed = Result(node_, "history_remove", {{"channel", "chat:hr"}});
  EXPECT_TRUE(removed.empty()) << removed.dump();
  json h = Result(node_, "history", {{"channel", "chat:hr"}, {"limit", -1}});
  EXPECT_TRUE(h["publications"].empty()) << h.dump();
  EXPECT_EQ(h.value("offset", 0u), 3u);
  EXPECT_EQ(h.value("epoch", ""), epoch);
  json next = Result(node_, "publish", {{"channel", "chat:hr"}, {"data", 4}});
  EXPECT_EQ(next.value("offset", 0u), 4u);
  EXPECT_EQ(next.value("epoch", ""), epoch);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, ChannelsListsActiveChannelsMatchingThePattern) {
  Client a = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  ASSERT_TRUE(Subscribe(a, "chat:c1"));
  ASSERT_TRUE(Subscribe(b, "chat:c1"));
  ASSERT_TRUE(Subscribe(a, "chat:c2"));
  ASSERT_TRUE(Subscribe(a, "short:c3"));
  Result(node_, "publish", {{"channel", "chat:nobody"}, {"data", 1}});  // state, no subscriber

  json all = Result(node_, "channels", json::object())["channels"];
  EXPECT_EQ(Keys(all), (std::set<std::string>{"chat:c1", "chat:c2", "short:c3"})) << all.dump();
  EXPECT_EQ(all["chat:c1"].value("num_clients", 0u), 2u);
  EXPECT_EQ(all["chat:c2"].value("num_clients", 0u), 1u);
  EXPECT_EQ(Keys(Result(node_, "channels", {{"pattern", "chat:*"}})["channels"]),
            (std::set<std::string>{"chat:c1", "chat:c2"}));
  EXPECT_EQ(Keys(Result(node_, "channels", {{"pattern", "*c?"}})["channels"]),
            (std::set<std::string>{"chat:c1", "chat:c2", "short:c3"}));
  EXPECT_EQ(Keys(Result(node_, "channels", {{"pattern", "*3"}})["channels"]),
            (std::set<std::string>{"short:c3"}));
  EXPECT_TRUE(Result(node_, "channels", {{"pattern", "none*"}})["channels"].empty());
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, InfoHasTheNodeWithItsClients) {
  json before = Result(node_, "info", json::object());
  ASSERT_EQ(before["nodes"].size(), 1u) << before.dump();
  EXPECT_EQ(before["nodes"][0].value("num_clients", 99u), 0u);
  Client a1 = Connect(ctx_, node_, "alice");
  Client a2 = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  ASSERT_TRUE(Subscribe(a1, "chat:i"));
  ASSERT_TRUE(Subscribe(b, "chat:i"));
  json info = Result(node_, "info", json::object());
  ASSERT_EQ(info["nodes"].size(), 1u) << info.dump();
  const json& n = info["nodes"][0];
  EXPECT_EQ(n.value("num_clients", 0u), 3u) << n.dump();
  EXPECT_EQ(n.value("num_users", 0u), 2u) << n.dump();
  EXPECT_EQ(n.value("num_subs", 0u), 2u) << n.dump();
  EXPECT_GE(n.value("num_channels", 0u), 1u) << n.dump();
  for (const char* key : {"uid", "name", "version", "uptime"}) EXPECT_TRUE(n.contains(key)) << key;
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, DisconnectClosesEverySessionOfTheUser) {
  Client a1 = Connect(ctx_, node_, "alice");
  Client a2 = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  for (Client* c : {&a1, &a2, &b}) ASSERT_TRUE(Subscribe(*c, "chat:d"));

  EXPECT_TRUE(Result(node_, "disconnect", {{"user", "alice"}}).empty());
  for (Client* c : {&a1, &a2}) {
    auto push = (*c)->Push("disconnect");
    ASSERT_TRUE(push);
    EXPECT_EQ(push->Uint("data.code"), 3503u);
    EXPECT_FALSE(push->Bool("data.reconnect"));  // 3500..3999: do not reconnect
  }
  json p = Result(node_, "presence", {{"channel", "chat:d"}});
  EXPECT_EQ(Keys(p["presence"]), (std::set<std::string>{b.id}));
  // The session is gone: its next command is told why (N-1).
  a1->Send("ping");
  auto again = a1->Push("disconnect");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->Uint("data.code"), 3503u);

  // By client id, with a custom code.
  EXPECT_TRUE(Result(node_, "disconnect",
                     {{"client", b.id}, {"disconnect", {{"code", 4001}, {"reason", "bye"}}}})
                  .empty());
  auto push = b->Push("disconnect");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 4001u);
  EXPECT_EQ(push->Str("data.reason"), "bye");
  EXPECT_TRUE(push->Bool("data.reconnect"));
  EXPECT_EQ(Result(node_, "presence_stats", {{"channel", "chat:d"}}).value("num_clients", 99u), 0u);
  EXPECT_EQ(Result(node_, "info", json::object())["nodes"][0].value("num_clients", 99u), 0u);
  EXPECT_EQ(Api(node_, "disconnect", "{}").status, 400);  // user or client is required
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, UnsubscribeEndsOneSubscriptionOfTheUser) {
  Client a = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  ASSERT_TRUE(Subscribe(a, "chat:u"));
  ASSERT_TRUE(Subscribe(a, "chat:u2"));
  ASSERT_TRUE(Subscribe(b, "chat:u"));

  EXPECT_TRUE(Result(node_, "unsubscribe", {{"user", "alice"}, {"channel", "chat:u"}}).empty());
  auto push = a->Push("unsubscribe", "chat:u");
  ASSERT_TRUE(push);
  EXPECT_TRUE(push->Has("data.code"));
  json p = Result(node_, "presence", {{"channel", "chat:u"}});
  EXPECT_EQ(Keys(p["presence"]), (std::set<std::string>{b.id}));
  json p2 = Result(node_, "presence", {{"channel", "chat:u2"}});
  EXPECT_EQ(Keys(p2["presence"]), (std::set<std::string>{a.id}));  // the other one stays

  // No more publications of chat:u reach alice; chat:u2 ones (sent after) still do.
  Result(node_, "publish", {{"channel", "chat:u"}, {"data", 1}});
  Result(node_, "publish", {{"channel", "chat:u2"}, {"data", 2}});
  ASSERT_TRUE(a->Push("pub", "chat:u2"));
  for (const auto& f : a->pushes()) {
    EXPECT_FALSE(f.Str("push") == "pub" && f.Str("channel") == "chat:u")
        << "delivered after unsubscribe";
  }
  ASSERT_TRUE(b->Push("pub", "chat:u"));  // bob is still subscribed
  EXPECT_EQ(Api(node_, "unsubscribe", R"({"user":"alice"})").status, 400);  // channel required
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, SubscribeMakesAServerSideSubscriptionWithRecovery) {
  Client a = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  for (int i = 1; i <= 3; ++i) Result(node_, "publish", {{"channel", "chat:s"}, {"data", i}});
  const std::string epoch = Result(node_, "history", {{"channel", "chat:s"}})["epoch"];

  EXPECT_TRUE(Result(node_, "subscribe",
                     {{"user", "alice"},
                      {"channel", "chat:s"},
                      {"recover_since", {{"offset", 1}, {"epoch", epoch}}}})
                  .empty());
  auto push = a->Push("subscribe", "chat:s");
  ASSERT_TRUE(push);
  EXPECT_TRUE(push->Bool("data.recovered"));
  EXPECT_EQ(OffsetsOf(*push, "data.publications"), (std::vector<uint64_t>{2, 3}));
  json p = Result(node_, "presence", {{"channel", "chat:s"}});
  EXPECT_EQ(Keys(p["presence"]), (std::set<std::string>{a.id}));  // bob is not in it
  // Again: nothing changes (no second push); a client filter picks one session.
  EXPECT_TRUE(Result(node_, "subscribe", {{"user", "alice"}, {"channel", "chat:s"}}).empty());
  EXPECT_TRUE(Result(node_, "subscribe", {{"client", b.id}, {"channel", "chat:s"}}).empty());
  ASSERT_TRUE(b->Push("subscribe", "chat:s"));
  Result(node_, "publish", {{"channel", "chat:s"}, {"data", 4}});
  auto pub = a->Push("pub", "chat:s");
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->Uint("data.offset"), 4u);
  // Everything alice was sent before that pub is in pushes(): no second subscribe push.
  for (const auto& f : a->pushes()) EXPECT_NE(f.Str("push"), "subscribe");

  EXPECT_EQ(ErrorCode(node_, "subscribe", {{"user", "alice"}, {"channel", "nowhere:x"}}), 102u);
  EXPECT_EQ(Api(node_, "subscribe", R"({"user":"alice"})").status, 400);      // channel required
  EXPECT_EQ(Api(node_, "subscribe", R"({"channel":"chat:s"})").status, 400);  // whom
  EXPECT_EQ(
      Api(node_, "subscribe", R"({"user":"alice","channel":"chat:s","recover_since":1})").status,
      400);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpApi, SendPushesAMessageToEverySessionOfTheUser) {
  Client a1 = Connect(ctx_, node_, "alice");
  Client a2 = Connect(ctx_, node_, "alice");
  Client b = Connect(ctx_, node_, "bob");
  EXPECT_TRUE(Result(node_, "send", {{"user", "alice"}, {"data", {{"hello", 1}}}}).empty());
  for (Client* c : {&a1, &a2}) {
    auto m = (*c)->Push("message");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->Str("data.data"), R"({"hello":1})");
  }
  EXPECT_TRUE(Result(node_, "send", {{"client", b.id}, {"data", "just bob"}}).empty());
  auto m = b->Push("message");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->Str("data.data"), R"("just bob")");
  for (const auto& f : a1->pushes()) EXPECT_NE(f.Str("push"), "message") << "alice got bob's";
  EXPECT_EQ(Api(node_, "send", R"({"user":"alice"})").status, 400);  // data required
  EXPECT_EQ(Api(node_, "send", R"({"data":1})").status, 400);        // whom
  const std::string big(70000, 'x');
  EXPECT_EQ(ErrorCode(node_, "send", {{"user", "alice"}, {"data", big}}), 106u);
  EXPECT_TRUE(node_.Stop());
}

}  // namespace
}  // namespace chorus::testing
