// preempt_stress_test.cpp — asynchronous preemption landing everywhere, every
// millisecond (GORO_DEBUG=forcepreemptns): goroutines that spin, allocate,
// memcpy, throw and catch, keep thread_local addresses, and keep integer and
// vector accumulators in registers, on both cores, next to goroutines that
// use channels and sleep. Every worker checks its own results; the runtime
// must not trip over its invariants. GORO_STRESS_SECONDS sets the length
// (default 5; the 60-second runs set it to 60).
#include <gtest/gtest.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using goro::testing::run_checked;

int stress_seconds() {
  const char* s = std::getenv("GORO_STRESS_SECONDS");
  int n = s != nullptr ? std::atoi(s) : 0;
  return n > 0 ? n : 5;
}

thread_local std::uint64_t tl_counter = 0;
__attribute__((noinline)) std::uint64_t* tl_address() { return &tl_counter; }

// 8 doubles in two __m256 accumulators, many rounds; the same input gives
// the same bits, preempted or not.
__attribute__((target("avx"), noinline)) void avx_churn(std::uint64_t rounds, double out[8]) {
  __m256d a = _mm256_set_pd(1.0, 2.0, 3.0, 4.0);
  __m256d b = _mm256_set_pd(0.5, 0.25, 0.125, 0.0625);
  const __m256d k = _mm256_set1_pd(0.9999999);
  const __m256d c = _mm256_set1_pd(1e-7);
  for (std::uint64_t i = 0; i < rounds; i++) {
    a = _mm256_add_pd(_mm256_mul_pd(a, k), c);
    b = _mm256_add_pd(_mm256_mul_pd(b, k), a);
    asm volatile("" : "+x"(a), "+x"(b));
  }
  _mm256_storeu_pd(out, a);
  _mm256_storeu_pd(out + 4, b);
}

struct Failures {
  std::atomic<int> n{0};
  std::string first;  // the first failure's text (written once)
  std::atomic<bool> taken{false};
  void fail(const std::string& what) {
    if (!taken.exchange(true)) first = what;
    n++;
  }
};

TEST(PreemptStress, EverythingUnderPreemptionEveryMillisecond) {
  setenv("GORO_DEBUG", "forcepreemptns=1000000", 1);
  const auto duration = std::chrono::seconds(stress_seconds());
  const bool avx = __builtin_cpu_supports("avx");
  double want[8];
  if (avx) avx_churn(2'000'000, want);
  Failures failures;
  std::atomic<std::uint64_t> work{0};
  std::uint64_t preemptions = 0, async = 0;
  goro::Options o;
  o.maxprocs = 2;
  run_checked(
      [&] {
        const std::uint64_t before = goro::debug::stats().preemptions;
        const std::uint64_t async_before = goro::debug::stats().async_preemptions;
        const auto deadline = std::chrono::steady_clock::now() + duration;
        auto live = [&] { return std::chrono::steady_clock::now() < deadline; };
        goro::WaitGroup wg;
        auto spawn = [&](auto f) {
          wg.add(1);
          goro::go([&wg, f] {
            f();
            wg.done();
          });
        };
        // Spinners: no scheduling point at all.
        for (int k = 0; k < 2; k++) {
          spawn([&] {
            std::uint64_t x = 0;
            while (live()) {
              for (int i = 0; i < 100000; i++) x = x * 3 + 1;
              work++;
            }
            if (x == 42) failures.fail("impossible");
          });
        }
        // Allocation: new/delete of varying sizes, contents checked.
        spawn([&] {
          std::uint64_t i = 0;
          while (live()) {
            std::size_t n = 1 + (i * 7919) % 4096;
            auto v = std::make_unique<std::uint32_t[]>(n);
            for (std::size_t j = 0; j < n; j++) v[j] = static_cast<std::uint32_t>(i + j);
            for (std::size_t j = 0; j < n; j++) {
              if (v[j] != static_cast<std::uint32_t>(i + j)) failures.fail("allocation contents changed");
            }
            i++;
            work++;
          }
        });
        // memcpy of large buffers (libc: the signal often lands there).
        spawn([&] {
          std::vector<unsigned char> a(1 << 20), b(1 << 20);
          for (std::size_t j = 0; j < a.size(); j++) a[j] = static_cast<unsigned char>(j * 131);
          while (live()) {
            std::memcpy(b.data(), a.data(), a.size());
            if (std::memcmp(a.data(), b.data(), a.size()) != 0) failures.fail("memcpy result differs");
            work++;
          }
        });
        // Exceptions thrown and caught, with the exception live across
        // preemption points inside the handler.
        spawn([&] {
          std::uint64_t i = 0;
          while (live()) {
            try {
              throw std::runtime_error("boom " + std::to_string(i));
            } catch (const std::runtime_error& e) {
              std::uint64_t x = 0;
              for (int k = 0; k < 20000; k++) x += static_cast<std::uint64_t>(k) ^ i;
              if (std::string(e.what()) != "boom " + std::to_string(i) || x == 1) {
                failures.fail("exception changed in flight");
              }
            }
            i++;
            work++;
          }
        });
        // thread_local addresses held across stretches with no scheduling
        // point: the goroutine stays on its thread while preempted.
        spawn([&] {
          while (live()) {
            std::uint64_t* p = tl_address();
            std::uint64_t start = *p;
            for (int k = 0; k < 200000; k++) ++*p;
            if (tl_address() != p || *p != start + 200000)
              failures.fail("thread_local moved under a preempted goroutine");
            work++;
            goro::yield();  // a scheduling point of its own: may move now
          }
        });
        // Vector state: AVX accumulators come out bit-exact.
        if (avx) {
          spawn([&] {
            while (live()) {
              double got[8];
              avx_churn(2'000'000, got);
              if (std::memcmp(got, want, sizeof got) != 0) failures.fail("AVX registers changed across preemption");
              work++;
            }
          });
        }
        // Ordinary goroutines around them: channels and sleeps.
        goro::Chan<int> ch(4);
        spawn([&] {
          for (int i = 0; live(); i++) ch.send(i);
          ch.close();
        });
        spawn([&] {
          int expect = 0;
          while (auto v = ch.recv()) {
            if (*v != expect++) failures.fail("channel lost or reordered a value");
          }
        });
        spawn([&] {
          while (live()) goro::sleep_for(std::chrono::microseconds(300));
        });
        wg.wait();
        preemptions = goro::debug::stats().preemptions - before;
        async = goro::debug::stats().async_preemptions - async_before;
      },
      o);
  unsetenv("GORO_DEBUG");
  EXPECT_EQ(failures.n.load(), 0) << failures.first;
  EXPECT_GT(work.load(), 0u);
  // One slice is 1 ms: many preemptions, not a handful.
  EXPECT_GT(async, static_cast<std::uint64_t>(stress_seconds()) * 20) << "too few asynchronous preemptions";
  std::printf("%llu preemptions (%llu asynchronous) in %d s, %llu work items\n",
              static_cast<unsigned long long>(preemptions), static_cast<unsigned long long>(async), stress_seconds(),
              static_cast<unsigned long long>(work.load()));
}

}  // namespace

namespace {

// Unsafe points are never preempted however often the signal lands: with a
// 100 us slice, goroutines spend their time inside the runtime (try_send and
// try_recv, Mutex, go, yield) with a little of their own code between; the
// runtime's invariants (fatal errors), the channel's FIFO order and every
// count must survive.
TEST(PreemptStress, RuntimeHeavyLoopsUnderPreemptionEvery100us) {
  setenv("GORO_DEBUG", "forcepreemptns=100000", 1);
  const auto duration = std::chrono::seconds(stress_seconds() < 10 ? 2 : stress_seconds() / 5);
  Failures failures;
  std::uint64_t async = 0;
  std::atomic<std::int64_t> spawned{0}, ran{0};
  goro::Options o;
  o.maxprocs = 2;
  run_checked(
      [&] {
        const std::uint64_t async_before = goro::debug::stats().async_preemptions;
        const auto deadline = std::chrono::steady_clock::now() + duration;
        auto live = [&] { return std::chrono::steady_clock::now() < deadline; };
        goro::WaitGroup wg;
        goro::Mutex mu;
        std::int64_t guarded = 0;
        goro::Chan<std::int64_t> ch(16);
        std::atomic<bool> sent_all{false};
        std::int64_t sent = 0;
        wg.add(1);
        goro::go([&] {
          for (std::int64_t i = 0; live(); i++) {
            while (!ch.try_send(i)) {
              std::uint64_t x = static_cast<std::uint64_t>(i);
              for (int k = 0; k < 50; k++) x = x * 5 + 1;  // own code between runtime calls
              if (x == 3) failures.fail("impossible");
            }
            sent = i + 1;
          }
          sent_all.store(true);
          wg.done();
        });
        wg.add(1);
        goro::go([&] {
          std::int64_t expect = 0;
          while (!sent_all.load() || expect < sent) {
            if (auto v = ch.try_recv()) {
              if (*v != expect++) failures.fail("channel lost or reordered a value");
            }
          }
          wg.done();
        });
        for (int k = 0; k < 2; k++) {
          wg.add(1);
          goro::go([&] {
            while (live()) {
              mu.lock();
              guarded++;
              mu.unlock();
              wg.add(1);
              spawned++;
              goro::go([&] {
                ran++;
                wg.done();
              });
              goro::yield();
            }
            wg.done();
          });
        }
        wg.wait();
        if (guarded != spawned.load()) failures.fail("a Mutex-guarded count lost increments");
        async = goro::debug::stats().async_preemptions - async_before;
      },
      o);
  unsetenv("GORO_DEBUG");
  EXPECT_EQ(failures.n.load(), 0) << failures.first;
  EXPECT_EQ(ran.load(), spawned.load());
  EXPECT_GT(async, 0u) << "no asynchronous preemption landed: the test proves nothing";
  std::printf("%llu asynchronous preemptions, %lld goroutines\n", static_cast<unsigned long long>(async),
              static_cast<long long>(spawned.load()));
}

}  // namespace
