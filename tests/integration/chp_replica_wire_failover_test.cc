// Wire-level tests of the CHP replica agent: §8 (updates) and §11 (failover), CR-23 .. CR-28.
// Fixture, fake server and coverage notes: chp_replica_wire_support.h.
#include "chp_replica_wire_support.h"

namespace chorus::chp::replica_wire {
namespace {

// ---------------------------------------------------------------------------------------------
// §8 Updates

TEST_F(ChpReplicaWire, CR23_EachKvsetHasFreshUuidReusedOnRetry) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 200ms;
  ReplicaAgent a(ctx_, o);
  const std::string id = StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Set("s/x", V("1")).ok());
  ASSERT_TRUE(a.Set("s/x", V("1")).ok());  // the same update twice is two updates
  ASSERT_TRUE(a.Erase("s/y").ok());
  Cmd c1 = Take(a, f, 7);
  Cmd c2 = Take(a, f, 7);
  Cmd c3 = Take(a, f, 7);
  std::set<std::string> uuids{c1.B(1), c2.B(1), c3.B(1)};
  EXPECT_EQ(uuids.size(), 3u);
  for (const Cmd* c : {&c1, &c2, &c3}) {
    EXPECT_EQ(c->B(1).size(), 16u) << "CW-7";
    EXPECT_EQ(c->size(), 6u);
  }
  EXPECT_EQ(c1.S(2), "s/x");
  EXPECT_EQ(c1.U(3), 0u);
  EXPECT_EQ(c1.B(4), V("1"));
  EXPECT_EQ(c3.U(3), 1u) << "delete";
  // CV-4: a replica sends a delete with an empty value and ttl_ms 0.
  EXPECT_EQ(c3.B(4), "") << "CV-4: empty value with a delete";
  EXPECT_EQ(c3.U(5), 0u) << "CV-4: ttl 0 with a delete";

  // Acknowledge c1 and c3; c2 is retried with the same UUID and body until acknowledged.
  f.Send(id, KvAckF(c1.B(1), 0, "E", 2));
  f.Send(id, KvAckF(c3.B(1), 0, "E", 3));
  for (int i = 0; i < 2; ++i) {
    Cmd again = Take(a, f, 7);
    EXPECT_EQ(again.B(1), c2.B(1));
    EXPECT_EQ(again.body, c2.body);
  }
  EXPECT_GE(a.stats().kvset_retries, 2u);
  f.Send(id, KvAckF(c2.B(1), 0, "E", 3));
  ASSERT_TRUE(Until(a, [&] { return a.unacked() == 0; }));
  CommandBarrier(a, f);  // any retry sent before the KVACK was handled has arrived
  const size_t sent = f.Count(7);
  PumpFor(a, 500ms);
  EXPECT_EQ(f.Count(7), sent) << "retried after KVACK";
  // Not checked: RFC 4122 version bits (RECOMMENDED only).
}

TEST_F(ChpReplicaWire, CR24_OwnUpdateNotAppliedFromKvack) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 2)});
  std::optional<KvAck> ack;
  ASSERT_TRUE(a.Set("s/new", V("n"), 0, [&](const KvAck& k) { ack = k; }).ok());
  Cmd c = Take(a, f, 7);
  f.Send(id, KvAckF(c.B(1), 0, "E", 3));
  ASSERT_TRUE(Until(a, [&] { return ack.has_value(); }));
  EXPECT_EQ(ack->status, 0u);
  EXPECT_EQ(ack->position, (Position{"E", 3}));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}})) << "applied from the KVACK";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  f.Publish("s/new", KvPubF("E", 3, kSet, V("n")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 3; }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"new", V("n")}}));
}

TEST_F(ChpReplicaWire, CR25_FailedKvackAndBadKeyErrorNotRepeated) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  const std::string id = StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  std::optional<KvAck> ack;
  ASSERT_TRUE(a.Set("s/k", V("v"), 0, [&](const KvAck& k) { ack = k; }).ok());
  Cmd c = Take(a, f, 7);
  f.Send(id, KvAckF(c.B(1), 4, "", 0));  // kBadValue
  ASSERT_TRUE(Until(a, [&] { return ack.has_value(); }));
  EXPECT_EQ(ack->status, 4u) << "reported to the application";

  ASSERT_TRUE(a.Follow("t").ok());
  ASSERT_TRUE(Until(a, [&] { return f.HasSub("t/"); }));
  f.Publish("t/", PositionF("", 0));
  Cmd r = TakeIcanhaz(a, f, "t");
  f.Send(id, ErrorF(r.U(1), 2, "invalid subtree"));
  ASSERT_TRUE(Until(a, [&] { return a.stats().errors == 1; }));
  PumpFor(a, 1200ms);  // four request timeouts
  EXPECT_EQ(f.Count(7), 1u) << "a rejected KVSET was re-sent";
  EXPECT_EQ(f.Count(3), 2u) << "an ICANHAZ answered with kBadKey was repeated";
}

// ---------------------------------------------------------------------------------------------
// §11 Failover

TEST_F(ChpReplicaWire, CR26_SilenceFailsOverAndResumesEverySubtree) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 600ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("t").ok());
  StartLive(a, fa, "s", {"E", 3}, {SetR("a", "1", 1), SetR("b", "2", 3)});
  fa.Publish("t/", PositionF("G", 2));
  Cmd rt = TakeIcanhaz(a, fa, "t");
  ServeSnapshot(a, fa, rt, {"G", 2}, {SetR("x", "1", 2)});

  fa.StopHeartbeats();
  const auto t0 = std::chrono::steady_clock::now();
  Cmd hello = Take(a, fb, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 450ms) << "failed over before the timeout";
  EXPECT_EQ(a.stats().failovers, 1u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "local copy kept";
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub("$HUGZ") && fb.HasSub("s/") && fb.HasSub("t/"); }));
  fb.StartHeartbeats();
  fb.Publish("s/", PositionF("E", 3));
  fb.Publish("t/", PositionF("G", 2));
  Cmd rs2 = TakeIcanhaz(a, fb, "s");
  Cmd rt2 = TakeIcanhaz(a, fb, "t");
  EXPECT_EQ(rs2.S(3), "E");
  EXPECT_EQ(rs2.U(4), 3u);
  EXPECT_EQ(rt2.S(3), "G");
  EXPECT_EQ(rt2.U(4), 2u);
  fb.Send(hello.identity, KthxbaiF(rs2.U(1), "s", "E", 3, 0, kResume));
  fb.Send(hello.identity, KthxbaiF(rt2.U(1), "t", "G", 2, 0, kResume));
  EXPECT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}}));
}

TEST_F(ChpReplicaWire, CR26_UnansweredHelloFailsOverCyclically) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.connect_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Take(a, fa, 1);
  Take(a, fb, 1);
  Cmd again = Take(a, fa, 1);  // back to the first
  EXPECT_GE(a.stats().failovers, 2u);
  fa.Send(again.identity, HelloOkF(again.U(2), fa.id(), fa.publisher_endpoint()));
  EXPECT_TRUE(Until(a, [&] { return fa.HasSub("s/"); }));

  // One endpoint: the agent reconnects to the same one.
  FakeServer& fc = AddFake();
  AgentOptions oc = Opts({&fc});
  oc.silence_timeout = 300ms;
  ReplicaAgent c(ctx_, oc);
  Handshake(c, fc, {"$HUGZ"});
  fc.StopHeartbeats();
  Take(c, fc, 1);
  EXPECT_EQ(c.stats().failovers, 1u);
}

TEST_F(ChpReplicaWire, CR27_FailoverAbandonsRequestsAndResendsKvsetsWithSameUuid) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 500ms;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, fa, "s", {"E", 3}, {SetR("a", "1", 3)});
  fa.Publish("s/b", KvPubF("E", 5, kSet, V("5")));  // gap -> outstanding resume request
  Cmd old_req = TakeIcanhaz(a, fa, "s");
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd old_set = Take(a, fa, 7);

  fa.StopHeartbeats();
  Cmd hello = Take(a, fb, 1);
  ASSERT_FALSE(fb.codes.empty());
  EXPECT_EQ(fb.codes.front(), 1u) << "CR-1: HELLO first on the new connection";
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  Cmd set = Take(a, fb, 7);
  EXPECT_EQ(set.B(1), old_set.B(1)) << "same UUID";
  EXPECT_EQ(set.body, old_set.body);
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub("s/"); }));
  fb.StartHeartbeats();
  fb.Publish("s/", PositionF("E", 5));
  Cmd req = TakeIcanhaz(a, fb, "s");
  EXPECT_EQ(req.S(3), "E");
  EXPECT_EQ(req.U(4), 3u);
  EXPECT_GE(a.Find("s")->stats().failed_requests, 1u) << "the old request was abandoned";
  EXPECT_EQ(fa.Count(3), 2u);
  EXPECT_EQ(old_req.S(3), "E");
}

// CR-28 is a SHOULD; tested because the agent implements it.
TEST_F(ChpReplicaWire, CR28_NewServerIdResendsRequestsAndKvsets) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 3}, {SetR("a", "1", 3)});
  f.Publish("s/b", KvPubF("E", 5, kSet, V("5")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd s1 = Take(a, f, 7);
  f.set_id("fake-restarted");
  f.Publish("$HUGZ", HugzF(f.id(), 0));
  Cmd r2 = TakeIcanhaz(a, f, "s", 2s);
  Cmd s2 = Take(a, f, 7, nullptr, 2s);
  EXPECT_NE(r2.U(1), r1.U(1));
  EXPECT_EQ(s2.B(1), s1.B(1));
  EXPECT_EQ(a.server_id(), "fake-restarted");
}

// Issue 11, bug 2: a new server id must resync every followed subtree, also the live ones: a
// subtree the new server does not hold has no other signal than one POSITION, which can be lost.
TEST_F(ChpReplicaWire, CR28_NewServerIdResyncsEveryLiveSubtree) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 20}, {SetR("a", "1", 20)});
  ASSERT_TRUE(a.Follow("t").ok());
  ASSERT_TRUE(Until(a, [&] { return f.HasSub("t/"); }));
  f.Publish("t/", PositionF("G", 2));
  Cmd rt = TakeIcanhaz(a, f, "t");
  ServeSnapshot(a, f, rt, {"G", 2}, {SetR("x", "1", 2)});
  ASSERT_TRUE(a.AllLive());
  f.set_id("fake-restarted");
  f.Publish("$HUGZ", HugzF(f.id(), 0));  // and no POSITION for s or t
  Cmd rs2 = TakeIcanhaz(a, f, "s", 2s);
  Cmd rt2 = TakeIcanhaz(a, f, "t", 2s);
  EXPECT_EQ(rs2.S(3), "E") << "CR-7: resume from the position, the server decides";
  EXPECT_EQ(rs2.U(4), 20u);
  EXPECT_EQ(rt2.S(3), "G");
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}})) << "the local copy is kept until the reply";
  // The new server does not hold s: a snapshot of an unborn subtree empties it.
  f.Send(rs2.identity, KthxbaiF(rs2.U(1), "s", "", 0, 0, kSnap));
  f.Send(rt2.identity, KthxbaiF(rt2.U(1), "t", "G", 2, 0, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.AllLive(); }));
  EXPECT_EQ(Entries(a, "s"), Map{});
  EXPECT_EQ(Entries(a, "t"), (Map{{"x", V("1")}}));
}

// Issue 11, bug 3: unacknowledged KVSETs are re-sent in the order they were first sent, after a
// request timeout and after a failover, so a retried set and delete of one key cannot swap.
TEST_F(ChpReplicaWire, CR27_UnackedKvsetsResentInFirstSentOrder) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 500ms;
  o.request_timeout = 400ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, fa, "s", {"E", 1}, {SetR("a", "1", 1)});
  constexpr int kN = 40;
  std::vector<std::string> sent;
  for (int i = 0; i < kN; ++i) {
    auto u = i % 2 == 0 ? a.Set("s/k" + std::to_string(i / 2), V(std::to_string(i)))
                        : a.Erase("s/k" + std::to_string(i / 2));
    ASSERT_TRUE(u.ok());
    sent.emplace_back(reinterpret_cast<const char*>(u->data()), u->size());
  }
  auto take_round = [&](FakeServer& f) {
    std::vector<std::string> got;
    for (int i = 0; i < kN; ++i) got.push_back(Take(a, f, 7).B(1));
    return got;
  };
  EXPECT_EQ(take_round(fa), sent) << "first sending";
  EXPECT_EQ(take_round(fa), sent) << "re-sent after the request timeout";
  fa.StopHeartbeats();
  Cmd hello = Take(a, fb, 1);
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  EXPECT_EQ(take_round(fb), sent) << "re-sent after the failover";
}

// Issue 11: Unfollow frees the request slot of the subtree's outstanding sync (CR-9), instead of
// holding it until the request timeout.
TEST_F(ChpReplicaWire, CR9_UnfollowFreesTheRequestSlot) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.max_outstanding = 1;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Follow("t").ok());
  const std::string id = Handshake(a, f, {"$HUGZ", "s/", "t/"});
  f.Publish("s/", PositionF("E", 1));
  f.Publish("t/", PositionF("G", 1));
  Cmd rs = TakeIcanhaz(a, f, "s");
  a.Unfollow("s");
  f.Send(id, KthxbaiF(rs.U(1), "s", "E", 1, 0, kSnap));  // arrives for an unfollowed subtree
  Cmd rt = TakeIcanhaz(a, f, "t", 2s);
  EXPECT_EQ(rt.S(2), "t");
}

// Issue 11: a stall of the agent's thread longer than the silence timeout is not silence of the
// server (CR-26): input that arrived meanwhile is read before the link is declared dead.
TEST_F(ChpReplicaWire, CR26_StallLongerThanSilenceTimeoutDoesNotFailOver) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 400ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, fa, "s", {"E", 1}, {SetR("a", "1", 1)});
  // Neither the agent nor the fake runs for three silence timeouts (a stopped process).
  // The sleep is the stall under test, not a synchronisation.
  std::this_thread::sleep_for(1200ms);
  fa.StartHeartbeats(50ms);
  PumpFor(a, 600ms);
  EXPECT_EQ(a.stats().failovers, 0u);
  EXPECT_EQ(fb.Count(1), 0u) << "HELLO sent to the next endpoint";
  EXPECT_TRUE(a.AllLive());
}

// CR-29: a replica with a name reports what it applied: after a reply or a change moved a
// subtree, after HELLO_OK, and after a new server id; never an unborn subtree. Without a name it
// sends no APPLIED.
TEST_F(ChpReplicaWire, CR29_NamedReplicaReportsAppliedPositions) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.name = "backup-1";
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("u").ok());  // stays unborn: never reported
  const std::string id = StartLive(a, f, "s", {"E", 3}, {SetR("a", "1", 3)});
  auto positions = [](const Cmd& c) {
    std::map<std::string, Position> out;
    const msgpack::object* arr = c.El(2);
    if (arr == nullptr || arr->type != msgpack::type::ARRAY) {
      ADD_FAILURE() << "APPLIED without a positions array";
      return out;
    }
    for (uint32_t i = 0; i < arr->via.array.size; ++i) {
      const msgpack::object& e = arr->via.array.ptr[i];
      EXPECT_EQ(e.type, msgpack::type::ARRAY);
      EXPECT_EQ(e.via.array.size, 3u);
      const auto& el = e.via.array.ptr;
      out[el[0].as<std::string>()] = Position{el[1].as<std::string>(), el[2].as<uint64_t>()};
    }
    return out;
  };
  Cmd first = Take(a, f, 13);
  EXPECT_EQ(first.S(1), "backup-1");
  EXPECT_EQ(positions(first), (std::map<std::string, Position>{{"s", {"E", 3}}}));
  f.Publish("s/b", KvPubF("E", 4, kSet, V("4")));
  f.Publish("s/c", KvPubF("E", 5, kSet, V("5")));
  ASSERT_TRUE(Until(a, [&] { return Pos(a, "s").seq == 5; }));
  // One or two frames (the two KVPUBs may be read in one poll); the last says 5.
  Cmd last = Take(a, f, 13);
  while (positions(last).at("s").seq < 5) last = Take(a, f, 13);
  EXPECT_EQ(positions(last), (std::map<std::string, Position>{{"s", {"E", 5}}}));
  // A new server learns where the replica is at once.
  f.set_id("fake-restarted");
  f.Publish("$HUGZ", HugzF(f.id(), 0));
  Cmd after = Take(a, f, 13);
  EXPECT_EQ(positions(after), (std::map<std::string, Position>{{"s", {"E", 5}}}));

  // Without a name: no APPLIED at all.
  FakeServer& g = AddFake();
  ReplicaAgent b(ctx_, Opts({&g}));
  StartLive(b, g, "s", {"E", 3}, {SetR("a", "1", 3)});
  g.Publish("s/b", KvPubF("E", 4, kSet, V("4")));
  ASSERT_TRUE(Until(b, [&] { return Pos(b, "s").seq == 4; }));
  CommandBarrier(b, g);
  EXPECT_EQ(g.Count(13), 0u);
  (void)id;
}

// CR-30: the replica takes the term of each accepted KTHXBAI (a promoted backup's resume with a
// new term is accepted: same epoch, consecutive seqs) and sends it with its next resume request.
TEST_F(ChpReplicaWire, CR30_TakesTheTermOfKthxbaiAndSendsItWithResume) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 500ms;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, fa, "s", {"E", 3}, {SetR("a", "1", 3)});  // a KTHXBAI without term: term 0
  EXPECT_EQ(a.Find("s")->term(), 0u);
  fa.StopHeartbeats();
  Cmd hello = Take(a, fb, 1);
  fb.Send(hello.identity, HelloOkF(hello.U(2), fb.id(), fb.publisher_endpoint()));
  ASSERT_TRUE(Until(a, [&] { return fb.HasSub("s/"); }));
  fb.StartHeartbeats();
  fb.Publish("s/", PositionF("E", 5));
  Cmd r = TakeIcanhaz(a, fb, "s");
  EXPECT_EQ(r.S(3), "E");
  EXPECT_EQ(r.U(4), 3u);
  EXPECT_EQ(r.U(5), 0u) << "the term of the position";
  fb.Send(hello.identity, KvSyncF(r.U(1), "s", {SetR("b", "4", 4), SetR("c", "5", 5)}));
  fb.Send(hello.identity, Frame(9, 5).U(r.U(1)).S("s").S("E").U(5).U(2).U(kResume).U(7).U(4).str());
  ASSERT_TRUE(Until(a, [&] { return a.AllLive() && Pos(a, "s").seq == 5; }));
  EXPECT_EQ(a.Find("s")->term(), 7u);
  EXPECT_EQ(a.Find("s")->term_start(), 4u);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("4")}, {"c", V("5")}}));
  // A gap in the same term (CS-33: the KVPUB carries it): resume again.
  fb.Publish("s/z", KvPubTermF("E", 7, kSet, V("7"), "", 7));
  Cmd r2 = TakeIcanhaz(a, fb, "s");
  EXPECT_EQ(r2.U(4), 5u);
  EXPECT_EQ(r2.U(5), 7u);
}

// CR-32: a KVSET not acknowledged kvset_give_up after it was first sent is given up (no more
// retries) and reported as kTimeout, oldest first.
TEST_F(ChpReplicaWire, CR32_UnackedKvsetIsGivenUpAndReportedAsTimeout) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 100ms;
  o.kvset_give_up = 600ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  std::vector<uint32_t> statuses;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a.Set("s/k", V("v"), 0, [&](const KvAck& k) { statuses.push_back(k.status); }).ok());
  const std::string u = Take(a, f, 7).B(1);
  ASSERT_TRUE(Until(a, [&] { return !statuses.empty(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 550ms) << "given up early";
  EXPECT_EQ(statuses, std::vector<uint32_t>{8}) << "kTimeout";
  EXPECT_EQ(a.unacked(), 0u);
  EXPECT_EQ(a.stats().kvset_given_up, 1u);
  EXPECT_GE(f.Count(7), 3u) << "retried until then";
  CommandBarrier(a, f);
  const size_t sent = f.Count(7);
  PumpFor(a, 400ms);
  EXPECT_EQ(f.Count(7), sent) << "retried after giving up";
  (void)u;
}

}  // namespace
}  // namespace chorus::chp::replica_wire
