// The Nchan side of ws_fanout (docs/benchmarks.md, "ws_fanout"): the phases Chorus runs,
// against nginx + Nchan (nchan_peer.h), each run right after the Chorus phase it matches so
// the ratio chorus/nchan compares the two on the same machine at nearly the same moment.
//
// Same load generator (ws_load.h, raw mode: `/sub/<channel>`, no handshake, each message the
// bare payload), same 100-byte payload carrying its send time, same sizes, the same figures:
//  - idle: M connections on a fresh nginx (all on one channel, then one channel each), kept
//    through one WebSocket ping round (`nchan_websocket_ping_interval`, ping frames answered
//    with pongs): worker RSS per connection;
//  - fan-out: N subscribers on a fresh channel; the publisher is one keep-alive HTTP
//    connection POSTing to `/pub/<channel>`, a burst's requests pipelined in one write (as
//    Chorus's publisher writes a burst's publish commands in one write); each burst delivered
//    to every subscriber (and every POST answered 2xx) before the next: delivered msg/s,
//    p50/p99 publish->deliver latency, worker CPU per wall second.
// Each phase prints one row under Chorus's row in ws_fanout's table, a "ratio" row, and
// "RESULT ws_fanout peer=nchan ..." and "RESULT ws_fanout ratio ..." lines.
//
// Owner: one thread (the bench's).
#pragma once

#include <cstddef>
#include <memory>

#include "nchan_peer.h"
#include "ws_load.h"

namespace chorus::bench {

// Chorus's figures of the matching phase, for the ratios.
struct ChorusIdleFigures {
  double connect_per_s = 0;
  double node_rss_per_conn = 0;       // after the ping round
  double node_rss_per_conn_open = 0;  // before it
};
struct ChorusFanoutFigures {
  double msgs_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double connect_per_s = 0;
  double node_cpu = 0;
  int http_threads = 0;  // the gateway io threads of that node
};

class NchanFanout {
 public:
  // `peer`: the nginx binary, module and workers (sizes and pings are set per phase);
  // `load`: the generator's options (source addresses); host, port, target and raw are set
  // here.
  NchanFanout(NchanPeerOptions peer, WsLoadOptions load);
  ~NchanFanout();
  NchanFanout(const NchanFanout&) = delete;
  NchanFanout& operator=(const NchanFanout&) = delete;

  // Prints what the nchan and ratio rows mean (once, before the tables).
  void PrintLegend() const;

  // The idle phase with `n` connections on a fresh nginx. True when every connection opened
  // and answered a ping, none was closed by nginx, and nginx exited cleanly.
  bool Idle(size_t n, bool own_channels, int ping_s, const ChorusIdleFigures& chorus);

  // One fan-out run: `messages` publications in bursts of `burst` to `subs` subscribers of a
  // new channel on the fan-out nginx (started at the first run, kept until Finish()). True
  // when every subscriber got every publication once and every POST was answered 2xx.
  bool Fanout(size_t subs, int messages, int burst, const ChorusFanoutFigures& chorus);

  // Stops the fan-out nginx: true on a clean exit, or when none was started.
  bool Finish();

 private:
  NchanPeerOptions peer_options_;
  WsLoadOptions load_options_;
  std::unique_ptr<NchanPeer> fanout_peer_;
  int channels_ = 0;  // fan-out channels used (each run gets a fresh one)
};

}  // namespace chorus::bench
