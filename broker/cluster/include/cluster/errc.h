// Error codes of the cluster control plane. Expected failures are values (Result<T>), never
// exceptions: a command the map rejects, a malformed encoded command, a proposal on a follower.
#pragma once

#include <cstdint>
#include <system_error>
#include <utility>
#include <variant>

#include "chp/errc.h"

namespace chorus::cluster {

enum class Errc : uint32_t {
  kOk = 0,
  kMalformed = 1,            // an encoded command or snapshot could not be decoded
  kUnknownCommand = 2,       // command code not known to this version
  kNotBootstrapped = 3,      // the partition table does not exist yet
  kAlreadyBootstrapped = 4,  // Bootstrap applied twice
  kInvalidArgument = 5,      // a field out of range (zero id, R > 5, too many replicas...)
  kUnknownMember = 6,        // no such member in the map
  kUnknownPartition = 7,     // partition id >= partition_count
  kStaleIncarnation = 8,     // the incarnation is older than (or equal to a dead) known one
  kStaleVersion = 9,         // expected_version differs: the proposer decided on an old map
  kBadState = 10,            // the member or partition is not in the state the command needs
  kNotInSync = 11,           // the member is not in the partition's in-sync set
  kNotLeader = 12,           // a proposal reached a meta voter that is not the Raft leader
  kRaft = 13,                // libraft reported an error (details in the log)
};

const std::error_category& ClusterCategory();

inline std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), ClusterCategory()};
}

// A value or an error code; [[nodiscard]] so errors are not dropped by accident. The same shape
// as chp::Result, constructible from a cluster Errc.
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

using Unit = chp::Unit;

}  // namespace chorus::cluster

namespace std {
template <>
struct is_error_code_enum<chorus::cluster::Errc> : true_type {};
}  // namespace std
