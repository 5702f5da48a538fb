// Wire-level tests of the CHP replica agent at scale (issue 11): the order in which syncs go out
// (CR-9), the byte bound of the update queue (CR-11) and the link-state callback of an agent
// for one cluster peer (CR-33). Fixture, fake server and coverage notes:
// chp_replica_wire_support.h.
#include "chp_replica_wire_support.h"

namespace chorus::chp::replica_wire {
namespace {

// CR-9: subtrees that need a sync get a request slot in the order they came to need it (FIFO),
// not in name order: a subtree cannot starve behind names that sort before it.
TEST_F(ChpReplicaWire, CR9_RequestsGoOutInTheOrderSubtreesNeedThem) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  o.subscribe_timeout = 30s;  // only the welcome POSITIONs move a subtree to need-sync
  o.request_timeout = 30s;
  o.max_outstanding = 1;
  ReplicaAgent a(ctx_, o);
  for (const char* s : {"busy", "z", "m", "a"}) ASSERT_TRUE(a.Follow(s).ok());
  Handshake(a, f, {"$HUGZ", "busy/", "z/", "m/", "a/"});
  f.Publish("busy/", PositionF("", 0));
  Cmd busy = TakeIcanhaz(a, f, "busy");  // holds the only slot
  for (const char* s : {"z", "m", "a"}) {
    f.Publish(std::string(s) + "/", PositionF("", 0));
    PubBarrier(a, f);  // s needs a sync now, after the ones before it
  }
  ASSERT_EQ(f.Count(3), 1u) << "one slot only";
  std::vector<std::string> order;
  std::string identity = busy.identity;
  uint64_t id = busy.U(1);
  std::string subtree = "busy";
  for (int i = 0; i < 3; ++i) {
    f.Send(identity, KthxbaiF(id, subtree, "", 0, 0, kSnap));
    Cmd req = Take(a, f, 3);
    identity = req.identity, id = req.U(1), subtree = req.S(2);
    order.push_back(subtree);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"z", "m", "a"}));
}

// CR-11 (issue 11): the queues of all subtrees together are bounded in bytes
// (max_total_queue_bytes): the update that would pass the bound discards its subtree's queue,
// that subtree syncs again after its current sync, the others keep theirs.
TEST_F(ChpReplicaWire, CR11_QueuesOfAllSubtreesBoundedInBytes) {
  FakeServer& f = AddFake();
  AgentOptions o = Opts({&f});
  const std::string value = V(std::string(1000, 'v'));
  const size_t per_update = 1 + value.size() + SubtreeReplica::kQueuedOverheadBytes;  // key "k"
  o.max_total_queue_bytes = 3 * per_update;
  o.request_timeout = 30s;
  ReplicaAgent a(ctx_, o);
  ASSERT_TRUE(a.Follow("a").ok());
  ASSERT_TRUE(a.Follow("b").ok());
  Handshake(a, f, {"$HUGZ", "a/", "b/"});
  f.Publish("a/", PositionF("E", 1));
  f.Publish("b/", PositionF("F", 1));
  Cmd ra = TakeIcanhaz(a, f, "a");
  Cmd rb = TakeIcanhaz(a, f, "b");
  // Both syncing: a queues two updates, b one (3 in all: at the bound), then b one more.
  f.Publish("a/k", KvPubF("E", 2, kSet, value));
  f.Publish("a/k", KvPubF("E", 3, kSet, value));
  f.Publish("b/k", KvPubF("F", 2, kSet, value));
  PubBarrier(a, f);
  EXPECT_EQ(a.queued_bytes(), 3 * per_update);
  f.Publish("b/k", KvPubF("F", 3, kSet, value));
  PubBarrier(a, f);
  EXPECT_EQ(a.Find("b")->stats().overflows, 1u) << "b's update would pass the bound";
  EXPECT_EQ(a.Find("a")->stats().overflows, 0u);
  EXPECT_EQ(a.queued_bytes(), 2 * per_update) << "a's queue kept, b's released";
  // a replays its queue after the snapshot; b finishes its sync, then syncs again from there.
  ServeSnapshot(a, f, ra, {"E", 1}, {SetR("x", "1", 1)});
  EXPECT_EQ(Pos(a, "a"), (Position{"E", 3}));
  f.Send(rb.identity, KthxbaiF(rb.U(1), "b", "F", 1, 0, kSnap));
  Cmd again = TakeIcanhaz(a, f, "b");
  EXPECT_EQ(again.S(3), "F") << "resumes from the position of the sync it finished";
  EXPECT_EQ(again.U(4), 1u);
  EXPECT_EQ(a.queued_bytes(), 0u);
}

}  // namespace
}  // namespace chorus::chp::replica_wire
