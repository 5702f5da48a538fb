// Raw-wire tests of recovery (docs/protocol/native.md N-13..N-15, docs/broker-core.md
// "Recovery"): a session resubscribing with recover: true gets exactly what it missed, or
// recovered: false and nothing; history caps, TTL, history_remove and restarts, against a
// real chorusd.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "node_native_support.h"
#include "node_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using Offsets = std::vector<uint64_t>;

std::string Recover(const std::string& channel, const std::string& epoch, uint64_t offset) {
  return P({{"channel", channel}, {"recover", true}, {"epoch", epoch}, {"offset", offset}});
}

class NodeNativeRecovery : public NodeFixture {
 protected:
  // Publishes n publications; returns the epoch of the last.
  std::string PublishN(RawSession& s, const std::string& channel, int n) {
    std::string epoch;
    for (int i = 0; i < n; ++i) {
      auto r = s.Call("publish", P({{"channel", channel}, {"data", "{}"}}));
      EXPECT_TRUE(r && r->Has("result")) << ErrorCode(r);
      if (r) epoch = r->Str("result.epoch");
    }
    return epoch;
  }
  // The offsets history returns (all retained), after a successful reply.
  Offsets History(RawSession& s, const std::string& channel) {
    auto r = s.Call("history", P({{"channel", channel}, {"limit", -1}}));
    EXPECT_TRUE(r && r->Has("result")) << ErrorCode(r);
    return r ? OffsetsOf(*r, "result.publications") : Offsets{};
  }
};

TEST_F(NodeNativeRecovery, ReconnectRecoversExactlyTheMissedThenLive) {
  StartNode();
  RawSession pub = Session(), sub = Session();
  ASSERT_FALSE(ConnectAs(pub, "p").empty());
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  ASSERT_TRUE(sub.Call("subscribe", P({{"channel", "chat:x"}}))->Has("result"));
  PublishN(pub, "chat:x", 3);
  std::string epoch;
  uint64_t last = 0;
  for (uint64_t i = 1; i <= 3; ++i) {
    auto f = sub.Push("pub", "chat:x");
    ASSERT_TRUE(f);
    ASSERT_EQ(f->Uint("data.offset"), i);
    last = i;
  }
  epoch = pub.Call("history", P({{"channel", "chat:x"}}))->Str("result.epoch");
  sub.Send("disconnect");
  ASSERT_TRUE(EventuallyTrue([&] {  // the node has closed the session
    auto st = pub.Call("presence_stats", P({{"channel", "chat:x"}}));
    return st && st->Has("result") && st->Uint("result.num_clients") == 0;
  }));
  PublishN(pub, "chat:x", 5);  // 4..8, missed
  RawSession again = Session();
  ASSERT_FALSE(ConnectAs(again, "s").empty());
  auto r = again.Call("subscribe", Recover("chat:x", epoch, last));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_TRUE(r->Bool("result.recovered"));
  EXPECT_TRUE(r->Bool("result.was_recovering"));
  EXPECT_TRUE(r->Bool("result.recoverable"));
  EXPECT_EQ(r->Str("result.epoch"), epoch);
  EXPECT_EQ(r->Uint("result.offset"), 8u);
  EXPECT_EQ(OffsetsOf(*r, "result.publications"), (Offsets{4, 5, 6, 7, 8}));
  PublishN(pub, "chat:x", 1);
  auto live = again.Push("pub", "chat:x");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->Uint("data.offset"), 9u);
  EXPECT_TRUE(again.Call("ping"));
  EXPECT_FALSE(again.Push("pub", "chat:x", 200ms)) << "live 9 must arrive once";
}

TEST_F(NodeNativeRecovery, PositionTooOldForShortHistoryIsNotRecovered) {
  StartNode();
  RawSession s = Session(), sub = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  const std::string epoch = PublishN(s, "short:x", 10);
  auto r = sub.Call("subscribe", Recover("short:x", epoch, 3));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_FALSE(r->Bool("result.recovered"));
  EXPECT_TRUE(r->Bool("result.was_recovering"));
  EXPECT_TRUE(OffsetsOf(*r, "result.publications").empty()) << "never a partial recovery";
  EXPECT_EQ(r->Uint("result.offset"), 10u);
  EXPECT_EQ(r->Str("result.epoch"), epoch);
  // The subscription continues from the top.
  PublishN(s, "short:x", 1);
  auto live = sub.Push("pub", "short:x");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->Uint("data.offset"), 11u);
  // From 8 (9, 10, 11 retained) it is recoverable.
  RawSession other = Session();
  ASSERT_FALSE(ConnectAs(other, "o").empty());
  auto ok = other.Call("subscribe", Recover("short:x", epoch, 8));
  EXPECT_TRUE(ok->Bool("result.recovered"));
  EXPECT_EQ(OffsetsOf(*ok, "result.publications"), (Offsets{9, 10, 11}));
}

TEST_F(NodeNativeRecovery, HistoryCapReturnsExactlyTheLastThree) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  PublishN(s, "short:cap", 10);
  EXPECT_EQ(History(s, "short:cap"), (Offsets{8, 9, 10}));
}

TEST_F(NodeNativeRecovery, WrongEpochEmptyEpochOrFutureOffsetIsNotRecovered) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  const std::string epoch = PublishN(s, "chat:e", 4);
  int n = 0;
  for (const std::string& params :
       {Recover("chat:e", "wrong", 2), Recover("chat:e", "", 2), Recover("chat:e", epoch, 5)}) {
    RawSession sub = Session();
    ASSERT_FALSE(ConnectAs(sub, "s" + std::to_string(n++)).empty());
    auto r = sub.Call("subscribe", params);
    ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
    EXPECT_FALSE(r->Bool("result.recovered")) << n;
    EXPECT_TRUE(OffsetsOf(*r, "result.publications").empty()) << n;
    EXPECT_EQ(r->Str("result.epoch"), epoch) << n;
    EXPECT_EQ(r->Uint("result.offset"), 4u) << n;
  }
}

TEST_F(NodeNativeRecovery, AfterHistoryRemoveOldOffsetIsNotRecoveredTopIs) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  const std::string epoch = PublishN(s, "chat:hr", 5);
  auto api = Api(*node_, "history_remove", R"({"channel":"chat:hr"})");
  ASSERT_EQ(api.status, 200) << api.body;
  EXPECT_TRUE(History(s, "chat:hr").empty());
  RawSession a = Session(), b = Session();
  ASSERT_FALSE(ConnectAs(a, "a").empty());
  ASSERT_FALSE(ConnectAs(b, "b").empty());
  auto old = a.Call("subscribe", Recover("chat:hr", epoch, 2));
  ASSERT_TRUE(old && old->Has("result")) << ErrorCode(old);
  EXPECT_FALSE(old->Bool("result.recovered"));
  EXPECT_TRUE(OffsetsOf(*old, "result.publications").empty());
  // Epoch and top are kept: a client at the top is recovered with nothing to add.
  auto top = b.Call("subscribe", Recover("chat:hr", epoch, 5));
  ASSERT_TRUE(top && top->Has("result"));
  EXPECT_TRUE(top->Bool("result.recovered"));
  EXPECT_EQ(top->Str("result.epoch"), epoch);
  EXPECT_EQ(top->Uint("result.offset"), 5u);
  EXPECT_TRUE(OffsetsOf(*top, "result.publications").empty());
  // Offsets continue.
  auto next = s.Call("publish", P({{"channel", "chat:hr"}, {"data", "{}"}}));
  EXPECT_EQ(next->Uint("result.offset"), 6u);
  EXPECT_EQ(next->Str("result.epoch"), epoch);
}

TEST_F(NodeNativeRecovery, TtlExpiryKeepsEpochAndTop) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  // A subscriber keeps the channel active while its history expires.
  ASSERT_TRUE(s.Call("subscribe", P({{"channel", "ttl:x"}}))->Has("result"));
  const std::string epoch = PublishN(s, "ttl:x", 3);
  EXPECT_EQ(History(s, "ttl:x"), (Offsets{1, 2, 3})) << "retained before the TTL (500 ms)";
  ASSERT_TRUE(EventuallyTrue([&] { return History(s, "ttl:x").empty(); }, 5s));
  RawSession a = Session(), b = Session();
  ASSERT_FALSE(ConnectAs(a, "a").empty());
  ASSERT_FALSE(ConnectAs(b, "b").empty());
  auto old = a.Call("subscribe", Recover("ttl:x", epoch, 1));
  ASSERT_TRUE(old && old->Has("result")) << ErrorCode(old);
  EXPECT_FALSE(old->Bool("result.recovered"));
  EXPECT_TRUE(OffsetsOf(*old, "result.publications").empty());
  auto top = b.Call("subscribe", Recover("ttl:x", epoch, 3));
  ASSERT_TRUE(top && top->Has("result"));
  EXPECT_TRUE(top->Bool("result.recovered"));
  EXPECT_EQ(top->Str("result.epoch"), epoch);
  EXPECT_EQ(top->Uint("result.offset"), 3u);
  EXPECT_EQ(s.Call("publish", P({{"channel", "ttl:x"}, {"data", "{}"}}))->Uint("result.offset"),
            4u);
}

TEST_F(NodeNativeRecovery, TtlExpiryWithoutSubscribersKeepsEpochAndTop) {
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  const std::string epoch = PublishN(s, "ttl:idle", 2);
  ASSERT_TRUE(EventuallyTrue([&] { return History(s, "ttl:idle").empty(); }, 5s));
  // Give the node's sweep (every second) a chance to drop an idle channel, observed through
  // the position reported by history (not a sleep: the check is repeated until 2.5 s pass).
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  EventuallyTrue(
      [&] {
        auto h = s.Call("history", P({{"channel", "ttl:idle"}}));
        EXPECT_EQ(h->Uint("result.offset"), 2u);
        EXPECT_EQ(h->Str("result.epoch"), epoch);
        return std::chrono::steady_clock::now() >= until || ::testing::Test::HasFailure();
      },
      5s);
  RawSession b = Session();
  ASSERT_FALSE(ConnectAs(b, "b").empty());
  auto top = b.Call("subscribe", Recover("ttl:idle", epoch, 2));
  EXPECT_TRUE(top->Bool("result.recovered"));
}

TEST_F(NodeNativeRecovery, RestartStartsANewEpoch) {
  StartNode();
  std::string epoch;
  {
    RawSession s = Session();
    ASSERT_FALSE(ConnectAs(s, "p").empty());
    epoch = PublishN(s, "chat:r", 3);
  }
  ASSERT_TRUE(node_->Stop());
  StartNode();
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "p").empty());
  auto r = s.Call("subscribe", Recover("chat:r", epoch, 3));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  EXPECT_FALSE(r->Bool("result.recovered"));
  EXPECT_TRUE(OffsetsOf(*r, "result.publications").empty());
  EXPECT_NE(r->Str("result.epoch"), epoch);
  EXPECT_FALSE(r->Str("result.epoch").empty());
  EXPECT_EQ(r->Uint("result.offset"), 0u);
}

}  // namespace
}  // namespace chorus::testing
