// Sync scheduler benchmark, in one run:
//   a) dispatch throughput of the pure core: no-op tasks/s over many users, and the scheduler's
//      overhead per task (Dispatch + Complete, ns, thread CPU time);
//   b) dispatch throughput of the in-process Runner (owner thread + workers): no-op tasks/s;
//   c) a mix of one very large sync and many small ones (CPU-bound tasks) under three designs:
//      the fair scheduler (Runner, slots = cores), per-user independent pools (the old Astiga
//      design: 1 thread per normal user, 3 per premium, all running at once) and, for context,
//      one global FIFO queue on the same slots. Prints the small syncs' completion times and the
//      large one's, with ratios fair / per-user pools.
// Ends with one machine-readable line: "RESULT scheduler_bench key=value ...".
//   scheduler_bench [--smoke]
#include <openssl/evp.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/scheduler/runner.h"
#include "broker/scheduler/scheduler.h"

namespace {

using namespace chorus::broker::scheduler;  // NOLINT(build/namespaces)
using Clock = std::chrono::steady_clock;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// a) The core alone: `users` users with `per_user` no-op tasks each, completed as soon as leased.
void CoreThroughput(uint32_t users, uint32_t per_user, double* tasks_per_s, double* ns_per_task) {
  SchedulerConfig c;
  c.slots = 8;
  c.max_live_tasks = static_cast<size_t>(users) * per_user + 1;
  Scheduler s(c);
  for (uint32_t u = 0; u < users; ++u) {
    (void)s.Submit(JobSpec{"u" + std::to_string(u), u % 10 == 0 ? "premium" : "normal", "/s", "/c"},
                   std::vector<TaskSpec>(per_user, TaskSpec{"noop", "", false}), 0);
  }
  const double cpu0 = ThreadCpuSeconds();
  const auto t0 = Clock::now();
  uint64_t n = 0;
  int64_t now = 0;
  for (auto leases = s.Dispatch(now); !leases.empty(); leases = s.Dispatch(++now)) {
    for (const auto& l : leases) {
      (void)s.Complete(l.task, l.token, {}, now);
      ++n;
    }
  }
  const double wall = Since(t0), cpu = ThreadCpuSeconds() - cpu0;
  *tasks_per_s = static_cast<double>(n) / wall;
  *ns_per_task = cpu * 1e9 / static_cast<double>(n);
}

// b) The runner: no-op tasks through the owner thread and `slots` workers.
double RunnerThroughput(uint32_t users, uint32_t per_user) {
  RunnerConfig rc;
  rc.scheduler.slots = 2;
  rc.spare_workers = 0;
  const uint64_t total = static_cast<uint64_t>(users) * per_user;
  std::atomic<uint64_t> done{0};
  std::promise<void> all_done;
  Runner r(rc, [&](const Lease&, TaskContext&) {
    if (++done == total) all_done.set_value();
    return TaskOutcome{};
  });
  const auto t0 = Clock::now();
  for (uint32_t u = 0; u < users; ++u) {
    (void)r.Submit(JobSpec{"u" + std::to_string(u), "normal", "/s", "/c"},
                   std::vector<TaskSpec>(per_user, TaskSpec{"noop", "", false}));
  }
  all_done.get_future().wait();  // the executions, not the bookkeeping of the last results
  return static_cast<double>(done.load()) / Since(t0);
}

// CPU work standing in for a file task (hashing `bytes` bytes).
void Work(size_t bytes) {
  static thread_local std::vector<unsigned char> buf(1 << 20, 7);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(buf.data(), std::min(bytes, buf.size()), md, &len, EVP_sha256(), nullptr);
}

struct Mix {
  uint32_t big_tasks, small_users, small_tasks;
  size_t work_bytes;
};

struct MixResult {
  std::vector<double> small_s;  // completion time of each small sync, from the common start
  double big_s = 0;
  uint32_t peak_threads = 0;
};

// Index of a user: 0 = the big sync, 1.. = small ones.
std::string UserName(uint32_t i) {
  return i == 0 ? "big" : "s" + std::to_string(i);
}
uint32_t TasksOf(const Mix& m, uint32_t i) {
  return i == 0 ? m.big_tasks : m.small_tasks;
}

MixResult FairScheduler(const Mix& m, uint32_t slots) {
  const uint32_t users = m.small_users + 1;
  std::vector<std::atomic<uint32_t>> left(users);
  std::vector<double> finish(users, 0);
  for (uint32_t i = 0; i < users; ++i) left[i] = TasksOf(m, i);
  RunnerConfig rc;
  rc.scheduler.slots = slots;
  rc.spare_workers = 0;
  const auto t0 = Clock::now();
  std::atomic<uint32_t> remaining{users};
  std::promise<void> all_done;
  Runner r(rc, [&](const Lease& l, TaskContext&) {
    Work(m.work_bytes);
    const uint32_t i = l.spec.user == "big" ? 0 : std::stoul(l.spec.user.substr(1));
    if (--left[i] == 0) {
      finish[i] = Since(t0);
      if (--remaining == 0) all_done.set_value();
    }
    return TaskOutcome{};
  });
  for (uint32_t i = 0; i < users; ++i) {
    (void)r.Submit(JobSpec{UserName(i), "normal", "/s", "/c"},
                   std::vector<TaskSpec>(TasksOf(m, i), TaskSpec{"work", "", false}));
  }
  all_done.get_future().wait();
  MixResult out;
  out.big_s = finish[0];
  out.small_s.assign(finish.begin() + 1, finish.end());
  out.peak_threads = slots;
  return out;
}

// The old design: every user its own pool (1 thread), all started at once, no global limit.
MixResult PerUserPools(const Mix& m) {
  const uint32_t users = m.small_users + 1;
  std::vector<double> finish(users, 0);
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < users; ++i) {
    threads.emplace_back([&, i] {
      for (uint32_t t = 0; t < TasksOf(m, i); ++t) Work(m.work_bytes);
      finish[i] = Since(t0);
    });
  }
  for (auto& t : threads) t.join();
  MixResult out;
  out.big_s = finish[0];
  out.small_s.assign(finish.begin() + 1, finish.end());
  out.peak_threads = users;
  return out;
}

// One global FIFO on `slots` threads: the big sync, submitted first, runs before the others.
MixResult GlobalFifo(const Mix& m, uint32_t slots) {
  const uint32_t users = m.small_users + 1;
  std::deque<uint32_t> q;  // user index per task, in submission order
  for (uint32_t i = 0; i < users; ++i) q.insert(q.end(), TasksOf(m, i), i);
  std::mutex mu;
  std::vector<uint32_t> left(users);
  for (uint32_t i = 0; i < users; ++i) left[i] = TasksOf(m, i);
  std::vector<double> finish(users, 0);
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t s = 0; s < slots; ++s) {
    threads.emplace_back([&] {
      for (;;) {
        uint32_t i;
        {
          std::lock_guard l(mu);
          if (q.empty()) return;
          i = q.front();
          q.pop_front();
        }
        Work(m.work_bytes);
        std::lock_guard l(mu);
        if (--left[i] == 0) finish[i] = Since(t0);
      }
    });
  }
  for (auto& t : threads) t.join();
  MixResult out;
  out.big_s = finish[0];
  out.small_s.assign(finish.begin() + 1, finish.end());
  out.peak_threads = slots;
  return out;
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

void PrintMix(const char* name, const MixResult& r) {
  std::printf("  %-22s small p50 %7.3f s  p95 %7.3f s  max %7.3f s  big %7.3f s  threads %u\n",
              name, Quantile(r.small_s, 0.5), Quantile(r.small_s, 0.95), Quantile(r.small_s, 1.0),
              r.big_s, r.peak_threads);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("sync scheduler benchmark");
  bool smoke = false;
  app.add_flag("--smoke", smoke, "a few seconds at small sizes (ctest bench-smoke)");
  CLI11_PARSE(app, argc, argv);

  const uint32_t users = smoke ? 100 : 1000, per_user = smoke ? 100 : 1000;
  double core_tps = 0, core_ns = 0;
  CoreThroughput(users, per_user, &core_tps, &core_ns);
  std::printf(
      "core dispatch (%u users x %u no-op tasks, 8 slots): %.0f tasks/s, %.0f ns CPU/task\n", users,
      per_user, core_tps, core_ns);
  const uint32_t r_users = smoke ? 20 : 100, r_per_user = smoke ? 100 : 200;
  const double runner_tps = RunnerThroughput(r_users, r_per_user);
  std::printf(
      "runner dispatch (%u users x %u no-op tasks, 2 slots, threads): %.0f tasks/s, "
      "%.1f us/task\n",
      r_users, r_per_user, runner_tps, 1e6 / runner_tps);

  const Mix mix = smoke ? Mix{200, 10, 10, 256 * 1024} : Mix{2000, 30, 20, 1024 * 1024};
  const uint32_t slots = std::max(2u, std::thread::hardware_concurrency());
  std::printf(
      "mix: 1 sync of %u tasks + %u syncs of %u tasks, %zu-byte SHA-256 per task, %u slots\n",
      mix.big_tasks, mix.small_users, mix.small_tasks, mix.work_bytes, slots);
  const MixResult fair = FairScheduler(mix, slots);
  const MixResult pools = PerUserPools(mix);
  const MixResult fifo = GlobalFifo(mix, slots);
  PrintMix("fair scheduler (DRR)", fair);
  PrintMix("per-user pools (old)", pools);
  PrintMix("global FIFO", fifo);
  const double p50_ratio = Quantile(fair.small_s, 0.5) / Quantile(pools.small_s, 0.5);
  const double p95_ratio = Quantile(fair.small_s, 0.95) / Quantile(pools.small_s, 0.95);
  const double big_ratio = fair.big_s / pools.big_s;
  const double fifo_ratio = Quantile(fair.small_s, 0.5) / Quantile(fifo.small_s, 0.5);
  std::printf(
      "ratios fair/pools: small p50 %.2f, small p95 %.2f, big %.2f; fair/FIFO small p50 "
      "%.2f\n",
      p50_ratio, p95_ratio, big_ratio, fifo_ratio);
  std::printf(
      "RESULT scheduler_bench core_tasks_per_s=%.0f core_ns_per_task=%.0f runner_tasks_per_s=%.0f "
      "small_p50_fair_over_pools=%.3f small_p95_fair_over_pools=%.3f big_fair_over_pools=%.3f "
      "small_p50_fair_over_fifo=%.3f\n",
      core_tps, core_ns, runner_tps, p50_ratio, p95_ratio, big_ratio, fifo_ratio);
  return 0;
}
