// Catalog: one connection to a sync catalog in embedded SQLite (WAL mode), holding per scope
// (one user's source) a row per file (path, size, mtime, content hash, version), the last known
// remote summary (seed 001) and the tuned batch size. A Catalog is used by one thread at a time
// (it is handed out by CatalogPool); the counters it updates are shared and atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "broker/scheduler/source.h"

struct sqlite3;

namespace chorus::broker::scheduler {

struct FileRow {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t version = 0;
  std::string hash;
  bool operator==(const FileRow&) const = default;
};

struct ManifestRow {
  std::string path;
  int64_t version = 0;
};

// What the catalog did, counted over every connection of a pool (for tests, /metrics, bench).
struct CatalogCounters {
  std::atomic<uint64_t> opens{0}, open_failures{0};
  std::atomic<uint64_t> summary_reads{0};      // last-known-remote lookups: one row by key
  std::atomic<uint64_t> aggregate_queries{0};  // COUNT/MAX over a scope (the "remote version")
  std::atomic<uint64_t> rows_read{0};          // manifest rows read
  std::atomic<uint64_t> rows_written{0};       // rows inserted or changed
  std::atomic<uint64_t> rows_deleted{0};
  std::atomic<uint64_t> batches_ok{0}, batches_failed{0};
};

// Test and bench hooks: make batch writes fail or slow. Shared by a pool's connections.
struct CatalogFaults {
  std::atomic<int64_t> fail_batches{0};     // the next N batch writes fail (then roll back)
  std::atomic<int64_t> fail_above_rows{0};  // batches with more rows than this fail (0: off)
  std::atomic<int64_t> delay_us_per_row{0};
};

class Catalog {
 public:
  // Opens (creating if needed) the catalog at `path` in WAL mode.
  static Status Open(const std::string& path, std::shared_ptr<CatalogCounters> counters,
                     std::shared_ptr<CatalogFaults> faults, std::unique_ptr<Catalog>* out);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // The last known remote summary of `scope`, if one was stored (one row read by key).
  Status LastKnown(const std::string& scope, std::optional<Summary>* out);
  Status StoreLastKnown(const std::string& scope, const Summary& s);
  // The current summary of `scope` (an aggregate query over the scope's index).
  Status Aggregate(const std::string& scope, Summary* out);
  // Inserts or updates `rows` in one transaction; a row already equal is not written again
  // (idempotent). Adds the number of rows written to *written.
  Status UpsertBatch(const std::string& scope, const std::vector<FileRow>& rows, uint64_t* written);
  // Up to `limit` rows of `scope` with path > after, ordered by path.
  Status Manifest(const std::string& scope, const std::string& after, size_t limit,
                  std::vector<ManifestRow>* out);
  Status Delete(const std::string& scope, const std::vector<std::string>& paths);
  Status Get(const std::string& scope, const std::string& path, std::optional<FileRow>* out);
  Status TunedBatch(const std::string& scope, uint32_t* size);  // 0 when none stored
  Status StoreTunedBatch(const std::string& scope, uint32_t size);

 private:
  Catalog(sqlite3* db, std::string path, std::shared_ptr<CatalogCounters> counters,
          std::shared_ptr<CatalogFaults> faults);
  Status Exec(const char* sql);
  Status Error(const std::string& what) const;

  sqlite3* db_;
  std::string path_;
  std::shared_ptr<CatalogCounters> counters_;
  std::shared_ptr<CatalogFaults> faults_;
};

}  // namespace chorus::broker::scheduler
