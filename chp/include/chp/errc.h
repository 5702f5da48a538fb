// Error codes of the CHP library. Expected failures are returned as values (Result<T>);
// these codes also travel on the wire as KVACK / ERROR status (docs/protocol/chp.md, "Status
// codes").
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace chorus::chp {

enum class Errc : uint32_t {
  kOk = 0,
  kMalformed = 1,        // frame could not be decoded
  kBadKey = 2,           // key or subtree name violates the naming rules
  kValueTooLarge = 3,    // value over the server's max_value_bytes
  kBadValue = 4,         // value is not one well-formed msgpack object
  kBadTtl = 5,           // TTL over the limit
  kFull = 6,             // the server holds its maximum number of keys
  kBusy = 7,             // a bounded queue is full; retry later
  kTimeout = 8,          // no answer within the deadline
  kUnreachable = 9,      // peer not connected
  kUnknownCommand = 10,  // command code not understood
  kBadVersion = 11,      // protocol version not supported
  kConflict = 12,        // a conditional KVSET's expected seq does not match the key's (CS-32)
};

const std::error_category& ChpCategory();

inline std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), ChpCategory()};
}

// Result<T>: a value or an error code. [[nodiscard]] so errors are not dropped by accident.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}   // NOLINT(google-explicit-constructor)
  Result(Errc e) : v_(make_error_code(e)) {}  // NOLINT(google-explicit-constructor)
  Result(std::error_code ec) : v_(ec) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  std::error_code error() const { return ok() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

struct Unit {
  bool operator==(const Unit&) const = default;
};

}  // namespace chorus::chp

namespace std {
template <>
struct is_error_code_enum<chorus::chp::Errc> : true_type {};
}  // namespace std
