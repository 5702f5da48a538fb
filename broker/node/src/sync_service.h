// SyncService: the sync scheduler (broker/scheduler) as one chorusd node runs it
// (docs/scheduler.md, "Running in chorusd"). It turns the server API's sync_submit, sync_status
// and sync_cancel params into Runner calls, checks every input first (a source must be an
// existing directory under [scheduler] source_roots; a catalog is a name under catalog_dir that
// SQLite can open), and turns job state into progress events for channel `sync:<user>`.
//
// Threads and ownership: the SyncService object belongs to the engine thread (it is the
// engine's member; only the engine thread calls it). Every piece of scheduler state belongs to
// the Runner's owner thread and the tasks run on the Runner's worker threads; the engine thread
// reaches them only by messages (Runner::Submit/Status/Cancel/Stats post to the owner's bounded
// inbox and wait for its answer, which the owner gives without doing I/O). No lock of the
// engine is shared with those threads. Publishing the progress events stays on the engine
// thread: Tick() returns them and the engine publishes them through the normal channel path.
//
// In a cluster (engine_sync.cc): the engine calls this service for users whose `sync:<user>`
// primary is this node (other nodes forward the calls), and Adopt when a promotion hands it
// another owner's `s.<user>` copies (docs/scheduler.md "In a cluster").
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/config/config.h"
#include "broker/scheduler/runner.h"
#include "broker/scheduler/state_records.h"
#include "broker/scheduler/sync_task.h"
#include "chp/server.h"

namespace chorus::broker::node {

class SyncService {
 public:
  // An API answer: the HTTP status and the body ({"result": ...} or {"error": {code, message}}).
  struct Reply {
    int status = 200;
    nlohmann::json body;
  };
  // A progress event to publish: its channel (`sync:<user>`) and data (JSON text).
  struct Event {
    std::string channel;
    std::string data;
  };
  struct Counters {
    uint64_t submitted = 0, rejected = 0, progress_events = 0;
    uint64_t mirror_sets = 0, mirror_erases = 0, mirror_errors = 0, adopted_jobs = 0;
  };

  // The configuration must have passed ValidateConfig (enabled, roots and catalog_dir exist).
  // Empty error and a started runner, or the reason it cannot run. `member_id` (the cluster's,
  // >= 1; 0 = ids from 1 as in unit tests) selects this node's id block (IdBlock).
  static std::unique_ptr<SyncService> Create(const SchedulerSection& config, std::string* error,
                                             uint64_t member_id = 0);
  // Job and task ids unique across owners (docs/scheduler.md "Ids across owners"): member m
  // allocates in [(m mod 4096) << 40, +2^40), starting at 256 ids per second since 2026-01-01
  // into its block, so a restarted member starts above what it allocated before unless it
  // averaged more than 256 ids/s; every id stays below 2^52 (exact in JavaScript).
  struct IdBlock {
    uint64_t first = 1, limit = 0;
  };
  static IdBlock IdBlockOf(uint64_t member_id, int64_t wall_ms);
  ~SyncService();  // stops the runner (waits for running tasks to notice their revoked lease)
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // params {user, tier?, source, catalog} -> {job}.
  Reply Submit(const nlohmann::json& params, int64_t now_ms);
  // params {job} -> {job: {...}}; or {user} -> {jobs: [...]} (most recent first).
  Reply Status(const nlohmann::json& params);
  // params {job} -> {}.
  Reply Cancel(const nlohmann::json& params);

  // The native protocol's sync_submit / sync_status / sync_cancel (docs/protocol/native.md
  // N-22, N-23): `method` is one of those names; the call acts for `session_user` only. An
  // anonymous session, or a `user` param naming someone else, gets 103; a job of another user
  // is answered as an unknown job. Otherwise as Submit / Status / Cancel.
  Reply AsUser(std::string_view method, const std::string& session_user, nlohmann::json params,
               int64_t now_ms);
  // sync_submit / sync_status / sync_cancel by name (the server API's form); 404 otherwise.
  Reply Call(std::string_view method, const nlohmann::json& params, int64_t now_ms);
  // The user whose `sync:<user>` primary serves a call: params' `user` (any call), else the
  // session's user for a native call; "" when the call names no user (served where it arrives).
  static std::string RoutingUser(const nlohmann::json& params, const std::string& session_user);
  static bool IsSyncMethod(std::string_view method) {
    return method == "sync_submit" || method == "sync_status" || method == "sync_cancel";
  }

  // The progress events due at `now_ms`: per watched job at most one per progress interval when
  // something changed, and one final event when it ends (then it is no longer watched).
  std::vector<Event> Tick(int64_t now_ms);
  int64_t interval_ms() const { return config_.progress_interval_ms; }

  // Writes what changed in the scheduler's state into the node's CHP server, subtrees
  // `s.<user>` (state_records.h; at most kMirrorPerTick records per call, the rest on the next).
  // Engine thread (the server's owner).
  void Mirror(chp::Server& server);
  static constexpr size_t kMirrorPerTick = 4096;
  // Takes over `user`'s jobs from `records`, a copy of subtree `s.<user>` (keys "s.<user>/..."
  // or relative), e.g. on the node that became the primary of `sync:<user>`'s partition: the
  // jobs join this node's scheduler and tasks that were running elsewhere run again
  // (at-least-once). All or nothing. {jobs: [ids]} or an error reply (400: malformed records,
  // or ids this node already holds).
  // `in_server`: the records are in the node's CHP server as given (the caller adopted the
  // copy there); false: the mirror writes them anew.
  Reply Adopt(const std::string& user, const std::vector<scheduler::ChpRecord>& records,
              int64_t now_ms, bool in_server = true);

  scheduler::SchedulerStats Stats() { return runner_->Stats(); }
  // The bound scheduler.worker_endpoint ("" without external workers).
  std::string worker_endpoint() const { return runner_->worker_endpoint(); }
  // The scheduler's lines of /metrics (Prometheus text): `chorus_scheduler_*`.
  std::string MetricsText();
  const Counters& counters() const { return counters_; }
  size_t watched() const { return watched_.size(); }

  // The progress event data of a job (exposed for tests of the format).
  static nlohmann::json ProgressJson(const scheduler::JobInfo& info, int64_t elapsed_ms,
                                     bool final);
  static nlohmann::json JobJson(const scheduler::JobInfo& info);

 private:
  struct Watch {
    std::string user;
    int64_t started_ms = 0;
    int64_t last_pub_ms = 0;
    bool published = false;
    scheduler::JobState state = scheduler::JobState::kQueued;
    scheduler::JobCounts counts;
  };

  explicit SyncService(SchedulerSection config);
  Reply TrySubmit(const nlohmann::json& params, int64_t now_ms);
  // "" and the canonical directory, or the reason `source` is refused (status in *status).
  std::string ResolveSource(const std::string& source, std::string* resolved, int* status) const;
  // "" and the catalog's path, or the reason the catalog name or file is refused.
  std::string ResolveCatalog(const std::string& name, std::string* path);
  void Remember(scheduler::JobId id, const std::string& user, int64_t now_ms);

  const SchedulerSection config_;
  std::vector<std::string> roots_;  // canonical source roots
  std::string catalog_dir_;         // canonical
  std::string default_tier_;
  std::set<std::string> opened_catalogs_;  // names SQLite opened once (bounded)
  // Declared before the runner: the runner's workers use the tasks until the runner stops.
  std::unique_ptr<scheduler::SyncTasks> tasks_;
  std::unique_ptr<scheduler::Runner> runner_;
  std::map<scheduler::JobId, Watch> watched_;  // unfinished jobs submitted here
  // The last jobs of each user (for sync_status by user) and all remembered jobs, oldest first.
  std::unordered_map<std::string, std::deque<scheduler::JobId>> by_user_;
  std::deque<std::pair<scheduler::JobId, std::string>> remembered_;
  Counters counters_;
};

}  // namespace chorus::broker::node
