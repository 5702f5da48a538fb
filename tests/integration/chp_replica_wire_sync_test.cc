// Wire-level tests of the CHP replica agent: §3 (connecting) and §8 (syncing), CR-1 .. CR-16.
// Fixture, fake server and coverage notes: chp_replica_wire_support.h.
#include "chp_replica_wire_support.h"

namespace chorus::chp::replica_wire {
namespace {

// ---------------------------------------------------------------------------------------------
// §3 Architecture

TEST_F(ChpReplicaWire, CR1_FirstCommandIsHelloAndSubConnectsOnlyAfterHelloOk) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.connect_timeout = 10s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());  // a pending update must not go before HELLO

  Cmd hello = Take(a, f, 1);
  ASSERT_FALSE(f.codes.empty());
  EXPECT_EQ(f.codes.front(), 1u) << "first command on the connection";
  EXPECT_EQ(hello.size(), 3u);
  EXPECT_EQ(hello.U(1), 1u);
  PumpFor(a, 300ms);
  EXPECT_EQ(f.pub_accepted, 0) << "SUB connected before HELLO_OK";
  EXPECT_TRUE(f.subs.empty());

  f.Send(hello.identity, HelloOkF(hello.U(2), f.id(), f.publisher_endpoint()));
  EXPECT_TRUE(Until(a, [&] { return f.pub_accepted == 1 && f.HasSub("$HUGZ"); }));
  Cmd set = Take(a, f, 7);  // the update follows HELLO_OK
  EXPECT_EQ(set.S(2), "s/k");
  // The first command after a failover is covered by R27_... (HELLO first at the new server).
}

TEST_F(ChpReplicaWire, CR2_ConnectsSubToCommandHostAndPublisherPort) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Cmd hello = Take(a, f, 1);
  // The server claims a host the replica cannot reach (TEST-NET-1); only the port is usable.
  f.Send(hello.identity, HelloOkF(hello.U(2), f.id(), "tcp://192.0.2.1:" + f.publisher_port()));
  EXPECT_TRUE(Until(a, [&] { return f.pub_accepted == 1 && f.HasSub("$HUGZ") && f.HasSub("s/"); }))
      << "the agent did not connect to 127.0.0.1:<publisher port>";
}

TEST_F(ChpReplicaWire, CR2_UsesNonTcpPublisherEndpointAsGiven) {
  FakeServer& f = AddFake({.pub_endpoint = "inproc://fake-pub-"});
  ASSERT_TRUE(f.publisher_endpoint().starts_with("inproc://"));
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "s");
  ServeSnapshot(a, f, req, {"", 0}, {});
  f.Publish("s/k", KvPubF("E", 1, kSet, V("v")));
  EXPECT_TRUE(Until(a, [&] { return Entries(a, "s") == Map{{"k", V("v")}}; }));
}

TEST_F(ChpReplicaWire, CR3_SetsRcvHwmOnSubBeforeConnecting) {
  // The publisher never drops (XPUB_NODROP, SNDHWM 1): a send succeeds only when the message
  // fits in the pipes and kernel buffers towards the replica. With the agent not reading, what
  // the publisher can push is bounded by the SUB's RCVHWM (20 here) plus kernel buffers (about
  // 90 messages of 64 KiB on loopback); without the option libzmq's default (1000) applies.
  // Not testable from the wire: *when* the option is set. libzmq >= 4.3 applies HWM changes to
  // existing pipes too, so setting it after connect cannot be told apart here.
  FakeServer& f = AddFake({.pub_sndhwm = 1, .pub_nodrop = true});
  AgentOptions o = Opts({&f});
  o.rcv_hwm = 20;
  o.silence_timeout = 30s;
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"}, /*heartbeats=*/false);

  const std::string big = KvPubF("E", 1, kSet, std::string(64 * 1024, 'x'));
  int accepted = 0;
  auto last = std::chrono::steady_clock::now();
  while (accepted < 1500 && std::chrono::steady_clock::now() - last < 500ms) {
    if (f.Publish("s/k", big)) {
      ++accepted;
      last = std::chrono::steady_clock::now();
    } else {
      f.WaitCommand(1ms);  // pace the retries on a real socket wait
    }
  }
  RecordProperty("accepted", accepted);
  EXPECT_LT(accepted, 600) << "the SUB's RCVHWM did not bound the pipe";
  // Nothing was dropped: once the agent reads, every accepted update arrives.
  EXPECT_TRUE(Until(
      a, [&] { return a.stats().updates == static_cast<uint64_t>(accepted); }, 20s))
      << a.stats().updates << " of " << accepted;
}

TEST_F(ChpReplicaWire, CR4_BadVersionStopsCommandsToThatServerAndFailsOver) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.connect_timeout = 500ms;
  o.request_timeout = 100ms;  // an unacknowledged KVSET would be retried well before failover
  ReplicaAgent a(ctx_, o);
  auto uuid = a.Set("s/k", V("v"));
  ASSERT_TRUE(uuid.ok());

  Cmd hello = Take(a, fa, 1);
  fa.Send(hello.identity, ErrorF(hello.U(2), 11, "unsupported protocol version"));
  Cmd hello_b = Take(a, fb, 1);
  fb.Send(hello_b.identity, HelloOkF(hello_b.U(2), fb.id(), fb.publisher_endpoint()));
  Cmd set = Take(a, fb, 7);
  EXPECT_EQ(set.S(2), "s/k");
  fb.StartHeartbeats();
  PumpFor(a, 300ms);
  EXPECT_EQ(fa.codes, std::vector<uint64_t>{1}) << "commands sent after ERROR kBadVersion";
  EXPECT_GE(a.stats().errors, 1u) << "the error is reported (counted)";
}

TEST_F(ChpReplicaWire, CR4_BadVersionFromOnlyEndpointStopsCommands) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.connect_timeout = 200ms;
  o.request_timeout = 100ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Set("s/k", V("v")).ok());
  Cmd hello = Take(a, f, 1);
  f.Send(hello.identity, ErrorF(hello.U(2), 11, "unsupported protocol version"));
  PumpFor(a, 1000ms);  // five connect timeouts
  EXPECT_EQ(f.codes, std::vector<uint64_t>{1}) << "the agent came back to a server that refused it";
  EXPECT_FALSE(a.connected());
  EXPECT_GE(a.stats().errors, 1u);
}

TEST_F(ChpReplicaWire, CR5_SubscribesHugzOnEveryPublisherConnection) {
  FakeServer& fa = AddFake();
  FakeServer& fb = AddFake();
  AgentOptions o = Opts({&fa, &fb});
  o.silence_timeout = 400ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, fa, {"$HUGZ", "s/"});
  fa.StopHeartbeats();  // silence: the agent moves to B
  Handshake(a, fb, {"$HUGZ", "s/"});
  EXPECT_TRUE(fb.HasSub("$HUGZ"));

  // Following all: "" covers $HUGZ.
  FakeServer& fc = AddFake();
  ReplicaAgent all(ctx_, Opts({&fc}));
  all.FollowAll();
  Handshake(all, fc, {""});
  EXPECT_TRUE(fc.HasSub("") || fc.HasSub("$HUGZ"));
}

// ---------------------------------------------------------------------------------------------
// §8 Syncing

TEST_F(ChpReplicaWire, CR6_SubscribesBeforeIcanhazAndWaitsForWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 0u) << "ICANHAZ before the subscription was confirmed";
  f.Publish("s/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "s");
  EXPECT_LT(f.EventIndex("sub:s/"), f.EventIndex("cmd:3"));
}

TEST_F(ChpReplicaWire, CR6_SyncsAfterSubscribeTimeoutWithoutWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  const auto t0 = std::chrono::steady_clock::now();
  Cmd req = TakeIcanhaz(a, f, "s");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms) << "did not wait for the welcome";
  EXPECT_LT(f.EventIndex("sub:s/"), f.EventIndex("cmd:3"));
}

TEST_F(ChpReplicaWire, CR6_FollowWhileConnectedWaitsForWelcome) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Follow("t").ok());
  ASSERT_TRUE(Until(a, [&] { return f.HasSub("t/"); }));
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 1u) << "ICANHAZ for t before its subscription was confirmed";
  f.Publish("t/", PositionF("", 0));
  Cmd req = TakeIcanhaz(a, f, "t");
  EXPECT_LT(f.EventIndex("sub:t/"), f.events.size());
}

TEST_F(ChpReplicaWire, CR6_FollowWhileConnectedSyncsAfterSubscribeTimeout) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 1}, {SetR("a", "1", 1)});
  ASSERT_TRUE(a.Follow("t").ok());
  const auto t0 = std::chrono::steady_clock::now();
  // No welcome POSITION for t (e.g. lost): the agent must still sync after the timeout.
  Cmd req = TakeIcanhaz(a, f, "t");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  ServeSnapshot(a, f, req, {"", 0}, {});
}

TEST_F(ChpReplicaWire, CR7_FullSnapshotWhenUnbornRejectedOrNewEpochElseResume) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "") << "empty epoch: full snapshot";
  EXPECT_EQ(r1.U(4), 0u);
  ServeSnapshot(a, f, r1, {"E", 3}, {SetR("a", "1", 3)});

  // A gap: resume from the position.
  f.Publish("s/b", KvPubF("E", 5, kSet, V("5")));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "E");
  EXPECT_EQ(r2.U(4), 3u);
  f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("b", "4", 4), SetR("b", "5", 5)}));
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 5, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live() && Pos(a, "s") == Position{"E", 5}; }));

  // An epoch change: full snapshot.
  f.Publish("s/c", KvPubF("F", 1, kSet, V("x")));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  EXPECT_EQ(r3.U(4), 0u);
  ServeSnapshot(a, f, r3, {"F", 2}, {SetR("c", "y", 2)});

  // A rejected reply: full snapshot, although the position is known.
  f.Publish("s/c", KvPubF("F", 4, kSet, V("z")));
  Cmd r4 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r4.S(3), "F");
  EXPECT_EQ(r4.U(4), 2u);
  f.Send(r4.identity, KthxbaiF(r4.U(1), "s", "F", 4, 2, kResume));  // count 2, none sent
  Cmd r5 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r5.S(3), "");
  EXPECT_EQ(r5.U(4), 0u);
}

TEST_F(ChpReplicaWire, CR8_IgnoresRepliesForOtherRequestIdsAndUnknownUuids) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  ASSERT_TRUE(a.Follow("t").ok());
  const std::string id = Handshake(a, f, {"$HUGZ", "s/", "t/"});
  f.Publish("s/", PositionF("", 0));
  f.Publish("t/", PositionF("", 0));
  Cmd rs = TakeIcanhaz(a, f, "s");
  Cmd rt = TakeIcanhaz(a, f, "t");
  EXPECT_NE(rs.U(1), rt.U(1)) << "request ids of outstanding requests must differ";
  const uint64_t other = std::max(rs.U(1), rt.U(1)) + 100;

  bool acked = false;
  auto uuid = a.Set("s/k", V("v"), 0, [&](const KvAck&) { acked = true; });
  ASSERT_TRUE(uuid.ok());
  Take(a, f, 7);

  f.Send(id, KvSyncF(other, "s", {SetR("x", "bad", 9)}));
  f.Send(id, KthxbaiF(other, "s", "E", 9, 1, kSnap));
  f.Send(id, ErrorF(other, 2, "not yours"));
  f.Send(id, KvAckF(std::string(16, '\x7f'), 0, "E", 9));
  f.Send(id, DoneF(other, 0));
  ReplyBarrier(a, f, id);
  ASSERT_NE(a.Find("s"), nullptr);
  ASSERT_NE(a.Find("t"), nullptr);
  EXPECT_FALSE(a.Find("s")->live());
  EXPECT_TRUE(a.Find("s")->entries().empty());
  EXPECT_FALSE(acked);
  EXPECT_EQ(a.unacked(), 1u);

  // A reply with s's request id that names another subtree is not s's reply either; it must
  // not end (or otherwise disturb) s's request.
  f.Send(id, KvSyncF(rs.U(1), "t", {SetR("x", "bad", 9)}));
  f.Send(id, KthxbaiF(rs.U(1), "t", "E", 9, 1, kSnap));
  ReplyBarrier(a, f, id);
  EXPECT_FALSE(a.Find("t")->live());
  EXPECT_TRUE(a.Find("t")->entries().empty());

  // The replies to the real ids are applied.
  ServeSnapshot(a, f, rs, {"E", 2}, {SetR("a", "1", 2)});
  ServeSnapshot(a, f, rt, {"", 0}, {});
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}}));
}

TEST_F(ChpReplicaWire, CR9_AtMost256IcanhazOutstanding) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 100ms;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  std::vector<std::string> topics{"$HUGZ"};
  for (int i = 0; i < 300; ++i) {
    char name[16];  // room for any int: GCC -O1 with sanitizers cannot bound i here
    std::snprintf(name, sizeof name, "t%03d", i);
    ASSERT_TRUE(a.Follow(name).ok());
    topics.push_back(std::string(name) + "/");
  }
  Handshake(a, f, topics);
  ASSERT_TRUE(Until(a, [&] { return f.Count(3) >= 256; }));
  PumpFor(a, 300ms);
  EXPECT_EQ(f.Count(3), 256u) << "the default bound, more than the 64 of before";

  // Answer one at a time: each answer frees exactly one slot.
  size_t answered = 0;
  std::set<std::string> synced;
  while (answered < 300) {
    Cmd req = Take(a, f, 3);
    if (req.code != 3) break;
    synced.insert(req.S(2));
    f.Send(req.identity, KthxbaiF(req.U(1), req.S(2), "", 0, 0, kSnap));
    ++answered;
    ASSERT_TRUE(Until(a, [&] { return a.Find(req.S(2))->live(); }));
    EXPECT_LE(f.Count(3) - answered, 256u) << "more than 256 outstanding";
  }
  EXPECT_EQ(synced.size(), 300u);
  EXPECT_EQ(f.Count(3), 300u);
  EXPECT_TRUE(a.AllLive());
}

TEST_F(ChpReplicaWire, CR10_RequestTimeoutResendsWithNewIdAndKeepsLocalCopy) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.request_timeout = 300ms;
  ReplicaAgent a(ctx_, o);
  StartLive(a, f, "s", {"E", 3}, {SetR("a", "1", 1), SetR("b", "2", 3)});

  f.Publish("s/c", KvPubF("E", 5, kSet, V("5")));  // gap
  Cmd r1 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r1.S(3), "E");
  const auto t0 = std::chrono::steady_clock::now();
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_NE(r2.U(1), r1.U(1)) << "SHOULD use a new request id";
  EXPECT_EQ(r2.S(3), "E");
  EXPECT_EQ(r2.U(4), 3u) << "the position is kept";
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "local copy discarded";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 3}));

  // A late reply to the abandoned request is ignored.
  f.Send(r1.identity, KthxbaiF(r1.U(1), "s", "E", 3, 0, kResume));
  ReplyBarrier(a, f, r1.identity);
  EXPECT_FALSE(a.Find("s")->live());

  // Progress (a KVSYNC frame) restarts the timer: a reply trickling in over more than one
  // timeout is not abandoned.
  for (int i = 4; i <= 5; ++i) {
    f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("c", std::to_string(i), i)}));
    PumpFor(a, 200ms);
  }
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 5, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(f.Count(3), 3u) << "re-sent although the reply was making progress";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
}

TEST_F(ChpReplicaWire, CR11_QueuesUpdatesWhileSyncingAndResyncsOnOverflow) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.max_queue = 5;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 3));
  Cmd r1 = TakeIcanhaz(a, f, "s");

  // Within the bound: queued and applied after the snapshot.
  for (uint64_t seq = 4; seq <= 6; ++seq) f.Publish("s/q", KvPubF("E", seq, kSet, V("q")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 3; }));
  ServeSnapshot(a, f, r1, {"E", 3}, {SetR("a", "1", 3)});
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 6}));
  EXPECT_EQ(a.Find("s")->stats().overflows, 0u);

  // Over the bound: the queue is discarded, the current sync finishes, then S syncs again.
  f.Publish("s/z", KvPubF("E", 8, kSet, V("8")));  // gap -> resync from 6
  Cmd r2 = TakeIcanhaz(a, f, "s");
  for (uint64_t seq = 9; seq <= 18; ++seq) f.Publish("s/z", KvPubF("E", seq, kSet, V("z")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 14; }));
  f.Send(r2.identity, KvSyncF(r2.U(1), "s", {SetR("z", "7", 7), SetR("z", "8", 8)}));
  f.Send(r2.identity, KthxbaiF(r2.U(1), "s", "E", 8, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->stats().resumes == 1; }));
  EXPECT_EQ(a.Find("s")->stats().overflows, 1u);
  EXPECT_EQ(Entries(a, "s")["z"], V("8")) << "the current sync was applied";
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "E");
  EXPECT_EQ(r3.U(4), 8u);
  std::vector<Rec> rest;
  for (uint64_t seq = 9; seq <= 18; ++seq) rest.push_back(SetR("z", "z", seq));
  f.Send(r3.identity, KvSyncF(r3.U(1), "s", rest));
  f.Send(r3.identity, KthxbaiF(r3.U(1), "s", "E", 18, rest.size(), kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live() && Pos(a, "s").seq == 18; }));
}

TEST_F(ChpReplicaWire, CR12_StagesSyncRecordsUntilKthxbai) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  f.Publish("s/x", KvPubF("F", 1, kSet, V("x")));  // new epoch -> full snapshot
  Cmd req = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(req.U(1), "s", {SetR("c", "3", 7)}));
  f.Send(id, KvSyncF(req.U(1), "s", {SetR("d", "4", 9)}));
  ReplyBarrier(a, f, id);
  EXPECT_EQ(Entries(a, "s"), (Map{{"a", V("1")}, {"b", V("2")}})) << "applied before KTHXBAI";
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  f.Send(id, KthxbaiF(req.U(1), "s", "F", 9, 2, kSnap));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"c", V("3")}, {"d", V("4")}}));
}

TEST_F(ChpReplicaWire, CR13_RejectsSyncWithWrongCount) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  const Map before{{"a", V("1")}, {"b", V("2")}};

  // Resume mode, one record short.
  f.Publish("s/c", KvPubF("E", 4, kSet, V("4")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r1.U(1), "s", {SetR("c", "3", 3)}));
  f.Send(id, KthxbaiF(r1.U(1), "s", "E", 4, 2, kResume));
  Cmd r2 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r2.S(3), "") << "a rejected reply leads to a full snapshot";
  EXPECT_EQ(r2.U(4), 0u);
  EXPECT_EQ(Entries(a, "s"), before);
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  EXPECT_EQ(a.Find("s")->stats().rejected, 1u);

  // Snapshot mode, one record too many.
  f.Send(id, KvSyncF(r2.U(1), "s", {SetR("x", "1", 1), SetR("y", "2", 2), SetR("z", "3", 3)}));
  f.Send(id, KthxbaiF(r2.U(1), "s", "E", 4, 2, kSnap));
  Cmd r3 = TakeIcanhaz(a, f, "s");
  EXPECT_EQ(r3.S(3), "");
  EXPECT_EQ(Entries(a, "s"), before);
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
  EXPECT_EQ(a.Find("s")->stats().rejected, 2u);
  ServeSnapshot(a, f, r3, {"E", 4}, {SetR("x", "1", 1), SetR("c", "4", 4)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"x", V("1")}, {"c", V("4")}}));
}

TEST_F(ChpReplicaWire, CR14_RejectsResumeWithOtherEpochOrNonConsecutiveSeqs) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  const Map before{{"a", V("1")}, {"b", V("2")}};
  struct Case {
    const char* what;
    std::vector<Rec> recs;
    std::string epoch;
    uint64_t seq;
  };
  const std::vector<Case> cases{
      {"out of order", {SetR("c", "4", 4), SetR("c", "3", 3)}, "E", 4},
      {"other epoch", {SetR("c", "3", 3), SetR("c", "4", 4)}, "F", 4},
      {"does not start at seq+1", {SetR("c", "4", 4), SetR("c", "5", 5)}, "E", 5},
      {"does not end at the KTHXBAI seq", {SetR("c", "3", 3), SetR("c", "4", 4)}, "E", 5},
      {"duplicate seq", {SetR("c", "3", 3), SetR("c", "3", 3)}, "E", 3},
  };
  uint64_t rejected = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    // Lose an update so the agent resumes from (E, 2); a rejection makes it ask for a snapshot,
    // which we answer with the old state so every case starts from (E, 2).
    f.Publish("s/c", KvPubF("E", 9, kSet, V("9")));
    Cmd r = TakeIcanhaz(a, f, "s");
    ASSERT_EQ(r.S(3), "E");
    ASSERT_EQ(r.U(4), 2u);
    f.Send(id, KvSyncF(r.U(1), "s", c.recs));
    f.Send(id, KthxbaiF(r.U(1), "s", c.epoch, c.seq, c.recs.size(), kResume));
    Cmd full = TakeIcanhaz(a, f, "s");
    EXPECT_EQ(full.S(3), "") << "rejection leads to a full snapshot";
    EXPECT_EQ(a.Find("s")->stats().rejected, ++rejected);
    EXPECT_EQ(Entries(a, "s"), before);
    EXPECT_EQ(Pos(a, "s"), (Position{"E", 2}));
    ServeSnapshot(a, f, full, {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  }
  // A correct resume is accepted.
  f.Publish("s/c", KvPubF("E", 4, kSet, V("4")));
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r.U(1), "s", {SetR("c", "3", 3), SetR("c", "4", 4)}));
  f.Send(id, KthxbaiF(r.U(1), "s", "E", 4, 2, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 4}));
  EXPECT_EQ(a.Find("s")->stats().resumes, 1u);
}

TEST_F(ChpReplicaWire, CR15_SnapshotReplacesContentAndResumeAppliesChangesInOrder) {
  FakeServer& f = AddFake();
  Recorder rec;
  ReplicaAgent a(ctx_, Opts({&f}), &rec);
  const std::string id = StartLive(a, f, "s", {"E", 2}, {SetR("a", "1", 1), SetR("b", "2", 2)});
  f.Publish("s/x", KvPubF("F", 1, kSet, V("x")));
  Cmd r1 = TakeIcanhaz(a, f, "s");
  ServeSnapshot(a, f, r1, {"F", 7}, {SetR("c", "3", 7), SetR("d", "4", 5)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"c", V("3")}, {"d", V("4")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"F", 7}));
  ASSERT_EQ(rec.resets.size(), 2u);
  EXPECT_EQ(rec.resets.back().second, (Position{"F", 7}));
  EXPECT_EQ(a.Find("s")->entries().at("d").seq, 5u);

  rec.changes.clear();
  f.Publish("s/x", KvPubF("F", 11, kSet, V("x")));  // gap
  Cmd r2 = TakeIcanhaz(a, f, "s");
  f.Send(id, KvSyncF(r2.U(1), "s",
                     {SetR("e", "5", 8), Rec{"c", kDel, "", 0, 9}, SetR("e", "6", 10),
                      Rec{"d", kExp, "", 0, 11}}));
  f.Send(id, KthxbaiF(r2.U(1), "s", "F", 11, 4, kResume));
  ASSERT_TRUE(Until(a, [&] { return a.Find("s")->live(); }));
  EXPECT_EQ(Entries(a, "s"), (Map{{"e", V("6")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"F", 11}));
  std::vector<uint64_t> seqs;
  for (const auto& c : rec.changes) seqs.push_back(c.record.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{8, 9, 10, 11}));
}

TEST_F(ChpReplicaWire, CR16_ReplaysQueuedUpdatesDroppingStaleOnes) {
  FakeServer& f = AddFake();
  ReplicaAgent a(ctx_, Opts({&f}));
  ASSERT_TRUE(a.Follow("s").ok());
  Handshake(a, f, {"$HUGZ", "s/"});
  f.Publish("s/", PositionF("E", 1));
  Cmd r = TakeIcanhaz(a, f, "s");
  f.Publish("s/a", KvPubF("E", 2, kSet, V("old")));
  f.Publish("s/b", KvPubF("E", 3, kSet, V("b")));
  f.Publish("s/a", KvPubF("E", 4, kDel, ""));
  f.Publish("s/c", KvPubF("E", 5, kSet, V("c")));
  ASSERT_TRUE(Until(a, [&] { return a.stats().updates == 4; }));
  EXPECT_FALSE(a.Find("s")->live());
  // The snapshot was taken at seq 3: 2 and 3 are already in it.
  ServeSnapshot(a, f, r, {"E", 3}, {SetR("a", "new", 2), SetR("b", "b", 3), SetR("z", "z", 1)});
  EXPECT_EQ(Entries(a, "s"), (Map{{"b", V("b")}, {"c", V("c")}, {"z", V("z")}}));
  EXPECT_EQ(Pos(a, "s"), (Position{"E", 5}));
  EXPECT_EQ(a.Find("s")->stats().stale, 2u);
  EXPECT_EQ(a.Find("s")->stats().applied, 2u);
  CommandBarrier(a, f);
  EXPECT_EQ(f.Count(3), 1u) << "replay must not cause another sync";
}

}  // namespace
}  // namespace chorus::chp::replica_wire
