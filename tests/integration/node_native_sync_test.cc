// Raw-wire tests of the native sync methods (docs/protocol/native.md N-22, N-23) against a real
// chorusd with the scheduler on: msgpack built by hand, not the client library. Real temp
// trees and SQLite catalogs, as node_sync_test.cc does for the server API.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "node_native_support.h"
#include "node_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;

NodeOptions SchedulerNode(const std::string& roots, const std::string& catalogs) {
  NodeOptions o;
  o.extra_toml = "\n[scheduler]\nenabled = true\nslots = 2\nlease_ms = 5000\nsource_roots = [\"" +
                 roots + "\"]\ncatalog_dir = \"" + catalogs + "\"\nprogress_interval_ms = 100\n";
  return o;
}

void MakeTree(const std::string& dir, int files) {
  for (int i = 0; i < files; ++i) {
    WriteFile(dir + "/d" + std::to_string(i % 5) + "/f" + std::to_string(i) + ".txt",
              "file " + std::to_string(i));
  }
}

size_t ArraySize(const Frame& f, const std::string& path) {
  const msgpack::object* a = f.Get(path);
  return a != nullptr && a->type == msgpack::type::ARRAY ? a->via.array.size : 0;
}

class NodeNativeSync : public NodeFixture {
 protected:
  void SetUp() override {
    roots_ = std::make_unique<TempDir>();
    catalogs_ = std::make_unique<TempDir>();
    MakeTree(*roots_ / "photos", 30);
    StartNode(SchedulerNode(roots_->path(), catalogs_->path()));
  }
  std::string Root(const std::string& name) const { return *roots_ / name; }

  // Polls sync_status {job} on `s` until the job is final; returns the last reply.
  std::optional<Frame> AwaitFinal(RawSession& s, uint64_t job) {
    std::optional<Frame> st;
    EXPECT_TRUE(EventuallyTrue(
        [&] {
          st = s.Call("sync_status", P({{"job", job}}));
          const std::string state = st ? st->Str("result.job.state") : "";
          return state == "succeeded" || state == "failed" || state == "cancelled";
        },
        std::chrono::seconds(20)));
    return st;
  }

  std::unique_ptr<TempDir> roots_, catalogs_;
};

TEST_F(NodeNativeSync, N22_SyncMethodsCarryTheServerApiParamsAndResults) {
  RawSession s = Session();
  ASSERT_FALSE(ConnectAs(s, "alice").empty());

  auto sub = s.Call("sync_submit", P({{"source", Root("photos")}, {"catalog", "main"}}));
  ASSERT_TRUE(sub && sub->Has("result.job")) << "no job";
  const uint64_t job = sub->Uint("result.job");
  EXPECT_GT(job, 0u);

  auto st = AwaitFinal(s, job);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->Uint("result.job.id"), job);
  EXPECT_EQ(st->Str("result.job.user"), "alice");
  EXPECT_EQ(st->Str("result.job.tier"), "normal");
  EXPECT_EQ(st->Str("result.job.state"), "succeeded");
  EXPECT_EQ(st->Str("result.job.phase"), "succeeded");
  EXPECT_EQ(st->Uint("result.job.done"), 30u);
  EXPECT_EQ(st->Uint("result.job.total"), 30u);
  EXPECT_GE(st->Uint("result.job.tasks.done"), 3u);  // list, sync, finish
  EXPECT_TRUE(st->Has("result.job.errors"));

  // By user (absent = the session's): the user's jobs, newest first.
  auto mine = s.Call("sync_status");
  ASSERT_TRUE(mine);
  EXPECT_EQ(ArraySize(*mine, "result.jobs"), 1u);
  // The same as the server API sees it.
  const HttpResult api = Api(*node_, "sync_status", "{\"job\":" + std::to_string(job) + "}");
  EXPECT_EQ(api.status, 200);
  EXPECT_NE(api.body.find("\"done\":30"), std::string::npos) << api.body;

  // The server API's refusals, with its codes; nothing reaches the scheduler.
  EXPECT_EQ(ErrorCode(s.Call("sync_cancel", P({{"job", job}}))), 113u);  // already finished
  EXPECT_EQ(ErrorCode(s.Call("sync_submit", P({{"catalog", "main"}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_submit", P({{"source", Root("missing")}, {"catalog", "c"}}))),
            107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_submit", P({{"source", "/etc"}, {"catalog", "c"}}))), 103u);
  EXPECT_EQ(
      ErrorCode(s.Call("sync_submit", P({{"source", Root("photos")}, {"catalog", "bad name!"}}))),
      107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_submit",
                             P({{"source", Root("photos")}, {"catalog", "c"}, {"tier", "gold"}}))),
            107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_submit", P({{"source", uint64_t{5}}, {"catalog", "c"}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_status", P({{"job", uint64_t{9999}}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_cancel", P({{"job", uint64_t{9999}}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_cancel")), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_status", P({{"job", "one"}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_status", P({{"job", job}, {"user", "alice"}}))), 107u);
  EXPECT_EQ(ErrorCode(s.Call("sync_nothing")), 104u);  // still N-7
  mine = s.Call("sync_status");
  ASSERT_TRUE(mine);
  EXPECT_EQ(ArraySize(*mine, "result.jobs"), 1u) << "a refused submit made a job";

  // A second job, cancelled: the reply is an empty map (or 113 if it already ended).
  MakeTree(Root("more"), 600);
  sub = s.Call("sync_submit", P({{"source", Root("more")}, {"catalog", "main"}}));
  ASSERT_TRUE(sub && sub->Has("result.job"));
  const uint64_t second = sub->Uint("result.job");
  auto cancel = s.Call("sync_cancel", P({{"job", second}}));
  ASSERT_TRUE(cancel);
  st = AwaitFinal(s, second);
  ASSERT_TRUE(st);
  if (ErrorCode(cancel) == 0) {
    EXPECT_TRUE(cancel->Has("result"));
    EXPECT_EQ(st->Str("result.job.state"), "cancelled");
  } else {
    EXPECT_EQ(ErrorCode(cancel), 113u);
    EXPECT_EQ(st->Str("result.job.state"), "succeeded");
  }
}

TEST(NodeNativeSyncDisabled, N22_SyncMethodsAnswerNotAvailableWhenTheSchedulerIsDisabled) {
  NodeProcess node{NodeOptions{}};
  ASSERT_TRUE(node.ready()) << node.banner();
  zmq::context_t ctx;
  {
    RawSession s(ctx, node.native());
    ASSERT_FALSE(ConnectAs(s, "alice").empty());
    EXPECT_EQ(ErrorCode(s.Call("sync_submit", P({{"source", "/tmp"}, {"catalog", "c"}}))), 108u);
    EXPECT_EQ(ErrorCode(s.Call("sync_status", P({{"job", uint64_t{1}}}))), 108u);
    EXPECT_EQ(ErrorCode(s.Call("sync_cancel", P({{"job", uint64_t{1}}}))), 108u);
  }
  EXPECT_TRUE(node.Stop());
}

TEST_F(NodeNativeSync, N23_ASessionManagesItsOwnUsersSyncsOnly) {
  RawSession alice = Session();
  RawSession bob = Session();
  RawSession anon = Session();
  ASSERT_FALSE(ConnectAs(alice, "alice").empty());
  ASSERT_FALSE(ConnectAs(bob, "bob").empty());
  ASSERT_FALSE(ConnectAs(anon, "").empty());

  // Submitting for someone else, or anonymously: 103, and no job is made.
  EXPECT_EQ(
      ErrorCode(bob.Call("sync_submit",
                         P({{"user", "alice"}, {"source", Root("photos")}, {"catalog", "c"}}))),
      103u);
  EXPECT_EQ(ErrorCode(anon.Call("sync_submit", P({{"source", Root("photos")}, {"catalog", "c"}}))),
            103u);
  EXPECT_EQ(ErrorCode(anon.Call("sync_status")), 103u);
  EXPECT_EQ(ErrorCode(bob.Call("sync_status", P({{"user", "alice"}}))), 103u);
  auto none = alice.Call("sync_status");
  ASSERT_TRUE(none);
  EXPECT_EQ(ArraySize(*none, "result.jobs"), 0u);

  // alice's own job (`user` naming herself is accepted).
  MakeTree(Root("big"), 800);
  auto sub =
      alice.Call("sync_submit", P({{"user", "alice"}, {"source", Root("big")}, {"catalog", "c"}}));
  ASSERT_TRUE(sub && sub->Has("result.job"));
  const uint64_t job = sub->Uint("result.job");

  // bob cannot see or cancel it: answered as an unknown job, and the job is untouched.
  EXPECT_EQ(ErrorCode(bob.Call("sync_status", P({{"job", job}}))), 107u);
  EXPECT_EQ(ErrorCode(bob.Call("sync_cancel", P({{"job", job}}))), 107u);
  EXPECT_EQ(ErrorCode(anon.Call("sync_cancel", P({{"job", job}}))), 103u);
  auto bobs = bob.Call("sync_status");
  ASSERT_TRUE(bobs);
  EXPECT_EQ(ArraySize(*bobs, "result.jobs"), 0u);

  auto st = AwaitFinal(alice, job);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->Str("result.job.state"), "succeeded") << "bob's cancel must not have reached it";
  EXPECT_EQ(st->Uint("result.job.done"), 800u);
}

}  // namespace
}  // namespace chorus::testing
