#include "broker/protocol/native_codec.h"

#include "broker/core/namespaces.h"
#include "broker/protocol/json_depth.h"

#include "broker/protocol/client_json.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace chorus::broker {
namespace {

bool KeyIs(const msgpack::object& k, std::string_view key) {
  return k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key;
}

const msgpack::object* FindIn(const msgpack::object* map, std::string_view key) {
  if (map == nullptr || map->type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map->via.map.size; ++i) {
    const auto& kv = map->via.map.ptr[i];
    if (KeyIs(kv.key, key)) return &kv.val;
  }
  return nullptr;
}

}  // namespace

const msgpack::object* Params::Find(std::string_view key) const {
  return FindIn(map_, key);
}

std::optional<std::string_view> Params::Str(std::string_view key) {
  const auto* o = Find(key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type != msgpack::type::STR) {
    bad_ = true;
    return std::nullopt;
  }
  return std::string_view(o->via.str.ptr, o->via.str.size);
}

std::optional<uint64_t> Params::Uint(std::string_view key) {
  const auto* o = Find(key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type != msgpack::type::POSITIVE_INTEGER) {
    bad_ = true;
    return std::nullopt;
  }
  return o->via.u64;
}

std::optional<int64_t> Params::Int(std::string_view key) {
  const auto* o = Find(key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
  if (o->type == msgpack::type::POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
    return static_cast<int64_t>(o->via.u64);
  }
  bad_ = true;
  return std::nullopt;
}

std::optional<bool> Params::Bool(std::string_view key) {
  const auto* o = Find(key);
  if (o == nullptr || o->type == msgpack::type::NIL) return std::nullopt;
  if (o->type != msgpack::type::BOOLEAN) {
    bad_ = true;
    return std::nullopt;
  }
  return o->via.boolean;
}

const msgpack::object* Params::Map(std::string_view key) {
  const auto* o = Find(key);
  if (o == nullptr || o->type == msgpack::type::NIL) return nullptr;
  if (o->type != msgpack::type::MAP) {
    bad_ = true;
    return nullptr;
  }
  return o;
}

bool DecodeCommand(std::string_view frame, NativeCommand& out) {
  out = NativeCommand{};
  size_t consumed = 0;
  try {
    // The parser reserves room for a container's elements when it reads the header: capping the
    // counts by the frame size accepts the same frames and stops a 5-byte frame from asking for
    // 256 GiB (seen under ASan). Commands nest a few maps; data and info are JSON text (N-21).
    const size_t array_cap = std::min<size_t>(size_t{1} << 20, frame.size());
    const size_t map_cap = std::min<size_t>(size_t{1} << 16, frame.size() / 2);
    const msgpack::unpack_limit limit(array_cap, map_cap, /*str=*/frame.size(),
                                      /*bin=*/frame.size(), /*ext=*/1u << 16, /*depth=*/16);
    out.handle = msgpack::unpack(frame.data(), frame.size(), consumed, nullptr, nullptr, limit);
  } catch (const std::exception&) {
    return false;  // not msgpack, or truncated
  }
  const msgpack::object& root = out.handle.get();
  if (root.type != msgpack::type::MAP) return false;
  const auto* id = FindIn(&root, "id");
  if (id != nullptr && id->type == msgpack::type::POSITIVE_INTEGER && id->via.u64 >= 1) {
    out.id = id->via.u64;
  }
  if (consumed != frame.size()) return false;  // N-6: one map per frame, nothing after it
  const auto* method = FindIn(&root, "method");
  if (out.id == 0 || method == nullptr || method->type != msgpack::type::STR) return false;
  out.method.assign(method->via.str.ptr, method->via.str.size);
  out.params = FindIn(&root, "params");
  if (out.params != nullptr && out.params->type == msgpack::type::NIL) out.params = nullptr;
  if (out.params != nullptr && out.params->type != msgpack::type::MAP) return false;
  return true;
}

bool DecodeNativeCommand(std::string_view frame, ClientCommand& out) {
  out = ClientCommand{};
  NativeCommand cmd;
  const bool ok = DecodeCommand(frame, cmd);
  out.id = cmd.id;
  if (!ok) return false;
  Params p(cmd.params);
  auto str = [&](std::string_view key) { return std::string(p.Str(key).value_or("")); };
  const std::string& m = cmd.method;
  bool missing = false;
  auto required = [&](std::string_view key) {
    auto v = p.Str(key);
    if (!v) missing = true;
    return std::string(v.value_or(""));
  };
  if (m == "connect") {
    out.request =
        ConnectRequest{str("token"), str("user"), str("info"), str("name"), str("version"), {}};
  } else if (m == "subscribe") {
    SubscribeRequest r;
    r.channel = required("channel");
    r.token = str("token");
    r.info = str("info");
    r.recover = p.Bool("recover").value_or(false);
    r.epoch = str("epoch");
    r.offset = p.Uint("offset").value_or(0);
    out.request = std::move(r);
  } else if (m == "unsubscribe") {
    out.request = UnsubscribeRequest{required("channel")};
  } else if (m == "publish") {
    PublishRequest r;
    r.channel = required("channel");
    r.data = required("data");
    out.request = std::move(r);
  } else if (m == "presence") {
    PresenceRequest r;
    r.channel = required("channel");
    r.cursor = str("cursor");
    const uint64_t limit = p.Uint("limit").value_or(0);
    r.limit = static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));
    out.request = std::move(r);
  } else if (m == "presence_stats") {
    out.request = PresenceStatsRequest{required("channel")};
  } else if (m == "history") {
    HistoryRequest r;
    r.channel = required("channel");
    r.limit = p.Int("limit").value_or(0);
    r.reverse = p.Bool("reverse").value_or(false);
    if (const msgpack::object* since = p.Map("since")) {
      Params sp(since);
      StreamPosition pos;
      pos.offset = sp.Uint("offset").value_or(0);
      pos.epoch = std::string(sp.Str("epoch").value_or(""));
      if (sp.bad()) missing = true;
      r.since = pos;
    }
    out.request = std::move(r);
  } else if (m == "ping") {
    out.request = PingRequest{};
  } else if (m == "disconnect") {
    out.request = DisconnectRequest{};
  } else {
    out.error = ToCode(Errc::kMethodNotFound);  // N-7
    return true;
  }
  if (p.bad() || missing) out.error = ToCode(Errc::kBadRequest);  // N-8
  return true;
}

void PackStr(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

std::string EncodeEmptyResult(uint64_t id) {
  return EncodeResult(id, 0, [](Packer&) {});
}

std::string EncodeRawResult(uint64_t id, std::string_view result_map) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "id");
  pk.pack_uint64(id);
  PackStr(pk, "result");
  buf.write(result_map.data(), result_map.size());
  return std::string(buf.data(), buf.size());
}

std::string EncodeError(uint64_t id, uint32_t code, std::string_view message) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  PackStr(pk, "id");
  pk.pack_uint64(id);
  PackStr(pk, "error");
  pk.pack_map(2);
  PackStr(pk, "code");
  pk.pack_uint32(code);
  PackStr(pk, "message");
  PackStr(pk, message);
  return std::string(buf.data(), buf.size());
}

void PackClientInfo(Packer& pk, const PresenceEntry& e) {
  pk.pack_map(4);
  PackStr(pk, "client");
  PackStr(pk, e.client);
  PackStr(pk, "user");
  PackStr(pk, e.user);
  PackStr(pk, "conn_info");
  PackStr(pk, e.conn_info);
  PackStr(pk, "chan_info");
  PackStr(pk, e.chan_info);
}

PresenceEntry ClientInfoFromJson(std::string_view json) {
  PresenceEntry e;
  // The infos are re-serialised with dump(), which recurses once per level: nothing deeper
  // than any config allows is read (kMaxJsonDepth, +1 for the ClientInfo object itself).
  if (!JsonDepthAtMost(json, kMaxJsonDepth + 1)) return e;
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return e;
  auto str = [&](const char* key, std::string& out) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) out = it->get<std::string>();
  };
  auto raw = [&](const char* key, std::string& out) {  // the infos stay JSON text
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) out = it->dump();
  };
  str("client", e.client);
  str("user", e.user);
  raw("conn_info", e.conn_info);
  raw("chan_info", e.chan_info);
  return e;
}

std::string ClientInfoToJson(const PresenceEntry& e) {
  return json::ClientInfoJson(e);
}

void PackPublication(Packer& pk, const Publication& p, const PresenceEntry* publisher) {
  const uint32_t n = 2 + (p.info ? 1 : 0) + (p.tags.empty() ? 0 : 1);
  pk.pack_map(n);
  PackStr(pk, "offset");
  pk.pack_uint64(p.offset);
  PackStr(pk, "data");
  PackStr(pk, p.data);
  if (p.info) {
    PackStr(pk, "info");
    PackClientInfo(pk, publisher ? *publisher : ClientInfoFromJson(*p.info));
  }
  if (!p.tags.empty()) {
    PackStr(pk, "tags");
    pk.pack_map(static_cast<uint32_t>(p.tags.size()));
    for (const auto& [k, v] : p.tags) {
      PackStr(pk, k);
      PackStr(pk, v);
    }
  }
}

namespace {
template <typename F>
std::string EncodePush(std::string_view type, const std::string_view* channel, F&& body) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(channel ? 3 : 2);
  PackStr(pk, "push");
  PackStr(pk, type);
  if (channel) {
    PackStr(pk, "channel");
    PackStr(pk, *channel);
  }
  PackStr(pk, "data");
  body(pk);
  return std::string(buf.data(), buf.size());
}
}  // namespace

std::string EncodePubPush(std::string_view channel, const Publication& p,
                          const PresenceEntry* publisher) {
  return EncodePush("pub", &channel, [&](Packer& pk) { PackPublication(pk, p, publisher); });
}

std::string EncodePresencePush(std::string_view channel, PresenceEventType type,
                               const PresenceEntry& e) {
  return EncodePush(PresenceEventTypeName(type), &channel, [&](Packer& pk) {
    pk.pack_map(1);
    PackStr(pk, "info");
    PackClientInfo(pk, e);
  });
}

std::string EncodeUnsubscribePush(std::string_view channel, uint32_t code,
                                  std::string_view reason) {
  return EncodePush("unsubscribe", &channel, [&](Packer& pk) {
    pk.pack_map(2);
    PackStr(pk, "code");
    pk.pack_uint32(code);
    PackStr(pk, "reason");
    PackStr(pk, reason);
  });
}

void PackSubscribeResult(Packer& pk, const SubscribeResult& r) {
  PackStr(pk, "recoverable");
  pk.pack(r.recoverable);
  PackStr(pk, "epoch");
  PackStr(pk, r.epoch);
  PackStr(pk, "offset");
  pk.pack_uint64(r.offset);
  PackStr(pk, "recovered");
  pk.pack(r.recovered);
  PackStr(pk, "was_recovering");
  pk.pack(r.was_recovering);
  PackStr(pk, "publications");
  pk.pack_array(static_cast<uint32_t>(r.publications.size()));
  for (const auto& pub : r.publications) PackPublication(pk, pub);
}

std::string EncodeMessagePush(std::string_view data_json) {
  return EncodePush("message", nullptr, [&](Packer& pk) {
    pk.pack_map(1);
    PackStr(pk, "data");
    PackStr(pk, data_json);
  });
}

std::string EncodeSubscribePush(std::string_view channel, const SubscribeResult& r) {
  return EncodePush("subscribe", &channel, [&](Packer& pk) {
    pk.pack_map(6);
    PackSubscribeResult(pk, r);
  });
}

std::string EncodeDisconnectPush(uint32_t code, std::string_view reason, bool reconnect) {
  return EncodePush("disconnect", nullptr, [&](Packer& pk) {
    pk.pack_map(3);
    PackStr(pk, "code");
    pk.pack_uint32(code);
    PackStr(pk, "reason");
    PackStr(pk, reason);
    PackStr(pk, "reconnect");
    if (reconnect) {
      pk.pack_true();
    } else {
      pk.pack_false();
    }
  });
}

}  // namespace chorus::broker
