// Raw-wire tests of chorus-chp-server: HELLO (CS-1, CS-2), TTLs (CS-23, CS-24) and heartbeats and
// positions (CS-25, CS-26).
// Shared helpers and the ChpWire fixture: chp_wire_support.h (which also explains how waits and
// "no reply" are checked). The chp headers are deliberately not used.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "chp_wire_support.h"

namespace chp_wire_test {
namespace {

// =============================================================================================
// §3 Architecture, HELLO

TEST_F(ChpWire, CS1_XpubIsVerboseSoRepeatedSubscriptionsAreWelcomed) {
  // ZMQ_XPUB_VERBOSE: a subscription to a topic another SUB already holds still reaches the
  // server, which welcomes it. (ZMQ_ROUTER_MANDATORY is covered by S20_*; the XPUB SNDHWM value
  // is not observable on the wire.)
  StartServer({"--heartbeat-ms", "60000"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/x", MpInt(1)).status, kOk);
  auto first = Sub();
  auto second = Sub();
  EXPECT_EQ(AsPosition(Subscribe(first, "a/")).seq, 1u);
  EXPECT_EQ(AsPosition(Subscribe(second, "a/")).seq, 1u);
  EXPECT_EQ(AsHugz(Subscribe(first, "$HUGZ")).id, server_id_);
  EXPECT_EQ(AsHugz(Subscribe(second, "$HUGZ")).id, server_id_);
}

TEST_F(ChpWire, CS2_HelloOkEchoesRequestAndGivesIdAndUsablePublisher) {
  StartServer();
  const std::regex tcp("^tcp://127\\.0\\.0\\.1:([0-9]+)$");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(publisher_, m, tcp)) << publisher_;
  EXPECT_NE(m[1].str(), "0") << "the banner must show the resolved port";

  auto d = Dealer();
  const HelloOkMsg ok = AsHelloOk(Call(d, Hello(1, 42)));
  EXPECT_EQ(ok.rid, 42u);
  EXPECT_EQ(ok.version, 1u);
  EXPECT_EQ(ok.id, server_id_);
  EXPECT_EQ(ok.publisher, publisher_) << "HELLO_OK must carry the publisher endpoint as bound";
  ASSERT_TRUE(std::regex_match(ok.publisher, m, tcp)) << ok.publisher;
  EXPECT_NE(m[1].str(), "0");

  const HelloOkMsg again = AsHelloOk(Call(d, Hello(1, 0xffffffffffffull)));
  EXPECT_EQ(again.rid, 0xffffffffffffull);
  EXPECT_EQ(again.id, ok.id) << "server id is stable for the life of the process";

  // The endpoint from HELLO_OK works: a SUB connected to it hears HUGZ from this server.
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.connect(ok.publisher);
  sub.set(zmq::sockopt::subscribe, "$HUGZ");
  EXPECT_EQ(AsHugz(WaitPub(sub, IsHugz())).id, ok.id);
}

TEST_F(ChpWire, CS2_UnsupportedVersionGetsErrorBadVersion) {
  StartServer();
  auto d = Dealer();
  for (uint64_t version : {uint64_t{0}, uint64_t{2}, uint64_t{0xffffffff}}) {
    SCOPED_TRACE("version " + std::to_string(version));
    const ErrorMsg e = AsError(Call(d, Hello(version, 100 + version)));
    EXPECT_EQ(e.rid, 100 + version);
    EXPECT_EQ(e.code, kBadVersion);
  }
  EXPECT_EQ(AsHelloOk(Call(d, Hello(1, 5))).rid, 5u) << "the connection still works";
}

// =============================================================================================
// §7 Server: TTL

TEST_F(ChpWire, CS23_LaterSetReplacesTheTtlAndDeleteCancelsIt) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "t/");
  Set(d, "t/a", MpInt(1), 200);
  Set(d, "t/a", MpInt(2), 0);  // clears the TTL
  Set(d, "t/b", MpInt(1), 200);
  Del(d, "t/b");  // cancels it
  Set(d, "t/c", MpInt(1), 200);
  Set(d, "t/c", MpInt(2), 900);  // replaces it with a later one
  const KvAckMsg ctl = Set(d, "t/ctl", MpInt(1), 500);
  ASSERT_EQ(ctl.seq, 7u);
  for (uint64_t seq = 1; seq <= 7; ++seq) ASSERT_EQ(NextKvPub(sub).seq, seq);
  // Expiries come in time order: ctl (500 ms), then c (900 ms); a and b never.
  const KvPubMsg first = NextKvPub(sub, 10s);
  EXPECT_EQ(first.topic, "t/ctl");
  EXPECT_EQ(first.op, kOpExpire);
  EXPECT_EQ(first.seq, 8u);
  const KvPubMsg second = NextKvPub(sub, 10s);
  EXPECT_EQ(second.topic, "t/c");
  EXPECT_EQ(second.op, kOpExpire);
  EXPECT_EQ(second.seq, 9u);
  const auto snap = Snapshot(d, 1, "t").by_key();
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap.at("a"), (Rec{"a", kOpSet, MpInt(2), 0, 2}));
  // Nothing else expired since: the next KVPUB is a new change.
  EXPECT_EQ(Set(d, "t/z", MpInt(1)).seq, 10u);
  EXPECT_EQ(NextKvPub(sub).topic, "t/z");
}

TEST_F(ChpWire, CS24_ExpiryIsPublishedAsASequencedDelete) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  auto sub = Sub();
  Subscribe(sub, "e/");
  ASSERT_EQ(Set(d, "e/keep", MpInt(0)).seq, 1u);
  ASSERT_EQ(NextKvPub(sub).seq, 1u);
  const auto sent = Clock::now();
  const KvAckMsg set = Set(d, "e/k", MpStr("v"), 200);
  ASSERT_EQ(set.seq, 2u);
  const KvPubMsg pub = NextKvPub(sub);
  EXPECT_EQ(pub.op, kOpSet);
  EXPECT_EQ(pub.ttl, 200u) << "KVPUB carries ttl_ms as given";
  const KvPubMsg exp = NextKvPub(sub, 5s);
  const auto elapsed = std::chrono::duration_cast<Ms>(Clock::now() - sent);
  EXPECT_EQ(exp.topic, "e/k");
  EXPECT_EQ(exp.op, kOpExpire);
  EXPECT_EQ(exp.value, "");
  EXPECT_EQ(exp.ttl, 0u);
  EXPECT_EQ(exp.epoch, set.epoch);
  EXPECT_EQ(exp.seq, 3u);
  EXPECT_GE(elapsed.count(), 199) << "expired before its ttl_ms";
  EXPECT_LT(elapsed.count(), 2000) << "SHOULD expire within a heartbeat interval";
  // The expiry is a change like any other: gone from snapshots, present in resumes.
  const SyncReply snap = Snapshot(d, 1, "e");
  EXPECT_EQ(snap.end.seq, 3u);
  EXPECT_EQ(snap.by_key().count("k"), 0u);
  const SyncReply resume = Snapshot(d, 2, "e", set.epoch, 2);
  EXPECT_EQ(resume.end.mode, kModeResume);
  ASSERT_EQ(resume.records().size(), 1u);
  EXPECT_EQ(resume.records()[0], (Rec{"k", kOpExpire, "", 0, 3}));
}

// =============================================================================================
// §7 Server: heartbeats and positions

TEST_F(ChpWire, CS25_HugzEveryHeartbeatInterval) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  ASSERT_EQ(Set(d, "a/k", MpInt(1)).status, kOk);
  auto sub = Sub();
  const HugzMsg welcome = AsHugz(Subscribe(sub, "$HUGZ"));
  EXPECT_EQ(welcome.version, 1u);
  std::vector<uint64_t> times;
  for (int i = 0; i < 11; ++i) {
    const HugzMsg h = AsHugz(WaitPub(sub, IsHugz(), 2s));
    EXPECT_EQ(h.version, 1u);
    EXPECT_EQ(h.id, server_id_);
    EXPECT_EQ(h.subtrees, 1u);
    times.push_back(h.time_ms);
  }
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<Ms>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LT(now_ms - times.back(), 60'000u) << "server clock in ms since the Unix epoch";
  // Ticks after the first one (the welcome may fall anywhere between two ticks).
  uint64_t max_gap = 0;
  for (size_t i = 2; i < times.size(); ++i) max_gap = std::max(max_gap, times[i] - times[i - 1]);
  const double mean = static_cast<double>(times.back() - times[1]) / (times.size() - 2);
  EXPECT_GE(mean, 90.0);
  EXPECT_LE(mean, 250.0);
  EXPECT_LE(max_gap, 1000u);
}

TEST_F(ChpWire, CS26_ChangedSubtreeGetsAPositionAtTheNextTick) {
  StartServer({"--heartbeat-ms", "100"});
  auto d = Dealer();
  // More subtrees than one sweep slice (256), so a sweep alone would usually miss x.
  constexpr size_t kSubtrees = 1000;
  for (size_t i = 0; i < kSubtrees; ++i) {
    SendBody(d, KvSet(NewUuid(), "s" + std::to_string(i) + "/k", kOpSet, MpInt(1)));
  }
  for (size_t i = 0; i < kSubtrees; ++i) ASSERT_EQ(AsKvAck(RecvReply(d)).status, kOk);
  ASSERT_EQ(Set(d, "x/k", MpInt(1)).seq, 1u);
  auto sub = Sub();
  Subscribe(sub, "$HUGZ");
  Subscribe(sub, "x/");
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const KvAckMsg ack = Set(d, "x/k", MpInt(round));
    WaitPub(sub, IsKvPub("x/k"));
    // The tick after the change: HUGZ, then POSITION for x before the next HUGZ.
    WaitPub(sub, IsHugz(), 5s);
    std::optional<PositionMsg> pos;
    while (true) {
      const PubMsg m = WaitPub(
          sub, [](const PubMsg&) { return true; }, 5s);
      if (m.code() == kHugz) break;
      if (m.code() == kPosition) {
        pos = AsPosition(m);
        break;
      }
    }
    ASSERT_TRUE(pos) << "no POSITION for the changed subtree in the tick after the change";
    EXPECT_EQ(pos->subtree, "x");
    EXPECT_EQ(pos->epoch, ack.epoch);
    EXPECT_EQ(pos->seq, ack.seq);
  }
}

}  // namespace
}  // namespace chp_wire_test
