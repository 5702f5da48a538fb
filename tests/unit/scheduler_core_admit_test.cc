// The core's capacity changes (SetSlots: attached workers' slots) and admission (Dispatch's
// admit: routing to workers that declared the kind) keep deficit round robin's order: a refused
// task stops the round with the head user keeping its turn (docs/protocol/worker.md WK-5).
#include <gtest/gtest.h>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {
namespace {

std::vector<TaskSpec> Kinds(const std::vector<std::string>& kinds) {
  std::vector<TaskSpec> t;
  for (const auto& k : kinds) t.push_back({k, "", false});
  return t;
}

std::vector<std::string> Users(const std::vector<Lease>& leases) {
  std::vector<std::string> out;
  for (const auto& l : leases) out.push_back(l.spec.user);
  return out;
}

TEST(SchedulerAdmit, ARefusedTaskStopsTheRoundAndNoUserOvertakesTheHead) {
  SchedulerConfig c;
  c.slots = 4;
  Scheduler s(c);
  ASSERT_TRUE(s.Submit({"anna", "normal", "/s", "/c"}, Kinds({"a", "b", "a"}), 0));
  ASSERT_TRUE(s.Submit({"bob", "normal", "/s", "/c"}, Kinds({"a", "a"}), 0));
  bool b_runs = false;
  auto admit = [&](const std::string& kind) { return kind == "a" || b_runs; };
  // anna a, bob a, then anna's b is refused: the round stops although two slots are free.
  EXPECT_EQ(Users(s.Dispatch(1, admit)), (std::vector<std::string>{"anna", "bob"}));
  EXPECT_EQ(s.Stats().free_slots, 2u);
  EXPECT_TRUE(s.Dispatch(2, admit).empty());  // still anna's turn, still refused
  b_runs = true;                              // a worker running b attached
  EXPECT_EQ(Users(s.Dispatch(3, admit)), (std::vector<std::string>{"anna", "bob"}));
}

TEST(SchedulerAdmit, SlotsFollowTheAttachedCapacity) {
  SchedulerConfig c;
  c.slots = 1;
  Scheduler s(c);
  ASSERT_TRUE(s.Submit({"anna", "normal", "/s", "/c"}, Kinds({"a", "a", "a", "a", "a"}), 0));
  ASSERT_TRUE(s.Submit({"carl", "premium", "/s", "/c"}, Kinds({"a", "a", "a", "a"}), 0));
  EXPECT_EQ(s.Dispatch(1).size(), 1u);
  s.SetSlots(4);  // a worker with 3 slots attached: the same ring fills them
  auto more = s.Dispatch(2);
  EXPECT_EQ(more.size(), 3u);
  EXPECT_EQ(s.Stats().free_slots, 0u);
  s.SetSlots(0);  // every worker gone: running tasks keep their slots, nothing new starts
  EXPECT_EQ(s.Stats().running, 4u);
  EXPECT_EQ(s.Stats().free_slots, 0u);
  ASSERT_TRUE(s.Complete(more[0].task, more[0].token, TaskOutcome{}, 3));
  EXPECT_TRUE(s.Dispatch(4).empty());
  s.SetSlots(2);  // capacity back: 3 still running, so still nothing
  EXPECT_TRUE(s.Dispatch(5).empty());
  s.SetSlots(5);
  EXPECT_EQ(s.Dispatch(6).size(), 2u);
  EXPECT_EQ(s.Stats().running, 5u);
}

}  // namespace
}  // namespace chorus::broker::scheduler
