// The node's HTTP listener (broker/gateway/README.md): the server API `POST /api/<method>`,
// `GET /health` and `GET /metrics`, all answered by the engine through the engine bridge (the
// frames are specified in the README, "Engine bridge"), the WebSocket transport on
// `GET /connection/websocket`, whose messages the engine handles too (README "WebSocket"),
// and, when configured, the files of a static directory (README "Static files").
//
// Threads: an HttpServer runs `io_threads` io threads of its own, one per shard (README
// "Threads and ownership"). A shard's thread owns its io_context, its connections, its zmq
// DEALER connected to the engine and the requests waiting on it; nothing else touches them.
// Shard 0's thread also owns the listening socket and hands each accepted connection to the
// shard with the fewest. Start, Stop, port and stats may be called from any other thread.
// No Boost type appears here: Beast and Asio stay inside the module's .cc files.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "chp/errc.h"

namespace chorus::broker::gateway {

struct HttpOptions {
  static constexpr size_t kMaxIoThreads = 64;

  std::string address = "127.0.0.1";
  uint16_t port = 0;                // 0 = pick a free port; port() reports the bound one
  std::string api_key;              // "" = server API disabled: /api/* answers 404
  std::string engine_endpoint;      // the engine's ROUTER (README, "Engine bridge"); required
  size_t max_body_bytes = 1 << 20;  // larger request bodies: 413
  std::chrono::milliseconds engine_timeout{5000};  // no engine answer: 503
  // Shards, each an io thread with its own connections and engine DEALER: 1..kMaxIoThreads.
  size_t io_threads = 1;
  // The bounds below are for the whole server, all shards together.
  size_t max_connections = 10000;  // open HTTP + WebSocket connections; over it: accept, close
  size_t max_in_flight = 10000;    // requests waiting for the engine; over it: 503
  std::chrono::seconds idle_timeout{60};  // a connection silent (or not reading) this long: closed
  // A request head must be complete this long after its first byte may come (from accept, or
  // from the first byte after an idle keep-alive wait): a head that trickles is dropped
  // (slowloris). README "Bounds".
  std::chrono::milliseconds header_timeout{10000};
  // Open connections from one client IP address, all shards together; over it: accept, close
  // (counted in connections_rejected). 0 = no per-address bound.
  size_t max_connections_per_address = 0;
  // WebSocket upgrades: Origin patterns allowed (README "WebSocket", "Origin"). Empty = same
  // origin only (the Origin's host[:port] equals the Host header); a request without Origin
  // (not a browser) is always allowed; "*" allows every origin. Refused: 403.
  std::vector<std::string> allowed_origins;
  // "" = GET /metrics is open; else it requires "Authorization: Bearer <metrics_key>" (401).
  std::string metrics_key;
  uint32_t max_header_bytes = 8192;  // larger request heads: 431
  // WebSocket (README "WebSocket"). Bytes queued for one connection (waiting or being
  // written); over it the connection is closed with 3008 "slow".
  size_t max_ws_queue_bytes = 1 << 20;
  size_t max_ws_message_bytes = 1 << 20;                  // larger client messages: close 1009
  std::chrono::milliseconds ws_handshake_timeout{10000};  // upgrade not completed: dropped
  // Static files (README "Static files"): "" = none; else an existing directory whose files
  // are served on GET/HEAD of the paths outside /api, /health, /metrics, /connection/websocket.
  std::string static_dir;
  size_t max_static_file_bytes = 16 << 20;  // larger files: 404
};

// Counters of all shards together, a snapshot read from any thread (relaxed: for tests and
// /metrics, not for logic).
struct HttpStats {
  uint64_t connections_accepted = 0;  // sessions started
  uint64_t connections_rejected = 0;  // closed at once: max_connections(_per_address)
  uint64_t requests = 0;              // complete request heads parsed
  uint64_t forwarded = 0;             // requests sent to the engine
  uint64_t engine_replies = 0;        // replies matched to a waiting request
  uint64_t engine_timeouts = 0;       // requests answered 503 after engine_timeout
  uint64_t engine_busy = 0;           // requests answered 503 because of max_in_flight
  uint64_t unmatched_replies = 0;     // replies with an unknown id (late after a timeout), dropped
  uint64_t malformed_replies = 0;     // replies not of the bridge format, dropped or answered 502
  uint64_t bad_requests = 0;          // malformed HTTP (400 / 413 / 431 then close)
  // WebSocket.
  uint64_t ws_open = 0;          // connections reported `open` to the engine
  uint64_t ws_closed = 0;        // of those, gone (any cause; reported or closed by the engine)
  uint64_t ws_slow_closed = 0;   // of those, closed with 3008 (write queue over its bound)
  uint64_t ws_frames_in = 0;     // client text messages forwarded as `frame`
  uint64_t ws_messages_out = 0;  // engine messages written to clients
  uint64_t ws_frames_out = 0;    // WebSocket messages written (several messages coalesced)
  uint64_t ws_bytes_queued = 0;  // current: bytes queued or being written, all connections
  uint64_t ws_malformed = 0;     // engine WebSocket commands not in the bridge format, dropped
  uint64_t ws_unknown_conn = 0;  // (command, conn id) pairs for no open connection, ignored
};

class HttpServer {
 public:
  // Validates `o`, starts the io threads (each connects its engine DEALER; shard 0 binds and
  // listens) and returns once all are set up. Errors as values: std::errc::invalid_argument
  // for bad options, the bind/listen error (e.g. address_in_use), or a zmq connect error; no
  // thread is left running then. `ctx` must outlive the server.
  static chp::Result<std::unique_ptr<HttpServer>> Start(zmq::context_t& ctx, HttpOptions o);

  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound TCP port (the picked one when options.port was 0).
  uint16_t port() const;
  HttpStats stats() const;

  // Closes the listener, then every connection of every shard (requests waiting for the
  // engine are dropped without an answer), closes the DEALERs and joins all io threads.
  // Idempotent; not from an io thread.
  void Stop();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::broker::gateway
