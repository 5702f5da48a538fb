// The cluster-wide API's fan-out (broker/node/src/fanout_codec.h, fanout.h; docs/cluster.md
// §13, §16.3): the messages survive a round trip and malformed ones are refused; a FanoutClient
// gathers one part per member from real ROUTER sockets on loopback (answered by the test by
// hand), ends a call at its deadline with the silent members marked, and keeps its bounds.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "broker/core/errc.h"
#include "fanout.h"
#include "fanout_codec.h"
#include "peer_codec.h"

namespace chorus::broker::node {
namespace {

using namespace std::chrono_literals;

TEST(FanoutCodec, RoundTripAndMalformedRefused) {
  const FanoutRequest req{7, 3, "channels", R"({"pattern":"chat:*"})"};
  FanoutRequest r;
  ASSERT_TRUE(DecodeFanoutRequest(EncodeFanoutRequest(req), r));
  EXPECT_EQ(r, req);
  const FanoutReply rep{7, 114, "no"};
  FanoutReply p;
  ASSERT_TRUE(DecodeFanoutReply(EncodeFanoutReply(rep), p));
  EXPECT_EQ(p, rep);
  EXPECT_EQ(PeerMessageKind(EncodeFanoutRequest(req)), kFanoutRequestKind);
  EXPECT_EQ(PeerMessageKind(EncodeFanoutReply(rep)), kFanoutReplyKind);
  // Each kind's decoder refuses the other kind, short arrays, wrong types and garbage.
  EXPECT_FALSE(DecodeFanoutRequest(EncodeFanoutReply(rep), r));
  EXPECT_FALSE(DecodeFanoutReply(EncodeFanoutRequest(req), p));
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(5);
  pk.pack(40);
  pk.pack(1);
  pk.pack(2);
  pk.pack(3);  // method must be a string
  pk.pack("{}");
  EXPECT_FALSE(DecodeFanoutRequest({buf.data(), buf.size()}, r));
  EXPECT_FALSE(DecodeFanoutRequest("\xc1", r));
  EXPECT_EQ(PeerMessageKind("\xc1"), 0u);
  EXPECT_EQ(PeerMessageKind("\x91\xa1x"), 0u);  // [ "x" ]: no kind
}

// A member: a ROUTER bound on loopback whose requests the test reads and answers by hand.
struct Member {
  explicit Member(zmq::context_t& ctx) : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }
  // The next request (routing id kept for the answer), within `timeout`.
  std::optional<FanoutRequest> Next(std::chrono::milliseconds timeout = 2s) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(router, std::back_inserter(parts))) return std::nullopt;
    if (parts.size() != 2) return std::nullopt;
    peer = parts[0].to_string();
    FanoutRequest r;
    if (!DecodeFanoutRequest(parts[1].to_string_view(), r)) return std::nullopt;
    return r;
  }
  void Answer(const FanoutReply& reply) {
    router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    router.send(zmq::buffer(EncodeFanoutReply(reply)));
  }
  zmq::socket_t router;
  std::string endpoint;
  std::string peer;
};

// Polls `client` until `done` or `timeout`.
bool PollUntil(FanoutClient& client, const bool& done, std::chrono::milliseconds timeout) {
  const auto deadline = chp::Clock::now() + timeout;
  std::vector<chp::Pollable*> parts = {&client};
  while (!done && chp::Clock::now() < deadline) chp::PollOnce(parts, 10ms);
  return done;
}

TEST(FanoutClient, GathersOnePartPerMemberAndMarksTheSilentOnesAtTheDeadline) {
  zmq::context_t ctx;
  Member a(ctx), b(ctx);
  FanoutOptions o;
  o.timeout = 500ms;
  FanoutClient client(ctx, o);
  bool done = false;
  std::vector<FanoutPart> got;
  const auto t0 = chp::Clock::now();
  ASSERT_TRUE(client.Start(9, "info", "{}", {{1, a.endpoint}, {2, b.endpoint}},
                           [&](std::vector<FanoutPart> parts) {
                             got = std::move(parts);
                             done = true;
                           }));
  EXPECT_EQ(client.in_flight(), 1u);
  auto ra = a.Next();
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->sender, 9u);
  EXPECT_EQ(ra->method, "info");
  a.Answer({ra->id, 0, R"({"uid":"a"})"});
  ASSERT_TRUE(b.Next());  // b got it and stays silent
  ASSERT_TRUE(PollUntil(client, done, 3s));
  EXPECT_GE(chp::Clock::now() - t0, 450ms) << "ended before the deadline";
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].member, 1u);
  EXPECT_TRUE(got[0].answered);
  EXPECT_EQ(got[0].body, R"({"uid":"a"})");
  EXPECT_EQ(got[1].member, 2u);
  EXPECT_FALSE(got[1].answered);
  EXPECT_EQ(client.stats().timeouts, 1u);
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_EQ(client.in_flight_bytes(), 0u);
}

TEST(FanoutClient, EndsAsSoonAsEveryMemberAnsweredAndIgnoresStrayReplies) {
  zmq::context_t ctx;
  Member a(ctx);
  FanoutOptions o;
  o.timeout = 5s;
  FanoutClient client(ctx, o);
  bool done = false;
  std::vector<FanoutPart> got;
  ASSERT_TRUE(client.Start(9, "send", R"({"user":"u","data":1})", {{1, a.endpoint}},
                           [&](std::vector<FanoutPart> parts) {
                             got = std::move(parts);
                             done = true;
                           }));
  auto r = a.Next();
  ASSERT_TRUE(r);
  a.Answer({r->id + 100, 0, "{}"});  // no such call: ignored
  a.Answer({r->id, 106, "too large"});
  a.Answer({r->id, 0, "{}"});  // a second answer from the same member: ignored
  ASSERT_TRUE(PollUntil(client, done, 2s));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].answered);
  EXPECT_EQ(got[0].code, 106u);
  EXPECT_EQ(client.stats().replies, 1u);
}

TEST(FanoutClient, BoundsRefuseCallsAndOversizedParts) {
  zmq::context_t ctx;
  Member a(ctx);
  FanoutOptions o;
  o.max_calls = 1;
  o.max_in_flight_bytes = 1000;
  o.max_reply_bytes = 100;
  o.timeout = 5s;
  FanoutClient client(ctx, o);
  EXPECT_FALSE(client.HasRoom(600, 2)) << "1200 request bytes over a 1000-byte bound";
  bool done = false;
  std::vector<FanoutPart> got;
  ASSERT_TRUE(
      client.Start(9, "channels", "{}", {{1, a.endpoint}}, [&](std::vector<FanoutPart> parts) {
        got = std::move(parts);
        done = true;
      }));
  EXPECT_FALSE(client.Start(9, "info", "{}", {{1, a.endpoint}}, [](std::vector<FanoutPart>) {
    ADD_FAILURE() << "a refused call's callback ran";
  }));
  EXPECT_EQ(client.stats().refused, 1u);
  auto r = a.Next();
  ASSERT_TRUE(r);
  a.Answer({r->id, 0, std::string(101, 'x')});  // over max_reply_bytes
  ASSERT_TRUE(PollUntil(client, done, 2s));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].code, ToCode(Errc::kLimitExceeded));
  EXPECT_EQ(client.in_flight_bytes(), 0u);
}

TEST(FanoutClient, AMemberWithoutAnEndpointIsSilentAtOnce) {
  zmq::context_t ctx;
  FanoutClient client(ctx, FanoutOptions{});
  bool done = false;
  std::vector<FanoutPart> got;
  ASSERT_TRUE(client.Start(9, "info", "{}", {{4, ""}}, [&](std::vector<FanoutPart> parts) {
    got = std::move(parts);
    done = true;
  }));
  EXPECT_FALSE(done) << "callbacks never run from inside Start";
  ASSERT_TRUE(PollUntil(client, done, 1s));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].answered);
  EXPECT_EQ(client.stats().not_sent, 1u);
}

}  // namespace
}  // namespace chorus::broker::node
