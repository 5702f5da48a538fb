// The in-process runner (owner thread + worker threads) in real time: real temp trees synced for
// several users, hung tasks freed at lease expiry, offline sources, cancel, heartbeats.
#include <gtest/gtest.h>

#include <condition_variable>

#include "broker/scheduler/runner.h"
#include "scheduler_sync_support.h"
#include "test_util.h"

namespace chorus::broker::scheduler {
namespace {

using chorus::testing::EventuallyTrue;
using std::chrono::milliseconds;

// A gate that hung tasks wait on until the test opens it (at the latest in its destructor).
class Gate {
 public:
  ~Gate() { Open(); }
  void Open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Opens a gate when it goes out of scope: declared after the Runner, so a failing assertion
// releases hung tasks before the Runner's destructor joins their threads.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.Open(); }
};

bool Finished(Runner& r, JobId id) {
  auto st = r.Status(id);
  return st && IsFinal(st->state);
}

TEST(SchedulerRunner, SyncsRealDirectoriesForSeveralUsers) {
  testing::TempDir dir;
  const std::string catalog = dir / "catalog.db";
  std::vector<std::string> users = {"anna", "bob", "charlie", "dora", "emil"};
  for (size_t u = 0; u < users.size(); ++u) {
    for (size_t i = 0; i < 30 * (u + 1); ++i) {
      testing::WriteFile(dir / (users[u] + "/d" + std::to_string(i % 5) + "/f" + std::to_string(i)),
                         users[u] + std::to_string(i));
    }
  }
  SyncConfig sc;
  sc.files_per_task = 16;
  sc.pool.size = 2;
  SyncTasks tasks(sc);
  RunnerConfig rc;
  rc.scheduler.slots = 3;
  rc.heartbeat_interval_ms = 100;
  Runner runner(rc, SyncExecutor(tasks));
  std::vector<JobId> jobs;
  for (size_t u = 0; u < users.size(); ++u) {
    auto id =
        runner.Submit(JobSpec{users[u], u == 2 ? "premium" : "normal", dir / users[u], catalog},
                      SyncTasks::FirstTasks());
    ASSERT_TRUE(id);
    jobs.push_back(*id);
  }
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        return std::all_of(jobs.begin(), jobs.end(), [&](JobId j) { return Finished(runner, j); });
      },
      std::chrono::seconds(30)));
  for (size_t u = 0; u < users.size(); ++u) {
    auto st = runner.Status(jobs[u]);
    EXPECT_EQ(st->state, JobState::kSucceeded) << users[u];
    EXPECT_EQ(st->counts.items_done, 30 * (u + 1));
    JobSpec spec{users[u], "normal", dir / users[u], catalog};
    EXPECT_EQ(testing::CatalogRows(*tasks.Pool(catalog), SyncTasks::Scope(spec)),
              testing::Expected(dir / users[u]));
  }
  EXPECT_LE(tasks.Pool(catalog)->Stats().peak_open, 2u);
  EXPECT_EQ(runner.Stats().running, 0u);
}

TEST(SchedulerRunner, HungTaskLosesItsSlotAtLeaseExpiryAndItsLateResultIsIgnored) {
  Gate gate;
  std::atomic<int> hung_runs{0};
  RunnerConfig rc;
  rc.scheduler.slots = 1;
  rc.scheduler.lease_ms = 200;
  rc.scheduler.max_attempts = 2;
  rc.scheduler.backoff_base_ms = 10;
  rc.heartbeat_interval_ms = 50;
  rc.spare_workers = 2;
  Runner runner(rc, [&](const Lease& l, TaskContext&) {
    if (l.kind == "hang") {
      ++hung_runs;
      gate.Wait();  // never heartbeats, returns only when the test opens the gate
    }
    return TaskOutcome{};
  });
  OpenOnExit release{gate};
  auto hung = runner.Submit(JobSpec{"nas", "normal", "/nas", "/c"}, {TaskSpec{"hang", "", false}});
  ASSERT_TRUE(EventuallyTrue([&] { return hung_runs.load() == 1; }));
  auto other = runner.Submit(JobSpec{"b", "normal", "/b", "/c"},
                             std::vector<TaskSpec>(5, TaskSpec{"work", "", false}));
  ASSERT_TRUE(EventuallyTrue([&] { return Finished(runner, *other); }, std::chrono::seconds(5)));
  EXPECT_EQ(runner.Status(*other)->state, JobState::kSucceeded);
  ASSERT_TRUE(EventuallyTrue([&] { return Finished(runner, *hung); }, std::chrono::seconds(5)));
  auto st = runner.Status(*hung);
  EXPECT_EQ(st->state, JobState::kFailed);  // retried once, then failed at the limit
  EXPECT_EQ(st->counts.leases_expired, 2u);
  EXPECT_EQ(hung_runs.load(), 2);
  gate.Open();  // both hung attempts finally answer: fenced off
  ASSERT_TRUE(EventuallyTrue([&] { return runner.Stats().stale_results == 2; }));
  EXPECT_EQ(runner.Status(*hung)->counts.tasks_done, 0u);
}

TEST(SchedulerRunner, OfflineSourceDelaysOnlyItsOwnJob) {
  testing::TempDir dir;
  for (int i = 0; i < 20; ++i) testing::WriteFile(dir / ("ok/f" + std::to_string(i)), "x");
  Gate nas;
  struct HangingSource final : Source {
    explicit HangingSource(Gate& g) : g_(g) {}
    Status List(Listing*) override {
      g_.Wait();
      return {Errc::kSourceMissing, "NAS switched off"};
    }
    Status Read(const std::string&, SourceEntry*, std::string*) override { return List(nullptr); }
    Gate& g_;
  };
  SyncTasks tasks(SyncConfig{}, [&](const std::string& src) -> std::unique_ptr<Source> {
    if (src == "offline") return std::make_unique<HangingSource>(nas);
    return std::make_unique<DirectorySource>(src);
  });
  RunnerConfig rc;
  rc.scheduler.slots = 2;
  rc.scheduler.lease_ms = 60'000;
  rc.heartbeat_interval_ms = 100;
  Runner runner(rc, SyncExecutor(tasks));
  OpenOnExit release{nas};
  auto off =
      runner.Submit(JobSpec{"nas", "normal", "offline", dir / "c.db"}, SyncTasks::FirstTasks());
  auto ok =
      runner.Submit(JobSpec{"b", "normal", dir / "ok", dir / "c.db"}, SyncTasks::FirstTasks());
  ASSERT_TRUE(EventuallyTrue([&] { return Finished(runner, *ok); }, std::chrono::seconds(10)));
  EXPECT_EQ(runner.Status(*ok)->state, JobState::kSucceeded);
  EXPECT_EQ(runner.Status(*ok)->counts.items_done, 20u);
  EXPECT_EQ(runner.Status(*off)->state, JobState::kRunning);
  ASSERT_TRUE(runner.Cancel(*off));
  nas.Open();
}

TEST(SchedulerRunner, CancelRevokesTheRunningTaskWhichSeesItOnHeartbeat) {
  std::atomic<bool> started{false}, saw_revoke{false};
  RunnerConfig rc;
  rc.scheduler.slots = 1;
  rc.heartbeat_interval_ms = 10;
  Runner runner(rc, [&](const Lease&, TaskContext& ctx) {
    started = true;
    while (ctx.Heartbeat()) std::this_thread::yield();  // long work, checking its lease
    saw_revoke = true;
    return TaskOutcome{};
  });
  auto job = runner.Submit(JobSpec{"a", "normal", "/s", "/c"}, {TaskSpec{"long", "", false}});
  ASSERT_TRUE(EventuallyTrue([&] { return started.load(); }));
  ASSERT_TRUE(runner.Cancel(*job));
  EXPECT_EQ(runner.Cancel(*job).error(), Errc::kJobFinished);
  EXPECT_EQ(runner.Cancel(999).error(), Errc::kUnknownJob);
  ASSERT_TRUE(EventuallyTrue([&] { return saw_revoke.load(); }));
  EXPECT_EQ(runner.Status(*job)->state, JobState::kCancelled);
  EXPECT_EQ(runner.Stats().free_slots, 1u);
}

TEST(SchedulerRunner, HeartbeatsKeepALongTaskAlivePastItsLease) {
  RunnerConfig rc;
  rc.scheduler.slots = 1;
  rc.scheduler.lease_ms = 100;
  rc.heartbeat_interval_ms = 20;
  Runner runner(rc, [&](const Lease&, TaskContext& ctx) {
    const auto end = std::chrono::steady_clock::now() + milliseconds(400);  // 4 leases of work
    while (std::chrono::steady_clock::now() < end) {
      if (!ctx.Heartbeat()) return TaskOutcome{false, false, "revoked", {}, 0, 0, 0};
      std::this_thread::yield();
    }
    return TaskOutcome{};
  });
  auto job = runner.Submit(JobSpec{"a", "normal", "/s", "/c"}, {TaskSpec{"long", "", false}});
  ASSERT_TRUE(EventuallyTrue([&] { return Finished(runner, *job); }, std::chrono::seconds(5)));
  EXPECT_EQ(runner.Status(*job)->state, JobState::kSucceeded);
  EXPECT_EQ(runner.Status(*job)->counts.leases_expired, 0u);
}

TEST(SchedulerRunner, BadInputGetsAClearErrorAndLeavesOtherJobsUntouched) {
  RunnerConfig rc;
  EXPECT_EQ(ValidateConfig(rc), "");
  rc.heartbeat_interval_ms = rc.scheduler.lease_ms;
  EXPECT_NE(ValidateConfig(rc), "");
  rc = {};
  Runner runner(rc, [](const Lease&, TaskContext&) { return TaskOutcome{}; });
  auto good = runner.Submit(JobSpec{"a", "normal", "/s", "/c"}, {TaskSpec{"t", "", false}});
  ASSERT_TRUE(good);
  auto bad = runner.Submit(JobSpec{"", "normal", "/s", "/c"}, {TaskSpec{"t", "", false}});
  EXPECT_EQ(bad.error(), Errc::kBadRequest);
  EXPECT_EQ(bad.error().message(), "bad request");
  EXPECT_EQ(runner.Submit(JobSpec{"a", "gold", "/s", "/c"}, {TaskSpec{"t", "", false}}).error(),
            Errc::kUnknownTier);
  EXPECT_EQ(runner.Status(77).error(), Errc::kUnknownJob);
  ASSERT_TRUE(EventuallyTrue([&] { return Finished(runner, *good); }));
  EXPECT_EQ(runner.Status(*good)->state, JobState::kSucceeded);
}

TEST(SchedulerRunner, CallsAfterStopAreAnsweredShuttingDown) {
  Runner runner(RunnerConfig{}, [](const Lease&, TaskContext&) { return TaskOutcome{}; });
  runner.Stop();
  EXPECT_EQ(runner.Submit(JobSpec{"a", "normal", "/s", "/c"}, {TaskSpec{"t", "", false}}).error(),
            Errc::kShuttingDown);
  EXPECT_EQ(runner.Status(1).error(), Errc::kShuttingDown);
  EXPECT_EQ(runner.Cancel(1).error(), Errc::kShuttingDown);
  runner.Stop();  // idempotent
}

}  // namespace
}  // namespace chorus::broker::scheduler
