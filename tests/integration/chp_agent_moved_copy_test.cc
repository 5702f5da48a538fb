// A replica copy moved from one agent to another (ReplicaAgent::Follow(subtree, copy)): the
// subtree's owner moved to a promoted backup that adopted the line (Server::Adopt, CS-29), and a
// follower that kept its copy follows it there. Its first sync asks to resume with the copy's
// position and term (CR-7, CR-30): on the same line (CS-30) the server answers with a resume,
// the copy is kept and no snapshot is taken; off the line, a snapshot. Servers and agents are
// polled by the test thread; every wait is a condition with a deadline.
#include <gtest/gtest.h>

#include "chp/agent.h"
#include "chp/server.h"
#include "test_util.h"

namespace chorus::chp {
namespace {

using namespace std::chrono_literals;

class ChpAgentMovedCopy : public ::testing::Test {
 protected:
  std::unique_ptr<Server> MakeServer() {
    ServerOptions o;
    o.heartbeat_interval = 100ms;
    auto s = Server::Create(ctx_, std::move(o));
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::unique_ptr<ReplicaAgent> MakeAgent(const Server& s) {
    AgentOptions o;
    o.endpoints = {s.command_endpoint()};
    o.mode = AgentOptions::Mode::kPeer;
    return std::make_unique<ReplicaAgent>(ctx_, o);
  }
  // Polls everything until `agent`'s copy of "s" is live at `server`'s position.
  bool LiveAt(ReplicaAgent& agent, const Server& server) {
    return chorus::testing::EventuallyTrue(
        [&] {
          std::vector<Pollable*> parts = {&agent};
          for (Server* s : servers_) parts.push_back(s);
          for (ReplicaAgent* a : agents_) parts.push_back(a);
          PollOnce(parts, 5ms);
          const SubtreeReplica* r = agent.Find("s");
          return r != nullptr && r->live() && r->position() == server.store().PositionOf("s");
        },
        10s);
  }

  zmq::context_t ctx_;
  std::vector<Server*> servers_;
  std::vector<ReplicaAgent*> agents_;
};

TEST_F(ChpAgentMovedCopy, CR30_AMovedCopyResumesOnThePromotedServersLine) {
  auto a = MakeServer(), b = MakeServer();
  ASSERT_TRUE(a && b);
  servers_ = {a.get(), b.get()};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a->Set("s/k" + std::to_string(i), "\x01").ok());
  auto backup = MakeAgent(*a), follower = MakeAgent(*a);
  agents_ = {backup.get(), follower.get()};
  ASSERT_TRUE(backup->Follow("s").ok());
  ASSERT_TRUE(follower->Follow("s").ok());
  ASSERT_TRUE(LiveAt(*backup, *a));
  ASSERT_TRUE(LiveAt(*follower, *a));

  // The backup is promoted: its copy becomes b's subtree under a new term, b writes on.
  const SubtreeReplica& copy = *backup->Find("s");
  ASSERT_TRUE(b->Adopt("s", copy.position(), copy.term(), copy.term() + 1,
                       copy.SnapshotRecords(MonotonicMs()))
                  .ok());
  ASSERT_TRUE(b->Set("s/after", "\x02").ok());
  agents_ = {};
  a.reset();
  servers_ = {b.get()};

  // The follower's copy moves to an agent of b and resumes there.
  const SubtreeReplica kept = *follower->Find("s");
  EXPECT_EQ(MakeAgent(*b)->Follow("t", kept).error(), make_error_code(Errc::kBadKey))
      << "a copy of another subtree";
  auto moved = MakeAgent(*b);
  ASSERT_TRUE(moved->Follow("s", kept).ok());
  ASSERT_TRUE(LiveAt(*moved, *b));
  const SubtreeReplica& r = *moved->Find("s");
  EXPECT_EQ(r.stats().resumes, kept.stats().resumes + 1);
  EXPECT_EQ(r.stats().snapshots, kept.stats().snapshots) << "on the line: no snapshot";
  EXPECT_EQ(b->stats().snapshots, 0u);
  EXPECT_EQ(b->stats().resumes, 1u);
  EXPECT_EQ(r.entries().size(), 6u);
  EXPECT_EQ(r.term(), copy.term() + 1);

  // Off the line (b's subtree dropped and created again: another epoch): a snapshot.
  ASSERT_TRUE(b->Drop("s"));
  ASSERT_TRUE(b->Set("s/new", "\x03").ok());
  const SubtreeReplica stale = r;
  auto again = MakeAgent(*b);
  ASSERT_TRUE(again->Follow("s", stale).ok());
  ASSERT_TRUE(LiveAt(*again, *b));
  EXPECT_EQ(again->Find("s")->stats().snapshots, stale.stats().snapshots + 1);
  EXPECT_EQ(again->Find("s")->entries().size(), 1u);
}

}  // namespace
}  // namespace chorus::chp
