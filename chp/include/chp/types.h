// CHP message value types (docs/protocol/chp.md). Plain values: no I/O, defaulted ==.
// Encoding and decoding live in codec.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace chorus::chp {

// Hash for unordered containers keyed by std::string that also take std::string_view lookups
// (with std::equal_to<>): no temporary string per lookup. Same hash values as std::hash<string>.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

inline constexpr uint32_t kProtocolVersion = 1;

// Limits (spec section "Limits").
inline constexpr size_t kMaxSubtreeBytes = 255;
inline constexpr size_t kMaxKeyBytes = 1024;  // full key "subtree/key"
inline constexpr size_t kDefaultMaxValueBytes = 1 << 20;
inline constexpr uint64_t kMaxTtlMs = 30ull * 24 * 3600 * 1000;
inline constexpr size_t kMaxFrameBytes = kMaxKeyBytes + (16u << 20);
inline constexpr size_t kMaxValueBytesLimit = 8u << 20;  // largest max_value_bytes a server accepts
inline constexpr char kHugzTopic[] = "$HUGZ";
inline constexpr char kAllSubtrees[] = "*";

enum class Op : uint8_t { kSet = 0, kDelete = 1, kExpire = 2 };
enum class SyncMode : uint8_t { kSnapshot = 0, kResume = 1 };

enum class Command : uint8_t {
  kHello = 1,
  kHelloOk = 2,
  kIcanhaz = 3,
  kKvSync = 4,
  kKthxbai = 5,
  kDone = 6,
  kKvSet = 7,
  kKvAck = 8,
  kError = 9,
  kKvPub = 10,
  kPosition = 11,
  kHugz = 12,
  kApplied = 13,
};

// A subtree's position: its epoch (empty while the subtree has never existed) and the sequence of
// its last change (0 when none).
struct Position {
  std::string epoch;
  uint64_t seq = 0;
  bool operator==(const Position&) const = default;
};

using Uuid = std::array<uint8_t, 16>;

// One change (in an update or resume stream) or one entry (in a snapshot) of a subtree.
// `key` is relative to the subtree; `ttl_ms` is the remaining time to live, 0 for none.
// `uuid` is the UUID of the client update that made the change (CS-31), all zero for none (a
// local write, an expiry, or a snapshot entry).
struct Record {
  std::string key;
  Op op = Op::kSet;
  std::string value;
  uint64_t ttl_ms = 0;
  uint64_t seq = 0;
  Uuid uuid{};
  bool operator==(const Record&) const = default;
};

// One accepted client update of a subtree's UUID window (CS-31): its UUID, the seq of the
// subtree after it (its change, or the current seq for a delete that changed nothing) and how
// long ago the server answered it.
struct WindowEntry {
  Uuid uuid{};
  uint64_t seq = 0;
  uint64_t age_ms = 0;
  bool operator==(const WindowEntry&) const = default;
};
inline constexpr size_t kMaxWindowPerKthxbai = 65'536;

// A replica's copy of one subtree, as a promoted backup hands it to its server
// (SubtreeReplica::Copy -> Server::Adopt, CS-29, CS-31, CR-31, CR-35): the position it applied,
// the term and term start it holds, its entries with remaining TTLs, and its UUID window with
// the ages the entries have now, oldest first.
struct SubtreeCopy {
  Position position;
  uint64_t term = 0;
  uint64_t term_start = 0;
  std::vector<Record> entries;
  std::vector<WindowEntry> window;
  bool operator==(const SubtreeCopy&) const = default;
};

// --- replica -> server (command socket) ---
struct Hello {
  uint32_t version = kProtocolVersion;
  uint64_t request_id = 0;
  bool operator==(const Hello&) const = default;
};
// Request for the state of one subtree ("*": every subtree). A non-empty `from.epoch` asks to
// resume after `from`; the server answers with a snapshot when it cannot.
struct Icanhaz {
  uint64_t request_id = 0;
  std::string subtree;
  Position from;
  uint64_t term = 0;  // the term of `from` (CR-30)
  bool operator==(const Icanhaz&) const = default;
};
struct KvSet {
  Uuid uuid{};
  std::string key;  // full key "subtree/key"
  Op op = Op::kSet;
  std::string value;
  uint64_t ttl_ms = 0;
  // CS-32: apply only when the key's seq (of the change that last wrote it; 0: absent) is this.
  std::optional<uint64_t> expected_seq{};
  bool operator==(const KvSet&) const = default;
};
// The positions a replica has applied (CR-29, CS-27). No answer.
struct AppliedEntry {
  std::string subtree;
  Position position;
  bool operator==(const AppliedEntry&) const = default;
};
struct Applied {
  std::string replica;  // the replica's configured name
  std::vector<AppliedEntry> positions;
  bool operator==(const Applied&) const = default;
};
inline constexpr size_t kMaxReplicaNameBytes = 255;
inline constexpr size_t kMaxAppliedPerFrame = 1024;
using CommandMessage = std::variant<Hello, Icanhaz, KvSet, Applied>;

// --- server -> replica (command socket) ---
struct HelloOk {
  uint64_t request_id = 0;
  uint32_t version = kProtocolVersion;
  std::string server_id;
  std::string publisher;  // the publisher endpoint as bound by the server
  bool operator==(const HelloOk&) const = default;
};
struct KvSync {
  uint64_t request_id = 0;
  std::string subtree;
  std::vector<Record> records;
  bool operator==(const KvSync&) const = default;
};
struct Kthxbai {
  uint64_t request_id = 0;
  std::string subtree;
  Position position;
  uint64_t count = 0;
  SyncMode mode = SyncMode::kSnapshot;
  uint64_t term = 0;                  // the subtree's term (CS-29)
  uint64_t term_start = 0;            // the first seq of that term
  std::vector<WindowEntry> window{};  // snapshot only: the subtree's UUID window (CS-31)
  bool operator==(const Kthxbai&) const = default;
};
struct Done {
  uint64_t request_id = 0;
  uint64_t subtrees = 0;
  bool operator==(const Done&) const = default;
};
struct KvAck {
  Uuid uuid{};
  uint32_t status = 0;   // Errc value, 0 = applied
  Position position;     // position after the change (or the current one for a no-op)
  uint64_t key_seq = 0;  // kConflict only (CS-32): the key's seq (0: absent)
  bool operator==(const KvAck&) const = default;
};
struct Error {
  uint64_t request_id = 0;
  uint32_t code = 0;
  std::string message;
  bool operator==(const Error&) const = default;
};
using ReplyMessage = std::variant<HelloOk, KvSync, Kthxbai, Done, KvAck, Error>;

// --- server -> replicas (publisher socket); the topic frame is not part of the body ---
struct KvPub {
  std::string subtree;
  std::string epoch;
  Record record;
  uint64_t term = 0;  // the subtree's term (CS-33)
  bool operator==(const KvPub&) const = default;
};
struct PositionMsg {
  std::string subtree;
  Position position;
  uint64_t term = 0;  // CS-33: the subtree's term and the seq it began at
  uint64_t term_start = 0;
  bool operator==(const PositionMsg&) const = default;
};
struct Hugz {
  uint32_t version = kProtocolVersion;
  std::string server_id;
  uint64_t time_ms = 0;
  uint64_t subtrees = 0;
  bool operator==(const Hugz&) const = default;
};
using PubMessage = std::variant<KvPub, PositionMsg, Hugz>;

std::ostream& operator<<(std::ostream& os, const Position& p);
std::ostream& operator<<(std::ostream& os, const Record& r);
const char* OpName(Op op);

}  // namespace chorus::chp
