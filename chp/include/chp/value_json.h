// Renders CHP values (msgpack, spec §Values) as JSON text for tools and logs.
#pragma once

#include <string>
#include <string_view>

namespace chorus::chp {

// One msgpack object as JSON. bin becomes a base64 string; a value that is not exactly one
// msgpack object becomes {"$raw_base64": "..."}.
std::string MsgpackToJson(std::string_view value);
// A JSON string literal (with quotes) for arbitrary bytes; invalid UTF-8 becomes U+FFFD.
std::string JsonString(std::string_view s);
std::string Base64(std::string_view bytes);

}  // namespace chorus::chp
