// Wire-level tests of the CHP replica agent: one test per replica MUST of docs/protocol/chp.md
// (R-1 .. R-27, plus the R-28 SHOULD). The server side is a fake written here with plain cppzmq
// sockets (ROUTER + XPUB on tcp://127.0.0.1:0) whose frames are packed by hand with
// msgpack::packer, and whose received frames are unpacked with msgpack directly, so the agent is
// checked against the wire format of the spec and not against our own codec. The agent runs on
// the test thread (RunOnce inside deadline loops); the fakes are polled without blocking in the
// same loop. No sleeps: every wait is a condition with a deadline, and "nothing happens" checks
// use either a bounded observation window or an ordering barrier (see Barrier helpers).
//
// Coverage: every replica MUST (R-1 .. R-27) has a test named after it; R-17 has one per case.
// Parts that cannot be checked from the wire, and why:
// - R-1 "new command connection": when a server restarts behind the same endpoint, libzmq
//   reconnects the DEALER transparently and the agent sees no new connection, so it sends no
//   HELLO there (it relies on R-28 instead). Tested: the first connection and a failover.
// - R-3 "before connecting": libzmq >= 4.3 applies HWM changes to existing pipes, so the order
//   is invisible; that RCVHWM is set at all is tested (see the test's comment).
// - R-4/R-25 "report to the application": the agent has no error callback; the ack handler gets
//   non-zero KVACK statuses and AgentStats::errors counts ERRORs.
// - R-15 "readers SHOULD see the replacement as one step": the agent is single-threaded; the
//   observer gets one OnReset per snapshot, which is checked.
// - R-23 "RFC 4122 version 4 RECOMMENDED": only freshness and 16 bytes are checked.
// - R-28 is a SHOULD; tested anyway since the agent implements it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
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

#include "chp/agent.h"
#include "test_util.h"

namespace chorus::chp {
namespace {

using namespace std::chrono_literals;
using chorus::testing::EventuallyTrue;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Hand-packed frames (spec §6). Integers use the shortest encoding except where U64 is used on
// purpose (W-2: receivers accept any encoding).

class Frame {
 public:
  Frame(uint32_t elements, uint8_t code) {
    pk_.pack_array(elements);
    pk_.pack_fix_uint8(code);
  }
  Frame& U(uint64_t v) {
    pk_.pack(v);
    return *this;
  }
  Frame& U64(uint64_t v) {
    pk_.pack_fix_uint64(v);
    return *this;
  }
  Frame& S(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Frame& B(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Frame& Array(size_t n) {
    pk_.pack_array(static_cast<uint32_t>(n));
    return *this;
  }
  std::string str() const { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_{buf_};
};

constexpr uint8_t kSet = 0, kDel = 1, kExp = 2;
constexpr uint8_t kSnap = 0, kResume = 1;

struct Rec {
  std::string key;
  uint8_t op = kSet;
  std::string value;
  uint64_t ttl = 0;
  uint64_t seq = 0;
};

// A msgpack value (values are msgpack, V-1).
std::string V(std::string_view s) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> p(b);
  p.pack_str(static_cast<uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
  return std::string(b.data(), b.size());
}
Rec SetR(std::string key, std::string_view v, uint64_t seq, uint64_t ttl = 0) {
  return Rec{std::move(key), kSet, V(v), ttl, seq};
}

std::string HelloOkF(uint64_t req, const std::string& id, const std::string& pub,
                     uint32_t ver = 1) {
  return Frame(5, 2).U64(req).U(ver).S(id).S(pub).str();
}
std::string KvSyncF(uint64_t req, const std::string& subtree, const std::vector<Rec>& recs) {
  Frame f(4, 4);
  f.U(req).S(subtree).Array(recs.size());
  for (const Rec& r : recs) f.Array(5).S(r.key).U(r.op).B(r.value).U(r.ttl).U(r.seq);
  return f.str();
}
std::string KthxbaiF(uint64_t req, const std::string& subtree, const std::string& epoch,
                     uint64_t seq, uint64_t count, uint8_t mode) {
  return Frame(7, 5).U(req).S(subtree).S(epoch).U(seq).U(count).U(mode).str();
}
std::string DoneF(uint64_t req, uint64_t n) {
  return Frame(3, 6).U(req).U(n).str();
}
std::string KvAckF(const std::string& uuid, uint32_t status, const std::string& epoch,
                   uint64_t seq) {
  return Frame(5, 8).B(uuid).U(status).S(epoch).U(seq).str();
}
std::string ErrorF(uint64_t req, uint32_t code, const std::string& msg) {
  return Frame(4, 9).U(req).U(code).S(msg).str();
}
std::string KvPubF(const std::string& epoch, uint64_t seq, uint8_t op, const std::string& value,
                   uint64_t ttl = 0) {
  return Frame(6, 10).S(epoch).U64(seq).U(op).B(value).U(ttl).str();
}
std::string PositionF(const std::string& epoch, uint64_t seq) {
  return Frame(3, 11).S(epoch).U(seq).str();
}
std::string HugzF(const std::string& id, uint64_t subtrees) {
  // One trailing element the agent must ignore (W-3).
  return Frame(6, 12).U(1).S(id).U(1718000000000ull).U(subtrees).S("future").str();
}

// ---------------------------------------------------------------------------------------------
// A command received by the fake, unpacked with msgpack directly.

struct Cmd {
  std::string identity;
  std::string body;
  uint64_t code = 0;
  msgpack::object_handle h;

  size_t size() const { return h.get().type == msgpack::type::ARRAY ? h.get().via.array.size : 0; }
  const msgpack::object* El(size_t i) const {
    if (i >= size()) {
      ADD_FAILURE() << "command " << code << " has no element " << i;
      return nullptr;
    }
    return &h.get().via.array.ptr[i];
  }
  uint64_t U(size_t i) const {
    const msgpack::object* o = El(i);
    if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) {
      ADD_FAILURE() << "element " << i << " of command " << code << " is not an unsigned int";
      return ~uint64_t{0};
    }
    return o->via.u64;
  }
  std::string S(size_t i) const {
    const msgpack::object* o = El(i);
    if (o == nullptr || o->type != msgpack::type::STR) {
      ADD_FAILURE() << "element " << i << " of command " << code << " is not a str";
      return "<not a str>";
    }
    return std::string(o->via.str.ptr, o->via.str.size);
  }
  std::string B(size_t i) const {
    const msgpack::object* o = El(i);
    if (o == nullptr || o->type != msgpack::type::BIN) {
      ADD_FAILURE() << "element " << i << " of command " << code << " is not a bin";
      return "<not a bin>";
    }
    return std::string(o->via.bin.ptr, o->via.bin.size);
  }
};

// ---------------------------------------------------------------------------------------------
// The fake server: a ROUTER and an XPUB (verbose, so every subscription is seen), plus a socket
// monitor on the XPUB that counts accepted connections.

class FakeServer {
 public:
  struct Options {
    std::string id = "fake";
    std::string pub_endpoint = "tcp://127.0.0.1:0";
    int pub_sndhwm = 1000;
    bool pub_nodrop = false;
  };

  FakeServer(zmq::context_t& ctx, Options o)
      : id_(o.id),
        router_(ctx, zmq::socket_type::router),
        xpub_(ctx, zmq::socket_type::xpub),
        mon_(ctx, zmq::socket_type::pair) {
    static std::atomic<int> next{0};
    const int n = next++;
    router_.set(zmq::sockopt::linger, 0);
    xpub_.set(zmq::sockopt::linger, 0);
    xpub_.set(zmq::sockopt::xpub_verbose, 1);
    xpub_.set(zmq::sockopt::sndhwm, o.pub_sndhwm);
    if (o.pub_nodrop) xpub_.set(zmq::sockopt::xpub_nodrop, 1);
    router_.bind("tcp://127.0.0.1:0");
    if (o.pub_endpoint.starts_with("inproc://")) o.pub_endpoint += std::to_string(n);
    xpub_.bind(o.pub_endpoint);
    command_endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    publisher_endpoint_ = xpub_.get(zmq::sockopt::last_endpoint);
    const std::string mon = "inproc://fake-monitor-" + std::to_string(n);
    if (zmq_socket_monitor(xpub_.handle(), mon.c_str(), ZMQ_EVENT_ACCEPTED) != 0) {
      ADD_FAILURE() << "zmq_socket_monitor failed";
    }
    mon_.set(zmq::sockopt::linger, 0);
    mon_.connect(mon);
  }
  ~FakeServer() {
    zmq_socket_monitor(xpub_.handle(), nullptr, 0);
    mon_.close();
  }

  const std::string& id() const { return id_; }
  void set_id(std::string id) { id_ = std::move(id); }
  const std::string& command_endpoint() const { return command_endpoint_; }
  const std::string& publisher_endpoint() const { return publisher_endpoint_; }
  // "tcp://127.0.0.1:P" -> "P"
  std::string publisher_port() const {
    return publisher_endpoint_.substr(publisher_endpoint_.rfind(':') + 1);
  }

  // Reads everything available without blocking and sends a due heartbeat.
  void Poll() {
    std::vector<zmq::message_t> frames;
    while (true) {
      frames.clear();
      if (!zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        break;
      }
      // W-5: the replica sends each command as exactly one frame; ROUTER adds the identity.
      EXPECT_EQ(frames.size(), 2u) << "a command of more than one frame (W-5)";
      Cmd c;
      c.identity = frames.front().to_string();
      c.body = frames.back().to_string();
      try {
        c.h = msgpack::unpack(c.body.data(), c.body.size());
        const msgpack::object& o = c.h.get();
        if (o.type == msgpack::type::ARRAY && o.via.array.size > 0 &&
            o.via.array.ptr[0].type == msgpack::type::POSITIVE_INTEGER) {
          c.code = o.via.array.ptr[0].via.u64;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "the agent sent a body that is not msgpack: " << e.what();
      }
      EXPECT_NE(c.code, 0u) << "the agent sent a body without a command code (W-1)";
      codes.push_back(c.code);
      events.push_back("cmd:" + std::to_string(c.code));
      inbox.push_back(std::move(c));
    }
    zmq::message_t m;
    while (xpub_.recv(m, zmq::recv_flags::dontwait)) {
      const std::string s = m.to_string();
      if (s.empty()) continue;
      const std::string topic = s.substr(1);
      if (s[0] == 1) {
        subs.push_back(topic);
        events.push_back("sub:" + topic);
      } else {
        events.push_back("unsub:" + topic);
      }
    }
    while (true) {
      frames.clear();
      if (!zmq::recv_multipart(mon_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        break;
      }
      uint16_t event = 0;
      if (!frames.empty() && frames[0].size() >= 2) std::memcpy(&event, frames[0].data(), 2);
      if (event == ZMQ_EVENT_ACCEPTED) ++pub_accepted;
    }
    if (heartbeat_ && std::chrono::steady_clock::now() >= next_hugz_) {
      Publish("$HUGZ", HugzF(id_, 1));
      next_hugz_ = std::chrono::steady_clock::now() + heartbeat_every_;
    }
  }

  void Send(const std::string& identity, const std::string& body) {
    router_.send(zmq::buffer(identity), zmq::send_flags::sndmore);
    router_.send(zmq::buffer(body), zmq::send_flags::none);
  }
  bool Publish(const std::string& topic, const std::string& body) {
    if (!xpub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    xpub_.send(zmq::buffer(body), zmq::send_flags::dontwait);
    return true;
  }
  // Waits up to `d` for a command (a real socket wait, used to pace retries).
  void WaitCommand(milliseconds d) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, d);
  }

  void StartHeartbeats(milliseconds every = 100ms) {
    heartbeat_ = true;
    heartbeat_every_ = every;
    next_hugz_ = std::chrono::steady_clock::now();
  }
  void StopHeartbeats() { heartbeat_ = false; }

  bool HasSub(const std::string& topic) const {
    for (const auto& s : subs) {
      if (s == topic) return true;
    }
    return false;
  }
  size_t Count(uint64_t code) const {
    size_t n = 0;
    for (uint64_t c : codes) n += c == code ? 1 : 0;
    return n;
  }
  size_t EventIndex(const std::string& e) const {
    for (size_t i = 0; i < events.size(); ++i) {
      if (events[i] == e) return i;
    }
    return events.size();
  }

  std::deque<Cmd> inbox;            // received, not yet taken by the test
  std::vector<uint64_t> codes;      // every command code received, in order
  std::vector<std::string> events;  // "cmd:<code>", "sub:<topic>", "unsub:<topic>" in order
  std::vector<std::string> subs;    // subscribed topics, in order (repeats included)
  int pub_accepted = 0;             // publisher connections accepted

 private:
  std::string id_;
  zmq::socket_t router_;
  zmq::socket_t xpub_;
  zmq::socket_t mon_;
  std::string command_endpoint_;
  std::string publisher_endpoint_;
  bool heartbeat_ = false;
  milliseconds heartbeat_every_{100};
  std::chrono::steady_clock::time_point next_hugz_{};
};

// Records what the agent applies.
struct Recorder : ReplicaObserver {
  struct Change {
    std::string subtree, epoch;
    Record record;
  };
  std::vector<std::pair<std::string, Position>> resets;
  std::vector<Change> changes;
  void OnReset(std::string_view subtree, const Position& p, const EntryMap&) override {
    resets.emplace_back(std::string(subtree), p);
  }
  void OnChange(std::string_view subtree, std::string_view epoch, const Record& r) override {
    changes.push_back({std::string(subtree), std::string(epoch), r});
  }
};

// ---------------------------------------------------------------------------------------------
// Fixture

class ChpReplicaWire : public ::testing::Test {
 protected:
  FakeServer& AddFake(FakeServer::Options o = {}) {
    if (o.id == "fake") o.id = "fake-" + std::to_string(fakes_.size());
    fakes_.push_back(std::make_unique<FakeServer>(ctx_, o));
    return *fakes_.back();
  }
  AgentOptions Opts(std::initializer_list<FakeServer*> fakes) {
    AgentOptions o;
    for (FakeServer* f : fakes) o.endpoints.push_back(f->command_endpoint());
    return o;
  }

  void Pump(ReplicaAgent& a) {
    a.RunOnce(5ms);
    for (auto& f : fakes_) f->Poll();
  }
  bool Until(ReplicaAgent& a, const std::function<bool()>& pred, milliseconds timeout = 5s) {
    return EventuallyTrue(
        [&] {
          Pump(a);
          return pred();
        },
        timeout);
  }
  // Runs agent and fakes for a fixed window (for "nothing happens" checks).
  void PumpFor(ReplicaAgent& a, milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) Pump(a);
  }

  // Waits for the first untaken command with `code` (and matching `pred`) and removes it.
  Cmd Take(ReplicaAgent& a, FakeServer& f, uint64_t code,
           const std::function<bool(const Cmd&)>& pred = nullptr, milliseconds timeout = 5s) {
    std::optional<Cmd> got;
    auto find = [&] {
      for (auto it = f.inbox.begin(); it != f.inbox.end(); ++it) {
        if (it->code == code && (!pred || pred(*it))) {
          got = std::move(*it);
          f.inbox.erase(it);
          return true;
        }
      }
      return false;
    };
    if (!find()) Until(a, find, timeout);
    if (!got) {
      ADD_FAILURE() << "no command " << code << " arrived at " << f.id();
      return Cmd{};
    }
    return std::move(*got);
  }
  Cmd TakeIcanhaz(ReplicaAgent& a, FakeServer& f, const std::string& subtree,
                  milliseconds timeout = 5s) {
    return Take(
        a, f, 3, [&](const Cmd& c) { return c.S(2) == subtree; }, timeout);
  }

  // HELLO -> HELLO_OK, then waits for the given subscriptions and starts heartbeats.
  std::string Handshake(ReplicaAgent& a, FakeServer& f, const std::vector<std::string>& topics,
                        bool heartbeats = true) {
    Cmd hello = Take(a, f, 1);
    EXPECT_EQ(hello.U(1), 1u) << "HELLO carries protocol version 1";
    f.Send(hello.identity, HelloOkF(hello.U(2), f.id(), f.publisher_endpoint()));
    EXPECT_TRUE(Until(a,
                      [&] {
                        for (const auto& t : topics) {
                          if (!f.HasSub(t)) return false;
                        }
                        return true;
                      }))
        << "subscriptions missing at " << f.id();
    if (heartbeats) f.StartHeartbeats();
    return hello.identity;
  }
  // Answers the ICANHAZ `req` with a snapshot of `recs` at `pos` and waits until S is live.
  void ServeSnapshot(ReplicaAgent& a, FakeServer& f, const Cmd& req, const Position& pos,
                     const std::vector<Rec>& recs) {
    const std::string subtree = req.S(2);
    if (!recs.empty()) f.Send(req.identity, KvSyncF(req.U(1), subtree, recs));
    f.Send(req.identity, KthxbaiF(req.U(1), subtree, pos.epoch, pos.seq, recs.size(), kSnap));
    EXPECT_TRUE(Until(a, [&] { return a.Find(subtree) && a.Find(subtree)->live(); }))
        << subtree << " did not go live";
  }
  // A fake, an agent following `subtree`, live at `pos` with `recs`. Returns the identity.
  std::string StartLive(ReplicaAgent& a, FakeServer& f, const std::string& subtree,
                        const Position& pos, const std::vector<Rec>& recs) {
    EXPECT_TRUE(a.Follow(subtree).ok());
    const std::string id = Handshake(a, f, {"$HUGZ", subtree + "/"});
    f.Publish(subtree + "/", PositionF(pos.epoch, pos.seq));  // welcome (S-13)
    Cmd req = TakeIcanhaz(a, f, subtree);
    ServeSnapshot(a, f, req, pos, recs);
    return id;
  }

  // Ordering barriers. A malformed frame is counted by the agent and has no other effect, and
  // frames on one connection arrive in order: once it is counted, everything sent before it on
  // the same socket has been handled.
  void ReplyBarrier(ReplicaAgent& a, FakeServer& f, const std::string& identity) {
    const uint64_t before = a.stats().malformed;
    f.Send(identity, std::string("\xc1", 1));  // 0xc1: never used in msgpack
    ASSERT_TRUE(Until(a, [&] { return a.stats().malformed > before; })) << "reply barrier";
  }
  void PubBarrier(ReplicaAgent& a, FakeServer& f) {
    const uint64_t before = a.stats().malformed;
    f.Publish("$HUGZ", std::string("\xc1", 1));
    ASSERT_TRUE(Until(a, [&] { return a.stats().malformed > before; })) << "publisher barrier";
  }
  // The agent's commands reach the fake in order: once a KVSET sent now arrives, every command
  // the agent sent before it has arrived too. Acknowledged so it is not retried.
  void CommandBarrier(ReplicaAgent& a, FakeServer& f) {
    auto uuid = a.Set("barrier/k", V("b"));
    ASSERT_TRUE(uuid.ok());
    const std::string u(reinterpret_cast<const char*>(uuid->data()), uuid->size());
    Cmd c = Take(a, f, 7, [&](const Cmd& c) { return c.B(1) == u; });
    f.Send(c.identity, KvAckF(u, 0, "", 0));
    ASSERT_TRUE(Until(a, [&] { return a.unacked() == 0; }));
  }

  static std::map<std::string, std::string> Entries(const ReplicaAgent& a,
                                                    const std::string& subtree) {
    std::map<std::string, std::string> out;
    if (const SubtreeReplica* r = a.Find(subtree)) {
      for (const auto& [k, e] : r->entries()) out[k] = e.value;
    }
    return out;
  }
  static Position Pos(const ReplicaAgent& a, const std::string& subtree) {
    const SubtreeReplica* r = a.Find(subtree);
    return r ? r->position() : Position{"<not followed>", 0};
  }

  zmq::context_t ctx_;
  std::vector<std::unique_ptr<FakeServer>> fakes_;
};

using Map = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------------------------
// §3 Architecture

TEST_F(ChpReplicaWire, R1_FirstCommandIsHelloAndSubConnectsOnlyAfterHelloOk) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.connect_timeout = 10s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());  // a pending update must not go before HELLO

  Cmd hello = Take(a, f, 1);
  ASSERT_FALSE(f.codes.empty());
  EXPECT_EQ(f.codes.front(), 1u) << "first command on the connection";
  EXPECT_EQ(hello.size(), 3u);
  EXPECT_EQ(hello.U(1), 1u);
  PumpFor(a, 300ms);
  EXPECT_EQ(f.pub_accepted, 0) << "SUB connected before HELLO_OK";
  EXPECT_TRUE(f.subs.empty());

  f.Send(hello.identity, HelloOkF(hello.U(2), f.id(), f.publisher_endpoint()));
  EXPECT_TRUE(Until(a, [&] { return f.pub_accepted == 1 && f.HasSub("$HUGZ"); }));
  Cmd set = Take(a, f, 7);  // the update follows HELLO_OK
  EXPECT_EQ(set.S(2), "s/k");
  // The first command after a failover is covered by R27_... (HELLO first at the new server).
}

TEST_F(ChpReplicaWire, R2_ConnectsSubToCommandHostAndPublisherPort) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Cmd hello = Take(a, f, 1);
  // The server claims a host the replica cannot reach (TEST-NET-1); only the port is usable.
  f.Send(hello.identity, HelloOkF(hello.U(2), f.id(), "tcp://192.0.2.1:" + f.publisher_port()));
  EXPECT_TRUE(Until(a, [&] { return f.pub_accepted == 1 && f.HasSub("$HUGZ") && f.HasSub("s/"); }))
      << "the agent did not connect to 127.0.0.1:<publisher port>";
}

TEST_F(ChpReplicaWire, R2_UsesNonTcpPublisherEndpointAsGiven) {
  FakeServer& f = AddFake({.pub_endpoint = "inproc://fake-pub-"});
  ASSERT_TRUE(f.publisher_endpoint().starts_with("inproc://"));
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "s");
  ServeSnapshot(a, f, req, {"", 0}, {});
  f.Publish("s/k", KvPubF("E", 1, kSet, V("v")));
  EXPECT_TRUE(Until(a, [&] { return Entries(a, "s") == Map{{"k", V("v")}}; }));
}

TEST_F(ChpReplicaWire, R3_SetsRcvHwmOnSubBeforeConnecting) {
  // The publisher never drops (XPUB_NODROP, SNDHWM 1): a send succeeds only when the message
  // fits in the pipes and kernel buffers towards the replica. With the agent not reading, what
  // the publisher can push is bounded by the SUB's RCVHWM (20 here) plus kernel buffers (about
  // 90 messages of 64 KiB on loopback); without the option libzmq's default (1000) applies.
  // Not testable from the wire: *when* the option is set. libzmq >= 4.3 applies HWM changes to
  // existing pipes too, so setting it after connect cannot be told apart here.
  FakeServer& f = AddFake({.pub_sndhwm = 1, .pub_nodrop = true});
  AgentOptions o = Opts({&f});
  o.rcv_hwm = 20;
  o.silence_timeout = 30s;
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"}, /*heartbeats=*/false);

  const std::string big = KvPubF("E", 1, kSet, std::string(64 * 1024, 'x'));
  int accepted = 0;
  auto last = std::chrono::steady_clock::now();
  while (accepted < 1500 && std::chrono::steady_clock::now() - last < 500ms) {
    if (f.Publish("s/k", big)) {
      ++accepted;
      last = std::chrono::steady_clock::now();
    } else {
      f.WaitCommand(1ms);  // pace the retries on a real socket wait
    }
  }
  RecordProperty("accepted", accepted);
  EXPECT_LT(accepted, 600) << "the SUB's RCVHWM did not bound the pipe";
  // Nothing was dropped: once the agent reads, every accepted update arrives.
  EXPECT_TRUE(Until(
      a, [&] { return a.stats().updates == static_cast<uint64_t>(accepted); }, 20s))
      << a.stats().updates << " of " << accepted;
}

TEST_F(ChpReplicaWire, R4_BadVersionStopsCommandsToThatServerAndFailsOver) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.connect_timeout = 500ms;
  o.request_timeout = 100ms;  // an unacknowledged KVSET would be retried well before failover
  ReplicaAgent a(ctx_, o);
  auto uuid = a.Set("s/k", V("v"));
  ASSERT_TRUE(uuid.ok());

  Cmd hello = Take(a, fa, 1);
  fa.Send(hello.identity, ErrorF(hello.U(2), 11, "unsupported protocol version"));
  Cmd hello_b = Take(a, fb, 1);
  fb.Send(hello_b.identity, HelloOkF(hello_b.U(2), fb.id(), fb.publisher_endpoint()));
  Cmd set = Take(a, fb, 7);
  EXPECT_EQ(set.S(2), "s/k");
  fb.StartHeartbeats();
  PumpFor(a, 300ms);
  EXPECT_EQ(fa.codes, std::vector<uint64_t>{1}) << "commands sent after ERROR kBadVersion";
  EXPECT_GE(a.stats().errors, 1u) << "the error is reported (counted)";
}

TEST_F(ChpReplicaWire, R4_BadVersionFromOnlyEndpointStopsCommands) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.connect_timeout = 200ms;
  o.request_timeout = 100ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd hello = Take(a, f, 1);
  f.Send(hello.identity, ErrorF(hello.U(2), 11, "unsupported protocol version"));
  PumpFor(a, 1000ms);  // five connect timeouts
  EXPECT_EQ(f.codes, std::vector<uint64_t>{1}) << "the agent came back to a server that refused it";
  EXPECT_FALSE(a.connected());
  EXPECT_GE(a.stats().errors, 1u);
}

TEST_F(ChpReplicaWire, R5_SubscribesHugzOnEveryPublisherConnection) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 400ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, fa, {"$HUGZ", "s/"});
  fa.StopHeartbeats();  // silence: the agent moves to B
  Handshake(a, fb, {"$HUGZ", "s/"});
  EXPECT_TRUE(fb.HasSub("$HUGZ"));

  // Following all: "" covers $HUGZ.
  FakeServer& fc = AddFake();
  ReplicaAgent all(ctx_, Opts({&fc}));
  all.FollowAll();
  Handshake(all, fc, {""});
  EXPECT_TRUE(fc.HasSub("") || fc.HasSub("$HUGZ"));
}

// ---------------------------------------------------------------------------------------------
// §8 Syncing

TEST_F(ChpReplicaWire, R6_SubscribesBeforeIcanhazAndWaitsForWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 0u) << "ICANHAZ before the subscription was confirmed";
  f.Publish("s/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "s");
  EXPECT_LT(f.EventIndex("sub:s/"), f.EventIndex("cmd:3"));
}

TEST_F(ChpReplicaWire, R6_SyncsAfterSubscribeTimeoutWithoutWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  const auto t0 = std::chrono::steady_clock::now();
  Cmd req = TakeIcanhaz(a, f, "s");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms) << "did not wait for the welcome";
  EXPECT_LT(f.EventIndex("sub:s/"), f.EventIndex("cmd:3"));
}

TEST_F(ChpReplicaWire, R6_FollowWhileConnectedWaitsForWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Follow("t").ok());
  ASSERT_TRUE(Until(a, [&] { return f.HasSub("t/"); }));
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 1u) << "ICANHAZ for t before its subscription was confirmed";
  f.Publish("t/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "t");
  EXPECT_LT(f.EventIndex("sub:t/"), f.events.size());
}

TEST_F(ChpReplicaWire, R6_FollowWhileConnectedSyncsAfterSubscribeTimeout) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Follow("t").ok());
  const auto t0 = std::chrono::steady_clock::now();
  // No welcome POSITION for t (e.g. lost): the agent must still sync after the timeout.
  Cmd req = TakeIcanhaz(a, f, "t");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  ServeSnapshot(a, f, req, {"", 0}, {});
}

TEST_F(ChpReplicaWire, R7_FullSnapshotWhenUnbornRejectedOrNewEpochElseResume) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "") << "empty epoch: full snapshot";
  EXPECT_EQ(r1.U(4), 0u);
  ServeSnapshot(a, f, r1, {"E", 3}, {SetR("a", "1", 3)});

  // A gap: resume from the position.
  f.Publish("s/b", KvPubF("E", 5, kSet, V("5")));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "E");
  EXPECT_EQ(r2.U(4), 3u);
  f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("b", "4", 4), SetR("b", "5", 5)}));
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 5, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live() && Pos(a, "s") == Position{"E", 5}; }));

  // An epoch change: full snapshot.
  f.Publish("s/c", KvPubF("F", 1, kSet, V("x")));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  EXPECT_EQ(r3.U(4), 0u);
  ServeSnapshot(a, f, r3, {"F", 2}, {SetR("c", "y", 2)});

  // A rejected reply: full snapshot, although the position is known.
  f.Publish("s/c", KvPubF("F", 4, kSet, V("z")));
  Cmd r4 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r4.S(3), "F");
  EXPECT_EQ(r4.U(4), 2u);
  f.Send(r4.identity, KthxbaiF(r4.U(1), "s", "F", 4, 2, kResume));  // count 2, none sent
  Cmd r5 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r5.S(3), "");
  EXPECT_EQ(r5.U(4), 0u);
}

TEST_F(ChpReplicaWire, R8_IgnoresRepliesForOtherRequestIdsAndUnknownUuids) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Follow("t").ok());
  const std::string id = Handshake(a, f, {"$HUGZ", "s/", "t/"});
  f.Publish("s/", PositionF("", 0));
  f.Publish("t/", PositionF("", 0));
  Cmd rs = TakeIcanhaz(a, f, "s");
  Cmd rt = TakeIcanhaz(a, f, "t");
  EXPECT_NE(rs.U(1), rt.U(1)) << "request ids of outstanding requests must differ";
  const uint64_t other = std::max(rs.U(1), rt.U(1)) + 100;

  bool acked = false;
  auto uuid = a.Set("s/k", V("v"), 0, [&](const KvAck&) { acked = true; });
  ASSERT_TRUE(uuid.ok());
  Take(a, f, 7);

  f.Send(id, KvSyncF(other, "s", {SetR("x", "bad", 9)}));
  f.Send(id, KthxbaiF(other, "s", "E", 9, 1, kSnap));
  f.Send(id, ErrorF(other, 2, "not yours"));
  f.Send(id, KvAckF(std::string(16, '\x7f'), 0, "E", 9));
  f.Send(id, DoneF(other, 0));
  ReplyBarrier(a, f, id);
  ASSERT_NE(a.Find("s"), nullptr);
  ASSERT_NE(a.Find("t"), nullptr);
  EXPECT_FALSE(a.Find("s")->live());
  EXPECT_TRUE(a.Find("s")->entries().empty());
  EXPECT_FALSE(acked);
  EXPECT_EQ(a.unacked(), 1u);

  // A reply with s's request id that names another subtree is not s's reply either; it must
  // not end (or otherwise disturb) s's request.
  f.Send(id, KvSyncF(rs.U(1), "t", {SetR("x", "bad", 9)}));
  f.Send(id, KthxbaiF(rs.U(1), "t", "E", 9, 1, kSnap));
  ReplyBarrier(a, f, id);
  EXPECT_FALSE(a.Find("t")->live());
  EXPECT_TRUE(a.Find("t")->entries().empty());

  // The replies to the real ids are applied.
  ServeSnapshot(a, f, rs, {"E", 2}, {SetR("a", "1", 2)});
  ServeSnapshot(a, f, rt, {"", 0}, {});
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
}

TEST_F(ChpReplicaWire, R9_AtMost64IcanhazOutstanding) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 100ms;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  std::vector<std::string> topics{"$HUGZ"};
  for (int i = 0; i < 100; ++i) {
    char name[8];
    std::snprintf(name, sizeof name, "t%03d", i);
    ASSERT_TRUE(a.Follow(name).ok());
    topics.push_back(std::string(name) + "/");
  }
  Handshake(a, f, topics);
  ASSERT_TRUE(Until(a, [&] { return f.Count(3) >= 64; }));
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 64u);

  // Answer one at a time: each answer frees exactly one slot.
  size_t answered = 0;
  std::set<std::string> synced;
  while (answered < 100) {
    Cmd req = Take(a, f, 3);
    if (req.code != 3) break;
    synced.insert(req.S(2));
    f.Send(req.identity, KthxbaiF(req.U(1), req.S(2), "", 0, 0, kSnap));
    ++answered;
    ASSERT_TRUE(Until(a, [&] { return a.Find(req.S(2))->live(); }));
    EXPECT_LE(f.Count(3) - answered, 64u) << "more than 64 outstanding";
  }
  EXPECT_EQ(synced.size(), 100u);
  EXPECT_EQ(f.Count(3), 100u);
  EXPECT_TRUE(a.AllLive());
}

TEST_F(ChpReplicaWire, R10_RequestTimeoutResendsWithNewIdAndKeepsLocalCopy) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 3}, {SetR("a", "1", 1), SetR("b", "2", 3)});

  f.Publish("s/c", KvPubF("E", 5, kSet, V("5")));  // gap
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "E");
  const auto t0 = std::chrono::steady_clock::now();
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_NE(r2.U(1), r1.U(1)) << "SHOULD use a new request id";
  EXPECT_EQ(r2.S(3), "E");
  EXPECT_EQ(r2.U(4), 3u) << "the position is kept";
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "local copy discarded";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 3}));

  // A late reply to the abandoned request is ignored.
  f.Send(r1.identity, KthxbaiF(r1.U(1), "s", "E", 3, 0, kResume));
  ReplyBarrier(a, f, r1.identity);
  EXPECT_FALSE(a.Find("s")->live());

  // Progress (a KVSYNC frame) restarts the timer: a reply trickling in over more than one
  // timeout is not abandoned.
  for (int i = 4; i <= 5; ++i) {
    f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("c", std::to_string(i), i)}));
    PumpFor(a, 200ms);
  }
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 5, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(f.Count(3), 3u) << "re-sent although the reply was making progress";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
}

TEST_F(ChpReplicaWire, R11_QueuesUpdatesWhileSyncingAndResyncsOnOverflow) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.max_queue = 5;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));
  Cmd r1 = TakeIcanhaz(a, f, "s");

  // Within the bound: queued and applied after the snapshot.
  for (uint64_t seq = 4; seq <= 6; ++seq) f.Publish("s/q", KvPubF("E", seq, kSet, V("q")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 3; }));
  ServeSnapshot(a, f, r1, {"E", 3}, {SetR("a", "1", 3)});
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 6}));
  EXPECT_EQ(a.Find("s")->stats().overflows, 0u);

  // Over the bound: the queue is discarded, the current sync finishes, then S syncs again.
  f.Publish("s/z", KvPubF("E", 8, kSet, V("8")));  // gap -> resync from 6
  Cmd r2 = TakeIcanhaz(a, f, "s");
  for (uint64_t seq = 9; seq <= 18; ++seq) f.Publish("s/z", KvPubF("E", seq, kSet, V("z")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 14; }));
  f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("z", "7", 7), SetR("z", "8", 8)}));
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 8, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->stats().resumes == 1; }));
  EXPECT_EQ(a.Find("s")->stats().overflows, 1u);
  EXPECT_EQ(Entries(a, "s")["z"], V("8")) << "the current sync was applied";
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "E");
  EXPECT_EQ(r3.U(4), 8u);
  std::vector<Rec> rest;
  for (uint64_t seq = 9; seq <= 18; ++seq) rest.push_back(SetR("z", "z", seq));
  f.Send(r3.identity, KvSyncF(r3.U(1), "s", rest));
  f.Send(r3.identity, KthxbaiF(r3.U(1), "s", "E", 18, rest.size(), kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live() && Pos(a, "s").seq == 18; }));
}

TEST_F(ChpReplicaWire, R12_StagesSyncRecordsUntilKthxbai) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  f.Publish("s/x", KvPubF("F", 1, kSet, V("x")));  // new epoch -> full snapshot
  Cmd req = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(req.U(1), "s", {SetR("c", "3", 7)}));
  f.Send(id, KvSyncF(req.U(1), "s", {SetR("d", "4", 9)}));
  ReplyBarrier(a, f, id);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "applied before KTHXBAI";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  f.Send(id, KthxbaiF(req.U(1), "s", "F", 9, 2, kSnap));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"c", V("3")}, {"d", V("4")}}));
}

TEST_F(ChpReplicaWire, R13_RejectsSyncWithWrongCount) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  const Map before{{"a", V("1")}, {"b", V("2")}};

  // Resume mode, one record short.
  f.Publish("s/c", KvPubF("E", 4, kSet, V("4")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r1.U(1), "s", {SetR("c", "3", 3)}));
  f.Send(id, KthxbaiF(r1.U(1), "s", "E", 4, 2, kResume));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "") << "a rejected reply leads to a full snapshot";
  EXPECT_EQ(r2.U(4), 0u);
  EXPECT_EQ(Entries(a, "s"), before);
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  EXPECT_EQ(a.Find("s")->stats().rejected, 1u);

  // Snapshot mode, one record too many.
  f.Send(id, KvSyncF(r2.U(1), "s", {SetR("x", "1", 1), SetR("y", "2", 2), SetR("z", "3", 3)}));
  f.Send(id, KthxbaiF(r2.U(1), "s", "E", 4, 2, kSnap));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  EXPECT_EQ(Entries(a, "s"), before);
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  EXPECT_EQ(a.Find("s")->stats().rejected, 2u);
  ServeSnapshot(a, f, r3, {"E", 4}, {SetR("x", "1", 1), SetR("c", "4", 4)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"x", V("1")}, {"c", V("4")}}));
}

TEST_F(ChpReplicaWire, R14_RejectsResumeWithOtherEpochOrNonConsecutiveSeqs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  const Map before{{"a", V("1")}, {"b", V("2")}};
  struct Case {
    const char* what;
    std::vector<Rec> recs;
    std::string epoch;
    uint64_t seq;
  };
  const std::vector<Case> cases{
      {"out of order", {SetR("c", "4", 4), SetR("c", "3", 3)}, "E", 4},
      {"other epoch", {SetR("c", "3", 3), SetR("c", "4", 4)}, "F", 4},
      {"does not start at seq+1", {SetR("c", "4", 4), SetR("c", "5", 5)}, "E", 5},
      {"does not end at the KTHXBAI seq", {SetR("c", "3", 3), SetR("c", "4", 4)}, "E", 5},
      {"duplicate seq", {SetR("c", "3", 3), SetR("c", "3", 3)}, "E", 3},
  };
  uint64_t rejected = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    // Lose an update so the agent resumes from (E, 2); a rejection makes it ask for a snapshot,
    // which we answer with the old state so every case starts from (E, 2).
    f.Publish("s/c", KvPubF("E", 9, kSet, V("9")));
    Cmd r = TakeIcanhaz(a, f, "s");
    ASSERT_EQ(r.S(3), "E");
    ASSERT_EQ(r.U(4), 2u);
    f.Send(id, KvSyncF(r.U(1), "s", c.recs));
    f.Send(id, KthxbaiF(r.U(1), "s", c.epoch, c.seq, c.recs.size(), kResume));
    Cmd full = TakeIcanhaz(a, f, "s");
    EXPECT_EQ(full.S(3), "") << "rejection leads to a full snapshot";
    EXPECT_EQ(a.Find("s")->stats().rejected, ++rejected);
    EXPECT_EQ(Entries(a, "s"), before);
    EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
    ServeSnapshot(a, f, full, {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  }
  // A correct resume is accepted.
  f.Publish("s/c", KvPubF("E", 4, kSet, V("4")));
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r.U(1), "s", {SetR("c", "3", 3), SetR("c", "4", 4)}));
  f.Send(id, KthxbaiF(r.U(1), "s", "E", 4, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 4}));
  EXPECT_EQ(a.Find("s")->stats().resumes, 1u);
}

TEST_F(ChpReplicaWire, R15_SnapshotReplacesContentAndResumeAppliesChangesInOrder) {
  FakeServer& f = AddFake();
  Recorder rec;
  ReplicaAgent a(ctx_, Opts({&f}), &rec);
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  f.Publish("s/x", KvPubF("F", 1, kSet, V("x")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  ServeSnapshot(a, f, r1, {"F", 7}, {SetR("c", "3", 7), SetR("d", "4", 5)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"c", V("3")}, {"d", V("4")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"F", 7}));
  ASSERT_EQ(rec.resets.size(), 2u);
  EXPECT_EQ(rec.resets.back().second, (Position{"F", 7}));
  EXPECT_EQ(a.Find("s")->entries().at("d").seq, 5u);

  rec.changes.clear();
  f.Publish("s/x", KvPubF("F", 11, kSet, V("x")));  // gap
  Cmd r2 = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r2.U(1), "s",
                     {SetR("e", "5", 8), Rec{"c", kDel, "", 0, 9}, SetR("e", "6", 10),
                      Rec{"d", kExp, "", 0, 11}}));
  f.Send(id, KthxbaiF(r2.U(1), "s", "F", 11, 4, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"e", V("6")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"F", 11}));
  std::vector<uint64_t> seqs;
  for (const auto& c : rec.changes) seqs.push_back(c.record.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{8, 9, 10, 11}));
}

TEST_F(ChpReplicaWire, R16_ReplaysQueuedUpdatesDroppingStaleOnes) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 1));
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Publish("s/a", KvPubF("E", 2, kSet, V("old")));
  f.Publish("s/b", KvPubF("E", 3, kSet, V("b")));
  f.Publish("s/a", KvPubF("E", 4, kDel, ""));
  f.Publish("s/c", KvPubF("E", 5, kSet, V("c")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 4; }));
  EXPECT_FALSE(a.Find("s")->live());
  // The snapshot was taken at seq 3: 2 and 3 are already in it.
  ServeSnapshot(a, f, r, {"E", 3}, {SetR("a", "new", 2), SetR("b", "b", 3), SetR("z", "z", 1)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"b", V("b")}, {"c", V("c")}, {"z", V("z")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
  EXPECT_EQ(a.Find("s")->stats().stale, 2u);
  EXPECT_EQ(a.Find("s")->stats().applied, 2u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u) << "replay must not cause another sync";
}

// ---------------------------------------------------------------------------------------------
// §8 Live (R-17 cases 1 to 5, one test each)

TEST_F(ChpReplicaWire, R17_1_UnbornAppliesSeqOneOfAnyEpoch) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"", 0}, {});
  f.Publish("s/k", KvPubF("N", 1, kSet, V("v")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"N", 1}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"k", V("v")}}));
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, R17_1_UnbornGapResyncs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"", 0}, {});
  f.Publish("s/k", KvPubF("N", 2, kSet, V("v")));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);
  EXPECT_TRUE(Entries(a, "s").empty());
  EXPECT_EQ(a.Find("s")->stats().gaps, 1u);
}

TEST_F(ChpReplicaWire, R17_2_EpochChangeResyncsFull) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/k", KvPubF("F", 6, kSet, V("v")));  // seq 6 would fit, but the epoch differs
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(a.Find("s")->stats().epoch_changes, 1u);
}

TEST_F(ChpReplicaWire, R17_3_DuplicateDropped) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/a", KvPubF("E", 5, kSet, V("dup")));
  f.Publish("s/a", KvPubF("E", 2, kDel, ""));
  PubBarrier(a, f);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
  EXPECT_EQ(a.Find("s")->stats().stale, 2u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, R17_4_NextSeqApplied) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/b", KvPubF("E", 6, kSet, V("2")));
  f.Publish("s/a", KvPubF("E", 7, kSet, V("3")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"E", 7}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("3")}, {"b", V("2")}}));
  EXPECT_EQ(a.Find("s")->entries().at("a").seq, 7u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, R17_5_GapResumesFromPosition) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/b", KvPubF("E", 7, kSet, V("2")));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "E");
  EXPECT_EQ(r.U(4), 5u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(a.Find("s")->stats().gaps, 1u);
}

TEST_F(ChpReplicaWire, R18_SetStoresDeleteAndExpireRemove) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  f.Publish("s/b", KvPubF("E", 2, kSet, V("2")));
  f.Publish("s/b/c", KvPubF("E", 3, kSet, V("3")));  // key "b/c" (K-2)
  f.Publish("s/a", KvPubF("E", 4, kDel, ""));
  f.Publish("s/b", KvPubF("E", 5, kExp, ""));
  f.Publish("s/nope", KvPubF("E", 6, kDel, ""));  // a missing key is not an error
  f.Publish("s/nope", KvPubF("E", 7, kExp, ""));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"E", 7}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"b/c", V("3")}}));
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, R19_PositionIgnoredWhileSyncing) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));  // marks the subscription active
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Publish("s/", PositionF("F", 99));
  f.Publish("s/", PositionF("E", 50));
  PubBarrier(a, f);
  ServeSnapshot(a, f, r, {"E", 3}, {SetR("a", "1", 3)});
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
  EXPECT_TRUE(a.Find("s")->live());
}

TEST_F(ChpReplicaWire, R19_LivePositionNotAheadIgnored) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("u").ok());
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("u/", PositionF("", 0));
  Cmd ru = TakeIcanhaz(a, f, "u");
  ServeSnapshot(a, f, ru, {"", 0}, {});
  f.Publish("s/", PositionF("E", 5));
  f.Publish("s/", PositionF("E", 4));
  f.Publish("u/", PositionF("", 0));  // both unborn
  PubBarrier(a, f);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 2u);
  EXPECT_TRUE(a.AllLive());
}

TEST_F(ChpReplicaWire, R19_LivePositionAheadOrOtherEpochResyncs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  // Same epoch, ahead: resume.
  f.Publish("s/", PositionF("E", 6));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "E");
  EXPECT_EQ(r1.U(4), 5u);
  EXPECT_EQ(a.Find("s")->stats().behind, 1u);
  f.Send(id, KvSyncF(r1.U(1), "s", {SetR("b", "2", 6)}));
  f.Send(id, KthxbaiF(r1.U(1), "s", "E", 6, 1, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  // Other epoch: full.
  f.Publish("s/", PositionF("F", 1));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "");
  ServeSnapshot(a, f, r2, {"F", 1}, {SetR("c", "3", 1)});
  // The server no longer holds S (unborn) while we have an epoch: full.
  f.Publish("s/", PositionF("", 0));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  ServeSnapshot(a, f, r3, {"", 0}, {});
  EXPECT_TRUE(Entries(a, "s").empty());
  EXPECT_EQ(a.Find("s")->stats().epoch_changes, 2u);
}

TEST_F(ChpReplicaWire, R20_NeverExpiresEntriesItself) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 1}, {SetR("snap", "1", 1, /*ttl=*/50)});
  f.Publish("s/live", KvPubF("E", 2, kSet, V("2"), /*ttl=*/100));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 2; }));
  PumpFor(a, 600ms);  // well past both TTLs
  EXPECT_EQ(Entries(a, "s"), (Map{{"snap", V("1")}, {"live", V("2")}}));
  f.Publish("s/live", KvPubF("E", 3, kExp, ""));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"snap", V("1")}}));
}

// ---------------------------------------------------------------------------------------------
// §8 Following all subtrees

TEST_F(ChpReplicaWire, R21_FollowAllSubscribesEverythingAndSyncsStar) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  a.FollowAll();
  const std::string id = Handshake(a, f, {""}, /*heartbeats=*/false);
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 0u) << "ICANHAZ * before the HUGZ confirming the subscription";
  f.StartHeartbeats();
  Cmd r = Take(a, f, 3);
  EXPECT_EQ(r.S(2), "*");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);

  f.Send(id, KvSyncF(r.U(1), "a", {SetR("x", "1", 1), SetR("y", "2", 2)}));
  f.Send(id, KthxbaiF(r.U(1), "a", "EA", 2, 2, kSnap));
  ReplyBarrier(a, f, id);
  ASSERT_NE(a.Find("a"), nullptr);
  EXPECT_TRUE(a.Find("a")->live()) << "each KTHXBAI ends its subtree's sync";
  EXPECT_FALSE(a.AllLive()) << "DONE ends the request";
  // b's part of the reply is short: rejected, then synced on its own after DONE.
  f.Send(id, KvSyncF(r.U(1), "b", {SetR("x", "1", 1)}));
  f.Send(id, KthxbaiF(r.U(1), "b", "EB", 3, 2, kSnap));
  f.Send(id, DoneF(r.U(1), 2));
  Cmd rb = TakeIcanhaz(a, f, "b");
  EXPECT_EQ(rb.S(3), "");
  ServeSnapshot(a, f, rb, {"EB", 3}, {SetR("x", "1", 1), SetR("z", "3", 3)});
  EXPECT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "a"), (Map{{"x", V("1")}, {"y", V("2")}}));
  EXPECT_EQ(Entries(a, "b"), (Map{{"x", V("1")}, {"z", V("3")}}));
  EXPECT_EQ(a.Find("b")->stats().rejected, 1u);
}

TEST_F(ChpReplicaWire, R22_SubtreesWithoutKthxbaiOrBornLaterStartUnborn) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  a.FollowAll();
  const std::string id = Handshake(a, f, {""});
  Cmd r = Take(a, f, 3);
  ASSERT_EQ(r.S(2), "*");
  // Born during the "*" sync, not in the reply.
  f.Publish("p/k", KvPubF("EP", 1, kSet, V("p1")));
  f.Publish("q/k", KvPubF("EQ", 3, kSet, V("q3")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 2; }));
  f.Send(id, DoneF(r.U(1), 0));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "p") == Position{"EP", 1}; }));
  EXPECT_EQ(Entries(a, "p"), (Map{{"k", V("p1")}}));
  Cmd rq = TakeIcanhaz(a, f, "q");
  EXPECT_EQ(rq.S(3), "");
  ServeSnapshot(a, f, rq, {"EQ", 3}, {SetR("k", "q3", 3)});

  // Born after DONE.
  f.Publish("n/k", KvPubF("EN", 1, kSet, V("n1")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "n") == Position{"EN", 1}; }));
  f.Publish("m/k", KvPubF("EM", 5, kSet, V("m5")));
  Cmd rm = TakeIcanhaz(a, f, "m");
  EXPECT_EQ(rm.S(3), "");
  ServeSnapshot(a, f, rm, {"EM", 5}, {SetR("k", "m5", 5)});
  f.Publish("r/", PositionF("ER", 4));
  Cmd rr = TakeIcanhaz(a, f, "r");
  EXPECT_EQ(rr.S(3), "");
  ServeSnapshot(a, f, rr, {"ER", 4}, {SetR("k", "r4", 4)});
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 4u) << "p and n needed no ICANHAZ of their own";
  EXPECT_TRUE(a.AllLive());
}

// ---------------------------------------------------------------------------------------------
// §8 Updates

TEST_F(ChpReplicaWire, R23_EachKvsetHasFreshUuidReusedOnRetry) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 200ms;
  ReplicaAgent a(ctx_, o);
  const std::string id = StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Set("s/x", V("1")).ok());
  ASSERT_TRUE(a.Set("s/x", V("1")).ok());  // the same update twice is two updates
  ASSERT_TRUE(a.Erase("s/y").ok());
  Cmd c1 = Take(a, f, 7);
  Cmd c2 = Take(a, f, 7);
  Cmd c3 = Take(a, f, 7);
  std::set<std::string> uuids{c1.B(1), c2.B(1), c3.B(1)};
  EXPECT_EQ(uuids.size(), 3u);
  for (const Cmd* c : {&c1, &c2, &c3}) {
    EXPECT_EQ(c->B(1).size(), 16u) << "W-7";
    EXPECT_EQ(c->size(), 6u);
  }
  EXPECT_EQ(c1.S(2), "s/x");
  EXPECT_EQ(c1.U(3), 0u);
  EXPECT_EQ(c1.B(4), V("1"));
  EXPECT_EQ(c3.U(3), 1u) << "delete";
  EXPECT_EQ(c3.B(4), "") << "V-4: empty value with a delete";
  EXPECT_EQ(c3.U(5), 0u) << "V-4: ttl 0 with a delete";

  // Acknowledge c1 and c3; c2 is retried with the same UUID and body until acknowledged.
  f.Send(id, KvAckF(c1.B(1), 0, "E", 2));
  f.Send(id, KvAckF(c3.B(1), 0, "E", 3));
  for (int i = 0; i < 2; ++i) {
    Cmd again = Take(a, f, 7);
    EXPECT_EQ(again.B(1), c2.B(1));
    EXPECT_EQ(again.body, c2.body);
  }
  EXPECT_GE(a.stats().kvset_retries, 2u);
  f.Send(id, KvAckF(c2.B(1), 0, "E", 3));
  ASSERT_TRUE(Until(a, [&] { return a.unacked() == 0; }));
  CommandBarrier(a, f);  // any retry sent before the KVACK was handled has arrived
  const size_t sent = f.Count(7);
  PumpFor(a, 500ms);
  EXPECT_EQ(f.Count(7), sent) << "retried after KVACK";
  // Not checked: RFC 4122 version bits (RECOMMENDED only).
}

TEST_F(ChpReplicaWire, R24_OwnUpdateNotAppliedFromKvack) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 2)});
  std::optional<KvAck> ack;
  ASSERT_TRUE(a.Set("s/new", V("n"), 0, [&](const KvAck& k) { ack = k; }).ok());
  Cmd c = Take(a, f, 7);
  f.Send(id, KvAckF(c.B(1), 0, "E", 3));
  ASSERT_TRUE(Until(a, [&] { return ack.has_value(); }));
  EXPECT_EQ(ack->status, 0u);
  EXPECT_EQ(ack->position, (Position{"E", 3}));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}})) << "applied from the KVACK";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  f.Publish("s/new", KvPubF("E", 3, kSet, V("n")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"new", V("n")}}));
}

TEST_F(ChpReplicaWire, R25_FailedKvackAndBadKeyErrorNotRepeated) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  const std::string id = StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  std::optional<KvAck> ack;
  ASSERT_TRUE(a.Set("s/k", V("v"), 0, [&](const KvAck& k) { ack = k; }).ok());
  Cmd c = Take(a, f, 7);
  f.Send(id, KvAckF(c.B(1), 4, "", 0));  // kBadValue
  ASSERT_TRUE(Until(a, [&] { return ack.has_value(); }));
  EXPECT_EQ(ack->status, 4u) << "reported to the application";

  ASSERT_TRUE(a.Follow("t").ok());
  ASSERT_TRUE(Until(a, [&] { return f.HasSub("t/"); }));
  f.Publish("t/", PositionF("", 0));
  Cmd r = TakeIcanhaz(a, f, "t");
  f.Send(id, ErrorF(r.U(1), 2, "invalid subtree"));
  ASSERT_TRUE(Until(a, [&] { return a.stats().errors == 1; }));
  PumpFor(a, 1200ms);  // four request timeouts
  EXPECT_EQ(f.Count(7), 1u) << "a rejected KVSET was re-sent";
  EXPECT_EQ(f.Count(3), 2u) << "an ICANHAZ answered with kBadKey was repeated";
}

// ---------------------------------------------------------------------------------------------
// §11 Failover

TEST_F(ChpReplicaWire, R26_SilenceFailsOverAndResumesEverySubtree) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 600ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("t").ok());
  StartLive(a, fa, "s", {"E", 3}, {SetR("a", "1", 1), SetR("b", "2", 3)});
  fa.Publish("t/", PositionF("G", 2));
  Cmd rt = TakeIcanhaz(a, fa, "t");
  ServeSnapshot(a, fa, rt, {"G", 2}, {SetR("x", "1", 2)});

  fa.StopHeartbeats();
  const auto t0 = std::chrono::steady_clock::now();
  Cmd hello = Take(a, fb, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 450ms) << "failed over before the timeout";
  EXPECT_EQ(a.stats().failovers, 1u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "local copy kept";
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub("$HUGZ") && fb.HasSub("s/") && fb.HasSub("t/"); }));
  fb.StartHeartbeats();
  fb.Publish("s/", PositionF("E", 3));
  fb.Publish("t/", PositionF("G", 2));
  Cmd rs2 = TakeIcanhaz(a, fb, "s");
  Cmd rt2 = TakeIcanhaz(a, fb, "t");
  EXPECT_EQ(rs2.S(3), "E");
  EXPECT_EQ(rs2.U(4), 3u);
  EXPECT_EQ(rt2.S(3), "G");
  EXPECT_EQ(rt2.U(4), 2u);
  fb.Send(hello.identity, KthxbaiF(rs2.U(1), "s", "E", 3, 0, kResume));
  fb.Send(hello.identity, KthxbaiF(rt2.U(1), "t", "G", 2, 0, kResume));
  EXPECT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}}));
}

TEST_F(ChpReplicaWire, R26_UnansweredHelloFailsOverCyclically) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.connect_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Take(a, fa, 1);
  Take(a, fb, 1);
  Cmd again = Take(a, fa, 1);  // back to the first
  EXPECT_GE(a.stats().failovers, 2u);
  fa.Send(again.identity, HelloOkF(again.U(2), fa.id(), fa.publisher_endpoint()));
  EXPECT_TRUE(Until(a, [&] { return fa.HasSub("s/"); }));

  // One endpoint: the agent reconnects to the same one.
  FakeServer& fc = AddFake();
  AgentOptions oc = Opts({&fc});
  oc.silence_timeout = 300ms;
  ReplicaAgent c(ctx_, oc);
  Handshake(c, fc, {"$HUGZ"});
  fc.StopHeartbeats();
  Take(c, fc, 1);
  EXPECT_EQ(c.stats().failovers, 1u);
}

TEST_F(ChpReplicaWire, R27_FailoverAbandonsRequestsAndResendsKvsetsWithSameUuid) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 500ms;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, fa, "s", {"E", 3}, {SetR("a", "1", 3)});
  fa.Publish("s/b", KvPubF("E", 5, kSet, V("5")));  // gap -> outstanding resume request
  Cmd old_req = TakeIcanhaz(a, fa, "s");
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd old_set = Take(a, fa, 7);

  fa.StopHeartbeats();
  Cmd hello = Take(a, fb, 1);
  ASSERT_FALSE(fb.codes.empty());
  EXPECT_EQ(fb.codes.front(), 1u) << "R-1: HELLO first on the new connection";
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  Cmd set = Take(a, fb, 7);
  EXPECT_EQ(set.B(1), old_set.B(1)) << "same UUID";
  EXPECT_EQ(set.body, old_set.body);
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub("s/"); }));
  fb.StartHeartbeats();
  fb.Publish("s/", PositionF("E", 5));
  Cmd req = TakeIcanhaz(a, fb, "s");
  EXPECT_EQ(req.S(3), "E");
  EXPECT_EQ(req.U(4), 3u);
  EXPECT_GE(a.Find("s")->stats().failed_requests, 1u) << "the old request was abandoned";
  EXPECT_EQ(fa.Count(3), 2u);
  EXPECT_EQ(old_req.S(3), "E");
}

// R-28 is a SHOULD; tested because the agent implements it.
TEST_F(ChpReplicaWire, R28_NewServerIdResendsRequestsAndKvsets) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 3}, {SetR("a", "1", 3)});
  f.Publish("s/b", KvPubF("E", 5, kSet, V("5")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd s1 = Take(a, f, 7);
  f.set_id("fake-restarted");
  f.Publish("$HUGZ", HugzF(f.id(), 0));
  Cmd r2 = TakeIcanhaz(a, f, "s", 2s);
  Cmd s2 = Take(a, f, 7, nullptr, 2s);
  EXPECT_NE(r2.U(1), r1.U(1));
  EXPECT_EQ(s2.B(1), s1.B(1));
  EXPECT_EQ(a.server_id(), "fake-restarted");
}

}  // namespace
}  // namespace chorus::chp
