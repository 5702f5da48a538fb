// Source: where a sync job's files come from (cloud storage in production; a directory tree in
// the reference task). Implementations must be safe to use from one worker thread at a time;
// every call may block (a NAS that is switched off), which is why calls run inside leased tasks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "broker/scheduler/errc.h"

namespace chorus::broker::scheduler {

// An error with a message for the job's error list (names the path and the cause).
struct Status {
  Errc code = Errc::kOk;
  std::string message;
  bool permanent = false;  // retrying cannot help (e.g. the source root does not exist)
  bool ok() const { return code == Errc::kOk; }
  static Status Ok() { return {}; }
};

// Seed 001's (count, max version, max timestamp) of a table; equal summaries mean "in sync".
struct Summary {
  uint64_t count = 0;
  int64_t max_version = 0;
  int64_t max_mtime = 0;
  bool operator==(const Summary&) const = default;
};

struct SourceEntry {
  std::string path;  // relative to the source root, '/'-separated
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t version = 0;  // grows whenever the file changes (ctime in ns for a directory tree)
  bool operator==(const SourceEntry&) const = default;
};

struct Listing {
  std::vector<SourceEntry> entries;  // sorted by path
  Summary summary;
};

class Source {
 public:
  virtual ~Source() = default;
  // Lists every regular file (metadata only, no content).
  virtual Status List(Listing* out) = 0;
  // Stats one file and hashes its content (hex SHA-256). kSourceMissing when it is gone.
  virtual Status Read(const std::string& path, SourceEntry* entry, std::string* hash) = 0;
};

// A directory tree standing in for cloud storage. version = ctime (ns), which the kernel bumps
// on every write, rename and metadata change and which a user cannot set back.
class DirectorySource final : public Source {
 public:
  explicit DirectorySource(std::string root) : root_(std::move(root)) {}
  Status List(Listing* out) override;
  Status Read(const std::string& path, SourceEntry* entry, std::string* hash) override;

 private:
  std::string root_;
};

}  // namespace chorus::broker::scheduler
