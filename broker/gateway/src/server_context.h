// State shared by the HTTP server's parts on its io thread: options, router config, the engine
// client, the WebSocket hub, the live connections and the counters. Owned by HttpServer::Impl;
// everything but `counters` is touched only by the io thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "broker/gateway/http_server.h"
#include "router.h"

namespace chorus::broker::gateway::detail {

class EngineClient;
class WsHub;

// Relaxed atomics: written by the io thread, read by stats() from anywhere.
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

// A live client connection (an HTTP or a WebSocket session). Close() cancels its
// I/O; the object goes away when its last pending handler or engine callback is dropped.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Close() = 0;
};

struct ServerContext {
  HttpOptions options;
  RouterConfig router;
  std::string static_root;  // realpath of options.static_dir; "" = no static files
  EngineClient* engine = nullptr;
  WsHub* ws = nullptr;  // WebSocket connections by conn id, and their bridge frames
  Counters* counters = nullptr;
  std::unordered_set<Connection*> connections;  // registered by each connection for its lifetime
  bool stopping = false;                        // Stop() began: start no new work
};

}  // namespace chorus::broker::gateway::detail
