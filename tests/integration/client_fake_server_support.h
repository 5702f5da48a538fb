// The fake node of chorus::client's wire-level tests (client_fake_server_test.cc,
// client_fake_server_reconnect_test.cc; docs/protocol/native.md, client side): a plain cppzmq
// ROUTER on tcp://127.0.0.1:0 whose frames are packed by hand (tests/support/msgpack_pack.h) and
// whose received frames are unpacked with msgpack directly and checked against the "Client to
// node: command" table, so the client is checked against the spec's wire format and not against
// its own codec. The fixture runs the client and the fake on the test thread (RunOnce inside
// deadline loops); no sleeps as synchronisation.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "chorus/client/client.h"
#include "msgpack_pack.h"
#include "test_util.h"

namespace chorus::client::fake_node {

using namespace std::chrono_literals;
using chorus::testing::EventuallyTrue;
using chorus::testing::Pack;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Hand-packed frames.

// `{client, user, conn_info, chan_info}`
inline Pack& Info(Pack& p, std::string_view client, std::string_view user) {
  return p.Map(4)
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
inline Pack& Pub(Pack& p, uint64_t offset, std::string_view data, std::string_view user = "") {
  p.Map(user.empty() ? 2 : 3).Str("offset").U(offset).Str("data").Str(data);
  if (!user.empty()) Info(p.Str("info"), "c-" + std::string(user), user);
  return p;
}

// `{id, result: <body>}`; `body` packs exactly one map.
inline std::string ReplyFrame(uint64_t id, const std::function<void(Pack&)>& body) {
  Pack p;
  p.Map(2).Str("id").U(id).Str("result");
  body(p);
  return p.str();
}
inline std::string EmptyReply(uint64_t id) {
  return ReplyFrame(id, [](Pack& p) { p.Map(0); });
}
inline std::string ErrorFrame(uint64_t id, uint64_t code, std::string_view message) {
  Pack p;
  p.Map(2).Str("id").U(id).Str("error").Map(2).Str("code").U(code).Str("message").Str(message);
  return p.str();
}
// `{push, channel, data: <body>}`
inline std::string PushFrame(std::string_view push, std::string_view channel,
                             const std::function<void(Pack&)>& body) {
  Pack p;
  p.Map(3).Str("push").Str(push).Str("channel").Str(channel).Str("data");
  body(p);
  return p.str();
}
inline std::string PubPush(std::string_view channel, uint64_t offset, std::string_view data) {
  return PushFrame("pub", channel, [&](Pack& p) { Pub(p, offset, data); });
}
inline std::string DisconnectPush(uint64_t code, std::string_view reason, bool reconnect) {
  Pack p;
  p.Map(2).Str("push").Str("disconnect").Str("data").Map(3).Str("code").U(code).Str("reason");
  p.Str(reason).Str("reconnect").Bool(reconnect);
  return p.str();
}
// A subscribe result. `pubs` are (offset, data) recovered publications.
inline std::string SubscribeReply(uint64_t id, bool recoverable, std::string_view epoch,
                                  uint64_t offset, bool recovered = false,
                                  bool was_recovering = false,
                                  std::vector<std::pair<uint64_t, std::string>> pubs = {}) {
  return ReplyFrame(id, [&](Pack& p) {
    p.Map(6).Str("recoverable").Bool(recoverable).Str("epoch").Str(epoch).Str("offset").U(offset);
    p.Str("recovered").Bool(recovered).Str("was_recovering").Bool(was_recovering);
    p.Str("publications").Array(static_cast<uint32_t>(pubs.size()));
    for (const auto& [o, d] : pubs) Pub(p, o, d);
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
                 p.U(ping).Str("pong").U(pong);
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

}  // namespace chorus::client::fake_node
