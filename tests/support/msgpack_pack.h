// The one msgpack writer of the raw-wire tests (CHP wire, native wire, the client's fake node):
// frames are built here byte by byte with msgpack-cxx's packer, never with our codecs, so a test
// checks the wire format and not our encoder against our decoder. Chained:
//   Pack().Map(2).Str("id").U(1).Str("method").Str("ping").str()
// Integers take their shortest encoding unless a fixed width is asked for (U64, I64), so a test
// can also check that receivers accept every integer encoding.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <msgpack.hpp>

namespace chorus::testing {

class Pack {
 public:
  Pack& Array(uint32_t n) {
    pk_.pack_array(n);
    return *this;
  }
  Pack& Map(uint32_t n) {
    pk_.pack_map(n);
    return *this;
  }
  Pack& U(uint64_t v) {  // shortest encoding
    pk_.pack_uint64(v);
    return *this;
  }
  Pack& I(int64_t v) {  // shortest encoding
    pk_.pack_int64(v);
    return *this;
  }
  Pack& U64(uint64_t v) {  // always 0xcf + 8 bytes
    pk_.pack_fix_uint64(v);
    return *this;
  }
  Pack& I64(int64_t v) {  // always 0xd3 + 8 bytes
    pk_.pack_fix_int64(v);
    return *this;
  }
  Pack& Bool(bool v) {
    if (v) {
      pk_.pack_true();
    } else {
      pk_.pack_false();
    }
    return *this;
  }
  Pack& Nil() {
    pk_.pack_nil();
    return *this;
  }
  Pack& Double(double v) {  // always float64 (msgpack-cxx's pack_double packs 1.0 as an integer)
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    std::string raw = "\xcb";
    for (int i = 7; i >= 0; --i) raw.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
    return Raw(raw);
  }
  Pack& Str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Bin(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Ext(int8_t type, std::string_view s) {
    pk_.pack_ext(s.size(), type);
    pk_.pack_ext_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  // Bytes as they are: an already packed value, or a deliberately broken one.
  Pack& Raw(std::string_view bytes) {
    buf_.write(bytes.data(), bytes.size());
    return *this;
  }
  std::string str() const { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_{buf_};
};

}  // namespace chorus::testing
