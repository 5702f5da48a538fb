// The native client protocol's frames (docs/protocol/native.md, "Frames"): decoding commands
// and encoding replies and pushes. The only place native frames are (de)serialised.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "broker/core/history.h"
#include "broker/core/presence.h"
#include "broker/protocol/client_protocol.h"

namespace chorus::broker {

// Read access to a command's `params` map. Getters return nullopt when the key is absent and
// set `bad()` when it is present with the wrong type (the command is then answered with 107).
class Params {
 public:
  Params() = default;
  explicit Params(const msgpack::object* map) : map_(map) {}
  std::optional<std::string_view> Str(std::string_view key);
  std::optional<uint64_t> Uint(std::string_view key);
  std::optional<int64_t> Int(std::string_view key);
  std::optional<bool> Bool(std::string_view key);
  const msgpack::object* Map(std::string_view key);
  bool bad() const { return bad_; }

 private:
  const msgpack::object* Find(std::string_view key) const;
  const msgpack::object* map_ = nullptr;
  bool bad_ = false;
};

struct NativeCommand {
  uint64_t id = 0;  // 0 when absent or unusable
  std::string method;
  msgpack::object_handle handle;  // owns the decoded frame
  const msgpack::object* params = nullptr;
};

// Decodes one command frame. False when it is not a msgpack map with a uint `id` >= 1 and a str
// `method` (N-6); `out.id` is still set when the id alone was usable.
bool DecodeCommand(std::string_view frame, NativeCommand& out);

// Decodes one command frame into the protocol-neutral form (client_protocol.h). False when the
// frame is malformed (N-6; `out.id` set when usable). Otherwise `out.error` is 104 for an
// unknown method (N-7), 107 for missing or mistyped params (N-8), or 0.
bool DecodeNativeCommand(std::string_view frame, ClientCommand& out);

// Encoding. Every function returns one complete frame.
using Packer = msgpack::packer<msgpack::sbuffer>;
void PackStr(Packer& pk, std::string_view s);

// A reply with `result`: `fill` packs exactly `entries` key/value pairs of the result map.
template <typename F>
std::string EncodeResult(uint64_t id, uint32_t entries, F&& fill) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "id");
  pk.pack_uint64(id);
  PackStr(pk, "result");
  pk.pack_map(entries);
  fill(pk);
  return std::string(buf.data(), buf.size());
}
std::string EncodeEmptyResult(uint64_t id);
// A reply whose `result` is `result_map`: one complete msgpack map, already encoded (the sync
// methods' results, converted from the server API's JSON, N-22). The caller guarantees it is
// exactly one msgpack map.
std::string EncodeRawResult(uint64_t id, std::string_view result_map);
std::string EncodeError(uint64_t id, uint32_t code, std::string_view message);

// Publications and client info. Publication::info holds the publisher's ClientInfo as JSON
// (`{"client","user","conn_info","chan_info"}`, the infos as JSON values, absent when empty): the
// shape the WebSocket and HTTP APIs use; the native frames carry it as a map of strings.
PresenceEntry ClientInfoFromJson(std::string_view json);
std::string ClientInfoToJson(const PresenceEntry& e);
void PackClientInfo(Packer& pk, const PresenceEntry& e);
// `publisher`, when given, is the structured form of p.info (saves parsing it back).
void PackPublication(Packer& pk, const Publication& p, const PresenceEntry* publisher = nullptr);

std::string EncodePubPush(std::string_view channel, const Publication& p,
                          const PresenceEntry* publisher = nullptr);

std::string EncodePresencePush(std::string_view channel, PresenceEventType type,
                               const PresenceEntry& e);
std::string EncodeUnsubscribePush(std::string_view channel, uint32_t code, std::string_view reason);
std::string EncodeDisconnectPush(uint32_t code, std::string_view reason, bool reconnect);
// An asynchronous message from the server (server API `send`): `data` is JSON text.
std::string EncodeMessagePush(std::string_view data_json);
// The six fields of a subscribe result (the caller packs the map header).
void PackSubscribeResult(Packer& pk, const SubscribeResult& r);
// A server-side subscription made after connect (server API `subscribe`, N-18).
std::string EncodeSubscribePush(std::string_view channel, const SubscribeResult& r);

}  // namespace chorus::broker
