#include "broker/node/session_table.h"

namespace chorus::broker::node {

Session& SessionTable::Open(Transport& transport, std::string routing_id, uint64_t conn_id,
                            int64_t now_ms) {
  const SubscriberId id = next_id_++;
  Session& s = sessions_[id];
  s.id = id;
  s.transport = &transport;
  s.routing_id = std::move(routing_id);
  s.conn_id = conn_id;
  s.opened_ms = s.last_seen_ms = now_ms;
  PeerKey key{&transport, s.routing_id, conn_id};
  closed_.erase(key);  // the peer starts over; its old close is stale
  by_peer_[std::move(key)] = id;
  return s;
}

Session* SessionTable::Find(SubscriberId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Session* SessionTable::FindByPeer(const Transport& transport, std::string_view routing_id,
                                  uint64_t conn_id) {
  auto it = by_peer_.find(PeerKey{&transport, std::string(routing_id), conn_id});
  return it == by_peer_.end() ? nullptr : Find(it->second);
}

void SessionTable::Forget(SubscriberId id, const ClosedSession* closed) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  const Session& s = it->second;
  PeerKey key{s.transport, s.routing_id, s.conn_id};
  by_peer_.erase(key);
  if (closed != nullptr && s.transport->traits().remembers_closed && closed_memory_ > 0) {
    closed_.erase(key);  // a peer closed twice is remembered once, as the newest
    while (closed_.size() >= closed_memory_) EvictOldest();
    const uint64_t stamp = next_stamp_++;
    closed_.emplace(key, Remembered{*closed, stamp});
    closed_order_.push_back(OrderEntry{std::move(key), stamp});
    if (closed_order_.size() > 2 * closed_memory_ + 16) CompactOrder();
  }
  sessions_.erase(it);
}

bool SessionTable::IsCurrent(const OrderEntry& e) const {
  auto it = closed_.find(e.key);
  return it != closed_.end() && it->second.stamp == e.stamp;
}

void SessionTable::EvictOldest() {
  while (!closed_order_.empty()) {
    OrderEntry e = std::move(closed_order_.front());
    closed_order_.pop_front();
    if (IsCurrent(e)) {
      closed_.erase(e.key);
      return;
    }
  }
}

void SessionTable::CompactOrder() {
  std::deque<OrderEntry> kept;
  for (auto& e : closed_order_) {
    if (IsCurrent(e)) kept.push_back(std::move(e));
  }
  closed_order_.swap(kept);
}

const ClosedSession* SessionTable::FindClosed(const Transport& transport,
                                              std::string_view routing_id, uint64_t conn_id) const {
  auto it = closed_.find(PeerKey{&transport, std::string(routing_id), conn_id});
  return it == closed_.end() ? nullptr : &it->second.closed;
}

void SessionTable::ForEach(const std::function<void(Session&)>& fn) {
  for (auto& [id, s] : sessions_) fn(s);
}

void SessionTable::ForEach(const std::function<void(const Session&)>& fn) const {
  for (const auto& [id, s] : sessions_) fn(s);
}

}  // namespace chorus::broker::node
