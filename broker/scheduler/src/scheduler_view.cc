// Scheduler::Queues / Leases: a read-only view of the core for mirrors and tools.
#include <map>

#include "broker/scheduler/scheduler.h"

namespace chorus::broker::scheduler {

std::vector<Scheduler::QueueView> Scheduler::Queues() const {
  std::map<std::string, QueueView> by_user;
  for (const auto& [id, job] : jobs_) {
    if (IsFinal(job.info.state)) continue;
    QueueView& q = by_user[job.info.spec.user];
    q.user = job.info.spec.user;
    ++q.jobs_live;
    for (TaskId tid : job.tasks) {
      const Task& t = tasks_.at(tid);
      if (t.state == TaskState::kRunning) ++q.running;
      if (t.state == TaskState::kBackoff) ++q.backoff;
    }
    q.held += job.held_final.size();
  }
  std::vector<QueueView> out;
  for (auto& [user, q] : by_user) {
    auto it = users_.find(user);
    if (it != users_.end()) {
      q.tier = it->second.tier;
      q.quantum = it->second.quantum;
      q.ready = it->second.ready.size();
    }
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<Scheduler::LeaseView> Scheduler::Leases() const {
  std::vector<LeaseView> out;
  for (const auto& [deadline, tid] : leases_) {
    const Task& t = tasks_.at(tid);
    LeaseView l;
    l.user = jobs_.at(t.job).info.spec.user;
    l.kind = t.spec.kind;
    l.task = tid;
    l.job = t.job;
    l.token = t.token;
    l.slot = t.slot;
    l.attempt = t.attempts;
    l.deadline_ms = deadline;
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace chorus::broker::scheduler
