// Raw-wire tests of chorus-chp-server: epochs and sequences, KVSET/KVACK, the UUID window and
// publishing (CS-3 .. CS-12).
// Shared helpers and the ChpWire fixture: chp_wire_support.h (which also explains how waits and
// "no reply" are checked). The chp headers are deliberately not used.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chp_wire_support.h"

namespace chp_wire_test {
namespace {

// =============================================================================================
// §7 Server: epochs and sequences

TEST_F(ChpWire, CS3_NewSubtreeGetsANewRandomHexEpoch) {
  StartServer();
  std::string first_epoch;
  {
    auto d = Dealer();
    // Neither a rejected set nor a delete of a missing key creates a subtree.
    EXPECT_EQ(Set(d, "a/k", "\xc1").status, kBadValue);
    const KvAckMsg noop = Del(d, "a/k");
    EXPECT_EQ(noop.status, kOk);
    EXPECT_EQ(noop.epoch, "");
    EXPECT_EQ(noop.seq, 0u);
    const KvAckMsg a = Set(d, "a/k", MpInt(1));
    const KvAckMsg b = Set(d, "b/k", MpInt(1));
    EXPECT_TRUE(IsEpoch(a.epoch)) << a.epoch;
    EXPECT_TRUE(IsEpoch(b.epoch)) << b.epoch;
    EXPECT_NE(a.epoch, b.epoch);
    EXPECT_EQ(Set(d, "a/k2", MpInt(2)).epoch, a.epoch);
    first_epoch = a.epoch;
  }
  // A restarted server creates the subtree again with a new epoch.
  StopServer();
  StartServer();
  auto d = Dealer();
  const KvAckMsg again = Set(d, "a/k", MpInt(1));
  EXPECT_TRUE(IsEpoch(again.epoch));
  EXPECT_EQ(again.seq, 1u);
  EXPECT_NE(again.epoch, first_epoch);
}

TEST_F(ChpWire, CS4_SubtreeKeepsEpochAndSeqWhenEmptied) {
  StartServer();
  auto d = Dealer();
  const KvAckMsg set = Set(d, "e/k", MpInt(1));
  const KvAckMsg del = Del(d, "e/k");
  EXPECT_EQ(del.epoch, set.epoch);
  EXPECT_EQ(del.seq, 2u);
  const SyncReply snap = Snapshot(d, 1, "e");
  EXPECT_EQ(snap.end.count, 0u);
  EXPECT_EQ(snap.end.epoch, set.epoch);
  EXPECT_EQ(snap.end.seq, 2u);
  auto sub = Sub();
  const PositionMsg pos = AsPosition(Subscribe(sub, "e/"));
  EXPECT_EQ(pos.epoch, set.epoch);
  EXPECT_EQ(pos.seq, 2u);
  const KvAckMsg again = Set(d, "e/k", MpInt(1));
  EXPECT_EQ(again.epoch, set.epoch);
  EXPECT_EQ(again.seq, 3u);
}

TEST_F(ChpWire, CS5_SequenceStartsAtOneAndGrowsByOnePerChange) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  EXPECT_EQ(Set(d, "a/x", MpInt(1)).seq, 1u);
  EXPECT_EQ(Set(d, "a/x", MpInt(1)).seq, 2u) << "the same value again is a change";
  EXPECT_EQ(Set(d, "a/y", MpInt(1)).seq, 3u);
  EXPECT_EQ(Set(d, "b/x", MpInt(1)).seq, 1u) << "sequences are per subtree";
  EXPECT_EQ(Del(d, "a/x").seq, 4u);
  const KvAckMsg noop = Del(d, "a/x");
  EXPECT_EQ(noop.status, kOk);
  EXPECT_EQ(noop.seq, 4u) << "a delete of a missing key takes no sequence";
  EXPECT_EQ(Set(d, "a/z", MpInt(1)).seq, 5u);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    const KvPubMsg pub = NextKvPub(sub);
    EXPECT_EQ(pub.seq, seq);
    if (seq == 5) {
      EXPECT_EQ(pub.topic, "a/z") << "the no-op delete was not published";
    }
  }
}

TEST_F(ChpWire, CS6_UnheldSubtreeIsReportedUnborn) {
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "held/k", MpInt(1)).status, kOk);
  auto sub = Sub();
  const PositionMsg pos = AsPosition(Subscribe(sub, "u/"));
  EXPECT_EQ(pos.epoch, "");
  EXPECT_EQ(pos.seq, 0u);
  const SyncReply snap = Snapshot(d, 1, "u");
  EXPECT_TRUE(snap.batches.empty());
  EXPECT_EQ(snap.end.epoch, "");
  EXPECT_EQ(snap.end.seq, 0u);
  EXPECT_EQ(snap.end.count, 0u);
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  const KvAckMsg ack = Del(d, "u/k");
  EXPECT_EQ(ack.status, kOk);
  EXPECT_EQ(ack.epoch, "");
  EXPECT_EQ(ack.seq, 0u);
}

// =============================================================================================
// §7 Server: updates

TEST_F(ChpWire, CS7_EveryKvSetGetsOneKvAck) {
  StartServer();
  auto d = Dealer();
  // Pipelined: accepted, rejected for each reason, no-op deletes and a duplicate.
  std::vector<std::string> uuids;
  std::vector<std::string> bodies;
  auto add = [&](std::string uuid, std::string_view key, uint64_t op, std::string_view value,
                 uint64_t ttl = 0) {
    bodies.push_back(KvSet(uuid, key, op, value, ttl));
    uuids.push_back(std::move(uuid));
  };
  const std::string dup = NewUuid();
  add(dup, "a/k", kOpSet, MpInt(1));
  add(NewUuid(), "a/", kOpSet, MpInt(1));
  add(NewUuid(), "a/k", kOpExpire, "");
  add(NewUuid(), "a/k", kOpSet, ValueOfSize(kMaxValueBytes + 1));
  add(NewUuid(), "a/k", kOpSet, "\xc1");
  add(NewUuid(), "a/k", kOpSet, MpInt(1), kMaxTtlMs + 1);
  add(NewUuid(), "a/missing", kOpDelete, "");
  add(NewUuid(), "nope/missing", kOpDelete, "");
  add(dup, "a/k", kOpSet, MpInt(1));
  for (int i = 0; i < 100; ++i) add(NewUuid(), "b/k" + std::to_string(i % 7), kOpSet, MpInt(i));
  for (const auto& b : bodies) SendBody(d, b);
  for (size_t i = 0; i < uuids.size(); ++i) {
    const KvAckMsg ack = AsKvAck(RecvReply(d));
    EXPECT_EQ(ack.uuid, uuids[i]) << "KVACK " << i << " out of order or for the wrong UUID";
  }
  // Exactly one each: the next reply is the sentinel's.
  ExpectNoReply(d, "the KVSETs already acknowledged");
  // A KVSET that cannot be decoded gets none.
  const std::string body = KvSet(NewUuid(), "a/k", kOpSet, MpInt(1));
  SendBody(d, body.substr(0, body.size() - 1));
  ExpectNoReply(d, "a truncated KVSET");
}

TEST_F(ChpWire, CS8_RejectedKvSetsAreNotAppliedAndTakeNoSequence) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "r/");
  ASSERT_EQ(Set(d, "r/a", MpInt(1)).seq, 1u);
  ASSERT_EQ(NextKvPub(sub).seq, 1u);
  struct Case {
    std::string what, key;
    uint64_t op;
    std::string value;
    uint64_t ttl, status;
  };
  const std::vector<Case> cases = {
      {"bad key", "r/", kOpSet, MpInt(2), 0, kBadKey},
      {"op 2", "r/a", kOpExpire, "", 0, kMalformed},
      {"value too large", "r/a", kOpSet, ValueOfSize(kMaxValueBytes + 1), 0, kValueTooLarge},
      {"not msgpack", "r/a", kOpSet, "\xc1", 0, kBadValue},
      {"ttl over 30 days", "r/a", kOpSet, MpInt(2), kMaxTtlMs + 1, kBadTtl},
      {"delete with ttl over 30 days", "r/a", kOpDelete, "", kMaxTtlMs + 1, kBadTtl},
      {"not msgpack in a new subtree", "fresh/k", kOpSet, "\xc1", 0, kBadValue},
      {"ttl over 30 days in a new subtree", "fresh/k", kOpSet, MpInt(1), kMaxTtlMs + 1, kBadTtl},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(Write(d, c.key, c.op, c.value, c.ttl).status, c.status);
  }
  // Nothing taken: the next change is seq 2 and is the next KVPUB.
  const KvAckMsg next = Set(d, "r/b", MpInt(3), kMaxTtlMs);  // exactly 30 days is allowed
  EXPECT_EQ(next.status, kOk);
  EXPECT_EQ(next.seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "r/b");
  EXPECT_EQ(pub.seq, 2u);
  const auto snap = Snapshot(d, 1, "r").by_key();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap.at("a").value, MpInt(1)) << "r/a unchanged";
  EXPECT_EQ(snap.at("a").seq, 1u);
  const SyncReply fresh = Snapshot(d, 2, "fresh");
  EXPECT_EQ(fresh.end.epoch, "") << "a rejected set does not create a subtree";
  // (kFull needs max_keys, which the server binary does not expose: not tested here.)
}

TEST_F(ChpWire, CS9_KvAckCarriesThePositionAfterTheChange) {
  StartServer();
  auto d = Dealer();
  const KvAckMsg set = Set(d, "p/a", MpInt(1));
  EXPECT_EQ(set.status, kOk);
  EXPECT_EQ(set.seq, 1u);
  const KvAckMsg set2 = Set(d, "p/b", MpInt(1));
  EXPECT_EQ(set2.epoch, set.epoch);
  EXPECT_EQ(set2.seq, 2u);
  const KvAckMsg del = Del(d, "p/a");
  EXPECT_EQ(del.epoch, set.epoch);
  EXPECT_EQ(del.seq, 3u);
  const KvAckMsg noop = Del(d, "p/a");
  EXPECT_EQ(noop.status, kOk);
  EXPECT_EQ(noop.epoch, set.epoch);
  EXPECT_EQ(noop.seq, 3u) << "current position for a delete of a missing key";
  const KvAckMsg unborn = Del(d, "q/a");
  EXPECT_EQ(unborn.status, kOk);
  EXPECT_EQ(unborn.epoch, "");
  EXPECT_EQ(unborn.seq, 0u);
}

TEST_F(ChpWire, CS10_DuplicateUuidGetsTheRememberedKvAckAndIsAppliedOnce) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "a/");
  const std::string u = NewUuid();
  const std::string first = Call(d, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes();
  ASSERT_EQ(AsKvAck(Body(first)).seq, 1u);
  ASSERT_EQ(Set(d, "a/y", MpInt(2)).seq, 2u);
  // The same KVSET again, and the same UUID with other content: the remembered KVACK (position
  // (E, 1), not the current one) and no change.
  EXPECT_EQ(Call(d, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes(), first);
  EXPECT_EQ(Call(d, KvSet(u, "a/other", kOpSet, MpInt(9))).bytes(), first);
  EXPECT_EQ(Call(d, KvSet(u, "a/x", kOpDelete, "")).bytes(), first);
  // From another connection too.
  auto other = Dealer();
  EXPECT_EQ(Call(other, KvSet(u, "a/x", kOpSet, MpInt(1))).bytes(), first);
  const KvAckMsg next = Set(d, "a/z", MpInt(3));
  EXPECT_EQ(next.seq, 3u) << "the duplicates took no sequence";
  EXPECT_EQ(NextKvPub(sub).seq, 1u);
  EXPECT_EQ(NextKvPub(sub).seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.topic, "a/z") << "the duplicates were not published";
  EXPECT_EQ(pub.seq, 3u);
  const auto snap = Snapshot(d, 1, "a").by_key();
  EXPECT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap.count("other"), 0u);
}

TEST_F(ChpWire, CS10_RejectedKvSetsDoNotPushAcceptedUuidsOutOfTheWindow) {
  // The window holds the most recent 65,536 KVSETs answered with status 0; rejected ones (which
  // the server MAY remember) must not evict them.
  StartServer();
  auto d = Dealer();
  const std::string u = NewUuid();
  const std::string first = Call(d, KvSet(u, "w/x", kOpSet, MpInt(1))).bytes();
  ASSERT_EQ(AsKvAck(Body(first)).status, kOk);
  for (size_t i = 0; i < kUuidWindow; ++i) SendBody(d, KvSet(NewUuid(), "w/", kOpSet, MpInt(1)));
  for (size_t i = 0; i < kUuidWindow; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kBadKey);
  EXPECT_EQ(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1))).bytes(), first)
      << "an accepted UUID was forgotten because of rejected KVSETs";
  EXPECT_EQ(Set(d, "w/y", MpInt(1)).seq, 2u) << "the retry was applied again";
}

TEST_F(ChpWire, CS10_UuidIsTreatedAsNewAfterLeavingTheWindow) {
  // The count bound of the window (the time bound: ChpServerInproc.CS10_*).
  StartServer({"--dedup-window", "65536", "--dedup-window-ms", "3600000"});
  auto d = Dealer();
  const std::string u = NewUuid();
  ASSERT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, 1u);
  // 65,535 newer accepted KVSETs: u is still in the window.
  for (size_t i = 1; i < kUuidWindow; ++i) SendBody(d, KvSet(NewUuid(), "w/y", kOpSet, MpInt(1)));
  for (size_t i = 1; i < kUuidWindow; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  EXPECT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, 1u) << "still remembered";
  // One more pushes it out; then it is a new update.
  ASSERT_EQ(Set(d, "w/y", MpInt(1)).seq, kUuidWindow + 1);
  EXPECT_EQ(AsKvAck(Call(d, KvSet(u, "w/x", kOpSet, MpInt(1)))).seq, kUuidWindow + 2);
}

// =============================================================================================
// §7 Server: publishing

TEST_F(ChpWire, CS11_EachChangeIsPublishedOnceInSequenceOrder) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "");
  // A model of what must be published, per subtree.
  std::map<std::string, std::vector<Rec>> expected;
  std::map<std::string, uint64_t> seqs;
  std::set<std::string> present;
  size_t kvsets = 0;
  auto apply = [&](const std::string& key, uint64_t op, const std::string& value, uint64_t ttl) {
    SendBody(d, KvSet(NewUuid(), key, op, value, ttl));
    ++kvsets;
    if (op == kOpDelete && !present.erase(key)) return;  // no-op delete
    if (op == kOpSet) present.insert(key);
    const std::string st = SubtreeOf(key);
    expected[st].push_back(
        {key.substr(st.size() + 1), op, op == kOpSet ? value : "", ttl, ++seqs[st]});
  };
  const char* subtrees[] = {"a", "b", "c"};
  for (int i = 0; i < 600; ++i) {
    const std::string key = std::string(subtrees[i % 3]) + "/k" + std::to_string(i % 7);
    if (i % 5 == 4) {
      apply(key, kOpDelete, "", 0);
    } else {
      apply(key, kOpSet, MpInt(i), i % 4 == 0 ? 60'000 : 0);
    }
    if (i % 50 == 0) {  // rejected: never published
      SendBody(d, KvSet(NewUuid(), key, kOpSet, "\xc1"));
      ++kvsets;
    }
  }
  for (size_t i = 0; i < kvsets; ++i) RecvReply(d);
  size_t total = 0;
  for (const auto& [st, recs] : expected) total += recs.size();
  std::map<std::string, std::vector<Rec>> got;
  for (size_t i = 0; i < total; ++i) {
    const KvPubMsg pub = NextKvPub(sub);
    got[SubtreeOf(pub.topic)].push_back(RecOf(pub));
  }
  EXPECT_EQ(got, expected);
  // Nothing more: the next KVPUB is a new change.
  ASSERT_EQ(Set(d, "m/end", MpInt(1)).seq, 1u);
  EXPECT_EQ(NextKvPub(sub).topic, "m/end");
}

TEST_F(ChpWire, CS12_PositionNeverRunsAheadOfPublishedChanges) {
  StartServer({"--heartbeat-ms", "10"});
  auto d = Dealer();
  const KvAckMsg first = Set(d, "p/k", MpInt(0));
  auto sub = Sub();
  const PositionMsg welcome = AsPosition(Subscribe(sub, "p/"));
  EXPECT_EQ(welcome.seq, 1u);
  constexpr uint64_t kChanges = 3000;
  for (uint64_t i = 0; i < kChanges; ++i) {
    SendBody(d, KvSet(NewUuid(), "p/k" + std::to_string(i % 10), kOpSet,
                      MpInt(static_cast<int64_t>(i))));
  }
  uint64_t last = 1;
  size_t positions = 0;
  while (last < kChanges + 1) {
    const auto m = TryRecvPub(sub, 10s);
    ASSERT_TRUE(m) << "stalled at seq " << last;
    if (m->code() == kKvPub) {
      const KvPubMsg pub = AsKvPub(*m);
      ASSERT_EQ(pub.seq, last + 1);
      last = pub.seq;
    } else if (m->code() == kPosition) {
      const PositionMsg pos = AsPosition(*m);
      EXPECT_EQ(pos.epoch, first.epoch);
      EXPECT_EQ(pos.seq, last) << "a POSITION that is not the position at publishing time";
      ++positions;
    }
  }
  for (uint64_t i = 0; i < kChanges; ++i) RecvReply(d);
  // After the last change, ticks keep announcing exactly the last position.
  EXPECT_EQ(AsPosition(WaitPub(sub, IsPosition("p"))).seq, kChanges + 1);
  RecordProperty("positions_interleaved", static_cast<int>(positions));
}

}  // namespace
}  // namespace chp_wire_test
