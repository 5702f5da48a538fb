// Raw-wire integration tests of chorus-chp-server against docs/protocol/chp.md.
//
// Each test starts the real server binary on ephemeral loopback ports and talks to it with plain
// cppzmq DEALER and SUB sockets and msgpack built and read here with msgpack-cxx directly. The chp
// headers and codec are deliberately not used, so the wire format is checked independently of our
// own encoder and decoder. Test names carry the rule (W-n, K-n, V-n, S-n) they check.
//
// Waits are bounded (zmq::poll with a deadline), never sleeps. "No reply" is proved by a HELLO
// sent after the frame under test: the server answers one peer's requests in order (S-19), so the
// HELLO_OK must be the very next reply. "No KVPUB" is proved the same way with a later change of
// the same subtree, whose KVPUB must come next with the next sequence.
// Every test ends with SIGTERM and requires exit status 0 (TearDown), which also catches crashes.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "test_util.h"

namespace {

using namespace std::chrono_literals;
using chorus::testing::ChildProcess;
using chorus::testing::Field;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

constexpr Ms kReplyTimeout = 5s;

// Command codes (spec §6), spelled out here: these tests do not use the chp headers.
constexpr uint64_t kHello = 1;
constexpr uint64_t kHelloOk = 2;
constexpr uint64_t kIcanhaz = 3;
constexpr uint64_t kKvSync = 4;
constexpr uint64_t kKthxbai = 5;
constexpr uint64_t kDone = 6;
constexpr uint64_t kKvSet = 7;
constexpr uint64_t kKvAck = 8;
constexpr uint64_t kError = 9;
constexpr uint64_t kKvPub = 10;
constexpr uint64_t kPosition = 11;
constexpr uint64_t kHugz = 12;

// Status codes (spec §15) and ops.
constexpr uint64_t kOk = 0;
constexpr uint64_t kMalformed = 1;
constexpr uint64_t kBadKey = 2;
constexpr uint64_t kValueTooLarge = 3;
constexpr uint64_t kBadValue = 4;
constexpr uint64_t kBadTtl = 5;
constexpr uint64_t kBadVersion = 11;
constexpr uint64_t kOpSet = 0;
constexpr uint64_t kOpDelete = 1;
constexpr uint64_t kOpExpire = 2;
constexpr uint64_t kModeSnapshot = 0;
constexpr uint64_t kModeResume = 1;

// Limits (spec §12) with the server's defaults.
constexpr size_t kMaxValueBytes = 1 << 20;
constexpr size_t kMaxBodyBytes = 16'778'240;
constexpr uint64_t kMaxTtlMs = 2'592'000'000;
constexpr size_t kBatchRecords = 512;
constexpr size_t kBatchBytes = 256 * 1024;
constexpr size_t kUuidWindow = 65'536;

[[noreturn]] void WireFail(const std::string& what) {
  throw std::runtime_error("wire check failed: " + what);
}

// ---------------------------------------------------------------------------------------------
// Writing msgpack

class Pack {
 public:
  Pack& Array(uint32_t n) {
    pk_.pack_array(n);
    return *this;
  }
  Pack& Map(uint32_t n) {
    pk_.pack_map(n);
    return *this;
  }
  Pack& U(uint64_t v) {  // shortest encoding
    pk_.pack_uint64(v);
    return *this;
  }
  Pack& I(int64_t v) {  // shortest encoding
    pk_.pack_int64(v);
    return *this;
  }
  Pack& U64(uint64_t v) {  // always 0xcf + 8 bytes
    pk_.pack_fix_uint64(v);
    return *this;
  }
  Pack& I64(int64_t v) {  // always 0xd3 + 8 bytes
    pk_.pack_fix_int64(v);
    return *this;
  }
  Pack& Nil() {
    pk_.pack_nil();
    return *this;
  }
  Pack& Double(double v) {  // always float64 (msgpack-cxx's pack_double packs 1.0 as an integer)
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    std::string raw = "\xcb";
    for (int i = 7; i >= 0; --i) raw.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    return Raw(raw);
  }
  Pack& Str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Bin(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Ext(int8_t type, std::string_view s) {
    pk_.pack_ext(s.size(), type);
    pk_.pack_ext_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Raw(std::string_view bytes) {
    buf_.write(bytes.data(), bytes.size());
    return *this;
  }
  std::string str() const { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_{buf_};
};

std::string Hello(uint64_t version, uint64_t rid) {
  return Pack().Array(3).U(kHello).U(version).U(rid).str();
}
std::string Icanhaz(uint64_t rid, std::string_view subtree, std::string_view epoch = "",
                    uint64_t seq = 0) {
  return Pack().Array(5).U(kIcanhaz).U(rid).Str(subtree).Str(epoch).U(seq).str();
}
std::string KvSet(std::string_view uuid, std::string_view key, uint64_t op, std::string_view value,
                  uint64_t ttl_ms = 0) {
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
// Reading msgpack, checking types as the spec types them (W-1, W-2)

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

uint64_t AsU(const msgpack::object& o, const std::string& what,
             uint64_t max = std::numeric_limits<uint64_t>::max()) {
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

// One body frame: exactly one msgpack array spanning the frame, element 0 a command code (W-1).
class Body {
 public:
  explicit Body(std::string bytes) : bytes_(std::move(bytes)) {
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
  uint64_t code() const { return code_; }
  size_t size() const { return root().via.array.size; }
  const msgpack::object& At(size_t i) const { return Item(root(), i, Name()); }
  uint64_t U(size_t i, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    return AsU(At(i), Name() + "[" + std::to_string(i) + "]", max);
  }
  std::string S(size_t i) const { return AsS(At(i), Name() + "[" + std::to_string(i) + "]"); }
  std::string B(size_t i) const { return AsB(At(i), Name() + "[" + std::to_string(i) + "]"); }
  const std::string& bytes() const { return bytes_; }

  // Checks the command code and the minimum element count (W-3: more is allowed).
  void Expect(uint64_t code, size_t elements) const {
    if (code_ != code) {
      WireFail("expected command " + std::to_string(code) + ", got " + std::to_string(code_));
    }
    if (size() < elements) WireFail(Name() + " has too few elements");
  }

 private:
  const msgpack::object& root() const { return handle_.get(); }
  std::string Name() const { return "command " + std::to_string(code_); }
  std::string bytes_;
  msgpack::object_handle handle_;
  uint64_t code_ = 0;
};

struct Rec {
  std::string key;
  uint64_t op = 0;
  std::string value;
  uint64_t ttl = 0;
  uint64_t seq = 0;
  bool operator==(const Rec&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Rec& r) {
  return os << "{key=" << r.key << " op=" << r.op << " value=" << r.value.size()
            << "B ttl=" << r.ttl << " seq=" << r.seq << "}";
}

struct HelloOkMsg {
  uint64_t rid, version;
  std::string id, publisher;
};
struct KvAckMsg {
  std::string uuid;
  uint64_t status;
  std::string epoch;
  uint64_t seq;
};
struct ErrorMsg {
  uint64_t rid, code;
  std::string message;
};
struct KvSyncMsg {
  uint64_t rid;
  std::string subtree;
  std::vector<Rec> records;
};
struct KthxbaiMsg {
  uint64_t rid;
  std::string subtree, epoch;
  uint64_t seq, count, mode;
};
struct DoneMsg {
  uint64_t rid, subtrees;
};

HelloOkMsg AsHelloOk(const Body& b) {
  b.Expect(kHelloOk, 5);
  return {b.U(1), b.U(2, UINT32_MAX), b.S(3), b.S(4)};
}
KvAckMsg AsKvAck(const Body& b) {
  b.Expect(kKvAck, 5);
  KvAckMsg m{b.B(1), b.U(2, UINT32_MAX), b.S(3), b.U(4)};
  if (m.uuid.size() != 16) WireFail("KVACK UUID is not 16 bytes (W-7)");
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

// A reply on a DEALER: the body alone, one frame (W-5).
std::optional<Body> TryRecvReply(zmq::socket_t& d, Ms timeout) {
  auto frames = RecvFrames(d, timeout);
  if (!frames) return std::nullopt;
  if (frames->size() != 1) {
    WireFail("a reply reached the DEALER as " + std::to_string(frames->size()) +
             " frames, not one (W-5)");
  }
  return Body((*frames)[0].to_string());
}
Body RecvReply(zmq::socket_t& d, Ms timeout = kReplyTimeout) {
  auto b = TryRecvReply(d, timeout);
  if (!b) WireFail("no reply within " + std::to_string(timeout.count()) + " ms");
  return std::move(*b);
}
Body Call(zmq::socket_t& d, std::string_view body) {
  SendBody(d, body);
  return RecvReply(d);
}

// A publisher message: exactly [topic][body] (W-6).
struct PubMsg {
  std::string topic;
  Body body;
  uint64_t code() const { return body.code(); }
};
struct KvPubMsg {
  std::string topic, epoch;
  uint64_t seq, op;
  std::string value;
  uint64_t ttl;
};
struct PositionMsg {
  std::string subtree, epoch;
  uint64_t seq;
};
struct HugzMsg {
  uint64_t version;
  std::string id;
  uint64_t time_ms, subtrees;
};

std::optional<PubMsg> TryRecvPub(zmq::socket_t& sub, Ms timeout) {
  auto frames = RecvFrames(sub, timeout);
  if (!frames) return std::nullopt;
  if (frames->size() != 2) {
    WireFail("publisher message of " + std::to_string(frames->size()) + " frames (W-6)");
  }
  PubMsg m{(*frames)[0].to_string(), Body((*frames)[1].to_string())};
  const std::string& t = m.topic;
  switch (m.code()) {
    case kKvPub: {
      const size_t slash = t.find('/');
      if (slash == 0 || slash == std::string::npos || slash + 1 == t.size() || t[0] == '$') {
        WireFail("KVPUB topic '" + t + "' is not a full key (W-6)");
      }
      break;
    }
    case kPosition:
      if (t.size() < 2 || t.find('/') != t.size() - 1 || t[0] == '$') {
        WireFail("POSITION topic '" + t + "' is not 'subtree/' (W-6)");
      }
      break;
    case kHugz:
      if (t != "$HUGZ") WireFail("HUGZ topic '" + t + "' is not $HUGZ (W-6)");
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

using PubPred = std::function<bool(const PubMsg&)>;
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
PubMsg WaitPub(zmq::socket_t& sub, const PubPred& pred, Ms timeout = kReplyTimeout,
               std::vector<PubMsg>* skipped = nullptr) {
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
KvPubMsg NextKvPub(zmq::socket_t& sub, Ms timeout = kReplyTimeout) {
  return AsKvPub(WaitPub(sub, IsAnyKvPub(), timeout));
}

// ---------------------------------------------------------------------------------------------
// Sync replies

struct SyncReply {
  std::vector<KvSyncMsg> batches;
  KthxbaiMsg end{};
  std::vector<Rec> records() const {
    std::vector<Rec> out;
    for (const auto& b : batches) out.insert(out.end(), b.records.begin(), b.records.end());
    return out;
  }
  std::map<std::string, Rec> by_key() const {
    std::map<std::string, Rec> out;
    for (const Rec& r : records()) out[r.key] = r;
    return out;
  }
};

// Reads KVSYNC frames and the KTHXBAI of one subtree's reply to request `rid`.
SyncReply ReadSync(zmq::socket_t& d, uint64_t rid, const std::string& subtree,
                   Ms timeout = kReplyTimeout) {
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
// Fixture: one server process per test (more for restart tests).

class ChpWire : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) StopServer();
  }

  // Starts chorus-chp-server on ephemeral loopback ports and reads its banner line.
  void StartServer(const std::vector<std::string>& extra = {}) {
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
  void StopServer() {
    EXPECT_TRUE(server_->Terminate(10s)) << "chorus-chp-server did not exit 0 on SIGTERM";
    server_.reset();
  }

  zmq::socket_t Dealer(int rcvhwm = 0) {
    zmq::socket_t d(ctx_, zmq::socket_type::dealer);
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::rcvhwm, rcvhwm);
    d.set(zmq::sockopt::sndhwm, 0);
    d.connect(command_);
    return d;
  }
  zmq::socket_t Sub() {
    zmq::socket_t s(ctx_, zmq::socket_type::sub);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvhwm, 0);
    s.connect(publisher_);
    return s;
  }
  // Subscribes and waits for the server's welcome (S-13): HUGZ for "" and "$HUGZ", POSITION for
  // "S/".
  PubMsg Subscribe(zmq::socket_t& sub, const std::string& topic) {
    sub.set(zmq::sockopt::subscribe, topic);
    if (topic.empty() || topic == "$HUGZ") return WaitPub(sub, IsHugz());
    return WaitPub(sub, IsPosition(topic.substr(0, topic.size() - 1)));
  }

  // Distinct UUIDs that look random, like RFC 4122 version 4 ones.
  static std::string UuidFor(uint64_t n) {
    std::string u;
    for (uint64_t half : {Mix(n), Mix(n ^ 0x5555555555555555ull)}) {
      for (int i = 7; i >= 0; --i) u.push_back(static_cast<char>((half >> (8 * i)) & 0xff));
    }
    return u;
  }
  static uint64_t Mix(uint64_t x) {  // splitmix64: a bijection, so distinct n give distinct UUIDs
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  std::string NewUuid() { return UuidFor(++uuid_counter_); }

  // Sends a KVSET and returns its KVACK, checking the UUID (S-7).
  KvAckMsg Write(zmq::socket_t& d, std::string_view key, uint64_t op, std::string_view value,
                 uint64_t ttl_ms = 0) {
    const std::string uuid = NewUuid();
    KvAckMsg ack = AsKvAck(Call(d, KvSet(uuid, key, op, value, ttl_ms)));
    if (ack.uuid != uuid) WireFail("KVACK carries another UUID");
    return ack;
  }
  KvAckMsg Set(zmq::socket_t& d, std::string_view key, std::string_view value,
               uint64_t ttl_ms = 0) {
    return Write(d, key, kOpSet, value, ttl_ms);
  }
  KvAckMsg Del(zmq::socket_t& d, std::string_view key) { return Write(d, key, kOpDelete, ""); }

  // Proves that nothing sent on `d` before got a reply: a HELLO's HELLO_OK must come next.
  void ExpectNoReply(zmq::socket_t& d, const std::string& what) {
    const uint64_t rid = ++sentinel_rid_;
    SendBody(d, Hello(1, rid));
    while (true) {
      Body b = RecvReply(d);
      if (b.code() == kHelloOk && AsHelloOk(b).rid == rid) return;
      ADD_FAILURE() << "a reply (command " << b.code() << ") to " << what;
    }
  }

  SyncReply Snapshot(zmq::socket_t& d, uint64_t rid, const std::string& subtree,
                     const std::string& epoch = "", uint64_t seq = 0, Ms timeout = kReplyTimeout) {
    SendBody(d, Icanhaz(rid, subtree, epoch, seq));
    return ReadSync(d, rid, subtree, timeout);
  }

  zmq::context_t ctx_;
  std::unique_ptr<ChildProcess> server_;
  std::string command_, publisher_, server_id_;
  uint64_t uuid_counter_ = 0;
  uint64_t sentinel_rid_ = 1'000'000;
};

bool IsEpoch(const std::string& e) {
  static const std::regex re("^[0-9a-f]{16}$");
  return std::regex_match(e, re);
}

// =============================================================================================
// §3 Architecture, HELLO

TEST_F(ChpWire, S1_XpubIsVerboseSoRepeatedSubscriptionsAreWelcomed) {
  // ZMQ_XPUB_VERBOSE: a subscription to a topic another SUB already holds still reaches the
  // server, which welcomes it. (ZMQ_ROUTER_MANDATORY is covered by S20_*; the XPUB SNDHWM value
  // is not observable on the wire.)
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/x", MpInt(1)).status, kOk);
  auto first = Sub();
  auto second = Sub();
  EXPECT_EQ(AsPosition(Subscribe(first, "a/")).seq, 1u);
  EXPECT_EQ(AsPosition(Subscribe(second, "a/")).seq, 1u);
  EXPECT_EQ(AsHugz(Subscribe(first, "$HUGZ")).id, server_id_);
  EXPECT_EQ(AsHugz(Subscribe(second, "$HUGZ")).id, server_id_);
}

TEST_F(ChpWire, S2_HelloOkEchoesRequestAndGivesIdAndUsablePublisher) {
  StartServer();
  const std::regex tcp("^tcp://127\\.0\\.0\\.1:([0-9]+)$");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(publisher_, m, tcp)) << publisher_;
  EXPECT_NE(m[1].str(), "0") << "the banner must show the resolved port";

  auto d = Dealer();
  const HelloOkMsg ok = AsHelloOk(Call(d, Hello(1, 42)));
  EXPECT_EQ(ok.rid, 42u);
  EXPECT_EQ(ok.version, 1u);
  EXPECT_EQ(ok.id, server_id_);
  EXPECT_EQ(ok.publisher, publisher_) << "HELLO_OK must carry the publisher endpoint as bound";
  ASSERT_TRUE(std::regex_match(ok.publisher, m, tcp)) << ok.publisher;
  EXPECT_NE(m[1].str(), "0");

  const HelloOkMsg again = AsHelloOk(Call(d, Hello(1, 0xffffffffffffull)));
  EXPECT_EQ(again.rid, 0xffffffffffffull);
  EXPECT_EQ(again.id, ok.id) << "server id is stable for the life of the process";

  // The endpoint from HELLO_OK works: a SUB connected to it hears HUGZ from this server.
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.connect(ok.publisher);
  sub.set(zmq::sockopt::subscribe, "$HUGZ");
  EXPECT_EQ(AsHugz(WaitPub(sub, IsHugz())).id, ok.id);
}

TEST_F(ChpWire, S2_UnsupportedVersionGetsErrorBadVersion) {
  StartServer();
  auto d = Dealer();
  for (uint64_t version : {uint64_t{0}, uint64_t{2}, uint64_t{0xffffffff}}) {
    SCOPED_TRACE("version " + std::to_string(version));
    const ErrorMsg e = AsError(Call(d, Hello(version, 100 + version)));
    EXPECT_EQ(e.rid, 100 + version);
    EXPECT_EQ(e.code, kBadVersion);
  }
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 5))).rid, 5u) << "the connection still works";
}

// =============================================================================================
// §4 Keys

TEST_F(ChpWire, K1_SubtreeNamesAreChecked) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "");
  const std::vector<std::string> bad = {
      "/k",                          // empty subtree
      std::string(256, 's') + "/k",  // 256 bytes
      std::string("a\x01") + "b/k",  // control characters
      std::string("a\x1f") + "b/k",
      std::string("a\x7f") + "b/k",
      "$sys/k",  // reserved for control topics
      "$HUGZ/k",
      "*/k",                            // reserved for ICANHAZ
      std::string("\xC0\xAF") + "x/k",  // overlong form
      "\xED\xA0\x80/k",                 // surrogate
      "\xF4\x90\x80\x80/k",             // above U+10FFFF
      "\xE2\x82/k",                     // truncated sequence
      "\x80x/k",                        // stray continuation byte
      "nokey",                          // no '/'
  };
  for (const std::string& key : bad) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(Set(d, key, MpInt(1)).status, kBadKey);
  }
  const std::vector<std::string> good = {
      std::string(255, 's') + "/k",  // 255 bytes
      "\xC3\xBCn\xC3\xAF/k",         // UTF-8
      "\xF0\x9F\x98\x80/k",          // 4-byte UTF-8
      "a$/k",                        // '$' not first
      "a*/k",
      "a b/k",
  };
  for (const std::string& key : good) {
    SCOPED_TRACE(testing::PrintToString(key));
    const KvAckMsg ack = Set(d, key, MpInt(2));
    EXPECT_EQ(ack.status, kOk);
    EXPECT_EQ(ack.seq, 1u);
  }
  // Only the valid keys were published, in order, and only they created subtrees.
  for (const std::string& key : good) EXPECT_EQ(NextKvPub(sub).topic, key);
  SendBody(d, Icanhaz(1, "*"));
  size_t subtrees = 0;
  while (true) {
    Body b = RecvReply(d);
    if (b.code() == kDone) {
      EXPECT_EQ(AsDone(b).subtrees, good.size());
      break;
    }
    if (b.code() == kKthxbai) ++subtrees;
  }
  EXPECT_EQ(subtrees, good.size());
}

TEST_F(ChpWire, K2_KeyPartRules) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  for (const std::string& key :
       {std::string("a/"), std::string("a/x\ty"), std::string("a/\x7f"), std::string("a/x\x01y"),
        std::string("a/\xC0\xAF"), std::string("a/\xED\xA0\x80"), std::string("a/\xFF")}) {
    SCOPED_TRACE(testing::PrintToString(key));
    EXPECT_EQ(Set(d, key, MpInt(1)).status, kBadKey);
  }
  // '/' in the key part: "a/b/c" is key "b/c" in subtree "a".
  const KvAckMsg ack = Set(d, "a/b/c", MpInt(3));
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.seq, 1u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/b/c");
  EXPECT_EQ(pub.seq, 1u);
  EXPECT_EQ(Set(d, "a/\xC3\xA9t\xC3\xA9", MpInt(4)).status, kOk);
  const SyncReply snap = Snapshot(d, 1, "a");
  ASSERT_EQ(snap.end.count, 2u);
  EXPECT_EQ(snap.by_key().count("b/c"), 1u);
  EXPECT_EQ(snap.by_key().count("\xC3\xA9t\xC3\xA9"), 1u);
}

TEST_F(ChpWire, K3_FullKeyAtMost1024BytesComparedByteForByte) {
  StartServer();
  auto d = Dealer();
  const std::string k1024 = "k/" + std::string(1022, 'x');
  EXPECT_EQ(Set(d, k1024, MpInt(1)).status, kOk);
  EXPECT_EQ(Set(d, k1024 + "x", MpInt(1)).status, kBadKey);
  const std::string k255 = std::string(255, 's') + "/" + std::string(768, 'y');
  ASSERT_EQ(k255.size(), 1024u);
  EXPECT_EQ(Set(d, k255, MpInt(1)).status, kOk);
  // No Unicode normalisation: NFC and NFD spellings of "café" are two keys.
  EXPECT_EQ(Set(d, "n/caf\xC3\xA9", MpInt(1)).seq, 1u);
  EXPECT_EQ(Set(d, "n/cafe\xCC\x81", MpInt(2)).seq, 2u);
  const SyncReply snap = Snapshot(d, 1, "n");
  EXPECT_EQ(snap.end.count, 2u);
  EXPECT_EQ(snap.by_key().at("caf\xC3\xA9").value, MpInt(1));
  EXPECT_EQ(snap.by_key().at("cafe\xCC\x81").value, MpInt(2));
}

TEST_F(ChpWire, K4_TopicIsTheFullKeyAndSubtreePrefixIsExact) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  auto sub_ab = Sub();
  Subscribe(sub_ab, "ab/");
  ASSERT_EQ(Set(d, "ab/x", MpInt(1)).status, kOk);
  ASSERT_EQ(Set(d, "a/y", MpInt(2)).status, kOk);
  ASSERT_EQ(Set(d, "abc/z", MpInt(3)).status, kOk);
  ASSERT_EQ(Set(d, "a/z/w", MpInt(4)).status, kOk);
  // "a/" hears subtree a only; "ab/" hears subtree ab only.
  EXPECT_EQ(NextKvPub(sub).topic, "a/y");
  EXPECT_EQ(NextKvPub(sub).topic, "a/z/w");
  EXPECT_EQ(NextKvPub(sub_ab).topic, "ab/x");
  ASSERT_EQ(Set(d, "ab/end", MpInt(5)).status, kOk);
  EXPECT_EQ(NextKvPub(sub_ab).topic, "ab/end");
  // Subscribing to "a/" welcomes with POSITION on topic "a/".
  auto late = Sub();
  const PubMsg welcome = Subscribe(late, "a/");
  EXPECT_EQ(welcome.topic, "a/");
}

// =============================================================================================
// §5 Values

TEST_F(ChpWire, V1_SetValueMustBeExactlyOneMsgpackObject) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::string> bad = {
      "",                                             // empty is not a value
      "\xc1",                                         // never-used byte
      "\x92\x01",                                     // array of 2 with 1 element
      std::string("\x01\x02", 2),                     // two objects
      std::string("\xd9\x05") + "ab",                 // str8 longer than the bytes
      Nested(17),                                     // deeper than 16 (W-8)
      MapOf(1025),                                    // more than 1,024 pairs
      Pack().Ext(1, std::string(65'537, 'e')).str(),  // ext over 65,536 bytes
  };
  // (An ext of exactly 65,536 data bytes is 65,537 with its type byte; msgpack-cxx counts the type
  // byte and the spec does not say, so only sizes valid or invalid either way are checked.)
  for (const std::string& v : bad) {
    SCOPED_TRACE("value of " + std::to_string(v.size()) + " bytes");
    EXPECT_EQ(Set(d, "v/k", v).status, kBadValue);
  }
  const std::vector<std::string> good = {"\x01",
                                         "\xc0",
                                         MpStr("x"),
                                         Nested(16),
                                         MapOf(1024),
                                         Pack().Ext(1, std::string(65'535, 'e')).str(),
                                         std::string("\x00", 1)};
  uint64_t seq = 0;
  for (const std::string& v : good) {
    SCOPED_TRACE("value of " + std::to_string(v.size()) + " bytes");
    const KvAckMsg ack = Set(d, "v/k", v);
    EXPECT_EQ(ack.status, kOk);
    EXPECT_EQ(ack.seq, ++seq);
  }
}

TEST_F(ChpWire, V2_ValueOverMaxValueBytesIsRejected) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "v/");
  EXPECT_EQ(Set(d, "v/big", ValueOfSize(kMaxValueBytes + 1)).status, kValueTooLarge);
  const KvAckMsg ok = Set(d, "v/big", ValueOfSize(kMaxValueBytes));
  EXPECT_EQ(ok.status, kOk);
  EXPECT_EQ(ok.seq, 1u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.seq, 1u);
  EXPECT_EQ(pub.value, ValueOfSize(kMaxValueBytes));
}

TEST_F(ChpWire, V3_ValueBytesAreStoredAndForwardedUnchanged) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "v/");
  // Non-shortest encodings a re-encoding server would change.
  const std::vector<std::string> values = {
      Pack().U64(1).str(),                       // uint64 for 1
      Pack().I64(-1).str(),                      // int64 for -1
      std::string("\xd9\x02hi", 4),              // str8 for a fixstr
      std::string("\xc5\x00\x03", 3) + "abc",    // bin16 for a bin8
      std::string("\xde\x00\x01\xa1k\xa1v", 7),  // map16 for a fixmap
      Pack().Double(1.0).str(),
  };
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(Set(d, "v/k" + std::to_string(i), values[i]).status, kOk);
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.value, values[i]) << "KVPUB " << i;
  }
  const auto snap = Snapshot(d, 1, "v").by_key();
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(snap.at("k" + std::to_string(i)).value, values[i]) << "snapshot " << i;
  }
  const KvAckMsg last = Set(d, "v/k0", values[1]);
  const SyncReply resume = Snapshot(d, 2, "v", last.epoch, last.seq - 1);
  ASSERT_EQ(resume.end.mode, kModeResume);
  ASSERT_EQ(resume.records().size(), 1u);
  EXPECT_EQ(resume.records()[0].value, values[1]);
}

// =============================================================================================
// §6 Frames

TEST_F(ChpWire, W1_BodiesThatAreNotOneArrayWithACodeAreDropped) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty frame", ""},
      {"trailing bytes", Hello(1, 7) + std::string(1, '\0')},
      {"integer", "\x01"},
      {"map", Pack().Map(1).U(1).U(1).str()},
      {"str", MpStr("hello")},
      {"empty array", "\x90"},
      {"code as str", Pack().Array(3).Str("1").U(1).U(7).str()},
      {"negative code", Pack().Array(3).I(-1).U(1).U(7).str()},
      {"code 256", Pack().Array(3).U(256).U(1).U(7).str()},
      {"code 257 (1 mod 256)", Pack().Array(3).U(257).U(1).U(7).str()},
      {"code nil", Pack().Array(3).Nil().U(1).U(7).str()},
      {"code float", Pack().Array(3).Double(1.0).U(1).U(7).str()},
      {"never-used byte", "\xc1"},
      {"truncated array", "\x93\x01\x01"},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
}

TEST_F(ChpWire, W2_AnyIntegerEncodingIsAcceptedAndTypesAreChecked) {
  StartServer();
  auto d = Dealer();
  // Long encodings of small values are fine.
  const HelloOkMsg ok = AsHelloOk(Call(d, Pack().Array(3).Raw("\xcc\x01").I64(1).U64(77).str()));
  EXPECT_EQ(ok.rid, 77u);
  const KthxbaiMsg k =
      AsKthxbai(Call(d, Pack().Array(5).U64(kIcanhaz).I64(5).Str("a").Str("").U64(0).str()));
  EXPECT_EQ(k.rid, 5u);
  const std::string uuid = NewUuid();
  const KvAckMsg ack = AsKvAck(
      Call(d, Pack().Array(6).I64(kKvSet).Bin(uuid).Str("a/k").I64(0).Bin(MpInt(1)).U64(0).str()));
  EXPECT_EQ(ack.uuid, uuid);
  EXPECT_EQ(ack.status, kOk);

  // Negative values, values too wide for the field and type mismatches are malformed.
  const std::string u = NewUuid();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"negative version", Pack().Array(3).U(kHello).I(-1).U(7).str()},
      {"negative request_id", Pack().Array(3).U(kHello).U(1).I(-7).str()},
      {"version over u32", Pack().Array(3).U(kHello).U(1ull << 32).U(7).str()},
      {"version as float", Pack().Array(3).U(kHello).Double(1.0).U(7).str()},
      {"request_id as str", Pack().Array(3).U(kHello).U(1).Str("7").str()},
      {"request_id nil", Pack().Array(3).U(kHello).U(1).Nil().str()},
      {"ICANHAZ subtree as bin", Pack().Array(5).U(kIcanhaz).U(7).Bin("a").Str("").U(0).str()},
      {"ICANHAZ epoch as bin", Pack().Array(5).U(kIcanhaz).U(7).Str("a").Bin("").U(0).str()},
      {"ICANHAZ negative seq", Pack().Array(5).U(kIcanhaz).U(7).Str("a").Str("").I(-1).str()},
      {"KVSET key as bin", Pack().Array(6).U(kKvSet).Bin(u).Bin("a/k").U(0).Bin("\x01").U(0).str()},
      {"KVSET value as str",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(0).Str("\x01").U(0).str()},
      {"KVSET op as str",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").Str("0").Bin("\x01").U(0).str()},
      {"KVSET op over u8",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(256).Bin("\x01").U(0).str()},
      {"KVSET negative ttl",
       Pack().Array(6).U(kKvSet).Bin(u).Str("a/k").U(0).Bin("\x01").I(-1).str()},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // None of the malformed KVSETs was applied.
  EXPECT_EQ(Set(d, "a/k", MpInt(2)).seq, 2u);
}

TEST_F(ChpWire, W3_TrailingElementsAreIgnoredMissingOnesAreMalformed) {
  StartServer();
  auto d = Dealer();
  const Body hello =
      Call(d, Pack().Array(6).U(kHello).U(1).U(9).Str("x").Array(2).U(1).U(2).Map(0).str());
  EXPECT_EQ(AsHelloOk(hello).rid, 9u);
  const Body kth = Call(d, Pack().Array(6).U(kIcanhaz).U(10).Str("a").Str("").U(0).Nil().str());
  EXPECT_EQ(AsKthxbai(kth).rid, 10u);
  const std::string uuid = NewUuid();
  const KvAckMsg ack = AsKvAck(Call(
      d, Pack().Array(7).U(kKvSet).Bin(uuid).Str("a/k").U(0).Bin(MpInt(1)).U(0).Str("x").str()));
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.seq, 1u);

  const std::vector<std::pair<std::string, std::string>> short_frames = {
      {"HELLO without request_id", Pack().Array(2).U(kHello).U(1).str()},
      {"bare HELLO", Pack().Array(1).U(kHello).str()},
      {"ICANHAZ without seq", Pack().Array(4).U(kIcanhaz).U(11).Str("a").Str("").str()},
      {"KVSET without ttl",
       Pack().Array(5).U(kKvSet).Bin(NewUuid()).Str("a/k").U(0).Bin(MpInt(2)).str()},
      {"bare KVSET", Pack().Array(1).U(kKvSet).str()},
  };
  for (const auto& [what, body] : short_frames) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  EXPECT_EQ(Set(d, "a/k", MpInt(3)).seq, 2u) << "the short KVSET was not applied";
}

TEST_F(ChpWire, W4_UnknownAndWrongDirectionCodesAreDroppedWithoutReply) {
  StartServer();
  auto d = Dealer();
  const std::string u = NewUuid();
  std::vector<std::pair<std::string, std::string>> frames;
  for (uint64_t code : {0, 13, 99, 200, 255}) {
    frames.push_back({"code " + std::to_string(code), Pack().Array(3).U(code).U(1).U(7).str()});
  }
  // Codes the server sends, arriving on its command socket.
  frames.push_back(
      {"HELLO_OK", Pack().Array(5).U(kHelloOk).U(7).U(1).Str("id").Str("tcp://x:1").str()});
  const std::string record = Pack().Array(5).Str("k").U(0).Bin(MpInt(1)).U(0).U(1).str();
  frames.push_back({"KVSYNC", Pack().Array(4).U(kKvSync).U(7).Str("a").Array(1).Raw(record).str()});
  frames.push_back(
      {"KTHXBAI", Pack().Array(7).U(kKthxbai).U(7).Str("a").Str("").U(0).U(0).U(0).str()});
  frames.push_back({"DONE", Pack().Array(3).U(kDone).U(7).U(0).str()});
  frames.push_back({"KVACK", Pack().Array(5).U(kKvAck).Bin(u).U(0).Str("").U(0).str()});
  frames.push_back({"ERROR", Pack().Array(4).U(kError).U(7).U(2).Str("x").str()});
  frames.push_back(
      {"KVPUB",
       Pack().Array(6).U(kKvPub).Str("0123456789abcdef").U(1).U(0).Bin(MpInt(1)).U(0).str()});
  frames.push_back({"POSITION", Pack().Array(3).U(kPosition).Str("").U(0).str()});
  frames.push_back({"HUGZ", Pack().Array(5).U(kHugz).U(1).Str("id").U(0).U(0).str()});
  for (const auto& [what, body] : frames) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // Nothing was applied: the server holds no subtree.
  EXPECT_EQ(AsDone(Call(d, Icanhaz(1, "*"))).subtrees, 0u);
}

TEST_F(ChpWire, W5_RepliesAreOneFrameAndEnvelopeFramesComeBack) {
  StartServer();
  auto d = Dealer();
  // The DEALER sees the body alone (RecvReply checks one frame).
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 1))).rid, 1u);
  // A REQ-style empty delimiter comes back unchanged.
  SendFrames(d, {"", Hello(1, 2)});
  auto frames = RecvFrames(d, kReplyTimeout);
  ASSERT_TRUE(frames);
  ASSERT_EQ(frames->size(), 2u);
  EXPECT_EQ((*frames)[0].size(), 0u);
  EXPECT_EQ(AsHelloOk(Body((*frames)[1].to_string())).rid, 2u);
  // Every frame before the last is envelope.
  SendFrames(d, {"hop-a", "hop-b", Hello(1, 3)});
  frames = RecvFrames(d, kReplyTimeout);
  ASSERT_TRUE(frames);
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_EQ((*frames)[0].to_string(), "hop-a");
  EXPECT_EQ((*frames)[1].to_string(), "hop-b");
  EXPECT_EQ(AsHelloOk(Body((*frames)[2].to_string())).rid, 3u);
  // A multi-frame reply (snapshot) keeps the envelope on every frame.
  ASSERT_EQ(Set(d, "a/k", MpInt(1)).status, kOk);
  SendFrames(d, {"", Icanhaz(4, "a")});
  for (uint64_t code : {kKvSync, kKthxbai}) {
    frames = RecvFrames(d, kReplyTimeout);
    ASSERT_TRUE(frames);
    ASSERT_EQ(frames->size(), 2u);
    EXPECT_EQ((*frames)[0].size(), 0u);
    EXPECT_EQ(Body((*frames)[1].to_string()).code(), code);
  }
}

TEST_F(ChpWire, W6_PublisherMessagesAreTopicAndBody) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  // TryRecvPub checks two frames and the topic of each message (W-6).
  const HugzMsg hugz = AsHugz(Subscribe(sub, ""));
  EXPECT_EQ(hugz.version, 1u);
  ASSERT_EQ(Set(d, "a/x/y", MpInt(1)).status, kOk);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/x/y");
  const PositionMsg pos = AsPosition(WaitPub(sub, IsPosition("a")));
  EXPECT_EQ(pos.subtree, "a");
  EXPECT_EQ(pos.seq, 1u);
  size_t seen = 0;
  const auto deadline = Clock::now() + 1s;
  while (Clock::now() < deadline) {
    if (TryRecvPub(sub, 50ms)) ++seen;
  }
  EXPECT_GT(seen, 0u) << "heartbeat traffic";
}

TEST_F(ChpWire, W7_UuidIs16BytesOpAtMost2) {
  StartServer();
  auto d = Dealer();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"15-byte UUID", KvSet(std::string(15, 'u'), "a/k", kOpSet, MpInt(1))},
      {"17-byte UUID", KvSet(std::string(17, 'u'), "a/k", kOpSet, MpInt(1))},
      {"empty UUID", KvSet("", "a/k", kOpSet, MpInt(1))},
      {"UUID as str", Pack()
                          .Array(6)
                          .U(kKvSet)
                          .Str(std::string(16, 'u'))
                          .Str("a/k")
                          .U(0)
                          .Bin(MpInt(1))
                          .U(0)
                          .str()},
      {"op 3", KvSet(NewUuid(), "a/k", 3, MpInt(1))},
      {"op 255", KvSet(NewUuid(), "a/k", 255, MpInt(1))},
  };
  for (const auto& [what, body] : bad) {
    SCOPED_TRACE(what);
    SendBody(d, body);
    ExpectNoReply(d, what);
  }
  // op 2 is well-formed but reserved to the server: KVACK kMalformed (S-8).
  EXPECT_EQ(Write(d, "a/k", kOpExpire, "").status, kMalformed);
  EXPECT_EQ(Set(d, "a/k", MpInt(1)).seq, 1u);
}

TEST_F(ChpWire, W8_OversizedBodiesAndDecoderLimitsAreMalformed) {
  StartServer();
  auto d = Dealer();
  // Body size limit: exactly 16,778,240 bytes decodes (and its value is too large, V-2);
  // one byte more is malformed.
  const std::string uuid = NewUuid();
  const std::string at_limit = KvSet(uuid, "a/k", kOpSet, ValueOfSize(kMaxBodyBytes - 31));
  ASSERT_EQ(at_limit.size(), kMaxBodyBytes);
  const KvAckMsg ack = AsKvAck(Call(d, at_limit));
  EXPECT_EQ(ack.uuid, uuid);
  EXPECT_EQ(ack.status, kValueTooLarge);
  const std::string over = KvSet(NewUuid(), "a/k", kOpSet, ValueOfSize(kMaxBodyBytes - 30));
  ASSERT_EQ(over.size(), kMaxBodyBytes + 1);
  SendBody(d, over);
  ExpectNoReply(d, "a body over 16,778,240 bytes");

  // Decoding limits on bodies: the body array itself is one level of depth.
  auto hello_with = [](uint64_t rid, const std::string& extra) {
    return Pack().Array(4).U(kHello).U(1).U(rid).Raw(extra).str();
  };
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(1, Nested(15)))).rid, 1u) << "depth 16";
  SendBody(d, hello_with(2, Nested(16)));
  ExpectNoReply(d, "a body of depth 17");
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(3, MapOf(1024)))).rid, 3u);
  SendBody(d, hello_with(4, MapOf(1025)));
  ExpectNoReply(d, "a map of 1,025 pairs");
  {
    Pack big;
    big.Array(1 << 20);
    for (int i = 0; i < (1 << 20); ++i) big.Nil();
    EXPECT_EQ(AsHelloOk(Call(d, hello_with(5, big.str()))).rid, 5u) << "array of 1,048,576";
    Pack bigger;
    bigger.Array((1 << 20) + 1);
    for (int i = 0; i < (1 << 20) + 1; ++i) bigger.Nil();
    SendBody(d, hello_with(6, bigger.str()));
    ExpectNoReply(d, "an array of 1,048,577 elements");
  }
  EXPECT_EQ(AsHelloOk(Call(d, hello_with(7, Pack().Ext(3, std::string(65'535, 'e')).str()))).rid,
            7u);
  SendBody(d, hello_with(8, Pack().Ext(3, std::string(65'537, 'e')).str()));
  ExpectNoReply(d, "an ext of 65,537 bytes");
  // (Values breaking the limits get kBadValue: V1_*.)
}

TEST_F(ChpWire, W9_MalformedFramesAreDroppedAndOtherPeersKeepBeingServed) {
  StartServer();
  auto bad = Dealer();
  auto good = Dealer();
  auto sub = Sub();
  Subscribe(sub, "g/");
  const std::string kvset = KvSet(NewUuid(), "g/bad", kOpSet, MpInt(1));
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"garbage bytes", {std::string("\xde\xad\xbe\xef\x00\xff", 6)}},
      {"empty frame", {""}},
      {"msgpack non-array", {MpStr("not an array")}},
      {"unknown command 99", {Pack().Array(3).U(99).U(1).U(2).str()}},
      {"truncated KVSET", {kvset.substr(0, kvset.size() - 3)}},
      {"3-frame message of garbage", {"\xff\xff", "\x00", "\xc1"}},
      {"3-frame message ending in a truncated KVSET", {"x", "y", kvset.substr(0, 10)}},
  };
  uint64_t seq = 0;
  for (const auto& [what, frames] : cases) {
    SCOPED_TRACE(what);
    SendFrames(bad, frames);
    // Another peer is served: commands and the publisher work.
    EXPECT_EQ(AsHelloOk(Call(good, Hello(1, 1))).rid, 1u);
    const KvAckMsg ack = Set(good, "g/ok", MpInt(static_cast<int64_t>(seq)));
    EXPECT_EQ(ack.seq, ++seq);
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.topic, "g/ok") << "nothing from the malformed frame was applied";
    EXPECT_EQ(pub.seq, seq);
    // The sender itself is not disconnected and got no reply.
    ExpectNoReply(bad, what);
  }
}

TEST_F(ChpWire, W10_WellFormedInvalidContentIsAnswered) {
  StartServer();
  auto d = Dealer();
  EXPECT_EQ(Set(d, "no-slash", MpInt(1)).status, kBadKey);
  const ErrorMsg e = AsError(Call(d, Icanhaz(3, "$bad")));
  EXPECT_EQ(e.rid, 3u);
  EXPECT_EQ(e.code, kBadKey);
}

TEST_F(ChpWire, W11_ServerSpeaksOnlyTheVersionAskedFor) {
  StartServer();
  auto d = Dealer();
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 1))).version, 1u);
  const Body b = Call(d, Hello(2, 2));
  EXPECT_EQ(b.code(), kError) << "a v2 HELLO must not be answered with HELLO_OK";
  EXPECT_EQ(AsError(b).code, kBadVersion);
  auto sub = Sub();
  EXPECT_EQ(AsHugz(Subscribe(sub, "$HUGZ")).version, 1u);
}

// =============================================================================================
// §7 Server: epochs and sequences

TEST_F(ChpWire, S3_NewSubtreeGetsANewRandomHexEpoch) {
  StartServer();
  std::string first_epoch;
  {
    auto d = Dealer();
    // Neither a rejected set nor a delete of a missing key creates a subtree.
    EXPECT_EQ(Set(d, "a/k", "\xc1").status, kBadValue);
    const KvAckMsg noop = Del(d, "a/k");
    EXPECT_EQ(noop.status, kOk);
    EXPECT_EQ(noop.epoch, "");
    EXPECT_EQ(noop.seq, 0u);
    const KvAckMsg a = Set(d, "a/k", MpInt(1));
    const KvAckMsg b = Set(d, "b/k", MpInt(1));
    EXPECT_TRUE(IsEpoch(a.epoch)) << a.epoch;
    EXPECT_TRUE(IsEpoch(b.epoch)) << b.epoch;
    EXPECT_NE(a.epoch, b.epoch);
    EXPECT_EQ(Set(d, "a/k2", MpInt(2)).epoch, a.epoch);
    first_epoch = a.epoch;
  }
  // A restarted server creates the subtree again with a new epoch.
  StopServer();
  StartServer();
  auto d = Dealer();
  const KvAckMsg again = Set(d, "a/k", MpInt(1));
  EXPECT_TRUE(IsEpoch(again.epoch));
  EXPECT_EQ(again.seq, 1u);
  EXPECT_NE(again.epoch, first_epoch);
}

TEST_F(ChpWire, S4_SubtreeKeepsEpochAndSeqWhenEmptied) {
  StartServer();
  auto d = Dealer();
  const KvAckMsg set = Set(d, "e/k", MpInt(1));
  const KvAckMsg del = Del(d, "e/k");
  EXPECT_EQ(del.epoch, set.epoch);
  EXPECT_EQ(del.seq, 2u);
  const SyncReply snap = Snapshot(d, 1, "e");
  EXPECT_EQ(snap.end.count, 0u);
  EXPECT_EQ(snap.end.epoch, set.epoch);
  EXPECT_EQ(snap.end.seq, 2u);
  auto sub = Sub();
  const PositionMsg pos = AsPosition(Subscribe(sub, "e/"));
  EXPECT_EQ(pos.epoch, set.epoch);
  EXPECT_EQ(pos.seq, 2u);
  const KvAckMsg again = Set(d, "e/k", MpInt(1));
  EXPECT_EQ(again.epoch, set.epoch);
  EXPECT_EQ(again.seq, 3u);
}

TEST_F(ChpWire, S5_SequenceStartsAtOneAndGrowsByOnePerChange) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  EXPECT_EQ(Set(d, "a/x", MpInt(1)).seq, 1u);
  EXPECT_EQ(Set(d, "a/x", MpInt(1)).seq, 2u) << "the same value again is a change";
  EXPECT_EQ(Set(d, "a/y", MpInt(1)).seq, 3u);
  EXPECT_EQ(Set(d, "b/x", MpInt(1)).seq, 1u) << "sequences are per subtree";
  EXPECT_EQ(Del(d, "a/x").seq, 4u);
  const KvAckMsg noop = Del(d, "a/x");
  EXPECT_EQ(noop.status, kOk);
  EXPECT_EQ(noop.seq, 4u) << "a delete of a missing key takes no sequence";
  EXPECT_EQ(Set(d, "a/z", MpInt(1)).seq, 5u);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.seq, seq);
    if (seq == 5) {
      EXPECT_EQ(pub.topic, "a/z") << "the no-op delete was not published";
    }
  }
}

TEST_F(ChpWire, S6_UnheldSubtreeIsReportedUnborn) {
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "held/k", MpInt(1)).status, kOk);
  auto sub = Sub();
  const PositionMsg pos = AsPosition(Subscribe(sub, "u/"));
  EXPECT_EQ(pos.epoch, "");
  EXPECT_EQ(pos.seq, 0u);
  const SyncReply snap = Snapshot(d, 1, "u");
  EXPECT_TRUE(snap.batches.empty());
  EXPECT_EQ(snap.end.epoch, "");
  EXPECT_EQ(snap.end.seq, 0u);
  EXPECT_EQ(snap.end.count, 0u);
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  const KvAckMsg ack = Del(d, "u/k");
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.epoch, "");
  EXPECT_EQ(ack.seq, 0u);
}

// =============================================================================================
// §7 Server: updates

TEST_F(ChpWire, S7_EveryKvSetGetsOneKvAck) {
  StartServer();
  auto d = Dealer();
  // Pipelined: accepted, rejected for each reason, no-op deletes and a duplicate.
  std::vector<std::string> uuids;
  std::vector<std::string> bodies;
  auto add = [&](std::string uuid, std::string_view key, uint64_t op, std::string_view value,
                 uint64_t ttl = 0) {
    bodies.push_back(KvSet(uuid, key, op, value, ttl));
    uuids.push_back(std::move(uuid));
  };
  const std::string dup = NewUuid();
  add(dup, "a/k", kOpSet, MpInt(1));
  add(NewUuid(), "a/", kOpSet, MpInt(1));
  add(NewUuid(), "a/k", kOpExpire, "");
  add(NewUuid(), "a/k", kOpSet, ValueOfSize(kMaxValueBytes + 1));
  add(NewUuid(), "a/k", kOpSet, "\xc1");
  add(NewUuid(), "a/k", kOpSet, MpInt(1), kMaxTtlMs + 1);
  add(NewUuid(), "a/missing", kOpDelete, "");
  add(NewUuid(), "nope/missing", kOpDelete, "");
  add(dup, "a/k", kOpSet, MpInt(1));
  for (int i = 0; i < 100; ++i) add(NewUuid(), "b/k" + std::to_string(i % 7), kOpSet, MpInt(i));
  for (const auto& b : bodies) SendBody(d, b);
  for (size_t i = 0; i < uuids.size(); ++i) {
    const KvAckMsg ack = AsKvAck(RecvReply(d));
    EXPECT_EQ(ack.uuid, uuids[i]) << "KVACK " << i << " out of order or for the wrong UUID";
  }
  // Exactly one each: the next reply is the sentinel's.
  ExpectNoReply(d, "the KVSETs already acknowledged");
  // A KVSET that cannot be decoded gets none.
  const std::string body = KvSet(NewUuid(), "a/k", kOpSet, MpInt(1));
  SendBody(d, body.substr(0, body.size() - 1));
  ExpectNoReply(d, "a truncated KVSET");
}

TEST_F(ChpWire, S8_RejectedKvSetsAreNotAppliedAndTakeNoSequence) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "r/");
  ASSERT_EQ(Set(d, "r/a", MpInt(1)).seq, 1u);
  ASSERT_EQ(NextKvPub(sub).seq, 1u);
  struct Case {
    std::string what, key;
    uint64_t op;
    std::string value;
    uint64_t ttl, status;
  };
  const std::vector<Case> cases = {
      {"bad key", "r/", kOpSet, MpInt(2), 0, kBadKey},
      {"op 2", "r/a", kOpExpire, "", 0, kMalformed},
      {"value too large", "r/a", kOpSet, ValueOfSize(kMaxValueBytes + 1), 0, kValueTooLarge},
      {"not msgpack", "r/a", kOpSet, "\xc1", 0, kBadValue},
      {"ttl over 30 days", "r/a", kOpSet, MpInt(2), kMaxTtlMs + 1, kBadTtl},
      {"delete with ttl over 30 days", "r/a", kOpDelete, "", kMaxTtlMs + 1, kBadTtl},
      {"not msgpack in a new subtree", "fresh/k", kOpSet, "\xc1", 0, kBadValue},
      {"ttl over 30 days in a new subtree", "fresh/k", kOpSet, MpInt(1), kMaxTtlMs + 1, kBadTtl},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(Write(d, c.key, c.op, c.value, c.ttl).status, c.status);
  }
  // Nothing taken: the next change is seq 2 and is the next KVPUB.
  const KvAckMsg next = Set(d, "r/b", MpInt(3), kMaxTtlMs);  // exactly 30 days is allowed
  EXPECT_EQ(next.status, kOk);
  EXPECT_EQ(next.seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "r/b");
  EXPECT_EQ(pub.seq, 2u);
  const auto snap = Snapshot(d, 1, "r").by_key();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap.at("a").value, MpInt(1)) << "r/a unchanged";
  EXPECT_EQ(snap.at("a").seq, 1u);
  const SyncReply fresh = Snapshot(d, 2, "fresh");
  EXPECT_EQ(fresh.end.epoch, "") << "a rejected set does not create a subtree";
  // (kFull needs max_keys, which the server binary does not expose: not tested here.)
}

TEST_F(ChpWire, S9_KvAckCarriesThePositionAfterTheChange) {
  StartServer();
  auto d = Dealer();
  const KvAckMsg set = Set(d, "p/a", MpInt(1));
  EXPECT_EQ(set.status, kOk);
  EXPECT_EQ(set.seq, 1u);
  const KvAckMsg set2 = Set(d, "p/b", MpInt(1));
  EXPECT_EQ(set2.epoch, set.epoch);
  EXPECT_EQ(set2.seq, 2u);
  const KvAckMsg del = Del(d, "p/a");
  EXPECT_EQ(del.epoch, set.epoch);
  EXPECT_EQ(del.seq, 3u);
  const KvAckMsg noop = Del(d, "p/a");
  EXPECT_EQ(noop.status, kOk);
  EXPECT_EQ(noop.epoch, set.epoch);
  EXPECT_EQ(noop.seq, 3u) << "current position for a delete of a missing key";
  const KvAckMsg unborn = Del(d, "q/a");
  EXPECT_EQ(unborn.status, kOk);
  EXPECT_EQ(unborn.epoch, "");
  EXPECT_EQ(unborn.seq, 0u);
}

TEST_F(ChpWire, S10_DuplicateUuidGetsTheRememberedKvAckAndIsAppliedOnce) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  const std::string u = NewUuid();
  const std::string first = Call(d, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes();
  ASSERT_EQ(AsKvAck(Body(first)).seq, 1u);
  ASSERT_EQ(Set(d, "a/y", MpInt(2)).seq, 2u);
  // The same KVSET again, and the same UUID with other content: the remembered KVACK (position
  // (E, 1), not the current one) and no change.
  EXPECT_EQ(Call(d, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes(), first);
  EXPECT_EQ(Call(d, KvSet(u, "a/other", kOpSet, MpInt(9))).bytes(), first);
  EXPECT_EQ(Call(d, KvSet(u, "a/x", kOpDelete, "")).bytes(), first);
  // From another connection too.
  auto other = Dealer();
  EXPECT_EQ(Call(other, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes(), first);
  const KvAckMsg next = Set(d, "a/z", MpInt(3));
  EXPECT_EQ(next.seq, 3u) << "the duplicates took no sequence";
  EXPECT_EQ(NextKvPub(sub).seq, 1u);
  EXPECT_EQ(NextKvPub(sub).seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/z") << "the duplicates were not published";
  EXPECT_EQ(pub.seq, 3u);
  const auto snap = Snapshot(d, 1, "a").by_key();
  EXPECT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap.count("other"), 0u);
}

TEST_F(ChpWire, S10_RejectedKvSetsDoNotPushAcceptedUuidsOutOfTheWindow) {
  // The window holds the most recent 65,536 KVSETs answered with status 0; rejected ones (which
  // the server MAY remember) must not evict them.
  StartServer();
  auto d = Dealer();
  const std::string u = NewUuid();
  const std::string first = Call(d, KvSet(u, "w/x", kOpSet, MpInt(1))).bytes();
  ASSERT_EQ(AsKvAck(Body(first)).status, kOk);
  for (size_t i = 0; i < kUuidWindow; ++i) SendBody(d, KvSet(NewUuid(), "w/", kOpSet, MpInt(1)));
  for (size_t i = 0; i < kUuidWindow; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kBadKey);
  EXPECT_EQ(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1))).bytes(), first)
      << "an accepted UUID was forgotten because of rejected KVSETs";
  EXPECT_EQ(Set(d, "w/y", MpInt(1)).seq, 2u) << "the retry was applied again";
}

TEST_F(ChpWire, S10_UuidIsTreatedAsNewAfterLeavingTheWindow) {
  StartServer();
  auto d = Dealer();
  const std::string u = NewUuid();
  ASSERT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, 1u);
  // 65,535 newer accepted KVSETs: u is still in the window.
  for (size_t i = 1; i < kUuidWindow; ++i) SendBody(d, KvSet(NewUuid(), "w/y", kOpSet, MpInt(1)));
  for (size_t i = 1; i < kUuidWindow; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  EXPECT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, 1u) << "still remembered";
  // One more pushes it out; then it is a new update.
  ASSERT_EQ(Set(d, "w/y", MpInt(1)).seq, kUuidWindow + 1);
  EXPECT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, kUuidWindow + 2);
}

// =============================================================================================
// §7 Server: publishing

TEST_F(ChpWire, S11_EachChangeIsPublishedOnceInSequenceOrder) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "");
  // A model of what must be published, per subtree.
  std::map<std::string, std::vector<Rec>> expected;
  std::map<std::string, uint64_t> seqs;
  std::set<std::string> present;
  size_t kvsets = 0;
  auto apply = [&](const std::string& key, uint64_t op, const std::string& value, uint64_t ttl) {
    SendBody(d, KvSet(NewUuid(), key, op, value, ttl));
    ++kvsets;
    if (op == kOpDelete && !present.erase(key)) return;  // no-op delete
    if (op == kOpSet) present.insert(key);
    const std::string st = SubtreeOf(key);
    expected[st].push_back(
        {key.substr(st.size() + 1), op, op == kOpSet ? value : "", ttl, ++seqs[st]});
  };
  const char* subtrees[] = {"a", "b", "c"};
  for (int i = 0; i < 600; ++i) {
    const std::string key = std::string(subtrees[i % 3]) + "/k" + std::to_string(i % 7);
    if (i % 5 == 4) {
      apply(key, kOpDelete, "", 0);
    } else {
      apply(key, kOpSet, MpInt(i), i % 4 == 0 ? 60'000 : 0);
    }
    if (i % 50 == 0) {  // rejected: never published
      SendBody(d, KvSet(NewUuid(), key, kOpSet, "\xc1"));
      ++kvsets;
    }
  }
  for (size_t i = 0; i < kvsets; ++i) RecvReply(d);
  size_t total = 0;
  for (const auto& [st, recs] : expected) total += recs.size();
  std::map<std::string, std::vector<Rec>> got;
  for (size_t i = 0; i < total; ++i) {
    const KvPubMsg pub = NextKvPub(sub);
    got[SubtreeOf(pub.topic)].push_back(RecOf(pub));
  }
  EXPECT_EQ(got, expected);
  // Nothing more: the next KVPUB is a new change.
  ASSERT_EQ(Set(d, "m/end", MpInt(1)).seq, 1u);
  EXPECT_EQ(NextKvPub(sub).topic, "m/end");
}

TEST_F(ChpWire, S12_PositionNeverRunsAheadOfPublishedChanges) {
  StartServer({"--heartbeat-ms", "10"});
  auto d = Dealer();
  const KvAckMsg first = Set(d, "p/k", MpInt(0));
  auto sub = Sub();
  const PositionMsg welcome = AsPosition(Subscribe(sub, "p/"));
  EXPECT_EQ(welcome.seq, 1u);
  constexpr uint64_t kChanges = 3000;
  for (uint64_t i = 0; i < kChanges; ++i) {
    SendBody(d, KvSet(NewUuid(), "p/k" + std::to_string(i % 10), kOpSet,
                      MpInt(static_cast<int64_t>(i))));
  }
  uint64_t last = 1;
  size_t positions = 0;
  while (last < kChanges + 1) {
    const auto m = TryRecvPub(sub, 10s);
    ASSERT_TRUE(m) << "stalled at seq " << last;
    if (m->code() == kKvPub) {
      const KvPubMsg pub = AsKvPub(*m);
      ASSERT_EQ(pub.seq, last + 1);
      last = pub.seq;
    } else if (m->code() == kPosition) {
      const PositionMsg pos = AsPosition(*m);
      EXPECT_EQ(pos.epoch, first.epoch);
      EXPECT_EQ(pos.seq, last) << "a POSITION that is not the position at publishing time";
      ++positions;
    }
  }
  for (uint64_t i = 0; i < kChanges; ++i) RecvReply(d);
  // After the last change, ticks keep announcing exactly the last position.
  EXPECT_EQ(AsPosition(WaitPub(sub, IsPosition("p"))).seq, kChanges + 1);
  RecordProperty("positions_interleaved", static_cast<int>(positions));
}

TEST_F(ChpWire, S13_SubscriptionsAreWelcomedAtOnce) {
  // With a 60 s heartbeat any HUGZ or POSITION within the timeout is a welcome.
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/x", MpInt(1)).status, kOk);
  const KvAckMsg a = Set(d, "a/y", MpInt(1));
  auto all = Sub();
  const HugzMsg h1 = AsHugz(Subscribe(all, ""));
  EXPECT_EQ(h1.id, server_id_);
  EXPECT_EQ(h1.subtrees, 1u);
  auto hugz = Sub();
  EXPECT_EQ(AsHugz(Subscribe(hugz, "$HUGZ")).id, server_id_);
  auto s = Sub();
  const PositionMsg held = AsPosition(Subscribe(s, "a/"));
  EXPECT_EQ(held.epoch, a.epoch);
  EXPECT_EQ(held.seq, 2u);
  const PositionMsg unborn = AsPosition(Subscribe(s, "nope/"));
  EXPECT_EQ(unborn.epoch, "");
  EXPECT_EQ(unborn.seq, 0u);
  // A repeat of a topic another SUB holds is welcomed too, and so is a second "$HUGZ".
  auto s2 = Sub();
  EXPECT_EQ(AsPosition(Subscribe(s2, "a/")).seq, 2u);
  auto hugz2 = Sub();
  EXPECT_EQ(AsHugz(Subscribe(hugz2, "$HUGZ")).id, server_id_);
}

// =============================================================================================
// §7 Server: sync replies

TEST_F(ChpWire, S14_IcanhazWithInvalidSubtreeGetsErrorBadKey) {
  StartServer();
  auto d = Dealer();
  uint64_t rid = 10;
  for (const std::string& subtree :
       {std::string(""), std::string("$HUGZ"), std::string("a/b"), std::string(256, 's'),
        std::string("a\x01"), std::string("\xC0\xAF"), std::string("**")}) {
    SCOPED_TRACE(testing::PrintToString(subtree));
    const Body b = Call(d, Icanhaz(++rid, subtree));
    if (subtree == "**") {  // valid (only "*" is reserved): an unborn snapshot
      EXPECT_EQ(AsKthxbai(b).rid, rid);
      continue;
    }
    const ErrorMsg e = AsError(b);
    EXPECT_EQ(e.rid, rid);
    EXPECT_EQ(e.code, kBadKey);
  }
}

TEST_F(ChpWire, S15_SnapshotIsOneInstantWithCountAndPosition) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "s/");
  ASSERT_EQ(Set(d, "s/a", MpInt(1)).seq, 1u);
  ASSERT_EQ(Set(d, "s/b", MpStr("two"), 60'000).seq, 2u);
  ASSERT_EQ(Set(d, "s/a", MpInt(3)).seq, 3u);
  ASSERT_EQ(Set(d, "s/c", MpInt(4)).seq, 4u);
  const KvAckMsg del = Del(d, "s/c");
  ASSERT_EQ(del.seq, 5u);
  // A KVSET right behind the ICANHAZ is not in the snapshot.
  SendBody(d, Icanhaz(7, "s"));
  const std::string u = NewUuid();
  SendBody(d, KvSet(u, "s/d", kOpSet, MpInt(5)));
  const SyncReply snap = ReadSync(d, 7, "s");
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  EXPECT_EQ(snap.end.epoch, del.epoch);
  EXPECT_EQ(snap.end.seq, 5u);
  EXPECT_EQ(snap.end.count, snap.records().size());
  const auto recs = snap.by_key();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs.at("a"), (Rec{"a", kOpSet, MpInt(3), 0, 3}));
  const Rec& b = recs.at("b");
  EXPECT_EQ(b.op, kOpSet);
  EXPECT_EQ(b.value, MpStr("two"));
  EXPECT_EQ(b.seq, 2u);
  EXPECT_GE(b.ttl, 1u);
  EXPECT_LE(b.ttl, 60'000u) << "remaining time to live";
  const KvAckMsg ack = AsKvAck(RecvReply(d));
  EXPECT_EQ(ack.uuid, u);
  EXPECT_EQ(ack.seq, 6u);
  const KvPubMsg later = AsKvPub(WaitPub(sub, IsKvPub("s/d")));
  EXPECT_GT(later.seq, snap.end.seq);
}

TEST_F(ChpWire, S16_SnapshotBatchesHoldAtMost512RecordsAnd256KiB) {
  StartServer();
  auto d = Dealer();
  constexpr size_t kSmall = 1300;
  for (size_t i = 0; i < kSmall; ++i) {
    SendBody(d, KvSet(NewUuid(), "small/k" + std::to_string(i), kOpSet, MpInt(1)));
  }
  constexpr size_t kBig = 10;
  for (size_t i = 0; i < kBig; ++i) {
    SendBody(d, KvSet(NewUuid(), "big/k" + std::to_string(i), kOpSet, ValueOfSize(100'000)));
  }
  for (size_t i = 0; i < kSmall + kBig; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);

  const SyncReply small = Snapshot(d, 1, "small");
  EXPECT_EQ(small.records().size(), kSmall);
  EXPECT_EQ(small.end.count, kSmall);
  EXPECT_GE(small.batches.size(), 3u);
  for (const auto& b : small.batches) EXPECT_LE(b.records.size(), kBatchRecords);

  const SyncReply big = Snapshot(d, 2, "big");
  EXPECT_EQ(big.records().size(), kBig);
  EXPECT_EQ(big.end.count, kBig);
  EXPECT_GT(big.batches.size(), 1u);
  for (const auto& b : big.batches) {
    ASSERT_FALSE(b.records.empty());
    size_t bytes = 0;
    for (size_t i = 0; i + 1 < b.records.size(); ++i) {
      bytes += b.records[i].key.size() + b.records[i].value.size() + 24;
    }
    EXPECT_LT(bytes, kBatchBytes) << "only the last record of a batch may cross 256 KiB";
  }
}

TEST_F(ChpWire, S17_ResumeSendsExactlyTheMissingChanges) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "r/");
  Set(d, "r/a", MpInt(1));
  Set(d, "r/b", MpInt(2));
  Set(d, "r/a", MpInt(3));
  Set(d, "r/c", MpInt(4), 60'000);
  Del(d, "r/b");
  Del(d, "r/missing");  // no change
  Set(d, "r/d", MpStr("five"));
  const KvAckMsg last = Set(d, "r/e", MpInt(6));
  ASSERT_EQ(last.seq, 7u);
  std::vector<Rec> published;
  for (int i = 0; i < 7; ++i) published.push_back(RecOf(NextKvPub(sub)));

  const SyncReply from3 = Snapshot(d, 1, "r", last.epoch, 3);
  EXPECT_EQ(from3.end.mode, kModeResume);
  EXPECT_EQ(from3.end.epoch, last.epoch);
  EXPECT_EQ(from3.end.seq, 7u);
  EXPECT_EQ(from3.end.count, 4u);
  EXPECT_EQ(from3.records(), std::vector<Rec>(published.begin() + 3, published.end()));

  const SyncReply from0 = Snapshot(d, 2, "r", last.epoch, 0);
  EXPECT_EQ(from0.end.mode, kModeResume);
  EXPECT_EQ(from0.records(), published);

  const SyncReply current = Snapshot(d, 3, "r", last.epoch, 7);
  EXPECT_EQ(current.end.mode, kModeResume);
  EXPECT_EQ(current.end.count, 0u);
  EXPECT_EQ(current.end.seq, 7u);
  EXPECT_TRUE(current.batches.empty());
}

TEST_F(ChpWire, S17_ResumeFallsBackToSnapshotWhenItCannot) {
  StartServer();
  auto d = Dealer();
  Set(d, "r/a", MpInt(1));
  const KvAckMsg r = Set(d, "r/b", MpInt(2));
  auto expect_snapshot = [&](const SyncReply& s, size_t count, const std::string& epoch,
                             uint64_t seq) {
    EXPECT_EQ(s.end.mode, kModeSnapshot);
    EXPECT_EQ(s.end.count, count);
    EXPECT_EQ(s.records().size(), count);
    EXPECT_EQ(s.end.epoch, epoch);
    EXPECT_EQ(s.end.seq, seq);
  };
  std::string wrong = r.epoch;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  {
    SCOPED_TRACE("wrong epoch");
    expect_snapshot(Snapshot(d, 1, "r", wrong, 1), 2, r.epoch, 2);
  }
  {
    SCOPED_TRACE("seq above the current one");
    expect_snapshot(Snapshot(d, 2, "r", r.epoch, 3), 2, r.epoch, 2);
  }
  {
    SCOPED_TRACE("unborn subtree");
    expect_snapshot(Snapshot(d, 3, "zz", r.epoch, 1), 0, "", 0);
  }
  // Too old: 300 changes; the backlog holds the last 256 (45..300).
  for (int i = 0; i < 300; ++i)
    SendBody(d, KvSet(NewUuid(), "o/k" + std::to_string(i % 20), kOpSet, MpInt(i)));
  std::string o_epoch;
  for (int i = 0; i < 300; ++i) o_epoch = AsKvAck(RecvReply(d)).epoch;
  {
    SCOPED_TRACE("too old");
    expect_snapshot(Snapshot(d, 4, "o", o_epoch, 10), 20, o_epoch, 300);
  }
  {
    SCOPED_TRACE("oldest resumable position with the default backlog of 256");
    const SyncReply s = Snapshot(d, 5, "o", o_epoch, 44);
    EXPECT_EQ(s.end.mode, kModeResume);
    EXPECT_EQ(s.end.count, 256u);
    ASSERT_EQ(s.records().size(), 256u);
    EXPECT_EQ(s.records().front().seq, 45u);
    EXPECT_EQ(s.records().back().seq, 300u);
  }
  {
    SCOPED_TRACE("one change older");
    expect_snapshot(Snapshot(d, 6, "o", o_epoch, 43), 20, o_epoch, 300);
  }
  // A change over the backlog's 256 KiB empties it: resuming across it gives a snapshot.
  Set(d, "g/a", MpInt(1));
  Set(d, "g/big", ValueOfSize(300'000));
  const KvAckMsg g = Set(d, "g/c", MpInt(3));
  {
    SCOPED_TRACE("across a change larger than the backlog");
    expect_snapshot(Snapshot(d, 7, "g", g.epoch, 1), 3, g.epoch, 3);
  }
  const SyncReply after = Snapshot(d, 8, "g", g.epoch, 2);
  EXPECT_EQ(after.end.mode, kModeResume);
  ASSERT_EQ(after.records().size(), 1u);
  EXPECT_EQ(after.records()[0].seq, 3u);
}

TEST_F(ChpWire, S18_AllSubtreesGivesOneSnapshotEachThenDone) {
  StartServer();
  auto d = Dealer();
  SendBody(d, Icanhaz(1, "*"));
  const DoneMsg none = AsDone(RecvReply(d));
  EXPECT_EQ(none.rid, 1u);
  EXPECT_EQ(none.subtrees, 0u);

  std::map<std::string, std::map<std::string, std::string>> model;
  for (int i = 0; i < 3; ++i) model["a"]["k" + std::to_string(i)] = MpInt(i);
  model["b"]["only"] = MpStr("b");
  for (int i = 0; i < 600; ++i) model["c"]["k" + std::to_string(i)] = MpInt(i);
  size_t n = 0;
  for (const auto& [st, kv] : model) {
    for (const auto& [k, v] : kv) {
      SendBody(d, KvSet(NewUuid(), st + "/" + k, kOpSet, v));
      ++n;
    }
  }
  SendBody(d, KvSet(NewUuid(), "d/gone", kOpSet, MpInt(1)));
  SendBody(d, KvSet(NewUuid(), "d/gone", kOpDelete, ""));
  for (size_t i = 0; i < n + 2; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  model["d"];  // held, empty (S-4)

  // Epoch and seq of a "*" request are ignored: every reply is a snapshot.
  SendBody(d, Icanhaz(2, "*", "0123456789abcdef", 5));
  std::map<std::string, SyncReply> replies;
  SyncReply current;
  while (true) {
    Body b = RecvReply(d);
    if (b.code() == kDone) {
      const DoneMsg done = AsDone(b);
      EXPECT_EQ(done.rid, 2u);
      EXPECT_EQ(done.subtrees, model.size());
      EXPECT_TRUE(current.batches.empty()) << "KVSYNC without KTHXBAI before DONE";
      break;
    }
    if (b.code() == kKvSync) {
      KvSyncMsg s = AsKvSync(b);
      EXPECT_EQ(s.rid, 2u);
      if (!current.batches.empty()) {
        EXPECT_EQ(s.subtree, current.batches.front().subtree) << "subtree replies interleaved";
      }
      current.batches.push_back(std::move(s));
      continue;
    }
    const KthxbaiMsg k = AsKthxbai(b);
    EXPECT_EQ(k.rid, 2u);
    EXPECT_EQ(k.mode, kModeSnapshot);
    for (const auto& batch : current.batches) EXPECT_EQ(batch.subtree, k.subtree);
    current.end = k;
    EXPECT_EQ(replies.count(k.subtree), 0u) << "two replies for " << k.subtree;
    replies[k.subtree] = std::move(current);
    current = SyncReply{};
  }
  ASSERT_EQ(replies.size(), model.size());
  for (const auto& [st, kv] : model) {
    SCOPED_TRACE(st);
    const SyncReply& r = replies.at(st);
    EXPECT_EQ(r.end.count, kv.size());
    std::map<std::string, std::string> got;
    for (const Rec& rec : r.records()) got[rec.key] = rec.value;
    EXPECT_EQ(got, kv);
    EXPECT_TRUE(IsEpoch(r.end.epoch));
  }
  EXPECT_EQ(replies.at("d").end.seq, 2u);
  EXPECT_EQ(replies.at("c").end.seq, 600u);
}

TEST_F(ChpWire, S19_RepliesLeaveInRequestOrderWithoutInterleaving) {
  StartServer();
  auto d = Dealer();
  for (int i = 0; i < 1500; ++i) {
    SendBody(d, KvSet(NewUuid(), "big/k" + std::to_string(i), kOpSet, MpInt(i)));
  }
  SendBody(d, KvSet(NewUuid(), "small/k", kOpSet, MpInt(1)));
  for (int i = 0; i < 1501; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  // A second peer asking at the same time must not disturb the first one's order.
  auto other = Dealer();
  for (uint64_t i = 0; i < 5; ++i) SendBody(other, Icanhaz(100 + i, "big"));

  const std::string u = NewUuid();
  SendBody(d, Icanhaz(1, "big"));
  SendBody(d, Icanhaz(2, "small"));
  SendBody(d, Hello(1, 3));
  SendBody(d, KvSet(u, "small/k2", kOpSet, MpInt(2)));
  SendBody(d, Icanhaz(4, "$bad"));
  SendBody(d, Icanhaz(5, "big", "", 0));
  const SyncReply big = ReadSync(d, 1, "big");
  EXPECT_EQ(big.records().size(), 1500u);
  EXPECT_GE(big.batches.size(), 3u);
  EXPECT_EQ(ReadSync(d, 2, "small").end.count, 1u);
  EXPECT_EQ(AsHelloOk(RecvReply(d)).rid, 3u);
  EXPECT_EQ(AsKvAck(RecvReply(d)).uuid, u);
  EXPECT_EQ(AsError(RecvReply(d)).rid, 4u);
  EXPECT_EQ(ReadSync(d, 5, "big").end.count, 1500u);
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ReadSync(other, 100 + i, "big").records().size(), 1500u);
  }
}

// =============================================================================================
// §7 Server: flow control

// The server's ROUTER SNDHWM (100,000 messages) is far above the ~400 messages of one
// snapshot, so a slow reader alone never makes a send fail. The reader first asks for many small
// replies it does not read, filling the server's pipe to it (plus the kernel's socket buffers and
// the reader's small RCVHWM); the snapshot then has to wait in the server's per-peer queue. A
// ROUTER without ZMQ_ROUTER_MANDATORY would drop the overflow silently, a server that gave up on
// EAGAIN would truncate the reply.
constexpr size_t kFloodHellos = 400'000;

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

TEST_F(ChpWire, S20_SnapshotBehindAFullPipeArrivesWhole) {
  StartServer();
  constexpr size_t kKeys = 200'000;
  auto sub = Sub();
  Subscribe(sub, "marker/");
  {
    auto writer = Dealer();
    WriteKeys(writer, "big", kKeys, [this] { return NewUuid(); });
  }
  // The reader's RCVHWM is small and set before connecting.
  auto reader = Dealer(/*rcvhwm=*/100);
  ASSERT_EQ(AsHelloOk(Call(reader, Hello(1, 1))).rid, 1u);
  for (size_t i = 0; i < kFloodHellos; ++i) SendBody(reader, Hello(1, 1000 + i));
  SendBody(reader, Icanhaz(7, "big"));
  const std::string marker = NewUuid();
  SendBody(reader, KvSet(marker, "marker/m", kOpSet, MpInt(1)));
  // The marker's KVPUB shows that the server has handled the ICANHAZ (one peer's commands are
  // handled in order), while the reader has read nothing.
  WaitPub(sub, IsKvPub("marker/m"), 60s);

  // Everything is handled: what has not been dropped is in the pipe or the server's queue.
  for (size_t i = 0; i < kFloodHellos; ++i) {
    const auto b = TryRecvReply(reader, kReplyTimeout);
    ASSERT_TRUE(b) << "reply " << i << " of the " << kFloodHellos << " HELLO_OKs is missing";
    ASSERT_EQ(b->code(), kHelloOk) << "reply " << i;
    ASSERT_EQ(AsHelloOk(*b).rid, 1000 + i) << "reply " << i;
  }
  const SyncReply snap = ReadSync(reader, 7, "big");
  size_t sum = 0;
  std::set<std::string> keys;
  for (const auto& b : snap.batches) {
    EXPECT_LE(b.records.size(), kBatchRecords);
    sum += b.records.size();
    for (const Rec& r : b.records) keys.insert(r.key);
  }
  EXPECT_EQ(sum, kKeys);
  EXPECT_EQ(snap.end.count, kKeys);
  EXPECT_EQ(keys.size(), kKeys);
  EXPECT_EQ(snap.end.seq, kKeys);
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  EXPECT_EQ(AsKvAck(RecvReply(reader)).uuid, marker);
}

TEST_F(ChpWire, S21_PeerLeavingMidReplyDoesNotBreakTheServer) {
  StartServer();
  constexpr size_t kKeys = 20'000;
  auto sub = Sub();
  Subscribe(sub, "marker/");
  auto writer = Dealer();
  WriteKeys(writer, "big", kKeys, [this] { return NewUuid(); });
  {
    // A reader with a full pipe and a queue of replies behind it reads a little and leaves.
    auto reader = Dealer(/*rcvhwm=*/100);
    ASSERT_EQ(AsHelloOk(Call(reader, Hello(1, 1))).rid, 1u);
    for (size_t i = 0; i < kFloodHellos; ++i) SendBody(reader, Hello(1, 1000 + i));
    SendBody(reader, Icanhaz(7, "big"));
    SendBody(reader, KvSet(NewUuid(), "marker/a", kOpSet, MpInt(1)));
    WaitPub(sub, IsKvPub("marker/a"), 60s);
    for (size_t i = 0; i < 10; ++i) ASSERT_EQ(RecvReply(reader).code(), kHelloOk);
  }
  {
    // A peer that asks for snapshots and leaves at once (its commands still get delivered).
    zmq::socket_t quitter(ctx_, zmq::socket_type::dealer);
    quitter.set(zmq::sockopt::linger, 5000);
    quitter.connect(command_);
    for (uint64_t i = 0; i < 20; ++i) SendBody(quitter, Icanhaz(i, "big"));
    SendBody(quitter, KvSet(NewUuid(), "marker/b", kOpSet, MpInt(1)));
  }
  WaitPub(sub, IsKvPub("marker/b"), 30s);
  // Everyone else is still served, in full.
  auto other = Dealer();
  EXPECT_EQ(AsHelloOk(Call(other, Hello(1, 2))).rid, 2u);
  const SyncReply snap = Snapshot(other, 3, "big", "", 0, 20s);
  EXPECT_EQ(snap.records().size(), kKeys);
  EXPECT_EQ(snap.end.count, kKeys);
  EXPECT_EQ(Set(writer, "marker/c", MpInt(1)).status, kOk);
  EXPECT_EQ(NextKvPub(sub).topic, "marker/c");
}

// =============================================================================================
// §7 Server: TTL

TEST_F(ChpWire, S23_LaterSetReplacesTheTtlAndDeleteCancelsIt) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "t/");
  Set(d, "t/a", MpInt(1), 200);
  Set(d, "t/a", MpInt(2), 0);  // clears the TTL
  Set(d, "t/b", MpInt(1), 200);
  Del(d, "t/b");  // cancels it
  Set(d, "t/c", MpInt(1), 200);
  Set(d, "t/c", MpInt(2), 900);  // replaces it with a later one
  const KvAckMsg ctl = Set(d, "t/ctl", MpInt(1), 500);
  ASSERT_EQ(ctl.seq, 7u);
  for (uint64_t seq = 1; seq <= 7; ++seq) ASSERT_EQ(NextKvPub(sub).seq, seq);
  // Expiries come in time order: ctl (500 ms), then c (900 ms); a and b never.
  const KvPubMsg first = NextKvPub(sub, 10s);
  EXPECT_EQ(first.topic, "t/ctl");
  EXPECT_EQ(first.op, kOpExpire);
  EXPECT_EQ(first.seq, 8u);
  const KvPubMsg second = NextKvPub(sub, 10s);
  EXPECT_EQ(second.topic, "t/c");
  EXPECT_EQ(second.op, kOpExpire);
  EXPECT_EQ(second.seq, 9u);
  const auto snap = Snapshot(d, 1, "t").by_key();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.at("a"), (Rec{"a", kOpSet, MpInt(2), 0, 2}));
  // Nothing else expired since: the next KVPUB is a new change.
  EXPECT_EQ(Set(d, "t/z", MpInt(1)).seq, 10u);
  EXPECT_EQ(NextKvPub(sub).topic, "t/z");
}

TEST_F(ChpWire, S24_ExpiryIsPublishedAsASequencedDelete) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "e/");
  ASSERT_EQ(Set(d, "e/keep", MpInt(0)).seq, 1u);
  ASSERT_EQ(NextKvPub(sub).seq, 1u);
  const auto sent = Clock::now();
  const KvAckMsg set = Set(d, "e/k", MpStr("v"), 200);
  ASSERT_EQ(set.seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.op, kOpSet);
  EXPECT_EQ(pub.ttl, 200u) << "KVPUB carries ttl_ms as given";
  const KvPubMsg exp = NextKvPub(sub, 5s);
  const auto elapsed = std::chrono::duration_cast<Ms>(Clock::now() - sent);
  EXPECT_EQ(exp.topic, "e/k");
  EXPECT_EQ(exp.op, kOpExpire);
  EXPECT_EQ(exp.value, "");
  EXPECT_EQ(exp.ttl, 0u);
  EXPECT_EQ(exp.epoch, set.epoch);
  EXPECT_EQ(exp.seq, 3u);
  EXPECT_GE(elapsed.count(), 199) << "expired before its ttl_ms";
  EXPECT_LT(elapsed.count(), 2000) << "SHOULD expire within a heartbeat interval";
  // The expiry is a change like any other: gone from snapshots, present in resumes.
  const SyncReply snap = Snapshot(d, 1, "e");
  EXPECT_EQ(snap.end.seq, 3u);
  EXPECT_EQ(snap.by_key().count("k"), 0u);
  const SyncReply resume = Snapshot(d, 2, "e", set.epoch, 2);
  EXPECT_EQ(resume.end.mode, kModeResume);
  ASSERT_EQ(resume.records().size(), 1u);
  EXPECT_EQ(resume.records()[0], (Rec{"k", kOpExpire, "", 0, 3}));
}

// =============================================================================================
// §7 Server: heartbeats and positions

TEST_F(ChpWire, S25_HugzEveryHeartbeatInterval) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/k", MpInt(1)).status, kOk);
  auto sub = Sub();
  const HugzMsg welcome = AsHugz(Subscribe(sub, "$HUGZ"));
  EXPECT_EQ(welcome.version, 1u);
  std::vector<uint64_t> times;
  for (int i = 0; i < 11; ++i) {
    const HugzMsg h = AsHugz(WaitPub(sub, IsHugz(), 2s));
    EXPECT_EQ(h.version, 1u);
    EXPECT_EQ(h.id, server_id_);
    EXPECT_EQ(h.subtrees, 1u);
    times.push_back(h.time_ms);
  }
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LT(now_ms - times.back(), 60'000u) << "server clock in ms since the Unix epoch";
  // Ticks after the first one (the welcome may fall anywhere between two ticks).
  uint64_t max_gap = 0;
  for (size_t i = 2; i < times.size(); ++i) max_gap = std::max(max_gap, times[i] - times[i - 1]);
  const double mean = static_cast<double>(times.back() - times[1]) / (times.size() - 2);
  EXPECT_GE(mean, 90.0);
  EXPECT_LE(mean, 250.0);
  EXPECT_LE(max_gap, 1000u);
}

TEST_F(ChpWire, S26_ChangedSubtreeGetsAPositionAtTheNextTick) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  // More subtrees than one sweep slice (256), so a sweep alone would usually miss x.
  constexpr size_t kSubtrees = 1000;
  for (size_t i = 0; i < kSubtrees; ++i) {
    SendBody(d, KvSet(NewUuid(), "s" + std::to_string(i) + "/k", kOpSet, MpInt(1)));
  }
  for (size_t i = 0; i < kSubtrees; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  ASSERT_EQ(Set(d, "x/k", MpInt(1)).seq, 1u);
  auto sub = Sub();
  Subscribe(sub, "$HUGZ");
  Subscribe(sub, "x/");
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const KvAckMsg ack = Set(d, "x/k", MpInt(round));
    WaitPub(sub, IsKvPub("x/k"));
    // The tick after the change: HUGZ, then POSITION for x before the next HUGZ.
    WaitPub(sub, IsHugz(), 5s);
    std::optional<PositionMsg> pos;
    while (true) {
      const PubMsg m = WaitPub(
          sub, [](const PubMsg&) { return true; }, 5s);
      if (m.code() == kHugz) break;
      if (m.code() == kPosition) {
        pos = AsPosition(m);
        break;
      }
    }
    ASSERT_TRUE(pos) << "no POSITION for the changed subtree in the tick after the change";
    EXPECT_EQ(pos->subtree, "x");
    EXPECT_EQ(pos->epoch, ack.epoch);
    EXPECT_EQ(pos->seq, ack.seq);
  }
}

}  // namespace
