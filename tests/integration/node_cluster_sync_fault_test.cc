// The sync scheduler across a failover (issue 13 test "Kill -9 the owning node mid-job";
// docs/scheduler.md "In a cluster", docs/cluster.md §16.6), on three real chorusd with short
// timings (heartbeat 100 ms, dead after 600 ms), R = 2, every node with the scheduler on and the
// same source root and catalog directory (one SQLite catalog file every node reaches).
// A user whose `sync:<user>` primary is A; the job is submitted through a third node Y (routed
// to A); a subscriber on Y watches `sync:<user>`. Mid-job A is killed with SIGKILL: the backup X
// is promoted, takes the user's jobs over from its copy of `s.<user>` and finishes the job; the
// catalog then holds every file of the tree exactly once with the right content, and Y's
// subscriber sees the progress events continue on the same channel, in order, no gap, no
// duplicate, up to the final event.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "broker/scheduler/catalog.h"
#include "node_cluster_support.h"
#include "node_native_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;
using nlohmann::json;

constexpr int kFiles = 60;
constexpr uintmax_t kFileBytes = 16u << 20;  // sparse: hashing takes time, the disk holds nothing

struct Event {
  uint64_t offset = 0;
  json data;
};

class NodeClusterSyncFault : public ClusterFixture {
 protected:
  void SetUp() override {
    // One slot and one file per task: the job is 60 tasks of one 16 MiB hash each, long enough
    // to be killed in the middle.
    StartCluster(3, {"scheduler.enabled=true", "scheduler.source_roots=" + roots_.path(),
                     "scheduler.catalog_dir=" + catalogs_.path(), "scheduler.slots=1",
                     "scheduler.files_per_task=1", "scheduler.progress_interval_ms=100"});
  }
  void TearDown() override {
    for (auto& node : nodes_) {
      if (node) {
        EXPECT_TRUE(node->Stop()) << "unclean shutdown";
      }
    }
  }

  // A user whose `sync:<user>` partition has primary 1; sets backup_ and other_.
  void Place() {
    for (int i = 0;; ++i) {
      user_ = "kill" + std::to_string(i);
      const json& p = table_[PartitionOfChannel(Channel(), kPartitions)];
      if (p["primary"] != 1) continue;
      for (const json& r : p["replicas"]) {
        if (r.get<uint64_t>() != 1) backup_ = r.get<uint64_t>();
      }
      break;
    }
    ASSERT_NE(backup_, 0u) << "R = 2: the partition has a backup";
    other_ = 5 - backup_;
  }
  std::string Channel() const { return "sync:" + user_; }

  // The user's job `job` as `node` reports it (sync_status by user: routed to the primary).
  json JobOn(NodeProcess& node, uint64_t job) {
    const HttpResult r = Api(node, "sync_status", json{{"user", user_}}.dump());
    json j = json::parse(r.body, nullptr, false);
    if (r.status != 200 || j.is_discarded() || !j.contains("result")) return nullptr;
    for (const json& x : j["result"]["jobs"]) {
      if (x.value("id", uint64_t{0}) == job) return x;
    }
    return nullptr;
  }

  // Reads `s`'s pub pushes on the channel into events_ until a final event (or 20 s silent).
  void ReadEvents(RawSession& s, bool until_final) {
    while (!until_final || events_.empty() || !events_.back().data.value("final", false)) {
      auto f = s.Next(until_final ? 20s : 0ms);
      if (!f) return;
      if (!f->IsPush() || f->Str("push") != "pub" || f->Str("channel") != Channel()) continue;
      events_.push_back({f->Uint("data.offset"), json::parse(f->Str("data.data"), nullptr, false)});
    }
  }

  TempDir roots_, catalogs_;
  std::string user_;
  uint64_t backup_ = 0, other_ = 0;
  std::vector<Event> events_;
};

TEST_F(NodeClusterSyncFault, KillNineOfTheOwnerMidJobFinishesTheJobOnTheNewPrimary) {
  ASSERT_NO_FATAL_FAILURE(Place());
  NodeProcess &a = Node(1), &x = Node(backup_), &y = Node(other_);
  const std::string tree = roots_ / user_;
  for (int i = 0; i < kFiles; ++i) {
    const std::string file = tree + "/d" + std::to_string(i % 5) + "/f" + std::to_string(i);
    WriteFile(file, "file " + std::to_string(i) + " of " + user_);
    std::filesystem::resize_file(file, kFileBytes);
  }

  // Submitted through Y: served by A, the primary of sync:<user> (routing, C-6 style).
  const HttpResult sub =
      Api(y, "sync_submit", json{{"user", user_}, {"source", tree}, {"catalog", "shared"}}.dump());
  ASSERT_EQ(sub.status, 200) << sub.body;
  const uint64_t job = json::parse(sub.body)["result"]["job"].get<uint64_t>();
  EXPECT_GE(job >> 40, 1u) << "job ids carry the owner's id block (member 1)";
  const json on_a = ResultOf(Api(a, "sync_status", json{{"job", job}}.dump()));
  ASSERT_FALSE(on_a.is_null()) << "the job runs on A, the primary";

  // A subscriber on Y once A published the first event (Y follows A's line, C-16).
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json h = ResultOf(Api(a, "history", json{{"channel", Channel()}, {"limit", 1}}.dump()));
        return !h.is_null() && h.value("offset", 0) >= 1;
      },
      10s));
  RawSession sy(ctx_, y.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sy, user_).empty());
  auto r = sy.Call("subscribe", P({{"channel", Channel()}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);

  // The backup is in the partition's in_sync (the promotion keeps the lineage, C-11).
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(a, Channel()), backup_); }, 10s))
      << "member " << backup_ << " never joined in_sync of " << Channel();
  // Mid-job: some files done, the job not finished; Y has seen progress events.
  json mid;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        mid = JobOn(y, job);
        ReadEvents(sy, false);
        return !mid.is_null() && mid.value("done", 0) >= 5 && !events_.empty();
      },
      20s));
  ASSERT_LT(mid.value("done", 0), kFiles) << "the job ended before the kill: " << mid.dump();
  ASSERT_EQ(mid.value("state", ""), "running") << mid.dump();
  const size_t events_before_kill = events_.size();
  const json before = table_[PartitionOfChannel(Channel(), kPartitions)];

  a.process().Signal(SIGKILL);
  EXPECT_NE(a.process().Wait(5s), -1);
  nodes_[0].reset();

  // X is promoted with the lineage kept and finishes the job.
  json promoted;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        promoted = PartitionOn(x, Channel());
        return !promoted.is_null() && promoted["primary"] == backup_ &&
               promoted["epoch"].get<uint64_t>() > before["epoch"].get<uint64_t>();
      },
      15s))
      << "no failover to member " << backup_;
  EXPECT_EQ(promoted["lineage"], before["lineage"]);
  json fin;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        fin = JobOn(y, job);  // routed to X now
        return !fin.is_null() && fin.value("state", "") != "running" &&
               fin.value("state", "") != "queued";
      },
      60s))
      << "the job did not finish on the new primary: " << fin.dump();
  EXPECT_EQ(fin.value("state", ""), "succeeded") << fin.dump();
  EXPECT_EQ(fin.value("failed", -1), 0) << fin.dump();
  EXPECT_EQ(Metric(x, "chorus_scheduler_jobs_adopted_total"), 1);

  // Every file of the tree in the catalog exactly once, with its content's hash.
  broker::scheduler::CatalogPool pool(catalogs_ / "shared.db", {});
  const std::string scope = user_ + ":" + std::filesystem::canonical(tree).string();
  const auto rows = broker::scheduler::testing::CatalogRows(pool, scope);
  const auto want = broker::scheduler::testing::Expected(tree);
  ASSERT_EQ(want.size(), static_cast<size_t>(kFiles));
  EXPECT_EQ(rows.size(), want.size()) << "rows of " << scope;
  for (const auto& [path, w] : want) {
    auto it = rows.find(path);
    ASSERT_NE(it, rows.end()) << path << " missing from the catalog";
    EXPECT_EQ(it->second.hash, w.hash) << path;
    EXPECT_EQ(it->second.size, w.size) << path;
  }

  // Y's subscriber: the events continued on sync:<user> after the kill, contiguous offsets
  // (one line: no gap, no duplicate), up to the final event of the job.
  ReadEvents(sy, true);
  ASSERT_FALSE(events_.empty());
  for (size_t i = 1; i < events_.size(); ++i) {
    EXPECT_EQ(events_[i].offset, events_[i - 1].offset + 1)
        << (events_[i].offset <= events_[i - 1].offset ? "duplicate" : "gap") << " at event " << i;
  }
  ASSERT_GT(events_.size(), events_before_kill) << "no progress event after the kill";
  const json& last = events_.back().data;
  EXPECT_TRUE(last.value("final", false)) << last.dump();
  EXPECT_EQ(last.value("job", uint64_t{0}), job) << last.dump();
  EXPECT_EQ(last.value("state", ""), "succeeded") << last.dump();
  EXPECT_GT(last.value("done", 0), mid.value("done", 0)) << last.dump();
  EXPECT_EQ(Metric(x, "chorus_cluster_lines_continued_total"), 1);
}

// Routing's clear error: the primary of sync:<user> stopped (SIGSTOP), a call through another
// node gets 114 "unavailable, retry" naming the silent member within the forward timeout.
TEST_F(NodeClusterSyncFault, ACallWhosePrimaryIsSilentGetsUnavailableNamingIt) {
  ASSERT_NO_FATAL_FAILURE(Place());
  NodeProcess &a = Node(1), &y = Node(other_);
  a.process().Signal(SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  const HttpResult r = Api(y, "sync_status", json{{"user", user_}}.dump());
  const auto took = std::chrono::steady_clock::now() - t0;
  a.process().Signal(SIGCONT);
  EXPECT_EQ(r.status, 503) << r.body;
  json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  EXPECT_EQ(j["error"].value("code", 0), 114) << r.body;
  EXPECT_NE(j["error"].value("message", "").find("no answer from member 1"), std::string::npos)
      << r.body;
  EXPECT_LT(took, 4500ms) << "answered within the forward timeout (3 s)";
}

}  // namespace
}  // namespace chorus::testing
