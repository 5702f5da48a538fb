// libFuzzer target for the JSON entry of the server API and the native protocol
// (broker/protocol/json_depth.h, docs/operations.md "Security"): JsonDepthAtMost on arbitrary
// bytes must agree with the depth nlohmann's (iterative) SAX parser sees in valid JSON, and
// text that passes the bound must parse and dump() (which recurses per level) without harm.
// Seeds: corpus/json_depth_fuzz (deep arrays, objects and brackets inside strings).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "broker/core/namespaces.h"
#include "broker/protocol/json_depth.h"

namespace {

constexpr size_t kLimit = 64;  // limits.max_json_depth default

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "json_depth_fuzz: %s\n", what);
    std::abort();
  }
}

// Counts the deepest nesting the parser reports, without building a DOM.
struct DepthSax : nlohmann::json_sax<nlohmann::json> {
  size_t depth = 0, max_depth = 0;
  bool Open() {
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool Close() {
    --depth;
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool within = chorus::broker::JsonDepthAtMost(text, kLimit);
  // nlohmann's lexer takes a NUL byte for the end of input; the scan reads past it (so it can
  // only be stricter). The two are compared on the text the parser reads.
  const std::string_view parsed = text.substr(0, text.find('\0'));
  DepthSax sax;
  const bool valid = nlohmann::json::sax_parse(parsed, &sax, nlohmann::json::input_format_t::json,
                                               /*strict=*/true, /*ignore_comments=*/false);
  if (valid) {
    const bool parsed_within = chorus::broker::JsonDepthAtMost(parsed, kLimit);
    Check(parsed_within == (sax.max_depth <= kLimit), "scan disagrees with the parser's depth");
    Check(chorus::broker::JsonDepthAtMost(parsed, sax.max_depth), "scan deeper than the parser");
    Check(!within || parsed_within, "the whole text passes but its parsed prefix does not");
  }
  if (within) {  // what the API and native paths then do with it
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) Check(!j.dump().empty(), "dump of bounded JSON");
  }
  static_cast<void>(chorus::broker::kMaxJsonDepth);
  return 0;
}
