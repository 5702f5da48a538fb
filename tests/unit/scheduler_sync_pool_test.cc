// CatalogPool: bounded connections under a burst, queueing instead of failing, backoff after
// open failures (no reconnect storm).
#include <gtest/gtest.h>

#include <thread>

#include "scheduler_sync_support.h"

namespace chorus::broker::scheduler {
namespace {

TEST(CatalogPool, ConnectionCountNeverExceedsThePoolSizeUnderABurst) {
  testing::TempDir dir;
  PoolConfig pc;
  pc.size = 3;
  CatalogPool pool(dir / "c.db", pc);
  constexpr int kThreads = 16, kRounds = 20;
  std::atomic<int> in_use{0}, max_in_use{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        CatalogPool::Handle h;
        if (!pool.Acquire(&h).ok()) {
          ++errors;
          continue;
        }
        const int now = ++in_use;
        int seen = max_in_use.load();
        while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
        }
        uint64_t written = 0;
        FileRow row{"t" + std::to_string(t) + "/" + std::to_string(r), 1, 1, 1, "h"};
        if (!h->UpsertBatch("s", {row}, &written).ok()) ++errors;
        --in_use;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);  // waiting callers queued rather than failed
  EXPECT_LE(max_in_use.load(), 3);
  const PoolStats st = pool.Stats();
  EXPECT_LE(st.peak_open, 3u);
  EXPECT_LE(pool.counters()->opens.load(), 3u);
  EXPECT_GT(st.waits, 0u);
  EXPECT_EQ(pool.counters()->rows_written.load(), uint64_t{kThreads * kRounds});
}

TEST(CatalogPool, AcquireTimesOutWhenEveryConnectionIsHeld) {
  testing::TempDir dir;
  PoolConfig pc;
  pc.size = 1;
  pc.acquire_timeout = std::chrono::milliseconds(50);
  CatalogPool pool(dir / "c.db", pc);
  CatalogPool::Handle held;
  ASSERT_TRUE(pool.Acquire(&held).ok());
  CatalogPool::Handle other;
  Status s = pool.Acquire(&other);
  EXPECT_EQ(s.code, Errc::kCatalogError);
  EXPECT_NE(s.message.find("no connection free within 50 ms"), std::string::npos);
  held.Reset();
  EXPECT_TRUE(pool.Acquire(&other).ok());
}

TEST(CatalogPool, OpenFailuresBackOffInsteadOfReconnectStorm) {
  testing::TempDir dir;
  PoolConfig pc;
  pc.size = 4;
  pc.backoff_base = std::chrono::milliseconds(60'000);
  const std::string bad = dir / "missing/dir/c.db";
  CatalogPool pool(bad, pc);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0}, clear{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < 10; ++r) {
        CatalogPool::Handle h;
        Status s = pool.Acquire(&h);
        if (!s.ok()) ++failures;
        if (s.message.find("catalog '" + bad + "' cannot be opened") != std::string::npos) ++clear;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 160);
  EXPECT_EQ(clear.load(), 160);
  const PoolStats st = pool.Stats();
  EXPECT_LE(st.open_attempts, 4u);  // at most one concurrent attempt per slot, then backoff
  EXPECT_GE(st.refused_in_backoff, 156u);
}

TEST(CatalogPool, BrokenConnectionIsClosedAndReplaced) {
  testing::TempDir dir;
  PoolConfig pc;
  pc.size = 1;
  CatalogPool pool(dir / "c.db", pc);
  {
    CatalogPool::Handle h;
    ASSERT_TRUE(pool.Acquire(&h).ok());
    h.MarkBroken();
  }
  CatalogPool::Handle h;
  ASSERT_TRUE(pool.Acquire(&h).ok());
  EXPECT_EQ(pool.counters()->opens.load(), 2u);
  EXPECT_EQ(pool.Stats().peak_open, 1u);
}

}  // namespace
}  // namespace chorus::broker::scheduler
