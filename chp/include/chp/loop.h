// One thread, many socket owners: a Pollable contributes poll items and handles its own events.
// Every Pollable is owned by exactly one thread, the one that calls PollOnce on it.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include <zmq.hpp>

namespace chorus::chp {

using Clock = std::chrono::steady_clock;

class Pollable {
 public:
  virtual ~Pollable() = default;
  // Appends this object's poll items; returns how many.
  virtual size_t AddPollItems(std::vector<zmq::pollitem_t>& items) = 0;
  // Handles events on the items it added (same order) and any timers that are due.
  virtual void HandleEvents(const zmq::pollitem_t* items, Clock::time_point now) = 0;
  // When HandleEvents must run next even without socket events.
  virtual Clock::time_point NextDeadline() const = 0;
};

// Polls every part once, waiting at most `max_wait`, then lets each handle its events.
void PollOnce(std::span<Pollable* const> parts, std::chrono::milliseconds max_wait);
inline void PollOnce(std::initializer_list<Pollable*> parts, std::chrono::milliseconds max_wait) {
  PollOnce(std::span<Pollable* const>(parts.begin(), parts.size()), max_wait);
}

// Milliseconds on the monotonic clock (server-side TTLs use it: spec §TTL).
int64_t MonotonicMs(Clock::time_point t = Clock::now());
// Milliseconds since the Unix epoch (informational timestamps only).
uint64_t WallMs();

}  // namespace chorus::chp
