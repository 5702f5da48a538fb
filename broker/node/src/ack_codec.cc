#include "ack_codec.h"

#include <exception>

#include <msgpack.hpp>

namespace chorus::broker::node {

std::string EncodeAck(const AckMessage& m) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(3);
  pk.pack(kAckKind);
  pk.pack(m.sender);
  pk.pack_array(static_cast<uint32_t>(m.acks.size()));
  for (const AckEntry& a : m.acks) {
    pk.pack_array(5);
    pk.pack(a.partition);
    pk.pack(a.partition_epoch);
    pk.pack(a.channel);
    pk.pack(a.epoch);
    pk.pack(a.offset);
  }
  return {buf.data(), buf.size()};
}

bool DecodeAck(std::string_view bytes, AckMessage& out) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 3) return false;
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::POSITIVE_INTEGER || a[0].via.u64 != kAckKind) return false;
    if (a[2].type != msgpack::type::ARRAY) return false;
    AckMessage m;
    m.sender = a[1].as<uint64_t>();
    for (uint32_t i = 0; i < a[2].via.array.size; ++i) {
      const msgpack::object& e = a[2].via.array.ptr[i];
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 5) return false;
      AckEntry x;
      x.partition = e.via.array.ptr[0].as<uint32_t>();
      x.partition_epoch = e.via.array.ptr[1].as<uint64_t>();
      x.channel = e.via.array.ptr[2].as<std::string>();
      x.epoch = e.via.array.ptr[3].as<std::string>();
      x.offset = e.via.array.ptr[4].as<uint64_t>();
      m.acks.push_back(std::move(x));
    }
    if (m.sender == 0) return false;
    out = std::move(m);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace chorus::broker::node
