// Raw-wire tests of the WebSocket protocol's engine rules (docs/protocol/websocket.md, "Rules")
// that no other test covers: W-15, W-17, W-18, W-19, W-21, W-22 and W-23, one test each,
// against a real chorusd on loopback (node_support.h). The client is Beast's WebSocket client
// (gateway_ws_client.h) sending JSON text written here; replies are read with nlohmann::json,
// not with the node's codec. The codec's rules (W-3..W-11) are in broker_node_json_test.cc, the
// gateway's (W-1, W-2) in gateway_ws_test.cc, the SDK's view (W-12..W-14, W-20, W-24, W-25) in
// tests/e2e/node/*.test.js.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway_ws_client.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using gateway_test::Split;
using gateway_test::WsClient;
using json = nlohmann::json;
using namespace std::chrono_literals;

// One WebSocket session speaking the JSON protocol: commands get increasing ids; every line
// the node sends is parsed and kept as a reply (it has an `id`) or a push; server pings (`{}`)
// are dropped.
class Ws {
 public:
  explicit Ws(const NodeProcess& node) : c_(static_cast<uint16_t>(node.http_port())) {}
  bool ok() const { return c_.ok(); }
  WsClient& client() { return c_; }

  // Sends {"id": n, "<method>": params}; returns n.
  uint64_t Send(const std::string& method, const json& params = json::object()) {
    const uint64_t id = next_id_++;
    json cmd = {{"id", id}, {method, params}};
    EXPECT_TRUE(c_.Send(cmd.dump()));
    return id;
  }
  // The reply to command `id` (pushes meanwhile are kept), or nullopt on timeout / close.
  std::optional<json> Reply(uint64_t id, std::chrono::milliseconds timeout = 5s) {
    return Await([&](const json& j) { return j.contains("id") && j["id"] == id; }, replies_,
                 timeout);
  }
  std::optional<json> Call(const std::string& method, const json& params = json::object()) {
    return Reply(Send(method, params));
  }
  // The next push of `type` on `channel` ("" = any channel); earlier kept pushes count.
  std::optional<json> Push(const std::string& type, const std::string& channel = "",
                           std::chrono::milliseconds timeout = 5s) {
    return Await(
        [&](const json& j) {
          const json& p = j["push"];
          return p.contains(type) && (channel.empty() || p.value("channel", "") == channel);
        },
        pushes_, timeout);
  }
  std::vector<json>& pushes() { return pushes_; }
  // Every line received so far, in order (replies and pushes).
  const std::vector<json>& lines() const { return lines_; }

 private:
  std::optional<json> Await(const std::function<bool(const json&)>& match, std::vector<json>& kept,
                            std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto it = kept.begin(); it != kept.end(); ++it) {
        if (match(*it)) {
          json out = std::move(*it);
          kept.erase(it);
          return out;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto m = c_.Read(left);
      if (!m) return std::nullopt;
      for (const std::string& line : Split(*m, '\n')) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        EXPECT_TRUE(j.is_object()) << line;
        if (!j.is_object() || j.empty()) continue;  // `{}`: a server ping
        lines_.push_back(j);
        (j.contains("push") ? pushes_ : replies_).push_back(std::move(j));
      }
    }
  }

  WsClient c_;
  uint64_t next_id_ = 1;
  std::vector<json> replies_, pushes_, lines_;
};

uint64_t ErrorOf(const std::optional<json>& r) {
  return r && r->contains("error") ? (*r)["error"].value("code", uint64_t{0}) : 0;
}

std::vector<uint64_t> Offsets(const json& pubs) {
  std::vector<uint64_t> out;
  for (const auto& p : pubs) out.push_back(p.value("offset", uint64_t{0}));
  return out;
}

// The client id of the only session in `channel`'s presence (server API), "" when not one.
std::string OnlyClient(const NodeProcess& node, const std::string& channel) {
  auto r = Api(node, "presence", R"({"channel":")" + channel + R"("})");
  const json p = json::parse(r.body, nullptr, false);
  if (!p.is_object() || !p.contains("result") || p["result"]["presence"].size() != 1) {
    ADD_FAILURE() << "presence of " << channel << ": " << r.body;
    return "";
  }
  return p["result"]["presence"].begin().key();
}

int64_t Now() {
  return static_cast<int64_t>(time(nullptr));
}

class NodeWsWire : public ::testing::Test {
 protected:
  void StartNode(NodeOptions o = {}) {
    node_ = std::make_unique<NodeProcess>(std::move(o));
    ASSERT_TRUE(node_->ready()) << node_->banner();
  }
  void TearDown() override {
    if (node_) {
      EXPECT_TRUE(node_->Stop()) << "chorusd did not exit cleanly";
    }
  }
  // A session connected with `token` ("" on a client_insecure node).
  std::unique_ptr<Ws> Connected(const std::string& token = "") {
    auto ws = std::make_unique<Ws>(*node_);
    if (!ws->ok()) return nullptr;
    auto r = ws->Call("connect", token.empty() ? json::object() : json{{"token", token}});
    if (!r || !r->contains("connect")) {
      ADD_FAILURE() << "connect failed: " << (r ? r->dump() : "no reply");
      return nullptr;
    }
    return ws;
  }
  void Publish(const std::string& channel, const std::string& data_json) {
    auto r = Api(*node_, "publish", R"({"channel":")" + channel + R"(","data":)" + data_json + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  std::unique_ptr<NodeProcess> node_;
};

// --- Sessions ------------------------------------------------------------------------------

TEST_F(NodeWsWire, W15_RefreshExtendsTheSessionAndRefusesBadTokens) {
  NodeOptions o;
  o.insecure = false;
  StartNode(o);
  auto ws = Connected(MakeHs256Token("test-secret", "ann", Now() + 60));
  ASSERT_TRUE(ws);
  auto r = ws->Call("refresh", {{"token", MakeHs256Token("test-secret", "ann", Now() + 3600)}});
  ASSERT_TRUE(r && r->contains("refresh")) << (r ? r->dump() : "no reply");
  EXPECT_TRUE((*r)["refresh"].value("expires", false));
  EXPECT_GT((*r)["refresh"].value("ttl", 0), 3000) << "the new token's expiry";
  EXPECT_FALSE((*r)["refresh"].value("client", "").empty());
  EXPECT_EQ(
      ErrorOf(ws->Call("refresh", {{"token", MakeHs256Token("test-secret", "ann", Now() - 10)}})),
      109u);
  EXPECT_EQ(ErrorOf(ws->Call("refresh", {{"token", MakeHs256Token("other", "ann", Now() + 60)}})),
            101u);
  EXPECT_EQ(ErrorOf(ws->Call("refresh", {{"token", "garbage"}})), 101u);
  EXPECT_EQ(
      ErrorOf(ws->Call("refresh", {{"token", MakeHs256Token("test-secret", "bob", Now() + 60)}})),
      103u);

  // sub_refresh: the same for a subscription token (claim `channel`) of a private channel.
  auto sub_token = [&](const std::string& user, const std::string& channel, int64_t exp,
                       const std::string& secret = "test-secret") {
    return MakeHs256Token(secret, user, exp, "", R"("channel":")" + channel + R"(")");
  };
  auto s = ws->Call("subscribe", {{"channel", "$chat:w15"},
                                  {"token", sub_token("ann", "$chat:w15", Now() + 60)}});
  ASSERT_TRUE(s && s->contains("subscribe")) << (s ? s->dump() : "no reply");
  auto sr = ws->Call("sub_refresh", {{"channel", "$chat:w15"},
                                     {"token", sub_token("ann", "$chat:w15", Now() + 3600)}});
  ASSERT_TRUE(sr && sr->contains("sub_refresh")) << (sr ? sr->dump() : "no reply");
  EXPECT_TRUE((*sr)["sub_refresh"].value("expires", false));
  EXPECT_GT((*sr)["sub_refresh"].value("ttl", 0), 3000);
  auto sub_refresh = [&](const std::string& token) {
    return ErrorOf(ws->Call("sub_refresh", {{"channel", "$chat:w15"}, {"token", token}}));
  };
  EXPECT_EQ(sub_refresh(sub_token("ann", "$chat:w15", Now() - 10)), 109u);
  EXPECT_EQ(sub_refresh(sub_token("ann", "$chat:w15", Now() + 60, "other")), 101u);
  EXPECT_EQ(sub_refresh(sub_token("bob", "$chat:w15", Now() + 60)), 103u);
  EXPECT_EQ(sub_refresh(sub_token("ann", "$chat:other", Now() + 60)), 103u);
  // None of the refusals ended the session.
  EXPECT_TRUE(ws->Call("ping")->contains("ping"));
}

// --- Commands ------------------------------------------------------------------------------

TEST_F(NodeWsWire, W17_ChannelsNamespacesPermissionsAndLimitsAreChecked) {
  NodeOptions o;
  o.insecure = false;
  o.overrides = {"limits.max_channels_per_connection=2"};
  o.extra_toml = "\n[namespaces.ro]\npresence = true\nhistory_size = 10\nhistory_ttl_ms = 60000\n";
  StartNode(o);
  auto ws = Connected(MakeHs256Token("test-secret", "u"));
  ASSERT_TRUE(ws);
  struct Case {
    std::string channel;
    uint64_t code;
  };
  const std::vector<Case> cases = {
      {"", 107},           {"chat:" + std::string(251, 'x'), 106},  // 256 bytes > 255
      {"chat:a\x01", 107}, {"nope:a", 102},
      {"$nope:a", 102},    {"x:a", 102}};
  for (const auto& c : cases) {
    for (const char* m : {"subscribe", "history", "presence"}) {
      EXPECT_EQ(ErrorOf(ws->Call(m, {{"channel", c.channel}})), c.code) << m << " " << c.channel;
    }
    EXPECT_EQ(ErrorOf(ws->Call("publish", {{"channel", c.channel}, {"data", 1}})), c.code)
        << c.channel;
  }
  // Permissions: the namespace does not let clients publish; a private channel needs a token.
  EXPECT_EQ(ErrorOf(ws->Call("publish", {{"channel", "ro:a"}, {"data", 1}})), 103u);
  EXPECT_EQ(ErrorOf(ws->Call("subscribe", {{"channel", "$chat:a"}})), 103u);
  // Features off in the namespace: 108.
  EXPECT_EQ(ErrorOf(ws->Call("presence", {{"channel", "short:a"}})), 108u);
  EXPECT_EQ(ErrorOf(ws->Call("presence_stats", {{"channel", "short:a"}})), 108u);
  EXPECT_EQ(ErrorOf(ws->Call("history", {{"channel", "nohist:a"}})), 108u);
  // A second subscribe is 105, one over limits.max_channels_per_connection 106.
  ASSERT_TRUE(ws->Call("subscribe", {{"channel", "chat:a"}})->contains("subscribe"));
  EXPECT_EQ(ErrorOf(ws->Call("subscribe", {{"channel", "chat:a"}})), 105u);
  ASSERT_TRUE(ws->Call("subscribe", {{"channel", "ro:a"}})->contains("subscribe"));
  EXPECT_EQ(ErrorOf(ws->Call("subscribe", {{"channel", "chat:c"}})), 106u);
  EXPECT_TRUE(ws->Call("ping")->contains("ping")) << "errors do not end the session";
}

TEST_F(NodeWsWire, W18_EveryLaterPublicationOnceInOrderAndRecoveryAllOrNothing) {
  StartNode();
  for (int i = 1; i <= 3; ++i) Publish("chat:w18", std::to_string(i));
  auto a = Connected();
  ASSERT_TRUE(a);
  const uint64_t sid = a->Send("subscribe", {{"channel", "chat:w18"}});
  for (int i = 4; i <= 30; ++i) Publish("chat:w18", std::to_string(i));  // racing the reply
  auto r = a->Reply(sid);
  ASSERT_TRUE(r && r->contains("subscribe"));
  const uint64_t top = (*r)["subscribe"].value("offset", uint64_t{0});
  ASSERT_GE(top, 3u);
  const std::string epoch = (*r)["subscribe"].value("epoch", "");
  EXPECT_FALSE(epoch.empty());
  for (uint64_t want = top + 1; want <= 30; ++want) {
    auto p = a->Push("pub", "chat:w18");
    ASSERT_TRUE(p) << "offset " << want;
    EXPECT_EQ(p->at("push").at("pub").value("offset", uint64_t{0}), want);
    EXPECT_EQ(p->at("push").at("pub").at("data"), json(want));
  }
  EXPECT_TRUE(a->Call("ping")->contains("ping"));
  EXPECT_FALSE(a->Push("pub", "chat:w18", 200ms)) << "a publication delivered twice";

  // Recovery: from offset 2 of 5 in a namespace keeping 3 (short): every missed one...
  for (int i = 1; i <= 2; ++i) Publish("short:w18", std::to_string(i));
  auto b = Connected();
  ASSERT_TRUE(b);
  auto first = b->Call("subscribe", {{"channel", "short:w18"}});
  ASSERT_TRUE(first && first->contains("subscribe"));
  const std::string short_epoch = (*first)["subscribe"].value("epoch", "");
  for (int i = 3; i <= 4; ++i) Publish("short:w18", std::to_string(i));
  auto c = Connected();
  ASSERT_TRUE(c);
  auto yes =
      c->Call("subscribe",
              {{"channel", "short:w18"}, {"recover", true}, {"epoch", short_epoch}, {"offset", 2}});
  ASSERT_TRUE(yes && yes->contains("subscribe")) << (yes ? yes->dump() : "no reply");
  EXPECT_TRUE((*yes)["subscribe"].value("recovered", false));
  EXPECT_EQ(Offsets((*yes)["subscribe"].value("publications", json::array())),
            (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ((*yes)["subscribe"].value("offset", uint64_t{0}), 4u);
  // ...or, once offset 2's successors left the history, none at all.
  for (int i = 5; i <= 6; ++i) Publish("short:w18", std::to_string(i));
  auto d = Connected();
  ASSERT_TRUE(d);
  auto no =
      d->Call("subscribe",
              {{"channel", "short:w18"}, {"recover", true}, {"epoch", short_epoch}, {"offset", 2}});
  ASSERT_TRUE(no && no->contains("subscribe"));
  EXPECT_FALSE((*no)["subscribe"].value("recovered", false));
  EXPECT_TRUE((*no)["subscribe"].value("was_recovering", false));
  EXPECT_TRUE((*no)["subscribe"].value("publications", json::array()).empty())
      << "never a partial answer";
  EXPECT_EQ((*no)["subscribe"].value("offset", uint64_t{0}), 6u);
  EXPECT_EQ((*no)["subscribe"].value("epoch", ""), short_epoch);
}

TEST_F(NodeWsWire, W19_PresenceAnswersOnePageAndHistoryFollowsBrokerCore) {
  NodeOptions o;
  o.extra_toml =
      "\n[namespaces.pg]\npresence = true\npresence_page_size = 2\nhistory_size = 10\n"
      "history_ttl_ms = 60000\nallow_publish_for_client = true\n";
  StartNode(o);
  std::vector<std::unique_ptr<Ws>> members;
  for (int i = 0; i < 3; ++i) {
    members.push_back(Connected());
    ASSERT_TRUE(members.back());
    ASSERT_TRUE(members.back()->Call("subscribe", {{"channel", "pg:w19"}})->contains("subscribe"));
  }
  Ws& ws = *members[0];
  auto page = ws.Call("presence", {{"channel", "pg:w19"}});
  ASSERT_TRUE(page && page->contains("presence"));
  EXPECT_EQ((*page)["presence"]["presence"].size(), 2u) << "the namespace's page size";
  const std::string cursor = (*page)["presence"].value("next_cursor", "");
  EXPECT_FALSE(cursor.empty());
  auto rest = ws.Call("presence", {{"channel", "pg:w19"}, {"cursor", cursor}});
  ASSERT_TRUE(rest && rest->contains("presence"));
  EXPECT_EQ((*rest)["presence"]["presence"].size(), 1u);
  EXPECT_FALSE((*rest)["presence"].contains("next_cursor")) << "the last page";
  auto one = ws.Call("presence", {{"channel", "pg:w19"}, {"limit", 1}});
  EXPECT_EQ((*one)["presence"]["presence"].size(), 1u) << "limit asks for fewer";
  EXPECT_FALSE((*one)["presence"].value("next_cursor", "").empty());

  // History (broker-core "History queries"): limit, reverse, position only, since.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(ws.Call("publish", {{"channel", "pg:w19"}, {"data", i}})->contains("publish"));
  }
  auto h = ws.Call("history", {{"channel", "pg:w19"}, {"limit", 2}});
  EXPECT_EQ(Offsets((*h)["history"]["publications"]), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ((*h)["history"].value("offset", uint64_t{0}), 3u);
  const std::string epoch = (*h)["history"].value("epoch", "");
  auto rev = ws.Call("history", {{"channel", "pg:w19"}, {"limit", 2}, {"reverse", true}});
  EXPECT_EQ(Offsets((*rev)["history"]["publications"]), (std::vector<uint64_t>{3, 2}));
  auto pos = ws.Call("history", {{"channel", "pg:w19"}, {"limit", 0}});
  EXPECT_FALSE((*pos)["history"].contains("publications")) << "position only";
  EXPECT_EQ((*pos)["history"].value("offset", uint64_t{0}), 3u);
  auto since =
      ws.Call("history",
              {{"channel", "pg:w19"}, {"limit", -1}, {"since", {{"offset", 1}, {"epoch", epoch}}}});
  EXPECT_EQ(Offsets((*since)["history"]["publications"]), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(ErrorOf(ws.Call("history", {{"channel", "pg:w19"},
                                        {"limit", -1},
                                        {"since", {{"offset", 9}, {"epoch", epoch}}}})),
            112u)
      << "a position the stream never had";
}

// --- Pushes and disconnects ---------------------------------------------------------------

TEST_F(NodeWsWire, W21_PushesCarryNoIdAndJoinLeaveOnlyWhenAsked) {
  StartNode();
  auto asked = Connected(), silent = Connected(), nopresence = Connected();
  ASSERT_TRUE(asked && silent && nopresence);
  ASSERT_TRUE(asked->Call("subscribe", {{"channel", "chat:w21"}, {"join_leave", true}})
                  ->contains("subscribe"));
  ASSERT_TRUE(silent->Call("subscribe", {{"channel", "chat:w21"}})->contains("subscribe"));
  ASSERT_TRUE(nopresence->Call("subscribe", {{"channel", "short:w21"}, {"join_leave", true}})
                  ->contains("subscribe"));
  for (const char* ch : {"chat:w21", "short:w21"}) {
    auto comer = Connected();
    ASSERT_TRUE(comer);
    ASSERT_TRUE(comer->Call("subscribe", {{"channel", ch}})->contains("subscribe"));
    ASSERT_TRUE(comer->Call("unsubscribe", {{"channel", ch}})->contains("unsubscribe"));
  }
  auto join = asked->Push("join", "chat:w21");
  ASSERT_TRUE(join);
  EXPECT_FALSE(join->at("push").at("join").at("info").value("client", "").empty());
  EXPECT_TRUE(asked->Push("leave", "chat:w21"));
  // A publication after the join and leave: once it arrives, a join or leave would have too.
  Publish("chat:w21", "1");
  Publish("short:w21", "1");
  ASSERT_TRUE(silent->Push("pub", "chat:w21"));
  ASSERT_TRUE(nopresence->Push("pub", "short:w21"));
  EXPECT_FALSE(silent->Push("join", "", 0ms)) << "join_leave not asked for";
  EXPECT_FALSE(silent->Push("leave", "", 0ms));
  EXPECT_FALSE(nopresence->Push("join", "", 0ms)) << "a namespace without presence";
  EXPECT_FALSE(nopresence->Push("leave", "", 0ms));
  ASSERT_TRUE(asked->Push("pub", "chat:w21"));
  for (Ws* ws : {asked.get(), silent.get(), nopresence.get()}) {
    for (const json& line : ws->lines()) {
      if (line.contains("push")) {
        EXPECT_FALSE(line.contains("id")) << line.dump();
      }
    }
  }
}

TEST_F(NodeWsWire, W22_ServerUnsubscribeIsBelow2500AndEndsTheSubscription) {
  StartNode();
  auto ws = Connected();
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->Call("subscribe", {{"channel", "chat:w22"}})->contains("subscribe"));
  ASSERT_TRUE(ws->Call("subscribe", {{"channel", "chat:w22b"}})->contains("subscribe"));
  const std::string client = OnlyClient(*node_, "chat:w22");
  ASSERT_FALSE(client.empty());
  auto api = Api(*node_, "unsubscribe", R"({"client":")" + client + R"(","channel":"chat:w22"})");
  ASSERT_EQ(api.status, 200) << api.body;
  auto push = ws->Push("unsubscribe", "chat:w22");
  ASSERT_TRUE(push);
  const uint64_t code = push->at("push").at("unsubscribe").value("code", uint64_t{0});
  EXPECT_GE(code, 2000u);
  EXPECT_LT(code, 2500u) << "final: the SDK must not resubscribe";
  EXPECT_FALSE(push->at("push").at("unsubscribe").value("reason", "").empty());
  // Ended on the node: no more publications, not in the presence, and a new subscribe is a
  // new subscription (not 105).
  Publish("chat:w22", "1");
  Publish("chat:w22b", "1");
  ASSERT_TRUE(ws->Push("pub", "chat:w22b"));
  EXPECT_FALSE(ws->Push("pub", "chat:w22", 0ms));
  auto stats = Api(*node_, "presence_stats", R"({"channel":"chat:w22"})");
  EXPECT_NE(stats.body.find(R"("num_clients":0)"), std::string::npos) << stats.body;
  EXPECT_TRUE(ws->Call("subscribe", {{"channel", "chat:w22"}})->contains("subscribe"));
}

TEST_F(NodeWsWire, W23_SessionEndsWithACloseFrameCarryingCodeAndReason) {
  StartNode();
  // A disconnect of the server API with a code and a reason of 200 bytes (2-byte characters):
  // the close frame carries the code and at most 123 bytes of the reason, whole characters.
  auto a = Connected(), b = Connected();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->Call("subscribe", {{"channel", "chat:w23"}})->contains("subscribe"));
  const std::string client = OnlyClient(*node_, "chat:w23");
  ASSERT_FALSE(client.empty());
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xc3\xa9";  // é
  auto api =
      Api(*node_, "disconnect",
          json{{"client", client}, {"disconnect", {{"code", 4001}, {"reason", reason}}}}.dump());
  ASSERT_EQ(api.status, 200) << api.body;
  EXPECT_TRUE(a->client().WaitClosed());
  EXPECT_EQ(static_cast<int>(a->client().reason().code), 4001);
  const std::string got(a->client().reason().reason);
  EXPECT_LE(got.size(), 123u);
  EXPECT_EQ(got, reason.substr(0, 122)) << "cut at a character boundary";

  // A session the node ends for a protocol error: its code and reason (W-12: 3501).
  auto c = std::make_unique<Ws>(*node_);
  ASSERT_TRUE(c->ok());
  ASSERT_TRUE(c->client().Send(R"({"id":1,"ping":{}})"));
  EXPECT_TRUE(c->client().WaitClosed());
  EXPECT_EQ(static_cast<int>(c->client().reason().code), 3501);
  EXPECT_EQ(std::string(c->client().reason().reason), "bad request");
  // The other connected session was not affected.
  EXPECT_TRUE(b->Call("ping")->contains("ping"));
}

}  // namespace
}  // namespace chorus::testing
