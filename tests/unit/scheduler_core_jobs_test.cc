// The scheduling core: jobs whose listing is a task (no barrier), offline sources, final tasks,
// cancel, limits and bad input.
#include <gtest/gtest.h>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {
namespace {

JobSpec Spec(const std::string& user, const std::string& tier = "normal") {
  return JobSpec{user, tier, "/src/" + user, "/cat.db"};
}

std::vector<TaskSpec> List() {
  return {TaskSpec{"list", "", false}};
}

TaskOutcome Children(size_t n, bool with_final = false) {
  TaskOutcome o;
  for (size_t i = 0; i < n; ++i) o.children.push_back({"sync", std::to_string(i), false});
  if (with_final) o.children.push_back({"finish", "", true});
  o.items_total = n;
  return o;
}

TEST(SchedulerJobs, ListingIsATaskSoANewJobStartsWhileAnotherRuns) {
  SchedulerConfig c;
  c.slots = 2;
  Scheduler s(c);
  auto a = s.Submit(Spec("a"), List(), 0);
  auto l = s.Dispatch(0);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_TRUE(s.Complete(l[0].task, l[0].token, Children(100), 1));
  auto a_tasks = s.Dispatch(1);
  ASSERT_EQ(a_tasks.size(), 2u);  // alone, a uses both slots
  auto b = s.Submit(Spec("b"), List(), 2);
  // Within the next two freed slots (a was ahead in the ring), b's listing starts, long
  // before a's 98 remaining tasks are done.
  std::vector<Lease> next;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.Complete(a_tasks[i].task, a_tasks[i].token, {}, 3));
    for (auto& n : s.Dispatch(3)) next.push_back(n);
  }
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].job, *a);
  EXPECT_EQ(next[1].job, *b);
  EXPECT_EQ(next[1].kind, "list");
  EXPECT_EQ(s.Job(*a)->counts.items_total, 100u);
  EXPECT_EQ(s.Job(*a)->state, JobState::kRunning);
  EXPECT_EQ(s.Job(*b)->state, JobState::kRunning);
}

TEST(SchedulerJobs, OfflineSourceThatHangsDelaysOnlyItsOwnJob) {
  SchedulerConfig c;
  c.slots = 2;
  c.lease_ms = 60'000;
  Scheduler s(c);
  auto nas = s.Submit(Spec("nas_owner"), List(), 0);
  auto hung = s.Dispatch(0);  // the NAS is off: this listing never answers
  ASSERT_EQ(hung.size(), 1u);
  int64_t now = 10;
  auto other = s.Submit(Spec("other"), List(), now);
  auto l = s.Dispatch(now);
  ASSERT_EQ(l.size(), 1u);
  ASSERT_TRUE(s.Complete(l[0].task, l[0].token, Children(20, true), ++now));
  // With one slot held by the hung listing, the other user's job still runs to completion.
  while (s.Job(*other)->state != JobState::kSucceeded) {
    auto run = s.Dispatch(++now);
    ASSERT_EQ(run.size(), 1u);
    EXPECT_EQ(run[0].spec.user, "other");
    ASSERT_TRUE(s.Complete(run[0].task, run[0].token, {}, ++now));
  }
  EXPECT_LT(now, 100);
  EXPECT_EQ(s.Job(*nas)->state, JobState::kRunning);
  EXPECT_EQ(s.Job(*other)->counts.tasks_done, 22u);
}

TEST(SchedulerJobs, OfflineSourceThatFailsFailsOnlyItsOwnJob) {
  SchedulerConfig c;
  c.slots = 1;
  c.max_attempts = 2;
  c.backoff_base_ms = 1000;
  Scheduler s(c);
  auto bad = s.Submit(Spec("a"), List(), 0);
  auto good = s.Submit(Spec("b"), List(), 0);
  auto l = s.Dispatch(0);
  TaskOutcome fail;
  fail.ok = false;
  fail.error = "listing failed: connection refused";
  ASSERT_TRUE(s.Complete(l[0].task, l[0].token, fail, 1));
  // While a's listing backs off, b's listing takes the slot immediately.
  auto l2 = s.Dispatch(1);
  ASSERT_EQ(l2.size(), 1u);
  EXPECT_EQ(l2[0].job, *good);
  ASSERT_TRUE(s.Complete(l2[0].task, l2[0].token, {}, 2));
  EXPECT_EQ(s.Job(*good)->state, JobState::kSucceeded);
  auto l3 = s.Dispatch(1001);
  ASSERT_EQ(l3.size(), 1u);
  ASSERT_TRUE(s.Complete(l3[0].task, l3[0].token, fail, 1002));
  EXPECT_EQ(s.Job(*bad)->state, JobState::kFailed);
}

TEST(SchedulerJobs, FinalTaskRunsAfterEveryOtherTaskOfItsJob) {
  SchedulerConfig c;
  c.slots = 4;
  Scheduler s(c);
  auto job = s.Submit(Spec("a"), List(), 0);
  auto l = s.Dispatch(0);
  ASSERT_TRUE(s.Complete(l[0].task, l[0].token, Children(3, true), 1));
  auto run = s.Dispatch(1);
  ASSERT_EQ(run.size(), 3u);
  for (const auto& r : run) EXPECT_EQ(r.kind, "sync");
  for (const auto& r : run) ASSERT_TRUE(s.Complete(r.task, r.token, {}, 2));
  auto fin = s.Dispatch(2);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].kind, "finish");
  EXPECT_EQ(s.Job(*job)->state, JobState::kRunning);
  ASSERT_TRUE(s.Complete(fin[0].task, fin[0].token, {}, 3));
  EXPECT_EQ(s.Job(*job)->state, JobState::kSucceeded);
  EXPECT_EQ(s.Job(*job)->finished_ms, 3);
}

TEST(SchedulerJobs, CancelRevokesLeasesDropsQueuedTasksAndIgnoresLateResults) {
  SchedulerConfig c;
  c.slots = 3;
  Scheduler s(c);
  auto a = s.Submit(Spec("a"), std::vector<TaskSpec>(10, TaskSpec{"sync", "", false}), 0);
  auto b = s.Submit(Spec("b"), std::vector<TaskSpec>(2, TaskSpec{"sync", "", false}), 0);
  auto l = s.Dispatch(0);
  ASSERT_EQ(l.size(), 3u);  // a, b, a
  ASSERT_TRUE(s.Cancel(*a, 5));
  EXPECT_EQ(s.Job(*a)->state, JobState::kCancelled);
  EXPECT_EQ(s.TakeRevoked().size(), 2u);
  EXPECT_EQ(s.Stats().running, 1u);  // only b's task still runs
  for (const auto& x : l) {
    if (x.job == *a) {
      EXPECT_FALSE(s.Complete(x.task, x.token, {}, 6));
    }
  }
  auto next = s.Dispatch(6);
  ASSERT_EQ(next.size(), 1u);  // b's second task; nothing of a
  EXPECT_EQ(next[0].job, *b);
  EXPECT_EQ(s.Stats().queued, 0u);
  EXPECT_EQ(s.Cancel(*a, 7).error(), Errc::kJobFinished);
  EXPECT_EQ(s.Cancel(12345, 7).error(), Errc::kUnknownJob);
  EXPECT_EQ(s.Job(*b)->state, JobState::kRunning);
}

TEST(SchedulerJobs, BadInputIsRejectedAndChangesNothing) {
  Scheduler s(SchedulerConfig{});
  EXPECT_EQ(s.Submit(Spec(""), List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec("a b"), List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec("a/b"), List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec(std::string(129, 'x')), List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(JobSpec{"a", "normal", "", "/c"}, List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(JobSpec{"a", "normal", "/s", "/c\n"}, List(), 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec("a", "gold"), List(), 0).error(), Errc::kUnknownTier);
  EXPECT_EQ(s.Submit(Spec("a"), {}, 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec("a"), {TaskSpec{"", "", false}}, 0).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Submit(Spec("a"), {TaskSpec{"x", std::string((1 << 20) + 1, 'p'), false}}, 0).error(),
            Errc::kBadRequest);
  EXPECT_EQ(s.Job(1).error(), Errc::kUnknownJob);
  EXPECT_EQ(s.Stats().queued, 0u);
  EXPECT_TRUE(s.Dispatch(0).empty());
  EXPECT_EQ(s.Stats().jobs_live, 0u);
  // A task whose children are malformed fails (and is retried), its job stays intact.
  auto job = s.Submit(Spec("a"), List(), 0);
  auto l = s.Dispatch(0);
  TaskOutcome o;
  o.children.push_back({"", "", false});
  EXPECT_EQ(s.Complete(l[0].task, l[0].token, o, 1).error(), Errc::kBadRequest);
  EXPECT_EQ(s.Job(*job)->counts.retries, 1u);
  EXPECT_EQ(s.Job(*job)->counts.tasks_total, 1u);
}

TEST(SchedulerJobs, LimitsBoundJobsAndTasks) {
  SchedulerConfig c;
  c.max_jobs = 2;
  c.max_live_tasks = 5;
  Scheduler s(c);
  ASSERT_TRUE(s.Submit(Spec("a"), List(), 0));
  auto b = s.Submit(Spec("b"), List(), 0);
  ASSERT_TRUE(b);
  EXPECT_EQ(s.Submit(Spec("c"), List(), 0).error(), Errc::kLimitExceeded);
  ASSERT_TRUE(s.Cancel(*b, 1));
  auto c2 = s.Submit(Spec("c"), List(), 1);  // the cancelled job is forgotten to make room
  ASSERT_TRUE(c2);
  EXPECT_EQ(s.Job(*b).error(), Errc::kUnknownJob);
  auto l = s.Dispatch(2);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(s.Complete(l[0].task, l[0].token, Children(10), 3).error(), Errc::kLimitExceeded);
}

TEST(SchedulerJobs, ConfigIsValidated) {
  EXPECT_EQ(ValidateConfig(SchedulerConfig{}), "");
  SchedulerConfig c;
  c.slots = 0;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.tiers = {{"a", 1}, {"a", 2}};
  EXPECT_NE(ValidateConfig(c).find("twice"), std::string::npos);
  c = {};
  c.tiers = {{"a", 0}};
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.lease_ms = 0;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.backoff_base_ms = 10;
  c.backoff_max_ms = 5;
  EXPECT_NE(ValidateConfig(c), "");
  c = {};
  c.max_attempts = 0;
  EXPECT_NE(ValidateConfig(c), "");
}

}  // namespace
}  // namespace chorus::broker::scheduler
