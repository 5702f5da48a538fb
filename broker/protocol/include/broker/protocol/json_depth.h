// A bound on the nesting of JSON text from outside, checked before anything parses or
// re-serialises it (docs/operations.md, "Security": limits.max_json_depth). nlohmann's parser
// is iterative but its dump() recurses once per level, so deep input must never reach a DOM
// that is dumped. Pure function, no allocation, no recursion.
#pragma once

#include <cstddef>
#include <string_view>

namespace chorus::broker {

// True when no array or object in `text` is nested more than `max_depth` levels deep
// (a scalar is depth 0, `[]` depth 1, `[[1]]` depth 2). Brackets inside strings do not count.
// Linear in the text; stops at the first level too deep. Says nothing about validity: the
// caller still parses (malformed text may pass this check and fail there).
bool JsonDepthAtMost(std::string_view text, size_t max_depth);

// True when `text` holds a NUL byte. Valid JSON never does (RFC 8259: NUL is not whitespace and
// must be escaped in strings), but nlohmann's parser takes a NUL for the end of the input, so
// `{"a":1}\0junk` would pass json::accept / json::parse and the junk be stored and relayed
// to every subscriber. Every entry of JSON text from outside refuses such text first
// (docs/operations.md "Security").
constexpr bool HasNulByte(std::string_view text) {
  return text.find('\0') != std::string_view::npos;
}

}  // namespace chorus::broker
