// The replica agent's request scheduling (docs/protocol/chp.md, CR-6, CR-9, CR-10): which
// subtrees wait for their subscription or for a request slot, the requests in flight and their
// deadlines. Every per-poll step costs O(log n) or O(work due), never a walk over the followed
// subtrees (issue 11): subtrees are queued by Note() when their state changes.
#include <algorithm>

#include "chp/agent.h"
#include "chp/codec.h"
#include "chp/keys.h"

namespace chorus::chp {

void ReplicaAgent::Note(Slot& s) {
  const State st = s.replica->state();
  queued_bytes_ = queued_bytes_ - s.queued_bytes + s.replica->queued_bytes();
  s.queued_bytes = s.replica->queued_bytes();
  if (st != s.counted) {
    --state_counts_[static_cast<size_t>(s.counted)];
    ++state_counts_[static_cast<size_t>(st)];
    s.counted = st;
  }
  if (st == State::kNeedSync && !s.queued) {
    s.queued = true;
    need_sync_.push_back(s.replica->subtree());
  } else if (st == State::kWaitSubscribe && !s.waiting) {
    s.waiting = true;
    wait_subscribe_.push_back(s.replica->subtree());
  }
}

Result<Unit> ReplicaAgent::Follow(const std::string& subtree) {
  return Follow(subtree, nullptr);
}

Result<Unit> ReplicaAgent::Follow(const std::string& subtree, const SubtreeReplica& copy) {
  if (copy.subtree() != subtree) return Errc::kBadKey;
  return Follow(subtree, &copy);
}

Result<Unit> ReplicaAgent::Follow(const std::string& subtree, const SubtreeReplica* copy) {
  if (!IsValidSubtree(subtree)) return Errc::kBadKey;
  if (replicas_.contains(subtree)) return Unit{};
  AddReplica(subtree, copy);
  // Subscribe first (spec: the subscription precedes the request).
  if (sub_ && !follow_all_) {
    sub_->set(zmq::sockopt::subscribe, TopicPrefix(subtree));
    ExtendSubscribeDeadline();
  }
  return Unit{};
}

void ReplicaAgent::FollowAll() {
  if (follow_all_) return;
  follow_all_ = true;
  all_state_ = AllState::kWaitSubscribe;
  if (sub_) {
    sub_->set(zmq::sockopt::subscribe, "");
    ExtendSubscribeDeadline();
  }
}

void ReplicaAgent::ExtendSubscribeDeadline() {
  subscribe_deadline_ = std::max(subscribe_deadline_, Clock::now() + options_.subscribe_timeout);
}

Clock::time_point ReplicaAgent::NextDeadline() const {
  // O(1) and O(log n) look-ups only (issue 11: no walk over the followed subtrees per poll).
  if (link_ == Link::kIdle) return Clock::time_point::max();  // nothing to connect to
  Clock::time_point next = link_deadline_;
  if (link_ != Link::kHello && WaitingForSubscriptions()) {
    next = std::min(next, subscribe_deadline_);
  }
  if (!request_deadlines_.empty()) next = std::min(next, request_deadlines_.begin()->first);
  if (!retries_.empty()) next = std::min(next, retries_.begin()->first);
  if (!unacked_.empty()) next = std::min(next, unacked_.begin()->second.give_up);
  // Replicas waiting for a request slot are served on the next poll (not while a "*" sync is
  // under way: SendRequests holds individual requests back until its DONE).
  const bool all_busy = follow_all_ && all_state_ != AllState::kLive;
  if (link_ == Link::kLive && !all_busy && outstanding_.size() < options_.max_outstanding &&
      !need_sync_.empty()) {
    return Clock::now();
  }
  return next;
}

void ReplicaAgent::EndSubscribeWait() {
  // No welcome message yet: proceed; a missed update is caught by the sequence rules.
  while (!wait_subscribe_.empty()) {
    auto it = slots_.find(std::string_view(wait_subscribe_.front()));
    wait_subscribe_.pop_front();
    if (it == slots_.end()) continue;  // unfollowed meanwhile
    it->second.waiting = false;
    it->second.replica->OnSubscribed();
    Note(it->second);
  }
  if (WaitingForSubscriptions() && !(follow_all_ && all_state_ == AllState::kWaitSubscribe)) {
    // Not expected (every replica entering wait-subscribe is queued by Note); never spin on it.
    for (auto& [name, s] : slots_) {
      s.replica->OnSubscribed();
      Note(s);
    }
  }
  if (follow_all_ && all_state_ == AllState::kWaitSubscribe) all_state_ = AllState::kNeedSync;
}

void ReplicaAgent::SendRequests(Clock::time_point now) {
  if ((link_ == Link::kSubscribing || link_ == Link::kLive) && now >= subscribe_deadline_ &&
      WaitingForSubscriptions()) {
    EndSubscribeWait();
  }
  if (link_ != Link::kLive && link_ != Link::kSubscribing) return;
  if (follow_all_ && all_state_ == AllState::kNeedSync) {
    all_request_id_ = next_request_id_++;
    for (auto& [name, s] : slots_) {
      s.replica->OnRequestFailed();
      s.replica->OnSubscribed();
      (void)s.replica->MakeRequest(all_request_id_);
      Note(s);
    }
    SendBody(Encode(Icanhaz{all_request_id_, kAllSubtrees, {}}));
    AddOutstanding(all_request_id_, "", now + options_.request_timeout);
    all_state_ = AllState::kSyncing;
    ++stats_.requests;
  }
  if (follow_all_ && all_state_ != AllState::kLive) return;
  // CR-9: first come, first served, up to max_outstanding in flight.
  while (outstanding_.size() < options_.max_outstanding && !need_sync_.empty()) {
    auto it = slots_.find(std::string_view(need_sync_.front()));
    need_sync_.pop_front();
    if (it == slots_.end()) continue;  // unfollowed meanwhile
    Slot& s = it->second;
    s.queued = false;
    if (s.replica->state() != State::kNeedSync) continue;
    const uint64_t id = next_request_id_++;
    SendBody(Encode(s.replica->MakeRequest(id)));
    AddOutstanding(id, it->first, now + options_.request_timeout);
    Note(s);
    ++stats_.requests;
  }
}

void ReplicaAgent::CheckTimeouts(Clock::time_point now) {
  if (link_ == Link::kIdle) return;
  if (now >= link_deadline_) {
    Failover(now, link_ == Link::kHello ? "did not answer HELLO" : "publisher went silent");
    return;
  }
  // Only the requests due: request_deadlines_ is ordered by deadline.
  while (!request_deadlines_.empty() && request_deadlines_.begin()->first <= now) {
    auto it = outstanding_.find(request_deadlines_.begin()->second);
    ++stats_.timeouts;
    const std::string subtree = it->second.subtree;
    EraseOutstanding(it);
    if (subtree.empty()) {
      if (follow_all_) all_state_ = AllState::kNeedSync;
    } else if (Slot* s = SlotFor(subtree, false)) {
      s->replica->OnRequestFailed();
      Note(*s);
    }
  }
  CheckUnacked(now);
}

void ReplicaAgent::AddOutstanding(uint64_t id, std::string subtree, Clock::time_point deadline) {
  outstanding_[id] = Outstanding{std::move(subtree), deadline};
  request_deadlines_.emplace(deadline, id);
}

void ReplicaAgent::ExtendOutstanding(std::unordered_map<uint64_t, Outstanding>::iterator it,
                                     Clock::time_point deadline) {
  request_deadlines_.erase({it->second.deadline, it->first});
  it->second.deadline = deadline;
  request_deadlines_.emplace(deadline, it->first);
}

void ReplicaAgent::EraseOutstanding(std::unordered_map<uint64_t, Outstanding>::iterator it) {
  request_deadlines_.erase({it->second.deadline, it->first});
  outstanding_.erase(it);
}

void ReplicaAgent::ClearOutstanding() {
  outstanding_.clear();
  request_deadlines_.clear();
}

}  // namespace chorus::chp
