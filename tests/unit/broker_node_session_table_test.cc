// Unit tests for the engine's SessionTable (broker/node/session_table.h): sessions by id and by
// their peer on a transport, and the bounded memory of closed peers (N-17). Transports are
// fakes that only state their traits; no sockets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "broker/node/session_table.h"

namespace chorus::broker::node {
namespace {

class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(bool remembers_closed) { traits_.remembers_closed = remembers_closed; }
  const Encoder& encoder() const override { return NativeEncoder(); }
  const TransportTraits& traits() const override { return traits_; }
  SendStatus Send(const Session&, std::string_view) override { return SendStatus::kSent; }
  size_t Deliver(const std::vector<const Session*>& targets, std::string_view,
                 const Missed&) override {
    return targets.size();
  }
  void Close(const Session&, uint32_t, std::string_view, bool) override {}

 private:
  TransportTraits traits_;
};

TEST(SessionTable, SessionsAreFoundByIdAndByPeerOnTheirTransport) {
  FakeTransport native(true), ws(false);
  SessionTable t(16);
  Session& a = t.Open(native, "rid-a", 0, 1000);
  const SubscriberId a_id = a.id;
  Session& b = t.Open(ws, "gw-1", 7, 1000);
  const SubscriberId b_id = b.id;
  EXPECT_NE(a_id, b_id);
  EXPECT_EQ(t.size(), 2u);
  ASSERT_NE(t.Find(a_id), nullptr);
  EXPECT_EQ(t.Find(a_id)->routing_id, "rid-a");
  EXPECT_EQ(t.Find(a_id)->opened_ms, 1000);
  EXPECT_EQ(t.FindByPeer(native, "rid-a", 0), t.Find(a_id));
  EXPECT_EQ(t.FindByPeer(ws, "gw-1", 7), t.Find(b_id));
  // The same address on another transport, or another conn id, is another peer.
  EXPECT_EQ(t.FindByPeer(ws, "rid-a", 0), nullptr);
  EXPECT_EQ(t.FindByPeer(ws, "gw-1", 8), nullptr);
  t.Forget(a_id);
  EXPECT_EQ(t.Find(a_id), nullptr);
  EXPECT_EQ(t.FindByPeer(native, "rid-a", 0), nullptr);
  EXPECT_EQ(t.size(), 1u);
}

TEST(SessionTable, N17_ClosedPeersAreRememberedWhenTheirTransportDoes) {
  FakeTransport native(true), ws(false);
  SessionTable t(16);
  const SubscriberId a = t.Open(native, "rid-a", 0, 0).id;
  const SubscriberId b = t.Open(ws, "gw-1", 7, 0).id;
  const ClosedSession slow{3008, "slow", true};
  t.Forget(a, &slow);
  t.Forget(b, &slow);
  const ClosedSession* closed = t.FindClosed(native, "rid-a", 0);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->code, 3008u);
  EXPECT_EQ(closed->reason, "slow");
  EXPECT_TRUE(closed->reconnect);
  EXPECT_EQ(t.FindClosed(ws, "gw-1", 7), nullptr);  // WebSocket peers are gone with the socket
  EXPECT_EQ(t.closed_size(), 1u);
  // A new session of the same peer starts over: its old close is forgotten.
  t.Open(native, "rid-a", 0, 0);
  EXPECT_EQ(t.FindClosed(native, "rid-a", 0), nullptr);
  // A refused connect is forgotten without a close to remember.
  const SubscriberId c = t.Open(native, "rid-c", 0, 0).id;
  t.Forget(c);
  EXPECT_EQ(t.FindClosed(native, "rid-c", 0), nullptr);
}

TEST(SessionTable, N17_TheMemoryOfClosedPeersIsBoundedOldestFirst) {
  FakeTransport native(true);
  SessionTable t(3);
  const ClosedSession gone{3000, "connection closed", true};
  for (int i = 0; i < 5; ++i) {
    const SubscriberId id = t.Open(native, "rid-" + std::to_string(i), 0, 0).id;
    t.Forget(id, &gone);
  }
  EXPECT_EQ(t.closed_size(), 3u);
  EXPECT_EQ(t.FindClosed(native, "rid-0", 0), nullptr);
  EXPECT_EQ(t.FindClosed(native, "rid-1", 0), nullptr);
  EXPECT_NE(t.FindClosed(native, "rid-2", 0), nullptr);
  EXPECT_NE(t.FindClosed(native, "rid-4", 0), nullptr);
}

// A peer that reconnects and closes again is remembered once, as the newest: the bound holds and
// the eviction order does not grow with its cycles (it once grew forever and let the memory pass
// its bound: with a bound of 2, closes of A, A, B, C, D left 3 entries).
TEST(SessionTable, N17_APeerThatCyclesStaysWithinTheBound) {
  FakeTransport native(true);
  SessionTable t(2);
  const ClosedSession gone{3000, "connection closed", true};
  auto cycle = [&](const std::string& rid) { t.Forget(t.Open(native, rid, 0, 0).id, &gone); };
  for (const char* rid : {"A", "A", "B", "C", "D"}) cycle(rid);
  EXPECT_EQ(t.closed_size(), 2u);
  EXPECT_NE(t.FindClosed(native, "C", 0), nullptr);
  EXPECT_NE(t.FindClosed(native, "D", 0), nullptr);
  EXPECT_EQ(t.FindClosed(native, "A", 0), nullptr);
  for (int i = 0; i < 10000; ++i) cycle("A");
  EXPECT_EQ(t.closed_size(), 2u);
  EXPECT_LE(t.closed_order_size(), 2u * 2u + 16u);
  // The cycling peer is the newest; the oldest of the others went first.
  EXPECT_NE(t.FindClosed(native, "A", 0), nullptr);
  EXPECT_NE(t.FindClosed(native, "D", 0), nullptr);
  EXPECT_EQ(t.FindClosed(native, "C", 0), nullptr);
}

}  // namespace
}  // namespace chorus::broker::node
