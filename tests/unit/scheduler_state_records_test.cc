// The scheduler's state as CHP records (state_records.h) and a new owner taking jobs over
// (Scheduler::Adopt): export -> records in a CHP store (subtree s.<user>) -> read back ->
// adopt on another scheduler that already runs its own jobs. Simulated time.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "broker/scheduler/state_records.h"
#include "chp/store.h"

namespace chorus::broker::scheduler {
namespace {

SchedulerConfig Config(uint64_t base) {
  SchedulerConfig c;
  c.slots = 2;
  c.lease_ms = 1000;
  c.backoff_base_ms = 10;
  c.first_token = base;
  c.first_id = base;
  return c;
}

std::vector<TaskSpec> Tasks(int n) {
  std::vector<TaskSpec> t;
  for (int i = 0; i < n; ++i) t.push_back({"sync", "p" + std::to_string(i), false});
  t.push_back({"finish", "", true});
  return t;
}

// Writes `records` into `store` as the node's CHP server would (Mirror: one set per record).
void Write(chp::Store& store, const std::vector<ChpRecord>& records) {
  for (const ChpRecord& r : records) {
    const size_t slash = r.key.find('/');
    ASSERT_TRUE(
        store.Apply(r.key.substr(0, slash), r.key.substr(slash + 1), chp::Op::kSet, r.value, 0, 0));
  }
}

// The records of subtree `s.<user>` as a replica copy holds them.
std::vector<ChpRecord> Read(const chp::Store& store, const std::string& user) {
  std::vector<ChpRecord> out;
  const chp::Subtree* st = store.Find(UserSubtree(user));
  if (st == nullptr) return out;
  for (const auto& [key, e] : st->entries) out.push_back({UserSubtree(user) + "/" + key, e.value});
  return out;
}

// Drives `s` until `job` is final, completing every lease at once.
JobInfo RunToEnd(Scheduler& s, JobId job, int64_t& now) {
  for (int i = 0; i < 1000 && !IsFinal(s.Job(job)->state); ++i) {
    auto leases = s.Dispatch(now);
    if (leases.empty()) now = std::max(now + 1, std::min(s.NextWakeMs(), now + 1000));
    for (const Lease& l : leases) {
      TaskOutcome o;
      o.items_total = o.items_done = 1;
      EXPECT_TRUE(s.Complete(l.task, l.token, o, ++now));
    }
  }
  return *s.Job(job);
}

TEST(SchedulerStateRecords, SubtreeNamesFollowTheClusterNaming) {
  EXPECT_EQ(UserSubtree("anna"), "s.anna");
  EXPECT_EQ(UserOfSubtree("s.anna@x.org"), "anna@x.org");
  EXPECT_EQ(UserOfSubtree("c.anna"), "");
  EXPECT_EQ(UserOfSubtree("s.bad/user"), "");
}

TEST(SchedulerStateRecords, AdoptedJobsFinishOnTheNewOwnerAndRunningTasksRunAgain) {
  // The old owner: anna's job gets one task done and others leased or pending, plus a final.
  Scheduler old(Config(1));
  int64_t now = 0;
  auto anna = old.Submit({"anna", "normal", "/src/a", "/cat"}, Tasks(4), now);
  auto bob = old.Submit({"bob", "premium", "/src/b", "/cat"}, Tasks(1), now);
  ASSERT_TRUE(anna && bob);
  auto leases = old.Dispatch(++now);
  ASSERT_EQ(leases.size(), 2u);  // anna's first (she is first in the ring), then bob's
  ASSERT_EQ(leases[0].spec.user, "anna");
  ASSERT_TRUE(old.Complete(leases[0].task, leases[0].token, TaskOutcome{}, ++now));
  leases = old.Dispatch(++now);  // the freed slot goes to anna again
  auto running_anna = old.Leases();
  // Its state goes to its CHP server as records of s.anna and s.bob.
  chp::Store server;
  Write(server, ToChpRecords(old));
  ASSERT_NE(server.Find("s.anna"), nullptr);
  ASSERT_NE(server.Find("s.bob"), nullptr);
  EXPECT_NE(server.Find("s.anna")->entries.count("queue"), 0u);
  // A lease record is readable (a msgpack map) and names token, slot and attempt.
  bool saw_lease = false;
  for (const auto& [key, e] : server.Find("s.anna")->entries) {
    if (key.rfind("lease/", 0) != 0) continue;
    saw_lease = true;
    auto h = msgpack::unpack(e.value.data(), e.value.size());
    ASSERT_EQ(h.get().type, msgpack::type::MAP);
    EXPECT_EQ(h.get().via.map.size, 6u);
  }
  EXPECT_TRUE(saw_lease);

  // The new owner runs a job of its own (ids and tokens from 1 << 32) and adopts anna's.
  Scheduler owner(Config(uint64_t{1} << 32));
  auto own = owner.Submit({"carl", "normal", "/src/c", "/cat"}, Tasks(2), now);
  ASSERT_TRUE(own);
  auto state = FromChpRecords("anna", Read(server, "anna"));
  ASSERT_TRUE(state);
  auto adopted = owner.Adopt(*state, now);
  ASSERT_TRUE(adopted);
  ASSERT_EQ(*adopted, std::vector<JobId>{*anna});
  auto info = owner.Job(*anna);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->spec.source, "/src/a");
  EXPECT_EQ(info->counts.tasks_done, 1u);
  EXPECT_EQ(info->counts.tasks_running, 0u);  // the old owner's leases do not come along
  EXPECT_EQ(info->counts.tasks_total, 5u);
  // A late result from the old owner's worker is fenced (its token is the old owner's).
  for (const auto& l : running_anna) {
    if (l.user != "anna") continue;
    EXPECT_FALSE(owner.Complete(l.task, l.token, TaskOutcome{}, now));
  }
  // Every task that was running or pending runs again here; the job finishes.
  const JobInfo done = RunToEnd(owner, *anna, now);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.tasks_done, 5u);
  EXPECT_EQ(RunToEnd(owner, *own, now).state, JobState::kSucceeded);  // its own job too
}

TEST(SchedulerStateRecords, AdoptIsAllOrNothing) {
  Scheduler old(Config(1));
  auto job = old.Submit({"anna", "normal", "/src/a", "/cat"}, Tasks(2), 0);
  ASSERT_TRUE(job);
  chp::Store server;
  Write(server, ToChpRecords(old));
  auto state = FromChpRecords("anna", Read(server, "anna"));
  ASSERT_TRUE(state);
  // The same ids already held here: refused, nothing changes.
  Scheduler owner(Config(1));
  ASSERT_TRUE(owner.Submit({"carl", "normal", "/src/c", "/cat"}, Tasks(1), 0));
  const auto before = owner.ExportState();
  EXPECT_EQ(owner.Adopt(*state, 0).error(), make_error_code(Errc::kBadRequest));
  EXPECT_EQ(owner.ExportState(), before);
  // A damaged record: refused, nothing changes.
  Scheduler fresh(Config(100));
  auto damaged = *state;
  damaged.back().value = "\x92\x01";  // a truncated array
  EXPECT_FALSE(fresh.Adopt(damaged, 0));
  EXPECT_TRUE(fresh.ExportState().empty());
  // A key that is no scheduler key.
  EXPECT_FALSE(FromChpRecords("anna", {{"s.anna/other/1", "x"}}));
  EXPECT_FALSE(FromChpRecords("bad/user", {}));
}

TEST(SchedulerStateRecords, TheMirrorSendsOnlyChangesAndIsBoundedPerCall) {
  Scheduler s(Config(1));
  StateMirror m;
  auto job = s.Submit({"anna", "normal", "/src/a", "/cat"}, Tasks(3), 0);
  ASSERT_TRUE(job);
  const size_t total = ToChpRecords(s).size();  // job, 4 tasks, queue
  auto c = m.Diff(ToChpRecords(s), 2);
  EXPECT_EQ(c.sets.size(), 2u);
  EXPECT_TRUE(c.more);
  c = m.Diff(ToChpRecords(s), 100);
  EXPECT_EQ(c.sets.size(), total - 2);
  EXPECT_FALSE(c.more);
  EXPECT_TRUE(m.Diff(ToChpRecords(s), 100).sets.empty());  // nothing changed: nothing sent
  // A task finishes: its task record goes, its lease record comes and goes.
  auto leases = s.Dispatch(1);
  ASSERT_EQ(leases.size(), 2u);
  c = m.Diff(ToChpRecords(s), 100);
  size_t lease_sets = 0;
  for (const auto& r : c.sets) lease_sets += r.key.find("/lease/") != std::string::npos;
  EXPECT_EQ(lease_sets, 2u);
  ASSERT_TRUE(s.Complete(leases[0].task, leases[0].token, TaskOutcome{}, 2));
  c = m.Diff(ToChpRecords(s), 100);
  const std::string gone_task =
      "s.anna/task/" + std::to_string(*job) + "/" + std::to_string(leases[0].task);
  const std::string gone_lease = "s.anna/lease/" + std::to_string(leases[0].task);
  EXPECT_NE(std::find(c.erases.begin(), c.erases.end(), gone_task), c.erases.end());
  EXPECT_NE(std::find(c.erases.begin(), c.erases.end(), gone_lease), c.erases.end());
}

TEST(SchedulerStateRecords, AMirrorThatAssumesAnAdoptedCopyErasesTheOldOwnersViews) {
  Scheduler old(Config(1));
  ASSERT_TRUE(old.Submit({"anna", "normal", "/src/a", "/cat"}, Tasks(2), 0));
  ASSERT_EQ(old.Dispatch(1).size(), 2u);
  const std::vector<ChpRecord> copy = ToChpRecords(old);  // with the old owner's leases
  Scheduler owner(Config(uint64_t{1} << 32));
  auto state = FromChpRecords("anna", copy);
  ASSERT_TRUE(state);
  ASSERT_TRUE(owner.Adopt(*state, 1));
  StateMirror m;
  m.Assume(copy);
  auto c = m.Diff(ToChpRecords(owner), 100);
  size_t lease_erases = 0;
  for (const auto& k : c.erases) lease_erases += k.find("/lease/") != std::string::npos;
  EXPECT_EQ(lease_erases, 2u);  // nothing runs here yet: the old leases go
  for (const auto& r : c.sets) EXPECT_EQ(r.key.find("/lease/"), std::string::npos) << r.key;
  EXPECT_TRUE(m.Diff(ToChpRecords(owner), 100).sets.empty());
}

// Ids across owners (docs/scheduler.md "Ids across owners"): each owner allocates in its own
// block [first_id, id_limit); adopting another block's jobs keeps their ids and does not move
// this owner's next id, so a promoted primary never allocates an id another owner used.
TEST(SchedulerStateRecords, AnOwnerAdoptingAnotherBlocksJobsKeepsAllocatingInItsOwnBlock) {
  constexpr uint64_t kBlock = uint64_t{1} << 40;
  SchedulerConfig a_cfg = Config(3 * kBlock + 1), b_cfg = Config(2 * kBlock + 1);
  a_cfg.id_limit = 4 * kBlock;
  b_cfg.id_limit = 3 * kBlock;
  Scheduler a(a_cfg), b(b_cfg);
  int64_t now = 0;
  auto from_a = a.Submit({"anna", "normal", "/src/a", "/cat"}, Tasks(3), now);
  ASSERT_TRUE(from_a);
  EXPECT_EQ(*from_a, 3 * kBlock + 1);
  chp::Store server;
  Write(server, ToChpRecords(a));
  auto state = FromChpRecords("anna", Read(server, "anna"));
  ASSERT_TRUE(state);
  ASSERT_TRUE(b.Adopt(*state, now));  // b (the lower block) adopts a's job
  auto own = b.Submit({"bob", "normal", "/src/b", "/cat"}, Tasks(1), now);
  ASSERT_TRUE(own);
  EXPECT_GE(*own, 2 * kBlock);
  EXPECT_LT(*own, 3 * kBlock) << "b allocates in its own block after adopting a's ids";
  // Its tasks too: every live task id of b's own job is in b's block.
  for (int i = 0; i < 3; ++i) {
    for (const Lease& l : b.Dispatch(++now)) {
      if (l.job == *own) {
        EXPECT_LT(l.task, 3 * kBlock);
      }
      EXPECT_TRUE(b.Complete(l.task, l.token, TaskOutcome{}, ++now));
    }
  }
  // A restored state of the owner's own block moves its next id above it (a restart).
  Scheduler a2(a_cfg);
  auto own_state = FromChpRecords("anna", Read(server, "anna"));
  ASSERT_TRUE(a2.Adopt(*own_state, now));
  auto next = a2.Submit({"carl", "normal", "/src/c", "/cat"}, Tasks(1), now);
  ASSERT_TRUE(next);
  EXPECT_GT(*next, *from_a);
  EXPECT_LT(*next, 4 * kBlock);
  // A block used up refuses new jobs (kLimitExceeded) instead of leaving it.
  SchedulerConfig tiny = Config(10);
  tiny.id_limit = 14;
  Scheduler t(tiny);
  int accepted = 0;
  for (; accepted < 10; ++accepted) {
    auto id = t.Submit({"dan", "normal", "/s", "/c"}, {{"list", "", false}}, now);
    if (!id) {
      EXPECT_EQ(id.error(), make_error_code(Errc::kLimitExceeded));
      break;
    }
    EXPECT_LT(*id, 14u);
  }
  EXPECT_EQ(accepted, 4) << "ids 10..13, then the block is used up";
  SchedulerConfig bad;
  bad.first_id = 5;
  bad.id_limit = 5;
  EXPECT_FALSE(ValidateConfig(bad).empty());
}

}  // namespace
}  // namespace chorus::broker::scheduler
