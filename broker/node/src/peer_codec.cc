#include "peer_codec.h"

#include <msgpack.hpp>

#include "peer_fields.h"

namespace chorus::broker::node {
namespace {

constexpr uint32_t kRequestKind = 1;
constexpr uint32_t kReplyKind = 2;
constexpr uint32_t kMaxStatus = 3;

using Packer = PeerPacker;
constexpr auto Fields = PeerFields;

}  // namespace

std::string EncodeForwardRequest(const ForwardRequest& r) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(10);
  pk.pack(kRequestKind);
  pk.pack(r.id);
  pk.pack(r.partition);
  pk.pack(r.partition_epoch);
  pk.pack(r.sender);
  pk.pack(r.channel);
  pk.pack(r.data);
  if (r.info) {
    pk.pack(*r.info);
  } else {
    pk.pack_nil();
  }
  pk.pack(r.tags);
  pk.pack(r.skip_history);
  return {buf.data(), buf.size()};
}

std::string EncodeForwardReply(const ForwardReply& r) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(8);
  pk.pack(kReplyKind);
  pk.pack(r.id);
  pk.pack(static_cast<uint32_t>(r.status));
  pk.pack(r.error);
  pk.pack(r.offset);
  pk.pack(r.epoch);
  pk.pack(r.primary);
  pk.pack(r.partition_epoch);
  return {buf.data(), buf.size()};
}

bool DecodeForwardRequest(std::string_view bytes, ForwardRequest& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kRequestKind, 10);
    if (a == nullptr) return false;
    ForwardRequest r;
    r.id = a[1].as<uint64_t>();
    r.partition = a[2].as<uint32_t>();
    r.partition_epoch = a[3].as<uint64_t>();
    r.sender = a[4].as<uint64_t>();
    r.channel = a[5].as<std::string>();
    r.data = a[6].as<std::string>();
    if (!a[7].is_nil()) r.info = a[7].as<std::string>();
    r.tags = a[8].as<std::map<std::string, std::string>>();
    r.skip_history = a[9].as<bool>();
    out = std::move(r);
    return true;
  } catch (const std::exception&) {
    return false;  // msgpack throws on malformed input and wrong types
  }
}

bool DecodeForwardReply(std::string_view bytes, ForwardReply& out) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kReplyKind, 8);
    if (a == nullptr) return false;
    ForwardReply r;
    r.id = a[1].as<uint64_t>();
    const uint32_t status = a[2].as<uint32_t>();
    if (status > kMaxStatus) return false;
    r.status = static_cast<ForwardStatus>(status);
    r.error = a[3].as<uint32_t>();
    r.offset = a[4].as<uint64_t>();
    r.epoch = a[5].as<std::string>();
    r.primary = a[6].as<uint64_t>();
    r.partition_epoch = a[7].as<uint64_t>();
    out = std::move(r);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

uint32_t PeerMessageKind(std::string_view bytes) {
  // fixarray (0x90..0x9f), array16 (0xdc), array32 (0xdd); then a positive fixint or uint8.
  if (bytes.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  size_t at = 0;
  if (b0 >= 0x90 && b0 <= 0x9f) {
    at = 1;
  } else if (b0 == 0xdc) {
    at = 3;
  } else if (b0 == 0xdd) {
    at = 5;
  } else {
    return 0;
  }
  if (bytes.size() <= at) return 0;
  const auto k = static_cast<unsigned char>(bytes[at]);
  if (k <= 0x7f) return k;
  if (k == 0xcc && bytes.size() > at + 1) return static_cast<unsigned char>(bytes[at + 1]);
  return 0;
}

}  // namespace chorus::broker::node
