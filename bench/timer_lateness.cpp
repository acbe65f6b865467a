// timer_lateness.cpp — the timers' whole-program benchmark, twin of
// bench/go/timer_lateness: 5 rounds of 100,000 goroutines that each sleep a
// random 1–100 ms (sleep_for) and record how late they woke (wake time minus
// start + duration). Prints one JSON line: p50/p99/max lateness (µs) over all
// wakeups and the process's CPU time (getrusage user+sys) per wakeup (ns),
// measured over the 5 rounds. GOMAXPROCS is the runtime's default.
// GORO_BENCH_SCALE scales the goroutine count (bench/compare --scale).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "goro/goro.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRounds = 5;
constexpr std::int64_t kGoroutines = 100000;
constexpr std::int64_t kMinSleepNs = 1000000;    // 1 ms
constexpr std::int64_t kMaxSleepNs = 100000000;  // 100 ms

std::int64_t scaled(std::int64_t n) {
  const char* s = std::getenv("GORO_BENCH_SCALE");
  double scale = s != nullptr ? std::atof(s) : 1.0;
  auto v = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * scale));
  return v < 1 ? 1 : v;
}

// User plus system CPU time of the whole process so far.
double cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e9 + static_cast<double>(tv.tv_usec) * 1e3;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// Nearest-rank percentile of sorted values.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

}  // namespace

int main() {
  const std::int64_t n = scaled(kGoroutines);
  const auto total = static_cast<std::size_t>(n) * kRounds;
  // Durations are drawn before the clock starts; lateness[k] is sample k.
  std::vector<std::int64_t> sleep_ns(total), lateness(total);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::int64_t> dist(kMinSleepNs, kMaxSleepNs);
  for (auto& d : sleep_ns) d = dist(rng);

  int procs = 0;
  double cpu = 0;
  goro::run([&] {
    procs = goro::maxprocs();
    goro::WaitGroup wg;
    double cpu0 = cpu_ns();
    for (int r = 0; r < kRounds; r++) {
      wg.add(static_cast<int>(n));
      for (std::size_t k = static_cast<std::size_t>(r * n); k < static_cast<std::size_t>((r + 1) * n); k++) {
        goro::go([&wg, d = sleep_ns[k], out = &lateness[k]] {
          auto t0 = Clock::now();
          goro::sleep_for(std::chrono::nanoseconds(d));
          *out = (Clock::now() - (t0 + std::chrono::nanoseconds(d))).count();
          wg.done();
        });
      }
      wg.wait();
    }
    cpu = cpu_ns() - cpu0;
  });

  std::sort(lateness.begin(), lateness.end());
  std::printf(
      "{\"name\":\"timer_lateness\",\"procs\":%d,\"goroutines\":%lld,\"rounds\":%d,\"wakeups\":%zu,"
      "\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,\"cpu_per_wakeup_ns\":%.1f}\n",
      procs, static_cast<long long>(n), kRounds, total, static_cast<double>(percentile(lateness, 0.50)) / 1e3,
      static_cast<double>(percentile(lateness, 0.99)) / 1e3, static_cast<double>(lateness.back()) / 1e3,
      cpu / static_cast<double>(total));
  return 0;
}
