// CatalogPool: a bounded pool of connections to one catalog (seed 000's first outage: too many
// database connections, each failure triggering a reconnect). At most `size` connections exist;
// a caller that finds none free waits in line (up to a deadline) instead of failing; a failed open
// starts an exponential backoff during which no caller tries to open again (no reconnect storm).
//
// Thread-safe: worker threads acquire and release concurrently. Its one mutex is a leaf lock
// (nothing else is locked while it is held; SQLite is never called under it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/scheduler/catalog.h"

namespace chorus::broker::scheduler {

struct PoolConfig {
  uint32_t size = 4;
  std::chrono::milliseconds acquire_timeout{30'000};
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{10'000};
};

struct PoolStats {
  uint64_t open = 0, peak_open = 0, waits = 0, acquire_timeouts = 0, open_attempts = 0;
  uint64_t refused_in_backoff = 0;
};

class CatalogPool {
 public:
  class Handle;

  CatalogPool(std::string path, PoolConfig config, std::shared_ptr<CatalogFaults> faults = {});
  ~CatalogPool();

  // A connection, or kCatalogError (open failed or in backoff after a failure: the message says
  // which) or kCatalogError after acquire_timeout spent waiting in line.
  Status Acquire(Handle* out);
  PoolStats Stats() const;
  const std::shared_ptr<CatalogCounters>& counters() const { return counters_; }
  const std::shared_ptr<CatalogFaults>& faults() const { return faults_; }
  const std::string& path() const { return path_; }

  // A borrowed connection; returned to the pool on destruction. MarkBroken() closes it instead
  // (after an error that may have left the connection unusable).
  class Handle {
   public:
    Handle() = default;
    ~Handle() { Reset(); }
    Handle(Handle&& o) noexcept { *this = std::move(o); }
    Handle& operator=(Handle&& o) noexcept;
    Catalog* operator->() const { return conn_.get(); }
    Catalog& operator*() const { return *conn_; }
    explicit operator bool() const { return conn_ != nullptr; }
    void MarkBroken() { broken_ = true; }
    void Reset();

   private:
    friend class CatalogPool;
    CatalogPool* pool_ = nullptr;
    std::unique_ptr<Catalog> conn_;
    bool broken_ = false;
  };

 private:
  void Release(std::unique_ptr<Catalog> conn, bool broken);

  const std::string path_;
  const PoolConfig config_;
  std::shared_ptr<CatalogCounters> counters_;
  std::shared_ptr<CatalogFaults> faults_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Catalog>> idle_;  // guarded by mu_
  uint32_t open_ = 0;                           // connections existing or being opened
  uint32_t failures_ = 0;                       // consecutive open failures
  std::chrono::steady_clock::time_point retry_at_{};
  std::string last_error_;
  PoolStats stats_;
};

}  // namespace chorus::broker::scheduler
