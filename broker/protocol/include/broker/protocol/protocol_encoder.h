// Encoder: how the engine writes replies and pushes for one client protocol, so its command
// handlers are written once for both (client_protocol.h types in, frames out). Implementations:
// NativeEncoder() (msgpack, native_codec.h) and JsonEncoder() (Centrifugo JSON, client_json.h).
// Stateless singletons, usable from the engine thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/presence.h"
#include "broker/protocol/client_protocol.h"

namespace chorus::broker {

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual std::string Error(uint64_t id, uint32_t code, std::string_view message) const = 0;
  virtual std::string Reply(uint64_t id, const ConnectResult& r) const = 0;
  virtual std::string Reply(uint64_t id, const SubscribeResult& r) const = 0;
  virtual std::string Reply(uint64_t id, const PublishResult& r) const = 0;
  virtual std::string Reply(uint64_t id, const PresenceResult& r) const = 0;
  virtual std::string Reply(uint64_t id, const PresenceStats& r) const = 0;
  virtual std::string Reply(uint64_t id, const HistoryResultOut& r) const = 0;
  virtual std::string Reply(uint64_t id, const RefreshResult& r) const = 0;
  virtual std::string Reply(uint64_t id, const SubRefreshResult& r) const = 0;
  virtual std::string UnsubscribeReply(uint64_t id) const = 0;
  virtual std::string PingReply(uint64_t id) const = 0;
  virtual std::string PresencePageRpcReply(uint64_t id, const PresenceResult& r) const = 0;
  virtual std::string PresenceUsersRpcReply(uint64_t id, const std::vector<std::string>& users,
                                            size_t num_users) const = 0;

  // `publisher`: the structured form of p.info when the caller has it (saves a parse).
  virtual std::string PubPush(std::string_view channel, const Publication& p,
                              const PresenceEntry* publisher) const = 0;
  // Empty when this protocol has no push for the event (JSON: no user-level pushes).
  virtual std::string PresencePush(std::string_view channel, PresenceEventType type,
                                   const PresenceEntry& e) const = 0;
  virtual std::string UnsubscribePush(std::string_view channel, uint32_t code,
                                      std::string_view reason) const = 0;
  virtual std::string SubscribePush(std::string_view channel, const SubscribeResult& r) const = 0;
  virtual std::string MessagePush(std::string_view data_json) const = 0;
  virtual std::string DisconnectPush(uint32_t code, std::string_view reason,
                                     bool reconnect) const = 0;
  // The node's periodic ping to a connected client; empty when the protocol has none (native:
  // the client pings, N-4; JSON: `{}` every ping interval, W-9).
  virtual std::string ServerPing() const = 0;
};

const Encoder& NativeEncoder();
const Encoder& JsonEncoder();

}  // namespace chorus::broker
