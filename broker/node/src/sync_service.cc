// SyncService (sync_service.h): input checks, Runner calls, progress events.
#include "sync_service.h"

#include <algorithm>
#include <filesystem>

#include "broker/core/errc.h"
#include "broker/scheduler/catalog.h"

namespace chorus::broker::node {
namespace {

namespace fs = std::filesystem;
namespace sch = scheduler;
using nlohmann::json;

constexpr size_t kJobsPerUser = 16;         // sync_status by user lists at most these
constexpr size_t kRememberedJobs = 10'000;  // jobs findable by user, all users together
constexpr size_t kOpenedCatalogs = 4096;    // catalog names known to open (then re-checked)
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxCatalogName = 64;

SyncService::Reply Error(int status, Errc code, const std::string& message) {
  return {status, json{{"error", {{"code", ToCode(code)}, {"message", message}}}}};
}
SyncService::Reply Bad(const std::string& why) {
  return Error(400, Errc::kBadRequest, "bad request: " + why);
}
SyncService::Reply Ok(json result) {
  return {200, json{{"result", std::move(result)}}};
}

// The answer for an error of the scheduler.
SyncService::Reply FromScheduler(const std::error_code& ec, const std::string& what) {
  if (ec.category() != sch::SchedulerCategory()) return Error(500, Errc::kInternal, ec.message());
  switch (static_cast<sch::Errc>(ec.value())) {
    case sch::Errc::kBadRequest:
    case sch::Errc::kUnknownTier:
      return Bad(what + ": " + ec.message());
    case sch::Errc::kUnknownJob:
      return Error(404, Errc::kBadRequest, what + ": unknown job");
    case sch::Errc::kJobFinished:
      return Error(409, Errc::kConflict, what + ": the job already finished");
    case sch::Errc::kLimitExceeded:
      return Error(429, Errc::kLimitExceeded, what + ": " + ec.message());
    case sch::Errc::kShuttingDown:
      return Error(503, Errc::kInternal, what + ": the node is shutting down");
    default:
      return Error(500, Errc::kInternal, what + ": " + ec.message());
  }
}

// The user part of channel `sync:<user>` (the scheduler core's JobSpec rule).
bool ValidUser(const std::string& u) {
  if (u.empty() || u.size() > 128) return false;
  return std::all_of(u.begin(), u.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '@' || c == '-';
  });
}

bool ValidCatalogName(const std::string& n) {
  if (n.empty() || n.size() > kMaxCatalogName) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// True when `path` is `root` or below it (both normalised, absolute).
bool Under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// Reads a required string member; "" and an error message in *why when absent or not a string.
bool RequiredString(const json& params, const char* key, std::string& out, std::string& why) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) {
    why = std::string(key) + " is required";
    return false;
  }
  if (!it->is_string()) {
    why = std::string(key) + " must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

// Reads `job` (a positive integer); false with *why otherwise.
bool ReadJob(const json& params, sch::JobId& job, std::string& why) {
  auto it = params.find("job");
  if (it == params.end() || it->is_null()) {
    why = "job is required";
    return false;
  }
  if (!it->is_number_unsigned() || it->get<uint64_t>() == 0) {
    why = "job must be a positive integer";
    return false;
  }
  job = it->get<uint64_t>();
  return true;
}

const char* Phase(const sch::JobInfo& info) {
  if (info.state == sch::JobState::kRunning) {
    return info.counts.items_total == 0 && info.counts.tasks_done == 0 ? "listing" : "syncing";
  }
  return sch::ToString(info.state);
}

}  // namespace

SyncService::IdBlock SyncService::IdBlockOf(uint64_t member_id, int64_t wall_ms) {
  if (member_id == 0) return {};
  constexpr uint64_t kBlock = uint64_t{1} << 40;
  constexpr int64_t k2026 = 1'767'225'600;  // 2026-01-01T00:00:00Z, s
  const uint64_t base = (member_id & 0xFFF) * kBlock;
  const uint64_t secs = static_cast<uint64_t>(std::max<int64_t>(0, wall_ms / 1000 - k2026));
  // Leave at least 2^36 ids to allocate (past year ~2530 every start begins there).
  const uint64_t offset = std::min<uint64_t>(secs << 8, kBlock - (uint64_t{1} << 36));
  return {base + offset + 1, base + kBlock};
}

std::unique_ptr<SyncService> SyncService::Create(const SchedulerSection& config, std::string* error,
                                                 uint64_t member_id) {
  std::unique_ptr<SyncService> s(new SyncService(config));
  sch::RunnerConfig rc;
  sch::SchedulerConfig& sc = rc.scheduler;
  sc.slots = config.slots;
  sc.tiers.clear();
  for (const std::string& t : config.tiers) {
    auto tier = ParseSchedulerTier(t);
    if (!tier) {
      *error = "scheduler.tiers: malformed " + t;
      return nullptr;
    }
    sc.tiers.push_back({tier->name, tier->quantum});
    if (tier->name == "normal") s->default_tier_ = "normal";
  }
  if (s->default_tier_.empty()) s->default_tier_ = sc.tiers.front().name;
  sc.lease_ms = config.lease_ms;
  sc.max_attempts = config.max_attempts;
  sc.backoff_base_ms = config.backoff_base_ms;
  sc.backoff_max_ms = config.backoff_max_ms;
  sc.max_jobs = kRememberedJobs;
  const IdBlock ids = IdBlockOf(member_id, static_cast<int64_t>(chp::WallMs()));
  sc.first_id = ids.first;
  sc.id_limit = ids.limit;
  rc.heartbeat_interval_ms = std::max<int64_t>(1, std::min<int64_t>(1000, config.lease_ms / 3));
  rc.workers.endpoint = config.worker_endpoint;
  rc.workers.max_workers = config.max_workers;
  if (std::string why = sch::ValidateConfig(rc); !why.empty()) {
    *error = "scheduler: " + why;
    return nullptr;
  }
  std::error_code ec;
  for (const std::string& root : config.source_roots) {
    fs::path canonical = fs::canonical(root, ec);
    if (ec) {
      *error = "scheduler.source_roots: cannot resolve " + root + ": " + ec.message();
      return nullptr;
    }
    s->roots_.push_back(canonical.string());
  }
  fs::path dir = fs::canonical(config.catalog_dir, ec);
  if (ec) {
    *error = "scheduler.catalog_dir: cannot resolve " + config.catalog_dir + ": " + ec.message();
    return nullptr;
  }
  s->catalog_dir_ = dir.string();
  sch::SyncConfig sync;
  sync.pool.size = config.catalog_pool_size;
  sync.files_per_task = config.files_per_task;
  s->tasks_ = std::make_unique<sch::SyncTasks>(std::move(sync));
  std::string bind_error;
  s->runner_ = std::make_unique<sch::Runner>(rc, sch::SyncExecutor(*s->tasks_), &bind_error);
  if (!bind_error.empty()) {
    *error = bind_error;
    return nullptr;
  }
  return s;
}

SyncService::SyncService(SchedulerSection config) : config_(std::move(config)) {}

SyncService::~SyncService() {
  if (runner_) runner_->Stop();
}

std::string SyncService::ResolveSource(const std::string& source, std::string* resolved,
                                       int* status) const {
  *status = 400;
  if (source.empty() || source.size() > kMaxPathBytes) return "source must be 1..4096 bytes";
  if (source.front() != '/') return "source must be an absolute path";
  // First by the text alone, so that nothing about paths outside the roots is revealed.
  const fs::path lexical = fs::path(source).lexically_normal();
  const auto under_any = [this](const fs::path& p) {
    return std::any_of(roots_.begin(), roots_.end(),
                       [&](const std::string& r) { return Under(p, fs::path(r)); });
  };
  if (!under_any(lexical)) {
    *status = 403;
    return "source is outside scheduler.source_roots";
  }
  std::error_code ec;
  const fs::path canonical = fs::canonical(lexical, ec);
  if (ec) return "source does not exist: " + source;
  if (!under_any(canonical)) {  // a symbolic link out of the roots
    *status = 403;
    return "source is outside scheduler.source_roots (through a symbolic link)";
  }
  if (!fs::is_directory(canonical, ec)) return "source is not a directory: " + source;
  *resolved = canonical.string();
  return "";
}

std::string SyncService::ResolveCatalog(const std::string& name, std::string* path) {
  if (!ValidCatalogName(name)) return "catalog must match ^[A-Za-z0-9_-]{1,64}$";
  *path = catalog_dir_ + "/" + name + ".db";
  if (opened_catalogs_.count(name) != 0) return "";
  std::unique_ptr<sch::Catalog> db;
  const sch::Status st = sch::Catalog::Open(*path, std::make_shared<sch::CatalogCounters>(),
                                            std::make_shared<sch::CatalogFaults>(), &db);
  if (!st.ok()) return "catalog cannot be opened: " + name + " (" + st.message + ")";
  if (opened_catalogs_.size() >= kOpenedCatalogs) opened_catalogs_.clear();
  opened_catalogs_.insert(name);
  return "";
}

SyncService::Reply SyncService::Submit(const json& params, int64_t now_ms) {
  Reply r = TrySubmit(params, now_ms);
  ++(r.status == 200 ? counters_.submitted : counters_.rejected);
  return r;
}

SyncService::Reply SyncService::TrySubmit(const json& params, int64_t now_ms) {
  std::string why;
  sch::JobSpec spec;
  spec.tier = default_tier_;
  if (!RequiredString(params, "user", spec.user, why)) return Bad(why);
  if (!ValidUser(spec.user)) return Bad("user must match ^[A-Za-z0-9_.@-]{1,128}$");
  if (params.contains("tier") && !params["tier"].is_null()) {
    if (!RequiredString(params, "tier", spec.tier, why)) return Bad(why);
  }
  std::string source, catalog;
  if (!RequiredString(params, "source", source, why) ||
      !RequiredString(params, "catalog", catalog, why)) {
    return Bad(why);
  }
  int status = 400;
  if (std::string e = ResolveSource(source, &spec.source, &status); !e.empty()) {
    return status == 403 ? Error(403, Errc::kPermissionDenied, "permission denied: " + e) : Bad(e);
  }
  if (std::string e = ResolveCatalog(catalog, &spec.catalog); !e.empty()) return Bad(e);
  auto id = runner_->Submit(spec, sch::SyncTasks::FirstTasks());
  if (!id) return FromScheduler(id.error(), "sync_submit");
  Remember(*id, spec.user, now_ms);
  return Ok({{"job", *id}});
}

void SyncService::Remember(sch::JobId id, const std::string& user, int64_t now_ms) {
  Watch w;
  w.user = user;
  w.started_ms = now_ms;
  watched_[id] = std::move(w);
  auto& jobs = by_user_[user];
  jobs.push_front(id);
  if (jobs.size() > kJobsPerUser) jobs.pop_back();
  remembered_.emplace_back(id, user);
  if (remembered_.size() > kRememberedJobs) {
    const auto [old, old_user] = remembered_.front();
    remembered_.pop_front();
    auto it = by_user_.find(old_user);
    if (it != by_user_.end()) {
      auto& list = it->second;
      list.erase(std::remove(list.begin(), list.end(), old), list.end());
      if (list.empty()) by_user_.erase(it);
    }
  }
}

SyncService::Reply SyncService::Status(const json& params) {
  const bool has_job = params.contains("job") && !params["job"].is_null();
  const bool has_user = params.contains("user") && !params["user"].is_null();
  if (has_job == has_user) return Bad("exactly one of job and user is required");
  std::string why;
  if (has_job) {
    sch::JobId job = 0;
    if (!ReadJob(params, job, why)) return Bad(why);
    auto info = runner_->Status(job);
    if (!info) return FromScheduler(info.error(), "sync_status " + std::to_string(job));
    return Ok({{"job", JobJson(*info)}});
  }
  std::string user;
  if (!RequiredString(params, "user", user, why)) return Bad(why);
  json jobs = json::array();
  if (auto it = by_user_.find(user); it != by_user_.end()) {
    for (sch::JobId id : it->second) {
      auto info = runner_->Status(id);
      if (info) jobs.push_back(JobJson(*info));  // a job the scheduler forgot is skipped
    }
  }
  return Ok({{"jobs", jobs}});
}

SyncService::Reply SyncService::Cancel(const json& params) {
  std::string why;
  sch::JobId job = 0;
  if (!ReadJob(params, job, why)) return Bad(why);
  auto r = runner_->Cancel(job);
  if (!r) return FromScheduler(r.error(), "sync_cancel " + std::to_string(job));
  return Ok(json::object());
}

SyncService::Reply SyncService::Call(std::string_view method, const json& params, int64_t now_ms) {
  if (method == "sync_submit") return Submit(params, now_ms);
  if (method == "sync_status") return Status(params);
  if (method == "sync_cancel") return Cancel(params);
  return Error(404, Errc::kMethodNotFound, "method not found: " + std::string(method));
}

std::string SyncService::RoutingUser(const json& params, const std::string& session_user) {
  if (params.is_object()) {
    auto it = params.find("user");
    if (it != params.end() && it->is_string()) return it->get<std::string>();
  }
  return session_user;
}

SyncService::Reply SyncService::AsUser(std::string_view method, const std::string& session_user,
                                       json params, int64_t now_ms) {
  if (!params.is_object()) return Bad("params must be a map");
  if (session_user.empty()) {
    return Error(403, Errc::kPermissionDenied,
                 "permission denied: sync methods need a session with a user");
  }
  const bool has_user = params.contains("user") && !params["user"].is_null();
  if (has_user && params["user"] != session_user) {
    return Error(403, Errc::kPermissionDenied,
                 "permission denied: a session manages its own user's syncs only");
  }
  if (method == "sync_submit") {
    params["user"] = session_user;
    return Submit(params, now_ms);
  }
  const bool has_job = params.contains("job") && !params["job"].is_null();
  if (method == "sync_status") {
    if (has_job && has_user) return Bad("exactly one of job and user is required");
    if (!has_job) {
      params["user"] = session_user;
      return Status(params);
    }
  }
  if (!has_job) return Bad("job is required");
  // By job: the job must be the session user's; another user's is answered as unknown.
  const Reply st = Status(json{{"job", params["job"]}});
  if (st.status != 200) return st;
  if (st.body["result"]["job"].value("user", "") != session_user) {
    return FromScheduler(sch::make_error_code(sch::Errc::kUnknownJob),
                         std::string(method) + " " + params["job"].dump());
  }
  if (method == "sync_status") return st;
  return Cancel(params);
}

std::vector<SyncService::Event> SyncService::Tick(int64_t now_ms) {
  std::vector<Event> out;
  for (auto it = watched_.begin(); it != watched_.end();) {
    Watch& w = it->second;
    auto info = runner_->Status(it->first);
    if (!info) {  // forgotten by the scheduler (or shutting down): nothing more to say
      it = watched_.erase(it);
      continue;
    }
    const bool final = sch::IsFinal(info->state);
    const bool changed = !w.published || info->state != w.state || info->counts != w.counts;
    const bool due = !w.published || now_ms - w.last_pub_ms >= config_.progress_interval_ms;
    if (final || (changed && due)) {
      const json data = ProgressJson(*info, now_ms - w.started_ms, final);
      out.push_back({"sync:" + w.user, data.dump()});
      ++counters_.progress_events;
      w.published = true;
      w.last_pub_ms = now_ms;
      w.state = info->state;
      w.counts = info->counts;
    }
    it = final ? watched_.erase(it) : std::next(it);
  }
  return out;
}

std::string SyncService::MetricsText() {
  const sch::SchedulerStats st = runner_->Stats();
  const Counters& sc = counters_;
  std::string out;
  auto metric = [&](const std::string& name, const char* type, const char* help, uint64_t v) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  metric("chorus_scheduler_queued", "gauge", "Sync tasks ready to run.", st.queued);
  metric("chorus_scheduler_running", "gauge", "Sync tasks holding a slot.", st.running);
  metric("chorus_scheduler_backoff", "gauge", "Sync tasks waiting to be retried.", st.backoff);
  metric("chorus_scheduler_free_slots", "gauge", "Free scheduler slots.", st.free_slots);
  metric("chorus_scheduler_jobs_live", "gauge", "Sync jobs not finished.", st.jobs_live);
  metric("chorus_scheduler_dispatched_total", "counter", "Leases handed out.", st.dispatched);
  metric("chorus_scheduler_completed_total", "counter", "Tasks completed.", st.completed);
  metric("chorus_scheduler_failed_total", "counter", "Tasks failed for good.", st.failed);
  metric("chorus_scheduler_retries_total", "counter", "Task retries.", st.retries);
  metric("chorus_scheduler_leases_expired_total", "counter", "Leases that expired.",
         st.leases_expired);
  metric("chorus_scheduler_stale_results_total", "counter",
         "Late results ignored (stale lease token).", st.stale_results);
  metric("chorus_scheduler_jobs_submitted_total", "counter", "Jobs accepted by sync_submit.",
         sc.submitted);
  metric("chorus_scheduler_jobs_rejected_total", "counter", "sync_submit calls refused.",
         sc.rejected);
  metric("chorus_scheduler_progress_events_total", "counter",
         "Progress events published on sync:<user>.", sc.progress_events);
  metric("chorus_scheduler_jobs_adopted_total", "counter",
         "Jobs taken over from another owner's s.<user> copy (failover).", sc.adopted_jobs);
  const sch::Runner::WorkerStats ws = runner_->Workers();
  metric("chorus_scheduler_workers_attached", "gauge", "External workers attached.", ws.attached);
  metric("chorus_scheduler_worker_slots", "gauge", "Slots of the attached external workers.",
         ws.slots);
  metric("chorus_scheduler_worker_busy", "gauge", "Leases held by external workers.", ws.busy);
  metric("chorus_scheduler_worker_hellos_refused_total", "counter",
         "Worker hellos refused (docs/protocol/worker.md WK-4).", ws.hellos_refused);
  metric("chorus_scheduler_workers_detached_total", "counter",
         "External workers detached after silence (WK-6).", ws.detached);
  out += "# HELP chorus_scheduler_tier_completed_total Tasks completed, by tier.\n";
  out += "# TYPE chorus_scheduler_tier_completed_total counter\n";
  for (const auto& [tier, n] : st.completed_by_tier) {
    out +=
        "chorus_scheduler_tier_completed_total{tier=\"" + tier + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

json SyncService::JobJson(const sch::JobInfo& info) {
  const sch::JobCounts& c = info.counts;
  return {{"id", info.id},
          {"user", info.spec.user},
          {"tier", info.spec.tier},
          {"source", info.spec.source},
          {"catalog", info.spec.catalog},
          {"state", sch::ToString(info.state)},
          {"phase", Phase(info)},
          {"done", c.items_done},
          {"failed", c.items_failed},
          {"total", c.items_total},
          {"tasks",
           {{"total", c.tasks_total},
            {"done", c.tasks_done},
            {"failed", c.tasks_failed},
            {"running", c.tasks_running},
            {"retries", c.retries},
            {"leases_expired", c.leases_expired}}},
          {"errors", info.errors},
          {"errors_dropped", info.errors_dropped}};
}

json SyncService::ProgressJson(const sch::JobInfo& info, int64_t elapsed_ms, bool final) {
  const sch::JobCounts& c = info.counts;
  const uint64_t finished = c.items_done + c.items_failed;
  const double seconds = static_cast<double>(std::max<int64_t>(elapsed_ms, 1)) / 1000.0;
  const double rate = static_cast<double>(finished) / seconds;  // items per second
  json eta = nullptr;                                           // ms; unknown before a rate
  if (final) {
    eta = 0;
  } else if (rate > 0 && c.items_total >= finished) {
    eta = static_cast<int64_t>(static_cast<double>(c.items_total - finished) / rate * 1000.0);
  }
  json j = {{"type", "sync_progress"},
            {"job", info.id},
            {"user", info.spec.user},
            {"state", sch::ToString(info.state)},
            {"phase", Phase(info)},
            {"done", c.items_done},
            {"failed", c.items_failed},
            {"total", c.items_total},
            {"rate", static_cast<double>(static_cast<int64_t>(rate * 10)) / 10},
            {"eta_ms", eta},
            {"final", final}};
  if (final) j["errors"] = info.errors;
  return j;
}

}  // namespace chorus::broker::node
