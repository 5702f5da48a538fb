#include "broker/scheduler/progress.h"

#include <cmath>
#include <cstdio>

namespace chorus::broker::scheduler {
namespace {

const char* Phase(const JobInfo& in) {
  switch (in.state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      // Until the listing reports its files, the job is listing.
      return in.counts.items_total == 0 && in.counts.tasks_done == 0 ? "listing" : "syncing";
    default:
      return ToString(in.state);
  }
}

}  // namespace

std::string ProgressJson(const ProgressEvent& e) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "{\"type\":\"sync_progress\",\"job\":%llu,\"phase\":\"%s\",\"done\":%llu,"
                "\"failed\":%llu,\"total\":%llu,\"rate\":%.3f,\"eta_ms\":%lld,\"final\":%s}",
                static_cast<unsigned long long>(e.job), e.phase.c_str(),
                static_cast<unsigned long long>(e.done), static_cast<unsigned long long>(e.failed),
                static_cast<unsigned long long>(e.total), std::isfinite(e.rate) ? e.rate : 0.0,
                static_cast<long long>(e.eta_ms), e.final ? "true" : "false");
  return buf;
}

std::optional<ProgressEvent> ProgressLimiter::Observe(const JobInfo& info, int64_t now) {
  ProgressEvent e;
  e.job = info.id;
  e.phase = Phase(info);
  e.done = info.counts.items_done;
  e.failed = info.counts.items_failed;
  e.total = info.counts.items_total;
  e.final = IsFinal(info.state);
  auto [it, first] = jobs_.try_emplace(info.id);
  Track& t = it->second;
  if (t.start_ms < 0 && e.total > 0) {
    t.start_ms = now;
    t.start_items = e.done + e.failed;
  }
  if (t.start_ms >= 0 && now > t.start_ms) {
    e.rate = static_cast<double>(e.done + e.failed - t.start_items) * 1000.0 /
             static_cast<double>(now - t.start_ms);
  }
  const uint64_t left = e.total > e.done + e.failed ? e.total - e.done - e.failed : 0;
  if (e.final || left == 0) {
    e.eta_ms = e.total > 0 || e.final ? 0 : -1;
  } else if (e.rate > 0) {
    e.eta_ms = static_cast<int64_t>(static_cast<double>(left) * 1000.0 / e.rate);
  }
  if (e.final) {
    jobs_.erase(it);
    return e;
  }
  const bool changed = first || e.phase != t.last.phase || e.done != t.last.done ||
                       e.failed != t.last.failed || e.total != t.last.total;
  if (!changed || (!first && now - t.last_ms < min_interval_ms_)) return std::nullopt;
  t.last = e;
  t.last_ms = now;
  return e;
}

}  // namespace chorus::broker::scheduler
