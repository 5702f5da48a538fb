// Presence when nodes die (docs/cluster.md §10, C-22, C-23; issue 12 test 3), three real
// chorusd with short timings (heartbeat 100 ms, dead after 600 ms):
//  - C-22: kill -9 a node that only holds clients of a channel: within 3 s the survivors'
//    presence excludes its clients, every subscriber gets exactly one leave (and one
//    user_leave) per client, the other clients are kept.
//  - C-23: kill -9 the primary of two channels of one partition, each with a client on a
//    different survivor: after the failover the new primary's presence holds both survivors'
//    clients again (the one on the other survivor only by its re-assertion) and not the dead
//    node's.
//  - C-23 repair: a client leaves while the primary is stopped and then killed (its leave went
//    to the dead primary): after the promotion the presence on every survivor excludes it and
//    every subscriber gets exactly one leave for it (the holders' sync, kind 34).
#include <signal.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class NodeClusterPresenceFault : public ClusterFixture {
 protected:
  void SetUp() override { StartCluster(3); }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      nodes_[i]->process().Signal(SIGCONT);  // a node a failed test left stopped
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
  void Kill(uint64_t member) {
    nodes_[member - 1]->process().Signal(SIGKILL);
    EXPECT_NE(nodes_[member - 1]->process().Wait(), -1);
    nodes_[member - 1].reset();
  }
  static bool PresenceIs(const NodeProcess& node, const std::string& channel,
                         const std::map<std::string, uint64_t>& want) {
    auto got = PresenceOn(node, channel);
    return got && *got == want;
  }
  // The node's presence of `channel` as text, for failure messages.
  static std::string Dump(const NodeProcess& node, const std::string& channel) {
    auto got = PresenceOn(node, channel);
    if (!got) return "(no answer)";
    std::string out;
    for (const auto& [client, member] : *got) out += client + "@" + std::to_string(member) + " ";
    return out;
  }
  std::string Subscribe(RawSession& s, const std::string& user, const std::string& channel) {
    const std::string client = ConnectAs(s, user);
    auto r = s.Call("subscribe", P({{"channel", channel}}));
    EXPECT_TRUE(r && r->Has("result")) << ErrorCode(r);
    return client;
  }
};

// C-22 (issue 12 test 3, a node that only holds clients).
TEST_F(NodeClusterPresenceFault, C22_ClientsOfADeadNodeLeaveOncePerClient) {
  const std::string ch = ChannelWithPrimary(1, "dead");
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  RawSession wa(ctx_, a.native()), wb(ctx_, b.native()), keep(ctx_, b.native());
  RawSession x(ctx_, c.native()), y(ctx_, c.native());
  const std::string ca = Subscribe(wa, "wa", ch), cb = Subscribe(wb, "wb", ch);
  const std::string ck = Subscribe(keep, "keep", ch);
  const std::string cx = Subscribe(x, "x", ch), cy = Subscribe(y, "y", ch);
  const std::map<std::string, uint64_t> all = {{ca, 1}, {cb, 2}, {ck, 2}, {cx, 3}, {cy, 3}};
  for (NodeProcess* n : {&a, &b, &c}) {
    ASSERT_TRUE(EventuallyTrue([&] { return PresenceIs(*n, ch, all); })) << n->native();
  }
  PresencePushLog la, lb;
  ASSERT_TRUE(EventuallyTrue([&] {
    la.Collect(wa);
    lb.Collect(wb);
    return la.Count("join", cy) == 1 && lb.Count("join", cy) == 1;
  }));

  const auto killed = std::chrono::steady_clock::now();
  Kill(3);
  const std::map<std::string, uint64_t> kept = {{ca, 1}, {cb, 2}, {ck, 2}};
  ASSERT_TRUE(
      EventuallyTrue([&] { return PresenceIs(a, ch, kept) && PresenceIs(b, ch, kept); }, 3s))
      << "the dead node's clients still present 3 s after the kill";
  const auto took = std::chrono::steady_clock::now() - killed;
  EXPECT_LE(took, 3s);
  ASSERT_TRUE(EventuallyTrue([&] {
    la.Collect(wa);
    lb.Collect(wb);
    return la.Count("leave", cx) == 1 && la.Count("leave", cy) == 1 && lb.Count("leave", cx) == 1 &&
           lb.Count("leave", cy) == 1;
  }));
  EXPECT_TRUE(wa.Call("ping"));
  EXPECT_TRUE(wb.Call("ping"));
  la.Collect(wa, 300ms);
  lb.Collect(wb, 300ms);
  for (PresencePushLog* log : {&la, &lb}) {
    for (const std::string& gone : {cx, cy}) {
      EXPECT_EQ(log->Count("leave", gone), 1u) << "leaves of " << gone;
      EXPECT_EQ(log->Count("user_leave", gone), 1u) << "user_leaves of " << gone;
    }
    for (const std::string& stays : {ca, cb, ck}) EXPECT_EQ(log->Count("leave", stays), 0u);
  }
  EXPECT_EQ(Metric(a, "chorus_cluster_presence_dead_dropped_total"), 2);
}

// C-23 (issue 12 test 3, a node that is primary).
TEST_F(NodeClusterPresenceFault, C23_TheNewPrimaryHoldsTheSurvivorsClientsAgain) {
  // Two channels of one partition whose primary is A (no history: nothing but presence moves).
  std::string ch1, ch2;
  for (int i = 0; ch2.empty(); ++i) {
    const std::string name = "nohist:p" + std::to_string(i);
    if (PrimaryOf(name) != 1) continue;
    if (ch1.empty()) {
      ch1 = name;
    } else if (PartitionOfChannel(name, kPartitions) == PartitionOfChannel(ch1, kPartitions)) {
      ch2 = name;
    }
  }
  const uint32_t part = PartitionOfChannel(ch1, kPartitions);
  NodeProcess &a = Node(1), &b = Node(2), &c = Node(3);
  RawSession a1(ctx_, a.native()), a2(ctx_, a.native()), onb(ctx_, b.native()),
      onc(ctx_, c.native());
  const std::string ca1 = Subscribe(a1, "a1", ch1), ca2 = Subscribe(a2, "a2", ch2);
  const std::string cb = Subscribe(onb, "b", ch1), cc = Subscribe(onc, "c", ch2);
  ASSERT_TRUE(EventuallyTrue([&] { return PresenceIs(a, ch1, {{ca1, 1}, {cb, 2}}); }));
  ASSERT_TRUE(EventuallyTrue([&] { return PresenceIs(a, ch2, {{ca2, 1}, {cc, 3}}); }));
  // B and C hold a live copy of A's presence of the channel their client is in (followed for
  // that client, or kept as the partition's backup).
  EXPECT_TRUE(EventuallyTrue([&] {
    return PresenceIs(b, ch1, {{ca1, 1}, {cb, 2}});
  })) << Dump(b, ch1);
  EXPECT_TRUE(EventuallyTrue([&] {
    return PresenceIs(c, ch2, {{ca2, 1}, {cc, 3}});
  })) << Dump(c, ch2);

  Kill(1);
  uint64_t primary = 0;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        json cl = ResultOf(Api(b, "cluster", "{}"));
        if (cl.is_null()) return false;
        primary = cl["partitions"][part]["primary"].get<uint64_t>();
        return primary == 2 || primary == 3;
      },
      15s));
  // Whichever survivor is the new primary, one of the two channels had no copy there: its
  // entry is back only because the other survivor re-asserted it (C-23).
  for (NodeProcess* n : {&b, &c}) {
    EXPECT_TRUE(EventuallyTrue(
        [&] {
          return PresenceIs(*n, ch1, {{cb, 2}});
        },
        10s))
        << ch1 << " on " << n->native() << " (new primary " << primary << "): " << Dump(*n, ch1);
    EXPECT_TRUE(EventuallyTrue(
        [&] {
          return PresenceIs(*n, ch2, {{cc, 3}});
        },
        10s))
        << ch2 << " on " << n->native() << " (new primary " << primary << "): " << Dump(*n, ch2);
  }
  NodeProcess& other = primary == 2 ? c : b;
  EXPECT_GE(Metric(other, "chorus_cluster_presence_reasserted_total"), 1);
  EXPECT_GE(Metric(Node(primary), "chorus_cluster_presence_applied_total"), 1);
}

// C-23 repair (docs/cluster.md §16.5): a leave lost with the dead primary.
TEST_F(NodeClusterPresenceFault, C23_ALeaveLostWithTheDeadPrimaryIsRepaired) {
  // Primary A = 1, backup X = 2 (its copy of the presence, g included, becomes the channel's
  // presence on promotion), Y = 3 holds the leaving client.
  const std::string ch = ChannelWithReplicas(1, 2, "lostleave");
  NodeProcess &a = Node(1), &x = Node(2), &y = Node(3);
  RawSession wx(ctx_, x.native()), wy(ctx_, y.native()), g(ctx_, y.native()), k(ctx_, y.native());
  const std::string cwx = Subscribe(wx, "wx", ch), cwy = Subscribe(wy, "wy", ch);
  const std::string ck = Subscribe(k, "k", ch), cg = Subscribe(g, "g", ch);
  const std::map<std::string, uint64_t> all = {{cwx, 2}, {cwy, 3}, {ck, 3}, {cg, 3}};
  for (NodeProcess* n : {&a, &x, &y}) {
    ASSERT_TRUE(EventuallyTrue([&] { return PresenceIs(*n, ch, all); })) << Dump(*n, ch);
  }
  PresencePushLog lx, ly;
  ASSERT_TRUE(EventuallyTrue([&] {
    lx.Collect(wx);
    ly.Collect(wy);
    return lx.Count("join", cg) == 1 && ly.Count("join", cg) == 1;
  }));
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(a, ch), 2); }, 10s));

  // A stops: g's leave goes into A's pipe and is never applied; then A dies.
  a.process().Signal(SIGSTOP);
  auto r = g.Call("unsubscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  ASSERT_EQ(PartitionOn(y, ch)["primary"], 1) << "Y sent the leave to another primary than A";
  Kill(1);
  ASSERT_TRUE(EventuallyTrue(
      [&] { return PartitionOn(x, ch)["primary"] == 2 && PartitionOn(y, ch)["primary"] == 2; },
      15s));

  const std::map<std::string, uint64_t> kept = {{cwx, 2}, {cwy, 3}, {ck, 3}};
  for (NodeProcess* n : {&x, &y}) {
    EXPECT_TRUE(EventuallyTrue([&] { return PresenceIs(*n, ch, kept); }, 5s))
        << "the client that left is still present on member " << (n == &x ? 2 : 3) << ": "
        << Dump(*n, ch);
  }
  EXPECT_TRUE(EventuallyTrue([&] {
    lx.Collect(wx);
    ly.Collect(wy);
    return lx.Count("leave", cg) >= 1 && ly.Count("leave", cg) >= 1;
  }));
  EXPECT_TRUE(wx.Call("ping"));
  EXPECT_TRUE(wy.Call("ping"));
  lx.Collect(wx, 300ms);
  ly.Collect(wy, 300ms);
  for (PresencePushLog* log : {&lx, &ly}) {
    const std::string on = log == &lx ? "the subscriber on X" : "the subscriber on Y";
    EXPECT_EQ(log->Count("leave", cg), 1u) << "leaves of the client that left, " << on;
    EXPECT_EQ(log->Count("user_leave", cg), 1u);
    for (const std::string& stays : {cwx, cwy, ck}) {
      EXPECT_EQ(log->Count("leave", stays), 0u) << on;
    }
  }
  EXPECT_EQ(Metric(x, "chorus_cluster_presence_unheld_dropped_total"), 1);
}

}  // namespace
}  // namespace chorus::testing
