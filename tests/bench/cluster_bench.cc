// Cluster benchmark (issue 12): three real chorusd on this machine forming one cluster
// (cluster_nodes.h), native clients, and in the same run the peers NATS (2 servers over a
// route) and Redis pub/sub (cluster_peers.h), all measured by one paced publisher (paced.h):
//   a) cross-node publish->deliver latency p50/p99 at a fixed moderate rate: chorus publishes
//      on node B (member 2) to a channel whose primary is A (member 1), the subscriber is on C
//      (member 3); NATS publishes on server 1, subscribes on server 2; Redis on one server.
//      Chorus with replication_factor 1 and 2 (one cluster each);
//   b) the highest rate whose p99 stays under 10 ms (a short step search, same systems);
//   c) inter-node messages per publication, from the chorus_cluster_*_total counters of the
//      three nodes, with 1 interested node (the subscriber's) and 3 (a subscriber on each);
//      NATS: messages server 1 sent over its route (/routez);
//   d) failover: SIGKILL of a channel's primary -> the first successful publication (on the
//      new primary) of a publisher on another node publishing every 2 ms; with the cluster
//      tests' timings and with the defaults (docs/cluster.md §14), the victim the meta group's
//      leader or not (a fresh cluster each, R = 2);
//   e) handoff: a 4th node joins under publishing and takes a channel's partition by handoff
//      (cluster_handoff.h): join -> first publication committed on it, and BeginHandoff -> it.
// Publish replies are read as they come (the publisher never waits for one before the next),
// so publishes answered only after commit (R = 2) are measured the same way. Ends with
// "RESULT cluster_bench ..." lines. See docs/benchmarks.md ("Cluster").
//   cluster_bench [--smoke] [--rate R] [--seconds S]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "cluster_handoff.h"
#include "cluster_nodes.h"
#include "cluster_peers.h"
#include "node_support.h"
#include "paced.h"
#include "peer_redis.h"
#include "zmq_receiver.h"

namespace {

using chorus::bench::BenchCluster;
using chorus::bench::Clock;
using chorus::bench::ClusterSpec;
using chorus::bench::Figures;
using chorus::bench::PacedRun;
using chorus::bench::RunPaced;
using chorus::bench::ZmqReceiver;
using chorus::testing::P;
using chorus::testing::RawSession;
using namespace std::chrono_literals;

struct Settings {
  double rate = 1000;       // the fixed moderate rate of a) and c)
  double seconds = 3;       // duration of a)
  double step_seconds = 1;  // duration of each step of b)
  std::vector<double> steps = {250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000};
  double p99_limit_us = 10'000;
};

// A publisher session on one node; publish replies drained as they come, each checked.
class Publisher {
 public:
  Publisher(zmq::context_t& ctx, const std::string& native) : s_(ctx, native, 1'000'000) {
    auto r = s_.Call("connect", P({{"user", "bench-pub"}}));
    ok_ = r && r->Has("result");
  }
  bool ok() const { return ok_; }
  bool pending() const { return replies_ < sent_; }
  uint64_t Publish(const std::string& channel, const std::string& data) {
    ++sent_;
    return s_.Send("publish", P({{"channel", channel}, {"data", data}}));
  }
  // Reads the replies available (the first waiting `wait`); `on(frame)` for each.
  template <typename On>
  void Drain(std::chrono::milliseconds wait, On&& on) {
    while (auto r = s_.Next(wait)) {
      ++replies_;
      if (r->Has("error")) {
        ++errors_;
        ++error_codes_[r->Uint("error.code")];
        ++total_errors_[r->Uint("error.code")];
      }
      on(*r);
      wait = 0ms;
    }
  }
  void Drain(std::chrono::milliseconds wait) {
    Drain(wait, [](const chorus::testing::Frame&) {});
  }
  // Waits (`timeout` at most) for every reply; true when all came and none was an error.
  bool Settle(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (replies_ < sent_ && Clock::now() < deadline) Drain(50ms);
    const bool ok = replies_ == sent_ && errors_ == 0;
    if (!ok) {
      fprintf(stderr, "cluster_bench: %llu of %llu publish replies, %llu errors%s\n",
              static_cast<unsigned long long>(replies_), static_cast<unsigned long long>(sent_),
              static_cast<unsigned long long>(errors_), Codes(error_codes_).c_str());
    }
    sent_ = replies_ = errors_ = 0;
    error_codes_.clear();
    return ok;
  }
  // Every error reply since the publisher was made, by code: " 12x114 ..." or " none".
  std::string ErrorSummary() const { return Codes(total_errors_); }
  uint64_t total_errors() const {
    uint64_t n = 0;
    for (const auto& [code, count] : total_errors_) n += count;
    return n;
  }

 private:
  static std::string Codes(const std::map<uint64_t, uint64_t>& codes) {
    std::string out;
    for (const auto& [code, n] : codes) out += " " + std::to_string(n) + "x" + std::to_string(code);
    return out.empty() ? " none" : out;
  }
  RawSession s_;
  bool ok_ = false;
  uint64_t sent_ = 0, replies_ = 0, errors_ = 0;
  std::map<uint64_t, uint64_t> error_codes_;   // since the last Settle
  std::map<uint64_t, uint64_t> total_errors_;  // since the start
};

// A subscriber session on one node, subscribed to `channel` (the reply waited for: on a node
// that is not the primary it comes once the node's copy is live, C-17).
std::unique_ptr<RawSession> Subscribe(zmq::context_t& ctx, const std::string& native,
                                      const std::string& channel, const std::string& user) {
  auto s = std::make_unique<RawSession>(ctx, native, 1'000'000);
  auto c = s->Call("connect", P({{"user", user}}));
  auto r = c && c->Has("result") ? s->Reply(s->Send("subscribe", P({{"channel", channel}})), 10s)
                                 : std::nullopt;
  if (!r || !r->Has("result")) {
    fprintf(stderr, "cluster_bench: subscribe of %s on %s: %s\n", user.c_str(), native.c_str(),
            !c                  ? "connect: no reply"
            : !c->Has("result") ? ("connect: error " + std::to_string(c->Uint("error.code")) + " " +
                                   c->Str("error.message"))
                                      .c_str()
            : !r ? "no reply within 10 s"
                 : ("error " + std::to_string(r->Uint("error.code"))).c_str());
    return nullptr;
  }
  return s;
}

// `count` publications at `rate` on `pub`, delivered to every session of `subs`.
Figures ChorusPaced(Publisher& pub, const std::string& channel,
                    const std::vector<RawSession*>& subs, int count, double rate) {
  std::vector<zmq::socket_t*> socks;
  for (auto* s : subs) socks.push_back(&s->socket());
  ZmqReceiver rx(socks);
  int n = 0;
  Figures f = RunPaced(
      rx, count, rate,
      [&](const std::string& payload) {
        pub.Publish(channel, payload);
        if (++n % 32 == 0) pub.Drain(0ms);
      },
      subs.size(), 10s);
  if (!pub.Settle(10s)) f.complete = false;
  return f;
}

// Counter deltas between two snapshots, per publication.
std::map<std::string, double> PerPublication(const std::map<std::string, double>& before,
                                             const std::map<std::string, double>& after,
                                             int publications) {
  std::map<std::string, double> out;
  for (const auto& [name, v] : after) {
    const auto it = before.find(name);
    const double d = v - (it == before.end() ? 0 : it->second);
    if (d != 0) out[name] = d / publications;
  }
  return out;
}

// The inter-node messages among the counters: forwarded requests, their replies (one per
// served request) and CHP updates received; every other non-zero counter is printed too.
double InterNodeMessages(const std::map<std::string, double>& per_pub) {
  double n = 0;
  // Forwards and their replies, CHP updates to interested nodes and to backups, backups' acks.
  for (const char* k :
       {"chorus_cluster_pub_forwarded_total", "chorus_cluster_pub_served_total",
        "chorus_cluster_updates_received_total", "chorus_cluster_backup_updates_received_total",
        "chorus_cluster_acks_sent_total"}) {
    const auto it = per_pub.find(k);
    if (it != per_pub.end()) n += it->second;
  }
  return n;
}

void PrintCounters(const std::map<std::string, double>& per_pub) {
  for (const auto& [name, v] : per_pub)
    printf("      %-52s %8.3f / publication\n", name.c_str(), v);
}

void Row(const char* what, const Figures& f) {
  printf("  %-34s p50 %9.1f us  p99 %9.1f us  %8.0f msg/s%s\n", what, f.p50_us, f.p99_us,
         f.msgs_per_s, f.complete ? "" : "  INCOMPLETE");
}

struct Failover {
  double ms = -1;  // kill -> first successful reply of a publication sent after the kill
  uint64_t victim = 0, leader = 0, new_primary = 0;
  // Error code -> count: publications sent after the kill answered with an error (before or
  // after the first success: those forwarded to the dead primary wait for the forward timeout).
  std::map<uint64_t, int> errors;
  bool ok = false;
};

// A cluster of `spec`. The victim is the meta group's leader (`kill_leader`) or another member;
// a fresh channel has the victim as primary; a publisher on a member that is neither (the
// leader when the victim is not) publishes every 2 ms; the victim gets SIGKILL 100 ms in; the
// first success of a publication sent after the kill ends the run (60 s at most).
Failover RunFailover(zmq::context_t& ctx, const ClusterSpec& spec, bool kill_leader) {
  Failover out;
  BenchCluster cl(spec);
  if (!cl.ok()) {
    fprintf(stderr, "cluster_bench: %s\n", cl.error().c_str());
    return out;
  }
  if (!chorus::testing::EventuallyTrue([&] { return (out.leader = cl.LeaderIn(1)) != 0; }, 10s)) {
    fprintf(stderr, "cluster_bench: no meta leader known to member 1\n");
    return out;
  }
  out.victim = kill_leader ? out.leader : out.leader % 3 + 1;
  uint64_t on = 1;
  while (on == out.victim || (on == out.leader && !kill_leader)) ++on;
  const std::string ch = cl.ChannelWithPrimary(out.victim, "fo");
  Publisher pub(ctx, cl.Node(on).native());
  if (!pub.ok()) return out;
  pub.Publish(ch, R"({"warm":1})");  // creates the channel on its primary
  if (!pub.Settle(10s)) return out;
  uint64_t first_after_kill = UINT64_MAX;
  Clock::time_point killed_at{};
  bool done = false;
  auto on_reply = [&](const chorus::testing::Frame& r) {
    if (r.Uint("id") < first_after_kill) return;
    if (r.Has("error")) {
      ++out.errors[r.Uint("error.code")];
    } else if (!done) {
      out.ms = std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count();
      done = true;
    }
  };
  const auto start = Clock::now();
  const auto deadline = start + 60s;
  for (int i = 0; !done && Clock::now() < deadline; ++i) {
    std::this_thread::sleep_until(start + i * 2ms);  // pacing the publisher, not sync
    if (killed_at == Clock::time_point{} && Clock::now() >= start + 100ms) {
      killed_at = Clock::now();
      cl.Kill(out.victim);
    }
    const uint64_t id = pub.Publish(ch, R"({"fo":1})");
    if (killed_at != Clock::time_point{} && first_after_kill == UINT64_MAX) first_after_kill = id;
    pub.Drain(0ms, on_reply);
  }
  out.new_primary = cl.PrimaryIn(on, ch);
  // Publications sent to the dead primary before the switch are answered later (the forward
  // timeout): their errors are counted too.
  const auto settle = Clock::now() + 5s;
  while (pub.pending() && Clock::now() < settle) pub.Drain(50ms, on_reply);
  const bool clean = cl.Stop();
  if (!clean) fprintf(stderr, "cluster_bench: a node did not exit cleanly\n");
  out.ok = clean && out.ms >= 0;
  return out;
}

struct ClusterFigures {
  Figures latency, latency3;
  double max_rate = 0;
  Figures at_max;
  double msgs1 = -1, msgs3 = -1;
  uint64_t errors = 0;      // publish replies that were errors, the whole run
  std::string error_codes;  // " <count>x<code> ..." or " none"
  bool ok = false;
};

ClusterFigures RunChorus(zmq::context_t& ctx, const ClusterSpec& spec, const Settings& st) {
  ClusterFigures out;
  BenchCluster cl(spec);
  if (!cl.ok()) {
    fprintf(stderr, "cluster_bench: %s\n", cl.error().c_str());
    return out;
  }
  const std::string ch = cl.ChannelWithPrimary(1, "lat");
  Publisher pub(ctx, cl.Node(2).native());
  pub.Publish(ch, R"({"warm":1})");  // the channel exists on its primary before C follows it
  auto sub_c =
      pub.ok() && pub.Settle(10s) ? Subscribe(ctx, cl.Node(3).native(), ch, "sub-c") : nullptr;
  if (!sub_c) {
    fprintf(stderr, "cluster_bench: publisher or subscriber on C failed\n");
    return out;
  }
  bool ok = ChorusPaced(pub, ch, {sub_c.get()}, 50, 500).complete;  // warm-up, not reported
  const int count = static_cast<int>(st.rate * st.seconds);
  const auto c0 = cl.ClusterCounters();
  out.latency = ChorusPaced(pub, ch, {sub_c.get()}, count, st.rate);
  const auto per1 = PerPublication(c0, cl.ClusterCounters(), count);
  out.msgs1 = InterNodeMessages(per1);
  ok = ok && out.latency.complete;
  const PacedRun run = [&](int n, double rate) {
    const uint64_t errors_before = pub.total_errors();
    double cpu[3];
    for (uint64_t m = 1; m <= 3; ++m) cpu[m - 1] = cl.CpuSeconds(m);
    Figures f = ChorusPaced(pub, ch, {sub_c.get()}, n, rate);
    for (uint64_t m = 1; m <= 3; ++m) cpu[m - 1] = (cl.CpuSeconds(m) - cpu[m - 1]) * 1e6 / n;
    printf(
        "    step %6.0f/s: p50 %8.1f us  p99 %9.1f us  %s, %llu errors; CPU us/publication "
        "A %.1f B %.1f C %.1f\n",
        rate, f.p50_us, f.p99_us, f.complete ? "complete" : "INCOMPLETE",
        static_cast<unsigned long long>(pub.total_errors() - errors_before), cpu[0], cpu[1],
        cpu[2]);
    fflush(stdout);
    return f;
  };
  out.max_rate =
      chorus::bench::HighestRateUnder(run, st.steps, st.step_seconds, st.p99_limit_us, &out.at_max);
  // Three interested nodes: a subscriber on A and on B as well.
  auto sub_a = Subscribe(ctx, cl.Node(1).native(), ch, "sub-a");
  auto sub_b = Subscribe(ctx, cl.Node(2).native(), ch, "sub-b");
  std::map<std::string, double> per3;
  if (sub_a && sub_b) {
    const auto c1 = cl.ClusterCounters();
    out.latency3 = ChorusPaced(pub, ch, {sub_a.get(), sub_b.get(), sub_c.get()}, count, st.rate);
    per3 = PerPublication(c1, cl.ClusterCounters(), count);
    out.msgs3 = InterNodeMessages(per3);
    ok = ok && out.latency3.complete;
  } else {
    fprintf(stderr, "cluster_bench: subscriber on A or B failed\n");
    ok = false;
  }
  printf("  counters, 1 interested node (R=%d):\n", spec.replication_factor);
  PrintCounters(per1);
  printf("  counters, 3 interested nodes (R=%d):\n", spec.replication_factor);
  PrintCounters(per3);
  out.errors = pub.total_errors();
  out.error_codes = pub.ErrorSummary();
  const bool clean = cl.Stop();
  if (!clean) fprintf(stderr, "cluster_bench: a node did not exit cleanly\n");
  out.ok = ok && clean;
  return out;
}

// e) One join by handoff (test timings, R = 2), printed; false when it did not complete.
bool PrintHandoff() {
  const chorus::bench::Handoff h =
      chorus::bench::RunHandoff({.replication_factor = 2, .test_timings = true});
  printf("handoff (a 4th node joins; first publication committed on it as the new primary):\n");
  printf("  test timings: %7.0f ms from its start, %7.0f ms from BeginHandoff (%llu errors)\n",
         h.from_join_ms, h.from_begin_ms, static_cast<unsigned long long>(h.errors));
  printf("RESULT cluster_bench handoff from_join_ms=%.0f from_begin_ms=%.0f errors=%llu\n",
         h.from_join_ms, h.from_begin_ms, static_cast<unsigned long long>(h.errors));
  fflush(stdout);
  return h.ok;
}

double Ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cluster_bench: three chorusd in one cluster; peers NATS (2 servers, a route) and Redis "
      "in the same run"};
  bool smoke = false;
  Settings st;
  app.add_flag("--smoke", smoke, "small counts (CI): checks that everything runs");
  app.add_option("--rate", st.rate, "the fixed rate of the latency runs, publications/s");
  app.add_option("--seconds", st.seconds, "duration of each latency run");
  app.add_option("--step-seconds", st.step_seconds, "duration of each step of the rate search");
  app.add_option("--steps", st.steps, "rates of the step search (ascending)");
  std::vector<std::string> parts = {"peers", "r1", "r2", "failover"};
  app.add_option("--parts", parts,
                 "what to run (default all): peers r1 r2 failover (a subset is for diagnosis: "
                 "the ratios need the peers in the same run)");
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    st.rate = 500;
    st.seconds = 0.4;
    st.step_seconds = 0.2;
    st.steps = {500, 1000};
  }
  std::sort(st.steps.begin(), st.steps.end());
  chorus::testing::RaiseFileLimit();

  // The peers first: a missing nats-server or redis-server fails the run (and the smoke test)
  // before any measurement, as in broker_bench.
  std::string error;
  auto nats = chorus::bench::NatsRoutePeer::Start(error);
  if (!nats) {
    fprintf(stderr, "cluster_bench: peer NATS: %s\n", error.c_str());
    return 1;
  }
  auto redis = chorus::bench::RedisPeer::Start(error);
  if (!redis) {
    fprintf(stderr, "cluster_bench: peer Redis: %s\n", error.c_str());
    return 1;
  }
  zmq::context_t ctx(1);
  const int count = static_cast<int>(st.rate * st.seconds);
  printf("cluster_bench: %d publications of 100 B at %.0f/s per latency run; steps %.1f s\n", count,
         st.rate, st.step_seconds);

  auto wanted = [&](const char* part) {
    return std::find(parts.begin(), parts.end(), part) != parts.end();
  };
  // Peers.
  double route_msgs = -1;
  Figures nats_lat, redis_lat, nats_at, redis_at;
  double nats_max = 0, redis_max = 0;
  if (wanted("peers")) {
    nats_lat = nats->Paced(count, st.rate, &route_msgs);
    redis_lat = chorus::bench::RedisPaced(redis->port(), count, st.rate);
    nats_max =
        chorus::bench::HighestRateUnder([&](int n, double r) { return nats->Paced(n, r); },
                                        st.steps, st.step_seconds, st.p99_limit_us, &nats_at);
    redis_max = chorus::bench::HighestRateUnder(
        [&](int n, double r) { return chorus::bench::RedisPaced(redis->port(), n, r); }, st.steps,
        st.step_seconds, st.p99_limit_us, &redis_at);
  }
  bool ok = !wanted("peers") || (nats_lat.complete && redis_lat.complete);
  printf("peers:\n");
  Row("nats (pub server 1, sub server 2)", nats_lat);
  Row("redis (separate connections)", redis_lat);
  printf("  nats route messages per publication: %.3f\n", Ratio(route_msgs, count));
  printf("  highest rate with p99 < 10 ms: nats %.0f/s, redis %.0f/s\n", nats_max, redis_max);
  printf(
      "RESULT cluster_bench peer name=nats p50_us=%.1f p99_us=%.1f max_rate=%.0f "
      "route_msgs_per_pub=%.3f complete=%d\n",
      nats_lat.p50_us, nats_lat.p99_us, nats_max, Ratio(route_msgs, count), nats_lat.complete);
  printf("RESULT cluster_bench peer name=redis p50_us=%.1f p99_us=%.1f max_rate=%.0f complete=%d\n",
         redis_lat.p50_us, redis_lat.p99_us, redis_max, redis_lat.complete);
  fflush(stdout);

  for (int r : {1, 2}) {
    if (!wanted(r == 1 ? "r1" : "r2")) continue;
    printf("chorus, replication_factor %d (test timings):\n", r);
    ClusterFigures f = RunChorus(ctx, {.replication_factor = r, .test_timings = true}, st);
    ok = ok && f.ok;
    Row("B -> primary A -> subscriber on C", f.latency);
    Row("3 interested nodes", f.latency3);
    printf("  latency ratio chorus/nats p50 %.2f p99 %.2f; chorus/redis p50 %.2f p99 %.2f\n",
           Ratio(f.latency.p50_us, nats_lat.p50_us), Ratio(f.latency.p99_us, nats_lat.p99_us),
           Ratio(f.latency.p50_us, redis_lat.p50_us), Ratio(f.latency.p99_us, redis_lat.p99_us));
    printf("  highest rate with p99 < 10 ms: %.0f/s (chorus/nats %.2f, chorus/redis %.2f)\n",
           f.max_rate, Ratio(f.max_rate, nats_max), Ratio(f.max_rate, redis_max));
    printf("  inter-node messages per publication: 1 interested node %.3f, 3 interested %.3f\n",
           f.msgs1, f.msgs3);
    printf("  publish replies that were errors (whole run, by code):%s\n", f.error_codes.c_str());
    printf(
        "RESULT cluster_bench chorus r=%d p50_us=%.1f p99_us=%.1f p50_3_us=%.1f p99_3_us=%.1f "
        "max_rate=%.0f msgs_per_pub_1=%.3f msgs_per_pub_3=%.3f errors=%llu complete=%d\n",
        r, f.latency.p50_us, f.latency.p99_us, f.latency3.p50_us, f.latency3.p99_us, f.max_rate,
        f.msgs1, f.msgs3, static_cast<unsigned long long>(f.errors), f.ok);
    fflush(stdout);
  }
  // Failover, R = 2, one cluster per case (a cluster of three survives one kill only).
  printf("failover (SIGKILL of the channel's primary -> first successful publication):\n");
  for (bool test_timings : {true, false}) {
    for (bool kill_leader : {false, true}) {
      if (!wanted("failover")) continue;
      if (smoke && (!test_timings || kill_leader)) continue;
      const Failover fo =
          RunFailover(ctx, {.replication_factor = 2, .test_timings = test_timings}, kill_leader);
      ok = ok && fo.ok;
      std::string errors;
      for (const auto& [code, n] : fo.errors) {
        errors += " " + std::to_string(n) + "x" + std::to_string(code);
      }
      printf("  %-13s victim %s: %7.0f ms (victim %llu, new primary %llu, errors:%s)\n",
             test_timings ? "test timings," : "defaults,",
             kill_leader ? "the meta leader" : "not the leader", fo.ms,
             static_cast<unsigned long long>(fo.victim),
             static_cast<unsigned long long>(fo.new_primary),
             errors.empty() ? " none" : errors.c_str());
      printf("RESULT cluster_bench failover timings=%s victim=%s ms=%.0f\n",
             test_timings ? "test" : "default", kill_leader ? "leader" : "follower", fo.ms);
      fflush(stdout);
    }
  }
  if (smoke) printf("  (defaults and the leader as victim: skipped in --smoke)\n");
  ok = PrintHandoff() && ok;
  const bool nats_clean = nats->Stop(), redis_clean = redis->Stop();
  if (!nats_clean) fprintf(stderr, "cluster_bench: a nats-server did not exit cleanly\n");
  if (!redis_clean) fprintf(stderr, "cluster_bench: redis-server did not exit cleanly\n");
  return ok && nats_clean && redis_clean ? 0 : 1;
}
