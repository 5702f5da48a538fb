// The sync scheduler of a real chorusd with an external worker (docs/scheduler.md "External
// workers", docs/protocol/worker.md) and its state in the node's CHP server (subtrees s.<user>,
// "Scheduler state in CHP") as chorus-snapshot shows it. Real trees, SQLite catalogs, processes.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "node_cluster_support.h"
#include "node_native_support.h"
#include "node_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;
using nlohmann::json;

TEST(NodeSyncWorkers, AnExternalWorkerRunsLeasesAndTheSnapshotShowsQueuesJobsAndLeases) {
  TempDir roots, catalogs;
  for (int i = 0; i < 700; ++i) {  // 3 `sync` tasks of 256 files
    WriteFile(roots / ("tree/d" + std::to_string(i % 9) + "/f" + std::to_string(i)),
              "file " + std::to_string(i));
  }
  const std::string worker_endpoint = "tcp://127.0.0.1:" + std::to_string(PickPort());
  NodeOptions o;
  o.extra_toml =
      "\n[scheduler]\nenabled = true\nslots = 1\nlease_ms = 20000\n"
      "source_roots = [\"" +
      roots.path() + "\"]\ncatalog_dir = \"" + catalogs.path() +
      "\"\nprogress_interval_ms = 100\nworker_endpoint = \"" + worker_endpoint +
      "\"\nmax_workers = 4\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  ChildProcess worker(CHORUS_WORKER_BIN, {"--connect", worker_endpoint, "--slots", "2"});
  ASSERT_NE(worker.ReadLine().find("attached"), std::string::npos);
  EXPECT_EQ(MetricValue(node, "chorus_scheduler_workers_attached"), 1);
  EXPECT_EQ(MetricValue(node, "chorus_scheduler_worker_slots"), 2);
  EXPECT_EQ(MetricValue(node, "chorus_scheduler_free_slots"), 3);  // 1 in-process + 2

  // Stopped, the worker keeps the leases it gets (the in-process slot takes the first task of
  // each round, the worker the rest) without finishing them: they show in the snapshot.
  worker.Signal(SIGSTOP);
  const HttpResult r =
      Api(node, "sync_submit",
          json{{"user", "anna"}, {"source", roots / "tree"}, {"catalog", "cat"}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const uint64_t job = json::parse(r.body)["result"]["job"].get<uint64_t>();
  std::string shown;
  EXPECT_TRUE(EventuallyTrue(
      [&] {
        shown = RunCommand(CHORUS_SNAPSHOT_BIN, {node.chp_command(), "--scheduler"}).out;
        return shown.find("worker 1") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << shown;
  EXPECT_NE(shown.find("user anna  tier=normal quantum=1"), std::string::npos) << shown;
  EXPECT_NE(shown.find("job " + std::to_string(job) + "  running"), std::string::npos) << shown;
  EXPECT_NE(shown.find("node_slots=3"), std::string::npos) << shown;
  EXPECT_EQ(MetricValue(node, "chorus_scheduler_worker_busy"), 2);
  // The raw records are in subtree s.anna too.
  const std::string raw =
      RunCommand(CHORUS_SNAPSHOT_BIN, {node.chp_command(), "--subtree", "s.anna"}).out;
  EXPECT_NE(raw.find("job/" + std::to_string(job)), std::string::npos) << raw;
  EXPECT_NE(raw.find("lease/"), std::string::npos) << raw;

  worker.Signal(SIGCONT);  // heartbeats resume long before the 20 s lease: nothing expires
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        shown = RunCommand(CHORUS_SNAPSHOT_BIN, {node.chp_command(), "--scheduler"}).out;
        return shown.find("job " + std::to_string(job) + "  succeeded") != std::string::npos;
      },
      std::chrono::seconds(20)))
      << shown;
  EXPECT_NE(shown.find("items 700/700"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("lease task"), std::string::npos) << shown;  // every lease ended
  EXPECT_EQ(MetricValue(node, "chorus_scheduler_leases_expired_total"), 0);
  EXPECT_TRUE(worker.Terminate());
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace chorus::testing
