// Wire-level tests of the replica's part in a promotion (docs/protocol/chp.md, "Terms and
// promotion"): the UUID window a replica keeps for its copy (CR-35) and what a live replica does
// when a KVPUB or POSITION carries another term (CR-36). Fixture and hand-packed frames:
// chp_replica_wire_support.h.
#include "chp_replica_wire_support.h"

namespace chorus::chp::replica_wire {
namespace {

std::string U(char c) {
  return std::string(16, c);
}
Uuid ToUuid(const std::string& s) {
  Uuid u{};
  std::memcpy(u.data(), s.data(), std::min(s.size(), u.size()));
  return u;
}

// The fixture plus: an agent following "s", live at (E, n) under `term` (a snapshot KTHXBAI
// with terms and `window`). Returns the identity.
class ChpReplicaWireTerms : public ChpReplicaWire {
 protected:
  std::string Live(ReplicaAgent& a, FakeServer& f, uint64_t n, const std::vector<Rec>& recs,
                   uint64_t term, uint64_t term_start, const std::vector<Win>& window = {}) {
    EXPECT_TRUE(a.Follow("s").ok());
    const std::string id = Handshake(a, f, {"$HUGZ", "s/"});
    f.Publish("s/", PositionTermF("E", n, term, term_start));
    Cmd req = TakeIcanhaz(a, f, "s");
    if (!recs.empty()) f.Send(req.identity, KvSyncF(req.U(1), "s", recs));
    f.Send(req.identity,
           KthxbaiTermF(req.U(1), "s", "E", n, recs.size(), kSnap, term, term_start, window));
    EXPECT_TRUE(Until(a, [&] { return a.AllLive(); }));
    return id;
  }
};

// CR-35: the replica keeps the window of the snapshot it accepted (an entry of age a counted as
// answered a ms ago; one older than the window dropped), adds the UUID of every change it
// applies (live KVPUB, resume record; not one without a UUID), hands it over with its copy
// (position, term, entries, window), and takes a new snapshot's window in place of its own.
TEST_F(ChpReplicaWireTerms, CR35_KeepsTheUuidWindowForAPromotedCopy) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  const int64_t t0 = MonotonicMs();
  const std::string id = Live(a, f, 2, {SetR("a", "1", 1), SetR("b", "2", 2)}, 3, 1,
                              {{U('1'), 1, 500}, {U('2'), 2, 20'000}, {U('3'), 2, 40}});
  ASSERT_EQ(a.Find("s")->Window(MonotonicMs()).size(), 2u) << "the entry 20 s old is dropped";
  f.Publish("s/c", KvPubTermF("E", 3, kSet, V("3"), U('4'), 3));
  f.Publish("s/d", KvPubTermF("E", 4, kSet, V("4"), "", 3));  // a local write: no UUID
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 4; }));
  // A gap: the resume's records bring their UUIDs too.
  f.Publish("s/g", KvPubTermF("E", 7, kSet, V("7"), U('7'), 3));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.U(4), 4u);
  f.Send(id,
         KvSyncUuidF(r.U(1), "s", {{SetR("e", "5", 5), U('5')}, {{"a", kDel, "", 0, 6}, U('6')}}));
  f.Send(id, KthxbaiTermF(r.U(1), "s", "E", 6, 2, kResume, 3, 1));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && Pos(a, "s").seq == 6; }));
  f.Publish("s/g", KvPubTermF("E", 7, kSet, V("7"), U('7'), 3));  // the gap's KVPUB again
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 7; }));

  const int64_t now = MonotonicMs();
  const std::vector<WindowEntry> w = a.Find("s")->Window(now);
  ASSERT_EQ(w.size(), 6u);
  const std::vector<std::pair<std::string, uint64_t>> want = {
      {U('1'), 1}, {U('3'), 2}, {U('4'), 3}, {U('5'), 5}, {U('6'), 6}, {U('7'), 7}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(w[i].uuid, ToUuid(want[i].first)) << i;
    EXPECT_EQ(w[i].seq, want[i].second) << i;
  }
  EXPECT_GE(w[0].age_ms, 500u) << "the age it had when received plus the time since";
  EXPECT_LE(w[0].age_ms, 500u + static_cast<uint64_t>(now - t0));
  EXPECT_GE(w[1].age_ms, 40u);
  EXPECT_LE(w[5].age_ms, static_cast<uint64_t>(now - t0));

  const SubtreeCopy c = a.Find("s")->Copy(now);
  EXPECT_EQ(c.position, (Position{"E", 7}));
  EXPECT_EQ(c.term, 3u);
  EXPECT_EQ(c.term_start, 1u);
  EXPECT_EQ(c.entries.size(), 5u) << "b c d e g";
  EXPECT_EQ(c.window, w);

  // An epoch change: the new snapshot's window replaces the old one (here: empty).
  f.Publish("s/", PositionTermF("F", 1, 0, 1));
  Cmd full = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(full.S(3), "") << "a full snapshot";
  f.Send(id, KvSyncF(full.U(1), "s", {SetR("z", "1", 1)}));
  f.Send(id, KthxbaiTermF(full.U(1), "s", "F", 1, 1, kSnap, 0, 1));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && Pos(a, "s").epoch == "F"; }));
  EXPECT_TRUE(a.Find("s")->Window(MonotonicMs()).empty());
}

// CR-35: an entry is kept until its age reaches uuid_window, not longer.
TEST_F(ChpReplicaWireTerms, CR35_ForgetsEntriesOlderThanTheUuidWindow) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.uuid_window = 400ms;
  ReplicaAgent a(ctx_, o);
  Live(a, f, 1, {SetR("a", "1", 1)}, 0, 1, {{U('1'), 1, 100}});
  const int64_t t0 = MonotonicMs();
  f.Publish("s/b", KvPubTermF("E", 2, kSet, V("2"), U('2'), 0));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 2; }));
  const SubtreeReplica& r = *a.Find("s");
  EXPECT_EQ(r.Window(MonotonicMs()).size(), 2u);
  ASSERT_TRUE(Until(a, [&] { return r.Window(MonotonicMs()).size() == 1; }));
  EXPECT_GE(MonotonicMs() - t0, 300 - 1) << "the snapshot's entry (100 ms old) went at 400 ms";
  EXPECT_EQ(r.Window(MonotonicMs())[0].uuid, ToUuid(U('2')));
  ASSERT_TRUE(Until(a, [&] { return r.Window(MonotonicMs()).empty(); }));
  EXPECT_GE(MonotonicMs() - t0, 400 - 1);
  // A later change forgets the expired entries in memory too.
  f.Publish("s/c", KvPubTermF("E", 3, kSet, V("3"), U('3'), 0));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  EXPECT_EQ(r.window_size(), 1u);
}

// CR-36.1: a KVPUB above the position in a newer term is not applied: the replica resumes from
// its position with its own term and queues the KVPUB (one in an older term is dropped). On the
// line (a resume answer), it goes on under the new term with its copy (no reset) and applies the
// queued KVPUB; off the line (a snapshot answer, the replica had applied changes the old primary
// lost) the copy is replaced.
TEST_F(ChpReplicaWireTerms, CR36_1_KvpubOfAnotherTermResumesWithTheReplicasTerm) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  Recorder rec;
  ReplicaAgent a(ctx_, o, &rec);
  const std::string id = Live(a, f, 3, {SetR("a", "1", 1), SetR("b", "2", 3)}, 2, 1);
  ASSERT_EQ(rec.resets.size(), 1u);
  // A promoted backup continues at 4 under term 5.
  f.Publish("s/c", KvPubTermF("E", 4, kSet, V("4"), U('4'), 5));
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "E");
  EXPECT_EQ(r.U(4), 3u);
  EXPECT_EQ(r.U(5), 2u) << "resume with the replica's own term";
  EXPECT_EQ(Pos(a, "s").seq, 3u) << "the KVPUB of the new term is not applied";
  EXPECT_EQ(Entries(a, "s").size(), 2u) << "the copy is kept";
  EXPECT_EQ(a.Find("s")->stats().term_changes, 1u);
  f.Send(id, KthxbaiTermF(r.U(1), "s", "E", 3, 0, kResume, 5, 4));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && Pos(a, "s").seq == 4; }));
  EXPECT_EQ(a.Find("s")->term(), 5u);
  EXPECT_EQ(a.Find("s")->term_start(), 4u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}, {"c", V("4")}}));
  EXPECT_EQ(rec.resets.size(), 1u) << "continued without a snapshot";
  // The same term goes on live; a duplicate of any term is dropped.
  f.Publish("s/d", KvPubTermF("E", 5, kSet, V("5"), "", 5));
  f.Publish("s/a", KvPubTermF("E", 2, kSet, V("x"), "", 9));
  PubBarrier(a, f);
  EXPECT_EQ(Pos(a, "s").seq, 5u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 2u) << "no resync for the same term or a duplicate";

  // An older term's change above the position (the old primary's, late): dropped, no resync.
  f.Publish("s/old", KvPubTermF("E", 6, kSet, V("lost"), "", 2));
  PubBarrier(a, f);
  EXPECT_EQ(Pos(a, "s").seq, 5u);
  EXPECT_EQ(Entries(a, "s").count("old"), 0u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 2u) << "no resync for an older term";

  // Off the line: another promotion (term 8 from 5); the server answers with a snapshot.
  f.Publish("s/e", KvPubTermF("E", 6, kSet, V("6"), "", 8));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.U(4), 5u);
  EXPECT_EQ(r2.U(5), 5u);
  f.Send(id, KvSyncF(r2.U(1), "s", {SetR("a", "1", 1), SetR("y", "9", 5)}));
  f.Send(id, KthxbaiTermF(r2.U(1), "s", "E", 5, 2, kSnap, 8, 5));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && Pos(a, "s").seq == 6; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"y", V("9")}, {"e", V("6")}}));
  EXPECT_EQ(a.Find("s")->term(), 8u);
  EXPECT_EQ(rec.resets.size(), 2u);
}

// CR-36.2: a POSITION with a newer term makes a live replica resume with its own term, whatever
// its seq; one with an older term is old news (CR-19 alone).
TEST_F(ChpReplicaWireTerms, CR36_2_PositionWithANewerTermResumes) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  Recorder rec;
  ReplicaAgent a(ctx_, o, &rec);
  const std::string id = Live(a, f, 3, {SetR("a", "1", 3)}, 2, 1);
  f.Publish("s/", PositionTermF("E", 3, 5, 4));  // same seq, new term
  Cmd r = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r.S(3), "E");
  EXPECT_EQ(r.U(4), 3u);
  EXPECT_EQ(r.U(5), 2u);
  f.Send(id, KthxbaiTermF(r.U(1), "s", "E", 3, 0, kResume, 5, 4));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && a.Find("s")->term() == 5; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
  EXPECT_EQ(rec.resets.size(), 1u);
  // Older or equal terms at the same position: nothing to do.
  f.Publish("s/", PositionTermF("E", 3, 2, 1));
  f.Publish("s/", PositionTermF("E", 3, 5, 4));
  PubBarrier(a, f);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 2u);
  EXPECT_EQ(a.Find("s")->stats().term_changes, 1u);
}

}  // namespace
}  // namespace chorus::chp::replica_wire
