#include "chp/value_json.h"

#include <msgpack.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chp/keys.h"

namespace chorus::chp {
namespace {

void AppendUtf8Escaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

// `key_nesting`: how many non-string map keys enclose `o`. Each such key is rendered and then
// escaped into a JSON string, which can double its size; nested ones would grow exponentially
// (found by chp_frame_fuzz), so beyond kMaxKeyNesting a key is rendered as "$key".
constexpr int kMaxKeyNesting = 2;

void Render(std::string& out, const msgpack::object& o, int depth, int key_nesting = 0) {
  if (depth > 32) {
    out += "null";
    return;
  }
  switch (o.type) {
    case msgpack::type::NIL:
      out += "null";
      break;
    case msgpack::type::BOOLEAN:
      out += o.via.boolean ? "true" : "false";
      break;
    case msgpack::type::POSITIVE_INTEGER:
      out += std::to_string(o.via.u64);
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      out += std::to_string(o.via.i64);
      break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      if (!std::isfinite(o.via.f64)) {
        out += "null";
        break;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", o.via.f64);
      out += buf;
      break;
    }
    case msgpack::type::STR:
      out += JsonString({o.via.str.ptr, o.via.str.size});
      break;
    case msgpack::type::BIN:
      out += '"' + Base64({o.via.bin.ptr, o.via.bin.size}) + '"';
      break;
    case msgpack::type::EXT:
      out += "{\"$ext\":" + std::to_string(static_cast<int>(o.via.ext.type())) + ",\"data\":\"" +
             Base64({o.via.ext.data(), o.via.ext.size}) + "\"}";
      break;
    case msgpack::type::ARRAY:
      out += '[';
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i > 0) out += ',';
        Render(out, o.via.array.ptr[i], depth + 1, key_nesting);
      }
      out += ']';
      break;
    case msgpack::type::MAP:
      out += '{';
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i > 0) out += ',';
        const msgpack::object_kv& kv = o.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR) {
          Render(out, kv.key, depth + 1, key_nesting);
        } else {
          if (key_nesting >= kMaxKeyNesting) {
            out += "\"$key\"";
          } else {
            std::string k;
            Render(k, kv.key, depth + 1, key_nesting + 1);
            out += JsonString(k);
          }
        }
        out += ':';
        Render(out, kv.val, depth + 1, key_nesting);
      }
      out += '}';
      break;
  }
}

}  // namespace

std::string Base64(std::string_view bytes) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kTable[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  if (IsValidUtf8(s)) {
    AppendUtf8Escaped(out, s);
  } else {
    // Replace each byte of an invalid sequence; valid ASCII is kept.
    for (unsigned char c : s) {
      if (c < 0x80) {
        AppendUtf8Escaped(out, std::string_view(reinterpret_cast<const char*>(&c), 1));
      } else {
        out += "\xEF\xBF\xBD";
      }
    }
  }
  out += '"';
  return out;
}

std::string MsgpackToJson(std::string_view value) {
  try {
    std::size_t off = 0;
    // Same parser limits as the codec, so a hostile value cannot make it allocate wildly.
    // Every element takes at least one byte, so counts above the size cannot be genuine.
    const auto n = static_cast<uint32_t>(std::min<size_t>(value.size(), 1u << 20));
    const msgpack::unpack_limit limit(n, n, 16u << 20, 16u << 20, 1u << 16, 32);
    msgpack::object_handle h =
        msgpack::unpack(value.data(), value.size(), off, nullptr, nullptr, limit);
    if (off == value.size()) {
      std::string out;
      Render(out, h.get(), 0);
      return out;
    }
  } catch (const std::exception&) {
  }
  return "{\"$raw_base64\":\"" + Base64(value) + "\"}";
}

}  // namespace chorus::chp
