#include "chp/keys.h"

#include "chp/types.h"

namespace chorus::chp {
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and code points past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool IsValidSubtree(std::string_view subtree) {
  if (subtree.empty() || subtree.size() > kMaxSubtreeBytes) return false;
  if (subtree.front() == '$' || subtree == kAllSubtrees) return false;
  // One pass for '/' and control characters; the UTF-8 check only when a byte is not ASCII.
  bool ascii = true;
  for (unsigned char c : subtree) {
    if (c == '/' || c < 0x20 || c == 0x7f) return false;
    ascii = ascii && c < 0x80;
  }
  return ascii || IsValidUtf8(subtree);
}

Result<KeyParts> SplitKey(std::string_view full_key) {
  if (full_key.size() > kMaxKeyBytes) return Errc::kBadKey;
  const size_t slash = full_key.find('/');
  if (slash == std::string_view::npos) return Errc::kBadKey;
  KeyParts parts{full_key.substr(0, slash), full_key.substr(slash + 1)};
  if (!IsValidSubtree(parts.subtree) || parts.key.empty()) return Errc::kBadKey;
  // No control characters and valid UTF-8, in one pass for the common all-ASCII key (every
  // published topic and every Set goes through here).
  bool ascii = true;
  for (unsigned char c : parts.key) {
    if (c < 0x20 || c == 0x7f) return Errc::kBadKey;
    ascii = ascii && c < 0x80;
  }
  if (!ascii && !IsValidUtf8(parts.key)) return Errc::kBadKey;
  return parts;
}

std::string JoinKey(std::string_view subtree, std::string_view key) {
  std::string out;
  out.reserve(subtree.size() + 1 + key.size());
  out.append(subtree).push_back('/');
  out.append(key);
  return out;
}

std::string TopicPrefix(std::string_view subtree) {
  std::string out(subtree);
  out.push_back('/');
  return out;
}

}  // namespace chorus::chp
