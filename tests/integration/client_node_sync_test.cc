// chorus::client's sync methods (client/cpp; native.md N-22, N-23) against a real chorusd with
// the scheduler on: submit, status by job and the user's jobs, cancel of a finished job (113),
// refusals with the node's codes, and the job's progress events seen by the same client on
// channel sync:<user>. No raw frames (node_native_sync_test.cc speaks the wire format).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "chorus/client/client.h"
#include "node_native_support.h"
#include "node_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

namespace cc = chorus::client;
using namespace std::chrono_literals;
using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;

cc::ClientOptions Options(const NodeProcess& node, const std::string& user) {
  cc::ClientOptions o;
  o.endpoints = {node.native()};
  o.user = user;
  o.request_timeout = 2s;
  o.seed = 1;
  return o;
}

TEST(ClientNodeSync, N22_SubmitStatusJobsAndCancelThroughTheClient) {
  TempDir roots, catalogs;
  for (int i = 0; i < 40; ++i) {
    WriteFile(roots / ("docs/d" + std::to_string(i % 4) + "/f" + std::to_string(i)),
              "file " + std::to_string(i));
  }
  NodeOptions o;
  o.extra_toml = "\n[scheduler]\nenabled = true\nslots = 2\nsource_roots = [\"" + roots.path() +
                 "\"]\ncatalog_dir = \"" + catalogs.path() + "\"\nprogress_interval_ms = 100\n";
  NodeProcess node(o);
  ASSERT_TRUE(node.ready()) << node.banner();
  zmq::context_t ctx;
  {
    cc::Client alice(ctx, Options(node, "alice"));
    ASSERT_TRUE(alice.ConnectSync(5s));

    // The progress events of alice's jobs, as any subscriber of sync:alice gets them.
    std::vector<std::string> events;
    cc::SubscriptionHandlers h;
    h.on_publication = [&](const cc::Publication& p) { events.push_back(p.data); };
    ASSERT_TRUE(alice.Subscribe("sync:alice", {}, std::move(h)));
    ASSERT_TRUE(EventuallyTrue(
        [&] {
          alice.RunOnce(10ms);
          return alice.IsSubscribed("sync:alice");
        },
        5s));

    auto job = alice.SyncSubmitSync({roots / "docs", "main", ""});
    ASSERT_TRUE(job) << job.error();
    cc::SyncJob st;
    ASSERT_TRUE(EventuallyTrue(
        [&] {
          auto r = alice.SyncStatusSync(*job);
          if (r) st = *r;
          return r && r->final();
        },
        20s))
        << st.state;
    EXPECT_EQ(st.id, *job);
    EXPECT_EQ(st.user, "alice");
    EXPECT_EQ(st.tier, "normal");
    EXPECT_EQ(st.state, "succeeded");
    EXPECT_EQ(st.done, 40u);
    EXPECT_EQ(st.total, 40u);
    EXPECT_GE(st.tasks.done, 3u);
    EXPECT_TRUE(st.errors.empty());

    auto jobs = alice.SyncJobsSync();
    ASSERT_TRUE(jobs) << jobs.error();
    ASSERT_EQ(jobs->size(), 1u);
    EXPECT_EQ(jobs->front(), st);

    auto cancel = alice.SyncCancelSync(*job);
    ASSERT_FALSE(cancel);
    EXPECT_TRUE(cancel.error().Is(cc::Errc::kConflict)) << cancel.error();
    auto outside = alice.SyncSubmitSync({"/etc", "main", ""});
    ASSERT_FALSE(outside);
    EXPECT_TRUE(outside.error().Is(cc::Errc::kPermissionDenied)) << outside.error();
    auto tier = alice.SyncSubmitSync({roots / "docs", "main", "gold"});
    ASSERT_FALSE(tier);
    EXPECT_TRUE(tier.error().Is(cc::Errc::kBadRequest)) << tier.error();
    auto unknown = alice.SyncStatusSync(9999);
    ASSERT_FALSE(unknown);
    EXPECT_TRUE(unknown.error().Is(cc::Errc::kBadRequest)) << unknown.error();

    // The final progress event reached the subscription.
    ASSERT_TRUE(EventuallyTrue(
        [&] {
          alice.RunOnce(10ms);
          return !events.empty() && events.back().find("\"final\":true") != std::string::npos;
        },
        5s));
    EXPECT_NE(events.back().find("\"done\":40"), std::string::npos) << events.back();

    // Another user does not see alice's job (N-23).
    cc::Client bob(ctx, Options(node, "bob"));
    ASSERT_TRUE(bob.ConnectSync(5s));
    auto theirs = bob.SyncStatusSync(*job);
    ASSERT_FALSE(theirs);
    EXPECT_TRUE(theirs.error().Is(cc::Errc::kBadRequest)) << theirs.error();
    auto bobs = bob.SyncJobsSync();
    ASSERT_TRUE(bobs);
    EXPECT_TRUE(bobs->empty());
    alice.Disconnect();
    bob.Disconnect();
  }
  EXPECT_TRUE(node.Stop());
}

}  // namespace
}  // namespace chorus::testing
