// Attacks on a real chorusd (issue 10, docs/operations.md "Security"), each written as it was
// found: deeply nested JSON on every JSON entry, channel state created by reads and without a
// cap, per-connection rates, client-chosen channel info. Each test reproduces the attack and
// checks that the node refuses it with a clear code and stays alive.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using nlohmann::json;

// `depth` levels of arrays around a 1: "[[[1]]]" for 3.
std::string Nested(size_t depth) {
  return std::string(depth, '[') + "1" + std::string(depth, ']');
}

// The error code of an API answer body (0 when none).
uint64_t ApiCode(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("error")) return 0;
  return j["error"].value("code", 0u);
}

// num_channels of the `info` API (the node's channels with state); -1 when not answered.
int64_t NumChannels(const NodeProcess& node) {
  HttpResult r = Api(node, "info", "{}");
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("result")) return -1;
  return j["result"]["nodes"][0].value("num_channels", int64_t{-1});
}

class NodeHardening : public NodeFixture {};

// ---- 1. Nesting depth ---------------------------------------------------------------------

TEST_F(NodeHardening, ApiDataNestedTooDeepIsRefusedAndTheNodeLives) {
  StartNode();
  const std::string deep = Nested(450'000);
  for (const std::string& body :
       {R"({"channel":"chat:d","data":)" + deep + "}",
        R"({"channels":["chat:d"],"data":)" + deep + "}", R"({"user":"u","data":)" + deep + "}"}) {
    for (const char* method : {"publish", "broadcast", "send"}) {
      HttpResult r = Api(*node_, method, body);
      EXPECT_EQ(r.status, 400) << method;
      EXPECT_EQ(ApiCode(r), 107u) << method << ": " << r.body.substr(0, 200);
    }
  }
  EXPECT_EQ(NumChannels(*node_), 0) << "the node answers after the attack";
}

TEST_F(NodeHardening, ApiDataDepthLimitIsExact) {
  StartNode();  // limits.max_json_depth = 64 (default)
  HttpResult ok = Api(*node_, "publish", R"({"channel":"chat:e","data":)" + Nested(64) + "}");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ApiCode(ok), 0u) << ok.body;
  HttpResult deep = Api(*node_, "publish", R"({"channel":"chat:e","data":)" + Nested(65) + "}");
  EXPECT_EQ(deep.status, 400) << deep.body;
  // Brackets inside strings do not count.
  HttpResult str =
      Api(*node_, "publish", R"({"channel":"chat:e","data":")" + std::string(500, '[') + "\"}");
  EXPECT_EQ(str.status, 200) << str.body;
  EXPECT_EQ(ApiCode(str), 0u) << str.body;
}

TEST_F(NodeHardening, ApiDepthLimitIsConfigurable) {
  NodeOptions o;
  o.overrides = {"limits.max_json_depth=3"};
  StartNode(o);
  EXPECT_EQ(Api(*node_, "publish", R"({"channel":"chat:c","data":[[[1]]]})").status, 200);
  EXPECT_EQ(Api(*node_, "publish", R"({"channel":"chat:c","data":[[[[1]]]]})").status, 400);
}

// N-21: native data nested deeper than limits.max_json_depth gets 107.
TEST_F(NodeHardening, NativePublishNestedTooDeepIsRefusedAndHistoryWorks) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  // 60,000 levels fit the default native frame cap (max_publication_bytes + 64 KiB) once the
  // publication limit allows them; at the default limit the data is refused by size or depth.
  for (size_t depth : {65ul, 30'000ul}) {
    auto r = s.Call("publish", P({{"channel", "chat:n"}, {"data", Nested(depth)}}));
    ASSERT_TRUE(r) << depth;
    EXPECT_TRUE(ErrorCode(r) == 107u || ErrorCode(r) == 106u) << depth;
  }
  EXPECT_EQ(ErrorCode(s.Call("publish", P({{"channel", "chat:n"}, {"data", Nested(65)}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("publish", P({{"channel", "chat:n"}, {"data", Nested(64)}}))), 0u);
  HttpResult h = Api(*node_, "history", R"({"channel":"chat:n","limit":-1})");
  EXPECT_EQ(h.status, 200);
  json j = json::parse(h.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("result")) << h.body.substr(0, 200);
  EXPECT_EQ(j["result"]["publications"].size(), 1u);
}

TEST_F(NodeHardening, NativeDeepPublishWithLargePublicationLimitIsRefused) {
  // The issue's attack: limits.max_publication_bytes = 262144 lets 130,000 levels through the
  // frame cap; the next API history crashed in the reply's dump().
  NodeOptions o;
  o.overrides = {"limits.max_publication_bytes=262144", "client.max_queue_bytes=1048576"};
  StartNode(o);
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  auto r = s.Call("publish", P({{"channel", "chat:big"}, {"data", Nested(130'000)}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(ErrorCode(r), 107u);
  HttpResult h = Api(*node_, "history", R"({"channel":"chat:big","limit":-1})");
  EXPECT_EQ(h.status, 200) << "the node lives";
}

TEST_F(NodeHardening, NativeConnectInfoNestedTooDeepIsRefused) {
  StartNode();
  RawSession s = Session();
  auto r = s.Call("connect", P({{"user", "u"}, {"info", Nested(1000)}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(ErrorCode(r), 107u);
}

// ---- 2. Channel state ---------------------------------------------------------------------

// N-19: reads create no channel state.
TEST_F(NodeHardening, HistoryReadsDoNotCreateChannels) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  for (int i = 0; i < 500; ++i) {
    const std::string ch = "chat:r" + std::to_string(i);
    auto r = s.Call("history", P({{"channel", ch}, {"limit", -1}}));
    ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
    EXPECT_EQ(r->Uint("result.offset"), 0u);
    HttpResult h = Api(*node_, "history", R"({"channel":")" + ch + R"(","limit":-1})");
    ASSERT_EQ(h.status, 200);
    EXPECT_EQ(ApiCode(h), 0u) << h.body;
    ASSERT_TRUE(s.Call("presence", P({{"channel", ch}}))->Has("result"));
  }
  EXPECT_EQ(NumChannels(*node_), 0);
  // A position asked of a channel the node does not hold cannot be served.
  HttpResult since = Api(*node_, "history",
                         R"({"channel":"chat:r1","limit":-1,"since":{"offset":3,"epoch":"x"}})");
  EXPECT_EQ(ApiCode(since), 112u) << since.body;
}

// N-19: a new channel beyond limits.max_channels gets 106.
TEST_F(NodeHardening, ChannelCapRefusesNewChannelsWith106) {
  NodeOptions o;
  o.overrides = {"limits.max_channels=5"};
  StartNode(o);
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.Call("subscribe", P({{"channel", "chat:" + std::to_string(i)}}))->Has("result"));
  }
  EXPECT_EQ(ErrorCode(s.Call("subscribe", P({{"channel", "chat:5"}}))), 106u);
  EXPECT_EQ(ApiCode(Api(*node_, "publish", R"({"channel":"chat:6","data":1})")), 106u);
  // Channels the node holds still work.
  EXPECT_EQ(ErrorCode(s.Call("publish", P({{"channel", "chat:0"}, {"data", "1"}}))), 0u);
  HttpResult m = HttpRequest(node_->http_host(), node_->http_port(), "GET", "/metrics");
  EXPECT_NE(m.body.find("chorus_channels_refused_total 2"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("chorus_channels_limit 5"), std::string::npos);
}

// N-19: channel creations beyond the session's rate get 111.
TEST_F(NodeHardening, ChannelCreationRateIsLimitedPerConnection) {
  NodeOptions o;
  o.overrides = {"limits.channel_creations_per_second=10"};
  StartNode(o);
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  int ok = 0, limited = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = s.Call("subscribe", P({{"channel", "chat:" + std::to_string(i)}}));
    ASSERT_TRUE(r);
    if (r->Has("result")) ++ok;
    if (ErrorCode(r) == 111u) ++limited;
  }
  EXPECT_GE(ok, 10);
  EXPECT_GT(limited, 0);
  EXPECT_EQ(ok + limited, 100);
  // Another connection has its own budget.
  RawSession t = Session();
  ASSERT_FALSE(ConnectAs(t, "v").empty());
  EXPECT_TRUE(t.Call("subscribe", P({{"channel", "chat:other"}}))->Has("result"));
}

TEST_F(NodeHardening, IdleEmptyChannelsAreDropped) {
  NodeOptions o;
  o.overrides = {"limits.idle_channel_ttl_ms=100"};
  StartNode(o);
  // ttl: history kept 500 ms; after that the channel is empty and idle.
  ASSERT_EQ(ApiCode(Api(*node_, "publish", R"({"channel":"ttl:x","data":1})")), 0u);
  EXPECT_EQ(NumChannels(*node_), 1);
  EXPECT_TRUE(EventuallyTrue([&] { return NumChannels(*node_) == 0; }, std::chrono::seconds(5)));
}

// ---- 3. Publish rate ----------------------------------------------------------------------

// N-19: publishes beyond the session's rate get 111.
TEST_F(NodeHardening, PublishRateIsLimitedPerConnectionWith111) {
  NodeOptions o;
  o.overrides = {"limits.publications_per_second=20"};
  StartNode(o);
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(s.Send("publish", P({{"channel", "chat:p"}, {"data", "1"}})));
  }
  int ok = 0, limited = 0;
  for (uint64_t id : ids) {
    auto r = s.Reply(id);
    ASSERT_TRUE(r);
    if (r->Has("result")) ++ok;
    if (ErrorCode(r) == 111u) ++limited;
  }
  EXPECT_GE(ok, 20);
  EXPECT_LT(ok, 200);
  EXPECT_EQ(ok + limited, 200);
}

// The issue's attack: one authenticated native client pipelines publishes of 60 KB (20,000 in the
// issue, 5,000 here) without reading a reply. The node's input for that session is bounded in bytes
// (native.max_input_bytes, 8 MiB): it stops reading the socket instead of growing (N-19).
TEST_F(NodeHardening, PipelinedLargePublishesStayBoundedInMemory) {
  StartNode();
  const int pid = node_->process().pid();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  const size_t base = RssBytes(pid);
  s.socket().set(zmq::sockopt::sndtimeo, 20'000);
  const std::string data = "\"" + std::string(60'000, 'x') + "\"";
  const std::string params = P({{"channel", "nohist:big"}, {"data", data}});
  size_t peak = base;
  for (int i = 0; i < 5'000; ++i) {
    s.Send("publish", params);
    if (i % 500 == 0) peak = std::max(peak, RssBytes(pid));
  }
  peak = std::max(peak, RssBytes(pid));
  [[maybe_unused]] const size_t growth = peak > base ? peak - base : 0;
  std::printf("rss: base %zu MB, peak %zu MB\n", base >> 20, peak >> 20);
#if !defined(__SANITIZE_ADDRESS__)
  // Not under ASan (chorusd is built like this test): its quarantine keeps the freed 60 KB
  // inputs resident, 311 MB of growth with the default 256 MiB quarantine and 25 MB with 16 MiB
  // (scripts/asan-test.sh lists this).
  EXPECT_LT(growth, size_t{100} << 20) << "RSS grew by " << (growth >> 20) << " MB";
#endif
  HttpResult h = Api(*node_, "info", "{}");
  EXPECT_EQ(h.status, 200) << "the node still answers";
}

// ---- 5. Channel info ----------------------------------------------------------------------

// N-20: a native subscribe's `info` is ignored; chan_info comes from a subscription token.
TEST_F(NodeHardening, NativeSubscribeInfoIsIgnored) {
  StartNode();
  RawSession a = Session(), w = Session();
  const std::string client = ConnectAs(a, "alice");
  ASSERT_FALSE(ConnectAs(w, "watcher").empty());
  ASSERT_TRUE(w.Call("subscribe", P({{"channel", "chat:i"}}))->Has("result"));
  ASSERT_TRUE(a.Call("subscribe", P({{"channel", "chat:i"}, {"info", R"({"role":"admin"})"}}))
                  ->Has("result"));
  auto join = w.Push("join", "chat:i");
  ASSERT_TRUE(join);
  EXPECT_EQ(join->Str("data.info.chan_info"), "");
  auto p = w.Call("presence", P({{"channel", "chat:i"}}));
  EXPECT_EQ(p->Str("result.presence." + client + ".chan_info"), "");
  ASSERT_EQ(ErrorCode(a.Call("publish", P({{"channel", "chat:i"}, {"data", "1"}}))), 0u);
  auto pub = w.Push("pub", "chat:i");
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->Str("data.info.chan_info"), "");
}

// JSON that ends early: nlohmann's parser takes a NUL byte for the end of its input, so
// `{...}\0junk` passed as valid and the junk was stored and relayed verbatim (native data is kept
// as the client's text). API bodies and native JSON are refused whole: 400 "body is not valid
// JSON" / 107, and nothing reaches history. Trailing garbage without a NUL is refused too.
TEST_F(NodeHardening, JsonWithANulByteOrTrailingGarbageIsRefused) {
  StartNode();
  const std::vector<std::string> tails = {std::string("\0", 1), std::string("\0junk", 5),
                                          std::string("\0}", 2), " junk", "}"};
  const std::string body = R"({"channel":"chat:nul","data":{"a":1}})";
  for (const std::string& tail : tails) {
    HttpResult r = Api(*node_, "publish", body + tail);
    EXPECT_EQ(r.status, 400) << "tail of " << tail.size() << " bytes: " << r.body;
    EXPECT_NE(r.body.find("not valid JSON"), std::string::npos) << r.body;
  }
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "u").empty());
  for (const std::string& tail : tails) {
    auto r = s.Call("publish", P({{"channel", "chat:nul"}, {"data", R"({"a":1})" + tail}}));
    EXPECT_EQ(ErrorCode(r), 107u) << "tail of " << tail.size() << " bytes";
  }
  RawSession t = Session();
  EXPECT_EQ(ErrorCode(t.Call("connect", P({{"user", "v"}, {"info", std::string("{}\0x", 4)}}))),
            107u)
      << "connect info";
  HttpResult h = Api(*node_, "history", R"({"channel":"chat:nul","limit":-1})");
  ASSERT_EQ(h.status, 200);
  json j = json::parse(h.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("result")) << h.body;
  EXPECT_TRUE(!j["result"].contains("publications") || j["result"]["publications"].empty())
      << h.body;
  // The same data without the tail is accepted.
  EXPECT_EQ(Api(*node_, "publish", body).status, 200);
  EXPECT_EQ(ErrorCode(s.Call("publish", P({{"channel", "chat:nul"}, {"data", R"({"a":1})"}}))), 0u);
}

}  // namespace
}  // namespace chorus::testing
