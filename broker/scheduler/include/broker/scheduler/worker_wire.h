// The Chorus worker protocol (CWP/1, docs/protocol/worker.md): the messages an external worker
// process and a node exchange over ZeroMQ (worker DEALER, node ROUTER). Each message is one
// frame holding one msgpack map with a string key `type`. Pure codec: no sockets, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler::wire {

inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kMaxFrameBytes = (1u << 20) + (64u << 10);  // payload + envelope
inline constexpr size_t kMaxKinds = 32;
inline constexpr size_t kMaxChildren = 10'000;
inline constexpr size_t kMaxTextBytes = 4096;  // error messages, user, tier, source, catalog
inline constexpr uint32_t kMaxWorkerSlots = 1024;

// Error codes of an `error` message (W-2, W-3, W-4).
enum class ErrorCode : uint32_t {
  kMalformed = 1,        // not a map, unknown type, a field of the wrong type or out of range
  kHelloFirst = 2,       // a message other than hello from a worker that is not attached
  kRefused = 3,          // hello refused: slots, kinds, version, or the node's worker limit
  kAlreadyAttached = 4,  // a second hello on the same connection
};

struct Hello {  // worker -> node, first message
  uint32_t version = kVersion;
  uint32_t slots = 0;  // 1..kMaxWorkerSlots
  std::vector<std::string> kinds;
};
struct Welcome {  // node -> worker, hello accepted
  uint64_t worker = 0;
  int64_t lease_ms = 0, heartbeat_ms = 0, timeout_ms = 0;
};
struct Ping {};    // worker -> node, liveness while idle
struct LeaseMsg {  // node -> worker: run this task (lease.deadline_ms holds lease_ms, relative)
  Lease lease;
};
struct HeartbeatMsg {  // worker -> node: renew
  TaskId task = 0;
  LeaseToken token = 0;
};
struct DoneMsg {  // worker -> node: the outcome
  TaskId task = 0;
  LeaseToken token = 0;
  TaskOutcome outcome;
};
struct RevokeMsg {  // node -> worker: the lease is gone (expired or cancelled)
  TaskId task = 0;
  LeaseToken token = 0;
};
struct ErrorMsg {  // node -> worker
  uint32_t code = 0;
  std::string message;
};

using Message =
    std::variant<Hello, Welcome, Ping, LeaseMsg, HeartbeatMsg, DoneMsg, RevokeMsg, ErrorMsg>;

std::string Encode(const Message& m);
// The message in `frame`, or nullopt with the reason in *why (W-2: every field is checked).
std::optional<Message> Decode(std::string_view frame, std::string* why);
const char* TypeName(const Message& m);

}  // namespace chorus::broker::scheduler::wire
