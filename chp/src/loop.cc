#include "chp/loop.h"

#include <algorithm>
#include <thread>

namespace chorus::chp {

void PollOnce(std::span<Pollable* const> parts, std::chrono::milliseconds max_wait) {
  std::vector<zmq::pollitem_t> items;
  std::vector<size_t> counts;
  counts.reserve(parts.size());
  auto deadline = Clock::now() + max_wait;
  for (Pollable* p : parts) {
    counts.push_back(p->AddPollItems(items));
    deadline = std::min(deadline, p->NextDeadline());
  }
  // Rounded up: a wait cut to whole milliseconds would wake before the deadline, and the part
  // would find its timer not yet due.
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  if (wait.count() < 0) wait = std::chrono::milliseconds(0);
  if (!items.empty()) {
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      for (auto& item : items) item.revents = 0;  // a signal: the caller checks its stop flag
    }
  } else if (wait.count() > 0) {
    std::this_thread::sleep_for(wait);  // nothing to poll: wait for the next timer all the same
  }
  const auto now = Clock::now();
  size_t offset = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    parts[i]->HandleEvents(items.data() + offset, now);
    offset += counts[i];
  }
}

int64_t MonotonicMs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace chorus::chp
