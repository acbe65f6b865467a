// demo.cpp — classic Go programs on goro: skynet (with result slots and
// with channels), a parallel recursive fib, a fan-out of many goroutines,
// Go's concurrent prime sieve, a worker pool, sleepers with a timeout
// select, and blocking system calls beside busy goroutines. Prints each
// result, its wall time and the scheduler's counters (goroutines created,
// steals, parks, threads).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "goro/goro.hpp"

namespace {

// skynet: a tree of goroutines, ten children per node, a million leaves;
// each node sums its children's results from a slot per child.
std::int64_t skynet(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::int64_t results[10] = {};
  goro::WaitGroup wg;
  wg.add(10);
  for (int i = 0; i < 10; i++) {
    goro::go([&, i] {
      results[i] = skynet(num + i * (size / 10), size / 10);
      wg.done();
    });
  }
  wg.wait();
  std::int64_t sum = 0;
  for (auto r : results) sum += r;
  return sum;
}

// The classic: every node reports to its parent over a channel.
void skynet_chan(goro::Chan<std::int64_t> c, std::int64_t num, std::int64_t size) {
  if (size == 1) {
    c.send(num);
    return;
  }
  goro::Chan<std::int64_t> rc(10);
  for (int i = 0; i < 10; i++) goro::go(&skynet_chan, rc, num + i * (size / 10), size / 10);
  std::int64_t sum = 0;
  for (int i = 0; i < 10; i++) sum += *rc.recv();
  c.send(sum);
}

// fib: fork one branch into a goroutine above the cutoff, compute the
// other inline, join.
std::int64_t fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }
std::int64_t fib(int n) {
  if (n < 20) return fib_serial(n);
  std::int64_t a = 0;
  goro::WaitGroup wg;
  wg.add(1);
  goro::go([&] {
    a = fib(n - 1);
    wg.done();
  });
  std::int64_t b = fib(n - 2);
  wg.wait();
  return a + b;
}

// fan-out: many goroutines, each doing a little work on its own index.
std::int64_t fanout(int n) {
  std::atomic<std::int64_t> sum{0};
  goro::WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; i++) {
    goro::go([&, i] {
      std::int64_t x = i;
      for (int k = 0; k < 100; k++) x = (x * 31 + k) % 1000003;
      sum.fetch_add(x, std::memory_order_relaxed);
      wg.done();
    });
  }
  wg.wait();
  return sum.load();
}

// Go's concurrent prime sieve: a daisy chain of filter goroutines.
int sieve(int count) {
  goro::Chan<int> ch;
  goro::go([ch]() mutable {
    for (int i = 2;; i++) ch.send(i);
  });
  int prime = 0;
  for (int i = 0; i < count; i++) {
    prime = *ch.recv();
    goro::Chan<int> next;
    goro::go([in = ch, out = next, prime]() mutable {
      for (;;) {
        int v = *in.recv();
        if (v % prime != 0) out.send(v);
      }
    });
    ch = next;
  }
  return prime;  // the goroutines of the chain are left blocked, as in Go's program
}

// A worker pool: jobs in, results out, a WaitGroup to close the results.
std::int64_t worker_pool(int workers, int jobs) {
  goro::Chan<int> in(64);
  goro::Chan<std::int64_t> out(64);
  goro::WaitGroup wg;
  wg.add(workers);
  for (int w = 0; w < workers; w++) {
    goro::go([in, out, &wg]() mutable {
      for (int j : in) out.send(static_cast<std::int64_t>(j) * j);
      wg.done();
    });
  }
  goro::go([in, jobs]() mutable {
    for (int j = 0; j < jobs; j++) in.send(j);
    in.close();
  });
  goro::go([out, &wg]() mutable {
    wg.wait();
    out.close();
  });
  std::int64_t sum = 0;
  for (std::int64_t r : out) sum += r;
  return sum;
}

// Sleepers: n goroutines sleep 1–20 ms each and report on a channel; the
// collector gives up after a second (select on a timer channel).
std::int64_t sleepers(int n) {
  goro::Chan<int> done(static_cast<std::size_t>(n));
  for (int i = 0; i < n; i++) {
    goro::go([done, i]() mutable {
      goro::sleep_for(std::chrono::milliseconds(1 + i % 20));
      done.send(1);
    });
  }
  auto timeout = goro::after(std::chrono::seconds(1));
  std::int64_t woke = 0;
  while (woke < n) {
    if (goro::select(goro::on_recv(done), goro::on_recv(timeout)) == 1) break;
    woke++;
  }
  return woke;
}

// System calls: goroutines each make blocking calls (usleep) announced
// with goro::syscall, while others count; sysmon hands their Ps off.
std::int64_t syscalls(int callers) {
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> work{0};
  goro::WaitGroup wg;
  wg.add(callers + 2);
  for (int i = 0; i < 2; i++) {
    goro::go([&] {
      while (!stop.load()) {
        work++;
        goro::yield();
      }
      wg.done();
    });
  }
  goro::WaitGroup calls;
  calls.add(callers);
  for (int i = 0; i < callers; i++) {
    goro::go([&] {
      for (int k = 0; k < 10; k++) goro::syscall([] { return ::usleep(2000); });
      calls.done();
      wg.done();
    });
  }
  calls.wait();
  stop = true;
  wg.wait();
  return callers * 10;
}

template <class F>
auto timed(const char* name, F&& f) {
  auto before = goro::debug::stats();
  auto t0 = std::chrono::steady_clock::now();
  auto result = f();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto s = goro::debug::stats();
  std::printf("%-12s %16lld %9.1f ms   goroutines %8llu  steals %6llu  parks %8llu  threads %d\n", name,
              static_cast<long long>(result), ms,
              static_cast<unsigned long long>(s.goroutines_created - before.goroutines_created),
              static_cast<unsigned long long>(s.steals - before.steals),
              static_cast<unsigned long long>(s.parks - before.parks), s.threads);
  return result;
}

}  // namespace

int main() {
  return goro::run([] {
    std::printf("goro demo: %d Ps (GOMAXPROCS)\n\n%-12s %16s %12s\n", goro::maxprocs(), "program", "result",
                "wall time");
    bool ok = true;
    ok &= timed("skynet", [] { return skynet(0, 1000000); }) == 499999500000;
    ok &= timed("skynet-chan", [] {
            goro::Chan<std::int64_t> c(1);
            skynet_chan(c, 0, 1000000);
            return *c.recv();
          }) == 499999500000;
    ok &= timed("fib(36)", [] { return fib(36); }) == 14930352;
    timed("fan-out", [] { return fanout(200000); });
    ok &= timed("sieve", [] { return static_cast<std::int64_t>(sieve(1000)); }) == 7919;
    ok &= timed("worker-pool", [] { return worker_pool(8, 100000); }) == 333328333350000;
    ok &= timed("sleepers", [] { return sleepers(10000); }) == 10000;
    ok &= timed("syscalls", [] { return syscalls(16); }) == 160;

    auto s = goro::debug::stats();
    std::printf("\ntotal: %llu goroutines created, %llu context switches, %llu steals (%llu goroutines), %llu parks\n",
                static_cast<unsigned long long>(s.goroutines_created),
                static_cast<unsigned long long>(s.context_switches), static_cast<unsigned long long>(s.steals),
                static_cast<unsigned long long>(s.stolen_goroutines), static_cast<unsigned long long>(s.parks));
    std::printf("%s\n", ok ? "all results correct" : "WRONG RESULT");
    return ok ? 0 : 1;
  });
}
