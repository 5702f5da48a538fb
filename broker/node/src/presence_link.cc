#include "presence_link.h"

#include <utility>

#include "broker/node/log.h"
#include "forwarder.h"

namespace chorus::broker::node {

void PresenceLink::Send(uint64_t member, const std::string& endpoint, const PresenceUpdate& u) {
  std::string body = EncodePresenceUpdate(u);
  auto it = queues_.find(member);
  if (it != queues_.end() && it->second.endpoint != endpoint) {
    stats_.updates_dropped += it->second.bodies.size();  // the member restarted elsewhere
    queues_.erase(it);
    it = queues_.end();
  }
  if (it == queues_.end()) {
    if (forwarder_.SendOther(member, endpoint, body)) {
      ++stats_.updates_sent;
      return;
    }
    it = queues_.emplace(member, Queue{endpoint, {}, 0}).first;
  }
  Queue& q = it->second;
  if (q.bytes + body.size() > kMaxQueuedBytes) {
    ++stats_.updates_dropped;
    Log().warn("presence: update for member {} dropped (queue full)", member);
    return;
  }
  q.bytes += body.size();
  q.bodies.push_back(std::move(body));
}

void PresenceLink::Flush(uint64_t member, Queue& q) {
  while (!q.bodies.empty()) {
    if (!forwarder_.SendOther(member, q.endpoint, q.bodies.front())) return;
    ++stats_.updates_sent;
    q.bytes -= q.bodies.front().size();
    q.bodies.pop_front();
  }
}

bool PresenceLink::Ask(uint64_t member, const std::string& endpoint, PresenceQuery q,
                       Answered done) {
  if (pending_.size() >= kMaxQueries) return false;
  q.id = next_id_++;
  if (!forwarder_.SendOther(member, endpoint, EncodePresenceQuery(q))) return false;
  ++stats_.queries_sent;
  pending_.emplace(q.id, Pending{chp::Clock::now() + kQueryTimeout, std::move(done)});
  return true;
}

void PresenceLink::OnAnswer(const PresenceAnswer& a) {
  auto it = pending_.find(a.id);
  if (it == pending_.end()) return;  // answered after its timeout: already told
  Answered done = std::move(it->second.done);
  pending_.erase(it);
  done(&a);
}

void PresenceLink::Tick(chp::Clock::time_point now) {
  for (auto it = queues_.begin(); it != queues_.end();) {
    Flush(it->first, it->second);
    it = it->second.bodies.empty() ? queues_.erase(it) : std::next(it);
  }
  while (!pending_.empty() && pending_.begin()->second.deadline <= now) {
    Answered done = std::move(pending_.begin()->second.done);
    pending_.erase(pending_.begin());
    ++stats_.query_timeouts;
    done(nullptr);
  }
}

chp::Clock::time_point PresenceLink::NextDeadline() const {
  auto next = pending_.empty() ? chp::Clock::time_point::max() : pending_.begin()->second.deadline;
  if (!queues_.empty()) next = std::min(next, chp::Clock::now() + std::chrono::milliseconds(10));
  return next;
}

void PresenceLink::Hold(const PresenceUpdate& u) {
  if (held_.size() >= kMaxHeld) {
    ++stats_.updates_refused;
    return;
  }
  held_.push_back(u);
}

std::vector<PresenceUpdate> PresenceLink::TakeHeld() {
  return std::exchange(held_, {});
}

size_t PresenceLink::queued_bytes() const {
  size_t n = 0;
  for (const auto& [member, q] : queues_) n += q.bytes;
  return n;
}

}  // namespace chorus::broker::node
