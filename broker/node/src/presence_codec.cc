#include "presence_codec.h"

#include <msgpack.hpp>

#include "peer_fields.h"

namespace chorus::broker::node {
namespace {

using Packer = PeerPacker;
constexpr auto Fields = PeerFields;

}  // namespace

std::string EncodePresenceUpdate(const PresenceUpdate& u) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  if (u.sync) {
    pk.pack_array(6);
    pk.pack(kPresenceSyncKind);
    pk.pack(u.sender);
    pk.pack(u.incarnation);
    pk.pack(u.partition);
    pk.pack(u.partition_epoch);
    pk.pack_array(static_cast<uint32_t>(u.held.size()));
    for (const auto& [channel, client] : u.held) {
      pk.pack_array(2);
      pk.pack(channel);
      pk.pack(client);
    }
    return {buf.data(), buf.size()};
  }
  pk.pack_array(11);
  pk.pack(kPresenceUpdateKind);
  pk.pack(u.sender);
  pk.pack(u.incarnation);
  pk.pack(u.partition);
  pk.pack(u.partition_epoch);
  pk.pack(u.channel);
  pk.pack(u.join);
  pk.pack(u.entry.client);
  pk.pack(u.entry.user);
  pk.pack(u.entry.conn_info);
  pk.pack(u.entry.chan_info);
  return {buf.data(), buf.size()};
}

std::string EncodePresenceQuery(const PresenceQuery& q) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(7);
  pk.pack(kPresenceQueryKind);
  pk.pack(q.id);
  pk.pack(q.sender);
  pk.pack(q.channel);
  pk.pack(static_cast<uint32_t>(q.mode));
  pk.pack(q.cursor);
  pk.pack(q.limit);
  return {buf.data(), buf.size()};
}

std::string EncodePresenceAnswer(const PresenceAnswer& a) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(9);
  pk.pack(kPresenceAnswerKind);
  pk.pack(a.id);
  pk.pack(static_cast<uint32_t>(a.status));
  pk.pack(a.error);
  pk.pack_array(static_cast<uint32_t>(a.entries.size()));
  for (const PresenceEntry& e : a.entries) {
    pk.pack_array(6);
    pk.pack(e.client);
    pk.pack(e.user);
    pk.pack(e.conn_info);
    pk.pack(e.chan_info);
    pk.pack(e.node);
    pk.pack(e.incarnation);
  }
  pk.pack(a.next_cursor);
  pk.pack(a.num_clients);
  pk.pack(a.num_users);
  pk.pack(a.users);
  return {buf.data(), buf.size()};
}

namespace {

bool DecodePresenceSync(const msgpack::object& o, PresenceUpdate& out) {
  const msgpack::object* a = Fields(o, kPresenceSyncKind, 6);
  if (a == nullptr || a[5].type != msgpack::type::ARRAY) return false;
  PresenceUpdate u;
  u.sync = true;
  u.sender = a[1].as<uint64_t>();
  u.incarnation = a[2].as<uint64_t>();
  u.partition = a[3].as<uint32_t>();
  u.partition_epoch = a[4].as<uint64_t>();
  for (uint32_t i = 0; i < a[5].via.array.size; ++i) {
    const msgpack::object& e = a[5].via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 2) return false;
    u.held.emplace_back(e.via.array.ptr[0].as<std::string>(), e.via.array.ptr[1].as<std::string>());
    if (u.held.back().first.empty() || u.held.back().second.empty()) return false;
  }
  if (u.sender == 0) return false;
  out = std::move(u);
  return true;
}

}  // namespace

bool DecodePresenceUpdate(std::string_view bytes, PresenceUpdate& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    if (Fields(oh.get(), kPresenceSyncKind, 6) != nullptr) return DecodePresenceSync(oh.get(), out);
    const msgpack::object* a = Fields(oh.get(), kPresenceUpdateKind, 11);
    if (a == nullptr) return false;
    PresenceUpdate u;
    u.sender = a[1].as<uint64_t>();
    u.incarnation = a[2].as<uint64_t>();
    u.partition = a[3].as<uint32_t>();
    u.partition_epoch = a[4].as<uint64_t>();
    u.channel = a[5].as<std::string>();
    u.join = a[6].as<bool>();
    u.entry.client = a[7].as<std::string>();
    u.entry.user = a[8].as<std::string>();
    u.entry.conn_info = a[9].as<std::string>();
    u.entry.chan_info = a[10].as<std::string>();
    u.entry.node = u.sender;
    u.entry.incarnation = u.incarnation;
    if (u.sender == 0 || u.entry.client.empty() || u.channel.empty()) return false;
    out = std::move(u);
    return true;
  } catch (const std::exception&) {
    return false;  // msgpack throws on malformed input and wrong types
  }
}

bool DecodePresenceQuery(std::string_view bytes, PresenceQuery& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kPresenceQueryKind, 7);
    if (a == nullptr) return false;
    PresenceQuery q;
    q.id = a[1].as<uint64_t>();
    q.sender = a[2].as<uint64_t>();
    q.channel = a[3].as<std::string>();
    const uint32_t mode = a[4].as<uint32_t>();
    if (mode > static_cast<uint32_t>(PresenceQueryMode::kUsers)) return false;
    q.mode = static_cast<PresenceQueryMode>(mode);
    q.cursor = a[5].as<std::string>();
    q.limit = a[6].as<uint32_t>();
    out = std::move(q);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool DecodePresenceAnswer(std::string_view bytes, PresenceAnswer& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kPresenceAnswerKind, 9);
    if (a == nullptr) return false;
    PresenceAnswer r;
    r.id = a[1].as<uint64_t>();
    const uint32_t status = a[2].as<uint32_t>();
    if (status > static_cast<uint32_t>(PresenceAnswerStatus::kError)) return false;
    r.status = static_cast<PresenceAnswerStatus>(status);
    r.error = a[3].as<uint32_t>();
    if (a[4].type != msgpack::type::ARRAY) return false;
    for (uint32_t i = 0; i < a[4].via.array.size; ++i) {
      const msgpack::object& e = a[4].via.array.ptr[i];
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 6) return false;
      const msgpack::object* f = e.via.array.ptr;
      r.entries.push_back({f[0].as<std::string>(), f[1].as<std::string>(), f[2].as<std::string>(),
                           f[3].as<std::string>(), f[4].as<uint64_t>(), f[5].as<uint64_t>()});
    }
    r.next_cursor = a[5].as<std::string>();
    r.num_clients = a[6].as<uint64_t>();
    r.num_users = a[7].as<uint64_t>();
    r.users = a[8].as<std::vector<std::string>>();
    out = std::move(r);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace chorus::broker::node
