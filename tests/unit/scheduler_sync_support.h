// Test helpers for the reference sync task: temp trees, a job driver in simulated time over the
// real SyncTasks, and a catalog reader.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include "broker/scheduler/sync_task.h"

namespace chorus::broker::scheduler::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("chorus_sched_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& s) const { return (path_ / s).string(); }

 private:
  std::filesystem::path path_;
};

inline int64_t CtimeNs(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
}

inline void WriteFile(const std::string& file, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(file).parent_path());
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
}

// Rewrites `file` until its ctime moves past `before` (the kernel's ctime clock is coarse: a
// rewrite within the same tick keeps the old ctime). Bounded by one clock tick in practice.
inline void ModifyFile(const std::string& file, const std::string& content, int64_t before) {
  for (int i = 0; i < 1'000'000; ++i) {
    WriteFile(file, content);
    if (CtimeNs(file) > before) return;
  }
}

struct AlwaysAlive : TaskContext {
  bool Heartbeat() override { return true; }
};

// Runs one job to a final state through the core and `tasks`, one task at a time, jumping the
// simulated clock over backoffs.
inline JobInfo RunJob(Scheduler& s, SyncTasks& tasks, const JobSpec& spec) {
  static int64_t now = 0;
  auto id = s.Submit(spec, SyncTasks::FirstTasks(), now);
  if (!id) return JobInfo{};
  AlwaysAlive ctx;
  while (!IsFinal(s.Job(*id)->state)) {
    auto leases = s.Dispatch(now);
    if (leases.empty()) now = std::max(now + 1, s.NextWakeMs());
    for (auto& l : leases) (void)s.Complete(l.task, l.token, tasks.Run(l, ctx), ++now);
  }
  return *s.Job(*id);
}

// Every row of `scope` in the catalog, by path.
inline std::map<std::string, FileRow> CatalogRows(CatalogPool& pool, const std::string& scope) {
  std::map<std::string, FileRow> out;
  CatalogPool::Handle db;
  if (!pool.Acquire(&db).ok()) return out;
  std::vector<ManifestRow> rows;
  if (!db->Manifest(scope, "", 1'000'000, &rows).ok()) return out;
  for (const auto& r : rows) {
    std::optional<FileRow> f;
    if (db->Get(scope, r.path, &f).ok() && f) out[r.path] = *f;
  }
  return out;
}

// What the catalog must hold for the tree at `root`: every file with its hash and metadata.
inline std::map<std::string, FileRow> Expected(const std::string& root) {
  std::map<std::string, FileRow> out;
  DirectorySource src(root);
  Listing l;
  if (!src.List(&l).ok()) return out;
  for (const auto& e : l.entries) {
    FileRow r;
    SourceEntry x;
    if (!src.Read(e.path, &x, &r.hash).ok()) continue;
    r.path = x.path;
    r.size = x.size;
    r.mtime_ns = x.mtime_ns;
    r.version = x.version;
    out[r.path] = r;
  }
  return out;
}

}  // namespace chorus::broker::scheduler::testing
