// The replica agent's writes (docs/protocol/chp.md, "Updates", CR-23 .. CR-25, CR-27, CR-32):
// KVSETs with UUIDs, kept until acknowledged, re-sent in the order first sent, given up after
// kvset_give_up. A poll touches only the KVSETs due (retries_ is ordered by deadline).
#include <algorithm>
#include <cstring>

#include "chp/agent.h"
#include "chp/codec.h"
#include "chp/keys.h"

namespace chorus::chp {

size_t ReplicaAgent::UuidHash::operator()(const Uuid& u) const noexcept {
  // Both halves: UUIDs from a weak generator may share a prefix.
  uint64_t a = 0, b = 0;
  std::memcpy(&a, u.data(), sizeof a);
  std::memcpy(&b, u.data() + sizeof a, sizeof b);
  return static_cast<size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
}

void ReplicaAgent::SetRetry(uint64_t order, Unacked& u, Clock::time_point deadline) {
  retries_.erase({u.deadline, order});
  u.deadline = deadline;
  retries_.emplace(deadline, order);
}

void ReplicaAgent::EraseUnacked(std::map<uint64_t, Unacked>::iterator it) {
  retries_.erase({it->second.deadline, it->first});
  unacked_index_.erase(it->second.uuid);
  unacked_.erase(it);
}

void ReplicaAgent::CheckUnacked(Clock::time_point now) {
  // CR-32: give up the oldest (first sent first) past kvset_give_up; report kTimeout.
  while (!unacked_.empty() && now >= unacked_.begin()->second.give_up) {
    auto it = unacked_.begin();
    const Uuid uuid = it->second.uuid;
    AckHandler h = std::move(it->second.on_ack);
    EraseUnacked(it);
    ++stats_.kvset_given_up;
    if (h) h(KvAck{uuid, static_cast<uint32_t>(Errc::kTimeout), {}});
  }
  // The due ones, re-sent in the order first sent (the order numbers sort that way).
  std::vector<uint64_t> due;
  for (auto it = retries_.begin(); it != retries_.end() && it->first <= now; ++it) {
    due.push_back(it->second);
  }
  std::sort(due.begin(), due.end());
  for (uint64_t order : due) {
    Unacked& u = unacked_.find(order)->second;
    SetRetry(order, u, now + options_.request_timeout);
    // Before HELLO_OK nothing but HELLO goes out (CR-1, CR-4); OnHelloOk re-sends them all.
    if (link_ == Link::kHello) continue;
    ++stats_.kvset_retries;
    SendBody(u.body);
  }
}

void ReplicaAgent::ResendUnacked(Clock::time_point now) {
  for (auto& [order, u] : unacked_) {
    SendBody(u.body);
    SetRetry(order, u, now + options_.request_timeout);
  }
}

Result<Uuid> ReplicaAgent::SendSet(KvSet m, AckHandler on_ack) {
  if (!SplitKey(m.key)) return Errc::kBadKey;
  if (unacked_.size() >= options_.max_unacked) return Errc::kBusy;
  for (size_t i = 0; i < m.uuid.size(); i += 8) {
    const uint64_t r = rng_();
    std::memcpy(m.uuid.data() + i, &r, 8);
  }
  std::string body = Encode(m);
  if (link_ != Link::kHello && link_ != Link::kIdle) SendBody(body);
  const auto now = Clock::now();
  const uint64_t order = next_unacked_order_++;
  Unacked& u =
      unacked_
          .emplace(order, Unacked{m.uuid, std::move(body), std::move(on_ack),
                                  now + options_.request_timeout, now + options_.kvset_give_up})
          .first->second;
  retries_.emplace(u.deadline, order);
  unacked_index_.emplace(m.uuid, order);
  return m.uuid;
}

Result<Uuid> ReplicaAgent::Set(std::string_view key, std::string_view value, uint64_t ttl_ms,
                               AckHandler on_ack) {
  return SendSet(KvSet{{}, std::string(key), Op::kSet, std::string(value), ttl_ms},
                 std::move(on_ack));
}

Result<Uuid> ReplicaAgent::Erase(std::string_view key, AckHandler on_ack) {
  return SendSet(KvSet{{}, std::string(key), Op::kDelete, {}, 0}, std::move(on_ack));
}

}  // namespace chorus::chp
