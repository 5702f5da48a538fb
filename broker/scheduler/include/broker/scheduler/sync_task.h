// SyncTasks: the reference sync task (seed 001) — a source (directory tree) into a catalog
// (SQLite) — split into scheduler tasks so that no step is a barrier across jobs:
//   list   — lists the source (metadata only); if its (count, max version, max mtime) equals the
//            catalog's last known remote, stops (one key read, no row read). Otherwise reads the
//            catalog's summary, stores it as last known, and emits `sync` tasks for the files
//            newer than the catalog, or a `diff` when only counts differ, plus a final `finish`.
//   sync   — hashes its files, then upserts them in batches whose size adapts (BatchTuner).
//   diff   — compares catalog and source manifests batch by batch: deletes rows whose file is
//            gone, uploads files missing or different in the catalog.
//   finish — (final task) reads the catalog's summary, stores it as last known; if it still
//            differs from the source, emits another diff + finish (at most 3 rounds).
// Results are idempotent: a row already equal is not rewritten, so a re-run after a crash writes
// each file exactly once. docs/scheduler.md, "Reference sync task".
//
// Thread-safe: Run is called concurrently by worker threads. Lock order: the pool registry mutex
// is taken alone and released before any pool is used.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/scheduler/batch_tuner.h"
#include "broker/scheduler/catalog_pool.h"
#include "broker/scheduler/scheduler.h"
#include "broker/scheduler/source.h"

namespace chorus::broker::scheduler {

// What a running task can ask of whoever runs it.
class TaskContext {
 public:
  virtual ~TaskContext() = default;
  // Renews the task's lease. False when the lease is gone (expired or job cancelled): the task
  // should stop, its result will be ignored anyway.
  virtual bool Heartbeat() = 0;
};

struct SyncConfig {
  uint32_t files_per_task = 256;  // files per `sync` task
  uint32_t manifest_batch = 512;  // catalog rows per manifest comparison step
  uint32_t max_rounds = 3;        // finish → diff → finish rounds before giving up for this run
  BatchTunerConfig batch;
  PoolConfig pool;
  std::function<void(uint32_t rows, bool ok)> on_batch;  // test hook: every batch write
};

// Empty when `config` is usable, else the reason.
std::string ValidateConfig(const SyncConfig& config);

struct SyncCounters {
  std::atomic<uint64_t> lists{0}, unchanged{0}, files_hashed{0}, rows_skipped{0};
};

class SyncTasks {
 public:
  using SourceFactory = std::function<std::unique_ptr<Source>(const std::string& source)>;

  // `config` must pass ValidateConfig. `sources` makes a Source from a job's source string
  // (default: DirectorySource).
  explicit SyncTasks(SyncConfig config, SourceFactory sources = {});
  ~SyncTasks();

  // The first tasks of every sync job (its listing).
  static std::vector<TaskSpec> FirstTasks();
  // The catalog scope of a job: its user and source.
  static std::string Scope(const JobSpec& spec) { return spec.user + ":" + spec.source; }

  TaskOutcome Run(const Lease& lease, TaskContext& ctx);
  // The pool of a catalog (created on first use). Never null.
  CatalogPool* Pool(const std::string& catalog);
  SyncCounters& counters() { return counters_; }

 private:
  struct Upload {
    uint64_t done = 0, failed = 0;
    std::vector<std::string> errors;
    bool revoked = false;
  };

  TaskOutcome List(const Lease& l, TaskContext& ctx);
  TaskOutcome Sync(const Lease& l, TaskContext& ctx);
  TaskOutcome Diff(const Lease& l, TaskContext& ctx);
  TaskOutcome Finish(const Lease& l, TaskContext& ctx);
  // Hashes `paths` (gone files are skipped) and writes them in adaptive batches.
  Status UploadPaths(const Lease& l, const std::vector<std::string>& paths, Source& src,
                     CatalogPool::Handle& db, TaskContext& ctx, Upload* up);

  SyncConfig config_;
  SourceFactory sources_;
  SyncCounters counters_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<CatalogPool>> pools_;  // guarded by mu_
};

}  // namespace chorus::broker::scheduler
