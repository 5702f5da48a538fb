// Error codes of the broker core. Codes 100..113 are the Centrifugo client protocol error codes
// (centrifugal.dev, "Error and disconnect codes") and go to clients as they are; codes from 1000
// on are internal to the node and never leave it (a gateway maps them to 100 "internal").
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

#include "broker/core/codes.h"  // disconnect codes (same document)
#include "chp/errc.h"

namespace chorus::broker {

enum class Errc : uint32_t {
  kOk = 0,
  // Centrifugo client error codes.
  kInternal = 100,
  kUnauthorized = 101,
  kUnknownChannel = 102,    // namespace not configured
  kPermissionDenied = 103,  // the namespace does not allow this to this kind of client
  kMethodNotFound = 104,
  kAlreadySubscribed = 105,
  kLimitExceeded = 106,  // e.g. channel name longer than Limits::max_channel_length
  kBadRequest = 107,     // malformed request (empty channel, invalid UTF-8, control characters)
  kNotAvailable = 108,   // feature (presence, history) not enabled in the namespace
  kTokenExpired = 109,
  kExpired = 110,
  kTooManyRequests = 111,
  kUnrecoverablePosition = 112,  // history cannot answer from the given stream position
  kConflict = 113,               // Centrifugo's "conflict"; Chorus has no operation that yields it
  // Chorus's own (not a Centrifugo code; temporary: retry): the cluster could not complete the
  // operation now (a forwarded publish got no answer from its partition's primary in time, the
  // forwarding bounds were reached, or the primary changed twice). docs/cluster.md §5, C-6.
  // The publication may or may not have been applied; the client retries.
  kUnavailable = 114,
  // Internal codes.
  kReplicaGap = 1000,    // a replicated record skips offsets: the replica must resync
  kReplicaStale = 1001,  // a replicated record is not newer than the replica: ignore it
  kBadSnapshot = 1002,   // a snapshot is not a contiguous run ending at its position
};

const std::error_category& BrokerCategory();

inline std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), BrokerCategory()};
}

// True for the codes that may be sent to a client as they are (100..114).
constexpr bool IsClientCode(Errc e) {
  return static_cast<uint32_t>(e) >= 100 && static_cast<uint32_t>(e) <= 114;
}

// The wire value of an error code.
constexpr uint32_t ToCode(Errc e) {
  return static_cast<uint32_t>(e);
}

// Result<T>: chp::Result<T> that can also be built from a broker Errc.
template <typename T>
class [[nodiscard]] Result : public chp::Result<T> {
 public:
  using chp::Result<T>::Result;
  Result(Errc e) : chp::Result<T>(make_error_code(e)) {}  // NOLINT(google-explicit-constructor)
};

using chp::Unit;

}  // namespace chorus::broker

namespace std {
template <>
struct is_error_code_enum<chorus::broker::Errc> : true_type {};
}  // namespace std
