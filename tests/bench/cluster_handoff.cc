#include "cluster_handoff.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster/assignment.h"
#include "node_cluster_support.h"

namespace chorus::bench {

namespace {
using Clock = std::chrono::steady_clock;
using nlohmann::json;
using namespace std::chrono_literals;

double MsSince(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}
}  // namespace

Handoff RunHandoff(const ClusterSpec& spec) {
  Handoff out;
  BenchCluster cl(spec);
  if (!cl.ok()) {
    fprintf(stderr, "cluster_bench: %s\n", cl.error().c_str());
    return out;
  }
  // A channel whose partition's target primary with four members is member 4 (the pure
  // assignment of docs/cluster.md §4.2 over the current placement).
  const json table = cl.TableIn(1);
  if (table.is_null()) return out;
  std::vector<cluster::Placement> previous;
  for (const json& p : table) previous.push_back({p["replicas"].get<std::vector<uint64_t>>()});
  const auto target =
      cluster::Assign(previous, {1, 2, 3, 4}, spec.replication_factor, BenchCluster::kPartitions);
  std::string ch;
  uint32_t part = 0;
  for (int i = 0; ch.empty() && i < 100'000; ++i) {
    const std::string c = "bc:handoff" + std::to_string(i);
    part = chorus::testing::PartitionOfChannel(c, BenchCluster::kPartitions);
    if (target[part].primary() == 4 && table[part]["primary"] != 4) ch = c;
  }
  auto publish = [&] {
    json r = chorus::testing::ResultOf(chorus::testing::Api(
        cl.Node(1), "publish", json{{"channel", ch}, {"data", {{"h", 1}}}}.dump()));
    if (r.is_null()) ++out.errors;
    return !r.is_null();
  };
  if (ch.empty() || !publish()) return out;  // the channel exists on its primary

  const auto joined = Clock::now();
  if (!cl.Join(4)) {
    fprintf(stderr, "cluster_bench: %s\n", cl.error().c_str());
    return out;
  }
  Clock::time_point begun{}, switched{};
  auto next_poll = Clock::now();
  const auto deadline = joined + 60s;
  while (Clock::now() < deadline) {
    if (Clock::now() >= next_poll) {
      next_poll = Clock::now() + 20ms;
      const json t = cl.TableIn(1);
      if (!t.is_null()) {
        const json& p = t[part];
        if (begun == Clock::time_point{} && (p.value("handoff_to", 0) == 4 || p["primary"] == 4)) {
          begun = Clock::now();
        }
        if (switched == Clock::time_point{} && p["primary"] == 4) switched = Clock::now();
      }
    }
    const auto sent = Clock::now();
    if (publish() && switched != Clock::time_point{} && sent >= switched) {
      out.from_join_ms = MsSince(joined, Clock::now());
      out.from_begin_ms = MsSince(begun, Clock::now());
      break;
    }
    std::this_thread::sleep_for(5ms);  // pacing the publisher, not a synchronisation
  }
  const bool clean = cl.Stop();
  if (!clean) fprintf(stderr, "cluster_bench: a node did not exit cleanly\n");
  out.ok = clean && out.from_join_ms >= 0;
  return out;
}

}  // namespace chorus::bench
