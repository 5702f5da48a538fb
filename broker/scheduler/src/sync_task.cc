// The reference sync task; the algorithm is seed 001 (docs/scheduler.md, "Reference sync task").
#include "broker/scheduler/sync_task.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <sstream>

namespace chorus::broker::scheduler {
namespace {

constexpr uint32_t kHashesPerHeartbeat = 32;

TaskOutcome Fail(const Status& s) {
  TaskOutcome o;
  o.ok = false;
  o.error = s.message;
  // A source that does not exist will not heal by retrying; other errors (an unreachable source,
  // a catalog that cannot be opened or written) are retried with backoff up to the limit.
  o.permanent = s.permanent || s.code == Errc::kBadRequest;
  return o;
}

TaskOutcome RevokedOutcome() {
  TaskOutcome o;
  o.ok = false;
  o.error = "lease revoked";
  return o;
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string ValidateConfig(const SyncConfig& c) {
  if (c.files_per_task == 0 || c.manifest_batch == 0 || c.max_rounds == 0) {
    return "files_per_task, manifest_batch and max_rounds must be positive";
  }
  if (c.batch.min == 0 || c.batch.min > c.batch.initial || c.batch.initial > c.batch.max) {
    return "batch sizes must satisfy 1 <= min <= initial <= max";
  }
  if (c.batch.target_latency_us <= 0) return "batch target latency must be positive";
  if (c.pool.size == 0) return "pool size must be positive";
  if (c.pool.acquire_timeout.count() < 0 || c.pool.backoff_base.count() < 0 ||
      c.pool.backoff_max < c.pool.backoff_base) {
    return "pool timeouts must satisfy 0 <= backoff_base <= backoff_max, acquire_timeout >= 0";
  }
  return {};
}

SyncTasks::SyncTasks(SyncConfig config, SourceFactory sources)
    : config_(std::move(config)), sources_(std::move(sources)) {
  assert(ValidateConfig(config_).empty());
  if (!sources_) {
    sources_ = [](const std::string& s) { return std::make_unique<DirectorySource>(s); };
  }
}

SyncTasks::~SyncTasks() = default;

std::vector<TaskSpec> SyncTasks::FirstTasks() {
  return {TaskSpec{"list", "", false}};
}

CatalogPool* SyncTasks::Pool(const std::string& catalog) {
  std::lock_guard lock(mu_);
  auto& p = pools_[catalog];
  if (!p) p = std::make_unique<CatalogPool>(catalog, config_.pool);
  return p.get();
}

TaskOutcome SyncTasks::Run(const Lease& l, TaskContext& ctx) {
  if (l.kind == "list") return List(l, ctx);
  if (l.kind == "sync") return Sync(l, ctx);
  if (l.kind == "diff") return Diff(l, ctx);
  if (l.kind == "finish") return Finish(l, ctx);
  return Fail({Errc::kBadRequest, "unknown task kind '" + l.kind + "'"});
}

TaskOutcome SyncTasks::List(const Lease& l, TaskContext& ctx) {
  ++counters_.lists;
  auto src = sources_(l.spec.source);
  Listing local;
  if (Status s = src->List(&local); !s.ok()) return Fail(s);
  if (!ctx.Heartbeat()) return RevokedOutcome();
  const std::string scope = Scope(l.spec);
  CatalogPool::Handle db;
  if (Status s = Pool(l.spec.catalog)->Acquire(&db); !s.ok()) return Fail(s);
  std::optional<Summary> last;
  if (Status s = db->LastKnown(scope, &last); !s.ok()) return Fail(s);
  TaskOutcome out;
  if (last && *last == local.summary) {  // seed 001: "do nothing and exit"
    ++counters_.unchanged;
    return out;
  }
  Summary remote;
  if (Status s = db->Aggregate(scope, &remote); !s.ok()) return Fail(s);
  if (Status s = db->StoreLastKnown(scope, remote); !s.ok()) return Fail(s);
  if (remote == local.summary) return out;
  std::vector<std::string> newer;
  for (const auto& e : local.entries) {
    if (e.version > remote.max_version) newer.push_back(e.path);
  }
  for (size_t i = 0; i < newer.size(); i += config_.files_per_task) {
    std::string payload;
    for (size_t j = i; j < std::min(newer.size(), i + config_.files_per_task); ++j) {
      payload += newer[j] + "\n";
    }
    out.children.push_back({"sync", std::move(payload), false});
  }
  // Equal versions with different counts (or the newest file deleted): a manifest diff.
  if (newer.empty()) out.children.push_back({"diff", "", false});
  out.children.push_back({"finish", "1", true});
  out.items_total = newer.size();
  return out;
}

TaskOutcome SyncTasks::Sync(const Lease& l, TaskContext& ctx) {
  auto src = sources_(l.spec.source);
  CatalogPool::Handle db;
  Upload up;
  if (Status s = UploadPaths(l, SplitLines(l.payload), *src, db, ctx, &up); !s.ok()) {
    return Fail(s);
  }
  if (up.revoked) return RevokedOutcome();
  TaskOutcome out;
  if (up.failed > 0) {
    // Rows skipped at the minimum batch size: the task fails so the scheduler retries it with
    // backoff; the re-run writes only the rows still missing (idempotent upserts).
    out.ok = false;
    out.error = std::to_string(up.failed) + " row(s) not written, first: " + up.errors.front();
    return out;
  }
  out.items_done = up.done;
  return out;
}

Status SyncTasks::UploadPaths(const Lease& l, const std::vector<std::string>& paths, Source& src,
                              CatalogPool::Handle& db, TaskContext& ctx, Upload* up) {
  // Hash first, without holding a catalog connection (the pool is for writes).
  std::vector<FileRow> rows;
  for (size_t i = 0; i < paths.size(); ++i) {
    SourceEntry e;
    FileRow r;
    Status s = src.Read(paths[i], &e, &r.hash);
    if (s.code == Errc::kSourceMissing) continue;  // deleted since listing: the diff handles it
    if (!s.ok()) return s;
    ++counters_.files_hashed;
    r.path = e.path;
    r.size = e.size;
    r.mtime_ns = e.mtime_ns;
    r.version = e.version;
    rows.push_back(std::move(r));
    if ((i + 1) % kHashesPerHeartbeat == 0 && !ctx.Heartbeat()) {
      up->revoked = true;
      return Status::Ok();
    }
  }
  if (!db) {
    if (Status s = Pool(l.spec.catalog)->Acquire(&db); !s.ok()) return s;
  }
  const std::string scope = Scope(l.spec);
  uint32_t remembered = 0;
  (void)db->TunedBatch(scope, &remembered);  // no history is fine: start from the default
  BatchTuner tuner(config_.batch, remembered);
  size_t i = 0;
  while (i < rows.size()) {
    const size_t n = std::min<size_t>(tuner.size(), rows.size() - i);
    std::vector<FileRow> batch(rows.begin() + static_cast<ptrdiff_t>(i),
                               rows.begin() + static_cast<ptrdiff_t>(i + n));
    uint64_t written = 0;
    const int64_t t0 = NowUs();
    Status s = db->UpsertBatch(scope, batch, &written);
    const int64_t latency = NowUs() - t0;
    if (config_.on_batch) config_.on_batch(static_cast<uint32_t>(n), s.ok());
    if (s.ok()) {
      tuner.OnSuccess(latency, static_cast<uint32_t>(n));
      up->done += n;
      i += n;
    } else if (n == 1 && tuner.at_min()) {  // seed 001: failure at minimum size, skip ahead
      ++up->failed;
      ++counters_.rows_skipped;
      if (up->errors.size() < 4) up->errors.push_back(rows[i].path + ": " + s.message);
      ++i;
    } else {
      tuner.OnFailure();
    }
    if (!ctx.Heartbeat()) {
      up->revoked = true;
      break;
    }
  }
  (void)db->StoreTunedBatch(scope, tuner.size());
  return Status::Ok();
}

TaskOutcome SyncTasks::Diff(const Lease& l, TaskContext& ctx) {
  auto src = sources_(l.spec.source);
  Listing local;
  if (Status s = src->List(&local); !s.ok()) return Fail(s);
  const std::string scope = Scope(l.spec);
  CatalogPool::Handle db;
  if (Status s = Pool(l.spec.catalog)->Acquire(&db); !s.ok()) return Fail(s);
  TaskOutcome out;
  std::string cursor;
  size_t li = 0;  // next local entry not yet compared
  std::vector<ManifestRow> rows;
  for (bool last = false; !last;) {
    if (Status s = db->Manifest(scope, cursor, config_.manifest_batch, &rows); !s.ok()) {
      return Fail(s);
    }
    last = rows.size() < config_.manifest_batch;
    // This step covers local paths up to the batch's last path (or all of them in the last step).
    size_t lend = li;
    while (lend < local.entries.size() && (last || local.entries[lend].path <= rows.back().path)) {
      ++lend;
    }
    std::vector<std::string> gone, upload;
    size_t r = 0, k = li;
    while (r < rows.size() || k < lend) {
      if (k == lend || (r < rows.size() && rows[r].path < local.entries[k].path)) {
        gone.push_back(rows[r++].path);  // in the catalog, not in the source
      } else if (r == rows.size() || local.entries[k].path < rows[r].path) {
        upload.push_back(local.entries[k++].path);  // in the source, not in the catalog
      } else {
        if (rows[r].version != local.entries[k].version) upload.push_back(local.entries[k].path);
        ++r;
        ++k;
      }
    }
    if (Status s = db->Delete(scope, gone); !s.ok()) return Fail(s);
    Upload up;
    if (Status s = UploadPaths(l, upload, *src, db, ctx, &up); !s.ok()) return Fail(s);
    if (up.revoked || !ctx.Heartbeat()) return RevokedOutcome();
    if (up.failed > 0) {
      return Fail({Errc::kCatalogError,
                   std::to_string(up.failed) + " row(s) not written, first: " + up.errors.front()});
    }
    out.items_total += upload.size();
    out.items_done += up.done;
    li = lend;
    if (!rows.empty()) cursor = rows.back().path;
  }
  return out;
}

TaskOutcome SyncTasks::Finish(const Lease& l, TaskContext& ctx) {
  TaskOutcome out;
  if (l.job_failed_tasks > 0) return out;  // the catalog may miss files: keep no summary
  auto src = sources_(l.spec.source);
  Listing local;
  if (Status s = src->List(&local); !s.ok()) return Fail(s);
  if (!ctx.Heartbeat()) return RevokedOutcome();
  const std::string scope = Scope(l.spec);
  CatalogPool::Handle db;
  if (Status s = Pool(l.spec.catalog)->Acquire(&db); !s.ok()) return Fail(s);
  Summary remote;
  if (Status s = db->Aggregate(scope, &remote); !s.ok()) return Fail(s);
  if (Status s = db->StoreLastKnown(scope, remote); !s.ok()) return Fail(s);
  const uint32_t round = static_cast<uint32_t>(std::max(1, std::atoi(l.payload.c_str())));
  if (remote != local.summary && round < config_.max_rounds) {
    out.children.push_back({"diff", "", false});
    out.children.push_back({"finish", std::to_string(round + 1), true});
  }
  return out;
}

}  // namespace chorus::broker::scheduler
