// SessionTable: every client session of the engine, whatever its transport, found by id or by
// its peer's address on its transport, plus the bounded memory of closed sessions (N-17). Owned
// by the engine thread; not thread-safe. No sockets: it only keeps state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/channels/channel_table.h"  // SubscriberId
#include "broker/core/rate_limit.h"
#include "broker/node/transport.h"

namespace chorus::broker::node {

struct Subscription {
  std::string chan_info;     // JSON
  bool join_leave = true;    // takes join/leave pushes (W-21; native: always)
  bool server_side = false;  // made by the connect token's `channels` (W-25, N-18)
};

// A client session. Its peer is (`transport`, `routing_id`, `conn_id`): native: the DEALER's
// routing id on the native ROUTER; WebSocket: the gateway's bridge routing id and its
// connection id.
struct Session {
  SubscriberId id = 0;
  Transport* transport = nullptr;
  std::string routing_id;
  uint64_t conn_id = 0;
  bool connected = false;  // connect answered
  std::string client;      // client id (unique in the cluster)
  std::string user;
  std::string conn_info;
  bool insecure = false;
  int64_t opened_ms = 0;
  int64_t last_seen_ms = 0;
  int64_t last_ping_ms = 0;                               // the node's last ping (WebSocket)
  int64_t expires_s = 0;                                  // connection token expiry (0: none)
  std::map<std::string, Subscription, std::less<>> subs;  // by channel
  TokenBucket publish_rate;                               // Limits::publications_per_second
  TokenBucket creation_rate;                              // Limits::channel_creations_per_second
  // Hashes of the last channels this session published to on another node (their primary,
  // C-6) and was charged a creation for: one charge per channel, not one per publish.
  std::array<uint64_t, 4> remote_charged{};
  uint8_t remote_charged_next = 0;
};

// Why a session was closed, as a later command from its peer is told (N-17).
struct ClosedSession {
  uint32_t code = 0;
  std::string reason;
  bool reconnect = true;
};

class SessionTable {
 public:
  // `closed_memory`: how many closed peers are remembered (the oldest is forgotten first).
  explicit SessionTable(size_t closed_memory) : closed_memory_(closed_memory) {}

  // A new session for a peer (the peer must have none; a remembered close of it is forgotten).
  Session& Open(Transport& transport, std::string routing_id, uint64_t conn_id, int64_t now_ms);
  Session* Find(SubscriberId id);
  Session* FindByPeer(const Transport& transport, std::string_view routing_id, uint64_t conn_id);
  // Drops the session; with `closed`, its peer remembers why (when its transport does, N-17).
  void Forget(SubscriberId id, const ClosedSession* closed = nullptr);
  const ClosedSession* FindClosed(const Transport& transport, std::string_view routing_id,
                                  uint64_t conn_id) const;

  size_t size() const { return sessions_.size(); }
  size_t closed_size() const { return closed_.size(); }
  // Entries of the eviction order, stale ones included (bounded by 2 * closed_memory + 16).
  size_t closed_order_size() const { return closed_order_.size(); }
  // Every session (unordered). `fn` must not open or forget sessions.
  void ForEach(const std::function<void(Session&)>& fn);
  void ForEach(const std::function<void(const Session&)>& fn) const;

 private:
  struct PeerKey {
    const Transport* transport = nullptr;
    std::string routing_id;
    uint64_t conn_id = 0;
    bool operator==(const PeerKey&) const = default;
  };
  struct PeerHash {
    size_t operator()(const PeerKey& k) const {
      return std::hash<std::string_view>()(k.routing_id) ^ (std::hash<uint64_t>()(k.conn_id) << 1) ^
             std::hash<const void*>()(k.transport);
    }
  };

  size_t closed_memory_;
  SubscriberId next_id_ = 1;
  std::unordered_map<SubscriberId, Session> sessions_;
  std::unordered_map<PeerKey, SubscriberId, PeerHash> by_peer_;
  // A remembered close and the stamp of its entry in `closed_order_`. A peer that reconnects
  // leaves a stale entry there (its stamp no longer matches): eviction skips those, and the order
  // is compacted when stale entries dominate, so memory stays bounded by `closed_memory_`.
  struct Remembered {
    ClosedSession closed;
    uint64_t stamp = 0;
  };
  struct OrderEntry {
    PeerKey key;
    uint64_t stamp = 0;
  };
  bool IsCurrent(const OrderEntry& e) const;
  void EvictOldest();
  void CompactOrder();

  std::unordered_map<PeerKey, Remembered, PeerHash> closed_;
  std::deque<OrderEntry> closed_order_;
  uint64_t next_stamp_ = 1;
};

}  // namespace chorus::broker::node
