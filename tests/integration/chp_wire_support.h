// Shared support for the raw-wire integration tests of chorus-chp-server (chp_wire_*_test.cc)
// against docs/protocol/chp.md.
//
// Each test starts the real server binary on ephemeral loopback ports and talks to it with plain
// cppzmq DEALER and SUB sockets and msgpack built and read here with msgpack-cxx directly. The chp
// headers and codec are deliberately not used, so the wire format is checked independently of our
// own encoder and decoder. Test names carry the rule (CW-n, CK-n, CV-n, CS-n) they check.
//
// Waits are bounded (zmq::poll with a deadline), never sleeps. "No reply" is proved by a HELLO
// sent after the frame under test: the server answers one peer's requests in order (CS-19), so the
// HELLO_OK must be the very next reply. "No KVPUB" is proved the same way with a later change of
// the same subtree, whose KVPUB must come next with the next sequence.
// Every test ends with SIGTERM and requires exit status 0 (TearDown), which also catches crashes.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "msgpack_pack.h"
#include "test_util.h"

namespace chp_wire_test {

using namespace std::chrono_literals;
using chorus::testing::ChildProcess;
using chorus::testing::Field;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

inline constexpr Ms kReplyTimeout = 5s;

// Command codes (spec §6), spelled out here: these tests do not use the chp headers.
inline constexpr uint64_t kHello = 1;
inline constexpr uint64_t kHelloOk = 2;
inline constexpr uint64_t kIcanhaz = 3;
inline constexpr uint64_t kKvSync = 4;
inline constexpr uint64_t kKthxbai = 5;
inline constexpr uint64_t kDone = 6;
inline constexpr uint64_t kKvSet = 7;
inline constexpr uint64_t kKvAck = 8;
inline constexpr uint64_t kError = 9;
inline constexpr uint64_t kKvPub = 10;
inline constexpr uint64_t kPosition = 11;
inline constexpr uint64_t kHugz = 12;

// Status codes (spec §15) and ops.
inline constexpr uint64_t kOk = 0;
inline constexpr uint64_t kMalformed = 1;
inline constexpr uint64_t kBadKey = 2;
inline constexpr uint64_t kValueTooLarge = 3;
inline constexpr uint64_t kBadValue = 4;
inline constexpr uint64_t kBadTtl = 5;
inline constexpr uint64_t kBadVersion = 11;
inline constexpr uint64_t kOpSet = 0;
inline constexpr uint64_t kOpDelete = 1;
inline constexpr uint64_t kOpExpire = 2;
inline constexpr uint64_t kModeSnapshot = 0;
inline constexpr uint64_t kModeResume = 1;

// Limits (spec §12) with the server's defaults.
inline constexpr size_t kMaxValueBytes = 1 << 20;
inline constexpr size_t kMaxBodyBytes = 16'778'240;
inline constexpr uint64_t kMaxTtlMs = 2'592'000'000;
inline constexpr size_t kBatchRecords = 512;
inline constexpr size_t kBatchBytes = 256 * 1024;
inline constexpr size_t kUuidWindow = 65'536;

[[noreturn]] void WireFail(const std::string& what);

// ---------------------------------------------------------------------------------------------
// Writing msgpack

using chorus::testing::Pack;  // tests/support/msgpack_pack.h

std::string Hello(uint64_t version, uint64_t rid);
std::string Icanhaz(uint64_t rid, std::string_view subtree, std::string_view epoch = "",
                    uint64_t seq = 0);
std::string KvSet(std::string_view uuid, std::string_view key, uint64_t op, std::string_view value,
                  uint64_t ttl_ms = 0);

// Values (msgpack objects as bytes).
std::string MpInt(int64_t v);
std::string MpStr(std::string_view s);
// A msgpack bin value whose encoding is exactly `n` bytes (n >= 5): bin32 header + payload.
std::string ValueOfSize(size_t n);
// `depth` nested one-element arrays around an integer.
std::string Nested(int depth);
std::string MapOf(uint32_t pairs);

// ---------------------------------------------------------------------------------------------
// Reading msgpack, checking types as the spec types them (CW-1, CW-2)

const char* TypeName(const msgpack::object& o);
uint64_t AsU(const msgpack::object& o, const std::string& what,
             uint64_t max = std::numeric_limits<uint64_t>::max());
std::string AsS(const msgpack::object& o, const std::string& what);
std::string AsB(const msgpack::object& o, const std::string& what);
const msgpack::object& Item(const msgpack::object& arr, size_t i, const std::string& what);

// One body frame: exactly one msgpack array spanning the frame, element 0 a command code (CW-1).
class Body {
 public:
  explicit Body(std::string bytes);
  uint64_t code() const { return code_; }
  size_t size() const { return root().via.array.size; }
  const msgpack::object& At(size_t i) const { return Item(root(), i, Name()); }
  uint64_t U(size_t i, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    return AsU(At(i), Name() + "[" + std::to_string(i) + "]", max);
  }
  std::string S(size_t i) const { return AsS(At(i), Name() + "[" + std::to_string(i) + "]"); }
  std::string B(size_t i) const { return AsB(At(i), Name() + "[" + std::to_string(i) + "]"); }
  const std::string& bytes() const { return bytes_; }

  // Checks the command code and the minimum element count (CW-3: more is allowed).
  void Expect(uint64_t code, size_t elements) const;

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
std::ostream& operator<<(std::ostream& os, const Rec& r);

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

HelloOkMsg AsHelloOk(const Body& b);
KvAckMsg AsKvAck(const Body& b);
ErrorMsg AsError(const Body& b);
Rec AsRecord(const msgpack::object& o);
KvSyncMsg AsKvSync(const Body& b);
KthxbaiMsg AsKthxbai(const Body& b);
DoneMsg AsDone(const Body& b);

// ---------------------------------------------------------------------------------------------
// Sockets

std::optional<std::vector<zmq::message_t>> RecvFrames(zmq::socket_t& s, Ms timeout);
void SendBody(zmq::socket_t& s, std::string_view body);
void SendFrames(zmq::socket_t& s, const std::vector<std::string>& frames);

// A reply on a DEALER: the body alone, one frame (CW-5).
std::optional<Body> TryRecvReply(zmq::socket_t& d, Ms timeout);
Body RecvReply(zmq::socket_t& d, Ms timeout = kReplyTimeout);
Body Call(zmq::socket_t& d, std::string_view body);

// A publisher message: exactly [topic][body] (CW-6).
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

std::optional<PubMsg> TryRecvPub(zmq::socket_t& sub, Ms timeout);
KvPubMsg AsKvPub(const PubMsg& m);
PositionMsg AsPosition(const PubMsg& m);
HugzMsg AsHugz(const PubMsg& m);

using PubPred = std::function<bool(const PubMsg&)>;
PubPred IsKvPub(const std::string& topic);
PubPred IsAnyKvPub();
PubPred IsPosition(const std::string& subtree);
PubPred IsHugz();

// The next publisher message matching `pred`; others are skipped (and appended to `skipped`).
PubMsg WaitPub(zmq::socket_t& sub, const PubPred& pred, Ms timeout = kReplyTimeout,
               std::vector<PubMsg>* skipped = nullptr);
// The next KVPUB, skipping heartbeat traffic (POSITION, HUGZ).
KvPubMsg NextKvPub(zmq::socket_t& sub, Ms timeout = kReplyTimeout);

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
                   Ms timeout = kReplyTimeout);

std::string SubtreeOf(const std::string& topic);
Rec RecOf(const KvPubMsg& p);

// ---------------------------------------------------------------------------------------------
// Fixture: one server process per test (more for restart tests).

class ChpWire : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) StopServer();
  }

  // Starts chorus-chp-server on ephemeral loopback ports and reads its banner line.
  void StartServer(const std::vector<std::string>& extra = {});

  // SIGTERM; the server must exit with status 0 (no crash, clean shutdown).
  void StopServer();

  zmq::socket_t Dealer(int rcvhwm = 0);
  zmq::socket_t Sub();
  // Subscribes and waits for the server's welcome (CS-13): HUGZ for "" and "$HUGZ", POSITION for
  // "S/".
  PubMsg Subscribe(zmq::socket_t& sub, const std::string& topic);

  // Distinct UUIDs that look random, like RFC 4122 version 4 ones (CR-23).
  static std::string UuidFor(uint64_t n);
  static uint64_t Mix(uint64_t x);  // splitmix64: a bijection, so distinct n give distinct UUIDs
  std::string NewUuid() { return UuidFor(++uuid_counter_); }

  // Sends a KVSET and returns its KVACK, checking the UUID (CS-7).
  KvAckMsg Write(zmq::socket_t& d, std::string_view key, uint64_t op, std::string_view value,
                 uint64_t ttl_ms = 0);
  KvAckMsg Set(zmq::socket_t& d, std::string_view key, std::string_view value,
               uint64_t ttl_ms = 0) {
    return Write(d, key, kOpSet, value, ttl_ms);
  }
  KvAckMsg Del(zmq::socket_t& d, std::string_view key) { return Write(d, key, kOpDelete, ""); }

  // Proves that nothing sent on `d` before got a reply: a HELLO's HELLO_OK must come next.
  void ExpectNoReply(zmq::socket_t& d, const std::string& what);

  SyncReply Snapshot(zmq::socket_t& d, uint64_t rid, const std::string& subtree,
                     const std::string& epoch = "", uint64_t seq = 0, Ms timeout = kReplyTimeout);

  zmq::context_t ctx_;
  std::unique_ptr<ChildProcess> server_;
  std::string command_, publisher_, server_id_;
  uint64_t uuid_counter_ = 0;
  uint64_t sentinel_rid_ = 1'000'000;
};

bool IsEpoch(const std::string& e);

// ---------------------------------------------------------------------------------------------
// Flow control (CS-20, CS-21)

// The server's ROUTER SNDHWM (100,000 messages) is far above the ~400 messages of one
// snapshot, so a slow reader alone never makes a send fail. The reader first asks for many small
// replies it does not read, filling the server's pipe to it (plus the kernel's socket buffers and
// the reader's small RCVHWM); the snapshot then has to wait in the server's per-peer queue. A
// ROUTER without ZMQ_ROUTER_MANDATORY would drop the overflow silently, a server that gave up on
// EAGAIN would truncate the reply.
inline constexpr size_t kFloodHellos = 400'000;

// Pipelines `n` sets of "<subtree>/k<i>" from one DEALER and waits for every KVACK.
void WriteKeys(zmq::socket_t& d, const std::string& subtree, size_t n,
               const std::function<std::string()>& uuid);

}  // namespace chp_wire_test
