// Wire-level tests of chorus::client::Client (docs/protocol/native.md, client side) against the
// fake node of client_fake_server_support.h: connect, command frames, delivery, errors and
// timeouts. Keepalive, reconnect and robustness are in client_fake_server_reconnect_test.cc.
// Every wait is a condition with a deadline; "nothing happens" checks use a bounded window.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "client_fake_server_support.h"

namespace chorus::client::fake_node {
namespace {

// ---------------------------------------------------------------------------------------------
// Connect (N-1, N-2).

TEST_F(ClientFakeServerTest, ConnectReplyParsedAndFrameMatchesSpec) {
  Make();
  std::optional<Result<ConnectResult>> got;
  client_->Connect([&](Result<ConnectResult> r) { got.emplace(std::move(r)); });
  Cmd c = Expect("connect");
  EXPECT_EQ(c.top_keys, (std::set<std::string>{"id", "method", "params"}));
  EXPECT_EQ(c.ParamKeys(), std::set<std::string>{"user"});
  EXPECT_EQ(c.Str("user"), "alice");
  node_.Reply(c, ReplyFrame(c.id, [](Pack& p) {
                p.Map(5).Str("client").Str("c-77").Str("version").Str("1.2.3").Str("ping").U(25);
                p.Str("pong").U(10).Str("unknown_key").Array(0);  // unknown keys are ignored
              }));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error();
  EXPECT_EQ(**got, (ConnectResult{"c-77", "1.2.3", 25, 10}));
  EXPECT_EQ(client_->client_id(), "c-77");
  EXPECT_EQ(client_->state(), ClientState::kConnected);
  ASSERT_EQ(ev_.connected.size(), 1u);
  EXPECT_EQ(ev_.connected[0].client, "c-77");
}

TEST_F(ClientFakeServerTest, ConnectWithTokenAndInfoSendsTokenNotUser) {
  ClientOptions o = Options();
  o.token = "h.p.s";
  o.info = R"({"device":"x"})";
  Make(o);
  client_->Connect();
  Cmd c = Expect("connect");
  EXPECT_EQ(c.ParamKeys(), (std::set<std::string>{"token", "info"}));
  EXPECT_EQ(c.Str("token"), "h.p.s");
  EXPECT_EQ(c.Str("info"), R"({"device":"x"})");
}

TEST_F(ClientFakeServerTest, RefusedConnectIsTerminalAndReported) {
  Make();
  std::optional<Result<ConnectResult>> got;
  client_->Connect([&](Result<ConnectResult> r) { got.emplace(std::move(r)); });
  Cmd c = Expect("connect");
  node_.Reply(c, ErrorFrame(c.id, 101, "unauthorized"));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, 101u);
  EXPECT_EQ(client_->state(), ClientState::kClosed);
  EXPECT_TRUE(NoneFor("connect", 300ms));                  // no retry with the same bad credentials
  EXPECT_FALSE(client_->Publish("a", "1", nullptr).ok());  // kClosed at once
}

TEST_F(ClientFakeServerTest, ConnectSyncTimesOutWithoutANode) {
  ClientOptions o = Options();
  o.request_timeout = 100ms;
  Make(o);
  auto r = client_->ConnectSync(300ms);  // the fake never answers
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, static_cast<uint32_t>(Errc::kTimeout));
  node_.Drain();
  EXPECT_GE(node_.Count("connect"), 1u);
  EXPECT_GE(ev_.errors.size(), 1u);  // the timed-out attempts are reported
}

// ---------------------------------------------------------------------------------------------
// Command frames: keys and types exactly as in the "Methods" table.

TEST_F(ClientFakeServerTest, CommandFramesMatchSpec) {
  Make();
  client_->Connect();
  Accept();
  SubscribeOptions so;
  so.info = R"({"role":"reader"})";
  ASSERT_TRUE(client_->Subscribe("news", so, ev_.Handlers()).ok());
  Cmd sub = Expect("subscribe");
  EXPECT_EQ(sub.ParamKeys(),
            (std::set<std::string>{"channel", "recover", "epoch", "offset", "info"}));
  EXPECT_EQ(sub.Str("channel"), "news");
  EXPECT_FALSE(sub.Bool("recover"));
  EXPECT_EQ(sub.Str("epoch"), "");
  EXPECT_EQ(sub.Uint("offset"), 0u);
  EXPECT_EQ(sub.Str("info"), R"({"role":"reader"})");

  ASSERT_TRUE(client_->Publish("news", R"({"x":1})", nullptr).ok());
  Cmd pub = Expect("publish");
  EXPECT_EQ(pub.ParamKeys(), (std::set<std::string>{"channel", "data"}));
  EXPECT_EQ(pub.Str("channel"), "news");
  EXPECT_EQ(pub.Str("data"), R"({"x":1})");

  ASSERT_TRUE(client_->Presence("news", "cur", 50, nullptr).ok());
  Cmd pres = Expect("presence");
  EXPECT_EQ(pres.ParamKeys(), (std::set<std::string>{"channel", "cursor", "limit"}));
  EXPECT_EQ(pres.Str("cursor"), "cur");
  EXPECT_EQ(pres.Uint("limit"), 50u);

  ASSERT_TRUE(client_->PresenceStats("news", nullptr).ok());
  Cmd stats = Expect("presence_stats");
  EXPECT_EQ(stats.ParamKeys(), std::set<std::string>{"channel"});

  HistoryOptions ho;
  ho.limit = -1;
  ho.since = StreamPosition{7, "e9"};
  ho.reverse = true;
  ASSERT_TRUE(client_->History("news", ho, nullptr).ok());
  Cmd hist = Expect("history");
  EXPECT_EQ(hist.ParamKeys(), (std::set<std::string>{"channel", "limit", "since", "reverse"}));
  ASSERT_EQ(hist.Type("limit"), msgpack::type::NEGATIVE_INTEGER);
  EXPECT_EQ(hist.P("limit").via.i64, -1);
  EXPECT_TRUE(hist.Bool("reverse"));
  const msgpack::object& since = hist.P("since");
  ASSERT_EQ(since.type, msgpack::type::MAP);
  std::map<std::string, msgpack::object> s;
  for (uint32_t i = 0; i < since.via.map.size; ++i) {
    s[since.via.map.ptr[i].key.as<std::string>()] = since.via.map.ptr[i].val;
  }
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.at("offset").as<uint64_t>(), 7u);
  EXPECT_EQ(s.at("epoch").as<std::string>(), "e9");

  ASSERT_TRUE(client_->Unsubscribe("news").ok());
  Cmd unsub = Expect("unsubscribe");
  EXPECT_EQ(unsub.ParamKeys(), std::set<std::string>{"channel"});
  EXPECT_EQ(unsub.Str("channel"), "news");

  client_->Disconnect();
  Cmd disc = Expect("disconnect");
  EXPECT_TRUE(disc.params.empty());

  // Every command has its own id.
  std::set<uint64_t> ids{sub.id, pub.id, pres.id, stats.id, hist.id, unsub.id, disc.id};
  EXPECT_EQ(ids.size(), 7u);
}

TEST_F(ClientFakeServerTest, RepliesAreMatchedById) {
  Make();
  client_->Connect();
  Accept();
  std::optional<Result<PublishResult>> a, b;
  ASSERT_TRUE(client_->Publish("x", "1", [&](auto r) { a.emplace(std::move(r)); }).ok());
  ASSERT_TRUE(client_->Publish("x", "2", [&](auto r) { b.emplace(std::move(r)); }).ok());
  Cmd ca = Expect("publish");
  Cmd cb = Expect("publish");
  ASSERT_EQ(cb.Str("data"), "2");
  auto pub_reply = [](uint64_t id, uint64_t offset) {
    return ReplyFrame(id, [&](Pack& p) { p.Map(2).Str("offset").U(offset).Str("epoch").Str("e"); });
  };
  node_.Reply(cb, pub_reply(cb.id, 20));  // answered out of order on purpose
  node_.Reply(ca, pub_reply(ca.id, 10));
  ASSERT_TRUE(Until([&] { return a && b; }));
  ASSERT_TRUE(a->ok() && b->ok());
  EXPECT_EQ(**a, (PublishResult{10, "e"}));
  EXPECT_EQ(**b, (PublishResult{20, "e"}));
}

TEST_F(ClientFakeServerTest, RequestsMadeWhileConnectingAreSentAfterConnect) {
  Make();
  client_->Connect();
  std::optional<Result<PresenceStatsResult>> got;
  ASSERT_TRUE(client_->PresenceStats("room", [&](auto r) { got.emplace(std::move(r)); }).ok());
  Cmd conn = Expect("connect");
  EXPECT_EQ(node_.Count("presence_stats"), 0u);  // N-1: nothing before connect
  node_.Reply(conn, ReplyFrame(conn.id, [](Pack& p) { p.Map(1).Str("client").Str("c"); }));
  Cmd ps = Expect("presence_stats");
  node_.Reply(ps, ReplyFrame(ps.id, [](Pack& p) {
                p.Map(2).Str("num_clients").U(3).Str("num_users").U(2);
              }));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error();
  EXPECT_EQ(**got, (PresenceStatsResult{3, 2}));
}

// ---------------------------------------------------------------------------------------------
// Delivery (N-13): order, duplicates, join/leave.

TEST_F(ClientFakeServerTest, PublicationsDeliveredInOrder) {
  Make();
  Cmd conn = ConnectAndSubscribe("news", "e1", 5);
  ASSERT_EQ(ev_.subscribed.size(), 1u);
  EXPECT_TRUE(ev_.subscribed[0].recoverable);
  EXPECT_EQ(ev_.subscribed[0].epoch, "e1");
  EXPECT_EQ(ev_.subscribed[0].offset, 5u);
  node_.Send(conn.routing_id,
             PushFrame("pub", "news", [](Pack& p) { Pub(p, 6, R"("a")", "bob"); }));
  node_.Send(conn.routing_id, PubPush("news", 7, R"("b")"));
  node_.Send(conn.routing_id, PushFrame("pub", "news", [](Pack& p) {
               p.Map(3).Str("offset").U(8).Str("data").Str(R"("c")").Str("tags").Map(1);
               p.Str("k").Str("v");
             }));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 3; }));
  EXPECT_EQ(ev_.Offsets(), (std::vector<uint64_t>{6, 7, 8}));
  EXPECT_EQ(ev_.pubs[0].data, R"("a")");
  ASSERT_TRUE(ev_.pubs[0].info.has_value());
  EXPECT_EQ(*ev_.pubs[0].info, (ClientInfo{"c-bob", "bob", "", ""}));
  EXPECT_FALSE(ev_.pubs[1].info.has_value());
  EXPECT_EQ(ev_.pubs[2].tags, (std::map<std::string, std::string>{{"k", "v"}}));
  EXPECT_EQ(client_->Position("news"), (StreamPosition{8, "e1"}));
}

TEST_F(ClientFakeServerTest, DuplicateAndOldOffsetsDropped) {
  Make();
  Cmd conn = ConnectAndSubscribe("news", "e1", 5);
  for (uint64_t off : {6, 6, 4, 7, 5, 7, 8}) node_.Send(conn.routing_id, PubPush("news", off, "1"));
  ASSERT_TRUE(Until([&] { return client_->stats().duplicates == 4; }));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 3; }));
  EXPECT_EQ(ev_.Offsets(), (std::vector<uint64_t>{6, 7, 8}));
}

TEST_F(ClientFakeServerTest, OffsetZeroPublicationsAreNeverDropped) {
  Make();
  Cmd conn = ConnectAndSubscribe("chat", "", 0, /*recoverable=*/false);
  for (int i = 0; i < 3; ++i) node_.Send(conn.routing_id, PubPush("chat", 0, "1"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 3; }));
  EXPECT_EQ(client_->stats().duplicates, 0u);
}

TEST_F(ClientFakeServerTest, JoinAndLeavePushes) {
  Make();
  Cmd conn = ConnectAndSubscribe("room");
  node_.Send(conn.routing_id, PushFrame("join", "room", [](Pack& p) {
               p.Map(1).Str("info").Map(4).Str("client").Str("c-9").Str("user").Str("zoe");
               p.Str("conn_info").Str(R"({"a":1})").Str("chan_info").Str(R"({"b":2})");
             }));
  node_.Send(conn.routing_id,
             PushFrame("leave", "room", [](Pack& p) { Info(p.Map(1).Str("info"), "c-9", "zoe"); }));
  node_.Send(conn.routing_id, PushFrame("join", "other-channel",
                                        [](Pack& p) { Info(p.Map(1).Str("info"), "c-1", "x"); }));
  ASSERT_TRUE(Until([&] { return ev_.leaves.size() == 1; }));
  ASSERT_EQ(ev_.joins.size(), 1u);
  EXPECT_EQ(ev_.joins[0], (ClientInfo{"c-9", "zoe", R"({"a":1})", R"({"b":2})"}));
  EXPECT_EQ(ev_.leaves[0], (ClientInfo{"c-9", "zoe", "", ""}));
}

TEST_F(ClientFakeServerTest, RecoveredPublicationsBeforeLaterPushes) {
  Make();
  client_->Connect();
  Cmd conn = Accept();
  SubscribeOptions so;
  so.since = StreamPosition{3, "e1"};
  ASSERT_TRUE(client_->Subscribe("news", so, ev_.Handlers()).ok());
  Cmd sub = Expect("subscribe");
  EXPECT_TRUE(sub.Bool("recover"));
  EXPECT_EQ(sub.Uint("offset"), 3u);
  EXPECT_EQ(sub.Str("epoch"), "e1");
  // A live publication overtakes the reply; it must still come after the recovered ones.
  node_.Send(conn.routing_id, PubPush("news", 6, "live6"));
  node_.Reply(sub, SubscribeReply(sub.id, true, "e1", 5, true, true, {{4, "r4"}, {5, "r5"}}));
  node_.Send(conn.routing_id, PubPush("news", 5, "dup5"));
  node_.Send(conn.routing_id, PubPush("news", 7, "live7"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 4; }));
  EXPECT_EQ(ev_.Offsets(), (std::vector<uint64_t>{4, 5, 6, 7}));
  EXPECT_EQ(ev_.pubs[0].data, "r4");
  ASSERT_EQ(ev_.subscribed.size(), 1u);
  EXPECT_TRUE(ev_.subscribed[0].recovered);
  EXPECT_TRUE(ev_.subscribed[0].was_recovering);
  EXPECT_TRUE(ev_.subscribed[0].publications.empty());  // delivered through on_publication
}

// ---------------------------------------------------------------------------------------------
// Errors and timeouts.

TEST_F(ClientFakeServerTest, ErrorRepliesSurfacedWithCodeAndMessage) {
  Make();
  client_->Connect();
  Accept();
  std::optional<Result<PublishResult>> got;
  // Not JSON: sent as given; the node decides (N-12: 107).
  ASSERT_TRUE(
      client_->Publish("news", "not json", [&](auto r) { got.emplace(std::move(r)); }).ok());
  Cmd pub = Expect("publish");
  EXPECT_EQ(pub.Str("data"), "not json");
  node_.Reply(pub, ErrorFrame(pub.id, 107, "bad request"));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error(), (Error{107, "bad request"}));

  ASSERT_TRUE(client_->Subscribe("secret", {}, ev_.Handlers()).ok());
  Cmd sub = Expect("subscribe");
  node_.Reply(sub, ErrorFrame(sub.id, 103, "permission denied"));
  ASSERT_TRUE(Until([&] { return ev_.sub_errors.size() == 1; }));
  EXPECT_EQ(ev_.sub_errors[0], (Error{103, "permission denied"}));
  EXPECT_FALSE(client_->IsSubscribed("secret"));
  EXPECT_TRUE(client_->Subscribe("secret", {}, ev_.Handlers()).ok());  // dropped: may retry
  EXPECT_TRUE(client_->connected());
}

TEST_F(ClientFakeServerTest, RequestTimeout) {
  ClientOptions o = Options();
  o.request_timeout = 200ms;
  Make(o);
  client_->Connect();
  Accept();
  std::optional<Result<HistoryResult>> got;
  const auto start = Clock::now();
  ASSERT_TRUE(client_->History("news", {}, [&](auto r) { got.emplace(std::move(r)); }).ok());
  Expect("history");  // never answered
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  EXPECT_GE(Clock::now() - start, 190ms);
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, static_cast<uint32_t>(Errc::kTimeout));
  EXPECT_EQ(client_->pending(), 0u);
  EXPECT_EQ(client_->stats().timeouts, 1u);
  EXPECT_TRUE(client_->connected());  // a plain request timeout does not end the session
}

TEST_F(ClientFakeServerTest, PendingRequestsAreBounded) {
  ClientOptions o = Options();
  o.max_pending = 2;
  Make(o);
  client_->Connect();
  Accept();
  EXPECT_TRUE(client_->Publish("a", "1", nullptr).ok());
  EXPECT_TRUE(client_->Publish("a", "2", nullptr).ok());
  auto third = client_->Publish("a", "3", nullptr);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, static_cast<uint32_t>(Errc::kPendingLimit));
}

TEST_F(ClientFakeServerTest, HistoryReplyParsedAndSyncCallsTimeOut) {
  Make();
  client_->Connect();
  Accept();
  std::optional<Result<HistoryResult>> got;
  ASSERT_TRUE(client_
                  ->History("h",
                            HistoryOptions{.limit = 2, .since = std::nullopt, .reverse = false},
                            [&](auto r) { got.emplace(std::move(r)); })
                  .ok());
  Cmd h = Expect("history");
  EXPECT_EQ(h.P("limit").via.u64, 2u);
  node_.Reply(h, ReplyFrame(h.id, [](Pack& p) {
                p.Map(3).Str("publications").Array(2);
                Pub(p, 1, "a");
                Pub(p, 2, "b", "bob");
                p.Str("epoch").Str("e").Str("offset").U(2);
              }));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok());
  ASSERT_EQ((*got)->publications.size(), 2u);
  EXPECT_EQ((*got)->publications[1].info->user, "bob");
  // A blocking call against a silent node ends with the request timeout.
  ClientOptions o = Options();
  o.request_timeout = 100ms;
  Client quick(ctx_, o);
  ASSERT_FALSE(quick.ConnectSync(200ms).ok());
  auto r = quick.PublishSync("a", "1");  // queued while connecting, then timed out
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, static_cast<uint32_t>(Errc::kTimeout));
}

}  // namespace
}  // namespace chorus::client::fake_node
