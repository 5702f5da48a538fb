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
  if (closed != nullptr && s.transport->traits().remembers_closed) {
    if (closed_.size() >= closed_memory_ && !closed_order_.empty()) {
      closed_.erase(closed_order_.front());
      closed_order_.pop_front();
    }
    if (closed_.emplace(key, *closed).second) closed_order_.push_back(std::move(key));
  }
  sessions_.erase(it);
}

const ClosedSession* SessionTable::FindClosed(const Transport& transport,
                                              std::string_view routing_id, uint64_t conn_id) const {
  auto it = closed_.find(PeerKey{&transport, std::string(routing_id), conn_id});
  return it == closed_.end() ? nullptr : &it->second;
}

void SessionTable::ForEach(const std::function<void(Session&)>& fn) {
  for (auto& [id, s] : sessions_) fn(s);
}

void SessionTable::ForEach(const std::function<void(const Session&)>& fn) const {
  for (const auto& [id, s] : sessions_) fn(s);
}

}  // namespace chorus::broker::node
