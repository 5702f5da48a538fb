// The scheduler's state as CHP key/values: export/restore round trip, failover to a new owner
// (every task finished at least once, the old owner's results fenced), malformed state.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "broker/scheduler/scheduler.h"
#include "chp/keys.h"

namespace chorus::broker::scheduler {
namespace {

JobSpec Spec(const std::string& user, const std::string& tier = "normal") {
  return JobSpec{user, tier, "/src/" + user, "/cat.db"};
}

TaskOutcome Children(size_t n) {
  TaskOutcome o;
  for (size_t i = 0; i < n; ++i) o.children.push_back({"sync", std::to_string(i), false});
  o.children.push_back({"finish", "", true});
  o.items_total = n;
  return o;
}

// A scheduler mid-flight: running, queued, backoff, held final, finished and cancelled jobs.
Scheduler Busy(SchedulerConfig c, std::vector<Lease>* running) {
  c.slots = 3;
  c.backoff_base_ms = 1000;
  Scheduler s(c);
  auto done = s.Submit(Spec("carl"), {TaskSpec{"sync", "", false}}, 0);
  auto a = s.Submit(Spec("anna"), {TaskSpec{"list", "", false}}, 0);
  for (const auto& l : s.Dispatch(0)) {
    EXPECT_TRUE(s.Complete(l.task, l.token, l.job == *a ? Children(10) : TaskOutcome{}, 1));
  }
  EXPECT_EQ(s.Job(*done)->state, JobState::kSucceeded);
  (void)s.Submit(Spec("bob", "premium"), std::vector<TaskSpec>(4, TaskSpec{"sync", "p", false}), 1);
  auto cancelled = s.Submit(Spec("dora"), {TaskSpec{"sync", "", false}}, 1);
  EXPECT_TRUE(s.Cancel(*cancelled, 2));
  *running = s.Dispatch(2);
  EXPECT_EQ(running->size(), 3u);
  TaskOutcome fail;
  fail.ok = false;
  fail.error = "transient";
  EXPECT_TRUE(s.Complete((*running)[0].task, (*running)[0].token, fail, 3));  // into backoff
  return s;
}

TEST(SchedulerState, KeysAreChpKeysInTheUsersSubtree) {
  std::vector<Lease> running;
  Scheduler s = Busy({}, &running);
  const auto state = s.ExportState();
  ASSERT_FALSE(state.empty());
  for (const auto& e : state) {
    auto parts = chp::SplitKey(e.key);
    ASSERT_TRUE(parts) << e.key;
    EXPECT_EQ(parts->subtree.substr(0, 5), "sync:");
  }
}

TEST(SchedulerState, ExportRestoreExportIsTheSame) {
  std::vector<Lease> running;
  Scheduler s = Busy({}, &running);
  const auto state = s.ExportState();
  auto r = Scheduler::Restore(SchedulerConfig{}, state, 3);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->ExportState(), state);
  EXPECT_EQ((*r)->Stats().jobs_live, s.Stats().jobs_live);
  EXPECT_EQ((*r)->Stats().running, 0u);  // leases are not state: running tasks are pending
}

TEST(SchedulerState, NewOwnerFinishesEveryTaskAndFencesTheOldOwnersResults) {
  std::vector<Lease> running;
  Scheduler old = Busy({}, &running);
  const auto state = old.ExportState();  // what the replicas hold when the owner dies
  SchedulerConfig c;
  c.slots = 2;
  c.first_token = uint64_t{1} << 32;  // the new term's tokens
  auto r = Scheduler::Restore(c, state, 5);
  ASSERT_TRUE(r);
  Scheduler& s = **r;
  // The old owner's workers answer late: none of their results is accepted.
  for (const auto& l : running) EXPECT_FALSE(s.Complete(l.task, l.token, {}, 6));
  std::map<TaskId, int> runs;
  int64_t now = 6;
  for (int i = 0; i < 10000 && s.Stats().jobs_live > 0; ++i) {
    auto leases = s.Dispatch(now);
    if (leases.empty()) now = s.NextWakeMs();
    for (const auto& l : leases) {
      ++runs[l.task];
      EXPECT_GE(l.token, c.first_token);
      ASSERT_TRUE(s.Complete(l.task, l.token, {}, ++now));
    }
  }
  EXPECT_EQ(s.Stats().jobs_live, 0u);
  for (const auto& l : running) EXPECT_EQ(runs.count(l.task), 1u) << "re-dispatched " << l.task;
  for (JobId j = 1; j <= 4; ++j) {
    auto info = s.Job(j);
    ASSERT_TRUE(info);
    if (info->spec.user == "dora") {
      EXPECT_EQ(info->state, JobState::kCancelled);
    } else {
      EXPECT_EQ(info->state, JobState::kSucceeded) << info->spec.user;
      EXPECT_EQ(info->counts.tasks_done, info->counts.tasks_total);
    }
  }
  EXPECT_EQ(s.Job(2)->spec.user, "anna");
  EXPECT_EQ(s.Job(2)->counts.tasks_total, 12u);  // list + 10 + finish, none lost
  EXPECT_EQ(s.Job(2)->counts.items_total, 10u);
  // New ids do not collide with restored ones.
  auto next = s.Submit(Spec("erik"), {TaskSpec{"sync", "", false}}, now);
  ASSERT_TRUE(next);
  EXPECT_GT(*next, 4u);
}

TEST(SchedulerState, MalformedStateIsRejected) {
  std::vector<Lease> running;
  Scheduler s = Busy({}, &running);
  const auto good = s.ExportState();
  auto with = [&](std::function<void(std::vector<StateEntry>&)> f) {
    auto st = good;
    f(st);
    return Scheduler::Restore(SchedulerConfig{}, st, 0).error();
  };
  EXPECT_EQ(with([](auto& st) { st[0].value = "garbage"; }), Errc::kBadRequest);
  EXPECT_EQ(with([](auto& st) { st[0].key = "nosync/job/1"; }), Errc::kBadRequest);
  EXPECT_EQ(with([](auto& st) { st[0].key = "sync:anna/job/x"; }), Errc::kBadRequest);
  EXPECT_EQ(with([](auto& st) { st[0].key = "sync:anna/other/1"; }), Errc::kBadRequest);
  EXPECT_EQ(with([](auto& st) { st.push_back(st[0]); }), Errc::kBadRequest);  // duplicate job
  const auto task = std::find_if(good.begin(), good.end(), [](const StateEntry& e) {
    return e.key.find("/task/") != std::string::npos;
  });
  ASSERT_NE(task, good.end());
  EXPECT_TRUE(with([&](auto& st) {
                st.push_back({"sync:anna/task/2/100", task->value});
              }) == std::error_code{});  // an extra task of a live job is fine
  EXPECT_EQ(with([&](auto& st) {
              st.push_back({"sync:anna/task/99/100", task->value});
            }),
            Errc::kBadRequest);  // task of an unknown job
  EXPECT_EQ(with([&](auto& st) {
              st.push_back({"sync:carl/task/1/100", task->value});
            }),
            Errc::kBadRequest);  // task of a finished job
  EXPECT_EQ(with([&](auto& st) {
              st.push_back({"sync:bob/task/2/100", task->value});
            }),
            Errc::kBadRequest);  // task filed under another user
  EXPECT_EQ(with([](auto& st) { st[0].key = "sync:a b/job/1"; }), Errc::kBadRequest);
  SchedulerConfig free_only;  // valid, but without the tiers the state names
  free_only.tiers = {{"free", 1}};
  EXPECT_EQ(Scheduler::Restore(free_only, good, 0).error(), Errc::kUnknownTier);
  EXPECT_TRUE(Scheduler::Restore(SchedulerConfig{}, {}, 0));  // empty state: an empty scheduler
}

}  // namespace
}  // namespace chorus::broker::scheduler
