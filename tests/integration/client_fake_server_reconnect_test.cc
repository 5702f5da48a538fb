// Wire-level tests of chorus::client::Client against the fake node of
// client_fake_server_support.h (docs/protocol/native.md, client side): keepalive (N-4),
// reconnect with recovery (N-15), endpoints, unsubscribe, many clients on one thread, malformed
// frames. Every wait is a condition with a deadline; "nothing happens" checks use a bounded
// window.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "client_fake_server_support.h"

namespace chorus::client::fake_node {
namespace {

// ---------------------------------------------------------------------------------------------
// Keepalive (N-4) and reconnect with recovery (N-15).

TEST_F(ClientFakeServerTest, PingSentOnSchedule) {
  Make();
  client_->Connect();
  Cmd conn = Accept(/*ping=*/1, /*pong=*/1);
  const auto connected_at = Clock::now();
  Cmd p1 = Expect("ping");
  const auto first = Clock::now() - connected_at;
  EXPECT_GE(first, 900ms);
  EXPECT_LE(first, 1500ms);
  EXPECT_TRUE(p1.params.empty());
  node_.Reply(p1, EmptyReply(p1.id));
  Cmd p2 = Expect("ping");
  node_.Reply(p2, EmptyReply(p2.id));
  const auto second = Clock::now() - connected_at;
  EXPECT_GE(second, 1900ms);
  EXPECT_NE(p1.id, p2.id);
  ASSERT_TRUE(Until([&] { return client_->stats().pings == 2; }));
  EXPECT_TRUE(NoneFor("connect", 300ms));  // answered pings keep the session
  EXPECT_EQ(client_->stats().sessions, 1u);
  EXPECT_TRUE(client_->connected());
}

TEST_F(ClientFakeServerTest, SilentNodeMeansReconnectWithNewRoutingIdAndRecovery) {
  Make();
  client_->Connect();
  Cmd conn = Accept(/*ping=*/1, /*pong=*/1);
  ASSERT_TRUE(client_->Subscribe("news", {}, ev_.Handlers()).ok());
  ASSERT_TRUE(client_->Subscribe("plain", {}, ev_.Handlers()).ok());
  Cmd s1 = Expect("subscribe");
  Cmd s2 = Expect("subscribe");
  if (s1.Str("channel") != "news") std::swap(s1, s2);
  node_.Reply(s1, SubscribeReply(s1.id, true, "e1", 10));
  node_.Reply(s2, SubscribeReply(s2.id, false, "", 0));
  node_.Send(conn.routing_id, PubPush("news", 11, "a"));
  node_.Send(conn.routing_id, PubPush("news", 12, "b"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 2; }));
  std::optional<Result<PublishResult>> in_flight;
  ASSERT_TRUE(client_->Publish("news", "x", [&](auto r) { in_flight.emplace(std::move(r)); }).ok());

  // The fake stops answering (the ping goes unanswered): dead after ping + pong.
  const auto silent_from = Clock::now();
  Cmd again = Expect("connect", nullptr, 5s);
  EXPECT_GE(Clock::now() - silent_from, 1500ms);
  EXPECT_NE(again.routing_id, conn.routing_id);  // a new DEALER socket
  ASSERT_TRUE(in_flight.has_value());
  EXPECT_EQ(in_flight->error().code, static_cast<uint32_t>(Errc::kConnectionLost));
  ASSERT_EQ(ev_.disconnected.size(), 1u);
  EXPECT_EQ(ev_.disconnected[0].code, static_cast<uint32_t>(Errc::kPingTimeout));
  EXPECT_TRUE(ev_.disconnected[0].reconnect);

  node_.Reply(again, ReplyFrame(again.id, [](Pack& p) {
                p.Map(4).Str("client").Str("c-2").Str("version").Str("v").Str("ping").U(25);
                p.Str("pong").U(10);
              }));
  Cmd r1 = Expect("subscribe");
  Cmd r2 = Expect("subscribe");
  if (r1.Str("channel") != "news") std::swap(r1, r2);
  EXPECT_EQ(r1.routing_id, again.routing_id);
  EXPECT_TRUE(r1.Bool("recover"));
  EXPECT_EQ(r1.Str("epoch"), "e1");
  EXPECT_EQ(r1.Uint("offset"), 12u);  // the last delivered publication
  EXPECT_FALSE(r2.Bool("recover"));   // not recoverable: a plain subscribe
  node_.Reply(
      r1, SubscribeReply(r1.id, true, "e1", 14, true, true, {{12, "dup"}, {13, "c"}, {14, "d"}}));
  node_.Reply(r2, SubscribeReply(r2.id, false, "", 0));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 4; }));
  EXPECT_EQ(ev_.Offsets(), (std::vector<uint64_t>{11, 12, 13, 14}));
  ASSERT_TRUE(Until([&] { return ev_.subscribed.size() == 4; }));
  EXPECT_EQ(client_->client_id(), "c-2");
}

TEST_F(ClientFakeServerTest, NotRecoveredIsReportedAndPositionReset) {
  Make();
  Cmd conn = ConnectAndSubscribe("news", "e1", 20);
  node_.Send(conn.routing_id, DisconnectPush(3001, "shutdown", true));
  Cmd again = Expect("connect");
  node_.Reply(again, ReplyFrame(again.id, [](Pack& p) { p.Map(1).Str("client").Str("c-3"); }));
  Cmd sub = Expect("subscribe");
  EXPECT_TRUE(sub.Bool("recover"));
  EXPECT_EQ(sub.Uint("offset"), 20u);  // nothing delivered: the subscribe result's position
  node_.Reply(sub, SubscribeReply(sub.id, true, "e2", 3, /*recovered=*/false, true));
  ASSERT_TRUE(Until([&] { return ev_.subscribed.size() == 2; }));
  EXPECT_TRUE(ev_.subscribed[1].was_recovering);
  EXPECT_FALSE(ev_.subscribed[1].recovered);
  // The new epoch starts over: offset 4 is new even though 20 was seen before.
  node_.Send(again.routing_id, PubPush("news", 4, "fresh"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 1; }));
  EXPECT_EQ(client_->Position("news"), (StreamPosition{4, "e2"}));
}

TEST_F(ClientFakeServerTest, DisconnectPushWithReconnectReconnects) {
  Make();
  Cmd conn = ConnectAndSubscribe("news", "e1", 5);
  node_.Send(conn.routing_id, DisconnectPush(3008, "slow", true));
  Cmd again = Expect("connect");
  EXPECT_NE(again.routing_id, conn.routing_id);
  ASSERT_EQ(ev_.disconnected.size(), 1u);
  EXPECT_EQ(ev_.disconnected[0], (DisconnectInfo{3008, "slow", true}));
  node_.Reply(again, ReplyFrame(again.id, [](Pack& p) { p.Map(1).Str("client").Str("c-2"); }));
  Cmd sub = Expect("subscribe");
  EXPECT_EQ(sub.routing_id, again.routing_id);
  EXPECT_TRUE(sub.Bool("recover"));
  EXPECT_EQ(sub.Str("epoch"), "e1");
  EXPECT_EQ(sub.Uint("offset"), 5u);
  ASSERT_TRUE(Until([&] { return client_->connected(); }));
  EXPECT_EQ(client_->stats().sessions, 2u);
}

TEST_F(ClientFakeServerTest, DisconnectPushWithoutReconnectStops) {
  Make();
  Cmd conn = ConnectAndSubscribe("news");
  std::optional<Result<PublishResult>> pending;
  ASSERT_TRUE(client_->Publish("news", "1", [&](auto r) { pending.emplace(std::move(r)); }).ok());
  Expect("publish");
  node_.Send(conn.routing_id, DisconnectPush(3500, "invalid token", false));
  ASSERT_TRUE(Until([&] { return client_->state() == ClientState::kClosed; }));
  ASSERT_EQ(ev_.disconnected.size(), 1u);
  EXPECT_EQ(ev_.disconnected[0], (DisconnectInfo{3500, "invalid token", false}));
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->error().code, 3500u);
  EXPECT_TRUE(NoneFor("connect", 300ms));
  EXPECT_EQ(client_->stats().sessions, 1u);
}

TEST_F(ClientFakeServerTest, UnknownSessionErrorStartsANewSession) {
  Make();
  Cmd conn = ConnectAndSubscribe("news");
  std::optional<Result<PresenceResult>> got;
  ASSERT_TRUE(client_->Presence("news", "", 0, [&](auto r) { got.emplace(std::move(r)); }).ok());
  Cmd pr = Expect("presence");
  EXPECT_EQ(pr.ParamKeys(), (std::set<std::string>{"channel", "cursor"}));
  node_.Reply(pr, ErrorFrame(pr.id, 101, "unauthorized"));  // N-1: the node forgot us
  Cmd again = Expect("connect");
  EXPECT_NE(again.routing_id, conn.routing_id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->error().code, 101u);
}

TEST_F(ClientFakeServerTest, EndpointsTriedInOrder) {
  node2_ = std::make_unique<FakeNode>(ctx_);
  ClientOptions o = Options();
  o.endpoints = {node_.endpoint(), node2_->endpoint()};
  o.request_timeout = 200ms;
  Make(o);
  client_->Connect();
  Expect("connect");  // the first node never answers
  Accept(25, 10, node2_.get(), "c-second");
  EXPECT_EQ(client_->endpoint(), node2_->endpoint());
  EXPECT_EQ(client_->client_id(), "c-second");
}

TEST_F(ClientFakeServerTest, UnsubscribeAndServerUnsubscribePush) {
  Make();
  Cmd conn = ConnectAndSubscribe("a");
  ASSERT_TRUE(client_->Subscribe("b", {}, ev_.Handlers()).ok());
  Cmd sb = Expect("subscribe");
  node_.Reply(sb, SubscribeReply(sb.id, false, "", 0));
  ASSERT_TRUE(Until([&] { return client_->IsSubscribed("b"); }));

  std::optional<Result<Unit>> done;
  ASSERT_TRUE(client_->Unsubscribe("a", [&](auto r) { done.emplace(std::move(r)); }).ok());
  Cmd un = Expect("unsubscribe");
  node_.Reply(un, EmptyReply(un.id));
  node_.Send(conn.routing_id, PubPush("a", 6, "late"));  // raced the unsubscribe: ignored
  ASSERT_TRUE(Until([&] { return done.has_value(); }));
  EXPECT_TRUE(done->ok());

  node_.Send(conn.routing_id, PushFrame("unsubscribe", "b", [](Pack& p) {
               p.Map(2).Str("code").U(2000).Str("reason").Str("server unsubscribe");
             }));
  ASSERT_TRUE(Until([&] { return ev_.unsubscribed.size() == 2; }));
  EXPECT_EQ(ev_.unsubscribed[0].first, 0u);
  EXPECT_EQ(ev_.unsubscribed[1], (std::pair<uint32_t, std::string>{2000, "server unsubscribe"}));
  EXPECT_FALSE(client_->IsSubscribed("b"));
  EXPECT_TRUE(ev_.pubs.empty());
}

TEST_F(ClientFakeServerTest, CallbacksMayUnsubscribeMidDelivery) {
  Make();
  client_->Connect();
  Accept();
  SubscriptionHandlers h = ev_.Handlers();
  h.on_publication = [&](const Publication& p) {
    ev_.pubs.push_back(p);
    (void)client_->Unsubscribe("news");  // re-enters the client from inside delivery
  };
  SubscribeOptions so;
  so.since = StreamPosition{3, "e1"};
  ASSERT_TRUE(client_->Subscribe("news", so, h).ok());
  Cmd sub = Expect("subscribe");
  node_.Reply(sub,
              SubscribeReply(sub.id, true, "e1", 6, true, true, {{4, "a"}, {5, "b"}, {6, "c"}}));
  Cmd un = Expect("unsubscribe");
  EXPECT_EQ(un.Str("channel"), "news");
  ASSERT_TRUE(Until([&] { return ev_.unsubscribed.size() == 1; }));
  EXPECT_EQ(ev_.Offsets(), std::vector<uint64_t>{4});
}

TEST_F(ClientFakeServerTest, ManyClientsPolledFromOneThread) {
  constexpr size_t kClients = 50;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<chp::Pollable*> parts;
  size_t delivered = 0;
  for (size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(ctx_, Options()));
    parts.push_back(clients.back().get());
    SubscriptionHandlers h;
    h.on_publication = [&](const Publication&) { ++delivered; };
    ASSERT_TRUE(clients.back()->Subscribe("fan", {}, h).ok());
    clients.back()->Connect();
  }
  auto pump = [&] {
    chp::PollOnce(parts, 2ms);
    node_.Drain();
  };
  std::set<std::string> rids;
  ASSERT_TRUE(EventuallyTrue([&] {
    pump();
    while (auto c = node_.Take("connect")) {
      node_.Reply(*c, ReplyFrame(c->id, [](Pack& p) { p.Map(1).Str("client").Str("c"); }));
    }
    while (auto c = node_.Take("subscribe")) {
      node_.Reply(*c, SubscribeReply(c->id, true, "e", 0));
      rids.insert(c->routing_id);
    }
    return rids.size() == kClients;
  }));
  ASSERT_TRUE(EventuallyTrue([&] {
    pump();
    return std::all_of(clients.begin(), clients.end(),
                       [](const auto& c) { return c->IsSubscribed("fan"); });
  }));
  for (const auto& rid : rids) node_.Send(rid, PubPush("fan", 1, "x"));
  ASSERT_TRUE(EventuallyTrue([&] {
    pump();
    return delivered == kClients;
  }));
}

// ---------------------------------------------------------------------------------------------
// Robustness.

TEST_F(ClientFakeServerTest, MalformedFramesIgnoredWithoutCrash) {
  Make();
  Cmd conn = ConnectAndSubscribe("news", "e1", 0);
  std::optional<Result<PublishResult>> got;
  ASSERT_TRUE(client_->Publish("news", "1", [&](auto r) { got.emplace(std::move(r)); }).ok());
  Cmd pub = Expect("publish");
  const std::string& rid = conn.routing_id;
  node_.Send(rid, "");                                      // empty
  node_.Send(rid, "\xc1\xff\x00garbage");                   // not msgpack
  node_.Send(rid, Pack().Array(1).U(1).str());              // an array
  node_.Send(rid, Pack().Map(1).Str("x").U(1).str());       // neither id nor push
  node_.Send(rid, Pack().Map(1).Str("id").Str("7").str());  // id of the wrong type
  node_.Send(rid, Pack().Map(2).Str("id").U(pub.id).Str("result").U(3).str());
  node_.Send(rid, Pack().Map(3).U(1).U(2).Str("push").Str("pub").Str("data").Map(0).str());
  node_.Send(rid, PushFrame("pub", "news", [](Pack& p) { p.Map(1).Str("offset").Str("one"); }));
  node_.Send(rid, PushFrame("join", "news", [](Pack& p) { p.Map(1).Str("info").U(5); }));
  node_.Send(rid, DisconnectPush(3000, "", true).substr(0, 10));            // truncated
  node_.Send(rid, Pack().Map(1).Str("push").Str("from-the-future").str());  // unknown kind
  node_.Send(rid, Pack().Map(5000000).str());  // a header promising far more than it holds
  node_.SendMultipart(rid, EmptyReply(pub.id), EmptyReply(pub.id));
  node_.Send(rid, PubPush("news", 1, "still fine"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 1; }));
  EXPECT_EQ(ev_.pubs[0].data, "still fine");
  EXPECT_GE(client_->stats().malformed, 10u);
  EXPECT_TRUE(client_->connected());
  // The request whose reply was malformed is still pending; it times out or gets a real reply.
  node_.Reply(pub, ReplyFrame(pub.id, [](Pack& p) { p.Map(1).Str("offset").U(2); }));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  EXPECT_TRUE(got->ok());
}

}  // namespace
}  // namespace chorus::client::fake_node
