// Broker node benchmark: one real chorusd on loopback, native protocol clients (raw DEALER
// sessions, tests/integration/node_support.h), in one run:
//   a) fan-out: one publisher, N subscribers on one channel (N = 1, 100, 1000), history on and
//      off: delivered messages/s and publish->deliver latency p50/p99 (100-byte JSON payloads,
//      published in bursts of --burst, each burst delivered to everyone before the next);
//   b) the same pattern, measured by the same code (fanout.h), over the peers in the same run:
//      raw libzmq PUB->SUB, Redis pub/sub (peer_redis.h) and NATS (peer_nats.h); the ratios
//      chorus/peer are the figures to compare (the machine is shared and noisy);
//   c) presence: join+leave operations/s on a channel with --presence-members members, and the
//      time of presence_stats and of a full paged presence read.
// Ends with "RESULT broker_bench key=value ..." lines.
//   broker_bench [--smoke] [--messages N] [--burst B] [--presence-members M]
#include <pthread.h>
#include <sys/resource.h>

#include <csignal>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "fanout.h"
#include "node_support.h"
#include "peer_nats.h"
#include "peer_redis.h"
#include "zmq_receiver.h"

namespace {

using chorus::bench::Clock;
using chorus::bench::Deliveries;
using chorus::bench::Figures;
using chorus::bench::RunBursts;
using Receiver = chorus::bench::ZmqReceiver;
using chorus::testing::NodeOptions;
using chorus::testing::NodeProcess;
using chorus::testing::P;
using chorus::testing::RawSession;

Figures ChorusFanout(zmq::context_t& ctx, const NodeProcess& node, size_t subs, bool history,
                     int messages, int burst) {
  const std::string channel = history ? "bh:fan" : "bn:fan";
  std::vector<std::unique_ptr<RawSession>> sessions;
  for (size_t i = 0; i < subs; ++i) {
    auto s = std::make_unique<RawSession>(ctx, node.native(), 100'000);
    s->Send("connect", P({{"user", "sub" + std::to_string(i)}}));
    s->Send("subscribe", P({{"channel", channel}}));
    sessions.push_back(std::move(s));
  }
  for (auto& s : sessions) {
    if (!s->Reply(2, std::chrono::seconds(30))) {
      fprintf(stderr, "broker_bench: a subscriber got no subscribe reply\n");
      return {};
    }
  }
  RawSession pub(ctx, node.native(), 1'000'000);
  if (!pub.Call("connect", P({{"user", "publisher"}}))) return {};
  std::vector<zmq::socket_t*> socks;
  for (auto& s : sessions) socks.push_back(&s->socket());
  Receiver rx(socks);
  int replies = 0, errors = 0;
  auto drain = [&](std::chrono::milliseconds wait) {
    while (auto r = pub.Next(wait)) {
      ++replies;
      if (r->Has("error")) ++errors;
      wait = std::chrono::milliseconds(0);
    }
  };
  int sent = 0;
  auto f = RunBursts(rx, subs, messages, burst, [&](const std::string& payload) {
    pub.Send("publish", P({{"channel", channel}, {"data", payload}}));
    if (++sent % 64 == 0) drain(std::chrono::milliseconds(0));
  });
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (replies < sent && Clock::now() < deadline) drain(std::chrono::milliseconds(50));
  if (replies < sent || errors > 0) {
    fprintf(stderr, "broker_bench: %d of %d publish replies, %d errors\n", replies, sent, errors);
    f.complete = false;
  }
  for (auto& s : sessions) s->Send("disconnect");
  return f;
}

Figures RawZmqFanout(zmq::context_t& ctx, size_t subs, int messages, int burst) {
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, 0);
  pub.bind("tcp://127.0.0.1:*");
  const std::string ep = pub.get(zmq::sockopt::last_endpoint);
  std::vector<std::unique_ptr<zmq::socket_t>> sockets;
  for (size_t i = 0; i < subs; ++i) {
    auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
    s->set(zmq::sockopt::rcvhwm, 0);
    s->set(zmq::sockopt::subscribe, "");
    s->connect(ep);
    sockets.push_back(std::move(s));
  }
  // Every subscription is in place once each socket has received a probe.
  std::vector<bool> seen(subs, false);
  size_t ready = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  zmq::message_t m;
  while (ready < subs && Clock::now() < deadline) {
    (void)pub.send(zmq::str_buffer("probe"), zmq::send_flags::none);
    for (size_t i = 0; i < subs; ++i) {
      while (sockets[i]->recv(m, zmq::recv_flags::dontwait)) {
        if (!seen[i]) {
          seen[i] = true;
          ++ready;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // probe pacing, not sync
  }
  std::vector<zmq::socket_t*> socks;
  for (auto& s : sockets) socks.push_back(s.get());
  Receiver rx(socks);
  return RunBursts(rx, subs, messages, burst, [&](const std::string& payload) {
    (void)pub.send(zmq::buffer(payload), zmq::send_flags::none);
  });
}

struct PresenceFigures {
  double ops_per_s = 0;
  double stats_us = 0;
  double full_read_ms = 0;
  size_t members = 0;
};

constexpr char kPresenceChannel[] = "bp:room";

// Connects `count` member sessions (users member<first+i>/2) to the presence channel, in
// batches each answered before the next (so the connects do not all hit the node's listen
// backlog at once). False when one gets no subscribe reply.
bool JoinMembers(zmq::context_t& ctx, const std::string& native, size_t first, size_t count,
                 std::vector<std::unique_ptr<RawSession>>& sessions) {
  constexpr size_t kBatch = 500;
  for (size_t done = 0; done < count;) {
    const size_t n = std::min(kBatch, count - done);
    const size_t base = sessions.size();
    for (size_t i = 0; i < n; ++i) {
      auto s = std::make_unique<RawSession>(ctx, native);
      s->Send("connect", P({{"user", "member" + std::to_string((first + done + i) / 2)}}));
      s->Send("subscribe", P({{"channel", kPresenceChannel}}));
      sessions.push_back(std::move(s));
    }
    for (size_t k = base; k < sessions.size(); ++k) {
      if (!sessions[k]->Reply(2, std::chrono::seconds(60))) {
        fprintf(stderr, "broker_bench: member %zu got no subscribe reply\n", first + k);
        return false;
      }
    }
    done += n;
  }
  return true;
}

// Child mode (`--hold-members`): holds members until SIGTERM. Each session costs this process
// two file descriptors (socket and mailbox), so 10,000 members are spread over child processes.
int HoldMembers(const std::string& native, size_t first, size_t count) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 60000);
  std::vector<std::unique_ptr<RawSession>> sessions;
  const bool ok = JoinMembers(ctx, native, first, count, sessions);
  printf("%s %zu\n", ok ? "held" : "failed", sessions.size());
  fflush(stdout);
  int sig = 0;
  sigwait(&sigs, &sig);
  return ok ? 0 : 1;
}

PresenceFigures PresenceBench(zmq::context_t& ctx, const NodeProcess& node, size_t members,
                              int iterations) {
  PresenceFigures f;
  const std::string channel = kPresenceChannel;
  constexpr size_t kPerProcess = 4000;
  std::vector<std::unique_ptr<chorus::testing::ChildProcess>> holders;
  for (size_t first = 0; first < members; first += kPerProcess) {
    const size_t n = std::min(kPerProcess, members - first);
    holders.push_back(std::make_unique<chorus::testing::ChildProcess>(
        "/proc/self/exe",
        std::vector<std::string>{"--hold-members", std::to_string(n), "--first",
                                 std::to_string(first), "--native", node.native()}));
  }
  for (auto& h : holders) {
    const std::string line = h->ReadLine(std::chrono::seconds(120));
    if (line.rfind("held ", 0) != 0) {
      fprintf(stderr, "broker_bench: a member holder failed: '%s'\n", line.c_str());
      return f;
    }
  }
  RawSession churn(ctx, node.native());
  if (!churn.Call("connect", P({{"user", "churn"}}))) return f;
  auto stats = churn.Call("presence_stats", P({{"channel", channel}}));
  f.members = stats ? stats->Uint("result.num_clients") : 0;
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) {
    churn.Send("subscribe", P({{"channel", channel}}));
    churn.Call("unsubscribe", P({{"channel", channel}}));
  }
  f.ops_per_s = 2.0 * iterations / std::chrono::duration<double>(Clock::now() - start).count();
  const auto s0 = Clock::now();
  for (int i = 0; i < 100; ++i) churn.Call("presence_stats", P({{"channel", channel}}));
  f.stats_us = std::chrono::duration<double, std::micro>(Clock::now() - s0).count() / 100;
  const auto r0 = Clock::now();
  std::string cursor;
  size_t seen = 0;
  do {
    auto page = churn.Call("presence", P({{"channel", channel}, {"cursor", cursor}}));
    if (!page) break;
    const auto* map = page->Get("result.presence");
    seen += map && map->type == msgpack::type::MAP ? map->via.map.size : 0;
    cursor = page->Str("result.next_cursor");
  } while (!cursor.empty());
  f.full_read_ms = std::chrono::duration<double, std::milli>(Clock::now() - r0).count();
  if (seen != f.members) {
    fprintf(stderr, "broker_bench: paged read saw %zu of %zu\n", seen, f.members);
  }
  for (auto& h : holders) {
    if (!h->Terminate(std::chrono::seconds(30))) fprintf(stderr, "broker_bench: holder exit\n");
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "broker_bench: one chorusd, native clients; peers raw libzmq, Redis and NATS in the same "
      "run"};
  bool smoke = false;
  int messages = 2000, burst = 100, presence_iterations = 2000;
  size_t presence_members = 10'000;
  std::vector<size_t> subs_list = {1, 100, 1000};
  app.add_flag("--smoke", smoke, "tiny sizes (CI): checks that everything runs");
  app.add_option("--messages", messages, "publications per fan-out run");
  app.add_option("--burst", burst, "publications per burst");
  app.add_option("--subs", subs_list, "subscriber counts");
  app.add_option("--presence-members", presence_members, "members of the presence channel");
  size_t hold = 0, first = 0;
  std::string native;
  app.add_option("--hold-members", hold, "(internal) child mode: hold N members")->group("");
  app.add_option("--first", first, "(internal) first member index")->group("");
  app.add_option("--native", native, "(internal) the node's native endpoint")->group("");
  CLI11_PARSE(app, argc, argv);
  if (hold > 0) return HoldMembers(native, first, hold);
  if (smoke) {
    messages = 200;
    subs_list = {1, 20};
    presence_members = 100;
    presence_iterations = 100;
  }
  chorus::testing::RaiseFileLimit();

  NodeOptions no;
  no.extra_toml = R"(
[namespaces.bh]
history_size = 1000
history_ttl_ms = 600000
allow_publish_for_client = true
[namespaces.bn]
allow_publish_for_client = true
[namespaces.bp]
presence = true
presence_page_size = 1000
)";
  // Every session comes from 127.0.0.1: the per-address bound (1,000 by default) off.
  no.overrides = {"client.ping_interval_s=3600", "client.pong_timeout_s=60", "node.log_level=warn",
                  "native.max_connections_per_address=0"};
  // The peers first: a missing redis-server or nats-server fails the run (and the smoke test)
  // before any measurement.
  std::string error;
  auto redis = chorus::bench::RedisPeer::Start(error);
  if (!redis) {
    fprintf(stderr, "broker_bench: peer Redis: %s\n", error.c_str());
    return 1;
  }
  auto nats = chorus::bench::NatsPeer::Start(error);
  if (!nats) {
    fprintf(stderr, "broker_bench: peer NATS: %s\n", error.c_str());
    return 1;
  }
  NodeProcess node(no);
  if (!node.ready()) {
    fprintf(stderr, "broker_bench: chorusd did not start: %s\n", node.banner().c_str());
    return 1;
  }
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 60000);

  bool ok = true;
  printf(
      "fan-out, %d publications of 100 B in bursts of %d; every system in this run; "
      "chorus/x = chorus msg/s / x msg/s\n",
      messages, burst);
  printf("%6s  %-10s %12s %10s %10s %11s %13s %12s\n", "subs", "system", "msg/s", "p50 us",
         "p99 us", "chorus/raw", "chorus/redis", "chorus/nats");
  auto row = [](size_t subs, const char* name, const Figures& f) {
    printf("%6zu  %-10s %12.0f %10.1f %10.1f", subs, name, f.msgs_per_s, f.p50_us, f.p99_us);
  };
  auto ratio = [](const Figures& a, const Figures& b) {
    return b.msgs_per_s > 0 ? a.msgs_per_s / b.msgs_per_s : 0;
  };
  for (size_t subs : subs_list) {
    const Figures raw = RawZmqFanout(ctx, subs, messages, burst);
    const Figures rds = redis->Fanout(subs, messages, burst);
    const Figures nts = nats->Fanout(subs, messages, burst);
    for (const auto& [name, f] :
         {std::pair<const char*, const Figures&>{"raw-zmq", raw}, {"redis", rds}, {"nats", nts}}) {
      ok = ok && f.complete && f.delivered > 0;
      row(subs, name, f);
      printf("%s\n", f.complete ? "" : "  INCOMPLETE");
      printf(
          "RESULT broker_bench peer name=%s subs=%zu msgs_per_s=%.0f p50_us=%.1f p99_us=%.1f "
          "complete=%d\n",
          name, subs, f.msgs_per_s, f.p50_us, f.p99_us, f.complete ? 1 : 0);
    }
    for (bool history : {false, true}) {
      const Figures f = ChorusFanout(ctx, node, subs, history, messages, burst);
      ok = ok && f.complete && f.delivered > 0;
      row(subs, history ? "chorus-on" : "chorus-off", f);
      printf(" %11.2f %13.2f %12.2f%s\n", ratio(f, raw), ratio(f, rds), ratio(f, nts),
             f.complete ? "" : "  INCOMPLETE");
      printf(
          "RESULT broker_bench fanout subs=%zu history=%d msgs_per_s=%.0f p50_us=%.1f "
          "p99_us=%.1f raw_msgs_per_s=%.0f ratio=%.3f redis_msgs_per_s=%.0f ratio_redis=%.3f "
          "nats_msgs_per_s=%.0f ratio_nats=%.3f complete=%d\n",
          subs, history ? 1 : 0, f.msgs_per_s, f.p50_us, f.p99_us, raw.msgs_per_s, ratio(f, raw),
          rds.msgs_per_s, ratio(f, rds), nts.msgs_per_s, ratio(f, nts), f.complete ? 1 : 0);
      fflush(stdout);
    }
  }
  const PresenceFigures p = PresenceBench(ctx, node, presence_members, presence_iterations);
  ok = ok && p.members == presence_members;
  printf(
      "presence: %zu members: %.0f join/leave ops/s, presence_stats %.1f us, full paged read "
      "%.1f ms\n",
      p.members, p.ops_per_s, p.stats_us, p.full_read_ms);
  printf(
      "RESULT broker_bench presence members=%zu ops_per_s=%.0f stats_us=%.1f full_read_ms=%.1f\n",
      p.members, p.ops_per_s, p.stats_us, p.full_read_ms);
  const bool clean = node.Stop();
  if (!clean) fprintf(stderr, "broker_bench: chorusd did not exit cleanly\n");
  const bool redis_clean = redis->Stop(), nats_clean = nats->Stop();
  if (!redis_clean) fprintf(stderr, "broker_bench: redis-server did not exit cleanly\n");
  if (!nats_clean) fprintf(stderr, "broker_bench: nats-server did not exit cleanly\n");
  return ok && clean && redis_clean && nats_clean ? 0 : 1;
}
