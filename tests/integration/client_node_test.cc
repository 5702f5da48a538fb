// chorus::client (client/cpp) against a real chorusd: sessions (insecure, HS256, refused
// tokens), publish and receive, presence, history, join/leave pushes, unsubscribe, reconnect with
// recovery (N-15) and exactly-once delivery (N-13), recovered:false beyond the history, a node
// restart on the same endpoint, a slow consumer closed with 3008 (N-16), and the
// chorus-chat-example program. Clients are driven from the test thread with RunOnce inside
// EventuallyTrue loops; no raw frames (node_native_*_test.cc speak the wire format).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "chorus/client/client.h"
#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

namespace cc = chorus::client;
using namespace std::chrono_literals;
using Offsets = std::vector<uint64_t>;

// Options for a client of `node`: short timeouts and backoff so reconnects happen within a test.
cc::ClientOptions Options(const NodeProcess& node, const std::string& user) {
  cc::ClientOptions o;
  o.endpoints = {node.native()};
  o.user = user;
  o.request_timeout = 2s;
  o.reconnect_min = 50ms;
  o.reconnect_max = 500ms;
  o.seed = 1;
  return o;
}

// Polls the clients until `pred` holds or `timeout` passes.
bool Pump(std::initializer_list<cc::Client*> clients, const std::function<bool()>& pred,
          std::chrono::milliseconds timeout = 5s) {
  std::vector<chp::Pollable*> parts(clients.begin(), clients.end());
  return EventuallyTrue(
      [&] {
        chp::PollOnce(std::span<chp::Pollable* const>(parts), 10ms);
        return pred();
      },
      timeout);
}

// Polls for `d` and reports whether `pred` ever became true (to check that nothing more comes).
bool PumpFor(std::initializer_list<cc::Client*> clients, std::chrono::milliseconds d,
             const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + d;
  return Pump(
             clients, [&] { return pred() || std::chrono::steady_clock::now() >= until; },
             d + 5s) &&
         pred();
}

// Everything one subscription's handlers saw.
struct Recorder {
  Offsets offsets;
  std::vector<cc::Publication> pubs;
  std::vector<cc::SubscribeResult> subscribed;
  std::vector<std::string> joins, leaves, user_joins, user_leaves;  // users
  std::vector<uint32_t> unsubscribed;
  std::vector<cc::Error> errors;

  cc::SubscriptionHandlers Handlers() {
    cc::SubscriptionHandlers h;
    h.on_publication = [this](const cc::Publication& p) {
      offsets.push_back(p.offset);
      pubs.push_back(p);
    };
    h.on_subscribed = [this](const cc::SubscribeResult& r) { subscribed.push_back(r); };
    h.on_join = [this](const cc::ClientInfo& i) { joins.push_back(i.user); };
    h.on_leave = [this](const cc::ClientInfo& i) { leaves.push_back(i.user); };
    h.on_user_join = [this](const cc::ClientInfo& i) { user_joins.push_back(i.user); };
    h.on_user_leave = [this](const cc::ClientInfo& i) { user_leaves.push_back(i.user); };
    h.on_unsubscribed = [this](uint32_t code, const std::string&) { unsubscribed.push_back(code); };
    h.on_error = [this](const cc::Error& e) { errors.push_back(e); };
    return h;
  }
};

// Session events of one client.
struct Events {
  std::vector<cc::ConnectResult> connected;
  std::vector<cc::DisconnectInfo> disconnected;
  std::vector<cc::Error> errors;

  cc::ClientHandlers Handlers() {
    cc::ClientHandlers h;
    h.on_connected = [this](const cc::ConnectResult& r) { connected.push_back(r); };
    h.on_disconnected = [this](const cc::DisconnectInfo& d) { disconnected.push_back(d); };
    h.on_error = [this](const cc::Error& e) { errors.push_back(e); };
    return h;
  }
};

// Publishes `n` publications through the server API ({"n": first..first+n-1}).
void ApiPublish(const NodeProcess& node, const std::string& channel, int first, int n) {
  for (int i = first; i < first + n; ++i) {
    auto r = Api(node, "publish",
                 R"({"channel":")" + channel + R"(","data":{"n":)" + std::to_string(i) + "}}");
    ASSERT_EQ(r.status, 200) << r.body;
  }
}

Offsets Range(uint64_t first, uint64_t last) {
  Offsets out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(i);
  return out;
}

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

class ClientNode : public NodeFixture {
 protected:
  std::unique_ptr<cc::Client> MakeClient(const std::string& user, Events* events = nullptr,
                                         cc::ClientOptions* opts = nullptr) {
    cc::ClientOptions o = opts != nullptr ? *opts : Options(*node_, user);
    EXPECT_TRUE(cc::Validate(o).ok()) << cc::Validate(o).error();
    return std::make_unique<cc::Client>(
        ctx_, std::move(o), events != nullptr ? events->Handlers() : cc::ClientHandlers{});
  }
};

TEST_F(ClientNode, ConnectsInsecureWithUser) {
  StartNode();
  Events ev;
  auto c = MakeClient("alice", &ev);
  auto r = c->ConnectSync(5s);
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->client.empty());
  EXPECT_FALSE(r->version.empty());
  EXPECT_GT(r->ping, 0u);
  EXPECT_TRUE(c->connected());
  EXPECT_EQ(c->client_id(), r->client);
  ASSERT_EQ(ev.connected.size(), 1u);
  EXPECT_EQ(ev.connected[0], *r);
  c->Disconnect();
  EXPECT_EQ(c->state(), cc::ClientState::kClosed);
}

TEST_F(ClientNode, ConnectsWithHs256TokenAndRefusesBadOrExpiredOnes) {
  NodeOptions o;
  o.insecure = false;
  StartNode(o);
  {  // Valid token: the user is the token's sub.
    cc::ClientOptions opts = Options(*node_, "");
    opts.token = MakeHs256Token("test-secret", "tok-user", Now() + 3600);
    auto c = MakeClient("", nullptr, &opts);
    auto r = c->ConnectSync(5s);
    ASSERT_TRUE(r) << r.error();
    Recorder rec;
    ASSERT_TRUE(c->Subscribe("chat:tok", {}, rec.Handlers()));
    ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("chat:tok"); }));
    auto p = c->PresenceSync("chat:tok");
    ASSERT_TRUE(p) << p.error();
    ASSERT_EQ(p->presence.count(r->client), 1u);
    EXPECT_EQ(p->presence.at(r->client).user, "tok-user");
  }
  struct Case {
    std::string token;
    uint32_t code;
  };
  for (const Case& k : {Case{MakeHs256Token("wrong-secret", "u"), 101}, Case{"not-a-jwt", 101},
                        Case{MakeHs256Token("test-secret", "u", Now() - 60), 109}}) {
    cc::ClientOptions opts = Options(*node_, "");
    opts.token = k.token;
    Events ev;
    auto c = MakeClient("", &ev, &opts);
    std::optional<cc::Result<cc::ConnectResult>> got;
    c->Connect([&](cc::Result<cc::ConnectResult> r) { got = std::move(r); });
    ASSERT_TRUE(Pump({c.get()}, [&] { return got.has_value(); })) << k.code;
    ASSERT_FALSE(*got) << k.code;
    EXPECT_EQ(got->error().code, k.code) << got->error();
    // Terminal: no retry, reported once with reconnect false.
    EXPECT_EQ(c->state(), cc::ClientState::kClosed);
    ASSERT_EQ(ev.disconnected.size(), 1u);
    EXPECT_EQ(ev.disconnected[0].code, k.code);
    EXPECT_FALSE(ev.disconnected[0].reconnect);
    EXPECT_EQ(c->stats().sessions, 1u);
    // Requests on a closed client fail at once.
    EXPECT_EQ(c->Publish("chat:x", "{}", nullptr).error().code,
              static_cast<uint32_t>(cc::Errc::kClosed));
  }
}

TEST_F(ClientNode, PublishThroughTheClientReachesSubscribers) {
  StartNode();
  auto sub = MakeClient("s"), pub = MakeClient("p");
  Recorder rec;
  ASSERT_TRUE(sub->Subscribe("chat:pub", {}, rec.Handlers()));
  sub->Connect();
  ASSERT_TRUE(pub->ConnectSync(5s));
  ASSERT_TRUE(Pump({sub.get()}, [&] { return sub->IsSubscribed("chat:pub"); }));
  ASSERT_EQ(rec.subscribed.size(), 1u);
  EXPECT_TRUE(rec.subscribed[0].recoverable);
  EXPECT_FALSE(rec.subscribed[0].was_recovering);
  const std::string epoch = rec.subscribed[0].epoch;
  for (int i = 1; i <= 3; ++i) {
    auto r = pub->PublishSync("chat:pub", R"({"i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->offset, static_cast<uint64_t>(i));
    EXPECT_EQ(r->epoch, epoch);
  }
  ASSERT_TRUE(Pump({sub.get()}, [&] { return rec.offsets.size() >= 3; }));
  EXPECT_EQ(rec.offsets, Range(1, 3));
  EXPECT_EQ(rec.pubs[0].data, R"({"i":1})");
  ASSERT_TRUE(rec.pubs[0].info.has_value());
  EXPECT_EQ(rec.pubs[0].info->user, "p");
  EXPECT_EQ(rec.pubs[0].info->client, pub->client_id());
  EXPECT_EQ(sub->Position("chat:pub"), (cc::StreamPosition{3, epoch}));
  // Not JSON: refused by the node with 107, the message kept.
  auto bad = pub->PublishSync("chat:pub", "not json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, 107u) << bad.error();
  // Unknown namespace: 102.
  auto unknown = pub->PublishSync("nope:x", "{}");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, 102u) << unknown.error();
  // A channel without history: offset 0, delivered unfiltered.
  Recorder nh;
  ASSERT_TRUE(sub->Subscribe("nohist:a", {}, nh.Handlers()));
  ASSERT_TRUE(Pump({sub.get()}, [&] { return sub->IsSubscribed("nohist:a"); }));
  for (int i = 0; i < 2; ++i) {
    auto r = pub->PublishSync("nohist:a", "1");
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->offset, 0u);
  }
  ASSERT_TRUE(Pump({sub.get()}, [&] { return nh.offsets.size() >= 2; }));
  EXPECT_EQ(nh.offsets, (Offsets{0, 0}));
}

TEST_F(ClientNode, ApiPublicationReachesTheClient) {
  StartNode();
  auto sub = MakeClient("s");
  Recorder rec;
  ASSERT_TRUE(sub->Subscribe("chat:api", {}, rec.Handlers()));
  sub->Connect();
  ASSERT_TRUE(Pump({sub.get()}, [&] { return sub->IsSubscribed("chat:api"); }));
  ApiPublish(*node_, "chat:api", 1, 2);
  ASSERT_TRUE(Pump({sub.get()}, [&] { return rec.offsets.size() >= 2; }));
  EXPECT_EQ(rec.offsets, Range(1, 2));
  EXPECT_EQ(rec.pubs[0].data, R"({"n":1})");
  EXPECT_FALSE(rec.pubs[0].info.has_value()) << "published by the server, not a client";
}

TEST_F(ClientNode, PresenceStatsAndHistory) {
  StartNode();
  auto a = MakeClient("alice"), b = MakeClient("bob"), b2 = MakeClient("bob");
  Recorder ra, rb, rb2;
  ASSERT_TRUE(a->Subscribe("chat:pr", {}, ra.Handlers()));
  ASSERT_TRUE(b->Subscribe("chat:pr", {}, rb.Handlers()));
  ASSERT_TRUE(b2->Subscribe("chat:pr", {}, rb2.Handlers()));
  for (auto* c : {a.get(), b.get(), b2.get()}) c->Connect();
  ASSERT_TRUE(Pump({a.get(), b.get(), b2.get()}, [&] {
    return a->IsSubscribed("chat:pr") && b->IsSubscribed("chat:pr") && b2->IsSubscribed("chat:pr");
  }));
  auto p = a->PresenceSync("chat:pr");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->presence.size(), 3u);
  EXPECT_TRUE(p->next_cursor.empty());
  ASSERT_EQ(p->presence.count(b->client_id()), 1u);
  EXPECT_EQ(p->presence.at(b->client_id()).user, "bob");
  EXPECT_EQ(p->presence.at(b->client_id()).client, b->client_id());
  auto st = a->PresenceStatsSync("chat:pr");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->num_clients, 3u);
  EXPECT_EQ(st->num_users, 2u);
  // Paging: one per page until next_cursor is "".
  std::string cursor;
  size_t seen = 0;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = a->PresenceSync("chat:pr", cursor, 1);
    ASSERT_TRUE(page) << page.error();
    seen += page->presence.size();
    cursor = page->next_cursor;
    if (cursor.empty()) break;
  }
  EXPECT_EQ(seen, 3u);
  // Presence on a namespace without it: refused (not 0 members).
  auto nopres = a->PresenceSync("short:x");
  EXPECT_FALSE(nopres);

  // History: everything, since a position, reversed, and position only.
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(a->PublishSync("chat:pr", std::to_string(i)));
  auto all = a->HistorySync("chat:pr", {.limit = -1, .since = std::nullopt, .reverse = false});
  ASSERT_TRUE(all) << all.error();
  Offsets got;
  for (const auto& pub : all->publications) got.push_back(pub.offset);
  EXPECT_EQ(got, Range(1, 5));
  EXPECT_EQ(all->offset, 5u);
  EXPECT_FALSE(all->epoch.empty());
  auto since = a->HistorySync(
      "chat:pr", {.limit = 2, .since = cc::StreamPosition{2, all->epoch}, .reverse = false});
  ASSERT_TRUE(since) << since.error();
  got.clear();
  for (const auto& pub : since->publications) got.push_back(pub.offset);
  EXPECT_EQ(got, (Offsets{3, 4}));
  auto rev = a->HistorySync("chat:pr", {.limit = 2, .since = std::nullopt, .reverse = true});
  ASSERT_TRUE(rev) << rev.error();
  got.clear();
  for (const auto& pub : rev->publications) got.push_back(pub.offset);
  EXPECT_EQ(got, (Offsets{5, 4}));
  auto top = a->HistorySync("chat:pr", {});
  ASSERT_TRUE(top) << top.error();
  EXPECT_TRUE(top->publications.empty());
  EXPECT_EQ(top->offset, 5u);
  EXPECT_EQ(top->epoch, all->epoch);
}

TEST_F(ClientNode, JoinLeaveAndUserJoinLeave) {
  StartNode();
  auto a = MakeClient("alice"), b = MakeClient("bob");
  Recorder ra, rb;
  ASSERT_TRUE(a->Subscribe("chat:jl", {}, ra.Handlers()));
  ASSERT_TRUE(a->ConnectSync(5s));
  ASSERT_TRUE(Pump({a.get()}, [&] { return a->IsSubscribed("chat:jl"); }));
  ASSERT_TRUE(b->ConnectSync(5s));
  ASSERT_TRUE(b->Subscribe("chat:jl", {}, rb.Handlers()));
  ASSERT_TRUE(Pump({a.get(), b.get()},
                   [&] {
                     return std::count(ra.joins.begin(), ra.joins.end(), "bob") == 1 &&
                            std::count(ra.user_joins.begin(), ra.user_joins.end(), "bob") == 1;
                   }))
      << ra.joins.size() << " joins, " << ra.user_joins.size() << " user joins";
  // A second session of bob: a join, but no user_join (the user is already there).
  auto b2 = MakeClient("bob");
  Recorder rb2;
  ASSERT_TRUE(b2->Subscribe("chat:jl", {}, rb2.Handlers()));
  b2->Connect();
  ASSERT_TRUE(Pump({a.get(), b.get(), b2.get()},
                   [&] { return std::count(ra.joins.begin(), ra.joins.end(), "bob") == 2; }));
  ASSERT_TRUE(b2->IsSubscribed("chat:jl"));
  b2->Disconnect();
  ASSERT_TRUE(Pump({a.get(), b.get()}, [&] { return ra.leaves.size() == 1; }));
  EXPECT_TRUE(ra.user_leaves.empty()) << "bob still has a session in the channel";
  b->Disconnect();
  ASSERT_TRUE(Pump({a.get()}, [&] { return ra.leaves.size() == 2 && ra.user_leaves.size() == 1; }));
  EXPECT_EQ(ra.user_leaves[0], "bob");
  // Joins of alice herself may come too; bob's user_join came once, for two sessions.
  auto bob_user_joins = [&] {
    return std::count(ra.user_joins.begin(), ra.user_joins.end(), "bob");
  };
  EXPECT_FALSE(PumpFor({a.get()}, 200ms, [&] { return bob_user_joins() > 1; }));
  EXPECT_EQ(bob_user_joins(), 1);
  EXPECT_EQ(std::count(ra.joins.begin(), ra.joins.end(), "bob"), 2);
}

TEST_F(ClientNode, UnsubscribeStopsDelivery) {
  StartNode();
  Events ev;
  auto c = MakeClient("u", &ev), other = MakeClient("o");
  Recorder rec, ro;
  ASSERT_TRUE(c->Subscribe("chat:un", {}, rec.Handlers()));
  ASSERT_TRUE(other->Subscribe("chat:un", {}, ro.Handlers()));
  c->Connect();
  other->Connect();
  ASSERT_TRUE(Pump({c.get(), other.get()},
                   [&] { return c->IsSubscribed("chat:un") && other->IsSubscribed("chat:un"); }));
  EXPECT_EQ(c->Subscribe("chat:un", {}, {}).error().code, 105u) << "already subscribed here";
  ApiPublish(*node_, "chat:un", 1, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() == 1; }));
  std::optional<cc::Result<cc::Unit>> done;
  ASSERT_TRUE(c->Unsubscribe("chat:un", [&](cc::Result<cc::Unit> r) { done = std::move(r); }));
  EXPECT_FALSE(c->IsSubscribed("chat:un"));
  // on_unsubscribed runs from the next poll, not from inside Unsubscribe.
  ASSERT_TRUE(Pump({c.get(), other.get()}, [&] { return done.has_value(); }));
  EXPECT_EQ(rec.unsubscribed, (std::vector<uint32_t>{0}));
  EXPECT_TRUE(*done) << done->error();
  auto st = other->PresenceStatsSync("chat:un");
  ASSERT_TRUE(st) << st.error();
  EXPECT_EQ(st->num_clients, 1u);
  ApiPublish(*node_, "chat:un", 2, 1);
  ASSERT_TRUE(Pump({other.get()}, [&] { return ro.offsets.size() == 2; }));
  EXPECT_FALSE(PumpFor({c.get()}, 300ms, [&] { return rec.offsets.size() > 1; }));
  EXPECT_EQ(rec.offsets, (Offsets{1}));
  EXPECT_TRUE(c->connected());
  EXPECT_TRUE(ev.disconnected.empty());
  // Subscribing again works (a fresh subscription from the top).
  ASSERT_TRUE(c->Subscribe("chat:un", {}, rec.Handlers()));
  ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("chat:un"); }));
}

TEST_F(ClientNode, ReconnectAfterServerDisconnectRecoversExactlyTheMissedThenLive) {
  StartNode();
  Events ev;
  auto c = MakeClient("u", &ev);
  Recorder rec;
  ASSERT_TRUE(c->Subscribe("chat:rc", {}, rec.Handlers()));
  c->Connect();
  ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("chat:rc"); }));
  ApiPublish(*node_, "chat:rc", 1, 3);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() == 3; }));
  ASSERT_EQ(rec.offsets, Range(1, 3));
  const std::string first_client = c->client_id();

  // The node closes the session with a reconnect code; 5 publications go by meanwhile (the
  // client is not polled, so they cannot reach it live).
  auto d = Api(*node_, "disconnect", R"({"user":"u","disconnect":{"code":3100,"reason":"test"}})");
  ASSERT_EQ(d.status, 200) << d.body;
  ApiPublish(*node_, "chat:rc", 4, 5);
  ASSERT_TRUE(
      Pump({c.get()}, [&] { return rec.subscribed.size() == 2 && rec.offsets.size() >= 8; }))
      << ev.disconnected.size() << " disconnects, " << rec.offsets.size() << " offsets";
  ASSERT_EQ(ev.disconnected.size(), 1u);
  EXPECT_EQ(ev.disconnected[0].code, 3100u);
  EXPECT_EQ(ev.disconnected[0].reason, "test");
  EXPECT_TRUE(ev.disconnected[0].reconnect);
  EXPECT_EQ(ev.connected.size(), 2u);
  EXPECT_NE(c->client_id(), first_client);
  EXPECT_TRUE(rec.subscribed[1].was_recovering);
  EXPECT_TRUE(rec.subscribed[1].recovered);
  EXPECT_EQ(rec.subscribed[1].offset, 8u);
  EXPECT_EQ(rec.subscribed[1].epoch, rec.subscribed[0].epoch);
  ApiPublish(*node_, "chat:rc", 9, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() >= 9; }));
  EXPECT_FALSE(PumpFor({c.get()}, 300ms, [&] { return rec.offsets.size() > 9; }));
  EXPECT_EQ(rec.offsets, Range(1, 9)) << "each offset once, in order";
  EXPECT_EQ(rec.pubs[3].data, R"({"n":4})");
  EXPECT_EQ(rec.pubs[8].data, R"({"n":9})");
  EXPECT_EQ(c->stats().publications, 9u);
}

TEST_F(ClientNode, ReconnectBeyondShortHistoryReportsNotRecovered) {
  StartNode();
  Events ev;
  auto c = MakeClient("u", &ev);
  Recorder rec;
  ASSERT_TRUE(c->Subscribe("short:rc", {}, rec.Handlers()));
  c->Connect();
  ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("short:rc"); }));
  ApiPublish(*node_, "short:rc", 1, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() == 1; }));
  auto d = Api(*node_, "disconnect", R"({"user":"u","disconnect":{"code":3100,"reason":"test"}})");
  ASSERT_EQ(d.status, 200) << d.body;
  ApiPublish(*node_, "short:rc", 2, 10);  // 2..11: only 9..11 are retained
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.subscribed.size() == 2; }));
  EXPECT_TRUE(rec.subscribed[1].was_recovering);
  EXPECT_FALSE(rec.subscribed[1].recovered);
  EXPECT_EQ(rec.subscribed[1].offset, 11u);
  EXPECT_EQ(c->Position("short:rc"), (cc::StreamPosition{11, rec.subscribed[0].epoch}));
  // Delivery continues from the top, with nothing of the partial history.
  ApiPublish(*node_, "short:rc", 12, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() >= 2; }));
  EXPECT_FALSE(PumpFor({c.get()}, 300ms, [&] { return rec.offsets.size() > 2; }));
  EXPECT_EQ(rec.offsets, (Offsets{1, 12}));
}

TEST_F(ClientNode, NodeRestartOnTheSameEndpointIsANewEpoch) {
  StartNode();
  const std::string endpoint = node_->native();
  Events ev;
  auto c = MakeClient("u", &ev);
  Recorder rec;
  ASSERT_TRUE(c->Subscribe("chat:rs", {}, rec.Handlers()));
  c->Connect();
  ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("chat:rs"); }));
  ApiPublish(*node_, "chat:rs", 1, 3);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() == 3; }));
  const std::string epoch = rec.subscribed[0].epoch;
  ASSERT_TRUE(node_->Stop()) << "chorusd did not exit cleanly";
  NodeOptions o;
  o.overrides = {"native.endpoint=" + endpoint};
  StartNode(o);
  ASSERT_EQ(node_->native(), endpoint);
  // The client notices (a shutdown push, or a dead connection) and comes back by itself.
  ASSERT_TRUE(Pump(
      {c.get()}, [&] { return rec.subscribed.size() == 2; }, 20s))
      << ev.disconnected.size() << " disconnects";
  ASSERT_FALSE(ev.disconnected.empty());
  EXPECT_TRUE(ev.disconnected[0].reconnect) << ev.disconnected[0];
  EXPECT_TRUE(rec.subscribed[1].was_recovering);
  EXPECT_FALSE(rec.subscribed[1].recovered);
  EXPECT_NE(rec.subscribed[1].epoch, epoch);
  EXPECT_EQ(rec.subscribed[1].offset, 0u);
  // The new stream starts at 1 again, and the client delivers it (new epoch: not a duplicate).
  ApiPublish(*node_, "chat:rs", 1, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() >= 4; }));
  EXPECT_EQ(rec.offsets, (Offsets{1, 2, 3, 1}));
  EXPECT_EQ(c->stats().duplicates, 0u);
}

// N-16 through the client: a client that stops polling while its channel is flooded is closed
// with 3008; when it polls again it drains what reached it, reconnects and recovers the rest,
// each offset once.
TEST_F(ClientNode, SlowConsumerIsClosedThenReconnectsAndResumes) {
  NodeOptions o;
  // A catch-up reply must fit client.max_queue_bytes (1 MiB by default) or the node answers
  // recovered:false; raised so that this one (~20 MB) is recovered.
  o.overrides = {"native.send_hwm=100", "client.max_queue_bytes=67108864"};
  o.extra_toml = R"(
[namespaces.flood]
history_size = 2000
history_ttl_ms = 600000
allow_recovery = true
allow_publish_for_client = true
)";
  StartNode(o);
  cc::ClientOptions opts = Options(*node_, "slow");
  opts.rcvhwm = 10;  // libzmq reads little ahead on the client's side
  // The node pushes `disconnect` once, when it closes the session (the full pipe drops it), and
  // then only in answer to the session's next command (N-1): a ping every second makes that
  // soon, instead of after the node's 25 s ping interval.
  opts.ping_interval = 1s;
  opts.pong_timeout = 10s;
  Events ev;
  auto c = MakeClient("slow", &ev, &opts);
  Recorder rec;
  ASSERT_TRUE(c->Subscribe("flood:x", {}, rec.Handlers()));
  c->Connect();
  ASSERT_TRUE(Pump({c.get()}, [&] { return c->IsSubscribed("flood:x"); }));

  // ~26 MB while the client does not poll: more than the node's pipe (100 messages) and the
  // loopback socket buffers hold. 800 publications stay within chorusd's recovery limit (1000).
  constexpr int kPubs = 800;
  const std::string blob(32 * 1024, 'x');
  for (int i = 1; i <= kPubs; ++i) {
    auto r = Api(
        *node_, "publish",
        R"({"channel":"flood:x","data":{"i":)" + std::to_string(i) + R"(,"b":")" + blob + R"("}})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  ASSERT_TRUE(EventuallyTrue([&] {
    auto m = HttpRequest(node_->http_host(), node_->http_port(), "GET", "/metrics");
    return m.body.find("chorus_disconnects_total{code=\"3008\"} 1") != std::string::npos;
  })) << "the non-polling client was not closed as slow";

  // Polling again: 3008 (reconnect: true), a new session, recovery up to kPubs.
  ASSERT_TRUE(Pump(
      {c.get()}, [&] { return rec.offsets.size() >= kPubs; }, 30s))
      << rec.offsets.size() << " offsets, " << ev.disconnected.size() << " disconnects, "
      << (ev.disconnected.empty() ? cc::DisconnectInfo{} : ev.disconnected.back()) << ", "
      << rec.subscribed.size() << " subscribes, " << ev.connected.size() << " connects, "
      << ev.errors.size() << " connect errors, state " << static_cast<int>(c->state())
      << ", sessions " << c->stats().sessions << ", timeouts " << c->stats().timeouts
      << ", duplicates " << c->stats().duplicates << ", malformed " << c->stats().malformed
      << ", last subscribe " << rec.subscribed.back() << ", last offset "
      << (rec.offsets.empty() ? 0 : rec.offsets.back());
  ASSERT_FALSE(ev.disconnected.empty());
  // The node's 3008 push, or, on a loaded machine where the flood outlasted the client's own
  // ping deadline, the client's ping timeout: either way the session ended and is resumed.
  EXPECT_TRUE(ev.disconnected[0].code == 3008u ||
              ev.disconnected[0].code == static_cast<uint32_t>(cc::Errc::kPingTimeout))
      << ev.disconnected[0];
  EXPECT_TRUE(ev.disconnected[0].reconnect);
  ASSERT_GE(rec.subscribed.size(), 2u);
  EXPECT_TRUE(rec.subscribed[1].was_recovering);
  EXPECT_TRUE(rec.subscribed[1].recovered);
  EXPECT_EQ(rec.offsets, Range(1, kPubs)) << "no duplicate, no hole";
  // Live again.
  ApiPublish(*node_, "flood:x", kPubs + 1, 1);
  ASSERT_TRUE(Pump({c.get()}, [&] { return rec.offsets.size() >= kPubs + 1; }));
  EXPECT_FALSE(PumpFor({c.get()}, 200ms, [&] { return rec.offsets.size() > kPubs + 1; }));
  EXPECT_EQ(rec.offsets.back(), static_cast<uint64_t>(kPubs + 1));
}

// chorus-chat-example: prints publications to stdout, publishes stdin lines, exits cleanly on
// SIGTERM.
TEST_F(ClientNode, ChatExampleReceivesAndPublishes) {
  StartNode();
  auto watcher = MakeClient("watcher");
  Recorder rw;
  ASSERT_TRUE(watcher->Subscribe("chat:ex", {}, rw.Handlers()));
  ASSERT_TRUE(watcher->ConnectSync(5s));
  ASSERT_TRUE(Pump({watcher.get()}, [&] { return watcher->IsSubscribed("chat:ex"); }));

  // The example's stdin is a pipe the test writes to: fd 0 of this process is swapped for the
  // pipe's read end while the child is forked (the child inherits it), then restored.
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const int saved_stdin = dup(STDIN_FILENO);
  ASSERT_GE(saved_stdin, 0);
  ASSERT_EQ(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
  auto example = std::make_unique<ChildProcess>(
      CHORUS_CHAT_EXAMPLE_BIN, std::vector<std::string>{"--endpoint", node_->native(), "--channel",
                                                        "chat:ex", "--user", "ex-user"});
  dup2(saved_stdin, STDIN_FILENO);
  close(saved_stdin);
  close(fds[0]);
  const int to_example = fds[1];

  ASSERT_TRUE(Pump({watcher.get()}, [&] {
    return std::count(rw.joins.begin(), rw.joins.end(), "ex-user") == 1;
  })) << "the example did not subscribe";
  ApiPublish(*node_, "chat:ex", 7, 1);
  EXPECT_EQ(example->ReadLine(5s), R"(server> {"n":7})");

  const std::string line = "hello \"there\"\n";
  ASSERT_EQ(write(to_example, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ASSERT_TRUE(Pump({watcher.get()}, [&] { return rw.pubs.size() >= 2; }));
  EXPECT_EQ(rw.pubs[1].data, R"("hello \"there\"")");
  ASSERT_TRUE(rw.pubs[1].info.has_value());
  EXPECT_EQ(rw.pubs[1].info->user, "ex-user");
  // Its own publication comes back to it too.
  EXPECT_EQ(example->ReadLine(5s), R"(ex-user> "hello \"there\"")");

  EXPECT_TRUE(example->Terminate(5s)) << "the example did not exit cleanly on SIGTERM";
  close(to_example);
  ASSERT_TRUE(Pump({watcher.get()}, [&] {
    return std::count(rw.leaves.begin(), rw.leaves.end(), "ex-user") == 1;
  })) << "the example left without a presence leave";
}

}  // namespace
}  // namespace chorus::testing
