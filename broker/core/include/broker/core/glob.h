// Glob patterns over bytes: '*' matches any run (empty included), '?' one byte, every other
// byte itself. The server API's `channels` pattern (as Centrifugo's) uses it; the gateway's
// Origin patterns (http.allowed_origins, '*' only, case ignored) are the same matcher with the
// options below, but the gateway may not use core (broker/gateway/README.md) and keeps its own.
// Pure function: linear backtracking on the last '*' (O(pattern x text) at worst), no
// recursion, no allocation.
#pragma once

#include <string_view>

namespace chorus::broker {

struct GlobOptions {
  bool question_mark = true;       // '?' matches one byte; false: '?' matches only itself
  bool ignore_ascii_case = false;  // 'A'..'Z' equal 'a'..'z'
};

// True when all of `text` matches `pattern`.
constexpr bool GlobMatch(std::string_view pattern, std::string_view text, GlobOptions o = {}) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  auto same = [&](char p, char t) {
    if (o.question_mark && p == '?') return true;
    return o.ignore_ascii_case ? lower(p) == lower(t) : p == t;
  };
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < text.size()) {
    if (p < pattern.size() && pattern[p] != '*' && same(pattern[p], text[i])) {
      ++p;
      ++i;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;  // '*' matches nothing for now; on a mismatch it takes one more byte
      mark = i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace chorus::broker
