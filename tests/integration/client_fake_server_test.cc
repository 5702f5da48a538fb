// Wire-level tests of chorus::client::Client (docs/protocol/native.md, client side) against a
// FAKE node written here: a plain cppzmq ROUTER on tcp://127.0.0.1:0 whose frames are packed by
// hand with msgpack::packer and whose received frames are unpacked with msgpack directly, so the
// client is checked against the spec's wire format and not against its own codec. The client and
// the fake run on the test thread (RunOnce inside deadline loops). No sleeps as synchronisation:
// every wait is a condition with a deadline; "nothing happens" checks use a bounded window.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "chorus/client/client.h"
#include "chp/loop.h"
#include "test_util.h"

namespace chorus::client {
namespace {

using namespace std::chrono_literals;
using chorus::testing::EventuallyTrue;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Hand-packed frames.

class Pack {
 public:
  Pack& Map(uint32_t n) { return pk_.pack_map(n), *this; }
  Pack& Arr(uint32_t n) { return pk_.pack_array(n), *this; }
  Pack& Str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Uint(uint64_t v) { return pk_.pack_uint64(v), *this; }
  Pack& Bool(bool v) { return (v ? pk_.pack_true() : pk_.pack_false()), *this; }
  Pack& Nil() { return pk_.pack_nil(), *this; }
  // `{client, user, conn_info, chan_info}`
  Pack& Info(std::string_view client, std::string_view user) {
    return Map(4)
        .Str("client")
        .Str(client)
        .Str("user")
        .Str(user)
        .Str("conn_info")
        .Str("")
        .Str("chan_info")
        .Str("");
  }
  // A publication map `{offset, data}` (plus info when `user` is given).
  Pack& Pub(uint64_t offset, std::string_view data, std::string_view user = "") {
    Map(user.empty() ? 2 : 3).Str("offset").Uint(offset).Str("data").Str(data);
    if (!user.empty()) Str("info").Info("c-" + std::string(user), user);
    return *this;
  }
  std::string Take() { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_{buf_};
};

// `{id, result: <body>}`; `body` packs exactly one map.
std::string ReplyFrame(uint64_t id, const std::function<void(Pack&)>& body) {
  Pack p;
  p.Map(2).Str("id").Uint(id).Str("result");
  body(p);
  return p.Take();
}
std::string EmptyReply(uint64_t id) {
  return ReplyFrame(id, [](Pack& p) { p.Map(0); });
}
std::string ErrorFrame(uint64_t id, uint64_t code, std::string_view message) {
  Pack p;
  p.Map(2).Str("id").Uint(id).Str("error").Map(2).Str("code").Uint(code).Str("message").Str(
      message);
  return p.Take();
}
// `{push, channel, data: <body>}`
std::string PushFrame(std::string_view push, std::string_view channel,
                      const std::function<void(Pack&)>& body) {
  Pack p;
  p.Map(3).Str("push").Str(push).Str("channel").Str(channel).Str("data");
  body(p);
  return p.Take();
}
std::string PubPush(std::string_view channel, uint64_t offset, std::string_view data) {
  return PushFrame("pub", channel, [&](Pack& p) { p.Pub(offset, data); });
}
std::string DisconnectPush(uint64_t code, std::string_view reason, bool reconnect) {
  Pack p;
  p.Map(2).Str("push").Str("disconnect").Str("data").Map(3).Str("code").Uint(code).Str("reason");
  p.Str(reason).Str("reconnect").Bool(reconnect);
  return p.Take();
}
// A subscribe result. `pubs` are (offset, data) recovered publications.
std::string SubscribeReply(uint64_t id, bool recoverable, std::string_view epoch, uint64_t offset,
                           bool recovered = false, bool was_recovering = false,
                           std::vector<std::pair<uint64_t, std::string>> pubs = {}) {
  return ReplyFrame(id, [&](Pack& p) {
    p.Map(6)
        .Str("recoverable")
        .Bool(recoverable)
        .Str("epoch")
        .Str(epoch)
        .Str("offset")
        .Uint(offset);
    p.Str("recovered").Bool(recovered).Str("was_recovering").Bool(was_recovering);
    p.Str("publications").Arr(static_cast<uint32_t>(pubs.size()));
    for (const auto& [o, d] : pubs) p.Pub(o, d);
  });
}

// ---------------------------------------------------------------------------------------------
// A command as the fake received it, checked against the "Client to node: command" table.

struct Cmd {
  std::string routing_id;
  msgpack::object_handle handle;
  std::set<std::string> top_keys;
  uint64_t id = 0;
  std::string method;
  std::map<std::string, const msgpack::object*> params;

  std::set<std::string> ParamKeys() const {
    std::set<std::string> out;
    for (const auto& [k, v] : params) out.insert(k);
    return out;
  }
  const msgpack::object& P(const std::string& key) const {
    auto it = params.find(key);
    if (it == params.end()) throw std::runtime_error("no param " + key);
    return *it->second;
  }
  std::string Str(const std::string& key) const {
    const auto& o = P(key);
    if (o.type != msgpack::type::STR) throw std::runtime_error(key + " is not a str");
    return std::string(o.via.str.ptr, o.via.str.size);
  }
  uint64_t Uint(const std::string& key) const {
    const auto& o = P(key);
    if (o.type != msgpack::type::POSITIVE_INTEGER) throw std::runtime_error(key + " not uint");
    return o.via.u64;
  }
  bool Bool(const std::string& key) const {
    const auto& o = P(key);
    if (o.type != msgpack::type::BOOLEAN) throw std::runtime_error(key + " is not a bool");
    return o.via.boolean;
  }
  msgpack::type::object_type Type(const std::string& key) const { return P(key).type; }
};

// The fake node: one ROUTER. Commands are parsed strictly; a frame that breaks the command
// table is recorded in `violations`.
class FakeNode {
 public:
  explicit FakeNode(zmq::context_t& ctx) : router_(ctx, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:0");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Reads every waiting command (non-blocking). With `silent`, reads and discards.
  void Drain() {
    while (true) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        return;
      }
      if (parts.size() != 2) {
        violations.push_back("message of " + std::to_string(parts.size()) + " frames");
        continue;
      }
      Parse(parts[0].to_string(), parts[1].to_string());
    }
  }
  // Removes and returns the first received command with this method.
  std::optional<Cmd> Take(std::string_view method) {
    for (auto it = received_.begin(); it != received_.end(); ++it) {
      if (it->method == method) {
        Cmd c = std::move(*it);
        received_.erase(it);
        return c;
      }
    }
    return std::nullopt;
  }
  size_t Count(std::string_view method) const {
    size_t n = 0;
    for (const auto& c : received_) n += c.method == method ? 1 : 0;
    return n;
  }
  void Send(const std::string& rid, const std::string& body) {
    std::array<zmq::const_buffer, 2> parts = {zmq::buffer(rid), zmq::buffer(body)};
    ASSERT_TRUE(zmq::send_multipart(router_, parts));
  }
  void Reply(const Cmd& c, const std::string& body) { Send(c.routing_id, body); }
  // A multipart message after the routing id (the spec allows one frame only).
  void SendMultipart(const std::string& rid, const std::string& a, const std::string& b) {
    std::array<zmq::const_buffer, 3> parts = {zmq::buffer(rid), zmq::buffer(a), zmq::buffer(b)};
    ASSERT_TRUE(zmq::send_multipart(router_, parts));
  }

  std::vector<std::string> violations;

 private:
  void Parse(std::string rid, const std::string& bytes) {
    Cmd c;
    c.routing_id = std::move(rid);
    try {
      c.handle = msgpack::unpack(bytes.data(), bytes.size());
    } catch (const std::exception& e) {
      violations.push_back(std::string("not msgpack: ") + e.what());
      return;
    }
    const msgpack::object& root = c.handle.get();
    if (root.type != msgpack::type::MAP) {
      violations.push_back("command is not a map");
      return;
    }
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const auto& kv = root.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) {
        violations.push_back("non-str key");
        return;
      }
      const std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
      c.top_keys.insert(key);
      if (key == "id") {
        if (kv.val.type != msgpack::type::POSITIVE_INTEGER || kv.val.via.u64 < 1) {
          violations.push_back("id is not a uint >= 1");
        }
        c.id = kv.val.via.u64;
      } else if (key == "method") {
        if (kv.val.type != msgpack::type::STR) violations.push_back("method is not a str");
        c.method.assign(kv.val.via.str.ptr, kv.val.via.str.size);
      } else if (key == "params") {
        if (kv.val.type != msgpack::type::MAP) {
          violations.push_back("params is not a map");
          continue;
        }
        for (uint32_t j = 0; j < kv.val.via.map.size; ++j) {
          const auto& p = kv.val.via.map.ptr[j];
          if (p.key.type != msgpack::type::STR) {
            violations.push_back("non-str param key");
            continue;
          }
          c.params[std::string(p.key.via.str.ptr, p.key.via.str.size)] = &p.val;
        }
      } else {
        violations.push_back("unexpected top-level key " + key);
      }
    }
    if (!c.top_keys.contains("id") || !c.top_keys.contains("method")) {
      violations.push_back("command without id or method");
    }
    received_.push_back(std::move(c));
  }

  zmq::socket_t router_;
  std::string endpoint_;
  std::deque<Cmd> received_;
};

// Everything a test observes, recorded by the handlers.
struct Events {
  std::vector<Publication> pubs;
  std::vector<SubscribeResult> subscribed;
  std::vector<ClientInfo> joins, leaves;
  std::vector<std::pair<uint32_t, std::string>> unsubscribed;
  std::vector<Error> sub_errors;
  std::vector<ConnectResult> connected;
  std::vector<DisconnectInfo> disconnected;
  std::vector<Error> errors;

  std::vector<uint64_t> Offsets() const {
    std::vector<uint64_t> out;
    for (const auto& p : pubs) out.push_back(p.offset);
    return out;
  }
  SubscriptionHandlers Handlers() {
    SubscriptionHandlers h;
    h.on_publication = [this](const Publication& p) { pubs.push_back(p); };
    h.on_subscribed = [this](const SubscribeResult& r) { subscribed.push_back(r); };
    h.on_join = [this](const ClientInfo& i) { joins.push_back(i); };
    h.on_leave = [this](const ClientInfo& i) { leaves.push_back(i); };
    h.on_unsubscribed = [this](uint32_t c, const std::string& r) {
      unsubscribed.push_back({c, r});
    };
    h.on_error = [this](const Error& e) { sub_errors.push_back(e); };
    return h;
  }
  ClientHandlers Session() {
    ClientHandlers h;
    h.on_connected = [this](const ConnectResult& r) { connected.push_back(r); };
    h.on_disconnected = [this](const DisconnectInfo& d) { disconnected.push_back(d); };
    h.on_error = [this](const Error& e) { errors.push_back(e); };
    return h;
  }
};

class ClientFakeServerTest : public ::testing::Test {
 protected:
  ClientOptions Options() {
    ClientOptions o;
    o.endpoints = {node_.endpoint()};
    o.user = "alice";
    o.request_timeout = 2s;
    o.reconnect_min = 10ms;
    o.reconnect_max = 50ms;
    o.seed = 42;
    return o;
  }
  void Make(ClientOptions o) {
    ASSERT_TRUE(Validate(o).ok()) << Validate(o).error();
    client_ = std::make_unique<Client>(ctx_, std::move(o), ev_.Session());
  }
  void Make() { Make(Options()); }

  // Polls the client and the fake(s) until `pred` holds or `timeout` passes.
  bool Until(const std::function<bool()>& pred, milliseconds timeout = 5s) {
    return EventuallyTrue(
        [&] {
          client_->RunOnce(2ms);
          node_.Drain();
          if (node2_) node2_->Drain();
          return pred();
        },
        timeout);
  }
  // Waits for a command with `method` at `node` (the main fake by default).
  Cmd Expect(std::string_view method, FakeNode* node = nullptr, milliseconds timeout = 5s) {
    FakeNode& n = node != nullptr ? *node : node_;
    std::optional<Cmd> c;
    const bool got = Until([&] { return (c = n.Take(method)).has_value(); }, timeout);
    if (!got) throw std::runtime_error("no " + std::string(method) + " command arrived");
    return std::move(*c);
  }
  // Answers the next connect; returns it.
  Cmd Accept(uint32_t ping = 25, uint32_t pong = 10, FakeNode* node = nullptr,
             std::string client = "c-1") {
    Cmd c = Expect("connect", node);
    (node != nullptr ? *node : node_)
        .Reply(c, ReplyFrame(c.id, [&](Pack& p) {
                 p.Map(4).Str("client").Str(client).Str("version").Str("0.1.0").Str("ping");
                 p.Uint(ping).Str("pong").Uint(pong);
               }));
    EXPECT_TRUE(Until([&] { return client_->connected(); }));
    return c;
  }
  // Connects, subscribes `channel` and answers with a recoverable result at (epoch, offset).
  Cmd ConnectAndSubscribe(const std::string& channel, std::string_view epoch = "e1",
                          uint64_t offset = 5, bool recoverable = true) {
    client_->Connect();
    Cmd conn = Accept();
    EXPECT_TRUE(client_->Subscribe(channel, {}, ev_.Handlers()).ok());
    Cmd sub = Expect("subscribe");
    node_.Reply(sub, SubscribeReply(sub.id, recoverable, epoch, offset));
    EXPECT_TRUE(Until([&] { return client_->IsSubscribed(channel); }));
    return conn;
  }
  // Polls for `window` and checks no command with `method` arrived meanwhile.
  bool NoneFor(std::string_view method, milliseconds window) {
    Until([] { return false; }, window);
    return node_.Count(method) == 0;
  }

  void TearDown() override { EXPECT_TRUE(node_.violations.empty()) << node_.violations[0]; }

  zmq::context_t ctx_;
  FakeNode node_{ctx_};
  std::unique_ptr<FakeNode> node2_;
  Events ev_;
  std::unique_ptr<Client> client_;
};

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
                p.Map(5).Str("client").Str("c-77").Str("version").Str("1.2.3").Str("ping").Uint(25);
                p.Str("pong").Uint(10).Str("unknown_key").Arr(0);  // unknown keys are ignored
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
    return ReplyFrame(id,
                      [&](Pack& p) { p.Map(2).Str("offset").Uint(offset).Str("epoch").Str("e"); });
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
                p.Map(2).Str("num_clients").Uint(3).Str("num_users").Uint(2);
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
  node_.Send(conn.routing_id, PushFrame("pub", "news", [](Pack& p) { p.Pub(6, R"("a")", "bob"); }));
  node_.Send(conn.routing_id, PubPush("news", 7, R"("b")"));
  node_.Send(conn.routing_id, PushFrame("pub", "news", [](Pack& p) {
               p.Map(3).Str("offset").Uint(8).Str("data").Str(R"("c")").Str("tags").Map(1);
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
             PushFrame("leave", "room", [](Pack& p) { p.Map(1).Str("info").Info("c-9", "zoe"); }));
  node_.Send(conn.routing_id, PushFrame("join", "other-channel",
                                        [](Pack& p) { p.Map(1).Str("info").Info("c-1", "x"); }));
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
                p.Map(3).Str("publications").Arr(2).Pub(1, "a").Pub(2, "b", "bob");
                p.Str("epoch").Str("e").Str("offset").Uint(2);
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
                p.Map(4).Str("client").Str("c-2").Str("version").Str("v").Str("ping").Uint(25);
                p.Str("pong").Uint(10);
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
               p.Map(2).Str("code").Uint(2000).Str("reason").Str("server unsubscribe");
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
  node_.Send(rid, "");                                       // empty
  node_.Send(rid, "\xc1\xff\x00garbage");                    // not msgpack
  node_.Send(rid, Pack().Arr(1).Uint(1).Take());             // an array
  node_.Send(rid, Pack().Map(1).Str("x").Uint(1).Take());    // neither id nor push
  node_.Send(rid, Pack().Map(1).Str("id").Str("7").Take());  // id of the wrong type
  node_.Send(rid, Pack().Map(2).Str("id").Uint(pub.id).Str("result").Uint(3).Take());
  node_.Send(rid, Pack().Map(3).Uint(1).Uint(2).Str("push").Str("pub").Str("data").Map(0).Take());
  node_.Send(rid, PushFrame("pub", "news", [](Pack& p) { p.Map(1).Str("offset").Str("one"); }));
  node_.Send(rid, PushFrame("join", "news", [](Pack& p) { p.Map(1).Str("info").Uint(5); }));
  node_.Send(rid, DisconnectPush(3000, "", true).substr(0, 10));             // truncated
  node_.Send(rid, Pack().Map(1).Str("push").Str("from-the-future").Take());  // unknown kind
  node_.Send(rid, Pack().Map(5000000).Take());  // a header promising far more than it holds
  node_.SendMultipart(rid, EmptyReply(pub.id), EmptyReply(pub.id));
  node_.Send(rid, PubPush("news", 1, "still fine"));
  ASSERT_TRUE(Until([&] { return ev_.pubs.size() == 1; }));
  EXPECT_EQ(ev_.pubs[0].data, "still fine");
  EXPECT_GE(client_->stats().malformed, 10u);
  EXPECT_TRUE(client_->connected());
  // The request whose reply was malformed is still pending; it times out or gets a real reply.
  node_.Reply(pub, ReplyFrame(pub.id, [](Pack& p) { p.Map(1).Str("offset").Uint(2); }));
  ASSERT_TRUE(Until([&] { return got.has_value(); }));
  EXPECT_TRUE(got->ok());
}

}  // namespace
}  // namespace chorus::client
