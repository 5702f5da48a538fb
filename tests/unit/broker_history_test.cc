// Unit tests for a channel's history stream (broker/core/history.h): offsets, size and TTL caps
// at exact boundaries, history queries, all-or-nothing recovery, remove, replication.
#include "broker/core/history.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace chorus::broker {
namespace {

Publication Pub(std::string data) {
  Publication p;
  p.data = std::move(data);
  return p;
}

Publication At(uint64_t offset, int64_t time_ms = 0) {
  Publication p;
  p.offset = offset;
  p.data = "d" + std::to_string(offset);
  p.time_ms = time_ms;
  return p;
}

std::vector<uint64_t> Offsets(const std::vector<Publication>& pubs) {
  std::vector<uint64_t> out;
  for (const auto& p : pubs) out.push_back(p.offset);
  return out;
}

using Offs = std::vector<uint64_t>;

// Five publications at t = 0..4 in a history of size 3 (retains offsets 3, 4, 5), no TTL.
ChannelHistory FiveInThree() {
  ChannelHistory h("e1", 3, 0);
  for (uint64_t i = 1; i <= 5; ++i) {
    EXPECT_EQ(h.Append(Pub("p" + std::to_string(i)), static_cast<int64_t>(i) - 1), i);
  }
  return h;
}

HistoryQuery Query(int64_t limit, std::optional<StreamPosition> since = std::nullopt,
                   bool reverse = false) {
  return HistoryQuery{std::move(since), limit, reverse};
}

TEST(BrokerChannelHistory, AppendAssignsConsecutiveOffsetsAndTime) {
  ChannelHistory h("e1", 10, 0);
  EXPECT_EQ(h.Top(), (StreamPosition{0, "e1"}));
  EXPECT_EQ(h.first_offset(), 0u);
  Publication p = Pub("{\"a\":1}");
  p.offset = 99;  // ignored: the history assigns offsets
  p.time_ms = 5;  // ignored: the history stamps its clock
  p.info = "{\"user\":\"u1\"}";
  p.tags = {{"k", "v"}};
  EXPECT_EQ(h.Append(p, 1000), 1u);
  EXPECT_EQ(h.Append(Pub("x"), 1001), 2u);
  EXPECT_EQ(h.Append(Pub("y"), 1001), 3u);
  EXPECT_EQ(h.Top(), (StreamPosition{3, "e1"}));
  auto r = h.Get(Query(-1), 1001);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->publications.size(), 3u);
  const Publication& first = r->publications[0];
  EXPECT_EQ(first.offset, 1u);
  EXPECT_EQ(first.time_ms, 1000);
  EXPECT_EQ(first.data, "{\"a\":1}");
  EXPECT_EQ(first.info, "{\"user\":\"u1\"}");
  EXPECT_EQ(first.tags.at("k"), "v");
  EXPECT_EQ(Offsets(r->publications), (Offs{1, 2, 3}));
}

TEST(BrokerChannelHistory, SizeCapKeepsTheLatest) {
  ChannelHistory h = FiveInThree();
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.first_offset(), 3u);
  EXPECT_EQ(h.Top(), (StreamPosition{5, "e1"}));
  auto r = h.Get(Query(-1), 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Offsets(r->publications), (Offs{3, 4, 5}));
  EXPECT_EQ(r->publications[0].data, "p3");
}

TEST(BrokerChannelHistory, SizeZeroKeepsOnlyThePosition) {
  ChannelHistory h("e1", 0, 0);
  EXPECT_EQ(h.Append(Pub("a"), 0), 1u);
  EXPECT_EQ(h.Append(Pub("b"), 0), 2u);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.Top(), (StreamPosition{2, "e1"}));
}

TEST(BrokerChannelHistory, TtlExpiresEachPublicationAtItsExactAge) {
  ChannelHistory h("e1", 10, 1000);
  h.Append(Pub("a"), 0);    // expires at 1000
  h.Append(Pub("b"), 500);  // expires at 1500
  auto at = [&](int64_t now) { return Offsets(h.Get(Query(-1), now)->publications); };
  EXPECT_EQ(at(999), (Offs{1, 2}));
  EXPECT_EQ(at(1000), (Offs{2}));
  EXPECT_EQ(at(1499), (Offs{2}));
  EXPECT_EQ(at(1500), (Offs{}));
  // The stream's metadata outlives its publications.
  EXPECT_EQ(h.Top(), (StreamPosition{2, "e1"}));
  EXPECT_EQ(h.Append(Pub("c"), 2000), 3u);
  EXPECT_EQ(at(2000), (Offs{3}));
  EXPECT_EQ(at(2999), (Offs{3}));
}

TEST(BrokerChannelHistory, ZeroTtlNeverExpires) {
  ChannelHistory h("e1", 10, 0);
  h.Append(Pub("a"), 0);
  EXPECT_EQ(Offsets(h.Get(Query(-1), int64_t{1} << 60)->publications), (Offs{1}));
}

TEST(BrokerChannelHistory, GetLimitAndDirection) {
  ChannelHistory h = FiveInThree();
  auto r = h.Get(Query(0), 10);  // position only
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->top, (StreamPosition{5, "e1"}));
  EXPECT_TRUE(r->publications.empty());
  EXPECT_EQ(Offsets(h.Get(Query(2), 10)->publications), (Offs{3, 4}));
  EXPECT_EQ(Offsets(h.Get(Query(2, std::nullopt, true), 10)->publications), (Offs{5, 4}));
  EXPECT_EQ(Offsets(h.Get(Query(-1, std::nullopt, true), 10)->publications), (Offs{5, 4, 3}));
  EXPECT_EQ(Offsets(h.Get(Query(100), 10)->publications), (Offs{3, 4, 5}));
}

TEST(BrokerChannelHistory, GetSinceForward) {
  ChannelHistory h = FiveInThree();
  EXPECT_EQ(Offsets(h.Get(Query(-1, StreamPosition{2, "e1"}), 10)->publications), (Offs{3, 4, 5}));
  EXPECT_EQ(Offsets(h.Get(Query(1, StreamPosition{2, "e1"}), 10)->publications), (Offs{3}));
  EXPECT_EQ(Offsets(h.Get(Query(-1, StreamPosition{4, "e1"}), 10)->publications), (Offs{5}));
  auto at_top = h.Get(Query(-1, StreamPosition{5, "e1"}), 10);
  ASSERT_TRUE(at_top.ok());
  EXPECT_TRUE(at_top->publications.empty());
  // An empty epoch skips the epoch check (as Centrifugo does).
  EXPECT_EQ(Offsets(h.Get(Query(-1, StreamPosition{3, ""}), 10)->publications), (Offs{4, 5}));
}

TEST(BrokerChannelHistory, GetSinceRefusesUnrecoverablePositions) {
  ChannelHistory h = FiveInThree();
  // Offset 2 is gone: starting after 1 would silently skip it.
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{1, "e1"}), 10).error(), Errc::kUnrecoverablePosition);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{0, "e1"}), 10).error(), Errc::kUnrecoverablePosition);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{2, "other"}), 10).error(), Errc::kUnrecoverablePosition);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{6, "e1"}), 10).error(), Errc::kUnrecoverablePosition);
  // Epoch and future offsets are checked even for a position-only query; gaps are not (nothing
  // is returned, so nothing is skipped).
  EXPECT_EQ(h.Get(Query(0, StreamPosition{2, "other"}), 10).error(), Errc::kUnrecoverablePosition);
  EXPECT_EQ(h.Get(Query(0, StreamPosition{6, "e1"}), 10).error(), Errc::kUnrecoverablePosition);
  EXPECT_TRUE(h.Get(Query(0, StreamPosition{1, "e1"}), 10).ok());
}

TEST(BrokerChannelHistory, GetSinceAfterEverythingExpired) {
  ChannelHistory h("e1", 10, 100);
  h.Append(Pub("a"), 0);
  h.Append(Pub("b"), 0);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{1, "e1"}), 100).error(), Errc::kUnrecoverablePosition);
  auto at_top = h.Get(Query(-1, StreamPosition{2, "e1"}), 100);
  ASSERT_TRUE(at_top.ok());
  EXPECT_TRUE(at_top->publications.empty());
  EXPECT_EQ(at_top->top, (StreamPosition{2, "e1"}));
}

TEST(BrokerChannelHistory, GetSinceReverse) {
  ChannelHistory h = FiveInThree();
  EXPECT_EQ(Offsets(h.Get(Query(-1, StreamPosition{5, "e1"}, true), 10)->publications),
            (Offs{4, 3}));
  EXPECT_EQ(Offsets(h.Get(Query(1, StreamPosition{5, "e1"}, true), 10)->publications), (Offs{4}));
  EXPECT_EQ(Offsets(h.Get(Query(-1, StreamPosition{4, "e1"}, true), 10)->publications), (Offs{3}));
  // Reaching the oldest retained publication ends the iteration.
  auto end = h.Get(Query(-1, StreamPosition{3, "e1"}, true), 10);
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->publications.empty());
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{0, "e1"}, true), 10).error(), Errc::kBadRequest);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{6, "e1"}, true), 10).error(),
            Errc::kUnrecoverablePosition);
}

TEST(BrokerChannelHistory, RecoverReturnsEverythingAfterTheOffset) {
  ChannelHistory h = FiveInThree();
  RecoveryResult r = h.Recover("e1", 2, 10);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.top, (StreamPosition{5, "e1"}));
  EXPECT_EQ(Offsets(r.publications), (Offs{3, 4, 5}));
  EXPECT_EQ(r.publications[2].data, "p5");

  r = h.Recover("e1", 4, 10);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(Offsets(r.publications), (Offs{5}));

  r = h.Recover("e1", 5, 10);  // already at the top
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.publications.empty());
}

TEST(BrokerChannelHistory, RecoverRefusesPartialAnswers) {
  ChannelHistory h = FiveInThree();
  for (uint64_t offset : {0, 1}) {  // offset 2 (and 1) evicted by the size cap
    RecoveryResult r = h.Recover("e1", offset, 10);
    EXPECT_FALSE(r.recovered) << offset;
    EXPECT_TRUE(r.publications.empty()) << offset;
    EXPECT_EQ(r.top, (StreamPosition{5, "e1"}));
  }
}

TEST(BrokerChannelHistory, RecoverRefusesOtherEpochAndFutureOffsets) {
  ChannelHistory h = FiveInThree();
  RecoveryResult r = h.Recover("e0", 4, 10);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.publications.empty());
  EXPECT_EQ(r.top, (StreamPosition{5, "e1"}));
  EXPECT_FALSE(h.Recover("", 4, 10).recovered);  // recovery always checks the epoch
  r = h.Recover("e1", 6, 10);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.publications.empty());
}

TEST(BrokerChannelHistory, RecoverRespectsMaxPublications) {
  ChannelHistory h = FiveInThree();
  EXPECT_FALSE(h.Recover("e1", 2, 10, 2).recovered);
  EXPECT_TRUE(h.Recover("e1", 2, 10, 3).recovered);
  EXPECT_EQ(Offsets(h.Recover("e1", 3, 10, 2).publications), (Offs{4, 5}));
}

TEST(BrokerChannelHistory, RecoverAfterTtlAtExactBoundary) {
  ChannelHistory h("e1", 10, 1000);
  h.Append(Pub("a"), 0);    // offset 1, expires at 1000
  h.Append(Pub("b"), 100);  // offset 2, expires at 1100
  h.Append(Pub("c"), 200);  // offset 3, expires at 1200
  EXPECT_EQ(Offsets(h.Recover("e1", 0, 999).publications), (Offs{1, 2, 3}));
  RecoveryResult r = h.Recover("e1", 0, 1000);
  EXPECT_FALSE(r.recovered);  // offset 1 expired: no partial answer
  EXPECT_TRUE(r.publications.empty());
  EXPECT_EQ(Offsets(h.Recover("e1", 1, 1000).publications), (Offs{2, 3}));
  EXPECT_FALSE(h.Recover("e1", 2, 1200).recovered);
  r = h.Recover("e1", 3, 5000);  // nothing missed: recovered even with nothing retained
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.top, (StreamPosition{3, "e1"}));
}

TEST(BrokerChannelHistory, RemoveKeepsThePosition) {
  ChannelHistory h = FiveInThree();
  h.Remove();
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.Top(), (StreamPosition{5, "e1"}));
  EXPECT_TRUE(h.Recover("e1", 5, 10).recovered);
  EXPECT_FALSE(h.Recover("e1", 4, 10).recovered);
  EXPECT_EQ(h.Get(Query(-1, StreamPosition{4, "e1"}), 10).error(), Errc::kUnrecoverablePosition);
  auto all = h.Get(Query(-1), 10);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->publications.empty());
  EXPECT_EQ(h.Append(Pub("next"), 11), 6u);
  EXPECT_EQ(Offsets(h.Recover("e1", 5, 11).publications), (Offs{6}));
}

TEST(BrokerChannelHistory, ResetStartsANewStream) {
  ChannelHistory h = FiveInThree();
  h.Reset("e2");
  EXPECT_EQ(h.Top(), (StreamPosition{0, "e2"}));
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.Recover("e1", 5, 10).recovered);
  EXPECT_EQ(h.Append(Pub("a"), 10), 1u);
  EXPECT_EQ(Offsets(h.Recover("e2", 0, 10).publications), (Offs{1}));
}

TEST(BrokerChannelHistory, ApplyReplicatedInOrder) {
  ChannelHistory h("e1", 2, 1000);
  ASSERT_TRUE(h.ApplyReplicated(At(1, 100)).ok());
  ASSERT_TRUE(h.ApplyReplicated(At(2, 200)).ok());
  ASSERT_TRUE(h.ApplyReplicated(At(3, 300)).ok());
  EXPECT_EQ(h.Top(), (StreamPosition{3, "e1"}));
  EXPECT_EQ(h.first_offset(), 2u);  // size cap applies
  // The primary's time_ms is kept: offset 2 expires at 1200.
  EXPECT_EQ(Offsets(h.Get(Query(-1), 1199)->publications), (Offs{2, 3}));
  EXPECT_EQ(Offsets(h.Get(Query(-1), 1200)->publications), (Offs{3}));
}

TEST(BrokerChannelHistory, ApplyReplicatedRejectsGapsAndStaleRecords) {
  ChannelHistory h("e1", 10, 0);
  ASSERT_TRUE(h.ApplyReplicated(At(1)).ok());
  ASSERT_TRUE(h.ApplyReplicated(At(2)).ok());
  EXPECT_EQ(h.ApplyReplicated(At(2)).error(), Errc::kReplicaStale);
  EXPECT_EQ(h.ApplyReplicated(At(1)).error(), Errc::kReplicaStale);
  EXPECT_EQ(h.ApplyReplicated(At(4)).error(), Errc::kReplicaGap);
  EXPECT_EQ(h.Top(), (StreamPosition{2, "e1"}));
  EXPECT_EQ(Offsets(h.Get(Query(-1), 0)->publications), (Offs{1, 2}));
  ASSERT_TRUE(h.ApplyReplicated(At(3)).ok());
  EXPECT_EQ(h.Top().offset, 3u);
}

TEST(BrokerChannelHistory, RestoreFromSnapshotThenFollow) {
  ChannelHistory h("", 3, 0);
  ASSERT_TRUE(h.Restore({12, "e7"}, {At(10), At(11), At(12)}).ok());
  EXPECT_EQ(h.Top(), (StreamPosition{12, "e7"}));
  EXPECT_EQ(h.first_offset(), 10u);
  EXPECT_EQ(h.ApplyReplicated(At(14)).error(), Errc::kReplicaGap);
  ASSERT_TRUE(h.ApplyReplicated(At(13)).ok());
  EXPECT_EQ(Offsets(h.Recover("e7", 10, 0).publications), (Offs{11, 12, 13}));
  EXPECT_FALSE(h.Recover("e7", 9, 0).recovered);
  // A snapshot longer than the cap keeps its latest publications.
  ASSERT_TRUE(h.Restore({5, "e8"}, {At(1), At(2), At(3), At(4), At(5)}).ok());
  EXPECT_EQ(h.first_offset(), 3u);
}

TEST(BrokerChannelHistory, RestoreRejectsBrokenSnapshots) {
  ChannelHistory h("e1", 10, 0);
  h.Append(Pub("a"), 0);
  EXPECT_EQ(h.Restore({12, "e7"}, {At(10), At(12)}).error(), Errc::kBadSnapshot);  // hole
  EXPECT_EQ(h.Restore({13, "e7"}, {At(11), At(12)}).error(), Errc::kBadSnapshot);  // short
  EXPECT_EQ(h.Restore({12, "e7"}, {At(12), At(11)}).error(), Errc::kBadSnapshot);  // order
  EXPECT_EQ(h.Top(), (StreamPosition{1, "e1"}));                                   // unchanged
  // Everything expired on the primary: position only.
  ASSERT_TRUE(h.Restore({12, "e7"}, {}).ok());
  EXPECT_EQ(h.Top(), (StreamPosition{12, "e7"}));
  EXPECT_TRUE(h.Recover("e7", 12, 0).recovered);
  EXPECT_FALSE(h.Recover("e7", 11, 0).recovered);
}

// docs/cluster.md C-9 for reads: with a visible offset below the top (publications not
// committed yet), queries and recovery answer as if the stream ended there.
TEST(BrokerHistory, ReadsStopAtTheVisibleOffset) {
  ChannelHistory h("e1", 10, 0);
  for (uint64_t i = 1; i <= 6; ++i) h.Append(Pub("p"), 0);
  HistoryQuery all;
  all.limit = -1;
  auto got = h.Get(all, 0, 4);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->top, (StreamPosition{4, "e1"}));
  EXPECT_EQ(Offsets(got->publications), (Offs{1, 2, 3, 4}));
  HistoryQuery reverse = all;
  reverse.reverse = true;
  reverse.limit = 2;
  got = h.Get(reverse, 0, 4);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Offsets(got->publications), (Offs{4, 3}));
  HistoryQuery since = all;
  since.since = StreamPosition{2, "e1"};
  got = h.Get(since, 0, 4);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Offsets(got->publications), (Offs{3, 4}));
  since.since = StreamPosition{5, "e1"};  // beyond what reads may show
  EXPECT_EQ(h.Get(since, 0, 4).error(), make_error_code(Errc::kUnrecoverablePosition));
  // Recovery: up to the visible offset, never beyond it; a position above it is not recovered.
  RecoveryResult r = h.Recover("e1", 1, 0, 0, 4);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.top, (StreamPosition{4, "e1"}));
  EXPECT_EQ(Offsets(r.publications), (Offs{2, 3, 4}));
  r = h.Recover("e1", 4, 0, 0, 4);
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.publications.empty());
  EXPECT_FALSE(h.Recover("e1", 5, 0, 0, 4).recovered);
  EXPECT_EQ(h.VisibleTop(4), (StreamPosition{4, "e1"}));
  EXPECT_EQ(h.VisibleTop(ChannelHistory::kAll), (StreamPosition{6, "e1"}));
  // Nothing visible retained (the visible offset is below the oldest retained one).
  ChannelHistory small("e2", 2, 0);
  for (int i = 0; i < 5; ++i) small.Append(Pub("p"), 0);  // retains 4, 5
  got = small.Get(all, 0, 3);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->top, (StreamPosition{3, "e2"}));
  EXPECT_TRUE(got->publications.empty());
  EXPECT_TRUE(small.Recover("e2", 3, 0, 0, 3).recovered);
  EXPECT_FALSE(small.Recover("e2", 2, 0, 0, 3).recovered);
}

}  // namespace
}  // namespace chorus::broker
