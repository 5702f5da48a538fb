#include "nchan_fanout.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "fanout.h"
#include "http_publisher.h"
#include "node_support.h"

namespace chorus::bench {

namespace {

using chorus::testing::RssBytes;
using std::chrono::seconds;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// worker_connections for `conns` WebSocket subscribers: Nchan takes connection slots of its own
// besides the sockets (fake connections for its internal requests); with `conns + 64` slots 3-6%
// of the subscribers were refused ("worker_connections are not enough"), so twice as many plus
// a margin, but not past the descriptor limit nginx inherits (it warns; fake connections take
// no descriptor, so that many still fit). nginx allocates the slots at start, before the RSS
// baseline.
size_t SlotsFor(size_t conns) {
  rlimit rl{};
  const size_t want = 2 * conns + 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return want;
  return std::max(conns + 1024, std::min<size_t>(want, rl.rlim_cur));
}

double Ratio(double chorus, double nchan) {
  return nchan > 0 ? chorus / nchan : 0;
}

// Over every worker of the peer (with one worker: that process).
double WorkersCpu(const NchanPeer& peer) {
  double s = 0;
  for (const int pid : peer.worker_pids()) s += CpuSeconds(pid);
  return s;
}
double WorkersRss(const NchanPeer& peer) {
  double s = 0;
  for (const int pid : peer.worker_pids()) s += static_cast<double>(RssBytes(pid));
  return s;
}

void Report(const WsLoad& load, const NchanPeer& peer, const char* what) {
  const auto& c = load.counters();
  fprintf(stderr,
          "ws_fanout: nchan %s: opened %" PRIu64 " failed %" PRIu64 " closed_by_node %" PRIu64
          " other messages %" PRIu64 " protocol_errors %" PRIu64
          " last close %u, last: %s; nginx error log: %s\n",
          what, c.opened, c.failed, c.closed_by_node, c.other_pushes, c.protocol_errors,
          c.last_close_code, c.last_error.c_str(), peer.ErrorLogTail().c_str());
}

}  // namespace

NchanFanout::NchanFanout(NchanPeerOptions peer, WsLoadOptions load)
    : peer_options_(std::move(peer)), load_options_(std::move(load)) {
  load_options_.host = "127.0.0.1";
  load_options_.target = "/sub/";
  load_options_.raw = true;
}

NchanFanout::~NchanFanout() = default;

void NchanFanout::PrintLegend() const {
  printf(
      "peer: nginx + Nchan (%d worker process%s; subscribers on /sub/<channel>, the publisher one "
      "keep-alive HTTP connection, a burst's POSTs pipelined), run right after each Chorus phase; "
      "rows \"nchan\": its figures, rows \"ratio\": chorus / nchan (msg/s and connects/s above "
      "1: Chorus faster; us, B/conn and cpu above 1: Chorus higher)\n",
      peer_options_.workers, peer_options_.workers == 1 ? "" : "es");
}

bool NchanFanout::Idle(size_t n, bool own_channels, int ping_s, const ChorusIdleFigures& chorus) {
  const char* channels = own_channels ? "own" : "one";
  NchanPeerOptions po = peer_options_;
  po.max_connections = SlotsFor(n);
  po.ping_s = ping_s;
  NchanPeer peer(po);
  if (!peer.ready()) {
    fprintf(stderr, "ws_fanout: nchan did not start: %s\n", peer.error().c_str());
    return false;
  }
  WsLoadOptions lo = load_options_;
  lo.port = peer.port();
  WsLoad load(lo);
  const double node_before = WorkersRss(peer);
  const double gen_before = static_cast<double>(RssBytes(getpid()));
  const auto t0 = Clock::now();
  const auto r = load.Open(
      n, [&](size_t i) { return own_channels ? "idle-" + std::to_string(i) : std::string("idle"); },
      seconds(300));
  const double connect_per_s = static_cast<double>(r.ok) / Seconds(t0);
  if (r.ok != n) Report(load, peer, "idle open");
  const double node_open = WorkersRss(peer);
  load.RunUntil([&] { return load.counters().pinged >= r.ok; }, seconds(ping_s * 2 + 5));
  load.RunUntil([&] { return load.counters().closed_by_node > 0; }, seconds(ping_s));
  const uint64_t pinged = load.counters().pinged, closed = load.counters().closed_by_node;
  if (closed > 0 || pinged < r.ok) Report(load, peer, "idle ping round");
  const double node_after = WorkersRss(peer);
  const double gen_after = static_cast<double>(RssBytes(getpid()));
  const double count = static_cast<double>(std::max<size_t>(r.ok, 1));
  const double rss_open = (node_open - node_before) / count;
  const double rss = (node_after - node_before) / count;
  const double gen = (gen_after - gen_before) / count;
  const size_t left = load.CloseAll(seconds(30));
  if (left > 0) fprintf(stderr, "ws_fanout: nchan idle: %zu connections not closed\n", left);
  const bool clean = peer.Stop();
  printf("%9s %8zu %12.0f %16.0f %16.0f %14.0f %8" PRIu64 " %7" PRIu64 "%s\n",
         own_channels ? "nchan own" : "nchan one", r.ok, connect_per_s, rss, rss_open, gen, pinged,
         closed, clean ? "" : "  UNCLEAN EXIT");
  printf("%9s %8s %12.2f %16.2f %16.2f\n", "ratio", "", Ratio(chorus.connect_per_s, connect_per_s),
         Ratio(chorus.node_rss_per_conn, rss), Ratio(chorus.node_rss_per_conn_open, rss_open));
  printf(
      "RESULT ws_fanout nchan_idle conns=%zu channels=%s connects_per_s=%.0f "
      "node_rss_per_conn_b=%.0f node_rss_per_conn_open_b=%.0f gen_rss_per_conn_b=%.0f "
      "pinged=%" PRIu64 " closed=%" PRIu64 " clean=%d workers=%d\n",
      r.ok, channels, connect_per_s, rss, rss_open, gen, pinged, closed, clean ? 1 : 0,
      peer_options_.workers);
  printf(
      "RESULT ws_fanout ratio_idle channels=%s connects_per_s=%.3f node_rss_per_conn=%.3f "
      "node_rss_per_conn_open=%.3f\n",
      channels, Ratio(chorus.connect_per_s, connect_per_s), Ratio(chorus.node_rss_per_conn, rss),
      Ratio(chorus.node_rss_per_conn_open, rss_open));
  fflush(stdout);
  return r.ok == n && pinged >= n && closed == 0 && clean;
}

bool NchanFanout::Fanout(size_t subs, int messages, int burst, const ChorusFanoutFigures& chorus) {
  if (!fanout_peer_) {
    NchanPeerOptions po = peer_options_;
    po.max_connections = SlotsFor(subs);
    po.ping_s = 0;
    fanout_peer_ = std::make_unique<NchanPeer>(po);
  }
  NchanPeer& peer = *fanout_peer_;
  if (!peer.ready()) {
    fprintf(stderr, "ws_fanout: nchan did not start: %s\n", peer.error().c_str());
    return false;
  }
  // A fresh channel per run: nothing stored in it when the subscribers start at its oldest.
  const std::string channel = "fan-" + std::to_string(++channels_);
  const std::string pub_target = "/pub/" + channel;
  WsLoadOptions lo = load_options_;
  lo.port = peer.port();
  WsLoad load(lo);
  const auto t0 = Clock::now();
  const auto r = load.Open(
      subs, [&](size_t) { return channel; }, seconds(120));
  const double connect_per_s = static_cast<double>(r.ok) / Seconds(t0);
  HttpPublisher pub;
  const bool pub_ok = pub.Connect("127.0.0.1", peer.port());
  if (r.ok != subs || !pub_ok) {
    Report(load, peer, "fan-out open");
    if (!pub_ok) fprintf(stderr, "ws_fanout: nchan publisher: %s\n", pub.last_error().c_str());
    return false;
  }
  const double node_cpu0 = WorkersCpu(peer), gen_cpu0 = CpuSeconds(getpid());
  std::vector<double> worker_cpu;
  for (const int pid : peer.worker_pids()) worker_cpu.push_back(CpuSeconds(pid));
  const uint64_t messages0 = load.counters().text_messages, reads0 = load.counters().reads;
  const auto start = Clock::now();
  uint64_t expected = 0;
  bool complete = true;
  for (int sent = 0; sent < messages;) {
    const int n = std::min(burst, messages - sent);
    for (int i = 0; i < n; ++i) pub.Post(pub_target, Payload(NowNs()));
    sent += n;
    expected += static_cast<uint64_t>(n) * subs;
    if (!pub.Flush() ||
        !load.RunUntil([&] { return load.counters().delivered >= expected; }, seconds(20)) ||
        !pub.AwaitResponses(static_cast<uint64_t>(sent), seconds(20))) {
      complete = false;
      break;
    }
  }
  const double secs = Seconds(start);
  const double node_cpu = (WorkersCpu(peer) - node_cpu0) / secs;
  std::string per_worker;  // as ws_fanout's "cpu per gateway thread"
  for (size_t i = 0; i < worker_cpu.size(); ++i) {
    const double w = (CpuSeconds(peer.worker_pids()[i]) - worker_cpu[i]) / secs;
    per_worker += (per_worker.empty() ? "" : "/") + std::to_string(w).substr(0, 4);
  }
  const double gen_cpu = (CpuSeconds(getpid()) - gen_cpu0) / secs;
  const auto& c = load.counters();
  const double per_frame = static_cast<double>(c.delivered) /
                           static_cast<double>(std::max<uint64_t>(1, c.text_messages - messages0));
  // How many frames the generator finds per read: Nchan writes one frame per delivery, so its
  // figure depends on this (docs/benchmarks.md).
  const double reads_per_msg = static_cast<double>(c.reads - reads0) /
                               static_cast<double>(std::max<uint64_t>(1, c.delivered));
  auto samples = load.TakeLatencies();
  const uint64_t delivered = c.delivered;
  const double msgs_per_s = static_cast<double>(delivered) / secs;
  const double p50 = Percentile(samples, 0.50), p99 = Percentile(samples, 0.99);
  size_t short_subs = 0;
  for (size_t i = r.first; i < r.first + subs; ++i) {
    if (load.DeliveredTo(i) != static_cast<uint64_t>(messages)) ++short_subs;
  }
  complete = complete && short_subs == 0 && pub.errors() == 0 &&
             pub.responses() == static_cast<uint64_t>(messages) && c.closed_by_node == 0 &&
             c.protocol_errors == 0 && c.other_pushes == 0;
  if (!complete) {
    fprintf(stderr,
            "ws_fanout: nchan fan-out %s: delivered %" PRIu64 " of %" PRIu64
            ", %zu subscribers short, %" PRIu64 " POST responses of %d (%" PRIu64
            " errors, last: %s)\n",
            channel.c_str(), delivered, static_cast<uint64_t>(messages) * subs, short_subs,
            pub.responses(), messages, pub.errors(), pub.last_error().c_str());
    Report(load, peer, "fan-out");
  }
  // The columns of ws_fanout's fan-out table; "threads": nginx workers, "cpu per gateway
  // thread": per worker.
  printf("%7zu %8s %6d %14.0f %10.1f %10.1f %12.0f %9.2f %9.2f %9.1f  %s%s\n",
         peer.worker_pids().size(), "nchan", burst, msgs_per_s, p50, p99, connect_per_s, node_cpu,
         gen_cpu, per_frame, per_worker.c_str(), complete ? "" : "  INCOMPLETE");
  printf("%7s %8s %6s %14.2f %10.2f %10.2f %12.2f %9.2f\n", "", "ratio", "",
         Ratio(chorus.msgs_per_s, msgs_per_s), Ratio(chorus.p50_us, p50), Ratio(chorus.p99_us, p99),
         Ratio(chorus.connect_per_s, connect_per_s), Ratio(chorus.node_cpu, node_cpu));
  printf(
      "RESULT ws_fanout nchan_fanout subs=%zu burst=%d messages=%d msgs_per_s=%.0f p50_us=%.1f "
      "p99_us=%.1f delivered=%" PRIu64
      " connects_per_s=%.0f node_cpu=%.2f gen_cpu=%.2f msgs_per_frame=%.1f "
      "gen_reads_per_msg=%.2f complete=%d workers=%d\n",
      subs, burst, messages, msgs_per_s, p50, p99, delivered, connect_per_s, node_cpu, gen_cpu,
      per_frame, reads_per_msg, complete ? 1 : 0, peer_options_.workers);
  printf(
      "RESULT ws_fanout ratio_fanout http_threads=%d workers=%zu subs=%zu burst=%d "
      "msgs_per_s=%.3f p50_us=%.3f p99_us=%.3f connects_per_s=%.3f node_cpu=%.3f\n",
      chorus.http_threads, peer.worker_pids().size(), subs, burst,
      Ratio(chorus.msgs_per_s, msgs_per_s), Ratio(chorus.p50_us, p50), Ratio(chorus.p99_us, p99),
      Ratio(chorus.connect_per_s, connect_per_s), Ratio(chorus.node_cpu, node_cpu));
  fflush(stdout);
  load.CloseAll(seconds(30));
  return complete;
}

bool NchanFanout::Finish() {
  if (!fanout_peer_) return true;
  const bool clean = fanout_peer_->Stop();
  if (!clean) fprintf(stderr, "ws_fanout: nginx (nchan) did not exit cleanly\n");
  fanout_peer_.reset();
  return clean;
}

}  // namespace chorus::bench
