#include "api_params.h"

#include <limits>

namespace chorus::broker::node {

using nlohmann::json;

json ErrorJson(Errc e) {
  return {
      {"error", {{"code", static_cast<uint32_t>(e)}, {"message", make_error_code(e).message()}}}};
}

json ErrorJson(const std::error_code& ec) {
  const bool client =
      ec.category() == BrokerCategory() && IsClientCode(static_cast<Errc>(ec.value()));
  return ErrorJson(client ? static_cast<Errc>(ec.value()) : Errc::kInternal);
}

const json* ApiParams::Any(const char* key) const {
  if (!j_.is_object()) return nullptr;
  auto it = j_.find(key);
  return it == j_.end() || it->is_null() ? nullptr : &*it;
}

const json* ApiParams::Required(const char* key) {
  const json* v = Any(key);
  if (v == nullptr) Fail(key, "is required");
  return v;
}

void ApiParams::Fail(const char* key, const std::string& why) {
  if (!error_.empty()) return;
  error_ = prefix_ + key;
  if (error_.empty()) {
    error_ = "body";
  } else if (error_.back() == '.') {
    error_.pop_back();
  }
  error_ += ' ';
  error_ += why;
}

const json* ApiParams::Typed(const char* key, bool (json::*is)() const noexcept, const char* what) {
  if (!ok()) return nullptr;
  const json* v = Any(key);
  if (v == nullptr) return nullptr;
  if (!(v->*is)()) {
    Fail(key, std::string("must be ") + what);
    return nullptr;
  }
  return v;
}

void ApiParams::String(const char* key, std::string& out) {
  if (const json* v = Typed(key, &json::is_string, "a string")) out = v->get<std::string>();
}

void ApiParams::Bool(const char* key, bool& out) {
  if (const json* v = Typed(key, &json::is_boolean, "a boolean")) out = v->get<bool>();
}

void ApiParams::Int(const char* key, int64_t& out) {
  const json* v = Typed(key, &json::is_number_integer, "an integer");
  if (v == nullptr) return;
  if (v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Fail(key, "is out of range");
  }
  out = v->get<int64_t>();
}

void ApiParams::Uint(const char* key, uint64_t& out) {
  if (const json* v = Typed(key, &json::is_number_unsigned, "a non-negative integer")) {
    out = v->get<uint64_t>();
  }
}

void ApiParams::StringList(const char* key, std::vector<std::string>& out) {
  const json* v = Typed(key, &json::is_array, "an array of strings");
  if (v == nullptr) return;
  std::vector<std::string> values;
  for (const json& e : *v) {
    if (!e.is_string()) return Fail(key, "must be an array of strings");
    values.push_back(e.get<std::string>());
  }
  out = std::move(values);
}

void ApiParams::StringMap(const char* key, std::map<std::string, std::string>& out) {
  const json* v = Typed(key, &json::is_object, "an object of strings");
  if (v == nullptr) return;
  std::map<std::string, std::string> values;
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) return Fail(key, "must be an object of strings");
    values[k] = e.get<std::string>();
  }
  out = std::move(values);
}

const json* ApiParams::Object(const char* key) {
  return Typed(key, &json::is_object, "an object");
}

}  // namespace chorus::broker::node
