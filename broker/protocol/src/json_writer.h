// Writing compact JSON for the WebSocket codec (client_json_encode.cc): string literals with
// the short escapes simdjson's minify writes, unsigned numbers, and an object writer. Private to
// the protocol module. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chorus::broker::json::detail {

// Appends `s` as a JSON string literal with the short escapes (\n, \t...) where JSON has one:
// the form simdjson's minify writes, so our output is canonical compact JSON. `s` is UTF-8
// (checked where it entered the node) and copied as is otherwise.
void AppendString(std::string& out, std::string_view s);
void AppendUint(std::string& out, uint64_t v);

// Writes an object's fields: `"key":` (escaped) preceded by a comma after the first field.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  void Key(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    AppendString(out_, key);
    out_.push_back(':');
  }
  void Str(std::string_view key, std::string_view v) {
    Key(key);
    AppendString(out_, v);
  }
  void StrIfSet(std::string_view key, std::string_view v) {
    if (!v.empty()) Str(key, v);
  }
  void Uint(std::string_view key, uint64_t v) {
    Key(key);
    AppendUint(out_, v);
  }
  void UintIfSet(std::string_view key, uint64_t v) {
    if (v != 0) Uint(key, v);
  }
  void TrueIfSet(std::string_view key, bool v) {
    if (v) {
      Key(key);
      out_ += "true";
    }
  }
  void RawIfSet(std::string_view key, std::string_view json) {
    if (!json.empty()) {
      Key(key);
      out_.append(json);
    }
  }
  void Close() { out_.push_back('}'); }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace chorus::broker::json::detail
