// The sync scheduler inside a real chorusd (docs/scheduler.md, "Running in chorusd"): the server
// API methods sync_submit / sync_status / sync_cancel over HTTP, progress events on channel
// `sync:<user>` to a raw native subscriber and in history, the scheduler's /metrics, and clear
// errors for bad input that leave other jobs untouched. Real temp trees, real SQLite catalogs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node_native_support.h"
#include "node_support.h"
#include "scheduler_sync_support.h"

namespace chorus::testing {
namespace {

using broker::scheduler::testing::TempDir;
using broker::scheduler::testing::WriteFile;
using nlohmann::json;

constexpr int64_t kProgressIntervalMs = 100;

struct ApiAnswer {
  int status = 0;
  json body;
  uint64_t code() const {
    return body.contains("error") ? body["error"].value("code", uint64_t{0}) : 0;
  }
  std::string message() const {
    return body.contains("error") ? body["error"].value("message", "") : "";
  }
};

ApiAnswer Call(const NodeProcess& node, const std::string& method, const json& params) {
  const HttpResult r = Api(node, method, params.dump());
  return {r.status, json::parse(r.body, nullptr, false)};
}

// A node with the scheduler enabled over `roots` / `catalogs` (the test config's namespaces
// include [namespaces.sync] with history).
NodeOptions SchedulerNode(const std::string& roots, const std::string& catalogs) {
  NodeOptions o;
  o.extra_toml =
      "\n[scheduler]\nenabled = true\nslots = 2\nlease_ms = 5000\n"
      "source_roots = [\"" +
      roots + "\"]\ncatalog_dir = \"" + catalogs +
      "\"\nprogress_interval_ms = " + std::to_string(kProgressIntervalMs) + "\n";
  return o;
}

void MakeTree(const std::string& dir, int files) {
  for (int i = 0; i < files; ++i) {
    WriteFile(dir + "/d" + std::to_string(i % 7) + "/f" + std::to_string(i) + ".txt",
              "content of file " + std::to_string(i));
  }
}

class NodeSync : public NodeFixture {
 protected:
  void SetUp() override {
    roots_ = std::make_unique<TempDir>();
    catalogs_ = std::make_unique<TempDir>();
    StartNode(SchedulerNode(roots_->path(), catalogs_->path()));
  }
  std::string Root(const std::string& name) const { return *roots_ / name; }

  // Submits and returns the job id (0 with a test failure when refused).
  uint64_t Submit(const std::string& user, const std::string& source, const std::string& catalog) {
    ApiAnswer a =
        Call(*node_, "sync_submit", {{"user", user}, {"source", source}, {"catalog", catalog}});
    EXPECT_EQ(a.status, 200) << a.body.dump();
    return a.body.contains("result") ? a.body["result"].value("job", uint64_t{0}) : 0;
  }
  json Status(uint64_t job) {
    ApiAnswer a = Call(*node_, "sync_status", {{"job", job}});
    EXPECT_EQ(a.status, 200) << a.body.dump();
    return a.body.contains("result") ? a.body["result"]["job"] : json::object();
  }
  // Waits for the job to reach a final state and returns its status.
  json AwaitFinal(uint64_t job) {
    json st;
    EXPECT_TRUE(EventuallyTrue(
        [&] {
          st = Status(job);
          const std::string s = st.value("state", "");
          return s == "succeeded" || s == "failed" || s == "cancelled";
        },
        std::chrono::seconds(20)))
        << st.dump();
    return st;
  }

  std::unique_ptr<TempDir> roots_, catalogs_;
};

TEST(NodeSyncDisabled, MethodsAnswerNotAvailableWhenTheSchedulerIsDisabled) {
  NodeProcess node;
  ASSERT_TRUE(node.ready()) << node.banner();
  for (const char* method : {"sync_submit", "sync_status", "sync_cancel"}) {
    ApiAnswer a = Call(node, method, {{"job", 1}});
    EXPECT_EQ(a.status, 404) << method;
    EXPECT_EQ(a.code(), 108u) << a.body.dump();
    EXPECT_NE(a.message().find("scheduler is disabled"), std::string::npos) << a.body.dump();
  }
  EXPECT_TRUE(node.Stop());
}

TEST_F(NodeSync, SubmitRunsTheJobAndStatusReportsItsCounts) {
  MakeTree(Root("alice"), 40);
  const uint64_t job = Submit("alice", Root("alice"), "main");
  ASSERT_NE(job, 0u);
  json st = AwaitFinal(job);
  EXPECT_EQ(st.value("state", ""), "succeeded") << st.dump();
  EXPECT_EQ(st.value("done", 0), 40) << st.dump();
  EXPECT_EQ(st.value("total", 0), 40) << st.dump();
  EXPECT_EQ(st.value("failed", -1), 0) << st.dump();
  EXPECT_EQ(st.value("user", ""), "alice");
  EXPECT_EQ(st.value("tier", ""), "normal");
  EXPECT_TRUE(st["errors"].empty()) << st.dump();
  // By user: the job is listed, most recent first.
  const uint64_t again = Submit("alice", Root("alice"), "main");  // unchanged: nothing to do
  ASSERT_NE(again, 0u);
  json second = AwaitFinal(again);
  EXPECT_EQ(second.value("state", ""), "succeeded");
  EXPECT_EQ(second.value("total", -1), 0) << "an unchanged tree has nothing to upload";
  ApiAnswer by_user = Call(*node_, "sync_status", {{"user", "alice"}});
  ASSERT_EQ(by_user.status, 200) << by_user.body.dump();
  const json jobs = by_user.body["result"]["jobs"];
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  EXPECT_EQ(jobs[0].value("id", uint64_t{0}), again);
  EXPECT_EQ(jobs[1].value("id", uint64_t{0}), job);
  ApiAnswer nobody = Call(*node_, "sync_status", {{"user", "nobody"}});
  EXPECT_TRUE(nobody.body["result"]["jobs"].empty()) << nobody.body.dump();
}

TEST_F(NodeSync, ProgressEventsReachASubscriberEndingInAFinalEventKeptInHistory) {
  constexpr int kFiles = 900;  // several sync tasks: progress has something to report
  MakeTree(Root("bob"), kFiles);
  RawSession sub = Session();
  ASSERT_FALSE(ConnectAs(sub, "bob").empty());
  auto subscribed = sub.Call("subscribe", P({{"channel", "sync:bob"}}));
  ASSERT_TRUE(subscribed && subscribed->Has("result"));

  const auto started = std::chrono::steady_clock::now();
  const uint64_t job = Submit("bob", Root("bob"), "bobcat");
  ASSERT_NE(job, 0u);
  std::vector<json> events;
  while (events.empty() || !events.back().value("final", false)) {
    auto push = sub.Push("pub", "sync:bob", std::chrono::seconds(20));
    ASSERT_TRUE(push) << "no progress event after " << events.size();
    events.push_back(json::parse(push->Str("data.data"), nullptr, false));
    sub.pushes().clear();
  }
  const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
  const json& last = events.back();
  EXPECT_EQ(last.value("type", ""), "sync_progress");
  EXPECT_EQ(last.value("job", uint64_t{0}), job);
  EXPECT_EQ(last.value("state", ""), "succeeded") << last.dump();
  EXPECT_EQ(last.value("done", 0), kFiles) << last.dump();
  EXPECT_EQ(last.value("total", 0), kFiles) << last.dump();
  EXPECT_EQ(last.value("failed", -1), 0) << last.dump();
  EXPECT_EQ(last.value("eta_ms", -1), 0);
  // Every event has the documented fields; counts never go back; exactly one final event.
  uint64_t done = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const json& e = events[i];
    for (const char* key : {"phase", "done", "failed", "total", "rate", "eta_ms", "final"}) {
      EXPECT_TRUE(e.contains(key)) << key << " missing in " << e.dump();
    }
    EXPECT_GE(e.value("done", uint64_t{0}), done) << e.dump();
    done = e.value("done", uint64_t{0});
    EXPECT_EQ(e.value("final", false), i + 1 == events.size());
  }
  // Rate limit: at most one non-final event per progress interval (plus the first).
  EXPECT_LE(static_cast<int64_t>(events.size()) - 1, elapsed_ms / kProgressIntervalMs + 1)
      << events.size() << " events in " << elapsed_ms << " ms";

  // A page reloading after the job ended gets its final state from history.
  ApiAnswer h = Call(*node_, "history", {{"channel", "sync:bob"}, {"limit", -1}});
  ASSERT_EQ(h.status, 200) << h.body.dump();
  const json pubs = h.body["result"]["publications"];
  ASSERT_FALSE(pubs.empty());
  EXPECT_EQ(pubs.size(), events.size());
  const json& stored = pubs.back()["data"];
  EXPECT_TRUE(stored.value("final", false)) << stored.dump();
  EXPECT_EQ(stored.value("done", 0), kFiles) << stored.dump();
  EXPECT_EQ(stored.value("state", ""), "succeeded");
}

TEST_F(NodeSync, BadInputGetsClearErrorsAndLeavesOtherJobsUntouched) {
  MakeTree(Root("carol"), 30);
  WriteFile(Root("plainfile"), "x");
  std::filesystem::create_directories(*catalogs_ / "blocked.db");  // SQLite cannot open a dir
  std::filesystem::create_symlink("/etc", Root("escape"));
  const uint64_t good = Submit("carol", Root("carol"), "cat");
  ASSERT_NE(good, 0u);

  struct Case {
    const char* what;
    json params;
    int status;
    uint64_t code;
    const char* message;
  };
  const std::string carol = Root("carol");
  const std::vector<Case> cases = {
      {"no user", {{"source", carol}, {"catalog", "c"}}, 400, 107, "user is required"},
      {"user not a string",
       {{"user", 5}, {"source", carol}, {"catalog", "c"}},
       400,
       107,
       "user must be a string"},
      {"user with a colon",
       {{"user", "a:b"}, {"source", carol}, {"catalog", "c"}},
       400,
       107,
       "user must match"},
      {"no source", {{"user", "dave"}, {"catalog", "c"}}, 400, 107, "source is required"},
      {"relative source",
       {{"user", "dave"}, {"source", "carol"}, {"catalog", "c"}},
       400,
       107,
       "absolute path"},
      {"missing source",
       {{"user", "dave"}, {"source", Root("nope")}, {"catalog", "c"}},
       400,
       107,
       "source does not exist"},
      {"source is a file",
       {{"user", "dave"}, {"source", Root("plainfile")}, {"catalog", "c"}},
       400,
       107,
       "not a directory"},
      {"outside the roots",
       {{"user", "dave"}, {"source", "/etc"}, {"catalog", "c"}},
       403,
       103,
       "outside scheduler.source_roots"},
      {"dot-dot out of the roots",
       {{"user", "dave"}, {"source", roots_->path() + "/../../etc"}, {"catalog", "c"}},
       403,
       103,
       "outside scheduler.source_roots"},
      {"symlink out of the roots",
       {{"user", "dave"}, {"source", Root("escape")}, {"catalog", "c"}},
       403,
       103,
       "symbolic link"},
      {"catalog path",
       {{"user", "dave"}, {"source", carol}, {"catalog", "../x"}},
       400,
       107,
       "catalog must match"},
      {"catalog cannot open",
       {{"user", "dave"}, {"source", carol}, {"catalog", "blocked"}},
       400,
       107,
       "catalog cannot be opened"},
      {"unknown tier",
       {{"user", "dave"}, {"tier", "gold"}, {"source", carol}, {"catalog", "c"}},
       400,
       107,
       "tier"},
  };
  for (const Case& c : cases) {
    ApiAnswer a = Call(*node_, "sync_submit", c.params);
    EXPECT_EQ(a.status, c.status) << c.what << ": " << a.body.dump();
    EXPECT_EQ(a.code(), c.code) << c.what << ": " << a.body.dump();
    EXPECT_NE(a.message().find(c.message), std::string::npos) << c.what << ": " << a.body.dump();
  }
  const std::vector<std::pair<std::string, Case>> other = {
      {"sync_status", {"unknown job", {{"job", 987654}}, 404, 107, "unknown job"}},
      {"sync_status", {"job not a number", {{"job", "x"}}, 400, 107, "positive integer"}},
      {"sync_status", {"neither", json::object(), 400, 107, "exactly one of job and user"}},
      {"sync_status", {"both", {{"job", 1}, {"user", "a"}}, 400, 107, "exactly one"}},
      {"sync_cancel", {"unknown job", {{"job", 987654}}, 404, 107, "unknown job"}},
      {"sync_cancel", {"job zero", {{"job", 0}}, 400, 107, "positive integer"}},
      {"sync_cancel", {"no job", json::object(), 400, 107, "job is required"}},
  };
  for (const auto& [method, c] : other) {
    ApiAnswer a = Call(*node_, method, c.params);
    EXPECT_EQ(a.status, c.status) << method << " " << c.what << ": " << a.body.dump();
    EXPECT_EQ(a.code(), c.code) << method << " " << c.what << ": " << a.body.dump();
    EXPECT_NE(a.message().find(c.message), std::string::npos) << c.what << ": " << a.body.dump();
  }
  // Nothing above reached the scheduler: the good job finishes with every file, alone.
  json st = AwaitFinal(good);
  EXPECT_EQ(st.value("state", ""), "succeeded") << st.dump();
  EXPECT_EQ(st.value("done", 0), 30) << st.dump();
  EXPECT_EQ(Call(*node_, "sync_status", {{"user", "dave"}}).body["result"]["jobs"].size(), 0u);
  // Cancelling a finished job is a conflict; the job keeps its state.
  ApiAnswer late = Call(*node_, "sync_cancel", {{"job", good}});
  EXPECT_EQ(late.status, 409) << late.body.dump();
  EXPECT_EQ(late.code(), 113u);
  EXPECT_EQ(Status(good).value("state", ""), "succeeded");
}

TEST_F(NodeSync, CancelEndsARunningJobWithAFinalEventAndLeavesOtherUsersJobsRunning) {
  constexpr int kFiles = 1000;  // hashing these takes far longer than the cancel round trip
  MakeTree(Root("frank"), kFiles);
  MakeTree(Root("grace"), 50);
  RawSession sub = Session();
  ASSERT_FALSE(ConnectAs(sub, "frank").empty());
  auto subscribed = sub.Call("subscribe", P({{"channel", "sync:frank"}}));
  ASSERT_TRUE(subscribed && subscribed->Has("result"));
  const uint64_t big = Submit("frank", Root("frank"), "shared");
  const uint64_t other = Submit("grace", Root("grace"), "shared");
  ASSERT_NE(big, 0u);
  ASSERT_NE(other, 0u);
  ApiAnswer c = Call(*node_, "sync_cancel", {{"job", big}});
  ASSERT_EQ(c.status, 200) << c.body.dump();
  json st = AwaitFinal(big);
  EXPECT_EQ(st.value("state", ""), "cancelled") << st.dump();
  EXPECT_LT(st.value("done", 0), kFiles) << st.dump();
  json last = json::object();
  while (!last.value("final", false)) {
    auto push = sub.Push("pub", "sync:frank", std::chrono::seconds(20));
    ASSERT_TRUE(push) << "no final event";
    last = json::parse(push->Str("data.data"), nullptr, false);
    sub.pushes().clear();
  }
  EXPECT_EQ(last.value("state", ""), "cancelled") << last.dump();
  EXPECT_EQ(last.value("job", uint64_t{0}), big);
  json g = AwaitFinal(other);
  EXPECT_EQ(g.value("state", ""), "succeeded") << g.dump();
  EXPECT_EQ(g.value("done", 0), 50) << g.dump();
  ApiAnswer again = Call(*node_, "sync_cancel", {{"job", big}});
  EXPECT_EQ(again.status, 409) << again.body.dump();
}

TEST_F(NodeSync, MetricsShowTheSchedulerCounters) {
  MakeTree(Root("erin"), 10);
  const uint64_t job = Submit("erin", Root("erin"), "erincat");
  ASSERT_NE(job, 0u);
  EXPECT_EQ(AwaitFinal(job).value("state", ""), "succeeded");
  HttpResult m = HttpRequest(node_->http_host(), node_->http_port(), "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  for (const char* line :
       {"chorus_scheduler_queued 0", "chorus_scheduler_running 0",
        "chorus_scheduler_leases_expired_total 0", "chorus_scheduler_retries_total 0",
        "chorus_scheduler_jobs_submitted_total 1", "chorus_scheduler_free_slots 2"}) {
    EXPECT_NE(m.body.find(std::string("\n") + line + "\n"), std::string::npos) << line;
  }
  // list + sync + finish at least, all completed by a normal-tier user.
  const std::string tier = "chorus_scheduler_tier_completed_total{tier=\"normal\"} ";
  const size_t at = m.body.find(tier);
  ASSERT_NE(at, std::string::npos) << m.body;
  EXPECT_GE(std::stoul(m.body.substr(at + tier.size())), 3u);
}

}  // namespace
}  // namespace chorus::testing
