// Unit tests for the engine bridge codec (broker/gateway/bridge_codec.h), one or more per rule
// of docs/protocol/bridge.md that the codec decides (B-1, B-2, B-3, B-4, B-6, B-8, B-10, B-11).
// The expected frames are written out byte by byte here, not produced by the codec, so an
// encoder and a decoder that agree on a wrong format still fail. No sockets.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "broker/gateway/bridge_codec.h"

namespace chorus::broker::bridge {
namespace {

Frames Parts(const std::vector<std::string>& frames) {
  Frames out;
  for (const auto& f : frames) out.emplace_back(f.data(), f.size());
  return out;
}

std::vector<std::string> Strings(const Frames& parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.push_back(p.to_string());
  return out;
}

const std::string kId1 = std::string("\x01\0\0\0\0\0\0\0", 8);
const std::string kId2 = std::string("\x02\0\0\0\0\0\0\0", 8);
const std::string kIdBig = std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8);

TEST(BridgeCodec, B1_FirstFrameTellsWebSocketFromHttp) {
  EXPECT_TRUE(IsWsMessage(Parts({"ws", "open", kId1, "1.2.3.4:5"})));
  EXPECT_FALSE(IsWsMessage(Parts({kId1, "api", "publish", "{}"})));
  EXPECT_FALSE(IsWsMessage(Parts({"wss", "open", kId1, ""})));
  EXPECT_FALSE(IsWsMessage({}));
  const Frames ws_frames =
      Parts({"ws", "frame", kId1, "{}"});  // the decoded views point into these
  auto ws = DecodeGatewayMessage(ws_frames);
  ASSERT_TRUE(ws);
  EXPECT_TRUE(std::holds_alternative<WsEvent>(*ws));
  const Frames http_frames =
      Parts({kId1, "api", "publish", "{}"});  // the decoded views point into these
  auto http = DecodeGatewayMessage(http_frames);
  ASSERT_TRUE(http);
  EXPECT_TRUE(std::holds_alternative<HttpRequest>(*http));
  // Neither the tag nor an 8-byte id: malformed.
  EXPECT_FALSE(DecodeGatewayMessage(Parts({"abc", "api", "publish", "{}"})));
}

TEST(BridgeCodec, B2_IdsAreEightBytesLittleEndian) {
  EXPECT_EQ(EncodeId(1), kId1);
  EXPECT_EQ(EncodeId(0x0102030405060708ull), kIdBig);
  uint64_t id = 0;
  ASSERT_TRUE(DecodeId(std::string_view(kIdBig), &id));
  EXPECT_EQ(id, 0x0102030405060708ull);
  EXPECT_FALSE(DecodeId(std::string_view("1234567"), &id));
  EXPECT_FALSE(DecodeId(std::string_view("123456789"), &id));
  std::string ids;
  AppendId(ids, 1);
  AppendId(ids, 2);
  EXPECT_EQ(ids, kId1 + kId2);
  EXPECT_EQ(DecodeIds(ids), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(DecodeIds(ids.substr(0, 12)).empty());
  EXPECT_TRUE(DecodeIds("").empty());
  // A WebSocket event with a 7-byte conn id is malformed.
  EXPECT_FALSE(DecodeGatewayMessage(Parts({"ws", "open", "1234567", ""})));
}

TEST(BridgeCodec, B3_HttpRequestIsFourFrames) {
  EXPECT_EQ(Strings(EncodeHttpRequest(1, kKindApi, "publish", "{\"a\":1}")),
            (std::vector<std::string>{kId1, "api", "publish", "{\"a\":1}"}));
  EXPECT_EQ(Strings(EncodeHttpRequest(2, kKindHealth, "", "")),
            (std::vector<std::string>{kId2, "health", "", ""}));
  const Frames m_frames = Parts({kIdBig, "metrics", "", ""});  // the decoded views point into these
  auto m = DecodeGatewayMessage(m_frames);
  ASSERT_TRUE(m);
  const auto& r = std::get<HttpRequest>(*m);
  EXPECT_EQ(r.id, 0x0102030405060708ull);
  EXPECT_EQ(r.kind, "metrics");
  EXPECT_EQ(r.method, "");
  // Three or five frames: not a request.
  EXPECT_FALSE(DecodeGatewayMessage(Parts({kId1, "api", "publish"})));
  EXPECT_FALSE(DecodeGatewayMessage(Parts({kId1, "api", "publish", "{}", "x"})));
  // An unknown kind decodes (the engine answers it 404).
  const Frames unknown_frames =
      Parts({kId1, "bogus", "", ""});  // the decoded views point into these
  auto unknown = DecodeGatewayMessage(unknown_frames);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(std::get<HttpRequest>(*unknown).kind, "bogus");
}

TEST(BridgeCodec, B4_ReplyEchoesIdWithThreeDigitStatus) {
  EXPECT_EQ(Strings(EncodeHttpReply(1, 200, "application/json", "{}")),
            (std::vector<std::string>{kId1, "200", "application/json", "{}"}));
  auto r = DecodeHttpReply(Parts({kId2, "404", "", "x"}));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (HttpReply{2, 404, "", "x"}));
  for (const char* bad : {"199", "600", "20", "2000", "+20", "abc", "", "100"}) {
    EXPECT_FALSE(DecodeHttpReply(Parts({kId1, bad, "", ""}))) << bad;
  }
  EXPECT_FALSE(DecodeHttpReply(Parts({kId1, "200", ""})));           // 3 frames
  EXPECT_FALSE(DecodeHttpReply(Parts({"short", "200", "", ""})));    // id not 8 bytes
  EXPECT_FALSE(DecodeHttpReply(Parts({kId1, "200", "", "", "x"})));  // 5 frames
}

TEST(BridgeCodec, B6_WebSocketEventIsFourFramesWithAKnownEvent) {
  EXPECT_EQ(Strings(EncodeWsEvent(kEventOpen, 1, "127.0.0.1:5000")),
            (std::vector<std::string>{"ws", "open", kId1, "127.0.0.1:5000"}));
  const Frames open_frames =
      Parts({"ws", "open", kId1, "127.0.0.1:5000"});  // the decoded views point into these
  auto open = DecodeGatewayMessage(open_frames);
  ASSERT_TRUE(open);
  const auto& e = std::get<WsEvent>(*open);
  EXPECT_EQ(e.kind, WsEvent::Kind::kOpen);
  EXPECT_EQ(e.conn_id, 1u);
  EXPECT_EQ(e.payload, "127.0.0.1:5000");
  const Frames frame_frames =
      Parts({"ws", "frame", kId2, "{\"id\":1}"});  // the decoded views point into these
  auto frame = DecodeGatewayMessage(frame_frames);
  ASSERT_TRUE(frame);
  EXPECT_EQ(std::get<WsEvent>(*frame).kind, WsEvent::Kind::kFrame);
  EXPECT_EQ(std::get<WsEvent>(*frame).payload, "{\"id\":1}");
  EXPECT_FALSE(DecodeGatewayMessage(Parts({"ws", "hello", kId1, ""})));
  EXPECT_FALSE(DecodeGatewayMessage(Parts({"ws", "open", kId1})));
  EXPECT_FALSE(DecodeGatewayMessage(Parts({"ws", "open", kId1, "", ""})));
}

TEST(BridgeCodec, B8_ClosedCarriesTheCodeOrNone) {
  auto code = [](const std::string& payload) {
    const Frames m_frames =
        Parts({"ws", "closed", kId1, payload});  // the decoded views point into these
    auto m = DecodeGatewayMessage(m_frames);
    EXPECT_TRUE(m);
    const auto& e = std::get<WsEvent>(*m);
    EXPECT_EQ(e.kind, WsEvent::Kind::kClosed);
    return e.close_code;
  };
  EXPECT_EQ(code("1000"), 1000u);
  EXPECT_EQ(code("3008"), 3008u);
  EXPECT_EQ(code("4999"), 4999u);
  // Not a code: 0, which the engine takes as 3000 "connection closed".
  EXPECT_EQ(code(""), 0u);
  EXPECT_EQ(code("abc"), 0u);
  EXPECT_EQ(code("999"), 0u);
  EXPECT_EQ(code("5000"), 0u);
  EXPECT_EQ(code("1000 "), 0u);
}

TEST(BridgeCodec, B10_CommandsRoundTrip) {
  EXPECT_EQ(Strings(EncodeWsSend(1, "hello")),
            (std::vector<std::string>{"ws", "send", kId1, "hello"}));
  EXPECT_EQ(Strings(EncodeWsFanout(kId1 + kId2, "pub")),
            (std::vector<std::string>{"ws", "fanout", kId1 + kId2, "pub"}));
  EXPECT_EQ(Strings(EncodeWsClose(2, 3501, "bad request")),
            (std::vector<std::string>{"ws", "close", kId2, "3501", "bad request"}));

  auto send = DecodeWsCommand(Parts({"ws", "send", kId1, "hello"}));
  ASSERT_TRUE(send);
  EXPECT_EQ(send->kind, WsCommand::Kind::kSend);
  EXPECT_EQ(send->conn_ids, std::vector<uint64_t>{1});
  EXPECT_EQ(*send->payload, "hello");
  auto fanout = DecodeWsCommand(EncodeWsFanout(kId1 + kId2, "pub"));
  ASSERT_TRUE(fanout);
  EXPECT_EQ(fanout->conn_ids, (std::vector<uint64_t>{1, 2}));
  auto close = DecodeWsCommand(Parts({"ws", "close", kId2, "3501", "bad request"}));
  ASSERT_TRUE(close);
  EXPECT_EQ(close->kind, WsCommand::Kind::kClose);
  EXPECT_EQ(close->code, 3501);
  EXPECT_EQ(close->reason, "bad request");
}

TEST(BridgeCodec, B10_MalformedCommandsAreRefused) {
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "send", kId1})));               // 3 frames
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "send", kId1, "x", "y"})));     // 5 frames
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "send", "short", "x"})));       // id size
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "fanout", "", "x"})));          // no ids
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "fanout", kId1 + "x", "x"})));  // not 8 x N
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "close", kId1, "3000"})));      // 4 frames
  EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "bogus", kId1, "x"})));         // unknown
  EXPECT_FALSE(DecodeWsCommand(Parts({kId1, "send", kId1, "x"})));          // not "ws"
  // Close codes that may not be sent in a close frame (RFC 6455 §7.4).
  for (const char* code : {"999", "1004", "1005", "1006", "1015", "2999", "5000", "abc", ""}) {
    EXPECT_FALSE(DecodeWsCommand(Parts({"ws", "close", kId1, code, ""}))) << code;
  }
  for (const char* code : {"1000", "1003", "1007", "1014", "3000", "4999"}) {
    EXPECT_TRUE(DecodeWsCommand(Parts({"ws", "close", kId1, code, ""}))) << code;
  }
}

TEST(BridgeCodec, B11_LongCloseReasonIsCutAtACharacterBoundary) {
  const std::string ascii(200, 'a');
  auto c = DecodeWsCommand(Parts({"ws", "close", kId1, "3000", ascii}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, std::string(kMaxCloseReason, 'a'));
  // 122 ASCII bytes then a 2-byte character: byte 123 would split it, so the cut is at 122.
  const std::string mixed = std::string(122, 'a') + "\xc3\xa9" + "tail";
  c = DecodeWsCommand(Parts({"ws", "close", kId1, "3000", mixed}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, std::string(122, 'a'));
  const std::string exact(kMaxCloseReason, 'b');
  c = DecodeWsCommand(Parts({"ws", "close", kId1, "3000", exact}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->reason, exact);
}

}  // namespace
}  // namespace chorus::broker::bridge
