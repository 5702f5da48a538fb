#include "open_codec.h"

#include <msgpack.hpp>

namespace chorus::broker::node {

std::string EncodeOpenChannel(std::string_view channel) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack_uint32(kOpenChannelKind);
  pk.pack_str(static_cast<uint32_t>(channel.size()));
  pk.pack_str_body(channel.data(), static_cast<uint32_t>(channel.size()));
  return std::string(buf.data(), buf.size());
}

bool DecodeOpenChannel(std::string_view bytes, std::string& channel) {
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size());
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) return false;
    const msgpack::object* a = o.via.array.ptr;
    if (a[0].type != msgpack::type::POSITIVE_INTEGER || a[0].via.u64 != kOpenChannelKind ||
        a[1].type != msgpack::type::STR || a[1].via.str.size == 0) {
      return false;
    }
    channel.assign(a[1].via.str.ptr, a[1].via.str.size);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string EncodeOpenChannelAnswer() {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(1);
  pk.pack_uint32(kOpenChannelAnswerKind);
  return std::string(buf.data(), buf.size());
}

}  // namespace chorus::broker::node
