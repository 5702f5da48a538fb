// Raw msgpack reading and writing for the codec's fast paths (KVPUB, the commonest frame):
// internal to chp/src (codec.cc, codec_encode.cc), not a public header.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace chorus::chp::codec_raw {

// A forward reader over raw msgpack bytes, for the fast path of the commonest frame (KVPUB). It
// knows only the formats that frame uses; anything else makes it fail and the caller falls back
// to the full parser, so both paths accept the same frames and produce the same messages.
class RawReader {
 public:
  explicit RawReader(std::string_view b)
      : p_(reinterpret_cast<const uint8_t*>(b.data())), end_(p_ + b.size()) {}
  bool AtEnd() const { return p_ == end_; }
  bool Array(uint32_t& n) {
    if (p_ == end_) return false;
    const uint8_t t = *p_;
    if ((t & 0xf0) == 0x90) return Inline(t & 0x0f, n);
    if (t == 0xdc) return BigEndian(2, n);
    if (t == 0xdd) return BigEndian(4, n);
    return false;
  }
  bool Uint(uint64_t& v) {
    if (p_ == end_) return false;
    const uint8_t t = *p_;
    if (t < 0x80) return Inline(t, v);
    if (t >= 0xcc && t <= 0xcf) return BigEndian(size_t{1} << (t - 0xcc), v);
    return false;
  }
  bool Str(std::string_view& s) {
    if (p_ == end_) return false;
    const uint8_t t = *p_;
    size_t n = 0;
    if ((t & 0xe0) == 0xa0) return Inline(t & 0x1f, n) && Bytes(n, s);
    if (t >= 0xd9 && t <= 0xdb) return BigEndian(size_t{1} << (t - 0xd9), n) && Bytes(n, s);
    return false;
  }
  bool Bin(std::string_view& s) {
    if (p_ == end_) return false;
    const uint8_t t = *p_;
    size_t n = 0;
    if (t >= 0xc4 && t <= 0xc6) return BigEndian(size_t{1} << (t - 0xc4), n) && Bytes(n, s);
    return false;
  }
  // msgpack nil: consumed when present.
  bool Nil() {
    if (p_ == end_ || *p_ != 0xc0) return false;
    ++p_;
    return true;
  }

 private:
  // The value is in the type byte itself.
  template <typename T>
  bool Inline(unsigned v, T& out) {
    out = static_cast<T>(v);
    ++p_;
    return true;
  }
  // The type byte is followed by a `width`-byte big-endian value.
  template <typename T>
  bool BigEndian(size_t width, T& out) {
    if (static_cast<size_t>(end_ - p_) < 1 + width) return false;
    uint64_t v = 0;
    for (size_t i = 1; i <= width; ++i) v = (v << 8) | p_[i];
    out = static_cast<T>(v);
    p_ += 1 + width;
    return true;
  }
  bool Bytes(size_t n, std::string_view& s) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

// Writes msgpack with the shortest encodings, as msgpack::packer does, into a buffer the caller
// sized (at most 9 bytes per header plus the payloads).
class RawWriter {
 public:
  explicit RawWriter(char* p) : p_(reinterpret_cast<uint8_t*>(p)) {}
  char* end() const { return reinterpret_cast<char*>(p_); }
  void ArrayHeader(uint32_t n) {
    if (n < 16) {
      *p_++ = static_cast<uint8_t>(0x90 | n);
    } else if (n < 65536) {
      Tagged(0xdc, 2, n);
    } else {
      Tagged(0xdd, 4, n);
    }
  }
  void Uint(uint64_t v) {
    if (v < 128) {
      *p_++ = static_cast<uint8_t>(v);
    } else if (v < 256) {
      Tagged(0xcc, 1, v);
    } else if (v < 65536) {
      Tagged(0xcd, 2, v);
    } else if (v <= 0xffffffffu) {
      Tagged(0xce, 4, v);
    } else {
      Tagged(0xcf, 8, v);
    }
  }
  void Str(std::string_view s) {
    if (s.size() < 32) {
      *p_++ = static_cast<uint8_t>(0xa0 | s.size());
    } else if (s.size() < 256) {
      Tagged(0xd9, 1, s.size());
    } else if (s.size() < 65536) {
      Tagged(0xda, 2, s.size());
    } else {
      Tagged(0xdb, 4, s.size());
    }
    Copy(s);
  }
  void Bin(std::string_view s) {
    if (s.size() < 256) {
      Tagged(0xc4, 1, s.size());
    } else if (s.size() < 65536) {
      Tagged(0xc5, 2, s.size());
    } else {
      Tagged(0xc6, 4, s.size());
    }
    Copy(s);
  }
  void Nil() { *p_++ = 0xc0; }

 private:
  void Tagged(uint8_t tag, size_t width, uint64_t v) {
    *p_++ = tag;
    for (size_t i = width; i-- > 0;) *p_++ = static_cast<uint8_t>(v >> (8 * i));
  }
  void Copy(std::string_view s) {
    if (!s.empty()) std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  uint8_t* p_;
};

}  // namespace chorus::chp::codec_raw
