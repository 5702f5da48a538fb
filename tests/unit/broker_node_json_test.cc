// Unit tests for the WebSocket JSON codec (protocol/client_json.h, docs/protocol/websocket.md).
// The command goldens are written by hand after what centrifuge-js 5.x puts on the wire: it
// builds `{method: {...}}` and sets `id` afterwards, so JSON.stringify writes `id` last, and it
// joins a batch with '\n'. The reply and push goldens pin our exact output.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "broker/protocol/client_json.h"
#include "chp/keys.h"

// Designated initializers name only the fields a case is about; GCC 12 warns about the rest.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace chorus::broker::json {
namespace {

// The only command of a frame (fails the test otherwise).
ClientCommand One(std::string_view frame) {
  const DecodedFrame f = DecodeFrame(frame);
  EXPECT_FALSE(f.malformed) << f.reason << " in " << frame;
  EXPECT_EQ(f.commands.size(), 1u) << frame;
  return f.commands.empty() ? ClientCommand{} : f.commands[0];
}

template <typename T>
T Req(const ClientCommand& c) {
  EXPECT_EQ(c.error, 0u);
  const T* r = std::get_if<T>(&c.request);
  EXPECT_NE(r, nullptr) << "request holds alternative " << c.request.index();
  return r ? *r : T{};
}

// `json` is one valid compact JSON value: publishing it as data gives it back unchanged.
bool IsCompactJson(const std::string& json) {
  const DecodedFrame f =
      DecodeFrame("{\"id\":1,\"publish\":{\"channel\":\"c\",\"data\":" + json + "}}");
  if (f.malformed || f.commands.size() != 1 || f.commands[0].error != 0) return false;
  return std::get<PublishRequest>(f.commands[0].request).data == json;
}

// `depth` levels of arrays and objects, alternating, around a number.
std::string Nested(size_t depth) {
  std::string out;
  for (size_t i = 0; i < depth; ++i) out += i % 2 ? "[" : "{\"k\":";
  out += "1";
  for (size_t i = depth; i-- > 0;) out += i % 2 ? "]" : "}";
  return out;
}

// --- Commands as centrifuge-js sends them (W-3, W-8).

TEST(JsonDecode, ConnectAsTheSdkSendsIt) {
  const auto c =
      One(R"({"connect":{"token":"eyJhbGciOi.x.y","name":"js","version":"1.2"},"id":1})");
  EXPECT_EQ(c.id, 1u);
  const auto r = Req<ConnectRequest>(c);
  EXPECT_EQ(r.token, "eyJhbGciOi.x.y");
  EXPECT_EQ(r.name, "js");
  EXPECT_EQ(r.version, "1.2");
  // data and headers are accepted and ignored.
  const auto c2 = One(R"({"connect":{"name":"js","data":{"a":[1]},"headers":{"h":"v"}},"id":1})");
  EXPECT_EQ(Req<ConnectRequest>(c2), (ConnectRequest{.name = "js"}));
}

TEST(JsonDecode, ConnectSubsToRecover) {  // W-25: the SDK's recoverable server-side subs
  const auto r = Req<ConnectRequest>(
      One(R"({"connect":{"subs":{"feed:a":{"recover":true,"offset":12,"epoch":"ep"},"feed:b":{},)"
          R"("x":null,"y":{"recover":true,"offset":"7","future":1}}},"id":1})"));
  using Subs = std::vector<std::pair<std::string, SubscribeRecovery>>;
  EXPECT_EQ(r.subs,
            (Subs{{"feed:a", {true, "ep", 12}}, {"feed:b", {}}, {"x", {}}, {"y", {true, "", 7}}}));
  // Wrong shapes are 107 (W-8).
  for (const char* bad :
       {R"({"connect":{"subs":[]},"id":1})", R"({"connect":{"subs":{"a":1}},"id":1})",
        R"({"connect":{"subs":{"a":{"offset":-1}}},"id":1})",
        R"({"connect":{"subs":{"a":{"recover":"yes"}}},"id":1})"}) {
    EXPECT_EQ(One(bad).error, 107u) << bad;
  }
  // At most 1024 entries.
  std::string many = R"({"connect":{"subs":{)";
  for (int i = 0; i < 1025; ++i) many += (i ? ",\"" : "\"") + std::to_string(i) + "\":{}";
  many += "}},\"id\":1}";
  EXPECT_EQ(One(many).error, 107u);
}

TEST(JsonDecode, SubscribeWithRecoveryAsTheSdkSendsIt) {
  const auto c = One(
      R"({"subscribe":{"channel":"news:1","token":"st","positioned":true,"recoverable":true,)"
      R"("join_leave":true,"flag":1,"recover":true,"offset":17,"epoch":"xyz","delta":"fossil"},"id":2})");
  EXPECT_EQ(c.id, 2u);
  const auto r = Req<SubscribeRequest>(c);
  EXPECT_EQ(r.channel, "news:1");
  EXPECT_EQ(r.token, "st");
  EXPECT_TRUE(r.recover);
  EXPECT_EQ(r.offset, 17u);
  EXPECT_EQ(r.epoch, "xyz");
  EXPECT_TRUE(r.positioned);
  EXPECT_TRUE(r.recoverable);
  EXPECT_TRUE(r.join_leave);
  EXPECT_EQ(Req<SubscribeRequest>(One(R"({"subscribe":{"channel":"c"},"id":3})")),
            (SubscribeRequest{.channel = "c"}));
}

TEST(JsonDecode, BatchIsDecodedInOrder) {
  const DecodedFrame f = DecodeFrame(
      "{\"connect\":{\"name\":\"js\"},\"id\":1}\n"
      "{\"subscribe\":{\"channel\":\"a\"},\"id\":2}\n"
      "{\"subscribe\":{\"channel\":\"b\"},\"id\":3}");
  ASSERT_FALSE(f.malformed);
  ASSERT_EQ(f.commands.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<ConnectRequest>(f.commands[0].request));
  EXPECT_EQ(std::get<SubscribeRequest>(f.commands[1].request).channel, "a");
  EXPECT_EQ(std::get<SubscribeRequest>(f.commands[2].request).channel, "b");
  EXPECT_EQ(f.commands[2].id, 3u);
}

TEST(JsonDecode, BlankLinesAndCrlfAreSkipped) {
  const DecodedFrame f = DecodeFrame("\n\r\n{\"ping\":{},\"id\":4}\r\n  \n\t\n{}\r\n");
  ASSERT_FALSE(f.malformed);
  ASSERT_EQ(f.commands.size(), 1u);
  EXPECT_EQ(f.commands[0].id, 4u);
  EXPECT_EQ(f.pongs, 1u);
  const DecodedFrame empty = DecodeFrame("");
  EXPECT_FALSE(empty.malformed);
  EXPECT_TRUE(empty.commands.empty());
  EXPECT_EQ(empty.pongs, 0u);
}

TEST(JsonDecode, PublishKeepsDataAsMinifiedJson) {
  const auto r = Req<PublishRequest>(One(
      R"({"publish":{"channel":"chat","data":{ "text" : "hé \"q\"", "n":[1, -2, 2.5, true, null] }},"id":5})"));
  EXPECT_EQ(r.channel, "chat");
  EXPECT_EQ(r.data, R"({"text":"hé \"q\"","n":[1,-2,2.5,true,null]})");
  // Any JSON value is data.
  EXPECT_EQ(Req<PublishRequest>(One(R"({"publish":{"channel":"c","data":"s"},"id":1})")).data,
            "\"s\"");
  EXPECT_EQ(Req<PublishRequest>(One(R"({"publish":{"channel":"c","data":0},"id":1})")).data, "0");
  EXPECT_EQ(Req<PublishRequest>(One(R"({"publish":{"channel":"c","data":[]},"id":1})")).data, "[]");
}

TEST(JsonDecode, PublishWithoutDataIs107) {  // W-16
  EXPECT_EQ(One(R"({"publish":{"channel":"c"},"id":6})").error, 107u);
  EXPECT_EQ(One(R"({"publish":{"channel":"c","data":null},"id":6})").error, 107u);
  EXPECT_EQ(One(R"({"publish":{"channel":"c"},"id":6})").id, 6u);
}

TEST(JsonDecode, PresenceStatsHistory) {
  EXPECT_EQ(Req<PresenceRequest>(One(R"({"presence":{"channel":"room"},"id":7})")),
            (PresenceRequest{.channel = "room"}));
  EXPECT_EQ(Req<PresenceStatsRequest>(One(R"({"presence_stats":{"channel":"room"},"id":8})")),
            (PresenceStatsRequest{.channel = "room"}));
  const auto h = Req<HistoryRequest>(One(
      R"({"history":{"channel":"c","since":{"offset":3,"epoch":"e1"},"limit":10,"reverse":true},"id":9})"));
  EXPECT_EQ(h.channel, "c");
  EXPECT_EQ(h.limit, 10);
  ASSERT_TRUE(h.since.has_value());
  EXPECT_EQ(*h.since, (StreamPosition{3, "e1"}));
  EXPECT_TRUE(h.reverse);
  // The SDK's default history call: no limit (position only), no since.
  const auto h0 = Req<HistoryRequest>(One(R"({"history":{"channel":"c"},"id":10})"));
  EXPECT_EQ(h0.limit, 0);
  EXPECT_FALSE(h0.since.has_value());
  EXPECT_EQ(Req<HistoryRequest>(One(R"({"history":{"channel":"c","limit":-1},"id":1})")).limit, -1);
  // since without epoch (the SDK leaves it out when empty).
  EXPECT_EQ(
      *Req<HistoryRequest>(One(R"({"history":{"channel":"c","since":{"offset":2}},"id":1})")).since,
      (StreamPosition{2, ""}));
}

TEST(JsonDecode, OtherMethods) {
  EXPECT_EQ(Req<UnsubscribeRequest>(One(R"({"unsubscribe":{"channel":"c"},"id":11})")).channel,
            "c");
  EXPECT_EQ(Req<RefreshRequest>(One(R"({"refresh":{"token":"t2"},"id":12})")).token, "t2");
  EXPECT_EQ(Req<SubRefreshRequest>(One(R"({"sub_refresh":{"channel":"c","token":"s2"},"id":13})")),
            (SubRefreshRequest{"c", "s2"}));
  const auto ping = One(R"({"ping":{},"id":14})");
  EXPECT_EQ(ping.id, 14u);
  Req<PingRequest>(ping);
  const auto rpc = Req<RpcRequest>(One(
      R"({"rpc":{"method":"chorus.presence_page","data":{"channel":"c","limit":10}},"id":15})"));
  EXPECT_EQ(rpc.method, kRpcPresencePage);
  EXPECT_EQ(rpc.data, R"({"channel":"c","limit":10})");
}

TEST(JsonDecode, SendHasNoId) {
  const auto c = One(R"({"send":{"data":{"x":1}}})");
  EXPECT_EQ(c.id, 0u);
  EXPECT_EQ(Req<SendRequest>(c).data, R"({"x":1})");
}

TEST(JsonDecode, EmptyObjectIsAPong) {  // W-9
  const DecodedFrame f = DecodeFrame(std::string(kPing));
  EXPECT_FALSE(f.malformed);
  EXPECT_TRUE(f.commands.empty());
  EXPECT_EQ(f.pongs, 1u);
  EXPECT_EQ(DecodeFrame("{}\n{}\n{\"id\":0}").pongs, 3u);
  // Only unknown fields, no id: still a pong (as Centrifugo's isPong).
  EXPECT_EQ(DecodeFrame(R"({"future":{"x":1}})").pongs, 1u);
}

TEST(JsonDecode, UnknownMethodIs104) {  // W-8
  const auto c = One(R"({"frobnicate":{"x":1},"id":7})");
  EXPECT_EQ(c.id, 7u);
  EXPECT_EQ(c.error, 104u);
  EXPECT_EQ(One(R"({"id":8})").error, 104u);
  // v1 style commands are not supported: no method field of ours.
  EXPECT_EQ(One(R"({"id":1,"method":1,"params":{"channel":"c"}})").error, 104u);
}

TEST(JsonDecode, UnknownFieldsAreIgnored) {  // W-8
  const auto c = One(
      R"({"x":{"deep":[1,{"y":null}]},"subscribe":{"channel":"c","zzz":true,"tf":{"op":"and"}},"id":1,"w":"v"})");
  EXPECT_EQ(Req<SubscribeRequest>(c), (SubscribeRequest{.channel = "c"}));
}

TEST(JsonDecode, NullFieldsAreAbsent) {
  EXPECT_EQ(
      Req<SubscribeRequest>(
          One(R"({"subscribe":{"channel":"c","token":null,"recover":null,"offset":null},"id":1})")),
      (SubscribeRequest{.channel = "c"}));
  // A null method field does not count; the next one does.
  Req<PingRequest>(One(R"({"connect":null,"ping":{},"id":1})"));
  // Only null method fields: none.
  EXPECT_EQ(One(R"({"ping":null,"id":1})").error, 104u);
}

TEST(JsonDecode, FirstMethodInProtoOrderWins) {
  Req<ConnectRequest>(One(R"({"ping":{},"connect":{},"id":1})"));
  EXPECT_EQ(Req<SubscribeRequest>(
                One(R"({"history":{"channel":"h"},"subscribe":{"channel":"s"},"id":1})"))
                .channel,
            "s");
}

TEST(JsonDecode, WrongTypesAre107) {  // W-8
  for (const char* frame : {
           R"({"subscribe":{"channel":5},"id":3})",
           R"({"subscribe":"news","id":3})",
           R"({"subscribe":{"channel":"c","recover":"yes"},"id":3})",
           R"({"subscribe":{"channel":"c","offset":-1},"id":3})",
           R"({"subscribe":{"channel":"c","offset":1.5},"id":3})",
           R"({"subscribe":{"channel":"c","offset":"12a"},"id":3})",
           R"({"subscribe":{"channel":"c","offset":"18446744073709551616"},"id":3})",
           R"({"connect":{"token":["t"]},"id":3})",
           R"({"history":{"channel":"c","since":5},"id":3})",
           R"({"history":{"channel":"c","since":{"offset":"x"}},"id":3})",
           R"({"history":{"channel":"c","limit":true},"id":3})",
           R"({"presence":{"channel":"c","limit":4294967296},"id":3})",
           R"({"ping":[],"id":3})",
           R"({"rpc":{"method":1},"id":3})",
       }) {
    const auto c = One(frame);
    EXPECT_EQ(c.error, 107u) << frame;
    EXPECT_EQ(c.id, 3u) << frame;
  }
}

TEST(JsonDecode, BadIdIs107WithoutId) {  // W-7
  for (const char* frame :
       {R"({"ping":{},"id":"x"})", R"({"ping":{},"id":-1})", R"({"ping":{},"id":4294967296})",
        R"({"ping":{},"id":1.5})", R"({"ping":{},"id":{}})"}) {
    const auto c = One(frame);
    EXPECT_EQ(c.error, 107u) << frame;
    EXPECT_EQ(c.id, 0u) << frame;
  }
  EXPECT_EQ(One(R"({"ping":{},"id":4294967295})").id, 4294967295u);
  EXPECT_EQ(One(R"({"ping":{},"id":"12"})").id, 12u);  // proto3 JSON integers as strings
}

TEST(JsonDecode, NotAnObjectIs107) {
  for (const char* frame : {"[1,2]", "\"connect\"", "5", "null", "true"}) {
    const auto c = One(frame);
    EXPECT_EQ(c.error, 107u) << frame;
    EXPECT_EQ(c.id, 0u) << frame;
  }
}

TEST(JsonDecode, Uint64OffsetsAsNumbersAndStrings) {
  EXPECT_EQ(Req<SubscribeRequest>(
                One(R"({"subscribe":{"channel":"c","offset":18446744073709551615},"id":1})"))
                .offset,
            18446744073709551615u);
  EXPECT_EQ(
      Req<SubscribeRequest>(One(R"({"subscribe":{"channel":"c","offset":"42"},"id":1})")).offset,
      42u);
}

TEST(JsonDecode, MalformedFrameIsRefusedWhole) {  // W-5
  for (const char* frame : {
           "{\"id\":1",
           "{\"ping\":{},\"id\":1}\n{bad",
           "{\"ping\":{},\"id\":1} x",
           "{\"ping\":{},\"id\":1}{\"ping\":{},\"id\":2}",
           "{'id':1}",
           "{\"id\":1,}",
           "nul",
           "{\"publish\":{\"channel\":\"c\",\"data\":1e400},\"id\":1}",
           "{\"publish\":{\"channel\":\"c\",\"data\":123456789012345678901234567890},\"id\":1}",
       }) {
    const DecodedFrame f = DecodeFrame(frame);
    EXPECT_TRUE(f.malformed) << frame;
    EXPECT_TRUE(f.commands.empty()) << frame;
    EXPECT_EQ(f.pongs, 0u) << frame;
    EXPECT_FALSE(f.reason.empty());
  }
}

// W-5 (issue 10): a NUL byte ends nlohmann's input early; the WebSocket codec (simdjson) must
// not take `{...}\0junk` for a valid line either, whether the NUL ends the line, the data value
// or sits inside a string.
TEST(JsonDecode, NulBytesAreMalformed) {  // W-5
  for (std::string frame : {
           std::string("{\"ping\":{},\"id\":1}\0", 19),
           std::string("{\"ping\":{},\"id\":1}\0junk", 23),
           std::string("{\"publish\":{\"channel\":\"c\",\"data\":{\"a\":1}\0},\"id\":1}", 50),
           std::string("{\"publish\":{\"channel\":\"c\",\"data\":\"a\0b\"},\"id\":1}", 47),
       }) {
    const DecodedFrame f = DecodeFrame(frame);
    EXPECT_TRUE(f.malformed) << frame.size();
    EXPECT_TRUE(f.commands.empty()) << frame.size();
  }
}

TEST(JsonDecode, InvalidUtf8IsMalformed) {  // W-5
  for (std::string frame : {
           std::string("{\"subscribe\":{\"channel\":\"\xff\"},\"id\":1}"),
           std::string("{\"subscribe\":{\"channel\":\"\xc0\xaf\"},\"id\":1}"),      // overlong
           std::string("{\"subscribe\":{\"channel\":\"\xed\xa0\x80\"},\"id\":1}"),  // surrogate
           std::string(R"({"subscribe":{"channel":"\ud800"},"id":1})"),  // lone surrogate escape
           std::string("{\"x\":\"\xe2\x82\"}"),                          // truncated
       }) {
    const DecodedFrame f = DecodeFrame(frame);
    EXPECT_TRUE(f.malformed) << frame;
    EXPECT_TRUE(f.commands.empty());
  }
  // Escapes decode to valid UTF-8.
  const auto r =
      Req<SubscribeRequest>(One(R"({"subscribe":{"channel":"caf\u00e9 \ud83d\ude00 \n"},"id":1})"));
  EXPECT_EQ(r.channel, "café \xf0\x9f\x98\x80 \n");
  EXPECT_TRUE(chp::IsValidUtf8(r.channel));
}

TEST(JsonDecode, DataNestingIsBounded) {  // W-6
  const auto frame = [](size_t depth) {
    return "{\"publish\":{\"channel\":\"c\",\"data\":" + Nested(depth) + "},\"id\":1}";
  };
  EXPECT_EQ(Req<PublishRequest>(One(frame(kMaxDataDepth))).data, Nested(kMaxDataDepth));
  const DecodedFrame deep = DecodeFrame(frame(kMaxDataDepth + 1));
  EXPECT_TRUE(deep.malformed);
  EXPECT_EQ(deep.reason, "nesting too deep");
  const DecodedFrame very_deep = DecodeFrame(frame(100000));
  EXPECT_TRUE(very_deep.malformed);
}

TEST(JsonDecode, CommandsPerFrameAreBounded) {  // W-4
  std::string frame;
  for (size_t i = 0; i < kMaxCommandsPerFrame; ++i) {
    frame += "{\"ping\":{},\"id\":" + std::to_string(i + 1) + "}\n\n";
  }
  const DecodedFrame full = DecodeFrame(frame);
  ASSERT_FALSE(full.malformed);
  ASSERT_EQ(full.commands.size(), kMaxCommandsPerFrame);
  EXPECT_EQ(full.commands.back().id, kMaxCommandsPerFrame);
  const DecodedFrame over = DecodeFrame(frame + "{}");  // pongs count too
  EXPECT_TRUE(over.malformed);
  EXPECT_EQ(over.reason, "too many commands");
  EXPECT_TRUE(over.commands.empty());
  EXPECT_TRUE(DecodeFrame("{}\n{}\n{}", 2).malformed);
  // Blank lines are free.
  EXPECT_EQ(DecodeFrame(std::string(100000, '\n') + "{}").pongs, 1u);
}

TEST(JsonDecode, LargeValuesInOneCommand) {
  std::string many = "[";
  for (int i = 0; i < 100000; ++i) many += (i ? ",1" : "1");
  many += "]";
  EXPECT_EQ(
      Req<PublishRequest>(One("{\"publish\":{\"channel\":\"c\",\"data\":" + many + "},\"id\":1}"))
          .data,
      many);
  const std::string token(1 << 20, 'a');
  EXPECT_EQ(Req<ConnectRequest>(One("{\"connect\":{\"token\":\"" + token + "\"},\"id\":1}")).token,
            token);
}

// --- Replies (W-11: defaults left out).

TEST(JsonEncode, ConnectReply) {
  EXPECT_EQ(
      EncodeReply(1, ConnectResult{.client = "c-1", .version = "0.1.0", .ping_s = 25, .pong_s = 8}),
      R"({"id":1,"connect":{"client":"c-1","version":"0.1.0","ping":25,"pong":true}})");
  EXPECT_EQ(EncodeReply(2, ConnectResult{.client = "c", .expires = true, .ttl_s = 3600}),
            R"({"id":2,"connect":{"client":"c","expires":true,"ttl":3600}})");
  // W-25: server-side subscriptions, each a subscribe result, in claim order.
  ConnectResult subs{.client = "c"};
  subs.subs.emplace_back("b:\"1\"", SubscribeResult{});
  subs.subs.emplace_back(
      "a:1", SubscribeResult{.recoverable = true,
                             .positioned = true,
                             .epoch = "ep",
                             .offset = 3,
                             .recovered = true,
                             .publications = {Publication{.offset = 3, .data = "[3]"}}});
  EXPECT_EQ(EncodeReply(3, subs),
            R"({"id":3,"connect":{"client":"c","subs":{"b:\"1\"":{},"a:1":{"recoverable":true,)"
            R"("epoch":"ep","publications":[{"data":[3],"offset":3}],"recovered":true,"offset":3,)"
            R"("positioned":true}}}})");
}

TEST(JsonEncode, SubscribeReply) {
  EXPECT_EQ(EncodeReply(2, SubscribeResult{}), R"({"id":2,"subscribe":{}})");
  SubscribeResult r;
  r.recoverable = true;
  r.positioned = true;
  r.epoch = "ep";
  r.offset = 9;
  r.recovered = true;
  r.was_recovering = true;
  r.publications = {Publication{.offset = 8, .data = R"({"a":1})"},
                    Publication{.offset = 9, .data = "2", .info = R"({"client":"c","user":"u"})"}};
  r.expires = true;
  r.ttl_s = 60;
  EXPECT_EQ(
      EncodeReply(3, r),
      R"({"id":3,"subscribe":{"expires":true,"ttl":60,"recoverable":true,"epoch":"ep",)"
      R"("publications":[{"data":{"a":1},"offset":8},{"data":2,"info":{"client":"c","user":"u"},"offset":9}],)"
      R"("recovered":true,"offset":9,"positioned":true,"was_recovering":true}})");
}

TEST(JsonEncode, OtherReplies) {
  EXPECT_EQ(EncodeReply(3, PublishResult{}), R"({"id":3,"publish":{}})");
  EXPECT_EQ(EncodeReply(3, PublishResult{.offset = 5, .epoch = "e"}),
            R"({"id":3,"publish":{"offset":5,"epoch":"e"}})");
  EXPECT_EQ(EncodeReply(4, PresenceResult{}), R"({"id":4,"presence":{"presence":{}}})");
  PresenceResult pr;
  pr.entries = {PresenceEntry{"c1", "u1", R"({"n":"A"})", ""}, PresenceEntry{"c2", "", "", "[1]"}};
  EXPECT_EQ(
      EncodeReply(4, pr),
      R"({"id":4,"presence":{"presence":{"c1":{"client":"c1","user":"u1","conn_info":{"n":"A"}},)"
      R"("c2":{"client":"c2","user":"","chan_info":[1]}}}})");
  pr.entries.resize(1);
  pr.next_cursor = "c1";
  EXPECT_EQ(
      EncodeReply(4, pr),
      R"({"id":4,"presence":{"presence":{"c1":{"client":"c1","user":"u1","conn_info":{"n":"A"}}},)"
      R"("next_cursor":"c1"}})");
  EXPECT_EQ(EncodeReply(5, PresenceStats{}),
            R"({"id":5,"presence_stats":{"num_clients":0,"num_users":0}})");
  EXPECT_EQ(EncodeReply(5, PresenceStats{3, 2}),
            R"({"id":5,"presence_stats":{"num_clients":3,"num_users":2}})");
  EXPECT_EQ(EncodeReply(6, HistoryResultOut{}), R"({"id":6,"history":{}})");
  EXPECT_EQ(
      EncodeReply(6,
                  HistoryResultOut{
                      {Publication{.offset = 1, .data = "{}", .tags = {{"k", "v"}}}}, "ep", 1}),
      R"({"id":6,"history":{"publications":[{"data":{},"offset":1,"tags":{"k":"v"}}],"epoch":"ep","offset":1}})");
  EXPECT_EQ(
      EncodeReply(7, RefreshResult{.client = "c", .version = "v", .expires = true, .ttl_s = 5}),
      R"({"id":7,"refresh":{"client":"c","version":"v","expires":true,"ttl":5}})");
  EXPECT_EQ(EncodeReply(8, SubRefreshResult{}), R"({"id":8,"sub_refresh":{}})");
  EXPECT_EQ(EncodeReply(8, SubRefreshResult{true, 30}),
            R"({"id":8,"sub_refresh":{"expires":true,"ttl":30}})");
  EXPECT_EQ(EncodeUnsubscribeReply(9), R"({"id":9,"unsubscribe":{}})");
  EXPECT_EQ(EncodePingReply(10), R"({"id":10,"ping":{}})");
  EXPECT_EQ(EncodeRpcReply(11, R"({"r":true})"), R"({"id":11,"rpc":{"data":{"r":true}}})");
  EXPECT_EQ(EncodeRpcReply(11, ""), R"({"id":11,"rpc":{}})");
  EXPECT_EQ(EncodeReply(4294967295u, PublishResult{}), R"({"id":4294967295,"publish":{}})");
}

TEST(JsonEncode, Errors) {
  EXPECT_EQ(EncodeError(6, 103, "permission denied"),
            R"({"id":6,"error":{"code":103,"message":"permission denied"}})");
  EXPECT_EQ(EncodeError(6, 111, "too many requests", true),
            R"({"id":6,"error":{"code":111,"message":"too many requests","temporary":true}})");
  EXPECT_EQ(EncodeError(6, 100, "a \"b\"\n"),
            R"({"id":6,"error":{"code":100,"message":"a \"b\"\n"}})");
}

TEST(JsonEncode, Pushes) {
  Publication p{.offset = 3,
                .data = R"({"x":1})",
                .info = R"({"client":"c","user":"u"})",
                .tags = {{"a", "1"}, {"b", "2"}}};
  EXPECT_EQ(EncodePubPush("news", p),
            R"({"push":{"channel":"news","pub":{"data":{"x":1},"info":{"client":"c","user":"u"},)"
            R"("offset":3,"tags":{"a":"1","b":"2"}}}})");
  // No history: no offset; server API publication: no info.
  EXPECT_EQ(EncodePubPush("c", Publication{.data = "[]"}),
            R"({"push":{"channel":"c","pub":{"data":[]}}})");
  const PresenceEntry e{"c1", "u1", R"({"name":"A"})", R"({"role":"x"})"};
  EXPECT_EQ(EncodeJoinPush("room", e),
            R"({"push":{"channel":"room","join":{"info":{"client":"c1","user":"u1",)"
            R"("conn_info":{"name":"A"},"chan_info":{"role":"x"}}}}})");
  EXPECT_EQ(EncodeLeavePush("room", PresenceEntry{"c1", "u1", "", ""}),
            R"({"push":{"channel":"room","leave":{"info":{"client":"c1","user":"u1"}}}})");
  EXPECT_EQ(
      EncodeUnsubscribePush("c", 2000, "server unsubscribe"),
      R"({"push":{"channel":"c","unsubscribe":{"code":2000,"reason":"server unsubscribe"}}})");
  EXPECT_EQ(EncodeDisconnectPush(3001, "shutdown", true),
            R"({"push":{"disconnect":{"code":3001,"reason":"shutdown","reconnect":true}}})");
  EXPECT_EQ(EncodeDisconnectPush(3501, "bad request", false),
            R"({"push":{"disconnect":{"code":3501,"reason":"bad request"}}})");
  EXPECT_EQ(EncodeMessagePush(R"({"m":1})"), R"({"push":{"message":{"data":{"m":1}}}})");
  // Strings are escaped.
  EXPECT_EQ(EncodeUnsubscribePush("a\"b\\c\x01", 2500, "r"),
            R"({"push":{"channel":"a\"b\\c\u0001","unsubscribe":{"code":2500,"reason":"r"}}})");
  EXPECT_EQ(
      EncodeSubscribePush("ch", SubscribeResult{.recoverable = true, .epoch = "e", .offset = 4}),
      R"({"push":{"channel":"ch","subscribe":{"recoverable":true,"epoch":"e","offset":4}}})");
}

TEST(JsonEncode, EveryMessageIsCompactJson) {
  PresenceResult pr;
  pr.entries = {PresenceEntry{"c\"1", "u", R"({"a":[1,{"b":null}]})", ""}};
  pr.next_cursor = "c\"1";
  SubscribeResult sr;
  sr.publications = {
      Publication{.offset = 1, .data = R"("s")", .tags = {{"k\n\r\b\f", "v\t\x01\x1f\x7f"}}}};
  sr.epoch = "e";
  for (const std::string& m : {
           EncodeReply(1, ConnectResult{.client = "c", .ping_s = 1, .pong_s = 1}),
           EncodeReply(1, sr),
           EncodeReply(1, pr),
           EncodeReply(1, PresenceStats{1, 1}),
           EncodeReply(1, HistoryResultOut{sr.publications, "e", 1}),
           EncodeError(1, 107, "bad request"),
           EncodePubPush("ch\"", sr.publications[0]),
           EncodeJoinPush("c", pr.entries[0]),
           EncodeDisconnectPush(3000, "x", true),
           EncodePresencePageRpcReply(1, pr),
           EncodePresenceUsersRpcReply(1, {"a", "b\""}, 2),
       }) {
    EXPECT_TRUE(IsCompactJson(m)) << m;
  }
}

TEST(JsonEncode, RepliesAreBatchedWithNewlines) {  // W-10
  std::string frame;
  AppendToFrame(frame, EncodeReply(1, ConnectResult{.client = "c"}));
  AppendToFrame(frame, EncodeReply(2, SubscribeResult{}));
  AppendToFrame(frame, EncodePubPush("a", Publication{.data = "1"}));
  EXPECT_EQ(frame,
            "{\"id\":1,\"connect\":{\"client\":\"c\"}}\n{\"id\":2,\"subscribe\":{}}\n"
            "{\"push\":{\"channel\":\"a\",\"pub\":{\"data\":1}}}");
  EXPECT_EQ(kPing, "{}");
}

// --- Built-in rpc methods (W-20).

TEST(JsonRpc, PresencePage) {
  EXPECT_EQ(DecodePresencePageParams(R"({"channel":"c","cursor":"k","limit":10})"),
            (PresenceRequest{"c", "k", 10}));
  EXPECT_EQ(DecodePresencePageParams(R"({"channel":"c"})"), (PresenceRequest{.channel = "c"}));
  for (const char* bad : {"", "null", "[]", R"({"cursor":"k"})", R"({"channel":1})",
                          R"({"channel":"c","limit":-1})", R"({"channel":"c","cursor":2})", "{"}) {
    EXPECT_FALSE(DecodePresencePageParams(bad).has_value()) << bad;
  }
  PresenceResult r;
  r.entries = {PresenceEntry{"c1", "u1", "", ""}};
  r.next_cursor = "c1";
  EXPECT_EQ(
      EncodePresencePageRpcReply(5, r),
      R"({"id":5,"rpc":{"data":{"presence":{"c1":{"client":"c1","user":"u1"}},"next_cursor":"c1"}}})");
  EXPECT_EQ(EncodePresencePageRpcReply(5, PresenceResult{}),
            R"({"id":5,"rpc":{"data":{"presence":{}}}})");
}

TEST(JsonRpc, PresenceUsers) {
  EXPECT_EQ(DecodePresenceUsersParams(R"({"channel":"c","x":1})"), (PresenceStatsRequest{"c"}));
  EXPECT_FALSE(DecodePresenceUsersParams(R"({})").has_value());
  EXPECT_FALSE(DecodePresenceUsersParams(R"("c")").has_value());
  EXPECT_EQ(EncodePresenceUsersRpcReply(6, {"alice", "bob"}, 2),
            R"({"id":6,"rpc":{"data":{"users":["alice","bob"],"num_users":2}}})");
  EXPECT_EQ(EncodePresenceUsersRpcReply(6, {}, 0),
            R"({"id":6,"rpc":{"data":{"users":[],"num_users":0}}})");
}

// The rpc helpers share the decoder's parser: using them between frames changes nothing.
TEST(JsonRpc, InterleavesWithFrames) {
  const DecodedFrame f =
      DecodeFrame(R"({"rpc":{"method":"chorus.presence_users","data":{"channel":"c"}},"id":1})");
  ASSERT_EQ(f.commands.size(), 1u);
  const auto rpc = std::get<RpcRequest>(f.commands[0].request);
  EXPECT_EQ(DecodePresenceUsersParams(rpc.data), (PresenceStatsRequest{"c"}));
  EXPECT_EQ(One(R"({"ping":{},"id":2})").id, 2u);
}

}  // namespace
}  // namespace chorus::broker::json
