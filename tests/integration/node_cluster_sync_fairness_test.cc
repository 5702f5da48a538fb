// Cluster-wide fairness of the sync scheduler, measured (issue 13 "Slots and fairness";
// docs/scheduler.md "Cluster-wide fairness"): three real chorusd with one slot each, nine users
// of the normal tier placed 4 / 3 / 2 over the nodes (by the primaries of their `sync:<user>`),
// each with a job of many one-file tasks, all submitted through one node (routed to the
// owners). Over a window in which every user is backlogged, each user's throughput (files done
// per second) is read from sync_status; the test prints Jain's index over all nine users, the
// index the stated bound predicts for that placement, J = N^2 / (B * sum_n 1/B_n) (equal node
// capacity), and each node's own index and capacity. Asserted: each node is fair over its own
// users (the scheduler's guarantee, J >= 0.95); the cluster index is only checked for sanity
// (> 0.5): the three nodes share this machine's cores with whatever else runs, so their
// capacities differ by more than the design assumes; the printed figures are what
// docs/benchmarks.md records.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "node_cluster_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;
using nlohmann::json;

constexpr int kFiles = 4000;  // per user: more than a 4 s window finishes (1000 did once)
constexpr uintmax_t kFileBytes = 1u << 20;  // sparse: a hash of 1 MiB per task

double Jain(const std::vector<double>& x) {
  double sum = 0, sq = 0;
  for (double v : x) {
    sum += v;
    sq += v * v;
  }
  return sq == 0 ? 0 : sum * sum / (static_cast<double>(x.size()) * sq);
}

class NodeClusterSyncFairness : public ClusterFixture {
 protected:
  void SetUp() override {
    StartCluster(3, {"scheduler.enabled=true", "scheduler.source_roots=" + roots_.path(),
                     "scheduler.catalog_dir=" + catalogs_.path(), "scheduler.slots=1",
                     "scheduler.files_per_task=1", "scheduler.progress_interval_ms=1000"});
  }
  void TearDown() override {
    for (auto& node : nodes_) {
      if (node) {
        EXPECT_TRUE(node->Stop()) << "unclean shutdown";
      }
    }
  }
  TempDir roots_, catalogs_;
};

TEST_F(NodeClusterSyncFairness, JainIndexOverAllUsersAcrossThreeNodesMatchesTheStatedBound) {
  // Users placed 4 / 3 / 2 on members 1 / 2 / 3.
  const std::map<uint64_t, int> want = {{1, 4}, {2, 3}, {3, 2}};
  std::map<uint64_t, std::vector<std::string>> by_node;
  for (int i = 0; by_node[1].size() + by_node[2].size() + by_node[3].size() < 9; ++i) {
    const std::string u = "fair" + std::to_string(i);
    const uint64_t owner = PrimaryOf("sync:" + u);
    if (static_cast<int>(by_node[owner].size()) < want.at(owner)) by_node[owner].push_back(u);
  }
  std::map<std::string, uint64_t> jobs;
  NodeProcess& via = Node(1);
  for (const auto& [node, users] : by_node) {
    for (const std::string& u : users) {
      const std::string tree = roots_ / u;
      for (int i = 0; i < kFiles; ++i) {
        const std::string f = tree + "/d" + std::to_string(i % 8) + "/f" + std::to_string(i);
        WriteFile(f, u + " " + std::to_string(i));
        std::filesystem::resize_file(f, kFileBytes);
      }
      const HttpResult r =
          Api(via, "sync_submit", json{{"user", u}, {"source", tree}, {"catalog", "fair"}}.dump());
      ASSERT_EQ(r.status, 200) << r.body;
      jobs[u] = json::parse(r.body)["result"]["job"].get<uint64_t>();
    }
  }
  // Each user's files done, read from its owner (sync_status by user is routed there).
  auto done_of = [&](const std::string& u) -> int64_t {
    json r = ResultOf(Api(via, "sync_status", json{{"user", u}}.dump()));
    if (r.is_null()) return -1;
    for (const json& j : r["jobs"]) {
      if (j.value("id", uint64_t{0}) == jobs[u]) {
        return j.value("total", 0) == kFiles ? j.value("done", int64_t{0}) : -1;
      }
    }
    return -1;
  };
  // The window starts once every listing is done and every user has finished some files.
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        for (const auto& [u, job] : jobs) {
          if (done_of(u) < 1) return false;
        }
        return true;
      },
      30s));
  // Each user's count is read with its own time (a read may need a retry under load).
  struct Sample {
    int64_t done = -1;
    std::chrono::steady_clock::time_point at;
  };
  auto sample = [&](const std::string& u) {
    Sample x;
    EventuallyTrue(
        [&] {
          x.done = done_of(u);
          x.at = std::chrono::steady_clock::now();
          return x.done >= 0;
        },
        10s);
    return x;
  };
  std::map<std::string, Sample> start, end;
  for (const auto& [u, job] : jobs) start[u] = sample(u);
  // The window: 4 s of wall time (a measurement period, not a synchronisation).
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 4s) std::this_thread::sleep_for(50ms);
  for (const auto& [u, job] : jobs) end[u] = sample(u);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all;
  double inverse_sum = 0;
  for (const auto& [node, users] : by_node) {
    std::vector<double> mine;
    for (const std::string& u : users) {
      ASSERT_GE(start[u].done, 0) << u << ": sync_status failed";
      ASSERT_GE(end[u].done, 0) << u << ": sync_status failed";
      ASSERT_LT(end[u].done, kFiles) << u << " was not backlogged for the whole window";
      const double rate = static_cast<double>(end[u].done - start[u].done) /
                          std::chrono::duration<double>(end[u].at - start[u].at).count();
      mine.push_back(rate);
      all.push_back(rate);
      std::printf("node %llu user %s: %.1f files/s\n", static_cast<unsigned long long>(node),
                  u.c_str(), rate);
    }
    inverse_sum += 1.0 / static_cast<double>(users.size());
    const double j = Jain(mine);
    double capacity = 0;
    for (double r : mine) capacity += r;
    std::printf("node %llu: %zu users, %.1f files/s in all, Jain %.3f\n",
                static_cast<unsigned long long>(node), users.size(), capacity, j);
    EXPECT_GE(j, 0.95) << "node " << node << " is not fair over its own users";
  }
  const double predicted = 9.0 / (9.0 * inverse_sum);  // N^2 / (B * sum 1/B_n), N = 3, B = 9
  const double measured = Jain(all);
  std::printf(
      "cluster: 9 users placed 4/3/2 over 3 nodes, window %.1f s: Jain %.3f "
      "(stated bound for this placement %.3f)\n",
      secs, measured, predicted);
  // The nodes' capacities on this shared machine differ (printed above); the index is a
  // figure to record, checked only for sanity here.
  EXPECT_GT(measured, 0.5);
}

}  // namespace
}  // namespace chorus::testing
