// Runner: external workers over ZeroMQ (docs/protocol/worker.md). Owner thread only.
#include <algorithm>

#include "broker/scheduler/runner.h"

namespace chorus::broker::scheduler {
namespace {

using wire::ErrorCode;

wire::ErrorMsg Error(ErrorCode code, std::string message) {
  return {static_cast<uint32_t>(code), std::move(message)};
}

bool ValidKind(const std::string& k) {
  return !k.empty() && k.size() <= 64 &&
         std::none_of(k.begin(), k.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

}  // namespace

void Runner::SetCapacity(Scheduler& s) {
  uint32_t n = config_.in_process ? config_.scheduler.slots : 0;
  for (const auto& [rid, r] : remotes_) n += r.slots;
  s.SetSlots(n);
}

bool Runner::Admit(const std::string& kind, std::vector<std::string>* targets) {
  // In-process workers run every kind; they go first (no network hop).
  if (config_.in_process && inproc_busy_ < config_.scheduler.slots) {
    ++inproc_busy_;
    targets->emplace_back();
    return true;
  }
  // Else the attached worker declaring `kind` with the most free slots (W-5).
  Remote* best = nullptr;
  const std::string* best_rid = nullptr;
  for (auto& [rid, r] : remotes_) {
    if (r.busy >= r.slots) continue;
    if (std::find(r.kinds.begin(), r.kinds.end(), kind) == r.kinds.end()) continue;
    if (best == nullptr || r.slots - r.busy > best->slots - best->busy) {
      best = &r;
      best_rid = &rid;
    }
  }
  if (best == nullptr) return false;
  ++best->busy;
  targets->push_back(*best_rid);
  return true;
}

void Runner::Route(Work w) {
  if (w.rid.empty()) {
    // Never blocks: at most `slots` in-process leases are live; the queue holds slots + spare.
    (void)work_.TryPush(std::move(w));
    return;
  }
  wire::LeaseMsg m{w.lease};
  m.lease.deadline_ms = config_.scheduler.lease_ms;  // relative: clocks are not shared
  (void)sender_->Send(w.rid, m);  // if lost, the lease expires and the task is retried (W-10)
}

void Runner::Released(const Work& w) {
  if (w.rid.empty()) {
    if (inproc_busy_ > 0) --inproc_busy_;
    return;
  }
  auto it = remotes_.find(w.rid);
  if (it != remotes_.end() && it->second.busy > 0) --it->second.busy;
}

void Runner::Hello(const std::string& rid, const wire::Hello& h, Scheduler& s) {
  auto refuse = [&](const std::string& why) {
    ++worker_counters_.hellos_refused;
    (void)sender_->Send(rid, Error(ErrorCode::kRefused, "hello refused: " + why));
  };
  if (remotes_.count(rid) != 0) {
    (void)sender_->Send(rid, Error(ErrorCode::kAlreadyAttached, "already attached"));
    return;
  }
  if (h.version != wire::kVersion) return refuse("unsupported version");
  if (h.slots == 0 || h.slots > wire::kMaxWorkerSlots) {
    return refuse("slots must be in 1.." + std::to_string(wire::kMaxWorkerSlots));
  }
  if (h.kinds.empty() || !std::all_of(h.kinds.begin(), h.kinds.end(), ValidKind)) {
    return refuse("kinds must name 1..32 task kinds of 1..64 printable bytes");
  }
  if (remotes_.size() >= config_.workers.max_workers) {
    return refuse("the node has its maximum of " + std::to_string(config_.workers.max_workers) +
                  " workers");
  }
  Remote r;
  r.id = next_worker_id_++;
  r.slots = h.slots;
  r.kinds = h.kinds;
  r.last_seen_ms = NowMs();
  const uint64_t id = r.id;
  remotes_.emplace(rid, std::move(r));
  SetCapacity(s);
  wire::Welcome w;
  w.worker = id;
  w.lease_ms = config_.scheduler.lease_ms;
  w.heartbeat_ms = config_.heartbeat_interval_ms;
  w.timeout_ms = config_.workers.timeout_ms > 0 ? config_.workers.timeout_ms
                                                : 3 * config_.heartbeat_interval_ms;
  (void)sender_->Send(rid, w);
}

void Runner::HandleRemote(WorkerHub::Inbound& in, Scheduler& s) {
  const int64_t now = NowMs();
  if (auto* h = std::get_if<wire::Hello>(&in.msg)) return Hello(in.rid, *h, s);
  auto rit = remotes_.find(in.rid);
  if (rit == remotes_.end()) {
    (void)sender_->Send(in.rid, Error(ErrorCode::kHelloFirst, "send hello first"));
    return;
  }
  rit->second.last_seen_ms = now;
  if (auto* hb = std::get_if<wire::HeartbeatMsg>(&in.msg)) {
    auto it = live_.find(hb->task);
    const bool held = it != live_.end() && it->second.rid == in.rid;
    if (!held || !s.Heartbeat(hb->task, hb->token, now)) {
      // Not (or no longer) this worker's lease: tell it to stop (W-7).
      (void)sender_->Send(in.rid, wire::RevokeMsg{hb->task, hb->token});
    }
  } else if (auto* d = std::get_if<wire::DoneMsg>(&in.msg)) {
    auto it = live_.find(d->task);
    LeaseToken token = d->token;
    if (it != live_.end() && it->second.rid != in.rid) {
      token = 0;  // not this worker's lease: never a valid token, so it is ignored and counted
    } else if (it != live_.end() && it->second.lease.token == d->token) {
      Released(it->second);
      live_.erase(it);
    }
    (void)s.Complete(d->task, token, std::move(d->outcome), now);  // stale: ignored (W-8)
  }                                                                // Ping: liveness only.
}

void Runner::DetachSilent(Scheduler& s) {
  const int64_t now = NowMs();
  const int64_t timeout = config_.workers.timeout_ms > 0 ? config_.workers.timeout_ms
                                                         : 3 * config_.heartbeat_interval_ms;
  bool changed = false;
  for (auto it = remotes_.begin(); it != remotes_.end();) {
    if (now - it->second.last_seen_ms > timeout) {
      // Its leases stay until they expire (W-9); their slots come back then.
      ++worker_counters_.detached;
      it = remotes_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) SetCapacity(s);
}

}  // namespace chorus::broker::scheduler
