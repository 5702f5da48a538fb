// Three real chorusd forming one cluster for cluster_bench (docs/cluster.md; the overrides of
// the cluster tests, tests/integration/node_cluster_support.h): replication factor and timings
// chosen per run, the agreed partition table, a channel whose primary is a given member, the
// nodes' chorus_cluster_* counters, and SIGKILL of a member.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_support.h"

namespace chorus::bench {

struct ClusterSpec {
  int replication_factor = 2;
  // true: the cluster tests' timings (heartbeat 100 ms, dead after 600 ms); false: the
  // defaults of docs/cluster.md §14 (500 ms, 2000 ms).
  bool test_timings = true;
};

// Owner: the thread that made it.
class BenchCluster {
 public:
  static constexpr uint32_t kPartitions = 64;

  // Starts three nodes (member ids 1..3) and waits (60 s at most) until each applies the same
  // fully placed map with every member alive. ok() false (and error() set) otherwise.
  explicit BenchCluster(const ClusterSpec& spec);
  ~BenchCluster();
  BenchCluster(const BenchCluster&) = delete;
  BenchCluster& operator=(const BenchCluster&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  chorus::testing::NodeProcess& Node(uint64_t member) { return *nodes_[member - 1]; }

  // A channel of namespace `bc:` (history kept) whose primary in the agreed table is `member`.
  std::string ChannelWithPrimary(uint64_t member, const std::string& stem) const;
  // The primary of `channel`'s partition in `member`'s current map (0 when unknown).
  uint64_t PrimaryIn(uint64_t member, const std::string& channel);
  // The meta group's leader as `member` knows it (0 when unknown).
  uint64_t LeaderIn(uint64_t member);

  // Every chorus_cluster_* counter (name with labels -> value) of every alive node, summed.
  std::map<std::string, double> ClusterCounters();

  // CPU time (user + system, seconds) `member`'s process has used so far; 0 when it is gone.
  double CpuSeconds(uint64_t member);

  // SIGKILL of `member` (reaped; its node is gone for the rest of the run).
  void Kill(uint64_t member);
  // Starts member `id` (> 3) with the voters and seeds of members 1..3 and the spec of the run:
  // it joins as a Raft standby (docs/cluster.md C-2, C-18) and takes partitions by handoff.
  // Node(id) is then that node. False (and error() set) when it did not start.
  bool Join(uint64_t id);
  // The partition table as `member` applies it now (null when unavailable).
  nlohmann::json TableIn(uint64_t member);

  // Stops every node still alive; true when each exited cleanly.
  bool Stop();

 private:
  std::vector<std::unique_ptr<chorus::testing::NodeProcess>> nodes_;
  nlohmann::json table_;
  std::string error_;
  std::vector<std::string> joiner_overrides_;  // the spec's overrides, without member specifics
};

}  // namespace chorus::bench
