// Shared support for the raw-wire integration tests of chorus-chp-server: msgpack frame builders
// and readers, socket helpers and the ChpWire fixture (see chp_wire_support.h).
#include "chp_wire_support.h"

#include <algorithm>
#include <iterator>
#include <regex>
#include <stdexcept>

namespace chp_wire_test {

[[noreturn]] void WireFail(const std::string& what) {
  throw std::runtime_error("wire check failed: " + what);
}

// ---------------------------------------------------------------------------------------------
// Writing msgpack

std::string Hello(uint64_t version, uint64_t rid) {
  return Pack().Array(3).U(kHello).U(version).U(rid).str();
}
std::string Icanhaz(uint64_t rid, std::string_view subtree, std::string_view epoch, uint64_t seq) {
  return Pack().Array(5).U(kIcanhaz).U(rid).Str(subtree).Str(epoch).U(seq).str();
}
std::string KvSet(std::string_view uuid, std::string_view key, uint64_t op, std::string_view value,
                  uint64_t ttl_ms) {
  return Pack().Array(6).U(kKvSet).Bin(uuid).Str(key).U(op).Bin(value).U(ttl_ms).str();
}

// Values (msgpack objects as bytes).
std::string MpInt(int64_t v) {
  return Pack().I(v).str();
}
std::string MpStr(std::string_view s) {
  return Pack().Str(s).str();
}
// A msgpack bin value whose encoding is exactly `n` bytes (n >= 5): bin32 header + payload.
std::string ValueOfSize(size_t n) {
  const uint32_t len = static_cast<uint32_t>(n - 5);
  std::string v = "\xc6";
  for (int i = 3; i >= 0; --i) v.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  return v + std::string(len, 'v');
}
// `depth` nested one-element arrays around an integer.
std::string Nested(int depth) {
  Pack p;
  for (int i = 0; i < depth; ++i) p.Array(1);
  return p.U(0).str();
}
std::string MapOf(uint32_t pairs) {
  Pack p;
  p.Map(pairs);
  for (uint32_t i = 0; i < pairs; ++i) p.U(i).U(0);
  return p.str();
}

// ---------------------------------------------------------------------------------------------
// Reading msgpack, checking types as the spec types them (CW-1, CW-2)

const char* TypeName(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
      return "uint";
    case msgpack::type::NEGATIVE_INTEGER:
      return "negative int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "?";
}

uint64_t AsU(const msgpack::object& o, const std::string& what, uint64_t max) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    WireFail(what + ": expected an unsigned integer, got " + TypeName(o));
  }
  if (o.via.u64 > max) WireFail(what + ": " + std::to_string(o.via.u64) + " is out of range");
  return o.via.u64;
}
std::string AsS(const msgpack::object& o, const std::string& what) {
  if (o.type != msgpack::type::STR) WireFail(what + ": expected str, got " + TypeName(o));
  return std::string(o.via.str.ptr, o.via.str.size);
}
std::string AsB(const msgpack::object& o, const std::string& what) {
  if (o.type != msgpack::type::BIN) WireFail(what + ": expected bin, got " + TypeName(o));
  return std::string(o.via.bin.ptr, o.via.bin.size);
}
const msgpack::object& Item(const msgpack::object& arr, size_t i, const std::string& what) {
  if (arr.type != msgpack::type::ARRAY) WireFail(what + ": expected array, got " + TypeName(arr));
  if (i >= arr.via.array.size) WireFail(what + ": element " + std::to_string(i) + " missing");
  return arr.via.array.ptr[i];
}

Body::Body(std::string bytes) : bytes_(std::move(bytes)) {
  if (bytes_.empty()) WireFail("empty body frame");
  size_t off = 0;
  try {
    handle_ = msgpack::unpack(bytes_.data(), bytes_.size(), off);
  } catch (const std::exception& e) {
    WireFail(std::string("body is not msgpack: ") + e.what());
  }
  if (off != bytes_.size()) WireFail("trailing bytes after the body array");
  if (root().type != msgpack::type::ARRAY || root().via.array.size == 0) {
    WireFail(std::string("body is not a non-empty array but ") + TypeName(root()));
  }
  code_ = AsU(At(0), "command code", 255);
}

void Body::Expect(uint64_t code, size_t elements) const {
  if (code_ != code) {
    WireFail("expected command " + std::to_string(code) + ", got " + std::to_string(code_));
  }
  if (size() < elements) WireFail(Name() + " has too few elements");
}

std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{key=" << r.key << " op=" << r.op << " value=" << r.value.size()
            << "B ttl=" << r.ttl << " seq=" << r.seq << "}";
}

HelloOkMsg AsHelloOk(const Body& b) {
  b.Expect(kHelloOk, 5);
  return {b.U(1), b.U(2, UINT32_MAX), b.S(3), b.S(4)};
}
KvAckMsg AsKvAck(const Body& b) {
  b.Expect(kKvAck, 5);
  KvAckMsg m{b.B(1), b.U(2, UINT32_MAX), b.S(3), b.U(4)};
  if (m.uuid.size() != 16) WireFail("KVACK UUID is not 16 bytes (CW-7)");
  return m;
}
ErrorMsg AsError(const Body& b) {
  b.Expect(kError, 4);
  return {b.U(1), b.U(2, UINT32_MAX), b.S(3)};
}
Rec AsRecord(const msgpack::object& o) {
  return {AsS(Item(o, 0, "record"), "record key"), AsU(Item(o, 1, "record"), "record op", 2),
          AsB(Item(o, 2, "record"), "record value"), AsU(Item(o, 3, "record"), "record ttl"),
          AsU(Item(o, 4, "record"), "record seq")};
}
KvSyncMsg AsKvSync(const Body& b) {
  b.Expect(kKvSync, 4);
  KvSyncMsg m{b.U(1), b.S(2), {}};
  const msgpack::object& list = b.At(3);
  if (list.type != msgpack::type::ARRAY) WireFail("KVSYNC records are not an array");
  for (uint32_t i = 0; i < list.via.array.size; ++i) {
    m.records.push_back(AsRecord(list.via.array.ptr[i]));
  }
  return m;
}
KthxbaiMsg AsKthxbai(const Body& b) {
  b.Expect(kKthxbai, 7);
  return {b.U(1), b.S(2), b.S(3), b.U(4), b.U(5), b.U(6, 1)};
}
DoneMsg AsDone(const Body& b) {
  b.Expect(kDone, 3);
  return {b.U(1), b.U(2)};
}

// ---------------------------------------------------------------------------------------------
// Sockets

std::optional<std::vector<zmq::message_t>> RecvFrames(zmq::socket_t& s, Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    std::vector<zmq::message_t> frames;
    if (zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      return frames;
    }
    const auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left);
  }
}

void SendBody(zmq::socket_t& s, std::string_view body) {
  s.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
}
void SendFrames(zmq::socket_t& s, const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

// A reply on a DEALER: the body alone, one frame (CW-5).
std::optional<Body> TryRecvReply(zmq::socket_t& d, Ms timeout) {
  auto frames = RecvFrames(d, timeout);
  if (!frames) return std::nullopt;
  if (frames->size() != 1) {
    WireFail("a reply reached the DEALER as " + std::to_string(frames->size()) +
             " frames, not one (CW-5)");
  }
  return Body((*frames)[0].to_string());
}
Body RecvReply(zmq::socket_t& d, Ms timeout) {
  auto b = TryRecvReply(d, timeout);
  if (!b) WireFail("no reply within " + std::to_string(timeout.count()) + " ms");
  return std::move(*b);
}
Body Call(zmq::socket_t& d, std::string_view body) {
  SendBody(d, body);
  return RecvReply(d);
}

std::optional<PubMsg> TryRecvPub(zmq::socket_t& sub, Ms timeout) {
  auto frames = RecvFrames(sub, timeout);
  if (!frames) return std::nullopt;
  if (frames->size() != 2) {
    WireFail("publisher message of " + std::to_string(frames->size()) + " frames (CW-6)");
  }
  PubMsg m{(*frames)[0].to_string(), Body((*frames)[1].to_string())};
  const std::string& t = m.topic;
  switch (m.code()) {
    case kKvPub: {
      const size_t slash = t.find('/');
      if (slash == 0 || slash == std::string::npos || slash + 1 == t.size() || t[0] == '$') {
        WireFail("KVPUB topic '" + t + "' is not a full key (CW-6)");
      }
      break;
    }
    case kPosition:
      if (t.size() < 2 || t.find('/') != t.size() - 1 || t[0] == '$') {
        WireFail("POSITION topic '" + t + "' is not 'subtree/' (CW-6)");
      }
      break;
    case kHugz:
      if (t != "$HUGZ") WireFail("HUGZ topic '" + t + "' is not $HUGZ (CW-6)");
      break;
    default:
      WireFail("unexpected command " + std::to_string(m.code()) + " on the publisher");
  }
  return m;
}

KvPubMsg AsKvPub(const PubMsg& m) {
  m.body.Expect(kKvPub, 6);
  return {m.topic, m.body.S(1), m.body.U(2), m.body.U(3, 2), m.body.B(4), m.body.U(5)};
}
PositionMsg AsPosition(const PubMsg& m) {
  m.body.Expect(kPosition, 3);
  return {m.topic.substr(0, m.topic.size() - 1), m.body.S(1), m.body.U(2)};
}
HugzMsg AsHugz(const PubMsg& m) {
  m.body.Expect(kHugz, 5);
  return {m.body.U(1, UINT32_MAX), m.body.S(2), m.body.U(3), m.body.U(4)};
}

PubPred IsKvPub(const std::string& topic) {
  return [topic](const PubMsg& m) { return m.code() == kKvPub && m.topic == topic; };
}
PubPred IsAnyKvPub() {
  return [](const PubMsg& m) { return m.code() == kKvPub; };
}
PubPred IsPosition(const std::string& subtree) {
  return [topic = subtree + "/"](const PubMsg& m) {
    return m.code() == kPosition && m.topic == topic;
  };
}
PubPred IsHugz() {
  return [](const PubMsg& m) { return m.code() == kHugz; };
}

// The next publisher message matching `pred`; others are skipped (and appended to `skipped`).
PubMsg WaitPub(zmq::socket_t& sub, const PubPred& pred, Ms timeout, std::vector<PubMsg>* skipped) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now());
    auto m = TryRecvPub(sub, std::max(left, Ms(0)));
    if (!m) WireFail("the expected publisher message did not arrive in time");
    if (pred(*m)) return std::move(*m);
    if (skipped != nullptr) skipped->push_back(std::move(*m));
  }
}
// The next KVPUB, skipping heartbeat traffic (POSITION, HUGZ).
KvPubMsg NextKvPub(zmq::socket_t& sub, Ms timeout) {
  return AsKvPub(WaitPub(sub, IsAnyKvPub(), timeout));
}

// ---------------------------------------------------------------------------------------------
// Sync replies

// Reads KVSYNC frames and the KTHXBAI of one subtree's reply to request `rid`.
SyncReply ReadSync(zmq::socket_t& d, uint64_t rid, const std::string& subtree, Ms timeout) {
  SyncReply r;
  while (true) {
    Body b = RecvReply(d, timeout);
    if (b.code() == kKvSync) {
      KvSyncMsg s = AsKvSync(b);
      if (s.rid != rid || s.subtree != subtree) {
        WireFail("KVSYNC for request " + std::to_string(s.rid) + " subtree '" + s.subtree +
                 "' inside the reply to " + std::to_string(rid) + " '" + subtree + "'");
      }
      r.batches.push_back(std::move(s));
    } else {
      r.end = AsKthxbai(b);
      if (r.end.rid != rid || r.end.subtree != subtree) {
        WireFail("KTHXBAI for another request or subtree");
      }
      return r;
    }
  }
}

std::string SubtreeOf(const std::string& topic) {
  return topic.substr(0, topic.find('/'));
}
Rec RecOf(const KvPubMsg& p) {
  return {p.topic.substr(p.topic.find('/') + 1), p.op, p.value, p.ttl, p.seq};
}

// ---------------------------------------------------------------------------------------------
// Fixture

// Starts chorus-chp-server on ephemeral loopback ports and reads its banner line.
void ChpWire::StartServer(const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--command", "tcp://127.0.0.1:0", "--publisher",
                                "tcp://127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  server_ = std::make_unique<ChildProcess>(CHORUS_CHP_SERVER_BIN, args);
  const std::string banner = server_->ReadLine(10s);
  command_ = Field(banner, "command");
  publisher_ = Field(banner, "publisher");
  server_id_ = Field(banner, "id");
  if (command_.empty() || publisher_.empty() || server_id_.empty()) {
    throw std::runtime_error("no banner from chorus-chp-server, got '" + banner + "'");
  }
}

// SIGTERM; the server must exit with status 0 (no crash, clean shutdown).
void ChpWire::StopServer() {
  EXPECT_TRUE(server_->Terminate(10s)) << "chorus-chp-server did not exit 0 on SIGTERM";
  server_.reset();
}

zmq::socket_t ChpWire::Dealer(int rcvhwm) {
  zmq::socket_t d(ctx_, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::rcvhwm, rcvhwm);
  d.set(zmq::sockopt::sndhwm, 0);
  d.connect(command_);
  return d;
}

zmq::socket_t ChpWire::Sub() {
  zmq::socket_t s(ctx_, zmq::socket_type::sub);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.connect(publisher_);
  return s;
}

// Subscribes and waits for the server's welcome (CS-13): HUGZ for "" and "$HUGZ", POSITION for
// "S/".
PubMsg ChpWire::Subscribe(zmq::socket_t& sub, const std::string& topic) {
  sub.set(zmq::sockopt::subscribe, topic);
  if (topic.empty() || topic == "$HUGZ") return WaitPub(sub, IsHugz());
  return WaitPub(sub, IsPosition(topic.substr(0, topic.size() - 1)));
}

// Distinct UUIDs that look random, like RFC 4122 version 4 ones (CR-23).
std::string ChpWire::UuidFor(uint64_t n) {
  std::string u;
  for (uint64_t half : {Mix(n), Mix(n ^ 0x5555555555555555ull)}) {
    for (int i = 7; i >= 0; --i) u.push_back(static_cast<char>((half >> (8 * i)) & 0xff));
  }
  return u;
}

// splitmix64: a bijection, so distinct n give distinct UUIDs.
uint64_t ChpWire::Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Sends a KVSET and returns its KVACK, checking the UUID (CS-7).
KvAckMsg ChpWire::Write(zmq::socket_t& d, std::string_view key, uint64_t op, std::string_view value,
                        uint64_t ttl_ms) {
  const std::string uuid = NewUuid();
  KvAckMsg ack = AsKvAck(Call(d, KvSet(uuid, key, op, value, ttl_ms)));
  if (ack.uuid != uuid) WireFail("KVACK carries another UUID");
  return ack;
}

// Proves that nothing sent on `d` before got a reply: a HELLO's HELLO_OK must come next.
void ChpWire::ExpectNoReply(zmq::socket_t& d, const std::string& what) {
  const uint64_t rid = ++sentinel_rid_;
  SendBody(d, Hello(1, rid));
  while (true) {
    Body b = RecvReply(d);
    if (b.code() == kHelloOk && AsHelloOk(b).rid == rid) return;
    ADD_FAILURE() << "a reply (command " << b.code() << ") to " << what;
  }
}

SyncReply ChpWire::Snapshot(zmq::socket_t& d, uint64_t rid, const std::string& subtree,
                            const std::string& epoch, uint64_t seq, Ms timeout) {
  SendBody(d, Icanhaz(rid, subtree, epoch, seq));
  return ReadSync(d, rid, subtree, timeout);
}

// ---------------------------------------------------------------------------------------------
// Other checks and helpers

bool IsEpoch(const std::string& e) {
  static const std::regex re("^[0-9a-f]{16}$");
  return std::regex_match(e, re);
}

// Pipelines `n` sets of "<subtree>/k<i>" from one DEALER and waits for every KVACK.
void WriteKeys(zmq::socket_t& d, const std::string& subtree, size_t n,
               const std::function<std::string()>& uuid) {
  for (size_t i = 0; i < n; ++i) {
    SendBody(d, KvSet(uuid(), subtree + "/k" + std::to_string(i), kOpSet,
                      MpInt(static_cast<int64_t>(i % 100))));
  }
  for (size_t i = 0; i < n; ++i) {
    const KvAckMsg ack = AsKvAck(RecvReply(d, 30s));
    if (ack.status != kOk || ack.seq != i + 1) WireFail("unexpected KVACK while writing keys");
  }
}

}  // namespace chp_wire_test
