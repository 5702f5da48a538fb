// The server API's field types (issue 10, "Should fix"): for every method, each field it reads,
// sent with a wrong type, is a 400 with Centrifugo's bad request code 107 naming the field,
// never a 500; nothing happens (no publication, no disconnect), and the node keeps answering.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_support.h"

namespace chorus::testing {
namespace {

using nlohmann::json;

json Body(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  return j.is_discarded() ? json() : j;
}

class NodeHttpTypes : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.ready()) << node_.banner(); }

  // Every body is answered 400 / 107 and the message names `field`.
  void ExpectBad(const std::string& method,
                 const std::vector<std::pair<std::string, json>>& cases) {
    for (const auto& [field, body] : cases) {
      HttpResult r = Api(node_, method, body.dump());
      EXPECT_EQ(r.status, 400) << method << " " << body.dump() << ": " << r.body;
      json b = Body(r);
      ASSERT_TRUE(b.contains("error")) << method << " " << body.dump() << ": " << r.body;
      EXPECT_EQ(b["error"].value("code", 0u), 107u) << r.body;
      EXPECT_NE(b["error"].value("message", "").find(field), std::string::npos)
          << method << " " << body.dump() << ": " << r.body;
    }
  }

  uint64_t TopOffset(const std::string& channel) {
    HttpResult h = Api(node_, "history", json{{"channel", channel}, {"limit", 0}}.dump());
    return Body(h)["result"].value("offset", uint64_t{0});
  }

  NodeProcess node_;
};

TEST_F(NodeHttpTypes, PublishWrongTypesAre400AndNothingIsPublished) {
  const json ok = {{"channel", "chat:t"}, {"data", {{"x", 1}}}};
  auto with = [&](const char* k, json v) {
    json b = ok;
    b[k] = std::move(v);
    return b;
  };
  ExpectBad("publish", {{"skip_history", with("skip_history", "yes")},
                        {"skip_history", with("skip_history", 1)},
                        {"skip_history", with("skip_history", json::array({true}))},
                        {"tags", with("tags", "a=b")},
                        {"tags", with("tags", {{"a", 1}})},
                        {"channel", with("channel", json::array({"chat:t"}))},
                        {"data", json{{"channel", "chat:t"}}}});
  EXPECT_EQ(TopOffset("chat:t"), 0u);
  HttpResult r = Api(node_, "publish", with("skip_history", true).dump());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpTypes, BroadcastWrongTypesAre400) {
  const json ok = {{"channels", {"chat:a", "chat:b"}}, {"data", 1}};
  auto with = [&](const char* k, json v) {
    json b = ok;
    b[k] = std::move(v);
    return b;
  };
  ExpectBad("broadcast", {{"channels", with("channels", "chat:a")},
                          {"channels", with("channels", json::array({"chat:a", 2}))},
                          {"skip_history", with("skip_history", "no")},
                          {"tags", with("tags", json::array())},
                          {"data", json{{"channels", {"chat:a"}}}}});
  EXPECT_EQ(TopOffset("chat:a"), 0u);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpTypes, ReadMethodsWrongTypesAre400) {
  ExpectBad("presence", {{"cursor", {{"channel", "chat:p"}, {"cursor", 5}}},
                         {"limit", {{"channel", "chat:p"}, {"limit", "10"}}},
                         {"limit", {{"channel", "chat:p"}, {"limit", -1}}},
                         {"channel", {{"channel", 1}}}});
  ExpectBad("presence_stats", {{"channel", {{"channel", true}}}});
  ExpectBad("history", {{"limit", {{"channel", "chat:h"}, {"limit", 1.5}}},
                        {"limit", {{"channel", "chat:h"}, {"limit", "3"}}},
                        {"reverse", {{"channel", "chat:h"}, {"reverse", "true"}}},
                        {"since", {{"channel", "chat:h"}, {"since", 3}}},
                        {"since.offset", {{"channel", "chat:h"}, {"since", {{"offset", "1"}}}}},
                        {"since.offset", {{"channel", "chat:h"}, {"since", {{"offset", -1}}}}},
                        {"since.epoch", {{"channel", "chat:h"}, {"since", {{"epoch", 7}}}}}});
  ExpectBad("history_remove", {{"channel", {{"channel", json::object()}}}});
  ExpectBad("channels", {{"pattern", {{"pattern", json::array()}}}});
  EXPECT_EQ(Api(node_, "info", "{}").status, 200);
  EXPECT_TRUE(node_.Stop());
}

TEST_F(NodeHttpTypes, TargetedMethodsWrongTypesAre400) {
  for (const char* m : {"disconnect", "unsubscribe", "subscribe", "send"}) {
    ExpectBad(m, {{"user", {{"user", 1}, {"channel", "chat:x"}, {"data", 1}}},
                  {"client", {{"client", false}, {"channel", "chat:x"}, {"data", 1}}}});
  }
  ExpectBad("disconnect", {{"disconnect", {{"user", "u"}, {"disconnect", "now"}}},
                           {"disconnect.code", {{"user", "u"}, {"disconnect", {{"code", "4000"}}}}},
                           {"disconnect.code", {{"user", "u"}, {"disconnect", {{"code", 4000.5}}}}},
                           {"disconnect.reason",
                            {{"user", "u"}, {"disconnect", {{"code", 4000}, {"reason", 1}}}}}});
  ExpectBad("subscribe",
            {{"recover_since", {{"user", "u"}, {"channel", "chat:x"}, {"recover_since", "1"}}},
             {"recover_since.offset",
              {{"user", "u"}, {"channel", "chat:x"}, {"recover_since", {{"offset", true}}}}}});
  ExpectBad("send", {{"data", {{"user", "u"}}}});
  EXPECT_EQ(Api(node_, "info", "{}").status, 200);
  EXPECT_TRUE(node_.Stop());
}

}  // namespace
}  // namespace chorus::testing
