// Raw-wire tests of chorus-chp-server: subscriptions, snapshots, resume, "*", reply order, full
// pipes and peers leaving (CS-13 .. CS-21).
// Shared helpers and the ChpWire fixture: chp_wire_support.h (which also explains how waits and
// "no reply" are checked). The chp headers are deliberately not used.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "chp_wire_support.h"

namespace chp_wire_test {
namespace {

// =============================================================================================
// §7 Server: publishing

TEST_F(ChpWire, CS13_SubscriptionsAreWelcomedAtOnce) {
  // With a 60 s heartbeat any HUGZ or POSITION within the timeout is a welcome.
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/x", MpInt(1)).status, kOk);
  const KvAckMsg a = Set(d, "a/y", MpInt(1));
  auto all = Sub();
  const HugzMsg h1 = AsHugz(Subscribe(all, ""));
  EXPECT_EQ(h1.id, server_id_);
  EXPECT_EQ(h1.subtrees, 1u);
  auto hugz = Sub();
  EXPECT_EQ(AsHugz(Subscribe(hugz, "$HUGZ")).id, server_id_);
  auto s = Sub();
  const PositionMsg held = AsPosition(Subscribe(s, "a/"));
  EXPECT_EQ(held.epoch, a.epoch);
  EXPECT_EQ(held.seq, 2u);
  const PositionMsg unborn = AsPosition(Subscribe(s, "nope/"));
  EXPECT_EQ(unborn.epoch, "");
  EXPECT_EQ(unborn.seq, 0u);
  // A repeat of a topic another SUB holds is welcomed too, and so is a second "$HUGZ".
  auto s2 = Sub();
  EXPECT_EQ(AsPosition(Subscribe(s2, "a/")).seq, 2u);
  auto hugz2 = Sub();
  EXPECT_EQ(AsHugz(Subscribe(hugz2, "$HUGZ")).id, server_id_);
}

// =============================================================================================
// §7 Server: sync replies

TEST_F(ChpWire, CS14_IcanhazWithInvalidSubtreeGetsErrorBadKey) {
  StartServer();
  auto d = Dealer();
  uint64_t rid = 10;
  for (const std::string& subtree :
       {std::string(""), std::string("$HUGZ"), std::string("a/b"), std::string(256, 's'),
        std::string("a\x01"), std::string("\xC0\xAF"), std::string("**")}) {
    SCOPED_TRACE(testing::PrintToString(subtree));
    const Body b = Call(d, Icanhaz(++rid, subtree));
    if (subtree == "**") {  // valid (only "*" is reserved): an unborn snapshot
      EXPECT_EQ(AsKthxbai(b).rid, rid);
      continue;
    }
    const ErrorMsg e = AsError(b);
    EXPECT_EQ(e.rid, rid);
    EXPECT_EQ(e.code, kBadKey);
  }
}

TEST_F(ChpWire, CS15_SnapshotIsOneInstantWithCountAndPosition) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "s/");
  ASSERT_EQ(Set(d, "s/a", MpInt(1)).seq, 1u);
  ASSERT_EQ(Set(d, "s/b", MpStr("two"), 60'000).seq, 2u);
  ASSERT_EQ(Set(d, "s/a", MpInt(3)).seq, 3u);
  ASSERT_EQ(Set(d, "s/c", MpInt(4)).seq, 4u);
  const KvAckMsg del = Del(d, "s/c");
  ASSERT_EQ(del.seq, 5u);
  // A KVSET right behind the ICANHAZ is not in the snapshot.
  SendBody(d, Icanhaz(7, "s"));
  const std::string u = NewUuid();
  SendBody(d, KvSet(u, "s/d", kOpSet, MpInt(5)));
  const SyncReply snap = ReadSync(d, 7, "s");
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  EXPECT_EQ(snap.end.epoch, del.epoch);
  EXPECT_EQ(snap.end.seq, 5u);
  EXPECT_EQ(snap.end.count, snap.records().size());
  const auto recs = snap.by_key();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs.at("a"), (Rec{"a", kOpSet, MpInt(3), 0, 3}));
  const Rec& b = recs.at("b");
  EXPECT_EQ(b.op, kOpSet);
  EXPECT_EQ(b.value, MpStr("two"));
  EXPECT_EQ(b.seq, 2u);
  EXPECT_GE(b.ttl, 1u);
  EXPECT_LE(b.ttl, 60'000u) << "remaining time to live";
  const KvAckMsg ack = AsKvAck(RecvReply(d));
  EXPECT_EQ(ack.uuid, u);
  EXPECT_EQ(ack.seq, 6u);
  const KvPubMsg later = AsKvPub(WaitPub(sub, IsKvPub("s/d")));
  EXPECT_GT(later.seq, snap.end.seq);
}

TEST_F(ChpWire, CS16_SnapshotBatchesHoldAtMost512RecordsAnd256KiB) {
  StartServer();
  auto d = Dealer();
  constexpr size_t kSmall = 1300;
  for (size_t i = 0; i < kSmall; ++i) {
    SendBody(d, KvSet(NewUuid(), "small/k" + std::to_string(i), kOpSet, MpInt(1)));
  }
  constexpr size_t kBig = 10;
  for (size_t i = 0; i < kBig; ++i) {
    SendBody(d, KvSet(NewUuid(), "big/k" + std::to_string(i), kOpSet, ValueOfSize(100'000)));
  }
  for (size_t i = 0; i < kSmall + kBig; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);

  const SyncReply small = Snapshot(d, 1, "small");
  EXPECT_EQ(small.records().size(), kSmall);
  EXPECT_EQ(small.end.count, kSmall);
  EXPECT_GE(small.batches.size(), 3u);
  for (const auto& b : small.batches) EXPECT_LE(b.records.size(), kBatchRecords);

  const SyncReply big = Snapshot(d, 2, "big");
  EXPECT_EQ(big.records().size(), kBig);
  EXPECT_EQ(big.end.count, kBig);
  EXPECT_GT(big.batches.size(), 1u);
  for (const auto& b : big.batches) {
    ASSERT_FALSE(b.records.empty());
    size_t bytes = 0;
    for (size_t i = 0; i + 1 < b.records.size(); ++i) {
      bytes += b.records[i].key.size() + b.records[i].value.size() + 24;
    }
    EXPECT_LT(bytes, kBatchBytes) << "only the last record of a batch may cross 256 KiB";
  }
}

TEST_F(ChpWire, CS17_ResumeSendsExactlyTheMissingChanges) {
  StartServer();
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "r/");
  Set(d, "r/a", MpInt(1));
  Set(d, "r/b", MpInt(2));
  Set(d, "r/a", MpInt(3));
  Set(d, "r/c", MpInt(4), 60'000);
  Del(d, "r/b");
  Del(d, "r/missing");  // no change
  Set(d, "r/d", MpStr("five"));
  const KvAckMsg last = Set(d, "r/e", MpInt(6));
  ASSERT_EQ(last.seq, 7u);
  std::vector<Rec> published;
  for (int i = 0; i < 7; ++i) published.push_back(RecOf(NextKvPub(sub)));

  const SyncReply from3 = Snapshot(d, 1, "r", last.epoch, 3);
  EXPECT_EQ(from3.end.mode, kModeResume);
  EXPECT_EQ(from3.end.epoch, last.epoch);
  EXPECT_EQ(from3.end.seq, 7u);
  EXPECT_EQ(from3.end.count, 4u);
  EXPECT_EQ(from3.records(), std::vector<Rec>(published.begin() + 3, published.end()));

  const SyncReply from0 = Snapshot(d, 2, "r", last.epoch, 0);
  EXPECT_EQ(from0.end.mode, kModeResume);
  EXPECT_EQ(from0.records(), published);

  const SyncReply current = Snapshot(d, 3, "r", last.epoch, 7);
  EXPECT_EQ(current.end.mode, kModeResume);
  EXPECT_EQ(current.end.count, 0u);
  EXPECT_EQ(current.end.seq, 7u);
  EXPECT_TRUE(current.batches.empty());
}

TEST_F(ChpWire, CS17_ResumeFallsBackToSnapshotWhenItCannot) {
  StartServer();
  auto d = Dealer();
  Set(d, "r/a", MpInt(1));
  const KvAckMsg r = Set(d, "r/b", MpInt(2));
  auto expect_snapshot = [&](const SyncReply& s, size_t count, const std::string& epoch,
                             uint64_t seq) {
    EXPECT_EQ(s.end.mode, kModeSnapshot);
    EXPECT_EQ(s.end.count, count);
    EXPECT_EQ(s.records().size(), count);
    EXPECT_EQ(s.end.epoch, epoch);
    EXPECT_EQ(s.end.seq, seq);
  };
  std::string wrong = r.epoch;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  {
    SCOPED_TRACE("wrong epoch");
    expect_snapshot(Snapshot(d, 1, "r", wrong, 1), 2, r.epoch, 2);
  }
  {
    SCOPED_TRACE("seq above the current one");
    expect_snapshot(Snapshot(d, 2, "r", r.epoch, 3), 2, r.epoch, 2);
  }
  {
    SCOPED_TRACE("unborn subtree");
    expect_snapshot(Snapshot(d, 3, "zz", r.epoch, 1), 0, "", 0);
  }
  // Too old: 300 changes; the backlog holds the last 256 (45..300).
  for (int i = 0; i < 300; ++i)
    SendBody(d, KvSet(NewUuid(), "o/k" + std::to_string(i % 20), kOpSet, MpInt(i)));
  std::string o_epoch;
  for (int i = 0; i < 300; ++i) o_epoch = AsKvAck(RecvReply(d)).epoch;
  {
    SCOPED_TRACE("too old");
    expect_snapshot(Snapshot(d, 4, "o", o_epoch, 10), 20, o_epoch, 300);
  }
  {
    SCOPED_TRACE("oldest resumable position with the default backlog of 256");
    const SyncReply s = Snapshot(d, 5, "o", o_epoch, 44);
    EXPECT_EQ(s.end.mode, kModeResume);
    EXPECT_EQ(s.end.count, 256u);
    ASSERT_EQ(s.records().size(), 256u);
    EXPECT_EQ(s.records().front().seq, 45u);
    EXPECT_EQ(s.records().back().seq, 300u);
  }
  {
    SCOPED_TRACE("one change older");
    expect_snapshot(Snapshot(d, 6, "o", o_epoch, 43), 20, o_epoch, 300);
  }
  // A change over the backlog's 256 KiB empties it: resuming across it gives a snapshot.
  Set(d, "g/a", MpInt(1));
  Set(d, "g/big", ValueOfSize(300'000));
  const KvAckMsg g = Set(d, "g/c", MpInt(3));
  {
    SCOPED_TRACE("across a change larger than the backlog");
    expect_snapshot(Snapshot(d, 7, "g", g.epoch, 1), 3, g.epoch, 3);
  }
  const SyncReply after = Snapshot(d, 8, "g", g.epoch, 2);
  EXPECT_EQ(after.end.mode, kModeResume);
  ASSERT_EQ(after.records().size(), 1u);
  EXPECT_EQ(after.records()[0].seq, 3u);
}

TEST_F(ChpWire, CS18_AllSubtreesGivesOneSnapshotEachThenDone) {
  StartServer();
  auto d = Dealer();
  SendBody(d, Icanhaz(1, "*"));
  const DoneMsg none = AsDone(RecvReply(d));
  EXPECT_EQ(none.rid, 1u);
  EXPECT_EQ(none.subtrees, 0u);

  std::map<std::string, std::map<std::string, std::string>> model;
  for (int i = 0; i < 3; ++i) model["a"]["k" + std::to_string(i)] = MpInt(i);
  model["b"]["only"] = MpStr("b");
  for (int i = 0; i < 600; ++i) model["c"]["k" + std::to_string(i)] = MpInt(i);
  size_t n = 0;
  for (const auto& [st, kv] : model) {
    for (const auto& [k, v] : kv) {
      SendBody(d, KvSet(NewUuid(), st + "/" + k, kOpSet, v));
      ++n;
    }
  }
  SendBody(d, KvSet(NewUuid(), "d/gone", kOpSet, MpInt(1)));
  SendBody(d, KvSet(NewUuid(), "d/gone", kOpDelete, ""));
  for (size_t i = 0; i < n + 2; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  model["d"];  // held, empty (CS-4)

  // Epoch and seq of a "*" request are ignored: every reply is a snapshot.
  SendBody(d, Icanhaz(2, "*", "0123456789abcdef", 5));
  std::map<std::string, SyncReply> replies;
  SyncReply current;
  while (true) {
    Body b = RecvReply(d);
    if (b.code() == kDone) {
      const DoneMsg done = AsDone(b);
      EXPECT_EQ(done.rid, 2u);
      EXPECT_EQ(done.subtrees, model.size());
      EXPECT_TRUE(current.batches.empty()) << "KVSYNC without KTHXBAI before DONE";
      break;
    }
    if (b.code() == kKvSync) {
      KvSyncMsg s = AsKvSync(b);
      EXPECT_EQ(s.rid, 2u);
      if (!current.batches.empty()) {
        EXPECT_EQ(s.subtree, current.batches.front().subtree) << "subtree replies interleaved";
      }
      current.batches.push_back(std::move(s));
      continue;
    }
    const KthxbaiMsg k = AsKthxbai(b);
    EXPECT_EQ(k.rid, 2u);
    EXPECT_EQ(k.mode, kModeSnapshot);
    for (const auto& batch : current.batches) EXPECT_EQ(batch.subtree, k.subtree);
    current.end = k;
    EXPECT_EQ(replies.count(k.subtree), 0u) << "two replies for " << k.subtree;
    replies[k.subtree] = std::move(current);
    current = SyncReply{};
  }
  ASSERT_EQ(replies.size(), model.size());
  for (const auto& [st, kv] : model) {
    SCOPED_TRACE(st);
    const SyncReply& r = replies.at(st);
    EXPECT_EQ(r.end.count, kv.size());
    std::map<std::string, std::string> got;
    for (const Rec& rec : r.records()) got[rec.key] = rec.value;
    EXPECT_EQ(got, kv);
    EXPECT_TRUE(IsEpoch(r.end.epoch));
  }
  EXPECT_EQ(replies.at("d").end.seq, 2u);
  EXPECT_EQ(replies.at("c").end.seq, 600u);
}

TEST_F(ChpWire, CS19_RepliesLeaveInRequestOrderWithoutInterleaving) {
  StartServer();
  auto d = Dealer();
  for (int i = 0; i < 1500; ++i) {
    SendBody(d, KvSet(NewUuid(), "big/k" + std::to_string(i), kOpSet, MpInt(i)));
  }
  SendBody(d, KvSet(NewUuid(), "small/k", kOpSet, MpInt(1)));
  for (int i = 0; i < 1501; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  // A second peer asking at the same time must not disturb the first one's order.
  auto other = Dealer();
  for (uint64_t i = 0; i < 5; ++i) SendBody(other, Icanhaz(100 + i, "big"));

  const std::string u = NewUuid();
  SendBody(d, Icanhaz(1, "big"));
  SendBody(d, Icanhaz(2, "small"));
  SendBody(d, Hello(1, 3));
  SendBody(d, KvSet(u, "small/k2", kOpSet, MpInt(2)));
  SendBody(d, Icanhaz(4, "$bad"));
  SendBody(d, Icanhaz(5, "big", "", 0));
  const SyncReply big = ReadSync(d, 1, "big");
  EXPECT_EQ(big.records().size(), 1500u);
  EXPECT_GE(big.batches.size(), 3u);
  EXPECT_EQ(ReadSync(d, 2, "small").end.count, 1u);
  EXPECT_EQ(AsHelloOk(RecvReply(d)).rid, 3u);
  EXPECT_EQ(AsKvAck(RecvReply(d)).uuid, u);
  EXPECT_EQ(AsError(RecvReply(d)).rid, 4u);
  EXPECT_EQ(ReadSync(d, 5, "big").end.count, 1500u);
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ReadSync(other, 100 + i, "big").records().size(), 1500u);
  }
}

// =============================================================================================
// §7 Server: flow control

// kFloodHellos and WriteKeys are in chp_wire_support.h.

TEST_F(ChpWire, CS20_SnapshotBehindAFullPipeArrivesWhole) {
  // The flood of HELLOs that fills the pipe queues more than the default per-peer bound, after
  // which CS-22 drops new replies (ChpServerInproc.CS22_*); this test is about the order of what
  // is queued, so the bound is raised.
  StartServer({"--max-peer-pending-bytes", "1073741824"});
  constexpr size_t kKeys = 200'000;
  auto sub = Sub();
  Subscribe(sub, "marker/");
  {
    auto writer = Dealer();
    WriteKeys(writer, "big", kKeys, [this] { return NewUuid(); });
  }
  // The reader's RCVHWM is small and set before connecting.
  auto reader = Dealer(/*rcvhwm=*/100);
  ASSERT_EQ(AsHelloOk(Call(reader, Hello(1, 1))).rid, 1u);
  for (size_t i = 0; i < kFloodHellos; ++i) SendBody(reader, Hello(1, 1000 + i));
  SendBody(reader, Icanhaz(7, "big"));
  const std::string marker = NewUuid();
  SendBody(reader, KvSet(marker, "marker/m", kOpSet, MpInt(1)));
  // The marker's KVPUB shows that the server has handled the ICANHAZ (one peer's commands are
  // handled in order), while the reader has read nothing.
  WaitPub(sub, IsKvPub("marker/m"), 60s);

  // Everything is handled: what has not been dropped is in the pipe or the server's queue.
  for (size_t i = 0; i < kFloodHellos; ++i) {
    const auto b = TryRecvReply(reader, kReplyTimeout);
    ASSERT_TRUE(b) << "reply " << i << " of the " << kFloodHellos << " HELLO_OKs is missing";
    ASSERT_EQ(b->code(), kHelloOk) << "reply " << i;
    ASSERT_EQ(AsHelloOk(*b).rid, 1000 + i) << "reply " << i;
  }
  const SyncReply snap = ReadSync(reader, 7, "big");
  size_t sum = 0;
  std::set<std::string> keys;
  for (const auto& b : snap.batches) {
    EXPECT_LE(b.records.size(), kBatchRecords);
    sum += b.records.size();
    for (const Rec& r : b.records) keys.insert(r.key);
  }
  EXPECT_EQ(sum, kKeys);
  EXPECT_EQ(snap.end.count, kKeys);
  EXPECT_EQ(keys.size(), kKeys);
  EXPECT_EQ(snap.end.seq, kKeys);
  EXPECT_EQ(snap.end.mode, kModeSnapshot);
  EXPECT_EQ(AsKvAck(RecvReply(reader)).uuid, marker);
}

TEST_F(ChpWire, CS21_PeerLeavingMidReplyDoesNotBreakTheServer) {
  StartServer();
  constexpr size_t kKeys = 20'000;
  auto sub = Sub();
  Subscribe(sub, "marker/");
  auto writer = Dealer();
  WriteKeys(writer, "big", kKeys, [this] { return NewUuid(); });
  {
    // A reader with a full pipe and a queue of replies behind it reads a little and leaves.
    auto reader = Dealer(/*rcvhwm=*/100);
    ASSERT_EQ(AsHelloOk(Call(reader, Hello(1, 1))).rid, 1u);
    for (size_t i = 0; i < kFloodHellos; ++i) SendBody(reader, Hello(1, 1000 + i));
    SendBody(reader, Icanhaz(7, "big"));
    SendBody(reader, KvSet(NewUuid(), "marker/a", kOpSet, MpInt(1)));
    WaitPub(sub, IsKvPub("marker/a"), 60s);
    for (size_t i = 0; i < 10; ++i) ASSERT_EQ(RecvReply(reader).code(), kHelloOk);
  }
  {
    // A peer that asks for snapshots and leaves at once (its commands still get delivered).
    zmq::socket_t quitter(ctx_, zmq::socket_type::dealer);
    quitter.set(zmq::sockopt::linger, 5000);
    quitter.connect(command_);
    for (uint64_t i = 0; i < 20; ++i) SendBody(quitter, Icanhaz(i, "big"));
    SendBody(quitter, KvSet(NewUuid(), "marker/b", kOpSet, MpInt(1)));
  }
  WaitPub(sub, IsKvPub("marker/b"), 30s);
  // Everyone else is still served, in full.
  auto other = Dealer();
  EXPECT_EQ(AsHelloOk(Call(other, Hello(1, 2))).rid, 2u);
  const SyncReply snap = Snapshot(other, 3, "big", "", 0, 20s);
  EXPECT_EQ(snap.records().size(), kKeys);
  EXPECT_EQ(snap.end.count, kKeys);
  EXPECT_EQ(Set(writer, "marker/c", MpInt(1)).status, kOk);
  EXPECT_EQ(NextKvPub(sub).topic, "marker/c");
}

}  // namespace
}  // namespace chp_wire_test
