// State shared by the HTTP server's parts on its io thread: options, router config, the engine
// client, the live connections and the counters. Owned by HttpServer::Impl; everything but
// `counters` is touched only by the io thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <unordered_set>

#include "broker/gateway/http_server.h"
#include "router.h"

namespace chorus::broker::gateway::detail {

class EngineClient;

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

  HttpStats Snapshot() const;
};

inline void Bump(std::atomic<uint64_t>& c) {
  c.fetch_add(1, std::memory_order_relaxed);
}

// A live client connection (HTTP session now; WebSocket sessions later). Close() cancels its
// I/O; the object goes away when its last pending handler or engine callback is dropped.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Close() = 0;
};

struct ServerContext {
  HttpOptions options;
  RouterConfig router;
  EngineClient* engine = nullptr;
  Counters* counters = nullptr;
  std::unordered_set<Connection*> connections;  // registered by each connection for its lifetime
  bool stopping = false;                        // Stop() began: start no new work
};

}  // namespace chorus::broker::gateway::detail
