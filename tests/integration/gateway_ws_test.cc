// Integration tests of the gateway's WebSocket transport (broker/gateway/README.md,
// "WebSocket" and "WebSocket frames"): the server in-process on 127.0.0.1 port 0, the fake
// engine of gateway_test_support.h (a ROUTER on inproc that records the gateway's `open` /
// `frame` / `closed` events and sends `send` / `fanout` / `close` commands), and WebSocket
// clients: Beast's client driven by a private io_context with deadlines (gateway_ws_client.h),
// and raw bytes over a POSIX socket for the wire-level test. Every test runs with 1 and 2 io
// threads (consecutive connections land on alternate shards). Every wait is a condition with
// a deadline, never a sleep.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway_ws_fixture.h"

namespace {

using namespace gateway_test;

class GatewayWs : public WsFixture {};

TEST_P(GatewayWs, UpgradeReportsOpenWithConnIdAndRemoteAddress) {
  StartEngine();
  StartServer();
  WsClient a(port());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(WaitOpen(a.local_port()), 1u);  // ids count from 1 per server
  WsClient b(port());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(WaitOpen(b.local_port()), 2u);
  EXPECT_EQ(engine_->ws_events(0, "open").size(), 2u);
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_open == 2; }));
}

// B-7 (docs/protocol/bridge.md): frames in the order the client sent them.
TEST_P(GatewayWs, ClientMessageArrivesAsFrame) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  const std::string message = R"({"id":1,"connect":{"token":"t"}})";
  ASSERT_TRUE(c->Send(message));
  ASSERT_TRUE(c->Send("second"));
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->ws_events(id, "frame").size() == 2; }));
  const auto frames = engine_->ws_events(id, "frame");
  EXPECT_EQ(frames[0].payload, message);
  EXPECT_EQ(frames[1].payload, "second");
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_frames_in == 2; }));
}

TEST_P(GatewayWs, EngineSendReachesClient) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  Send(id, R"({"id":1,"connect":{"client":"abc"}})");
  EXPECT_EQ(c->Read(), R"({"id":1,"connect":{"client":"abc"}})");
  Send(id, "");  // an empty message is a message too
  EXPECT_EQ(c->Read(), "");
}

TEST_P(GatewayWs, FanoutReachesHundredConnectionsWithIdenticalBytes) {
  StartEngine();
  StartServer();
  std::vector<std::unique_ptr<WsClient>> clients;
  std::string ids;
  for (int i = 0; i < 100; ++i) {
    uint64_t id = 0;
    clients.push_back(Connect(&id));
    ASSERT_NE(id, 0u);
    ids += EncodeLe64(id);
  }
  const std::string pub = R"({"push":{"channel":"news","pub":{"data":{"n":1}}}})";
  engine_->SendToGateway({"ws", "fanout", ids, pub});
  for (auto& c : clients) EXPECT_EQ(c->Read(), pub);
  // Counters move when the write completes, which may be after the client read the bytes.
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_messages_out == 100; }));
}

TEST_P(GatewayWs, QueuedSendsAreCoalescedIntoOneFrameJoinedByNewline) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  constexpr int kBurst = 300;
  for (int i = 0; i < kBurst; ++i) Send(id, R"({"n":)" + std::to_string(i) + "}");
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->sent() == kBurst; }));
  std::vector<std::string> got;
  int frames = 0;
  while (got.size() < kBurst) {
    auto m = c->Read();
    ASSERT_TRUE(m) << "after " << got.size() << " messages";
    ++frames;
    for (auto& part : Split(*m, '\n')) got.push_back(part);
  }
  ASSERT_EQ(got.size(), size_t{kBurst});
  for (int i = 0; i < kBurst; ++i) EXPECT_EQ(got[i], R"({"n":)" + std::to_string(i) + "}");
  EXPECT_LT(frames, kBurst);  // at least one frame carried several messages
  EXPECT_TRUE(EventuallyTrue([&] {
    const auto s = server_->stats();
    return s.ws_messages_out == uint64_t{kBurst} && s.ws_frames_out == uint64_t(frames);
  }));
}

TEST_P(GatewayWs, ClientThatNeverReadsIsClosedSlowWhileOthersGetEverything) {
  StartEngine();
  auto o = Options();
  o.max_ws_queue_bytes = 256 * 1024;
  StartServer(o);
  uint64_t slow_id = 0;
  uint64_t fast_id = 0;
  auto slow = Connect(&slow_id, /*rcvbuf=*/4096);
  auto fast = Connect(&fast_id);
  // Batches of 4 x 16 KiB (under the bound) to both; the fast client reads each batch before
  // the next is sent, the slow one reads nothing, so its queue grows until it is over.
  const std::string ids = EncodeLe64(slow_id) + EncodeLe64(fast_id);
  size_t sent = 0;
  std::vector<std::string> got;
  while (engine_->ws_events(slow_id, "closed").empty()) {
    ASSERT_LT(sent, 4000u) << "the slow client was never closed";
    for (int i = 0; i < 4; ++i, ++sent) {
      std::string m = std::to_string(sent) + ":";
      m.resize(16 * 1024, 'x');
      engine_->SendToGateway({"ws", "fanout", ids, m});
    }
    while (got.size() < sent) {
      auto m = fast->Read();
      ASSERT_TRUE(m) << "fast client after " << got.size() << " messages";
      for (auto& part : Split(*m, '\n')) got.push_back(part);
    }
    ASSERT_LE(server_->stats().ws_bytes_queued, 2 * o.max_ws_queue_bytes);
  }
  EXPECT_EQ(WaitClosedEvent(slow_id), "3008");
  // The fast client goes on receiving.
  Send(fast_id, "after");
  EXPECT_EQ(fast->Read(), "after");
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].substr(0, got[i].find(':')), std::to_string(i));
  }
  EXPECT_EQ(server_->stats().ws_slow_closed, 1u);
  // The slow client's connection ends; if the close frame made it, it says 3008.
  EXPECT_TRUE(slow->WaitClosed(10s));
  if (slow->reason().code != websocket::close_code::none) {
    EXPECT_EQ(slow->reason().code, 3008);
  }
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_bytes_queued == 0; }));
  EXPECT_TRUE(engine_->ws_events(fast_id, "closed").empty());
}

// W-2: a message over the size limit is not read; the gateway closes with 1009.
TEST_P(GatewayWs, OversizeClientMessageIsClosed1009) {
  StartEngine();
  auto o = Options();
  o.max_ws_message_bytes = 1024;
  StartServer(o);
  uint64_t id = 0;
  auto c = Connect(&id);
  ASSERT_TRUE(c->Send(std::string(1024, 'a')));  // at the limit: fine
  ASSERT_TRUE(c->Send(std::string(1025, 'b')));
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(c->reason().code, websocket::close_code::too_big);
  EXPECT_EQ(WaitClosedEvent(id), "1009");
  ASSERT_EQ(engine_->ws_events(id, "frame").size(), 1u);
  EXPECT_EQ(engine_->ws_events(id, "frame")[0].payload, std::string(1024, 'a'));
}

// W-1 (docs/protocol/websocket.md): a binary frame closes with 3501 (bad request).
TEST_P(GatewayWs, W1_BinaryMessageIsClosed3501) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  ASSERT_TRUE(c->Send("\x01\x02", /*binary=*/true));
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(c->reason().code, 3501);
  EXPECT_EQ(WaitClosedEvent(id), "3501");
  EXPECT_TRUE(engine_->ws_events(id, "frame").empty());
}

// B-7 (docs/protocol/bridge.md): one `closed` per connection, with its code.
TEST_P(GatewayWs, ClientCloseIsReportedWithItsCode) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  ASSERT_TRUE(c->Close(4001));
  EXPECT_EQ(WaitClosedEvent(id), "4001");
  uint64_t id2 = 0;
  auto dropped = Connect(&id2);
  dropped.reset();  // TCP close without a close frame
  EXPECT_EQ(WaitClosedEvent(id2), "1006");
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_closed == 2; }));
}

// B-7 (docs/protocol/bridge.md): after the engine's `close`, the id is not used again.
TEST_P(GatewayWs, EngineCloseReachesClientAndIsNotReported) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  engine_->SendToGateway({"ws", "close", EncodeLe64(id), "3001", "shutdown"});
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(c->reason().code, 3001);
  EXPECT_EQ(std::string(c->reason().reason), "shutdown");
  // Barrier: a later connection's open arrives, and still no `closed` for the first (with two
  // shards the two may be on different ones: then this only shows nothing came meanwhile).
  uint64_t id2 = 0;
  auto other = Connect(&id2);
  EXPECT_TRUE(engine_->ws_events(id, "closed").empty());
  // The id is gone: a send to it is ignored (by its shard, which may not be `other`'s).
  Send(id, "late");
  Send(id2, "ok");
  EXPECT_EQ(other->Read(), "ok");
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().ws_unknown_conn == 1; }));
}

// B-9, B-10 (docs/protocol/bridge.md): unknown conn ids ignored, malformed commands dropped.
TEST_P(GatewayWs, UnknownConnIdIsIgnoredAndMalformedCommandsCounted) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  Send(id + 1000, "nobody");
  engine_->SendToGateway({"ws", "fanout", EncodeLe64(id + 1000) + EncodeLe64(id), "some"});
  engine_->SendToGateway({"ws", "send", "short", "x"});  // id not 8 bytes
  engine_->SendToGateway({"ws", "fanout", "", "x"});     // no ids
  engine_->SendToGateway({"ws", "close", EncodeLe64(id), "999", "bad code"});
  engine_->SendToGateway({"ws", "bogus", EncodeLe64(id), "x"});
  engine_->SendToGateway({"ws", "send", EncodeLe64(id)});  // 3 frames
  Send(id, "still here");
  EXPECT_EQ(c->Read(), "some");
  EXPECT_EQ(c->Read(), "still here");
  const auto s = server_->stats();
  EXPECT_EQ(s.ws_unknown_conn, 2u);
  EXPECT_EQ(s.ws_malformed, 5u);
  EXPECT_TRUE(engine_->ws_events(id, "closed").empty());
}

TEST_P(GatewayWs, HttpRoutesKeepWorkingAlongside) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  auto health = RoundTrip(port(), Request("GET", "/health"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto api = RoundTrip(port(), Api("publish", "{}"));
  ASSERT_TRUE(api);
  EXPECT_EQ(api->body, "api|publish|{}");
  // /connection/websocket without an upgrade, or with another method.
  auto plain = RoundTrip(port(), Request("GET", "/connection/websocket"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 400);
  auto post = RoundTrip(port(), Request("POST", "/connection/websocket"));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  Send(id, "ws still fine");
  EXPECT_EQ(c->Read(), "ws still fine");
}

TEST_P(GatewayWs, RawWireHandshakeFramesAndClose) {
  StartEngine();
  StartServer();
  RawClient raw(port());
  ASSERT_TRUE(raw.connected());
  // RFC 6455 §1.3's sample key and its accept value.
  ASSERT_TRUE(raw.Send(
      Request("GET", "/connection/websocket?cf_protocol=json",
              {"Upgrade: websocket", "Connection: Upgrade",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"})));
  auto r = raw.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 101);
  EXPECT_EQ(r->Header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  ASSERT_TRUE(EventuallyTrue([&] { return !engine_->ws_events(0, "open").empty(); }));
  const uint64_t id = engine_->ws_events(0, "open")[0].conn_id;
  // A masked text frame "hello" (FIN, opcode 1, mask key 01 02 03 04).
  std::string frame = "\x81\x85";
  const char mask[4] = {1, 2, 3, 4};
  frame.append(mask, 4);
  const std::string hello = "hello";
  for (size_t i = 0; i < hello.size(); ++i) frame += static_cast<char>(hello[i] ^ mask[i % 4]);
  ASSERT_TRUE(raw.Send(frame));
  ASSERT_TRUE(EventuallyTrue([&] { return engine_->ws_events(id, "frame").size() == 1; }));
  EXPECT_EQ(engine_->ws_events(id, "frame")[0].payload, "hello");
  // The server's frames are unmasked: FIN + text, length 2, "hi"; then a close 4000 "x".
  Send(id, "hi");
  engine_->SendToGateway({"ws", "close", EncodeLe64(id), "4000", "x"});
  std::string got;
  ASSERT_TRUE(EventuallyTrue([&] {
    got += raw.ReadSome(100ms);
    return got.size() >= 4 + 5;
  }));
  EXPECT_EQ(got.substr(0, 4), std::string("\x81\x02hi", 4));
  EXPECT_EQ(got.substr(4, 5), std::string("\x88\x03\x0f\xa0x", 5));  // 0x0fa0 = 4000
}

TEST_P(GatewayWs, WebSocketsCountTowardsMaxConnections) {
  StartEngine();
  auto o = Options();
  o.max_connections = 2;
  StartServer(o);
  uint64_t a = 0;
  uint64_t b = 0;
  auto ca = Connect(&a);
  auto cb = Connect(&b);
  RawClient extra(port());
  EXPECT_TRUE(extra.ClosedByPeer());
  EXPECT_TRUE(EventuallyTrue([&] { return server_->stats().connections_rejected == 1; }));
  ASSERT_TRUE(ca->Close(1000));
  EXPECT_EQ(WaitClosedEvent(a), "1000");
  EXPECT_TRUE(
      EventuallyTrue([&] { return RoundTrip(port(), Request("GET", "/health")).has_value(); }));
}

TEST_P(GatewayWs, StopClosesWebSocketsWith1001) {
  StartEngine();
  StartServer();
  uint64_t id = 0;
  auto c = Connect(&id);
  auto silent = std::make_unique<WsClient>(port(), 4096);  // never reads
  ASSERT_TRUE(silent->ok());
  ASSERT_NE(WaitOpen(silent->local_port()), 0u);
  StopInBackground stopper(*server_);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(c->reason().code, websocket::close_code::going_away);
  stopper.Join();
}

INSTANTIATE_TEST_SUITE_P(IoThreads, GatewayWs, ::testing::Values(size_t{1}, size_t{2}),
                         IoThreadsName);

}  // namespace
