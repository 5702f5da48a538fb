#include "controller_loop.h"

extern "C" {  // raft.h has no C++ guards
#include <raft.h>
}

namespace chorus::cluster::detail {

struct ControllerLoop::BarrierRequest {
  struct raft_barrier barrier;  // first member: libraft hands back this pointer
  ControllerLoop* self = nullptr;
  std::shared_ptr<bool> alive;
  uint64_t min_entries = 0;
  int64_t lease_ms = 0;
  std::vector<LeasePromise> promises;
};

ControllerLoop::ControllerLoop(struct raft* r, const MetaFsm* fsm, const MetaGroupConfig& config)
    : raft_(r), fsm_(fsm), config_(config), controller_(config.controller) {}

ControllerLoop::~ControllerLoop() {
  *alive_ = false;
  for (auto& p : waiting_) p->set_value(Errc::kNotLeader);
}

bool ControllerLoop::Leads() const {
  return raft_state(raft_) == RAFT_LEADER;
}

void ControllerLoop::Tick(int64_t now_ms) {
  if (!Leads()) {
    term_ = 0;
    return;
  }
  if (raft_->current_term != term_) {
    term_ = raft_->current_term;
    ++generation_;
    inflight_ = 0;
    controller_.OnElected(now_ms);
  }
  if (inflight_ != 0) return;
  std::vector<Command> cmds;
  if (!fsm_->map().bootstrapped()) {
    if (config_.bootstrap_partitions == 0) return;
    cmds.push_back(Bootstrap{config_.bootstrap_partitions, config_.bootstrap_replication_factor});
  } else {
    cmds = controller_.Decide(fsm_->map(), now_ms);
  }
  uint64_t generation = generation_;
  for (const Command& cmd : cmds) {
    auto alive = alive_;
    auto r = Propose(raft_, cmd, [this, alive, generation](Result<Unit>) {
      if (*alive && generation == generation_ && inflight_ > 0) --inflight_;
    });
    if (!r.ok()) break;
    ++inflight_;
  }
}

void ControllerLoop::OnHeartbeat(const Heartbeat& hb, int64_t now_ms, LeasePromise promise) {
  if (stopping_ || !Leads()) {
    promise->set_value(Errc::kNotLeader);
    return;
  }
  const Member* m = fsm_->map().FindMember(hb.id);
  if (m != nullptr && m->state == MemberState::kDead && m->incarnation == hb.incarnation) {
    promise->set_value(Errc::kBadState);  // C-24: take a new incarnation and rejoin
    return;
  }
  controller_.OnHeartbeat(hb, now_ms);
  waiting_.push_back(std::move(promise));
  if (!barrier_inflight_) StartBarrier();
}

void ControllerLoop::OnReport(const ReplicaReport& report) {
  controller_.OnReport(report);
}

void ControllerLoop::Stop() {
  stopping_ = true;
}

void ControllerLoop::StartBarrier() {
  if (stopping_) {
    for (auto& p : waiting_) p->set_value(Errc::kNotLeader);
    waiting_.clear();
    return;
  }
  auto* req = new BarrierRequest{};
  req->self = this;
  req->alive = alive_;
  req->min_entries = fsm_->entries();
  req->lease_ms = config_.lease_ms;
  req->promises.swap(waiting_);
  if (raft_barrier(raft_, &req->barrier, &ControllerLoop::BarrierDone) != 0) {
    for (auto& p : req->promises) p->set_value(Errc::kNotLeader);
    delete req;
    return;
  }
  barrier_inflight_ = true;
}

void ControllerLoop::BarrierDone(struct raft_barrier* barrier, int status) {
  auto* req = reinterpret_cast<BarrierRequest*>(barrier);
  for (auto& p : req->promises) {
    if (status == 0) {
      p->set_value(Lease{req->lease_ms, req->min_entries});
    } else {
      p->set_value(Errc::kNotLeader);
    }
  }
  if (*req->alive) {
    ControllerLoop* self = req->self;
    self->barrier_inflight_ = false;
    if (status != 0) {
      // Leadership lost or raft closing: start no other barrier from inside libraft's cleanup
      // (it still reads as leader there); the heartbeats waiting fail now and are sent again.
      for (auto& p : self->waiting_) p->set_value(Errc::kNotLeader);
      self->waiting_.clear();
    } else if (!self->waiting_.empty() && self->Leads()) {
      self->StartBarrier();
    }
  }
  delete req;
}

}  // namespace chorus::cluster::detail
