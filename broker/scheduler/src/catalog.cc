#include "broker/scheduler/catalog.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace chorus::broker::scheduler {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS files (
  scope TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  version INTEGER NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (scope, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_version ON files (scope, version);
CREATE TABLE IF NOT EXISTS remote_summary (
  scope TEXT PRIMARY KEY, count INTEGER NOT NULL, max_version INTEGER NOT NULL,
  max_mtime INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tuning (scope TEXT PRIMARY KEY, batch INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

}  // namespace

Status Catalog::Open(const std::string& path, std::shared_ptr<CatalogCounters> counters,
                     std::shared_ptr<CatalogFaults> faults, std::unique_ptr<Catalog>* out) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "catalog '" + path +
                      "' cannot be opened: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    ++counters->open_failures;
    return {Errc::kCatalogError, msg};
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Catalog> c(new Catalog(db, path, std::move(counters), std::move(faults)));
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchema}) {
    if (Status s = c->Exec(sql); !s.ok()) {
      ++c->counters_->open_failures;
      return s;
    }
  }
  ++c->counters_->opens;
  *out = std::move(c);
  return Status::Ok();
}

Catalog::Catalog(sqlite3* db, std::string path, std::shared_ptr<CatalogCounters> counters,
                 std::shared_ptr<CatalogFaults> faults)
    : db_(db), path_(std::move(path)), counters_(std::move(counters)), faults_(std::move(faults)) {}

Catalog::~Catalog() {
  sqlite3_close(db_);
}

Status Catalog::Error(const std::string& what) const {
  return {Errc::kCatalogError, "catalog '" + path_ + "': " + what + ": " + sqlite3_errmsg(db_)};
}

Status Catalog::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = "catalog '" + path_ + "': " + (err ? err : "error");
    sqlite3_free(err);
    return {Errc::kCatalogError, msg};
  }
  return Status::Ok();
}

Status Catalog::LastKnown(const std::string& scope, std::optional<Summary>* out) {
  Stmt s(db_, "SELECT count, max_version, max_mtime FROM remote_summary WHERE scope = ?");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope);
  ++counters_->summary_reads;
  const int rc = s.Step();
  if (rc == SQLITE_ROW) {
    *out = Summary{static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Int(2)};
  } else if (rc == SQLITE_DONE) {
    out->reset();
  } else {
    return Error("read last known remote");
  }
  return Status::Ok();
}

Status Catalog::StoreLastKnown(const std::string& scope, const Summary& sum) {
  Stmt s(db_, "INSERT OR REPLACE INTO remote_summary VALUES (?, ?, ?, ?)");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope).Bind(2, static_cast<int64_t>(sum.count)).Bind(3, sum.max_version);
  s.Bind(4, sum.max_mtime);
  return s.Step() == SQLITE_DONE ? Status::Ok() : Error("store last known remote");
}

Status Catalog::Aggregate(const std::string& scope, Summary* out) {
  Stmt s(db_,
         "SELECT COUNT(*), COALESCE(MAX(version), 0), COALESCE(MAX(mtime_ns), 0) FROM files "
         "WHERE scope = ?");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope);
  ++counters_->aggregate_queries;
  if (s.Step() != SQLITE_ROW) return Error("aggregate");
  *out = Summary{static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Int(2)};
  return Status::Ok();
}

Status Catalog::UpsertBatch(const std::string& scope, const std::vector<FileRow>& rows,
                            uint64_t* written) {
  if (const int64_t d = faults_->delay_us_per_row.load(); d > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(d * static_cast<int64_t>(rows.size())));
  }
  const int64_t above = faults_->fail_above_rows.load();
  int64_t pending = faults_->fail_batches.load();
  while (pending > 0 && !faults_->fail_batches.compare_exchange_weak(pending, pending - 1)) {
  }
  if ((above > 0 && static_cast<int64_t>(rows.size()) > above) || pending > 0) {
    ++counters_->batches_failed;
    return {Errc::kCatalogError, "catalog '" + path_ + "': injected batch failure"};
  }
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) {
    ++counters_->batches_failed;
    return s;
  }
  // The WHERE clause makes a re-run idempotent: a row that already holds this version and
  // content is not written again.
  Stmt s(db_,
         "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, path) DO UPDATE SET "
         "size = excluded.size, mtime_ns = excluded.mtime_ns, version = excluded.version, "
         "hash = excluded.hash WHERE files.version IS NOT excluded.version OR files.hash IS NOT "
         "excluded.hash OR files.size IS NOT excluded.size OR files.mtime_ns IS NOT "
         "excluded.mtime_ns");
  uint64_t n = 0;
  bool failed = !s.ok();
  for (size_t i = 0; !failed && i < rows.size(); ++i) {
    const auto& r = rows[i];
    s.Bind(1, scope).Bind(2, r.path).Bind(3, static_cast<int64_t>(r.size)).Bind(4, r.mtime_ns);
    s.Bind(5, r.version).Bind(6, r.hash);
    failed = s.Step() != SQLITE_DONE;
    n += static_cast<uint64_t>(sqlite3_changes(db_));
    s.Reset();
  }
  if (failed) {
    Status err = Error("upsert");
    (void)Exec("ROLLBACK");
    ++counters_->batches_failed;
    return err;
  }
  if (Status c = Exec("COMMIT"); !c.ok()) {
    (void)Exec("ROLLBACK");
    ++counters_->batches_failed;
    return c;
  }
  ++counters_->batches_ok;
  counters_->rows_written += n;
  *written += n;
  return Status::Ok();
}

Status Catalog::Manifest(const std::string& scope, const std::string& after, size_t limit,
                         std::vector<ManifestRow>* out) {
  out->clear();
  Stmt s(db_, "SELECT path, version FROM files WHERE scope = ? AND path > ? ORDER BY path LIMIT ?");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope).Bind(2, after).Bind(3, static_cast<int64_t>(limit));
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out->push_back({s.Text(0), s.Int(1)});
  if (rc != SQLITE_DONE) return Error("manifest");
  counters_->rows_read += out->size();
  return Status::Ok();
}

Status Catalog::Delete(const std::string& scope, const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::Ok();
  if (Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Stmt s(db_, "DELETE FROM files WHERE scope = ? AND path = ?");
  bool failed = !s.ok();
  uint64_t n = 0;
  for (size_t i = 0; !failed && i < paths.size(); ++i) {
    s.Bind(1, scope).Bind(2, paths[i]);
    failed = s.Step() != SQLITE_DONE;
    n += static_cast<uint64_t>(sqlite3_changes(db_));
    s.Reset();
  }
  if (failed || !Exec("COMMIT").ok()) {
    Status err = Error("delete");
    (void)Exec("ROLLBACK");
    return err;
  }
  counters_->rows_deleted += n;
  return Status::Ok();
}

Status Catalog::Get(const std::string& scope, const std::string& path,
                    std::optional<FileRow>* out) {
  Stmt s(db_, "SELECT size, mtime_ns, version, hash FROM files WHERE scope = ? AND path = ?");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope).Bind(2, path);
  const int rc = s.Step();
  if (rc == SQLITE_ROW) {
    *out = FileRow{path, static_cast<uint64_t>(s.Int(0)), s.Int(1), s.Int(2), s.Text(3)};
  } else if (rc == SQLITE_DONE) {
    out->reset();
  } else {
    return Error("get");
  }
  return Status::Ok();
}

Status Catalog::TunedBatch(const std::string& scope, uint32_t* size) {
  Stmt s(db_, "SELECT batch FROM tuning WHERE scope = ?");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope);
  const int rc = s.Step();
  *size = rc == SQLITE_ROW ? static_cast<uint32_t>(s.Int(0)) : 0;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? Status::Ok() : Error("read tuning");
}

Status Catalog::StoreTunedBatch(const std::string& scope, uint32_t size) {
  Stmt s(db_, "INSERT OR REPLACE INTO tuning VALUES (?, ?)");
  if (!s.ok()) return Error("prepare");
  s.Bind(1, scope).Bind(2, static_cast<int64_t>(size));
  return s.Step() == SQLITE_DONE ? Status::Ok() : Error("store tuning");
}

}  // namespace chorus::broker::scheduler
