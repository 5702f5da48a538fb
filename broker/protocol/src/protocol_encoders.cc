#include "broker/protocol/client_json.h"
#include "broker/protocol/native_codec.h"
#include "broker/protocol/protocol_encoder.h"

namespace chorus::broker {
namespace {

void PackPresenceMap(Packer& pk, const std::vector<PresenceEntry>& entries) {
  pk.pack_map(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    PackStr(pk, e.client);
    PackClientInfo(pk, e);
  }
}

// docs/protocol/native.md, "Methods".
class Native final : public Encoder {
 public:
  std::string Error(uint64_t id, uint32_t code, std::string_view message) const override {
    return EncodeError(id, code, message);
  }
  std::string Reply(uint64_t id, const ConnectResult& r) const override {
    return EncodeResult(id, r.subs.empty() ? 4 : 5, [&](Packer& pk) {
      PackStr(pk, "client");
      PackStr(pk, r.client);
      PackStr(pk, "version");
      PackStr(pk, r.version);
      PackStr(pk, "ping");
      pk.pack_uint64(r.ping_s);
      PackStr(pk, "pong");
      pk.pack_uint64(r.pong_s);
      if (r.subs.empty()) return;
      PackStr(pk, "subs");  // server-side subscriptions (N-18)
      pk.pack_map(static_cast<uint32_t>(r.subs.size()));
      for (const auto& [channel, sub] : r.subs) {
        PackStr(pk, channel);
        pk.pack_map(6);
        PackSubscribeResult(pk, sub);
      }
    });
  }
  std::string Reply(uint64_t id, const SubscribeResult& r) const override {
    return EncodeResult(id, 6, [&](Packer& pk) { PackSubscribeResult(pk, r); });
  }
  std::string Reply(uint64_t id, const PublishResult& r) const override {
    return EncodeResult(id, 2, [&](Packer& pk) {
      PackStr(pk, "offset");
      pk.pack_uint64(r.offset);
      PackStr(pk, "epoch");
      PackStr(pk, r.epoch);
    });
  }
  std::string Reply(uint64_t id, const PresenceResult& r) const override {
    return EncodeResult(id, 2, [&](Packer& pk) {
      PackStr(pk, "presence");
      PackPresenceMap(pk, r.entries);
      PackStr(pk, "next_cursor");
      PackStr(pk, r.next_cursor);
    });
  }
  std::string Reply(uint64_t id, const PresenceStats& r) const override {
    return EncodeResult(id, 2, [&](Packer& pk) {
      PackStr(pk, "num_clients");
      pk.pack_uint64(r.num_clients);
      PackStr(pk, "num_users");
      pk.pack_uint64(r.num_users);
    });
  }
  std::string Reply(uint64_t id, const HistoryResultOut& r) const override {
    return EncodeResult(id, 3, [&](Packer& pk) {
      PackStr(pk, "publications");
      pk.pack_array(static_cast<uint32_t>(r.publications.size()));
      for (const auto& pub : r.publications) PackPublication(pk, pub);
      PackStr(pk, "epoch");
      PackStr(pk, r.epoch);
      PackStr(pk, "offset");
      pk.pack_uint64(r.offset);
    });
  }
  // The native protocol has no refresh / sub_refresh / rpc (the decoder never yields them).
  std::string Reply(uint64_t id, const RefreshResult&) const override {
    return EncodeEmptyResult(id);
  }
  std::string Reply(uint64_t id, const SubRefreshResult&) const override {
    return EncodeEmptyResult(id);
  }
  std::string UnsubscribeReply(uint64_t id) const override { return EncodeEmptyResult(id); }
  std::string PingReply(uint64_t id) const override { return EncodeEmptyResult(id); }
  std::string PresencePageRpcReply(uint64_t id, const PresenceResult& r) const override {
    return Reply(id, r);
  }
  std::string PresenceUsersRpcReply(uint64_t id, const std::vector<std::string>& users,
                                    size_t num_users) const override {
    return EncodeResult(id, 2, [&](Packer& pk) {
      PackStr(pk, "users");
      pk.pack_array(static_cast<uint32_t>(users.size()));
      for (const auto& u : users) PackStr(pk, u);
      PackStr(pk, "num_users");
      pk.pack_uint64(num_users);
    });
  }
  std::string PubPush(std::string_view channel, const Publication& p,
                      const PresenceEntry* publisher) const override {
    return EncodePubPush(channel, p, publisher);
  }
  std::string PresencePush(std::string_view channel, PresenceEventType type,
                           const PresenceEntry& e) const override {
    return EncodePresencePush(channel, type, e);
  }
  std::string UnsubscribePush(std::string_view channel, uint32_t code,
                              std::string_view reason) const override {
    return EncodeUnsubscribePush(channel, code, reason);
  }
  std::string SubscribePush(std::string_view channel, const SubscribeResult& r) const override {
    return EncodeSubscribePush(channel, r);
  }
  std::string ServerPing() const override { return {}; }
  std::string MessagePush(std::string_view data_json) const override {
    return EncodeMessagePush(data_json);
  }
  std::string DisconnectPush(uint32_t code, std::string_view reason,
                             bool reconnect) const override {
    return EncodeDisconnectPush(code, reason, reconnect);
  }
};

uint32_t Id32(uint64_t id) {
  return static_cast<uint32_t>(id);
}

// docs/protocol/websocket.md.
class Json final : public Encoder {
 public:
  std::string Error(uint64_t id, uint32_t code, std::string_view message) const override {
    return json::EncodeError(Id32(id), code, message,
                             code == ToCode(Errc::kInternal) ||
                                 code == ToCode(Errc::kTooManyRequests) ||
                                 code == ToCode(Errc::kUnavailable));
  }
  std::string Reply(uint64_t id, const ConnectResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const SubscribeResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const PublishResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const PresenceResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const PresenceStats& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const HistoryResultOut& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const RefreshResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string Reply(uint64_t id, const SubRefreshResult& r) const override {
    return json::EncodeReply(Id32(id), r);
  }
  std::string UnsubscribeReply(uint64_t id) const override {
    return json::EncodeUnsubscribeReply(Id32(id));
  }
  std::string PingReply(uint64_t id) const override { return json::EncodePingReply(Id32(id)); }
  std::string PresencePageRpcReply(uint64_t id, const PresenceResult& r) const override {
    return json::EncodePresencePageRpcReply(Id32(id), r);
  }
  std::string PresenceUsersRpcReply(uint64_t id, const std::vector<std::string>& users,
                                    size_t num_users) const override {
    return json::EncodePresenceUsersRpcReply(Id32(id), users, num_users);
  }
  std::string PubPush(std::string_view channel, const Publication& p,
                      const PresenceEntry*) const override {
    return json::EncodePubPush(channel, p);
  }
  std::string PresencePush(std::string_view channel, PresenceEventType type,
                           const PresenceEntry& e) const override {
    switch (type) {
      case PresenceEventType::kJoin:
        return json::EncodeJoinPush(channel, e);
      case PresenceEventType::kLeave:
        return json::EncodeLeavePush(channel, e);
      default:
        return {};  // user-level events reach browsers through client/js (join/leave)
    }
  }
  std::string UnsubscribePush(std::string_view channel, uint32_t code,
                              std::string_view reason) const override {
    return json::EncodeUnsubscribePush(channel, code, reason);
  }
  std::string SubscribePush(std::string_view channel, const SubscribeResult& r) const override {
    return json::EncodeSubscribePush(channel, r);
  }
  std::string ServerPing() const override { return std::string(json::kPing); }
  std::string MessagePush(std::string_view data_json) const override {
    return json::EncodeMessagePush(data_json);
  }
  std::string DisconnectPush(uint32_t code, std::string_view reason,
                             bool reconnect) const override {
    return json::EncodeDisconnectPush(code, reason, reconnect);
  }
};

}  // namespace

const Encoder& NativeEncoder() {
  static const Native kNative;
  return kNative;
}

const Encoder& JsonEncoder() {
  static const Json kJson;
  return kJson;
}

}  // namespace chorus::broker
