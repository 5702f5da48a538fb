// Unit tests for the recovery merge (broker/core/recovery.h): recovered + buffered live
// publications delivered once, in order, without a gap; faults that force a reconnect.
#include "broker/core/recovery.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "broker/core/history.h"

namespace chorus::broker {
namespace {

using Offs = std::vector<uint64_t>;

Publication P(uint64_t offset) {
  Publication p;
  p.offset = offset;
  p.data = "d" + std::to_string(offset);
  return p;
}

std::vector<Publication> Ps(const Offs& offsets) {
  std::vector<Publication> out;
  for (uint64_t o : offsets) out.push_back(P(o));
  return out;
}

Offs Offsets(const Delivery& d) {
  Offs out;
  for (const auto& p : d.publications) out.push_back(p.offset);
  return out;
}

RecoveryResult Recovered(uint64_t top, const Offs& offsets, std::string epoch = "e1") {
  return RecoveryResult{true, {top, std::move(epoch)}, Ps(offsets)};
}

RecoveryResult NotRecovered(uint64_t top, std::string epoch = "e1") {
  return RecoveryResult{false, {top, std::move(epoch)}, {}};
}

void Buffer(SubscriptionMerger& m, const Offs& offsets, const std::string& epoch = "e1") {
  for (uint64_t o : offsets) {
    const Delivery d = m.OnLive(epoch, P(o));
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(d.publications.empty()) << "nothing is delivered before Merge";
  }
}

TEST(BrokerSubscriptionMerger, RecoveredThenLivePassThroughWithoutDuplicates) {
  SubscriptionMerger m(16);
  EXPECT_FALSE(m.merged());
  Delivery d = m.Merge(Recovered(5, {3, 4, 5}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Offsets(d), (Offs{3, 4, 5}));
  EXPECT_EQ(d.publications[0].data, "d3");
  EXPECT_TRUE(m.merged());
  EXPECT_EQ(m.position(), (StreamPosition{5, "e1"}));

  EXPECT_EQ(Offsets(m.OnLive("e1", P(6))), (Offs{6}));
  EXPECT_EQ(Offsets(m.OnLive("e1", P(6))), (Offs{}));  // duplicate
  EXPECT_EQ(Offsets(m.OnLive("e1", P(4))), (Offs{}));  // old
  EXPECT_TRUE(m.OnLive("e1", P(5)).ok());
  EXPECT_EQ(Offsets(m.OnLive("e1", P(7))), (Offs{7}));
  EXPECT_EQ(m.position(), (StreamPosition{7, "e1"}));
}

TEST(BrokerSubscriptionMerger, LiveGapAfterMergeIsInsufficientState) {
  SubscriptionMerger m(16);
  ASSERT_TRUE(m.Merge(Recovered(5, {})).ok());
  Delivery d = m.OnLive("e1", P(7));
  EXPECT_EQ(d.fault, StreamFault::kGap);
  EXPECT_TRUE(d.publications.empty());
  EXPECT_EQ(Delivery::kDisconnectCode, 3010u);
  // Faults are final: even the missing publication does not resume the stream.
  d = m.OnLive("e1", P(6));
  EXPECT_EQ(d.fault, StreamFault::kGap);
  EXPECT_TRUE(d.publications.empty());
  EXPECT_EQ(m.fault(), StreamFault::kGap);
}

TEST(BrokerSubscriptionMerger, OverlapBetweenRecoveredAndBuffered) {
  SubscriptionMerger m(16);
  Buffer(m, {4, 5, 6, 7});
  EXPECT_EQ(m.buffered(), 4u);
  Delivery d = m.Merge(Recovered(5, {3, 4, 5}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Offsets(d), (Offs{3, 4, 5, 6, 7}));
  EXPECT_EQ(m.position().offset, 7u);
  EXPECT_EQ(m.buffered(), 0u);
  EXPECT_EQ(Offsets(m.OnLive("e1", P(7))), (Offs{}));
  EXPECT_EQ(Offsets(m.OnLive("e1", P(8))), (Offs{8}));
}

TEST(BrokerSubscriptionMerger, BufferedOutOfOrderAndDuplicated) {
  SubscriptionMerger m(16);
  Buffer(m, {7, 6, 6, 5, 8, 7});
  Delivery d = m.Merge(Recovered(5, {3, 4, 5}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Offsets(d), (Offs{3, 4, 5, 6, 7, 8}));
}

TEST(BrokerSubscriptionMerger, BufferedEntirelyOlderThanRecovered) {
  SubscriptionMerger m(16);
  Buffer(m, {2, 3});
  Delivery d = m.Merge(Recovered(5, {3, 4, 5}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Offsets(d), (Offs{3, 4, 5}));
  EXPECT_EQ(m.position().offset, 5u);
}

TEST(BrokerSubscriptionMerger, GapBetweenRecoveredAndBufferedIsInsufficientState) {
  SubscriptionMerger m(16);
  Buffer(m, {7, 8});
  Delivery d = m.Merge(Recovered(5, {4, 5}));
  EXPECT_EQ(d.fault, StreamFault::kGap);
  EXPECT_TRUE(d.publications.empty()) << "nothing, not even the recovered part";
  EXPECT_EQ(m.OnLive("e1", P(6)).fault, StreamFault::kGap);
}

TEST(BrokerSubscriptionMerger, GapInsideTheBufferIsInsufficientState) {
  SubscriptionMerger m(16);
  Buffer(m, {6, 8});
  EXPECT_EQ(m.Merge(Recovered(5, {})).fault, StreamFault::kGap);
}

TEST(BrokerSubscriptionMerger, NotRecoveredContinuesFromTheTop) {
  SubscriptionMerger m(16);
  Buffer(m, {9, 10, 11, 12});
  Delivery d = m.Merge(NotRecovered(10));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Offsets(d), (Offs{11, 12}));
  EXPECT_EQ(m.position(), (StreamPosition{12, "e1"}));
}

TEST(BrokerSubscriptionMerger, NotRecoveredWithAGapAfterTheTop) {
  SubscriptionMerger m(16);
  Buffer(m, {13});
  EXPECT_EQ(m.Merge(NotRecovered(10)).fault, StreamFault::kGap);
}

TEST(BrokerSubscriptionMerger, NothingMissedNothingBuffered) {
  SubscriptionMerger m(16);
  Delivery d = m.Merge(Recovered(5, {}));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d.publications.empty());
  EXPECT_EQ(Offsets(m.OnLive("e1", P(6))), (Offs{6}));
}

TEST(BrokerSubscriptionMerger, BufferOverflowIsInsufficientState) {
  SubscriptionMerger m(2);
  Buffer(m, {6, 7});
  Delivery d = m.OnLive("e1", P(8));
  EXPECT_EQ(d.fault, StreamFault::kBufferOverflow);
  EXPECT_EQ(m.buffered(), 0u);
  d = m.Merge(Recovered(5, {5}));
  EXPECT_EQ(d.fault, StreamFault::kBufferOverflow);
  EXPECT_TRUE(d.publications.empty());
}

TEST(BrokerSubscriptionMerger, EpochChangeIsInsufficientState) {
  SubscriptionMerger before(16);
  Buffer(before, {1}, "e2");
  EXPECT_EQ(before.Merge(Recovered(5, {4, 5}, "e1")).fault, StreamFault::kEpochChanged);

  SubscriptionMerger after(16);
  ASSERT_TRUE(after.Merge(Recovered(5, {4, 5}, "e1")).ok());
  // A new epoch restarts offsets at 1: without the epoch check it would pass as a duplicate.
  EXPECT_EQ(after.OnLive("e2", P(1)).fault, StreamFault::kEpochChanged);
  EXPECT_EQ(after.OnLive("e1", P(6)).fault, StreamFault::kEpochChanged);
}

TEST(BrokerSubscriptionMerger, BadRecoveryResults) {
  SubscriptionMerger holes(16);
  EXPECT_EQ(holes.Merge(Recovered(5, {3, 5})).fault, StreamFault::kBadRecoveryResult);
  SubscriptionMerger short_of_top(16);
  EXPECT_EQ(short_of_top.Merge(Recovered(6, {4, 5})).fault, StreamFault::kBadRecoveryResult);
  SubscriptionMerger partial(16);
  RecoveryResult r = NotRecovered(5);
  r.publications = Ps({4, 5});  // a partial answer must not be delivered
  EXPECT_EQ(partial.Merge(r).fault, StreamFault::kBadRecoveryResult);
  SubscriptionMerger twice(16);
  ASSERT_TRUE(twice.Merge(Recovered(5, {5})).ok());
  EXPECT_EQ(twice.Merge(Recovered(5, {5})).fault, StreamFault::kBadRecoveryResult);
}

// Against a real ChannelHistory: a client last saw `client_offset`; publications keep arriving
// while its subscribe is set up, the live feed may repeat publications, and the recovery read
// happens at a random moment. The client must see exactly client_offset+1 .. final top, once.
TEST(BrokerSubscriptionMerger, RandomInterleavingsAgainstHistory) {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    ChannelHistory history("e1", 64, 0);
    const int before = static_cast<int>(rng() % 20);
    for (int i = 0; i < before; ++i) history.Append(Publication{}, 0);
    const uint64_t client_offset = rng() % (history.top_offset() + 1);

    SubscriptionMerger merger(64);
    std::vector<Publication> seen;
    const auto deliver = [&](const Delivery& d) {
      ASSERT_TRUE(d.ok()) << StreamFaultName(d.fault);
      seen.insert(seen.end(), d.publications.begin(), d.publications.end());
    };
    const int during = static_cast<int>(rng() % 20);
    const int read_at = static_cast<int>(rng() % (during + 1));
    std::vector<Publication> live;  // published, not yet forwarded to the merger
    for (int i = 0; i <= during; ++i) {
      if (i == read_at) {
        // Publications in flight at the read reach the merger before or after the result.
        RecoveryResult r = history.Recover("e1", client_offset, 0);
        ASSERT_TRUE(r.recovered);
        if (rng() % 2 == 0) {
          for (auto& p : live) deliver(merger.OnLive("e1", p));
          live.clear();
        }
        deliver(merger.Merge(std::move(r)));
      }
      if (i == during) break;
      Publication p;
      p.offset = history.Append(Publication{}, 0);
      live.push_back(p);
      if (rng() % 2 == 0) {  // forward the in-flight ones, sometimes twice
        for (auto& q : live) {
          deliver(merger.OnLive("e1", q));
          if (rng() % 4 == 0) deliver(merger.OnLive("e1", q));
        }
        live.clear();
      }
    }
    for (auto& p : live) deliver(merger.OnLive("e1", p));
    Offs expected;
    for (uint64_t o = client_offset + 1; o <= history.top_offset(); ++o) expected.push_back(o);
    Offs got;
    for (const auto& p : seen) got.push_back(p.offset);
    ASSERT_EQ(got, expected);
  }
}

}  // namespace
}  // namespace chorus::broker
