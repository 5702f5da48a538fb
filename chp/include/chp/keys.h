// Key and subtree naming rules (docs/protocol/chp.md, "Keys and subtrees").
#pragma once

#include <string>
#include <string_view>

#include "chp/errc.h"

namespace chorus::chp {

struct KeyParts {
  std::string_view subtree;
  std::string_view key;
};

bool IsValidUtf8(std::string_view s);
// A subtree name: 1..kMaxSubtreeBytes bytes of UTF-8, no '/', no control characters, not
// starting with '$' (reserved for control topics), not "*".
bool IsValidSubtree(std::string_view subtree);
// Splits "subtree/key" and validates both parts; the key part may contain '/'.
Result<KeyParts> SplitKey(std::string_view full_key);
std::string JoinKey(std::string_view subtree, std::string_view key);
// The publisher topic prefix for a subtree: "subtree/".
std::string TopicPrefix(std::string_view subtree);

}  // namespace chorus::chp
