// The scheduling core under random operations: invariants hold after every step and every job
// reaches a final state once the load stops (no lost task, no leaked slot, no starvation).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {
namespace {

TEST(SchedulerProperty, RandomOperationsKeepInvariantsAndEveryJobFinishes) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng); };
    SchedulerConfig c;
    c.slots = 1 + pick(5);
    c.lease_ms = 50;
    c.max_attempts = 3;
    c.backoff_base_ms = 5;
    c.backoff_max_ms = 40;
    Scheduler s(c);
    std::vector<JobId> jobs;
    std::map<TaskId, Lease> held;  // leases we were given and have not answered
    int64_t now = 0;
    auto check = [&] {
      const auto st = s.Stats();
      ASSERT_LE(st.running, c.slots);
      ASSERT_EQ(st.running + st.free_slots, c.slots);
      for (JobId j : jobs) {
        auto info = s.Job(j);
        ASSERT_TRUE(info);
        const auto& n = info->counts;
        ASSERT_LE(n.tasks_done + n.tasks_failed + n.tasks_running, n.tasks_total);
        if (IsFinal(info->state)) {
          ASSERT_EQ(n.tasks_running, 0u);
        }
      }
    };
    for (int step = 0; step < 1500; ++step) {
      switch (pick(6)) {
        case 0: {
          std::vector<TaskSpec> t(1 + pick(4), TaskSpec{pick(3) ? "sync" : "list", "", false});
          if (pick(3) == 0) t.push_back({"finish", "", true});
          auto id = s.Submit(
              JobSpec{"u" + std::to_string(pick(6)), pick(3) ? "normal" : "premium", "/s", "/c"}, t,
              now);
          ASSERT_TRUE(id);
          jobs.push_back(*id);
          break;
        }
        case 1:
          for (auto& l : s.Dispatch(now)) held[l.task] = l;
          break;
        case 2:
        case 3: {
          if (held.empty()) break;
          auto it = std::next(held.begin(), pick(static_cast<uint32_t>(held.size())));
          TaskOutcome o;
          o.ok = pick(4) != 0;
          o.error = o.ok ? "" : "boom";
          if (o.ok && it->second.kind == "list") o.children.assign(pick(4), {"sync", "", false});
          (void)s.Complete(it->first, it->second.token, o, now);  // may be stale: fine
          held.erase(it);
          break;
        }
        case 4:
          if (!held.empty()) {
            auto it = std::next(held.begin(), pick(static_cast<uint32_t>(held.size())));
            (void)s.Heartbeat(it->first, it->second.token, now);
          }
          now += pick(20);
          break;
        default:
          if (!jobs.empty() && pick(10) == 0) (void)s.Cancel(jobs[pick(jobs.size())], now);
          now += 1;
      }
      check();
      if (HasFatalFailure()) return;
    }
    // Drain: answer every lease, let time pass; every job must end.
    for (int round = 0; round < 100000 && s.Stats().jobs_live > 0; ++round) {
      for (auto& l : s.Dispatch(now)) held[l.task] = l;
      for (auto& [id, l] : held) (void)s.Complete(id, l.token, {}, now);
      held.clear();
      now = std::max(now + 1, std::min(s.NextWakeMs(), now + 100));
      check();
      if (HasFatalFailure()) return;
    }
    ASSERT_EQ(s.Stats().jobs_live, 0u) << "seed " << seed;
    const auto st = s.Stats();
    EXPECT_EQ(st.queued, 0u);
    EXPECT_EQ(st.backoff, 0u);
    EXPECT_EQ(st.free_slots, c.slots);
    for (JobId j : jobs) {
      auto info = s.Job(j);
      ASSERT_TRUE(IsFinal(info->state));
      if (info->state == JobState::kSucceeded) {
        EXPECT_EQ(info->counts.tasks_done, info->counts.tasks_total);
      }
    }
  }
}

}  // namespace
}  // namespace chorus::broker::scheduler
