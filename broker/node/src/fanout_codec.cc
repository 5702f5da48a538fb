#include "fanout_codec.h"

#include <msgpack.hpp>

#include "peer_fields.h"

namespace chorus::broker::node {
namespace {

using Packer = PeerPacker;
constexpr auto Fields = PeerFields;

}  // namespace

std::string EncodeFanoutRequest(const FanoutRequest& r, uint32_t kind) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(5);
  pk.pack(kind);
  pk.pack(r.id);
  pk.pack(r.sender);
  pk.pack(r.method);
  pk.pack(r.params);
  return {buf.data(), buf.size()};
}

std::string EncodeFanoutReply(const FanoutReply& r, uint32_t kind) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(4);
  pk.pack(kind);
  pk.pack(r.id);
  pk.pack(r.code);
  pk.pack(r.body);
  return {buf.data(), buf.size()};
}

bool DecodeFanoutRequest(std::string_view bytes, FanoutRequest& out, uint32_t kind) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kind, 5);
    if (a == nullptr) return false;
    FanoutRequest r;
    r.id = a[1].as<uint64_t>();
    r.sender = a[2].as<uint64_t>();
    r.method = a[3].as<std::string>();
    r.params = a[4].as<std::string>();
    out = std::move(r);
    return true;
  } catch (const std::exception&) {
    return false;  // msgpack throws on malformed input and wrong types
  }
}

bool DecodeFanoutReply(std::string_view bytes, FanoutReply& out, uint32_t kind) {
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object* a = Fields(oh.get(), kind, 4);
    if (a == nullptr) return false;
    FanoutReply r;
    r.id = a[1].as<uint64_t>();
    r.code = a[2].as<uint32_t>();
    r.body = a[3].as<std::string>();
    out = std::move(r);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace chorus::broker::node
