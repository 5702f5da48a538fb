// A WebSocket load generator for benchmarks: many client connections to one Chorus node's
// /connection/websocket (docs/protocol/websocket.md), all driven by one Asio event loop that
// runs on the calling thread, inside Open() and RunUntil() only.
//
// Each connection does the RFC 6455 opening handshake, then sends `connect` and (optionally)
// `subscribe` in one message, then reads: it answers the server's `{}` pings with `{}`, splits
// messages on '\n', and for every `pub` push that carries a send time (data
// `{"t":<ns of NowNs()>,...}`) records the publish->deliver latency and checks that offsets
// (when the channel has history) go up by one. The client framing is written here (not
// Beast's client), so that the generator shares no WebSocket code with the node's gateway and
// so that an idle connection costs little: received bytes land in one buffer shared by all
// connections; a connection keeps bytes only while a frame is split across reads.
//
// Raw mode (WsLoadOptions::raw, for peers such as Nchan that speak no protocol over the
// WebSocket): a connection opens `target + channel(i)`, sends nothing after the handshake and is
// open on the 101; every text message is one publication's body, and a WebSocket ping frame is
// the server's ping.
//
// Owner: one thread; a WsLoad is not thread-safe. No Asio type appears in this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fanout.h"  // NowNs(): the send time a payload carries

namespace chorus::bench {

struct WsLoadOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string target = "/connection/websocket";
  // Raw mode (see above): the path is `target + channel(i)` (e.g. "/sub/" + "fan"), no
  // connect/subscribe, no '\n' splitting, no offsets; Publish() is not available.
  bool raw = false;
  // Local addresses the client sockets bind to before connect, round-robin (e.g. 127.0.0.2,
  // 127.0.0.3, ... when one source address runs out of ephemeral ports). Empty: the kernel's.
  std::vector<std::string> source_addresses;
  // Connections between TCP connect and their last join reply at a time (bounds the SYN and
  // accept backlogs and the node's handshake work in flight).
  size_t max_pending = 256;
  // Latency samples kept (later deliveries are counted but not sampled).
  size_t max_samples = size_t{1} << 22;
};

struct WsLoadCounters {
  uint64_t opened = 0;           // connections whose join replies all came back without error
  uint64_t failed = 0;           // connections that ended before that (refused, error reply...)
  uint64_t text_messages = 0;    // WebSocket text messages received after the handshake
  uint64_t delivered = 0;        // pub pushes (raw: messages) with a send time
  uint64_t other_pushes = 0;     // any other push (join, leave, unsubscribe, disconnect...)
  uint64_t pings = 0;            // server `{}` pings answered with `{}` (raw: ping frames)
  uint64_t pinged = 0;           // connections that answered at least one ping
  uint64_t replies = 0;          // replies to our commands
  uint64_t error_replies = 0;    // ... of which carried `error`
  uint64_t publish_replies = 0;  // replies to Publish() commands
  uint64_t closed_by_node = 0;   // open connections the node closed (close frame or EOF)
  uint64_t protocol_errors = 0;  // bytes we could not read as the protocol says
  uint64_t order_errors = 0;     // a pub offset that was not the previous one plus one
  uint64_t reads = 0;            // socket reads that returned bytes (all connections)
  uint16_t last_close_code = 0;  // code of the last close frame the node sent (1005: none)
  std::string last_error;        // the last unexpected line or condition, for the report
};

class WsLoad {
 public:
  explicit WsLoad(WsLoadOptions options);
  ~WsLoad();
  WsLoad(const WsLoad&) = delete;
  WsLoad& operator=(const WsLoad&) = delete;

  struct OpenResult {
    size_t first = 0;  // index of the first of the new connections
    size_t ok = 0;     // how many of them are open (joined) when Open returns
  };
  // Opens `n` connections with indices first..first+n-1. Each sends `{"id":1,"connect":{}}`
  // and, when channel(i) is not empty, `{"id":2,"subscribe":{"channel":...}}` in the same
  // message (raw mode: opens target + channel(i) and sends nothing). Runs the loop until all of
  // them are open or failed, or `timeout`; connections still joining then are closed and counted as
  // failed.
  OpenResult Open(size_t n, const std::function<std::string(size_t)>& channel,
                  std::chrono::milliseconds timeout);

  // Queues `{"id":N,"publish":{"channel":..,"data":..}}` on open connection `conn`; written
  // when the loop runs (commands queued together go out in one write, one frame each).
  void Publish(size_t conn, std::string_view channel, std::string_view data_json);

  // Runs the loop until done() holds (checked after every handler) or `timeout`; returns
  // done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);

  // Starts the closing handshake (code 1000) on every open connection and runs the loop until
  // all are closed or `timeout`; returns how many were still open then (and are now dropped).
  size_t CloseAll(std::chrono::milliseconds timeout);

  const WsLoadCounters& counters() const;
  size_t size() const;                      // connections ever opened (indices)
  size_t open_count() const;                // connections open now
  uint64_t DeliveredTo(size_t conn) const;  // pub pushes with a send time on `conn`
  // Latency samples in ns (capped at UINT32_MAX), moved out.
  std::vector<uint32_t> TakeLatencies();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace chorus::bench
