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

}  // namespace
}  // namespace chorus::chp::replica_wire
