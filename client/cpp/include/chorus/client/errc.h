// Errors of the native client as values (docs/protocol/native.md, "Error codes"). An Error
// carries the node's code and message when the node refused a command, or one of the client's
// own codes (1..99, never sent on the wire) when the client gave up locally.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

#include "chp/errc.h"

namespace chorus::client {

enum class Errc : uint32_t {
  // Client-side codes: the command never got an answer from the node.
  kTimeout = 1,         // no reply within ClientOptions::request_timeout
  kConnectionLost = 2,  // the session ended before the reply came
  kPingTimeout = 3,     // a ping was not answered within `pong` seconds: the connection is dead
  kPendingLimit = 4,    // ClientOptions::max_pending requests are already waiting
  kClosed = 5,          // the client is not connected and not trying to (Connect() not called,
                        // Disconnect() called, or a terminal disconnect)
  kMalformed = 6,       // the node's reply could not be decoded
  kSendFailed = 7,      // the socket would not take the frame (send queue full)
  // Node error codes (reply `error.code`).
  kInternal = 100,
  kUnauthorized = 101,
  kUnknownChannel = 102,
  kPermissionDenied = 103,
  kMethodNotFound = 104,
  kAlreadySubscribed = 105,
  kLimitExceeded = 106,
  kBadRequest = 107,
  kNotAvailable = 108,
  kTokenExpired = 109,
  kExpired = 110,
  kTooManyRequests = 111,
  kUnrecoverablePosition = 112,
  kConflict = 113,  // sync_cancel of a job that already finished (native.md N-22)
  // Disconnect codes (`disconnect` push `code`).
  kDisconnectNormal = 3000,
  kDisconnectShutdown = 3001,
  kDisconnectConnectionExpired = 3005,
  kDisconnectSlow = 3008,
  kDisconnectInsufficientState = 3010,
  kDisconnectInvalidToken = 3500,
  kDisconnectBadRequest = 3501,
};

struct Error {
  uint32_t code = 0;
  std::string message;

  Error() = default;
  Error(uint32_t c, std::string m) : code(c), message(std::move(m)) {}
  Error(Errc c, std::string m) : code(static_cast<uint32_t>(c)), message(std::move(m)) {}
  bool Is(Errc c) const { return code == static_cast<uint32_t>(c); }
  bool operator==(const Error&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const Error& e) {
  return os << "error " << e.code << " (" << e.message << ")";
}

using Unit = chp::Unit;

// Result<T>: a value or an Error (chp::Result's shape, but the error keeps the node's message).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT
  Result(Errc c, std::string m) : v_(std::in_place_index<1>, Error(c, std::move(m))) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; a default Error (code 0) when ok().
  const Error& error() const {
    static const Error kNone;
    return ok() ? kNone : std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

}  // namespace chorus::client
