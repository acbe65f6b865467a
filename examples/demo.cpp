// demo.cpp — classic Go programs on goro: skynet, a parallel recursive fib,
// and a fan-out of many goroutines. Prints each result, its wall time and
// the scheduler's counters (goroutines created, steals, parks, threads).
//
// Until channels and sync.WaitGroup arrive, goroutines join through the
// runtime's own park/ready (export_test.hpp's Countdown), as Go's runtime
// tests do; the programs will move to goro::Chan and goro::WaitGroup.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace {

using goro::testing::Countdown;

// skynet: a tree of goroutines, ten children per node, a million leaves;
// each node sums its children's results from a slot per child.
std::int64_t skynet(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::int64_t results[10] = {};
  Countdown cd(10);
  for (int i = 0; i < 10; i++) {
    goro::go([&, i] {
      results[i] = skynet(num + i * (size / 10), size / 10);
      cd.done();
    });
  }
  cd.wait();
  std::int64_t sum = 0;
  for (auto r : results) sum += r;
  return sum;
}

// fib: fork one branch into a goroutine above the cutoff, compute the
// other inline, join.
std::int64_t fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }
std::int64_t fib(int n) {
  if (n < 20) return fib_serial(n);
  std::int64_t a = 0;
  Countdown cd(1);
  goro::go([&] {
    a = fib(n - 1);
    cd.done();
  });
  std::int64_t b = fib(n - 2);
  cd.wait();
  return a + b;
}

// fan-out: many goroutines, each doing a little work on its own index.
std::int64_t fanout(int n) {
  std::atomic<std::int64_t> sum{0};
  Countdown cd(n);
  for (int i = 0; i < n; i++) {
    goro::go([&, i] {
      std::int64_t x = i;
      for (int k = 0; k < 100; k++) x = (x * 31 + k) % 1000003;
      sum.fetch_add(x, std::memory_order_relaxed);
      cd.done();
    });
  }
  cd.wait();
  return sum.load();
}

void report(const char* name, const char* result, std::chrono::steady_clock::time_point t0,
            const goro::debug::Stats& before) {
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  goro::debug::Stats s = goro::debug::stats();
  std::printf("%-10s %-28s %9.1f ms   goroutines created %8llu  steals %6llu  parks %8llu  threads %d\n", name, result,
              ms, static_cast<unsigned long long>(s.goroutines_created - before.goroutines_created),
              static_cast<unsigned long long>(s.steals - before.steals),
              static_cast<unsigned long long>(s.parks - before.parks), s.threads);
}

}  // namespace

int main() {
  return goro::run([] {
    std::printf("goro demo: %d Ps (GOMAXPROCS)\n\n", goro::maxprocs());
    char buf[64];

    auto before = goro::debug::stats();
    auto t0 = std::chrono::steady_clock::now();
    std::int64_t sky = skynet(0, 1000000);
    std::snprintf(buf, sizeof buf, "sum %lld", static_cast<long long>(sky));
    report("skynet", buf, t0, before);

    before = goro::debug::stats();
    t0 = std::chrono::steady_clock::now();
    std::int64_t f = fib(36);
    std::snprintf(buf, sizeof buf, "fib(36) = %lld", static_cast<long long>(f));
    report("fib", buf, t0, before);

    before = goro::debug::stats();
    t0 = std::chrono::steady_clock::now();
    std::int64_t fo = fanout(200000);
    std::snprintf(buf, sizeof buf, "200000 goroutines, sum %lld", static_cast<long long>(fo));
    report("fan-out", buf, t0, before);

    auto s = goro::debug::stats();
    std::printf("\ntotal: %llu goroutines created, %llu context switches, %llu steals (%llu goroutines), %llu parks\n",
                static_cast<unsigned long long>(s.goroutines_created),
                static_cast<unsigned long long>(s.context_switches), static_cast<unsigned long long>(s.steals),
                static_cast<unsigned long long>(s.stolen_goroutines), static_cast<unsigned long long>(s.parks));
    bool ok = sky == 499999500000 && f == 14930352;
    std::printf("%s\n", ok ? "all results correct" : "WRONG RESULT");
    return ok ? 0 : 1;
  });
}
