// Unit tests for the replica state machine (chp/replica.h): no sockets, messages fed directly.
#include "chp/replica.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chp_replica_support.h"

namespace chorus::chp {
namespace {

using State = SubtreeReplica::State;
using testing_support::DelRec;
using testing_support::Recorder;
using testing_support::SetRec;

Kthxbai End(uint64_t req, Position pos, uint64_t count, SyncMode mode = SyncMode::kSnapshot) {
  return Kthxbai{req, "sub", std::move(pos), count, mode};
}

class ReplicaTest : public ::testing::Test {
 protected:
  // Takes `r` through a full snapshot to kLive at `pos` with `records`.
  void GoLive(SubtreeReplica& r, Position pos, std::vector<Record> records) {
    r.OnSubscribed();
    const Icanhaz req = r.MakeRequest(++next_req_);
    const uint64_t n = records.size();
    r.OnSyncRecords(req.request_id, std::move(records));
    r.OnSyncEnd(End(req.request_id, std::move(pos), n), &obs_);
    ASSERT_EQ(r.state(), State::kLive);
  }
  // Live at ("E", 5) with k1..k3.
  void LiveAt5(SubtreeReplica& r) {
    GoLive(r, {"E", 5}, {SetRec("k1", "v1", 1), SetRec("k2", "v2", 4), SetRec("k3", "v3", 5)});
    obs_ = Recorder{};
  }
  uint64_t next_req_ = 0;
  Recorder obs_;
};

TEST_F(ReplicaTest, SubscribeThenNeedSync) {
  SubtreeReplica r("sub");
  EXPECT_EQ(r.state(), State::kWaitSubscribe);
  EXPECT_FALSE(r.live());
  EXPECT_EQ(r.subtree(), "sub");
  r.OnPosition({"E", 3});
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.position(), Position{});  // a POSITION before the sync is not adopted

  SubtreeReplica r2("sub");
  r2.OnSubscribed();
  EXPECT_EQ(r2.state(), State::kNeedSync);
  r2.OnSubscribed();  // idempotent
  EXPECT_EQ(r2.state(), State::kNeedSync);

  SubtreeReplica r3("sub");
  r3.OnUpdate("E", SetRec("k", "v", 1), &obs_);
  EXPECT_EQ(r3.state(), State::kNeedSync);
  EXPECT_TRUE(r3.entries().empty());  // queued, not applied
  EXPECT_TRUE(obs_.changes.empty());
}

TEST_F(ReplicaTest, FreshRequestAsksForSnapshot) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  const Icanhaz req = r.MakeRequest(17);
  EXPECT_EQ(req, (Icanhaz{17, "sub", {}}));
  EXPECT_EQ(r.state(), State::kSyncing);
  EXPECT_EQ(r.request_id(), 17u);
}

TEST_F(ReplicaTest, SnapshotApplied) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  const Icanhaz req = r.MakeRequest(1);
  r.OnSyncRecords(1, {SetRec("k1", "v1", 3)});
  r.OnSyncRecords(1, {SetRec("k2", std::string("\0b", 2), 5)});  // batches accumulate
  r.OnSyncEnd(End(req.request_id, {"E", 7}, 2), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 7}));
  const EntryMap want = {{"k1", {"v1", 3}}, {"k2", {std::string("\0b", 2), 5}}};
  EXPECT_EQ(r.entries(), want);
  ASSERT_EQ(obs_.resets.size(), 1u);
  EXPECT_EQ(obs_.resets[0].subtree, "sub");
  EXPECT_EQ(obs_.resets[0].position, (Position{"E", 7}));
  EXPECT_EQ(obs_.resets[0].entries, want);
  EXPECT_TRUE(obs_.changes.empty());
  EXPECT_EQ(r.stats().snapshots, 1u);
  EXPECT_EQ(r.stats().rejected, 0u);
}

TEST_F(ReplicaTest, SnapshotReplacesOldContent) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("F", SetRec("x", "1", 1), &obs_);  // epoch change
  ASSERT_EQ(r.state(), State::kNeedSync);
  const Icanhaz req = r.MakeRequest(50);
  EXPECT_EQ(req.from, Position{});
  r.OnSyncRecords(50, {SetRec("x", "1", 1)});
  r.OnSyncEnd(End(50, {"F", 1}, 1), &obs_);
  EXPECT_EQ(r.entries(), (EntryMap{{"x", {"1", 1}}}));
  EXPECT_EQ(r.position(), (Position{"F", 1}));
}

TEST_F(ReplicaTest, CountMismatchRejected) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("E", SetRec("k", "v", 7), &obs_);  // gap
  ASSERT_EQ(r.state(), State::kNeedSync);
  const Icanhaz req = r.MakeRequest(10);
  EXPECT_EQ(req.from, (Position{"E", 5}));
  r.OnSyncRecords(10, {SetRec("a", "1", 1), SetRec("b", "2", 2)});
  r.OnSyncEnd(End(10, {"E", 9}, 3), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().rejected, 1u);
  EXPECT_EQ(r.position(), (Position{"E", 5}));  // local copy kept
  EXPECT_EQ(r.entries().size(), 3u);
  EXPECT_TRUE(obs_.resets.empty());
  // The next request asks for a full snapshot even though a position is known.
  const Icanhaz again = r.MakeRequest(11);
  EXPECT_EQ(again, (Icanhaz{11, "sub", {}}));
  r.OnSyncRecords(11, {SetRec("a", "1", 1)});
  r.OnSyncEnd(End(11, {"E", 9}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.entries(), (EntryMap{{"a", {"1", 1}}}));
  // After an accepted snapshot, a gap resumes again.
  r.OnUpdate("E", SetRec("z", "1", 11), &obs_);
  EXPECT_EQ(r.MakeRequest(12).from, (Position{"E", 9}));
}

TEST_F(ReplicaTest, FreshSnapshotCountMismatch) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  r.MakeRequest(1);
  r.OnSyncEnd(End(1, {"E", 2}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_TRUE(r.entries().empty());
  EXPECT_EQ(r.MakeRequest(2).from, Position{});
}

TEST_F(ReplicaTest, QueuedUpdatesReplayedAfterSnapshot) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  r.OnUpdate("E", SetRec("k1", "old", 5), &obs_);  // before the request: queued too
  const Icanhaz req = r.MakeRequest(1);
  r.OnUpdate("E", SetRec("k2", "old", 6), &obs_);
  r.OnUpdate("E", SetRec("k1", "new", 7), &obs_);
  r.OnUpdate("E", DelRec("k2", 8), &obs_);
  EXPECT_TRUE(obs_.changes.empty());
  r.OnSyncRecords(1, {SetRec("k1", "old", 5), SetRec("k2", "old", 6)});
  r.OnSyncEnd(End(req.request_id, {"E", 6}, 2), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 8}));
  EXPECT_EQ(r.entries(), (EntryMap{{"k1", {"new", 7}}}));
  ASSERT_EQ(obs_.ChangeSeqs(), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(obs_.changes[0].epoch, "E");
  EXPECT_EQ(obs_.changes[1].record.op, Op::kDelete);
  EXPECT_EQ(r.stats().stale, 2u);
  EXPECT_EQ(r.stats().applied, 2u);
  // The queue is drained: later updates apply directly.
  r.OnUpdate("E", SetRec("k3", "v", 9), &obs_);
  EXPECT_EQ(r.position(), (Position{"E", 9}));
}

TEST_F(ReplicaTest, QueuedUpdateWithGapAfterSnapshot) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  r.MakeRequest(1);
  r.OnUpdate("E", SetRec("a", "1", 7), &obs_);
  r.OnUpdate("E", SetRec("b", "1", 9), &obs_);  // 8 was lost
  r.OnUpdate("E", SetRec("c", "1", 10), &obs_);
  r.OnSyncRecords(1, {SetRec("x", "1", 6)});
  r.OnSyncEnd(End(1, {"E", 6}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().gaps, 1u);
  EXPECT_EQ(r.position(), (Position{"E", 7}));
  EXPECT_EQ(obs_.ChangeSeqs(), (std::vector<uint64_t>{7}));
  EXPECT_EQ(r.MakeRequest(2).from, (Position{"E", 7}));
  // The rest of the old queue was discarded with the gap: the next sync starts clean.
  r.OnSyncRecords(2, {SetRec("y", "1", 8)});
  r.OnSyncEnd(End(2, {"E", 8}, 1, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 8}));
  EXPECT_EQ(r.stats().gaps, 1u);
  EXPECT_EQ(obs_.ChangeSeqs(), (std::vector<uint64_t>{7, 8}));
}

TEST_F(ReplicaTest, LiveUpdatesGapDuplicateEpoch) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("E", SetRec("k4", "v4", 6), &obs_);
  r.OnUpdate("E", DelRec("k1", 7), &obs_);
  EXPECT_EQ(r.position(), (Position{"E", 7}));
  EXPECT_EQ(r.entries().count("k1"), 0u);
  EXPECT_EQ(r.entries().at("k4"), (ReplicaEntry{"v4", 6}));
  r.OnUpdate("E", DelRec("k1", 7), &obs_);           // duplicate
  r.OnUpdate("E", SetRec("k1", "again", 3), &obs_);  // old
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.stats().stale, 2u);
  EXPECT_EQ(obs_.ChangeSeqs(), (std::vector<uint64_t>{6, 7}));
  EXPECT_EQ(r.entries().count("k1"), 0u);

  r.OnUpdate("E", SetRec("k9", "v", 9), &obs_);  // 8 missing
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().gaps, 1u);
  EXPECT_EQ(r.position(), (Position{"E", 7}));
  EXPECT_EQ(r.entries().count("k9"), 0u);
  EXPECT_EQ(r.MakeRequest(100).from, (Position{"E", 7}));
}

TEST_F(ReplicaTest, LiveEpochChangeAsksFull) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("F", SetRec("k", "v", 6), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().epoch_changes, 1u);
  EXPECT_TRUE(obs_.changes.empty());
  EXPECT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.MakeRequest(100), (Icanhaz{100, "sub", {}}));
}

TEST_F(ReplicaTest, UnbornSubtree) {
  SubtreeReplica r("sub");
  GoLive(r, {"", 0}, {});
  EXPECT_EQ(r.position(), Position{});
  EXPECT_TRUE(r.entries().empty());
  ASSERT_EQ(obs_.resets.size(), 1u);
  r.OnUpdate("anything", SetRec("k", "v", 1), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"anything", 1}));
  ASSERT_EQ(obs_.changes.size(), 1u);
  EXPECT_EQ(obs_.changes[0].epoch, "anything");
  r.OnUpdate("anything", SetRec("k", "w", 2), &obs_);
  EXPECT_EQ(r.entries().at("k"), (ReplicaEntry{"w", 2}));

  SubtreeReplica other("sub");
  GoLive(other, {"", 0}, {});
  other.OnUpdate("zzz", SetRec("k", "v", 1), &obs_);
  EXPECT_EQ(other.position(), (Position{"zzz", 1}));

  SubtreeReplica gap("sub");
  GoLive(gap, {"", 0}, {});
  gap.OnUpdate("E", SetRec("k", "v", 3), &obs_);
  EXPECT_EQ(gap.state(), State::kNeedSync);
  EXPECT_EQ(gap.stats().gaps, 1u);
  EXPECT_EQ(gap.position(), Position{});
  EXPECT_EQ(gap.MakeRequest(9).from, Position{});
}

TEST_F(ReplicaTest, ResumeApplied) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("E", SetRec("x", "x", 9), &obs_);  // gap
  const Icanhaz req = r.MakeRequest(20);
  ASSERT_EQ(req.from, (Position{"E", 5}));
  r.OnSyncRecords(20, {SetRec("k4", "v4", 6), DelRec("k1", 7)});
  r.OnSyncRecords(20, {SetRec("k2", "v2b", 8)});
  r.OnSyncEnd(End(20, {"E", 8}, 3, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 8}));
  const EntryMap want = {{"k2", {"v2b", 8}}, {"k3", {"v3", 5}}, {"k4", {"v4", 6}}};
  EXPECT_EQ(r.entries(), want);
  EXPECT_TRUE(obs_.resets.empty());
  EXPECT_EQ(obs_.ChangeSeqs(), (std::vector<uint64_t>{6, 7, 8}));
  for (const auto& c : obs_.changes) {
    EXPECT_EQ(c.subtree, "sub");
    EXPECT_EQ(c.epoch, "E");
  }
  EXPECT_EQ(r.stats().resumes, 1u);
  EXPECT_EQ(r.stats().snapshots, 1u);
}

TEST_F(ReplicaTest, EmptyResumeAccepted) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnPosition({"E", 6});
  ASSERT_EQ(r.state(), State::kNeedSync);
  r.MakeRequest(3);
  r.OnSyncEnd(End(3, {"E", 5}, 0, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 5}));
  EXPECT_EQ(r.entries().size(), 3u);
}

TEST_F(ReplicaTest, BadResumeRejected) {
  struct Case {
    const char* name;
    std::vector<Record> records;
    Position end;
  };
  const std::vector<Case> cases = {
      {"non-consecutive", {SetRec("a", "1", 6), SetRec("b", "1", 8)}, {"E", 8}},
      {"not starting after us", {SetRec("a", "1", 7), SetRec("b", "1", 8)}, {"E", 8}},
      {"overlapping", {SetRec("a", "1", 5), SetRec("b", "1", 6)}, {"E", 6}},
      {"epoch mismatch", {SetRec("a", "1", 6), SetRec("b", "1", 7)}, {"F", 7}},
      {"end past the records", {SetRec("a", "1", 6), SetRec("b", "1", 7)}, {"E", 8}},
      {"right count, wrong seqs", {SetRec("a", "1", 6), SetRec("b", "1", 8)}, {"E", 7}},
      {"out of order", {SetRec("a", "1", 7), SetRec("b", "1", 6)}, {"E", 7}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SubtreeReplica r("sub");
    LiveAt5(r);
    r.OnPosition({"E", 9});
    ASSERT_EQ(r.state(), State::kNeedSync);
    const Icanhaz req = r.MakeRequest(30);
    ASSERT_EQ(req.from, (Position{"E", 5}));
    const uint64_t n = c.records.size();
    r.OnSyncRecords(30, std::vector<Record>(c.records));
    r.OnSyncEnd(End(30, c.end, n, SyncMode::kResume), &obs_);
    EXPECT_EQ(r.state(), State::kNeedSync);
    EXPECT_EQ(r.stats().rejected, 1u);
    EXPECT_EQ(r.position(), (Position{"E", 5}));
    EXPECT_EQ(r.entries().size(), 3u);
    EXPECT_TRUE(obs_.changes.empty());
    EXPECT_EQ(r.MakeRequest(31).from, Position{});
  }
}

TEST_F(ReplicaTest, PositionMessages) {
  {
    SubtreeReplica r("sub");
    LiveAt5(r);
    r.OnPosition({"E", 5});  // equal
    r.OnPosition({"E", 4});  // older than us: published before what we have
    EXPECT_EQ(r.state(), State::kLive);
    EXPECT_EQ(r.stats().behind, 0u);
    r.OnPosition({"E", 6});  // behind
    EXPECT_EQ(r.state(), State::kNeedSync);
    EXPECT_EQ(r.stats().behind, 1u);
    EXPECT_EQ(r.MakeRequest(1).from, (Position{"E", 5}));
  }
  {
    SubtreeReplica r("sub");
    LiveAt5(r);
    r.OnPosition({"F", 5});  // other epoch
    EXPECT_EQ(r.state(), State::kNeedSync);
    EXPECT_EQ(r.stats().epoch_changes, 1u);
    EXPECT_EQ(r.MakeRequest(1).from, Position{});
  }
  {
    SubtreeReplica r("sub");
    LiveAt5(r);
    r.OnPosition({"", 0});  // the server lost the subtree
    EXPECT_EQ(r.state(), State::kNeedSync);
    EXPECT_EQ(r.MakeRequest(1).from, Position{});
  }
  {
    SubtreeReplica r("sub");
    GoLive(r, {"", 0}, {});
    r.OnPosition({"", 0});  // both unborn
    EXPECT_EQ(r.state(), State::kLive);
    r.OnPosition({"E", 2});  // born meanwhile and we missed it
    EXPECT_EQ(r.state(), State::kNeedSync);
    EXPECT_EQ(r.MakeRequest(1).from, Position{});
  }
  {
    SubtreeReplica r("sub");
    LiveAt5(r);
    r.OnPosition({"E", 6});
    r.MakeRequest(7);
    r.OnPosition({"X", 100});  // ignored while syncing
    EXPECT_EQ(r.state(), State::kSyncing);
  }
}

TEST_F(ReplicaTest, QueueOverflowWhileSyncing) {
  SubtreeReplica r("sub", /*max_queue=*/3);
  r.OnSubscribed();
  r.MakeRequest(1);
  for (uint64_t s = 1; s <= 10; ++s) r.OnUpdate("E", SetRec("k", std::to_string(s), s), &obs_);
  EXPECT_EQ(r.stats().overflows, 1u);  // counted once per sync
  r.OnSyncRecords(1, {SetRec("k", "2", 2)});
  r.OnSyncEnd(End(1, {"E", 2}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().overflows, 1u);
  EXPECT_EQ(r.stats().snapshots, 1u);
  EXPECT_EQ(r.position(), (Position{"E", 2}));  // the snapshot itself was fine
  EXPECT_TRUE(obs_.changes.empty());            // nothing replayed from a holed queue
  EXPECT_EQ(r.MakeRequest(2).from, (Position{"E", 2}));
  // The next sync works normally.
  r.OnUpdate("E", SetRec("k", "11", 11), &obs_);
  r.OnSyncRecords(2, {});
  std::vector<Record> rest;
  for (uint64_t s = 3; s <= 10; ++s) rest.push_back(SetRec("k", std::to_string(s), s));
  r.OnSyncRecords(2, std::move(rest));
  r.OnSyncEnd(End(2, {"E", 10}, 8, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 11}));
  EXPECT_EQ(r.entries().at("k"), (ReplicaEntry{"11", 11}));
  EXPECT_EQ(r.stats().overflows, 1u);
}

// CR-11 (issue 11): the queue is bounded in bytes too, not only in updates: a few large values
// overflow it like many small ones, and the subtree syncs again after the current sync.
TEST_F(ReplicaTest, CR11_QueueBoundedInBytes) {
  const Record big = SetRec("k", std::string(1000, 'v'), 1);
  const size_t per_update = SubtreeReplica::QueuedBytes(big);
  EXPECT_EQ(per_update, 1u + 1000u + 24u);
  SubtreeReplica r("sub", /*max_queue=*/1000, /*max_queue_bytes=*/3 * per_update);
  r.OnSubscribed();
  r.MakeRequest(1);
  for (uint64_t s = 3; s <= 5; ++s) {
    Record rec = big;
    rec.seq = s;
    r.OnUpdate("E", rec, &obs_);
  }
  EXPECT_EQ(r.queued(), 3u);
  EXPECT_EQ(r.queued_bytes(), 3 * per_update);
  EXPECT_EQ(r.stats().overflows, 0u);
  Record one_more = big;
  one_more.seq = 6;
  r.OnUpdate("E", one_more, &obs_);  // 4 updates, 4 KiB: over the byte bound
  EXPECT_EQ(r.stats().overflows, 1u);
  EXPECT_EQ(r.queued(), 0u);
  EXPECT_EQ(r.queued_bytes(), 0u);
  r.OnSyncEnd(End(1, {"E", 2}, 0), &obs_);
  EXPECT_EQ(r.state(), State::kNeedSync) << "syncs again after the current sync";
  EXPECT_EQ(r.MakeRequest(2).from, (Position{"E", 2}));
  // Within the bound the queue is replayed and its bytes are released.
  Record next = big;
  next.seq = 3;
  r.OnUpdate("E", next, &obs_);
  EXPECT_EQ(r.queued_bytes(), per_update);
  r.OnSyncEnd(End(2, {"E", 2}, 0, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 3}));
  EXPECT_EQ(r.queued_bytes(), 0u);
}

TEST_F(ReplicaTest, StaleRequestIdIgnored) {
  SubtreeReplica r("sub");
  r.OnSubscribed();
  r.MakeRequest(1);
  r.OnRequestFailed();
  EXPECT_EQ(r.stats().failed_requests, 1u);
  r.MakeRequest(2);
  r.OnSyncRecords(1, {SetRec("old", "1", 1)});
  r.OnSyncEnd(End(1, {"E", 1}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kSyncing);
  EXPECT_TRUE(obs_.resets.empty());
  r.OnSyncRecords(2, {SetRec("new", "1", 2)});
  r.OnSyncRecords(3, {SetRec("future", "1", 2)});
  r.OnSyncEnd(End(2, {"E", 2}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.entries(), (EntryMap{{"new", {"1", 2}}}));
  // Records and terminators outside a sync are ignored too.
  r.OnSyncRecords(2, {SetRec("late", "1", 9)});
  r.OnSyncEnd(End(2, {"Z", 9}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 2}));
  EXPECT_EQ(r.entries().size(), 1u);
  EXPECT_EQ(obs_.resets.size(), 1u);
}

TEST_F(ReplicaTest, RequestFailedKeepsEntries) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnPosition({"E", 8});
  r.MakeRequest(40);
  r.OnSyncRecords(40, {SetRec("partial", "1", 6)});
  r.OnRequestFailed();
  EXPECT_EQ(r.state(), State::kNeedSync);
  EXPECT_EQ(r.stats().failed_requests, 1u);
  EXPECT_EQ(r.position(), (Position{"E", 5}));
  EXPECT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.entries().count("partial"), 0u);
  r.OnRequestFailed();  // not syncing: no-op
  EXPECT_EQ(r.stats().failed_requests, 1u);
  // The retry resumes, and the failed request's partial records are gone.
  EXPECT_EQ(r.MakeRequest(41).from, (Position{"E", 5}));
  r.OnSyncRecords(41, {SetRec("a", "1", 6), SetRec("b", "1", 7), SetRec("c", "1", 8)});
  r.OnSyncEnd(End(41, {"E", 8}, 3, SyncMode::kResume), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.entries().size(), 6u);
  EXPECT_EQ(r.entries().count("partial"), 0u);
}

TEST_F(ReplicaTest, ResubscribeDropsQueue) {
  SubtreeReplica r("sub");
  LiveAt5(r);
  r.OnUpdate("E", SetRec("q", "1", 7), &obs_);  // gap -> need sync
  r.OnUpdate("E", SetRec("q", "2", 8), &obs_);  // queued
  r.OnResubscribe();
  EXPECT_EQ(r.state(), State::kWaitSubscribe);
  EXPECT_EQ(r.entries().size(), 3u);
  r.OnSubscribed();
  r.MakeRequest(2);
  r.OnSyncEnd(End(2, {"E", 6}, 1, SyncMode::kResume), &obs_);  // count mismatch
  EXPECT_EQ(r.state(), State::kNeedSync);
  r.MakeRequest(3);
  r.OnSyncRecords(3, {SetRec("k1", "v1", 1)});
  r.OnSyncEnd(End(3, {"E", 6}, 1), &obs_);
  EXPECT_EQ(r.state(), State::kLive);
  EXPECT_EQ(r.position(), (Position{"E", 6}));  // seq 7/8 from before were dropped
  EXPECT_TRUE(obs_.changes.empty());
}

TEST(ReplicaStateName, Names) {
  EXPECT_STREQ(StateName(State::kWaitSubscribe), "wait-subscribe");
  EXPECT_STREQ(StateName(State::kNeedSync), "need-sync");
  EXPECT_STREQ(StateName(State::kSyncing), "syncing");
  EXPECT_STREQ(StateName(State::kLive), "live");
}

}  // namespace
}  // namespace chorus::chp
