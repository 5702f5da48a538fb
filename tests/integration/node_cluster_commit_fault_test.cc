// A backup that stops acknowledging (docs/cluster.md §5 C-8, C-10, C-11, C-12; §16.2): three
// real chorusd, R = 2, replica_lag_ms 300 and dead_after_ms 4000 (so the stopped backup is
// reported lagging long before it could be declared dead). The backup is SIGSTOPped:
//  - C-8 / C-10: publishes to its partition are not answered while it is in in_sync; the
//    primary reports it lagging, the map removes it from in_sync, and only then the waiting
//    publishes complete (their subscriber on the primary gets them in order);
//  - C-12: meanwhile a channel without history of the same primary is answered at once;
//  - C-11: after SIGCONT the backup catches up (its copy holds every offset) and rejoins in_sync.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Every thread of `pid` is stopped (state T in /proc/<pid>/task/*/stat): SIGSTOP took effect.
bool AllThreadsStopped(int pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  size_t seen = 0;
  for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream stat(t.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
      return false;
    }
    ++seen;
  }
  return !ec && seen > 0;
}

class NodeClusterCommitFault : public ClusterFixture {
 protected:
  void SetUp() override {
    StartCluster(3, {"cluster.dead_after_ms=4000", "cluster.replica_lag_ms=300"});
  }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      nodes_[i]->process().Signal(SIGCONT);
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

TEST_F(NodeClusterCommitFault, C10_C11_StalledBackupLeavesInSyncThenRejoins) {
  // The backup is not the Raft leader (stopping the leader would stop the map).
  json view = ResultOf(Api(Node(1), "cluster", "{}"));
  ASSERT_FALSE(view.is_null());
  const uint64_t leader = view["leader_id"].get<uint64_t>();
  ASSERT_GE(leader, 1u);
  const uint64_t backup = leader == 3 ? 2 : 3;
  const uint64_t primary = backup == 3 ? (leader == 1 ? 1 : 2) : 1;
  ASSERT_NE(primary, backup);
  const std::string ch = ChannelWithReplicas(primary, backup, "stall");
  std::string plain;
  for (int i = 0; plain.empty(); ++i) {
    const std::string cand = "nohist:stall-" + std::to_string(i);
    if (PrimaryOf(cand) == primary) plain = cand;
  }
  NodeProcess &p = Node(primary), &b = Node(backup);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(p, ch), backup); }, 20s));
  json first = ResultOf(Api(p, "publish", json{{"channel", ch}, {"data", {{"n", 1}}}}.dump()));
  ASSERT_FALSE(first.is_null());
  ASSERT_EQ(first["offset"], 1);
  const std::string epoch = first["epoch"].get<std::string>();

  RawSession sub(ctx_, p.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  auto r = sub.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);

  // The stalled publishes come from a native client on the primary (answered once committed).
  RawSession pubs(ctx_, p.native(), 10'000);
  ASSERT_FALSE(ConnectAs(pubs, "pub").empty());
  b.process().Signal(SIGSTOP);
  ASSERT_TRUE(EventuallyTrue([&] { return AllThreadsStopped(b.process().pid()); }, 5s));
  constexpr uint64_t kStalled = 5;
  std::vector<uint64_t> ids;
  for (uint64_t i = 2; i < 2 + kStalled; ++i) {
    ids.push_back(
        pubs.Send("publish", P({{"channel", ch}, {"data", "{\"n\":" + std::to_string(i) + "}"}})));
  }
  // C-12: the channel without history is not held by the stopped backup.
  json quick = ResultOf(Api(p, "publish", json{{"channel", plain}, {"data", {{"q", 1}}}}.dump()));
  ASSERT_FALSE(quick.is_null());
  // C-8: not answered while the stopped backup is in in_sync. Each round looks for answers
  // first and then at the primary's own map: an answer seen before a map that still holds the
  // backup in sync was sent while it was in sync (in_sync does not grow back meanwhile: the
  // backup is stopped). Until the map has removed the backup (C-10).
  std::map<uint64_t, Frame> answers;
  bool removed = false;
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        for (uint64_t id : ids) {
          if (answers.count(id) != 0) continue;
          if (auto f = pubs.Reply(id, 1ms)) answers.emplace(id, std::move(*f));
        }
        const json part = PartitionOn(p, ch);
        if (part.is_null()) return false;
        removed = !InSync(part, backup);
        if (!removed && !answers.empty()) {
          ADD_FAILURE() << "a publish was answered while the stopped backup was in sync, map "
                        << part.dump();
          return true;
        }
        return removed;
      },
      10s));
  ASSERT_TRUE(removed);
  // Removed for lagging (C-10), not declared dead: the member is still alive in the map.
  json members = ResultOf(Api(p, "cluster", "{}"));
  ASSERT_FALSE(members.is_null());
  for (const json& m : members["members"]) {
    if (m["id"] == backup) {
      EXPECT_EQ(m["state"], "alive") << m.dump();
    }
  }
  EXPECT_GE(Metric(p, "chorus_cluster_replica_reports_total"), 1);
  // The waiting publishes complete once the backup left in_sync, with consecutive offsets.
  for (size_t k = 0; k < ids.size(); ++k) {
    if (answers.count(ids[k]) == 0) {
      auto f = pubs.Reply(ids[k], 10s);
      ASSERT_TRUE(f) << "publish " << k + 2 << " never answered";
      answers.emplace(ids[k], std::move(*f));
    }
    const Frame& f = answers.at(ids[k]);
    ASSERT_TRUE(f.Has("result")) << f.Uint("error.code");
    EXPECT_EQ(f.Uint("result.offset"), k + 2);
    EXPECT_EQ(f.Str("result.epoch"), epoch);
  }
  for (uint64_t i = 2; i < 2 + kStalled; ++i) {
    auto f = sub.Push("pub", ch);
    ASSERT_TRUE(f) << "publication " << i << " not delivered";
    EXPECT_EQ(f->Uint("data.offset"), i);
  }
  // Without the backup in in_sync, a publish commits at once.
  json alone = ResultOf(Api(p, "publish", json{{"channel", ch}, {"data", {{"n", 7}}}}.dump()));
  ASSERT_FALSE(alone.is_null());
  EXPECT_EQ(alone["offset"], 2 + kStalled);

  // C-11: the backup resumes, catches up and is back in in_sync.
  b.process().Signal(SIGCONT);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(p, ch), backup); }, 15s));
  json h = ResultOf(Api(b, "history", json{{"channel", ch}, {"limit", -1}}.dump()));
  ASSERT_FALSE(h.is_null());
  EXPECT_EQ(h["epoch"], epoch);
  EXPECT_EQ(h["offset"], 2 + kStalled);
  EXPECT_EQ(h["publications"].size(), 2 + kStalled);
  // And a publish waits for it again: answered with the backup holding it.
  json again = ResultOf(Api(p, "publish", json{{"channel", ch}, {"data", {{"n", 8}}}}.dump()));
  ASSERT_FALSE(again.is_null());
  // The backup holds it; its history shows it once the commit position reaches it there (reads
  // stop at the commit position, §16.7: the `top` carrying it follows the reply).
  EXPECT_TRUE(EventuallyTrue(
      [&] {
        json hb = ResultOf(Api(b, "history", json{{"channel", ch}, {"limit", 0}}.dump()));
        return !hb.is_null() && hb["offset"] == again["offset"];
      },
      5s));
}

// C-14: a primary whose backup stops acking and that cannot shrink in_sync (the two other
// nodes, a majority of the meta voters, are stopped) commits nothing: its publisher gets 114
// after the forward timeout and its subscriber sees nothing; once the others resume, the map
// moves again and the publication is committed and delivered once.
class NodeClusterCommitNoMajority : public NodeClusterCommitFault {
 protected:
  void SetUp() override {
    StartCluster(3, {"cluster.dead_after_ms=8000", "cluster.replica_lag_ms=300"});
  }
};

TEST_F(NodeClusterCommitNoMajority, C14_NoMajorityNoCommit) {
  const std::string ch = ChannelWithReplicas(1, 2, "minority");
  NodeProcess &p = Node(1), &b = Node(2), &c = Node(3);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(p, ch), 2); }, 20s));
  json first = ResultOf(Api(p, "publish", json{{"channel", ch}, {"data", {{"n", 1}}}}.dump()));
  ASSERT_FALSE(first.is_null());
  RawSession sub(ctx_, p.native(), 10'000), pub(ctx_, p.native(), 10'000);
  ASSERT_FALSE(ConnectAs(sub, "s").empty());
  ASSERT_FALSE(ConnectAs(pub, "p").empty());
  auto r = sub.Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);

  for (NodeProcess* n : {&b, &c}) n->process().Signal(SIGSTOP);
  for (NodeProcess* n : {&b, &c}) {
    ASSERT_TRUE(EventuallyTrue([&] { return AllThreadsStopped(n->process().pid()); }, 5s));
  }
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t id = pub.Send("publish", P({{"channel", ch}, {"data", "{\"n\":2}"}}));
  auto reply = pub.Reply(id, 10s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(reply);
  EXPECT_EQ(ErrorCode(reply), 114u);
  EXPECT_GE(waited, 2500ms);  // the forward timeout, not an early failure
  EXPECT_GE(Metric(p, "chorus_cluster_commit_timeouts_total"), 1);
  EXPECT_TRUE(InSync(PartitionOn(p, ch), 2));  // the map could not change
  EXPECT_FALSE(sub.Push("pub", ch, 300ms)) << "an uncommitted publication was delivered";

  for (NodeProcess* n : {&b, &c}) n->process().Signal(SIGCONT);
  // The backup acks (or leaves in_sync through the map): offset 2 is committed and delivered.
  auto f = sub.Push("pub", ch, 20s);
  ASSERT_TRUE(f) << "the publication was never committed";
  EXPECT_EQ(f->Uint("data.offset"), 2u);
  EXPECT_TRUE(sub.Call("ping"));
  EXPECT_FALSE(sub.Push("pub", ch, 300ms)) << "delivered twice";
}

}  // namespace
}  // namespace chorus::testing
