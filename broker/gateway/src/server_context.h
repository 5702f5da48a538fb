// State of the HTTP server's parts. The server has one or more shards (HttpOptions::io_threads),
// each an io thread with its own io_context, engine client (DEALER), WebSocket hub and
// connections: a ServerContext is one shard's, touched only by that shard's thread. What all
// shards share (the counters, the conn id counter, the in-flight count) is a SharedState of
// relaxed atomics. Both are owned by HttpServer::Impl (http_server.cc).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "broker/gateway/http_server.h"
#include "router.h"

namespace chorus::broker::gateway::detail {

class EngineClient;
class WsHub;

// Relaxed atomics: written by every shard's thread, read by stats() from anywhere.
struct Counters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_rejected{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> engine_replies{0};
  std::atomic<uint64_t> engine_timeouts{0};
  std::atomic<uint64_t> engine_busy{0};
  std::atomic<uint64_t> unmatched_replies{0};
  std::atomic<uint64_t> malformed_replies{0};
  std::atomic<uint64_t> bad_requests{0};
  std::atomic<uint64_t> ws_open{0};
  std::atomic<uint64_t> ws_closed{0};
  std::atomic<uint64_t> ws_slow_closed{0};
  std::atomic<uint64_t> ws_frames_in{0};
  std::atomic<uint64_t> ws_messages_out{0};
  std::atomic<uint64_t> ws_frames_out{0};
  std::atomic<uint64_t> ws_bytes_queued{0};  // a gauge: Add / Sub
  std::atomic<uint64_t> ws_malformed{0};
  std::atomic<uint64_t> ws_unknown_conn{0};

  HttpStats Snapshot() const;
};

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
inline void Drop(std::atomic<uint64_t>& c, uint64_t n) {
  c.fetch_sub(n, std::memory_order_relaxed);
}

// Open connections per client IP address (HttpOptions::max_connections_per_address): added to by
// the acceptor (shard 0's thread), released by a ConnectionSlot on whichever shard thread ends
// the connection. A mutex guards the map: it is touched once per connection, never per message.
class AddressCounts {
 public:
  // Counts one more connection from `address`; false (nothing counted) when it has `limit`.
  bool TryAdd(const std::string& address, size_t limit) {
    std::lock_guard lock(mu_);
    size_t& n = open_[address];
    if (n >= limit) {
      if (n == 0) open_.erase(address);
      return false;
    }
    ++n;
    return true;
  }
  void Release(const std::string& address) {
    std::lock_guard lock(mu_);
    auto it = open_.find(address);
    if (it != open_.end() && --it->second == 0) open_.erase(it);
  }
  size_t addresses() const {
    std::lock_guard lock(mu_);
    return open_.size();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, size_t> open_;
};

// What every shard reads and writes; relaxed atomics only (no ordering is derived from them).
struct SharedState {
  Counters counters;
  // WebSocket conn ids: one counter for the whole server, so an id is unique per HttpServer
  // (the engine needs it unique per DEALER only; README "WebSocket frames").
  std::atomic<uint64_t> next_conn_id{1};
  // Requests waiting for the engine, all shards together (bounded by max_in_flight).
  std::atomic<size_t> in_flight{0};
  AddressCounts per_address;  // used when HttpOptions::max_connections_per_address > 0
};

// One unit of the server-wide connection count (max_connections): taken by the acceptor for
// an accepted socket, given back when the last session that served the socket is gone (an HTTP
// session hands it to the WebSocket session it upgrades to). It decrements the shard's count of
// open connections; the acceptor sums those. Move-only; released on any thread.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  explicit ConnectionSlot(std::atomic<size_t>* shard_open) : count_(shard_open) {}
  // Also gives back one connection of `address` in `addresses` (when not null).
  ConnectionSlot(std::atomic<size_t>* shard_open, AddressCounts* addresses, std::string address)
      : count_(shard_open), addresses_(addresses), address_(std::move(address)) {}
  ConnectionSlot(ConnectionSlot&& o) noexcept
      : count_(std::exchange(o.count_, nullptr)),
        addresses_(std::exchange(o.addresses_, nullptr)),
        address_(std::move(o.address_)) {}
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept {
    if (this != &o) {
      Release();
      count_ = std::exchange(o.count_, nullptr);
      addresses_ = std::exchange(o.addresses_, nullptr);
      address_ = std::move(o.address_);
    }
    return *this;
  }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { Release(); }

 private:
  void Release() {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_relaxed);
    count_ = nullptr;
    if (addresses_ != nullptr) addresses_->Release(address_);
    addresses_ = nullptr;
  }
  std::atomic<size_t>* count_ = nullptr;
  AddressCounts* addresses_ = nullptr;
  std::string address_;
};

// A live client connection (an HTTP or a WebSocket session). Close() cancels its
// I/O; the object goes away when its last pending handler or engine callback is dropped.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Close() = 0;
};

// One shard's state: everything but `shared` is touched only by the shard's io thread.
struct ServerContext {
  HttpOptions options;
  RouterConfig router;
  std::string static_root;  // realpath of options.static_dir; "" = no static files
  size_t shard = 0;         // this shard's index (logs)
  EngineClient* engine = nullptr;
  WsHub* ws = nullptr;  // this shard's WebSocket connections by conn id, and their bridge frames
  SharedState* shared = nullptr;
  Counters* counters = nullptr;                 // &shared->counters
  std::unordered_set<Connection*> connections;  // registered by each connection for its lifetime
  bool stopping = false;                        // Stop() began: start no new work
};

}  // namespace chorus::broker::gateway::detail
