// Reads stop at the commit position (docs/cluster.md §5 C-9, §16.7): three real chorusd. A
// backup is SIGSTOPped (not the Raft leader; replica_lag_ms long, so it stays in in_sync and
// the commit stalls) and two publications wait for it on the primary. Meanwhile, on the
// primary and on a third node holding a copy (an interest follower with R = 2, a backup with
// R = 3): the server API's `history`, a client's `history`, a plain subscribe's position and a
// recovering subscribe all end at the last committed offset. After SIGCONT the publications
// commit: the reads show them and the subscribers made during the stall get each once, in
// order (recovery and live delivery meet with no duplicate).
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node_cluster_support.h"
#include "node_native_support.h"

namespace chorus::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

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

// The replication factor.
class NodeClusterReadsFault : public ClusterFixture, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    StartCluster(3, {"cluster.dead_after_ms=10000", "cluster.replica_lag_ms=8000",
                     "cluster.replication_factor=" + std::to_string(GetParam())});
  }
  void TearDown() override {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]) continue;
      nodes_[i]->process().Signal(SIGCONT);
      EXPECT_TRUE(nodes_[i]->Stop()) << "unclean shutdown of node " << i + 1;
    }
  }
};

// What the reads of one node show: (top offset, publications) of the API's history.
std::pair<uint64_t, size_t> ApiHistory(NodeProcess& n, const std::string& ch) {
  json h = ResultOf(Api(n, "history", json{{"channel", ch}, {"limit", -1}}.dump()));
  if (h.is_null()) return {UINT64_MAX, 0};
  return {h["offset"].get<uint64_t>(), h["publications"].size()};
}

TEST_P(NodeClusterReadsFault, C9_ReadsStopAtTheCommitPositionOnEveryNode) {
  json view = ResultOf(Api(Node(1), "cluster", "{}"));
  ASSERT_FALSE(view.is_null());
  const uint64_t leader = view["leader_id"].get<uint64_t>();
  ASSERT_GE(leader, 1u);
  const uint64_t backup = leader == 3 ? 2 : 3;
  const uint64_t primary = backup == 3 ? (leader == 1 ? 1 : 2) : 1;
  const uint64_t third = 6 - primary - backup;
  ASSERT_NE(primary, backup);
  const std::string ch = ChannelWithReplicas(primary, backup, "reads");
  NodeProcess &p = Node(primary), &b = Node(backup), &f = Node(third);
  ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(p, ch), backup); }, 20s));
  if (GetParam() == 3) {
    ASSERT_TRUE(EventuallyTrue([&] { return InSync(PartitionOn(p, ch), third); }, 20s));
  }
  constexpr uint64_t kCommitted = 3, kStalled = 2;
  std::string epoch;
  for (uint64_t i = 1; i <= kCommitted; ++i) {
    json r = ResultOf(Api(p, "publish", json{{"channel", ch}, {"data", {{"n", i}}}}.dump()));
    ASSERT_FALSE(r.is_null());
    ASSERT_EQ(r["offset"], i);
    epoch = r["epoch"].get<std::string>();
  }
  // The third node holds a live copy with everything committed so far (with R = 2 it follows
  // the channel for this subscriber; with R = 3 it is a backup).
  auto early = std::make_unique<RawSession>(ctx_, f.native(), 10'000);
  ASSERT_FALSE(ConnectAs(*early, "early").empty());
  auto r = early->Call("subscribe", P({{"channel", ch}}));
  ASSERT_TRUE(r && r->Has("result")) << ErrorCode(r);
  ASSERT_EQ(r->Uint("result.offset"), kCommitted);
  const int64_t held_before = MetricValue(f, "chorus_cluster_copy_uncommitted_tops_total");

  b.process().Signal(SIGSTOP);
  ASSERT_TRUE(EventuallyTrue([&] { return AllThreadsStopped(b.process().pid()); }, 5s));
  RawSession pubs(ctx_, p.native(), 10'000);
  ASSERT_FALSE(ConnectAs(pubs, "pub").empty());
  std::vector<uint64_t> ids;
  for (uint64_t i = kCommitted + 1; i <= kCommitted + kStalled; ++i) {
    ids.push_back(
        pubs.Send("publish", P({{"channel", ch}, {"data", "{\"n\":" + std::to_string(i) + "}"}})));
  }
  // Both publications are appended on the primary (waiting for their commit) and applied to
  // the third node's copy (two `top` records above the commit).
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        return MetricValue(p, "chorus_queue_depth{queue=\"uncommitted\"}") ==
               static_cast<int64_t>(kStalled);
      },
      10s));
  ASSERT_TRUE(EventuallyTrue(
      [&] {
        return MetricValue(f, "chorus_cluster_copy_uncommitted_tops_total") >=
               held_before + static_cast<int64_t>(kStalled);
      },
      10s));
  ASSERT_FALSE(pubs.Reply(ids.back(), 1ms)) << "answered before the stalled backup acked";

  // Every read on the primary and on the copy ends at the commit position.
  std::vector<std::unique_ptr<RawSession>> during;
  for (NodeProcess* n : {&p, &f}) {
    SCOPED_TRACE("node " + std::to_string(n == &p ? primary : third));
    EXPECT_EQ(ApiHistory(*n, ch), std::make_pair(kCommitted, size_t{kCommitted}));
    auto s = std::make_unique<RawSession>(ctx_, n->native(), 10'000);
    ASSERT_FALSE(ConnectAs(*s, "d").empty());
    auto h = s->Call("history", P({{"channel", ch}, {"limit", -1}}));
    ASSERT_TRUE(h && h->Has("result")) << ErrorCode(h);
    EXPECT_EQ(h->Uint("result.offset"), kCommitted);
    EXPECT_EQ(OffsetsOf(*h, "result.publications"), (std::vector<uint64_t>{1, 2, 3}));
    // A recovering subscribe: recovered up to the commit, positioned there.
    auto rec = s->Call("subscribe",
                       P({{"channel", ch}, {"recover", true}, {"epoch", epoch}, {"offset", 1}}));
    ASSERT_TRUE(rec && rec->Has("result")) << ErrorCode(rec);
    EXPECT_TRUE(rec->Bool("result.recovered"));
    EXPECT_EQ(rec->Uint("result.offset"), kCommitted);
    EXPECT_EQ(OffsetsOf(*rec, "result.publications"), (std::vector<uint64_t>{2, 3}));
    // A plain subscribe's position.
    auto plain = std::make_unique<RawSession>(ctx_, n->native(), 10'000);
    ASSERT_FALSE(ConnectAs(*plain, "e").empty());
    auto sr = plain->Call("subscribe", P({{"channel", ch}}));
    ASSERT_TRUE(sr && sr->Has("result")) << ErrorCode(sr);
    EXPECT_EQ(sr->Uint("result.offset"), kCommitted);
    EXPECT_EQ(sr->Str("result.epoch"), epoch);
    during.push_back(std::move(s));
    during.push_back(std::move(plain));
  }
  EXPECT_FALSE(early->Push("pub", ch, 200ms)) << "an uncommitted publication was delivered";

  // After SIGCONT the publications commit; the reads show them and every subscriber gets them
  // once, in order.
  b.process().Signal(SIGCONT);
  for (size_t k = 0; k < ids.size(); ++k) {
    auto a = pubs.Reply(ids[k], 15s);
    ASSERT_TRUE(a && a->Has("result")) << "publish " << k << ": " << ErrorCode(a);
    EXPECT_EQ(a->Uint("result.offset"), kCommitted + 1 + k);
  }
  const uint64_t top = kCommitted + kStalled;
  for (NodeProcess* n : {&p, &f}) {
    ASSERT_TRUE(EventuallyTrue([&] { return ApiHistory(*n, ch).first == top; }, 10s));
    EXPECT_EQ(ApiHistory(*n, ch).second, size_t{top});
  }
  during.push_back(std::move(early));
  for (auto& s : during) {
    std::vector<uint64_t> got;
    for (uint64_t i = kCommitted + 1; i <= top; ++i) {
      auto push = s->Push("pub", ch, 10s);
      ASSERT_TRUE(push) << "publication " << i << " not delivered";
      got.push_back(push->Uint("data.offset"));
    }
    EXPECT_EQ(got, (std::vector<uint64_t>{4, 5}));
    EXPECT_TRUE(s->Call("ping"));
    EXPECT_FALSE(s->Push("pub", ch, 100ms)) << "a publication was delivered twice";
  }
}

INSTANTIATE_TEST_SUITE_P(ReplicationFactor, NodeClusterReadsFault, ::testing::Values(2, 3),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return "R" + std::to_string(i.param);
                         });

}  // namespace
}  // namespace chorus::testing
