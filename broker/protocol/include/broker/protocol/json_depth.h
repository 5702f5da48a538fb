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

}  // namespace chorus::broker
