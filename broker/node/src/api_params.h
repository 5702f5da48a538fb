// Typed readers of the server API's request fields (docs/broker-node.md, "Server API"). Every
// field a handler reads goes through one of these, so a field of the wrong type is a 400 naming
// the field, never an exception out of nlohmann (issue 10: a non-boolean `skip_history` was a
// 500). Absent and `null` fields are absent (the output keeps its default); unknown fields are
// ignored, as in Centrifugo. The first problem is kept; later reads after one are no-ops.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/core/errc.h"

namespace chorus::broker::node {

// `{"error":{"code","message"}}` of the server API for `e`; an error code that is not a client
// code (100..114) is answered as 100 "internal".
nlohmann::json ErrorJson(Errc e);
nlohmann::json ErrorJson(const std::error_code& ec);

class ApiParams {
 public:
  // `prefix` names the object in messages ("disconnect." for the `disconnect` object's fields).
  explicit ApiParams(const nlohmann::json& object, std::string prefix = "")
      : j_(object), prefix_(std::move(prefix)) {
    if (!j_.is_object()) Fail("", "must be an object");
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }  // "<field> must be ..."; "" when ok

  // The field's value when present and not null, else nullptr (any type: `data`).
  const nlohmann::json* Any(const char* key) const;
  // As Any, and a problem "<key> is required" when absent.
  const nlohmann::json* Required(const char* key);

  void String(const char* key, std::string& out);
  void Bool(const char* key, bool& out);
  void Int(const char* key, int64_t& out);    // any JSON integer in the int64 range
  void Uint(const char* key, uint64_t& out);  // a non-negative JSON integer
  void StringList(const char* key, std::vector<std::string>& out);
  void StringMap(const char* key, std::map<std::string, std::string>& out);
  // An object field: nullptr when absent, or (with a problem) when of another type.
  const nlohmann::json* Object(const char* key);

  // Records a problem of the caller's own checks ("<prefix><key> <why>").
  void Fail(const char* key, const std::string& why);
  // Takes the problem of the reader of a nested object (made with a prefix), if any.
  void Adopt(const ApiParams& inner) {
    if (error_.empty()) error_ = inner.error_;
  }

 private:
  const nlohmann::json* Typed(const char* key, bool (nlohmann::json::*is)() const noexcept,
                              const char* what);

  const nlohmann::json& j_;
  std::string prefix_;
  std::string error_;
};

}  // namespace chorus::broker::node
