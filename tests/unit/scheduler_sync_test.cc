// The reference sync task (seed 001) against a real SQLite catalog and real temp trees, driven
// through the scheduling core: unchanged tree, added/modified/deleted files, manifest diff,
// adaptive batches, idempotent re-runs, clear errors.
#include <gtest/gtest.h>

#include "scheduler_sync_support.h"

namespace chorus::broker::scheduler {
namespace {

using testing::CatalogRows;
using testing::Expected;
using testing::RunJob;
using testing::TempDir;
using testing::WriteFile;

class SyncTest : public ::testing::Test {
 protected:
  SyncTest() : catalog_(dir_ / "catalog.db"), src_(dir_ / "music") {
    for (int i = 0; i < 40; ++i) {
      WriteFile(src_ + "/album" + std::to_string(i % 4) + "/track" + std::to_string(i) + ".flac",
                "audio " + std::to_string(i));
    }
  }
  JobSpec Spec(const std::string& user = "anna") { return JobSpec{user, "normal", src_, catalog_}; }
  SyncTasks& Tasks() {
    if (!tasks_) tasks_ = std::make_unique<SyncTasks>(config_);
    return *tasks_;
  }
  CatalogCounters& Counters() { return *Tasks().Pool(catalog_)->counters(); }
  std::map<std::string, FileRow> Rows(const std::string& user = "anna") {
    return CatalogRows(*Tasks().Pool(catalog_), SyncTasks::Scope(Spec(user)));
  }

  TempDir dir_;
  std::string catalog_, src_;
  SyncConfig config_;
  SchedulerConfig sched_config_;
  std::unique_ptr<SyncTasks> tasks_;
};

TEST_F(SyncTest, FirstSyncWritesEveryFileExactlyOnce) {
  Scheduler s(sched_config_);
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded) << (job.errors.empty() ? "" : job.errors[0]);
  EXPECT_EQ(job.counts.items_total, 40u);
  EXPECT_EQ(job.counts.items_done, 40u);
  EXPECT_EQ(Rows(), Expected(src_));
  EXPECT_EQ(Counters().rows_written.load(), 40u);
}

TEST_F(SyncTest, UnchangedTreeCostsOneCheckNoRowReadNoRowWritten) {
  Scheduler s(sched_config_);
  ASSERT_EQ(RunJob(s, Tasks(), Spec()).state, JobState::kSucceeded);
  auto& c = Counters();
  const uint64_t written = c.rows_written, read = c.rows_read, agg = c.aggregate_queries,
                 keys = c.summary_reads, hashed = Tasks().counters().files_hashed;
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.counts.tasks_total, 1u);  // the listing alone
  EXPECT_EQ(c.rows_written.load(), written);
  EXPECT_EQ(c.rows_read.load(), read);
  EXPECT_EQ(c.aggregate_queries.load(), agg);   // not even the "remote version" query
  EXPECT_EQ(c.summary_reads.load(), keys + 1);  // the one cheap check
  EXPECT_EQ(Tasks().counters().files_hashed.load(), hashed);
  EXPECT_EQ(Tasks().counters().unchanged.load(), 1u);
}

TEST_F(SyncTest, AddedModifiedDeletedAndRenamedFilesAreReflectedExactly) {
  Scheduler s(sched_config_);
  ASSERT_EQ(RunJob(s, Tasks(), Spec()).state, JobState::kSucceeded);
  const int64_t v = testing::CtimeNs(src_ + "/album1/track5.flac");
  for (int i = 0; i < 3; ++i) WriteFile(src_ + "/new/n" + std::to_string(i), "new");
  testing::ModifyFile(src_ + "/album1/track5.flac", "remastered", v);
  testing::ModifyFile(src_ + "/album2/track6.flac", "remastered too", v);
  std::filesystem::remove(src_ + "/album3/track7.flac");
  std::filesystem::remove(src_ + "/album0/track0.flac");
  std::filesystem::rename(src_ + "/album0/track4.flac", src_ + "/album0/track4-renamed.flac");
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded) << (job.errors.empty() ? "" : job.errors[0]);
  EXPECT_EQ(Rows(), Expected(src_));
  EXPECT_EQ(Rows().size(), 41u);
  EXPECT_EQ(Rows().at("album1/track5.flac").size, std::string("remastered").size());
  // Converged: the next run is the cheap check.
  EXPECT_EQ(RunJob(s, Tasks(), Spec()).counts.tasks_total, 1u);
}

TEST_F(SyncTest, DeletionWithEqualVersionsIsFoundByTheManifestDiff) {
  config_.manifest_batch = 7;  // several comparison steps
  Scheduler s(sched_config_);
  ASSERT_EQ(RunJob(s, Tasks(), Spec()).state, JobState::kSucceeded);
  // Remove files that do not hold the newest version: counts differ, versions are equal.
  Listing l;
  ASSERT_TRUE(DirectorySource(src_).List(&l).ok());
  int removed = 0;
  for (const auto& e : l.entries) {
    if (e.version != l.summary.max_version && removed < 5) {
      std::filesystem::remove(src_ + "/" + e.path);
      ++removed;
    }
  }
  const uint64_t read_before = Counters().rows_read;
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.counts.tasks_total, 3u);  // list, diff, finish
  EXPECT_EQ(Counters().rows_deleted.load(), 5u);
  EXPECT_EQ(Counters().rows_read.load() - read_before, 40u);  // the manifest, batch by batch
  EXPECT_EQ(Rows(), Expected(src_));
}

TEST_F(SyncTest, BatchSizeShrinksAfterInjectedFailuresAndGrowsBack) {
  for (int i = 40; i < 400; ++i) WriteFile(src_ + "/bulk/f" + std::to_string(i), "x");
  config_.files_per_task = 1000;
  config_.batch = BatchTunerConfig{1, 128, 32, 5'000'000};
  std::vector<std::pair<uint32_t, bool>> trace;
  config_.on_batch = [&](uint32_t n, bool ok) { trace.emplace_back(n, ok); };
  Tasks().Pool(catalog_)->faults()->fail_batches = 3;
  Scheduler s(sched_config_);
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded);
  ASSERT_GE(trace.size(), 6u);
  EXPECT_EQ(trace[0], std::make_pair(32u, false));
  EXPECT_EQ(trace[1], std::make_pair(16u, false));
  EXPECT_EQ(trace[2], std::make_pair(8u, false));
  EXPECT_EQ(trace[3], std::make_pair(4u, true));
  EXPECT_EQ(trace[4], std::make_pair(8u, true));
  uint32_t biggest_after = 0;
  for (size_t i = 4; i < trace.size(); ++i) biggest_after = std::max(biggest_after, trace[i].first);
  EXPECT_EQ(biggest_after, 128u);  // grown back past the starting size
  EXPECT_EQ(Rows().size(), 400u);
}

TEST_F(SyncTest, FailureAtMinimumBatchSkipsAheadAndTheRetryWritesTheRest) {
  config_.batch = BatchTunerConfig{1, 8, 1, 5'000'000};
  sched_config_.backoff_base_ms = 10;
  std::vector<std::pair<uint32_t, bool>> trace;
  config_.on_batch = [&](uint32_t n, bool ok) { trace.emplace_back(n, ok); };
  Tasks().Pool(catalog_)->faults()->fail_batches = 2;  // the first two rows fail at size 1
  Scheduler s(sched_config_);
  auto job = RunJob(s, Tasks(), Spec());
  EXPECT_EQ(job.state, JobState::kSucceeded);
  EXPECT_EQ(job.counts.retries, 1u);
  EXPECT_EQ(Tasks().counters().rows_skipped.load(), 2u);
  EXPECT_EQ(trace[2].second, true);  // skipped ahead to the third row
  EXPECT_EQ(Rows(), Expected(src_));
  EXPECT_EQ(Counters().rows_written.load(), 40u);  // the retry wrote only the two missing rows
}

TEST_F(SyncTest, ARerunOfATaskAfterACrashWritesEachFileExactlyOnce) {
  Scheduler s(sched_config_);
  ASSERT_EQ(RunJob(s, Tasks(), Spec()).state, JobState::kSucceeded);
  // The worker crashed after committing but before reporting: the task runs again.
  Lease l;
  l.kind = "sync";
  l.spec = Spec();
  Listing listing;
  ASSERT_TRUE(DirectorySource(src_).List(&listing).ok());
  for (const auto& e : listing.entries) l.payload += e.path + "\n";
  testing::AlwaysAlive ctx;
  auto out = Tasks().Run(l, ctx);
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.items_done, 40u);
  EXPECT_EQ(Counters().rows_written.load(), 40u);  // nothing written twice
  EXPECT_EQ(Rows(), Expected(src_));
}

TEST_F(SyncTest, UsersAreSeparateScopesInOneCatalog) {
  Scheduler s(sched_config_);
  ASSERT_EQ(RunJob(s, Tasks(), Spec("anna")).state, JobState::kSucceeded);
  ASSERT_EQ(RunJob(s, Tasks(), Spec("bob")).state, JobState::kSucceeded);
  std::filesystem::remove(src_ + "/album0/track0.flac");
  ASSERT_EQ(RunJob(s, Tasks(), Spec("anna")).state, JobState::kSucceeded);
  EXPECT_EQ(Rows("anna").size(), 39u);
  EXPECT_EQ(Rows("bob").size(), 40u);
}

TEST_F(SyncTest, MissingSourceFailsItsJobWithAClearErrorAndNoRetry) {
  Scheduler s(sched_config_);
  auto job = RunJob(s, Tasks(), JobSpec{"anna", "normal", dir_ / "nope", catalog_});
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.counts.retries, 0u);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_NE(job.errors[0].find(dir_ / "nope"), std::string::npos) << job.errors[0];
  EXPECT_NE(job.errors[0].find("No such file or directory"), std::string::npos) << job.errors[0];
  EXPECT_EQ(RunJob(s, Tasks(), Spec("bob")).state, JobState::kSucceeded);
}

TEST_F(SyncTest, UnopenableCatalogFailsItsJobWithAClearErrorAfterRetries) {
  sched_config_.max_attempts = 2;
  sched_config_.backoff_base_ms = 10;
  config_.pool.backoff_base = std::chrono::milliseconds(0);
  Scheduler s(sched_config_);
  const std::string bad = dir_ / "no/such/dir/catalog.db";
  auto job = RunJob(s, Tasks(), JobSpec{"anna", "normal", src_, bad});
  EXPECT_EQ(job.state, JobState::kFailed);
  ASSERT_EQ(job.errors.size(), 1u);
  EXPECT_NE(job.errors[0].find("catalog '" + bad + "' cannot be opened"), std::string::npos)
      << job.errors[0];
  EXPECT_EQ(RunJob(s, Tasks(), Spec("bob")).state, JobState::kSucceeded);
}

TEST(SyncConfigTest, IsValidated) {
  EXPECT_EQ(ValidateConfig(SyncConfig{}), "");
  SyncConfig c;
  c.files_per_task = 0;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.batch = BatchTunerConfig{4, 8, 2, 1000};  // initial below min
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.batch.min = 0;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.pool.size = 0;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.manifest_batch = 0;
  EXPECT_NE(ValidateConfig(c), "");
}

TEST(BatchTuner, GrowsOnFastFullBatchesShrinksOnSlowOrFailed) {
  BatchTuner t(BatchTunerConfig{2, 64, 16, 1000});
  t.OnSuccess(100, 16);
  EXPECT_EQ(t.size(), 32u);
  t.OnSuccess(100, 5);  // a partial batch says nothing about a bigger one
  EXPECT_EQ(t.size(), 32u);
  t.OnSuccess(800, 32);  // within target but not fast: keep
  EXPECT_EQ(t.size(), 32u);
  t.OnSuccess(5000, 32);  // slow
  EXPECT_EQ(t.size(), 16u);
  t.OnFailure();
  t.OnFailure();
  t.OnFailure();
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.at_min());
  EXPECT_EQ(BatchTuner(BatchTunerConfig{2, 64, 16, 1000}, 1000).size(), 64u);  // clamped history
}

}  // namespace
}  // namespace chorus::broker::scheduler
