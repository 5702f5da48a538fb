// WebSocket benchmark: one real chorusd on loopback (tests/integration/node_support.h), its
// browser transport (/connection/websocket, docs/protocol/websocket.md) loaded by the ws_load
// generator (ws_load.h: one thread, thousands of connections), in one run:
//   a) idle: M connections, each connected and subscribed (all on one channel, then each on its
//      own channel, a fresh node for each), kept through one server ping round answered:
//      node RSS per connection ((after - before) / M, /proc/<pid>/status) and the generator's
//      own RSS per connection;
//   b) fan-out: one publisher WebSocket connection publishing with client `publish` commands,
//      N subscriber connections on one channel, 100-byte JSON payloads in bursts of --burst
//      (each burst delivered to every subscriber before the next), history off and on:
//      delivered messages/s, publish->deliver latency p50/p99, every subscriber checked to get
//      every publication once (and in offset order with history); then one publication at a
//      time (bursts of 1) for the latency of a single fan-out; CPU of the node and of the
//      generator per wall second, to tell which side was the limit, and of the gateway's io
//      threads (chorus-http-*); with --http-threads 1,2 the fan-out phase runs once per value,
//      each on a fresh node with that http.threads.
// Peer (--peer nchan, the default): each idle phase, fan-out run with history off and latency
// run is followed by the same against nginx + Nchan (nchan_fanout.h), printed under Chorus's
// row with a row of ratios chorus/nchan. Ends with "RESULT ws_fanout key=value ..." lines.
//   ws_fanout [--smoke] [--subs N] [--messages N] [--burst B] [--rounds R] [--idle M]
//             [--ping-s S] [--source-addrs K] [--http-threads T1,T2,...]
//             [--peer nchan|none] [--nginx PATH] [--nchan-workers W]
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "fanout.h"
#include "nchan_fanout.h"
#include "node_support.h"
#include "ws_load.h"

namespace {

using chorus::bench::Clock;
using chorus::bench::CpuSeconds;
using chorus::bench::CpuSecondsOf;
using chorus::bench::NowNs;
using chorus::bench::Payload;
using chorus::bench::Percentile;
using chorus::bench::WsLoad;
using chorus::bench::WsLoadOptions;
using chorus::testing::NodeOptions;
using chorus::testing::NodeProcess;
using chorus::testing::RssBytes;
using std::chrono::milliseconds;
using std::chrono::seconds;

// CPU seconds of each of the gateway's io threads (chorus-http-<i>) of process `pid`.
std::vector<double> GatewayThreadCpu(int pid) {
  std::vector<std::pair<std::string, double>> named;
  const std::string task = "/proc/" + std::to_string(pid) + "/task/";
  DIR* dir = opendir(task.c_str());
  if (dir == nullptr) return {};
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char name[64] = {};
    FILE* f = fopen((task + e->d_name + "/comm").c_str(), "r");
    if (f == nullptr) continue;
    const bool read = fgets(name, sizeof name, f) != nullptr;
    fclose(f);
    if (!read || strncmp(name, "chorus-http-", 12) != 0) continue;
    named.emplace_back(name, CpuSecondsOf(task + e->d_name + "/stat"));
  }
  closedir(dir);
  std::sort(named.begin(), named.end());
  std::vector<double> cpu;
  for (const auto& [name, seconds] : named) cpu.push_back(seconds);
  return cpu;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Report(const WsLoad& load, const char* what) {
  const auto& c = load.counters();
  fprintf(stderr,
          "ws_fanout: %s: opened %" PRIu64 " failed %" PRIu64 " closed_by_node %" PRIu64
          " error_replies %" PRIu64 " protocol_errors %" PRIu64 " last close %u, last: %s\n",
          what, c.opened, c.failed, c.closed_by_node, c.error_replies, c.protocol_errors,
          c.last_close_code, c.last_error.c_str());
}

// The config every node of the run gets; `ping_s` is the server ping period, `http_threads`
// the gateway's io threads (0: the node's default).
NodeOptions Options(int ping_s, int http_threads = 0) {
  NodeOptions no;
  no.extra_toml = R"(
[namespaces.bench]
allow_publish_for_client = true
[namespaces.benchhist]
history_size = 1000
history_ttl_ms = 600000
allow_publish_for_client = true
)";
  no.overrides = {"client.ping_interval_s=" + std::to_string(ping_s),
                  "client.pong_timeout_s=" + std::to_string(std::max(1, ping_s - 1)),
                  "client.max_queue_bytes=8388608", "node.log_level=warn",
                  "http.max_connections_per_address=0"};  // every client is on 127.0.0.1
  if (http_threads > 0) no.overrides.push_back("http.threads=" + std::to_string(http_threads));
  return no;
}

struct IdleFigures {
  size_t open = 0;
  double connect_per_s = 0;
  double node_rss_per_conn = 0;       // after the ping round
  double node_rss_per_conn_open = 0;  // right after the last subscribe reply
  double gen_rss_per_conn = 0;
  uint64_t pings = 0;  // connections that answered a ping
  uint64_t closed = 0;
  bool clean = false;
};

// `n` idle connections on a fresh node: one channel for all, or one channel each.
IdleFigures Idle(size_t n, bool own_channels, int ping_s, const WsLoadOptions& base) {
  IdleFigures f;
  NodeProcess node(Options(ping_s));
  if (!node.ready()) {
    fprintf(stderr, "ws_fanout: chorusd did not start: %s\n", node.banner().c_str());
    return f;
  }
  const int pid = node.process().pid();
  WsLoadOptions lo = base;
  lo.port = static_cast<uint16_t>(node.http_port());
  WsLoad load(lo);
  const size_t node_before = RssBytes(pid), gen_before = RssBytes(getpid());
  const auto t0 = Clock::now();
  const auto r = load.Open(
      n,
      [&](size_t i) {
        return own_channels ? "bench:idle-" + std::to_string(i) : std::string("bench:idle");
      },
      seconds(300));
  f.connect_per_s = static_cast<double>(r.ok) / Seconds(t0);
  f.open = r.ok;
  if (r.ok != n) Report(load, "idle open");
  const size_t node_open = RssBytes(pid);
  // Every connection answers a ping; then a pong timeout more with no connection closed.
  load.RunUntil([&] { return load.counters().pinged >= r.ok; }, seconds(ping_s * 2 + 5));
  load.RunUntil([&] { return load.counters().closed_by_node > 0; }, seconds(ping_s));
  f.pings = load.counters().pinged;
  f.closed = load.counters().closed_by_node;
  if (f.closed > 0) Report(load, "idle ping round");
  const size_t node_after = RssBytes(pid), gen_after = RssBytes(getpid());
  const double count = static_cast<double>(std::max<size_t>(r.ok, 1));
  f.node_rss_per_conn_open = (static_cast<double>(node_open) - node_before) / count;
  f.node_rss_per_conn = (static_cast<double>(node_after) - node_before) / count;
  f.gen_rss_per_conn = (static_cast<double>(gen_after) - gen_before) / count;
  const size_t left = load.CloseAll(seconds(30));
  if (left > 0) fprintf(stderr, "ws_fanout: idle: %zu connections not closed by the node\n", left);
  f.clean = node.Stop();
  return f;
}

struct FanoutFigures {
  double msgs_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double connect_per_s = 0;
  uint64_t delivered = 0;
  size_t short_subs = 0;  // subscribers that got fewer or more than every publication
  uint64_t order_errors = 0;
  double node_cpu = 0;  // CPU seconds per wall second during the bursts (2 cores: at most 2)
  double gen_cpu = 0;
  std::vector<double> gw_cpu;    // per gateway io thread, per wall second
  double lines_per_message = 0;  // the gateway's batching: pushes per WebSocket message
  bool complete = false;
};

FanoutFigures Fanout(NodeProcess& node, size_t subs, const std::string& channel, int messages,
                     int burst, const WsLoadOptions& base) {
  FanoutFigures f;
  WsLoadOptions lo = base;
  lo.port = static_cast<uint16_t>(node.http_port());
  WsLoad load(lo);
  const auto t0 = Clock::now();
  const auto r = load.Open(
      subs, [&](size_t) { return channel; }, seconds(120));
  f.connect_per_s = static_cast<double>(r.ok) / Seconds(t0);
  const auto pub = load.Open(
      1, [](size_t) { return std::string(); }, seconds(10));
  if (r.ok != subs || pub.ok != 1) {
    Report(load, "fan-out open");
    return f;
  }
  const int pid = node.process().pid();
  const double node_cpu0 = CpuSeconds(pid), gen_cpu0 = CpuSeconds(getpid());
  const std::vector<double> gw_cpu0 = GatewayThreadCpu(pid);
  const uint64_t messages0 = load.counters().text_messages;
  const auto start = Clock::now();
  uint64_t expected = 0;
  bool complete = true;
  for (int sent = 0; sent < messages;) {
    const int n = std::min(burst, messages - sent);
    for (int i = 0; i < n; ++i) load.Publish(pub.first, channel, Payload(NowNs()));
    sent += n;
    expected += static_cast<uint64_t>(n) * subs;
    if (!load.RunUntil([&] { return load.counters().delivered >= expected; }, seconds(20))) {
      complete = false;
      break;
    }
  }
  const double secs = Seconds(start);
  f.node_cpu = (CpuSeconds(pid) - node_cpu0) / secs;
  f.gen_cpu = (CpuSeconds(getpid()) - gen_cpu0) / secs;
  const std::vector<double> gw_cpu1 = GatewayThreadCpu(pid);
  for (size_t i = 0; i < gw_cpu1.size() && i < gw_cpu0.size(); ++i) {
    f.gw_cpu.push_back((gw_cpu1[i] - gw_cpu0[i]) / secs);
  }
  f.lines_per_message =
      static_cast<double>(load.counters().delivered) /
      static_cast<double>(std::max<uint64_t>(1, load.counters().text_messages - messages0));
  auto samples = load.TakeLatencies();
  f.delivered = load.counters().delivered;
  f.msgs_per_s = static_cast<double>(f.delivered) / secs;
  f.p50_us = Percentile(samples, 0.50);
  f.p99_us = Percentile(samples, 0.99);
  load.RunUntil([&] { return load.counters().publish_replies >= static_cast<uint64_t>(messages); },
                seconds(20));
  for (size_t i = r.first; i < r.first + subs; ++i) {
    if (load.DeliveredTo(i) != static_cast<uint64_t>(messages)) ++f.short_subs;
  }
  const auto& c = load.counters();
  f.order_errors = c.order_errors;
  f.complete = complete && f.short_subs == 0 && f.order_errors == 0 &&
               c.publish_replies == static_cast<uint64_t>(messages) && c.error_replies == 0 &&
               c.closed_by_node == 0 && c.protocol_errors == 0;
  if (!f.complete) {
    fprintf(stderr,
            "ws_fanout: fan-out %s: delivered %" PRIu64 " of %" PRIu64
            ", %zu subscribers short, "
            "%" PRIu64 " publish replies of %d, %" PRIu64 " order errors\n",
            channel.c_str(), f.delivered, static_cast<uint64_t>(messages) * subs, f.short_subs,
            c.publish_replies, messages, f.order_errors);
    Report(load, "fan-out");
  }
  load.CloseAll(seconds(30));
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ws_fanout: one chorusd, WebSocket clients (Centrifugo protocol v2, JSON)"};
  bool smoke = false;
  int messages = 2000, burst = 100, source_addrs = 0, ping_s = 5, rounds = 1,
      latency_messages = 200;
  size_t subs = 1000, idle = 10'000;
  std::vector<int> http_threads;
  app.add_flag("--smoke", smoke, "tiny sizes (CI): checks that everything runs");
  app.add_option("--subs", subs, "subscriber connections of the fan-out");
  app.add_option("--messages", messages, "publications per fan-out run");
  app.add_option("--burst", burst, "publications per burst");
  app.add_option("--rounds", rounds, "fan-out rounds (history off, on) before the latency run");
  app.add_option("--latency-messages", latency_messages,
                 "publications of the latency run (bursts of 1)");
  app.add_option("--idle", idle,
                 "idle connections (the gateway accepts at most 10,000); 0: no idle phase");
  app.add_option("--ping-s", ping_s, "server ping period during the idle phase (2..3600)");
  app.add_option("--source-addrs", source_addrs,
                 "bind client sockets to 127.0.0.2 .. 127.0.0.(1+K) (0: the kernel's choice)");
  app.add_option("--http-threads", http_threads,
                 "the fan-out phase once per value, each on a fresh node with that http.threads "
                 "(e.g. 1,2 or 1,2,1,2; default: the node's own)")
      ->delimiter(',')
      ->check(CLI::Range(1, 64));
  std::string peer = "nchan";
  chorus::bench::NchanPeerOptions nchan_options;
  app.add_option("--peer", peer, "peer measured after each phase: nchan (nginx + Nchan) or none")
      ->check(CLI::IsMember({"nchan", "none"}));
  app.add_option("--nginx", nchan_options.nginx, "nginx binary of the Nchan peer");
  app.add_option("--nchan-workers", nchan_options.workers,
                 "nginx worker processes of the peer (1: one event loop)")
      ->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    subs = 50;
    messages = 200;
    burst = 50;
    idle = 200;
    ping_s = 2;
    latency_messages = 20;
  }
  chorus::testing::RaiseFileLimit();
  WsLoadOptions lo;
  for (int i = 0; i < source_addrs; ++i)
    lo.source_addresses.push_back("127.0.0." + std::to_string(2 + i));
  std::optional<chorus::bench::NchanFanout> nchan;
  if (peer == "nchan") {
    if (const std::string missing = chorus::bench::NchanPeer::Missing(nchan_options);
        !missing.empty()) {
      fprintf(stderr, "ws_fanout: %s\n", missing.c_str());
      return 1;
    }
    nchan.emplace(nchan_options, lo);
    nchan->PrintLegend();
  }

  bool ok = true;
  if (idle > 0) {
    printf("idle: %zu connections, each connected and subscribed, one server ping round (%d s)\n",
           idle, ping_s);
    printf("%9s %8s %12s %16s %16s %14s %8s %7s\n", "channels", "open", "connects/s", "node B/conn",
           "(before pings)", "generator B/c", "pinged", "closed");
    for (bool own : {false, true}) {
      const IdleFigures f = Idle(idle, own, ping_s, lo);
      ok = ok && f.open == idle && f.closed == 0 && f.pings >= idle && f.clean;
      printf("%9s %8zu %12.0f %16.0f %16.0f %14.0f %8" PRIu64 " %7" PRIu64 "%s\n",
             own ? "own" : "one", f.open, f.connect_per_s, f.node_rss_per_conn,
             f.node_rss_per_conn_open, f.gen_rss_per_conn, f.pings, f.closed,
             f.clean ? "" : "  UNCLEAN EXIT");
      printf(
          "RESULT ws_fanout idle conns=%zu channels=%s connects_per_s=%.0f "
          "node_rss_per_conn_b=%.0f node_rss_per_conn_open_b=%.0f gen_rss_per_conn_b=%.0f "
          "pinged=%" PRIu64 " closed=%" PRIu64 " clean=%d\n",
          f.open, own ? "own" : "one", f.connect_per_s, f.node_rss_per_conn,
          f.node_rss_per_conn_open, f.gen_rss_per_conn, f.pings, f.closed, f.clean ? 1 : 0);
      fflush(stdout);
      if (nchan) {
        ok = nchan->Idle(idle, own, ping_s,
                         {f.connect_per_s, f.node_rss_per_conn, f.node_rss_per_conn_open}) &&
             ok;
      }
    }
  }

  printf(
      "fan-out, %d publications of 100 B in bursts of %d to %zu WebSocket subscribers (publisher: "
      "one WebSocket connection, client publish)\n",
      messages, burst, subs);
  printf("%7s %8s %6s %14s %10s %10s %12s %9s %9s %9s  %s\n", "threads", "history", "burst",
         "ws msg/s", "p50 us", "p99 us", "connects/s", "node cpu", "gen cpu", "pub/frame",
         "cpu per gateway thread");
  struct Run {
    bool history;
    int burst, messages;
  };
  std::vector<Run> runs;
  for (int round = 0; round < rounds; ++round) {
    runs.push_back({false, burst, messages});
    runs.push_back({true, burst, messages});
  }
  runs.push_back({false, 1, latency_messages});         // latency of one publication at a time
  if (http_threads.empty()) http_threads.push_back(0);  // the node's default
  bool clean = true;
  for (const int threads : http_threads) {
    NodeProcess node(Options(3600, threads));
    if (!node.ready()) {
      fprintf(stderr, "ws_fanout: chorusd did not start: %s\n", node.banner().c_str());
      return 1;
    }
    for (const Run& run : runs) {
      const FanoutFigures f = Fanout(node, subs, run.history ? "benchhist:fan" : "bench:fan",
                                     run.messages, run.burst, lo);
      ok = ok && f.complete;
      std::string gw;
      for (double c : f.gw_cpu) gw += (gw.empty() ? "" : "/") + std::to_string(c).substr(0, 4);
      printf("%7zu %8s %6d %14.0f %10.1f %10.1f %12.0f %9.2f %9.2f %9.1f  %s%s\n", f.gw_cpu.size(),
             run.history ? "on" : "off", run.burst, f.msgs_per_s, f.p50_us, f.p99_us,
             f.connect_per_s, f.node_cpu, f.gen_cpu, f.lines_per_message, gw.c_str(),
             f.complete ? "" : "  INCOMPLETE");
      printf(
          "RESULT ws_fanout fanout http_threads=%zu subs=%zu history=%d burst=%d messages=%d "
          "msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f delivered=%" PRIu64
          " connects_per_s=%.0f node_cpu=%.2f gen_cpu=%.2f gw_thread_cpu=%s pubs_per_frame=%.1f "
          "complete=%d\n",
          f.gw_cpu.size(), subs, run.history ? 1 : 0, run.burst, run.messages, f.msgs_per_s,
          f.p50_us, f.p99_us, f.delivered, f.connect_per_s, f.node_cpu, f.gen_cpu, gw.c_str(),
          f.lines_per_message, f.complete ? 1 : 0);
      fflush(stdout);
      if (nchan && !run.history) {
        ok = nchan->Fanout(subs, run.messages, run.burst,
                           {f.msgs_per_s, f.p50_us, f.p99_us, f.connect_per_s, f.node_cpu,
                            static_cast<int>(f.gw_cpu.size())}) &&
             ok;
      }
    }
    if (!node.Stop()) {
      fprintf(stderr, "ws_fanout: chorusd did not exit cleanly\n");
      clean = false;
    }
  }
  if (nchan && !nchan->Finish()) clean = false;
  return ok && clean ? 0 : 1;
}
