// Error codes of the sync scheduler (broker/scheduler). Expected failures are values
// (`Result<T>`, an alias of chp::Result<T>); the messages are meant for an API caller.
#pragma once

#include <cstdint>
#include <system_error>

#include "chp/errc.h"

namespace chorus::broker::scheduler {

enum class Errc : uint32_t {
  kOk = 0,
  kBadRequest = 1,     // malformed job or task (empty user, bad characters, unknown kind...)
  kUnknownTier = 2,    // the job names a tier that is not configured
  kUnknownJob = 3,     // no job with that id (never existed, or forgotten)
  kUnknownTask = 4,    // no task with that id
  kStaleLease = 5,     // the lease token is not the task's current one: the result is ignored
  kJobFinished = 6,    // the job already reached a final state (cancel of a finished job)
  kLimitExceeded = 7,  // too many jobs / tasks (SchedulerConfig limits)
  kSourceMissing = 8,  // the job's source cannot be read (does not exist, not a directory)
  kCatalogError = 9,   // the catalog cannot be opened or written
  kCancelled = 10,     // the task's lease was revoked while it ran
  kShuttingDown = 11,  // the runner is stopping
};

const std::error_category& SchedulerCategory();

inline std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), SchedulerCategory()};
}

// Result<T>: chp::Result<T> that can also be built from a scheduler Errc.
template <typename T>
class [[nodiscard]] Result : public chp::Result<T> {
 public:
  using chp::Result<T>::Result;
  Result(Errc e) : chp::Result<T>(make_error_code(e)) {}  // NOLINT(google-explicit-constructor)
};
using chp::Unit;

}  // namespace chorus::broker::scheduler

namespace std {
template <>
struct is_error_code_enum<chorus::broker::scheduler::Errc> : true_type {};
}  // namespace std
