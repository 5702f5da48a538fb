// The engine's side of the engine bridge (docs/protocol/bridge.md), per rule: a real Engine on
// its own thread (EngineThread, in-process, every endpoint on loopback port 0 or inproc), and
// DEALERs in the test playing the gateway with frames written out byte by byte (not with the
// bridge codec, so the codec is checked against the spec, not against itself). The gateway's
// side of the same rules is checked by gateway_*_test.cc against a fake engine. Waits are
// receives with a deadline; "nothing came" is checked behind a later answer on the same DEALER
// (the engine answers one peer in order).
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "broker/config/config.h"
#include "broker/node/engine.h"

namespace chorus::broker::node {
namespace {

using namespace std::chrono_literals;

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

class EngineBridge : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.node_id = "bridge-test";
    o.bridge_endpoint = "inproc://engine-bridge-test";
    o.config.client.client_insecure = true;
    auto t = EngineThread::Start(ctx_, std::move(o));
    ASSERT_TRUE(t.ok());
    engine_ = std::move(*t);
  }
  void TearDown() override {
    for (auto& d : dealers_) d.close();
    if (engine_) engine_->Stop();
  }

  // A new gateway shard: a DEALER connected to the engine's bridge.
  zmq::socket_t& Dealer() {
    dealers_.emplace_back(ctx_, zmq::socket_type::dealer);
    dealers_.back().set(zmq::sockopt::linger, 0);
    dealers_.back().connect(engine_->endpoints().bridge);
    return dealers_.back();
  }

  static void Send(zmq::socket_t& d, const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      d.send(zmq::buffer(frames[i]),
             i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // The next message on `d` within `timeout`; nullopt when none came.
  static std::optional<std::vector<std::string>> Recv(zmq::socket_t& d,
                                                      std::chrono::milliseconds timeout = 5s) {
    zmq::pollitem_t item{d.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    std::vector<std::string> out;
    zmq::message_t m;
    do {
      (void)d.recv(m, zmq::recv_flags::none);
      out.push_back(m.to_string());
    } while (m.more());
    return out;
  }

  // The next message that is not the engine's periodic ping (a `fanout` of `{}`, W-9), which a
  // connected session may get at any sweep.
  static std::optional<std::vector<std::string>> RecvNoPing(zmq::socket_t& d) {
    for (;;) {
      auto r = Recv(d);
      if (!r || r->size() != 4 || (*r)[0] != "ws" || (*r)[1] != "fanout" || (*r)[3] != "{}") {
        return r;
      }
    }
  }

  // The metrics text, through the bridge.
  std::string Metrics(zmq::socket_t& d, uint64_t id) {
    Send(d, {Le64(id), "metrics", "", ""});
    auto r = RecvNoPing(d);
    EXPECT_TRUE(r);
    if (!r || r->size() != 4) return "";
    EXPECT_EQ((*r)[0], Le64(id));
    return (*r)[3];
  }

  zmq::context_t ctx_;
  std::unique_ptr<EngineThread> engine_;
  std::deque<zmq::socket_t> dealers_;  // a deque: Dealer() hands out references
};

TEST_F(EngineBridge, B3_UnknownKindIsAnswered404With104) {
  zmq::socket_t& d = Dealer();
  Send(d, {Le64(7), "bogus", "", ""});
  auto r = Recv(d);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], Le64(7));
  EXPECT_EQ((*r)[1], "404");
  EXPECT_EQ((*r)[2], "application/json");
  EXPECT_NE((*r)[3].find("\"code\":104"), std::string::npos) << (*r)[3];
}

TEST_F(EngineBridge, B3_MessagesOfAnotherShapeAreDroppedUnanswered) {
  zmq::socket_t& d = Dealer();
  Send(d, {Le64(1), "health", ""});               // 3 frames
  Send(d, {Le64(2), "health", "", "", "extra"});  // 5 frames
  Send(d, {"short", "health", "", ""});           // id not 8 bytes
  Send(d, {"ws", "hello", Le64(1), ""});          // unknown event
  Send(d, {Le64(3), "health", "", ""});
  // The first answer on this DEALER is the last request's: the others were dropped.
  auto r = Recv(d);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], Le64(3));
  EXPECT_EQ((*r)[1], "200");
  EXPECT_FALSE(Recv(d, 50ms));
}

TEST_F(EngineBridge, B4_ReplyEchoesTheIdWithAThreeDigitStatus) {
  zmq::socket_t& d = Dealer();
  const uint64_t id = 0x0102030405060708ull;
  Send(d, {Le64(id), "health", "", ""});
  auto r = Recv(d);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], Le64(id));
  EXPECT_EQ((*r)[1], "200");
  EXPECT_EQ((*r)[2], "application/json");
  EXPECT_EQ((*r)[3], R"({"status":"ok"})");
  // An API call with a body that is not JSON is still one 4-frame reply.
  Send(d, {Le64(9), "api", "publish", "not json"});
  r = Recv(d);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0], Le64(9));
  EXPECT_EQ((*r)[1], "400");
}

TEST_F(EngineBridge, B8_ClosedWithoutAReadableCodeCountsAs3000) {
  zmq::socket_t& d = Dealer();
  Send(d, {"ws", "open", Le64(1), "127.0.0.1:1"});
  Send(d, {"ws", "closed", Le64(1), ""});
  Send(d, {"ws", "open", Le64(2), "127.0.0.1:2"});
  Send(d, {"ws", "closed", Le64(2), "nonsense"});
  Send(d, {"ws", "open", Le64(3), "127.0.0.1:3"});
  Send(d, {"ws", "closed", Le64(3), "4001"});
  const std::string metrics = Metrics(d, 1);
  EXPECT_NE(metrics.find("chorus_disconnects_total{code=\"3000\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("chorus_disconnects_total{code=\"4001\"} 1"), std::string::npos)
      << metrics;
}

TEST_F(EngineBridge, B9_CommandsGoToTheDealerThatReportedTheOpen) {
  zmq::socket_t& a = Dealer();
  zmq::socket_t& b = Dealer();
  // The same conn id on two DEALERs: two sessions, each answered on its own DEALER.
  Send(a, {"ws", "open", Le64(5), "127.0.0.1:1"});
  Send(b, {"ws", "open", Le64(5), "127.0.0.1:2"});
  Send(a, {"ws", "frame", Le64(5), R"({"id":1,"connect":{}})"});
  auto ra = RecvNoPing(a);
  ASSERT_TRUE(ra);
  ASSERT_EQ(ra->size(), 4u);
  EXPECT_EQ((*ra)[0], "ws");
  EXPECT_EQ((*ra)[1], "send");
  EXPECT_EQ((*ra)[2], Le64(5));
  EXPECT_NE((*ra)[3].find(R"("id":1,"connect":{)"), std::string::npos) << (*ra)[3];
  Send(b, {"ws", "frame", Le64(5), R"({"id":2,"connect":{}})"});
  auto rb = RecvNoPing(b);
  ASSERT_TRUE(rb);
  ASSERT_EQ(rb->size(), 4u);
  EXPECT_EQ((*rb)[1], "send");
  EXPECT_NE((*rb)[3].find(R"("id":2,"connect":{)"), std::string::npos) << (*rb)[3];
  // Nothing of b's session went to a: a's next message (pings aside) answers its own request.
  EXPECT_FALSE(Metrics(a, 3).empty());
}

TEST_F(EngineBridge, B10_CloseCommandCarriesANamedCodeAndReason) {
  zmq::socket_t& d = Dealer();
  Send(d, {"ws", "open", Le64(8), "127.0.0.1:1"});
  Send(d, {"ws", "frame", Le64(8), "not json"});  // W-5: closed 3501 bad request
  auto r = Recv(d);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0], "ws");
  EXPECT_EQ((*r)[1], "close");
  EXPECT_EQ((*r)[2], Le64(8));
  EXPECT_EQ((*r)[3], "3501");
  EXPECT_EQ((*r)[4], "bad request");
}

}  // namespace
}  // namespace chorus::broker::node
