// Wire-level tests of the CHP replica agent: §8 (live, following all), CR-17 .. CR-22.
// Fixture, fake server and coverage notes: chp_replica_wire_support.h.
#include "chp_replica_wire_support.h"

namespace chorus::chp::replica_wire {
namespace {

// ---------------------------------------------------------------------------------------------
// §8 Live (CR-17 cases 1 to 5, one test each)

TEST_F(ChpReplicaWire, CR17_1_UnbornAppliesSeqOneOfAnyEpoch) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"", 0}, {});
  f.Publish("s/k", KvPubF("N", 1, kSet, V("v")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"N", 1}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"k", V("v")}}));
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, CR17_1_UnbornGapResyncs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"", 0}, {});
  f.Publish("s/k", KvPubF("N", 2, kSet, V("v")));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);
  EXPECT_TRUE(Entries(a, "s").empty());
  EXPECT_EQ(a.Find("s")->stats().gaps, 1u);
}

TEST_F(ChpReplicaWire, CR17_2_EpochChangeResyncsFull) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/k", KvPubF("F", 6, kSet, V("v")));  // seq 6 would fit, but the epoch differs
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(a.Find("s")->stats().epoch_changes, 1u);
}

TEST_F(ChpReplicaWire, CR17_3_DuplicateDropped) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/a", KvPubF("E", 5, kSet, V("dup")));
  f.Publish("s/a", KvPubF("E", 2, kDel, ""));
  PubBarrier(a, f);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
  EXPECT_EQ(a.Find("s")->stats().stale, 2u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, CR17_4_NextSeqApplied) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/b", KvPubF("E", 6, kSet, V("2")));
  f.Publish("s/a", KvPubF("E", 7, kSet, V("3")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"E", 7}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("3")}, {"b", V("2")}}));
  EXPECT_EQ(a.Find("s")->entries().at("a").seq, 7u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, CR17_5_GapResumesFromPosition) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("s/b", KvPubF("E", 7, kSet, V("2")));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "E");
  EXPECT_EQ(r.U(4), 5u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(a.Find("s")->stats().gaps, 1u);
}

TEST_F(ChpReplicaWire, CR18_SetStoresDeleteAndExpireRemove) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  f.Publish("s/b", KvPubF("E", 2, kSet, V("2")));
  f.Publish("s/b/c", KvPubF("E", 3, kSet, V("3")));  // key "b/c" (CK-2)
  f.Publish("s/a", KvPubF("E", 4, kDel, ""));
  f.Publish("s/b", KvPubF("E", 5, kExp, ""));
  f.Publish("s/nope", KvPubF("E", 6, kDel, ""));  // a missing key is not an error
  f.Publish("s/nope", KvPubF("E", 7, kExp, ""));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s") == Position{"E", 7}; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"b/c", V("3")}}));
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
}

TEST_F(ChpReplicaWire, CR19_PositionIgnoredWhileSyncing) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));  // marks the subscription active
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Publish("s/", PositionF("F", 99));
  f.Publish("s/", PositionF("E", 50));
  PubBarrier(a, f);
  ServeSnapshot(a, f, r, {"E", 3}, {SetR("a", "1", 3)});
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u);
  EXPECT_TRUE(a.Find("s")->live());
}

TEST_F(ChpReplicaWire, CR19_LivePositionNotAheadIgnored) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("u").ok());
  StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  f.Publish("u/", PositionF("", 0));
  Cmd ru = TakeIcanhaz(a, f, "u");
  ServeSnapshot(a, f, ru, {"", 0}, {});
  f.Publish("s/", PositionF("E", 5));
  f.Publish("s/", PositionF("E", 4));
  f.Publish("u/", PositionF("", 0));  // both unborn
  PubBarrier(a, f);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 2u);
  EXPECT_TRUE(a.AllLive());
}

TEST_F(ChpReplicaWire, CR19_LivePositionAheadOrOtherEpochResyncs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 5}, {SetR("a", "1", 5)});
  // Same epoch, ahead: resume.
  f.Publish("s/", PositionF("E", 6));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "E");
  EXPECT_EQ(r1.U(4), 5u);
  EXPECT_EQ(a.Find("s")->stats().behind, 1u);
  f.Send(id, KvSyncF(r1.U(1), "s", {SetR("b", "2", 6)}));
  f.Send(id, KthxbaiF(r1.U(1), "s", "E", 6, 1, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  // Other epoch: full.
  f.Publish("s/", PositionF("F", 1));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "");
  ServeSnapshot(a, f, r2, {"F", 1}, {SetR("c", "3", 1)});
  // The server no longer holds S (unborn) while we have an epoch: full.
  f.Publish("s/", PositionF("", 0));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  ServeSnapshot(a, f, r3, {"", 0}, {});
  EXPECT_TRUE(Entries(a, "s").empty());
  EXPECT_EQ(a.Find("s")->stats().epoch_changes, 2u);
}

TEST_F(ChpReplicaWire, CR20_NeverExpiresEntriesItself) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 1}, {SetR("snap", "1", 1, /*ttl=*/50)});
  f.Publish("s/live", KvPubF("E", 2, kSet, V("2"), /*ttl=*/100));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 2; }));
  PumpFor(a, 600ms);  // well past both TTLs
  EXPECT_EQ(Entries(a, "s"), (Map{{"snap", V("1")}, {"live", V("2")}}));
  f.Publish("s/live", KvPubF("E", 3, kExp, ""));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"snap", V("1")}}));
}

// ---------------------------------------------------------------------------------------------
// §8 Following all subtrees

TEST_F(ChpReplicaWire, CR21_FollowAllSubscribesEverythingAndSyncsStar) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  a.FollowAll();
  const std::string id = Handshake(a, f, {""}, /*heartbeats=*/false);
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 0u) << "ICANHAZ * before the HUGZ confirming the subscription";
  f.StartHeartbeats();
  Cmd r = Take(a, f, 3);
  EXPECT_EQ(r.S(2), "*");
  EXPECT_EQ(r.S(3), "");
  EXPECT_EQ(r.U(4), 0u);

  f.Send(id, KvSyncF(r.U(1), "a", {SetR("x", "1", 1), SetR("y", "2", 2)}));
  f.Send(id, KthxbaiF(r.U(1), "a", "EA", 2, 2, kSnap));
  ReplyBarrier(a, f, id);
  ASSERT_NE(a.Find("a"), nullptr);
  EXPECT_TRUE(a.Find("a")->live()) << "each KTHXBAI ends its subtree's sync";
  EXPECT_FALSE(a.AllLive()) << "DONE ends the request";
  // b's part of the reply is short: rejected, then synced on its own after DONE.
  f.Send(id, KvSyncF(r.U(1), "b", {SetR("x", "1", 1)}));
  f.Send(id, KthxbaiF(r.U(1), "b", "EB", 3, 2, kSnap));
  f.Send(id, DoneF(r.U(1), 2));
  Cmd rb = TakeIcanhaz(a, f, "b");
  EXPECT_EQ(rb.S(3), "");
  ServeSnapshot(a, f, rb, {"EB", 3}, {SetR("x", "1", 1), SetR("z", "3", 3)});
  EXPECT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "a"), (Map{{"x", V("1")}, {"y", V("2")}}));
  EXPECT_EQ(Entries(a, "b"), (Map{{"x", V("1")}, {"z", V("3")}}));
  EXPECT_EQ(a.Find("b")->stats().rejected, 1u);
}

TEST_F(ChpReplicaWire, CR22_SubtreesWithoutKthxbaiOrBornLaterStartUnborn) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  a.FollowAll();
  const std::string id = Handshake(a, f, {""});
  Cmd r = Take(a, f, 3);
  ASSERT_EQ(r.S(2), "*");
  // Born during the "*" sync, not in the reply.
  f.Publish("p/k", KvPubF("EP", 1, kSet, V("p1")));
  f.Publish("q/k", KvPubF("EQ", 3, kSet, V("q3")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 2; }));
  f.Send(id, DoneF(r.U(1), 0));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "p") == Position{"EP", 1}; }));
  EXPECT_EQ(Entries(a, "p"), (Map{{"k", V("p1")}}));
  Cmd rq = TakeIcanhaz(a, f, "q");
  EXPECT_EQ(rq.S(3), "");
  ServeSnapshot(a, f, rq, {"EQ", 3}, {SetR("k", "q3", 3)});

  // Born after DONE.
  f.Publish("n/k", KvPubF("EN", 1, kSet, V("n1")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "n") == Position{"EN", 1}; }));
  f.Publish("m/k", KvPubF("EM", 5, kSet, V("m5")));
  Cmd rm = TakeIcanhaz(a, f, "m");
  EXPECT_EQ(rm.S(3), "");
  ServeSnapshot(a, f, rm, {"EM", 5}, {SetR("k", "m5", 5)});
  f.Publish("r/", PositionF("ER", 4));
  Cmd rr = TakeIcanhaz(a, f, "r");
  EXPECT_EQ(rr.S(3), "");
  ServeSnapshot(a, f, rr, {"ER", 4}, {SetR("k", "r4", 4)});
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 4u) << "p and n needed no ICANHAZ of their own";
  EXPECT_TRUE(a.AllLive());
}

// Issue 11, bug 1: after a failover, a POSITION that arrives before the "*" request has gone out
// (the welcome HUGZ lost or late) must not reset a followed subtree to unborn: its content stays
// until the new "*" snapshot replaces it.
TEST_F(ChpReplicaWire, CR21_FollowAllKeepsContentWhenPositionPrecedesStarAfterFailover) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 500ms;
  o.subscribe_timeout = 30s;
  Recorder rec;
  ReplicaAgent a(ctx_, o, &rec);
  a.FollowAll();
  const std::string ida = Handshake(a, fa, {""});
  Cmd r = Take(a, fa, 3);
  fa.Send(ida, KvSyncF(r.U(1), "a", {SetR("x", "1", 1), SetR("y", "2", 2)}));
  fa.Send(ida, KthxbaiF(r.U(1), "a", "EA", 2, 2, kSnap));
  fa.Send(ida, DoneF(r.U(1), 1));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive(); }));
  ASSERT_EQ(rec.resets.size(), 1u);

  fa.StopHeartbeats();
  Cmd hello = Take(a, fb, 1);
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub(""); }));
  // The welcome HUGZ is lost; the POSITION of a arrives first.
  fb.Publish("a/", PositionF("EA", 2));
  PubBarrier(a, fb);
  EXPECT_EQ(rec.resets.size(), 1u) << "a was reset before the \"*\" snapshot";
  EXPECT_EQ(Entries(a, "a"), (Map{{"x", V("1")}, {"y", V("2")}}));
  fb.StartHeartbeats();
  Cmd r2 = Take(a, fb, 3);
  EXPECT_EQ(r2.S(2), "*");
  EXPECT_EQ(Entries(a, "a"), (Map{{"x", V("1")}, {"y", V("2")}})) << "wiped before the reply";
  fb.Send(hello.identity, KvSyncF(r2.U(1), "a", {SetR("x", "1", 1), SetR("y", "3", 3)}));
  fb.Send(hello.identity, KthxbaiF(r2.U(1), "a", "EA", 3, 2, kSnap));
  fb.Send(hello.identity, DoneF(r2.U(1), 1));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "a"), (Map{{"x", V("1")}, {"y", V("3")}}));
  for (const auto& [subtree, pos] : rec.resets) {
    EXPECT_FALSE(pos.epoch.empty()) << subtree << " was reset to unborn";
  }
}

// CR-31: the replica keeps each entry's expiry (its clock at apply + ttl_ms) from snapshots,
// resumes and KVPUBs, without acting on it (CR-20); its copy carries the remaining TTLs.
TEST_F(ChpReplicaWire, CR31_KeepsExpiriesForAPromotedCopy) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1, /*ttl=*/5'000), SetR("b", "2", 2)});
  f.Publish("s/c", KvPubF("E", 3, kSet, V("3"), 60'000));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  std::map<std::string, uint64_t> ttl;
  for (const Record& r : a.Find("s")->SnapshotRecords(MonotonicMs())) ttl[r.key] = r.ttl_ms;
  EXPECT_GT(ttl.at("a"), 3'000u);
  EXPECT_LE(ttl.at("a"), 5'000u);
  EXPECT_EQ(ttl.at("b"), 0u) << "no TTL";
  EXPECT_GT(ttl.at("c"), 58'000u);
  EXPECT_LE(ttl.at("c"), 60'000u);
  // Past the expiry the copy says 1 ms (the server decides), and the entry stays (CR-20).
  for (const Record& r : a.Find("s")->SnapshotRecords(MonotonicMs() + 10'000))
    ttl[r.key] = r.ttl_ms;
  EXPECT_EQ(ttl.at("a"), 1u);
  EXPECT_EQ(Entries(a, "s").size(), 3u);
}

}  // namespace
}  // namespace chorus::chp::replica_wire
