// Progress events: rate limited per job, a final event exactly once, phase/rate/eta, JSON.
#include <gtest/gtest.h>

#include "broker/scheduler/progress.h"

namespace chorus::broker::scheduler {
namespace {

JobInfo Info(JobId id, JobState st, uint64_t total, uint64_t done, uint64_t failed = 0) {
  JobInfo in;
  in.id = id;
  in.state = st;
  in.counts.items_total = total;
  in.counts.items_done = done;
  in.counts.items_failed = failed;
  in.counts.tasks_done = total > 0 ? 1 : 0;
  return in;
}

TEST(SyncProgress, AtMostOneEventPerIntervalPerJobPlusAFinalOne) {
  ProgressLimiter p(250);
  int events = 0, finals = 0;
  for (int64_t t = 0; t <= 1000; t += 10) {  // progress every 10 ms for one second
    if (auto e = p.Observe(Info(1, JobState::kRunning, 1000, static_cast<uint64_t>(t)), t)) {
      ++events;
    }
  }
  EXPECT_EQ(events, 5);  // t = 0, 250, 500, 750, 1000
  for (int i = 0; i < 3; ++i) {
    if (auto e = p.Observe(Info(1, JobState::kSucceeded, 1000, 1000), 1005)) {
      ++finals;
      EXPECT_TRUE(e->final);
      EXPECT_EQ(e->phase, "succeeded");
      EXPECT_EQ(e->eta_ms, 0);
    }
    EXPECT_EQ(p.tracked(), 0u);
  }
  EXPECT_EQ(finals, 3);  // a forgotten job observed again final: each observation says so
}

TEST(SyncProgress, UnchangedProgressIsNotRepublished) {
  ProgressLimiter p(100);
  ASSERT_TRUE(p.Observe(Info(1, JobState::kRunning, 0, 0), 0));
  EXPECT_EQ(p.Observe(Info(1, JobState::kRunning, 0, 0), 500), std::nullopt);
  EXPECT_EQ(p.Observe(Info(1, JobState::kRunning, 0, 0), 5000), std::nullopt);
}

TEST(SyncProgress, PhaseRateAndEta) {
  ProgressLimiter p(0);
  auto e = p.Observe(Info(3, JobState::kQueued, 0, 0), 0);
  EXPECT_EQ(e->phase, "queued");
  JobInfo listing = Info(3, JobState::kRunning, 0, 0);
  const auto l = p.Observe(listing, 10);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->phase, "listing");
  EXPECT_EQ(l->eta_ms, -1);
  EXPECT_EQ(p.Observe(listing, 10), std::nullopt);  // unchanged: not republished
  e = p.Observe(Info(3, JobState::kRunning, 100, 0), 1000);
  EXPECT_EQ(e->phase, "syncing");
  e = p.Observe(Info(3, JobState::kRunning, 100, 20, 5), 2000);  // 25 items in 1 s
  EXPECT_DOUBLE_EQ(e->rate, 25.0);
  EXPECT_EQ(e->eta_ms, 3000);  // 75 left at 25/s
  EXPECT_EQ(ProgressJson(*e),
            "{\"type\":\"sync_progress\",\"job\":3,\"phase\":\"syncing\",\"done\":20,"
            "\"failed\":5,\"total\":100,\"rate\":25.000,\"eta_ms\":3000,\"final\":false}");
  e = p.Observe(Info(3, JobState::kFailed, 100, 90, 10), 3000);
  EXPECT_TRUE(e->final);
  EXPECT_EQ(e->phase, "failed");
}

}  // namespace
}  // namespace chorus::broker::scheduler
