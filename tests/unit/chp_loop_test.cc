// Unit tests for chp::PollOnce (chp/loop.h): it waits for the earliest deadline of its parts,
// at most max_wait, also when no part has a socket to poll (then it sleeps).
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "chp/loop.h"

namespace chorus::chp {
namespace {

using namespace std::chrono_literals;

// A part with no sockets and one timer.
class TimerOnly final : public Pollable {
 public:
  explicit TimerOnly(Clock::time_point deadline) : deadline_(deadline) {}
  size_t AddPollItems(std::vector<zmq::pollitem_t>&) override { return 0; }
  void HandleEvents(const zmq::pollitem_t*, Clock::time_point now) override {
    ++calls;
    last = now;
  }
  Clock::time_point NextDeadline() const override { return deadline_; }

  int calls = 0;
  Clock::time_point last{};

 private:
  Clock::time_point deadline_;
};

TEST(PollOnce, WithoutSocketsWaitsForTheNextDeadline) {
  const auto start = Clock::now();
  TimerOnly part(start + 60ms);
  PollOnce({&part}, 5s);
  EXPECT_EQ(part.calls, 1);
  EXPECT_GE(part.last - start, 60ms) << "returned before the part's deadline";
  EXPECT_LT(Clock::now() - start, 5s) << "waited for max_wait instead";
}

TEST(PollOnce, WithoutSocketsWaitsAtMostMaxWait) {
  const auto start = Clock::now();
  TimerOnly part(start + 1h);
  PollOnce({&part}, 40ms);
  EXPECT_EQ(part.calls, 1);
  EXPECT_GE(Clock::now() - start, 40ms);
  EXPECT_LT(Clock::now() - start, 1h);
}

TEST(PollOnce, APastDeadlineReturnsAtOnce) {
  const auto start = Clock::now();
  TimerOnly a(start + 1h), b(start - 1s);
  PollOnce({&a, &b}, 5s);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_LT(Clock::now() - start, 5s);
}

}  // namespace
}  // namespace chorus::chp
