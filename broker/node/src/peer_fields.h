// Decoding helper shared by the peer message codecs (peer_codec, presence_codec,
// fanout_codec): every peer message is a msgpack array whose first element is its kind.
#pragma once

#include <cstdint>

#include <msgpack.hpp>

namespace chorus::broker::node {

using PeerPacker = msgpack::packer<msgpack::sbuffer>;

// The array of a message of `kind` with exactly `size` fields, or nullptr.
inline const msgpack::object* PeerFields(const msgpack::object& o, uint32_t kind, uint32_t size) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != size) return nullptr;
  const msgpack::object* a = o.via.array.ptr;
  if (a[0].type != msgpack::type::POSITIVE_INTEGER || a[0].via.u64 != kind) return nullptr;
  return a;
}

}  // namespace chorus::broker::node
