// The server API's `batch` and `refresh` (Centrifugo's; docs/broker-node.md, "Server API")
// against a real chorusd, with native sessions made by hand (node_support.h).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "node_support.h"

namespace chorus::testing {
namespace {

using nlohmann::json;

json Call(const NodeProcess& node, const std::string& method, const json& body) {
  HttpResult r = Api(node, method, body.dump());
  json j = json::parse(r.body, nullptr, false);
  return j.is_discarded() ? json() : j;
}

class NodeHttpBatch : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.ready()) << node_.banner(); }

  std::unique_ptr<RawSession> Connect(const std::string& user) {
    auto s = std::make_unique<RawSession>(ctx_, node_.native());
    auto r = s->Call("connect", P({{"user", user}}));
    EXPECT_TRUE(r && r->Has("result")) << user;
    return s;
  }

  zmq::context_t ctx_;
  NodeProcess node_;
};

TEST_F(NodeHttpBatch, CommandsRunInOrderWithOneReplyEach) {
  json body = {{"commands",
                {{{"method", "publish"}, {"params", {{"channel", "chat:b"}, {"data", 1}}}},
                 {{"publish", {{"channel", "chat:b"}, {"data", 2}}}},
                 {{"method", "history"}, {"params", {{"channel", "chat:b"}, {"limit", -1}}}},
                 {{"publish", {{"channel", "nope:x"}, {"data", 3}}}},
                 {{"publish", {{"channel", "chat:b"}, {"skip_history", "x"}, {"data", 4}}}},
                 {{"method", "nope"}, {"params", json::object()}},
                 {{"batch", {{"commands", json::array()}}}},
                 "publish"}}};
  json r = Call(node_, "batch", body);
  ASSERT_TRUE(r.contains("replies")) << r.dump();
  const json& replies = r["replies"];
  ASSERT_EQ(replies.size(), 8u) << r.dump();
  EXPECT_EQ(replies[0]["publish"].value("offset", 0u), 1u) << replies[0];
  EXPECT_EQ(replies[1]["publish"].value("offset", 0u), 2u) << replies[1];
  ASSERT_TRUE(replies[2].contains("history")) << replies[2];
  EXPECT_EQ(replies[2]["history"]["publications"].size(), 2u) << "the earlier commands ran first";
  EXPECT_EQ(replies[3]["error"].value("code", 0u), 102u) << replies[3];
  EXPECT_EQ(replies[4]["error"].value("code", 0u), 107u) << replies[4];
  EXPECT_EQ(replies[5]["error"].value("code", 0u), 104u) << replies[5];
  EXPECT_EQ(replies[6]["error"].value("code", 0u), 104u) << "no batch inside a batch";
  EXPECT_EQ(replies[7]["error"].value("code", 0u), 107u) << replies[7];
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpBatch, MalformedBatchIs400) {
  for (const json& body : {json::object(), json{{"commands", "publish"}},
                           json{{"commands", json::array({json::object()})}}}) {
    HttpResult r = Api(node_, "batch", body.dump());
    if (body.contains("commands") && body["commands"].is_array()) {
      EXPECT_EQ(r.status, 200) << r.body;  // a bad command is a bad reply, not a bad batch
      continue;
    }
    EXPECT_EQ(r.status, 400) << body.dump() << ": " << r.body;
  }
  json many = {{"commands", json::array()}};
  for (int i = 0; i < 1001; ++i) many["commands"].push_back({{"info", json::object()}});
  EXPECT_EQ(Api(node_, "batch", many.dump()).status, 400) << "at most 1000 commands";
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpBatch, RefreshExpiredDisconnectsWith3005) {
  auto alice = Connect("alice");
  auto bob = Connect("bob");
  json r = Call(node_, "refresh", {{"user", "alice"}, {"expired", true}});
  EXPECT_TRUE(r.contains("result")) << r.dump();
  auto push = alice->Push("disconnect");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 3005u);
  EXPECT_TRUE(push->Bool("data.reconnect"));
  auto ping = bob->Call("ping");
  EXPECT_TRUE(ping && ping->Has("result")) << "another user is untouched";
  EXPECT_EQ(Api(node_, "refresh", R"({"user":"alice","expired":"yes"})").status, 400);
  EXPECT_EQ(Api(node_, "refresh", R"({"user":"alice","expire_at":"soon"})").status, 400);
  EXPECT_EQ(Api(node_, "refresh", R"({"expired":true})").status, 400) << "user is required";
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpBatch, RefreshExpireAtSetsTheExpiry) {
  auto alice = Connect("alice");
  // expire_at 1 s ahead: the session expires (3005) once the node's expiry sweep passes it
  // (plus its 25 s grace for a client refresh, engine.cc kExpiredCloseDelayS).
  const int64_t soon = static_cast<int64_t>(time(nullptr)) + 1;
  json r = Call(node_, "refresh", {{"user", "alice"}, {"expire_at", soon}});
  EXPECT_TRUE(r.contains("result")) << r.dump();
  auto push = alice->Push("disconnect", "", std::chrono::seconds(40));
  ASSERT_TRUE(push);
  EXPECT_EQ(push->Uint("data.code"), 3005u);
  EXPECT_TRUE(node_.Stop());
}

}  // namespace
}  // namespace chorus::testing
