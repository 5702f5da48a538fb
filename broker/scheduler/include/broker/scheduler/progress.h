// Progress events of sync jobs, for channel `sync:<user>` (issue 13, "Progress events"): phase,
// done, failed, total, rate, eta; at most one per job per `min_interval_ms` plus a final one.
// Pure: owned by the thread that owns the Scheduler, time passed in as int64 ms. The publishing
// itself (engine → channel with history) is part of the node wiring, not built here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {

struct ProgressEvent {
  JobId job = 0;
  std::string phase;  // queued, listing, syncing, succeeded, failed, cancelled
  uint64_t done = 0, failed = 0, total = 0;  // items (files)
  double rate = 0;                           // items per second since the job's first progress
  int64_t eta_ms = -1;                       // -1: unknown
  bool final = false;
  bool operator==(const ProgressEvent&) const = default;
};

// The publication payload: one JSON object, e.g.
// {"type":"sync_progress","job":7,"phase":"syncing","done":10,"failed":0,"total":40,
//  "rate":12.5,"eta_ms":2400,"final":false}
std::string ProgressJson(const ProgressEvent& e);

class ProgressLimiter {
 public:
  explicit ProgressLimiter(int64_t min_interval_ms = 250) : min_interval_ms_(min_interval_ms) {}

  // The event to publish now for `info`, if any: the first observation of a job, a change of
  // phase or counts at least min_interval_ms after the last published event, and the final state
  // (always; the job is then forgotten, so the caller should observe a final job once — when it
  // sees the job end).
  std::optional<ProgressEvent> Observe(const JobInfo& info, int64_t now);
  size_t tracked() const { return jobs_.size(); }

 private:
  struct Track {
    ProgressEvent last;
    int64_t last_ms = 0;
    int64_t start_ms = -1;  // first observation with items known
    uint64_t start_items = 0;
  };
  const int64_t min_interval_ms_;
  std::unordered_map<JobId, Track> jobs_;
};

}  // namespace chorus::broker::scheduler
