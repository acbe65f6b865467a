// maxprocs_test.cpp — maxprocs(n) at run time: stop-the-world, procresize
// (grow; shrink moving run queues, free Gs and timers of the removed Ps)
// and start-the-world. Ports the intent of Go's runtime/proc_test.go
// (stop-the-world while goroutines run; GOMAXPROCS changes in a loop).
// Last, one workload swept over 1, 2, 4, 8 and 64 Ps.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/goro.hpp"

using namespace std::chrono_literals;
using goro::Clock;
using goro::testing::Countdown;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::wait_until;

TEST(MaxProcsResize, ReturnsThePreviousValueAndChangesIt) {
  run_checked(
      [] {
        EXPECT_EQ(goro::maxprocs(4), 2);
        EXPECT_EQ(goro::maxprocs(), 4);
        EXPECT_EQ(goro::debug::stats().maxprocs, 4);
        EXPECT_EQ(goro::debug::stats().local_runqueues.size(), 4u);
        EXPECT_EQ(goro::maxprocs(1), 4);
        EXPECT_EQ(goro::maxprocs(0), 1);
        EXPECT_EQ(goro::maxprocs(-3), 1);
        EXPECT_EQ(goro::maxprocs(1), 1);
        EXPECT_THROW(goro::maxprocs(1025), std::invalid_argument);
        EXPECT_EQ(goro::maxprocs(2), 1);
      },
      {.maxprocs = 2});
}

// After growing from 1 to 2 Ps, two CPU-bound goroutines run at once.
TEST(MaxProcsResize, GrowingRunsGoroutinesInParallel) {
  run_checked(
      [] {
        EXPECT_EQ(goro::maxprocs(2), 1);
        std::atomic<int> running{0};
        std::atomic<bool> both{false};
        Countdown cd(2);
        for (int i = 0; i < 2; i++) {
          goro::go([&] {
            running++;
            auto deadline = Clock::now() + 10s;
            while (!both.load() && Clock::now() < deadline) {
              if (running.load() == 2) both = true;
            }
            cd.done();
          });
        }
        cd.wait();
        EXPECT_TRUE(both.load()) << "the two goroutines never ran at the same time";
      },
      {.maxprocs = 1});
}

// Shrinking moves what the removed Ps held: runnable goroutines, sleeping
// goroutines' timers, and Timer channels all still deliver. The timers
// are long enough to be pending when the Ps go, and some of them must be
// on the Ps that go: where the goroutines ran is up to the scheduler, so
// a round in which they all stayed on P0 is waited out and tried again. A
// round in which a timer fired before all were set (a loaded machine) is
// tried again with timers twice as long (Go's TestAfterQueuing retries with
// growing delays likewise).
TEST(MaxProcsResize, ShrinkingLosesNothing) {
  run_checked(
      [] {
        const int n = 200;
        int base_ms = goro::testing::scaled_down() ? 1000 : 200;
        const int max_ms = 8 * base_ms;
        bool shrunk = false;
        for (int round = 0; round < 10 && !shrunk; round++) {
          Countdown cd(n);
          std::atomic<int> woke{0};
          for (int i = 0; i < n; i++) {
            goro::go([&, i, base_ms] {
              goro::yield();  // through the global queue: any P may take it
              if (i % 2 == 0) {
                goro::sleep_for(std::chrono::milliseconds(base_ms + i % 30));
              } else {
                goro::Timer t(std::chrono::milliseconds(base_ms + i % 40));
                t.channel().recv();
              }
              woke++;
              cd.done();
            });
          }
          // Every goroutine has its timer in a heap.
          ASSERT_TRUE(wait_until([&] { return goro::testing::timers_in_heaps() >= n || woke.load() > 0; }));
          int on_removed = goro::testing::timers_in_heaps_from(1);
          std::printf("round %d: %d timers on the Ps that go, %d fired already\n", round, on_removed, woke.load());
          bool early = woke.load() > 0;
          if (!early && on_removed > 0) {
            EXPECT_EQ(goro::maxprocs(1), 4);
            shrunk = true;
          }
          cd.wait();
          EXPECT_EQ(woke.load(), n);
          if (early) base_ms = std::min(2 * base_ms, max_ms);
        }
        EXPECT_TRUE(shrunk) << "in 10 rounds, no timer was pending on the Ps that go";
      },
      {.maxprocs = 4});
}

// main returning while another goroutine stops the world ends the run
// (the stopping goroutine does not wait for Ps that left): every run
// returns main's result, and in some of them the world had been stopped
// (and was being stopped again) when main returned.
TEST(MaxProcsResize, MainReturningDuringStopTheWorldEndsTheRun) {
  const int runs = static_cast<int>(scaled(200, 10));
  std::atomic<bool> go_on{true};
  std::atomic<int> changes{0};  // outlive the abandoned goroutines
  int runs_with_changes = 0;
  for (int r = 0; r < runs; r++) {
    go_on = true;
    changes = 0;
    int rc = goro::run(
        [&] {
          goro::go([&] {
            for (int i = 0; go_on.load(); i++) {
              goro::maxprocs(2 + i % 2);
              changes++;
            }
          });
          goro::go([&] {
            for (;;) goro::yield();
          });
          for (int i = 0; i < r % 7; i++) goro::yield();
          // On a busy machine main may return before the other goroutine
          // ever runs: every fourth run waits for a first change, so that
          // main returns while the next stop-the-world is under way.
          if (r % 4 == 3) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (changes.load() == 0 && std::chrono::steady_clock::now() < deadline) goro::yield();
          }
          return 100 + r;
        },
        {.maxprocs = 2});
    go_on = false;
    EXPECT_EQ(rc, 100 + r);
    if (changes.load() > 0) runs_with_changes++;
  }
  std::printf("%d of %d runs ended after the world had been stopped\n", runs_with_changes, runs);
  EXPECT_GT(runs_with_changes, 0) << "main always returned before any stop-the-world";
  EXPECT_EQ(goro::testing::stacks_in_use(), 0u);
}

// Two goroutines change maxprocs at once: the calls are serialized. Each
// call sets a value no other call sets, and returns the previous value. In
// a serial history the calls form one chain: from the initial 2, each
// value is returned by exactly one call (the next one), except the last
// one set, which maxprocs() returns at the end; the chain visits every
// call, and each goroutine's calls in the order it made them.
TEST(MaxProcsResize, ConcurrentCallersAreSerialized) {
  constexpr int kPer = 40, kFirst = 3;
  run_checked(
      [] {
        std::vector<int> before(kFirst + 2 * kPer, -1);  // before[v]: what the call that set v returned
        Countdown cd(2);
        goro::Chan<bool> start;
        for (int w = 0; w < 2; w++) {
          goro::go([&, w] {
            start.recv();
            for (int i = 0; i < kPer; i++) {
              int v = kFirst + w * kPer + i;
              before[static_cast<std::size_t>(v)] = goro::maxprocs(v);
              goro::yield();  // let the other one in
            }
            cd.done();
          });
        }
        ASSERT_TRUE(wait_until([&] { return goro::testing::recvq_kinds(start) == "gg"; }));
        start.close();  // both at once
        cd.wait();
        int last = goro::maxprocs();
        std::map<int, int> next;  // u -> the value set by the call that returned u
        for (int v = kFirst; v < kFirst + 2 * kPer; v++) {
          int u = before[static_cast<std::size_t>(v)];
          EXPECT_EQ(next.count(u), 0u) << "two calls returned " << u << " (" << next[u] << " and " << v << ")";
          next[u] = v;
        }
        std::vector<int> order;
        for (int u = 2; next.count(u) != 0 && order.size() <= static_cast<std::size_t>(2 * kPer);) {
          u = next[u];
          order.push_back(u);
        }
        EXPECT_EQ(order.size(), static_cast<std::size_t>(2 * kPer)) << "the calls do not form one chain";
        if (!order.empty()) {
          EXPECT_EQ(order.back(), last);
        }
        int seen[2] = {kFirst - 1, kFirst + kPer - 1};  // each goroutine's last value so far
        int switches = 0;                               // between the goroutines along the chain
        for (std::size_t k = 0; k < order.size(); k++) {
          int w = (order[k] - kFirst) / kPer;
          EXPECT_GT(order[k], seen[w]) << "goroutine " << w << "'s calls out of order";
          seen[w] = order[k];
          if (k > 0 && w != (order[k - 1] - kFirst) / kPer) switches++;
        }
        std::printf("the chain switches between the two callers %d times\n", switches);
        EXPECT_GT(switches, 1) << "the two callers never took turns";
      },
      {.maxprocs = 2});
}

// The acceptance stress: maxprocs changed 1000 times while goroutines run
// and communicate (a pipeline, a mutex, sleepers, a ticker, a goroutine in
// system calls, a locked goroutine, after_func timers): every value
// arrives exactly once.
TEST(MaxProcsResize, ThousandChangesWhileGoroutinesCommunicate) {
  const int changes = 1000;
  run_checked(
      [&] {
        std::atomic<bool> stop{false};
        goro::Chan<std::int64_t> a(16), b;
        std::atomic<std::int64_t> sent{0}, received_sum{0}, sent_sum{0}, received{0};
        goro::Mutex mu;
        std::int64_t guarded = 0;
        goro::Chan<int> ping, pong;
        std::atomic<std::int64_t> fired{0}, armed{0};
        Countdown cd(8);
        goro::go([&] {  // a locked goroutine, ping-ponging
          goro::lock_os_thread();
          for (int i = 0; !stop.load(); i++) {
            ping.send(i);
            pong.recv();
          }
          ping.close();
          goro::unlock_os_thread();
          cd.done();
        });
        goro::go([&] {
          for (int v : ping) {
            pong.send(v);
            if (v % 16 == 0) {
              armed++;
              goro::after_func(std::chrono::microseconds(v % 200), [&] { fired++; });
            }
          }
          cd.done();
        });
        goro::go([&] {  // producer
          for (std::int64_t i = 1; !stop.load(); i++) {
            a.send(i);
            sent++;
            sent_sum += i;
          }
          a.close();
          cd.done();
        });
        goro::go([&] {  // relay
          for (std::int64_t v : a) b.send(v);
          b.close();
          cd.done();
        });
        goro::go([&] {  // consumer
          for (std::int64_t v : b) {
            received++;
            received_sum += v;
          }
          cd.done();
        });
        goro::go([&] {  // sleepers and a mutex
          while (!stop.load()) {
            goro::sleep_for(50us);
            std::lock_guard<goro::Mutex> l(mu);
            guarded++;
          }
          cd.done();
        });
        goro::go([&] {  // a ticker
          goro::Ticker t(100us);
          while (!stop.load()) t.channel().recv();
          t.stop();
          cd.done();
        });
        goro::go([&] {  // system calls (yielding now and then, as real code blocks)
          for (int i = 0; !stop.load(); i++) {
            goro::syscall([] { return ::getppid(); });
            if (i % 64 == 0) goro::yield();
          }
          cd.done();
        });
        for (int i = 0; i < changes; i++) {
          goro::maxprocs(1 + i % 4);
          if (i % 10 == 0) {
            std::lock_guard<goro::Mutex> l(mu);
            guarded++;
          }
          goro::yield();
        }
        stop = true;
        cd.wait();
        EXPECT_TRUE(wait_until([&] { return fired.load() == armed.load(); })) << "after_func calls lost";
        EXPECT_EQ(received.load(), sent.load());
        EXPECT_EQ(received_sum.load(), sent_sum.load());
        EXPECT_GT(sent.load(), 0);
        std::lock_guard<goro::Mutex> l(mu);
        EXPECT_GT(guarded, changes / 10 - 1);
      },
      {.maxprocs = 2});
}

// From a plain thread during a run: maxprocs() is the live value, and
// maxprocs(n) changes it (stopping the world from outside it), while
// goroutines keep running. Before: the default, and "no goro runtime is
// running".
TEST(MaxProcsResize, FromAPlainThreadDuringARun) {
  run_checked(
      [] {
        std::atomic<bool> stop{false};
        std::atomic<std::int64_t> work{0};
        goro::WaitGroup wg;
        for (int i = 0; i < 4; i++) {
          wg.add(1);
          goro::go([&] {
            while (!stop.load()) {
              work++;
              goro::yield();
            }
            wg.done();
          });
        }
        int seen = 0, prev = 0, after = 0;
        std::thread t([&] {
          seen = goro::maxprocs();
          prev = goro::maxprocs(3);
          after = goro::maxprocs();
          goro::maxprocs(1);
        });
        // Announced: stopping the world needs main's P, which an unannounced
        // blocking call would hold.
        goro::blocking([&] { t.join(); });
        EXPECT_EQ(seen, 5);
        EXPECT_EQ(prev, 5);
        EXPECT_EQ(after, 3);
        EXPECT_EQ(goro::maxprocs(), 1);
        std::int64_t before = work.load();
        EXPECT_TRUE(wait_until([&] { return work.load() > before + 100; })) << "goroutines stopped after the resize";
        stop = true;
        wg.wait();
      },
      {.maxprocs = 5});
  // After the run: what run() would choose, and no change possible.
  std::thread([] {
    EXPECT_GE(goro::maxprocs(), 1);
    EXPECT_THROW(goro::maxprocs(2), std::logic_error);
  }).join();
}

// One workload at 1, 2, 4, 8 and 64 Ps, as marl sweeps its worker counts:
// pairs of goroutines playing ping-pong over unbuffered channels (every
// exchange a park and a ready, handed between Ps), a Mutex-guarded counter
// they all bump, a fan-in of each pair's result over a buffered channel,
// and a WaitGroup joining everyone. Whatever the number of Ps, every value
// comes back in order and every count adds up; the run has the Ps asked
// for, and goroutines run on those only.
class MaxProcsSweep : public ::testing::TestWithParam<int> {};

TEST_P(MaxProcsSweep, PingPongMutexFanInAndWaitGroup) {
  const int procs = GetParam();
  constexpr int kPairs = 48;
  const int rounds = static_cast<int>(scaled(20000, 50));
  run_checked(
      [&] {
        EXPECT_EQ(goro::maxprocs(), procs);
        EXPECT_EQ(goro::debug::stats().maxprocs, procs);
        goro::WaitGroup wg;
        goro::Mutex mu;
        std::int64_t guarded = 0;  // under mu
        std::atomic<int> max_p{-1}, bad_replies{0};
        goro::Chan<std::int64_t> results(kPairs);
        auto note_p = [&] {
          int p = goro::testing::current_p(), seen = max_p.load();
          while (p > seen && !max_p.compare_exchange_weak(seen, p)) {
          }
        };
        for (int pair = 0; pair < kPairs; pair++) {
          goro::Chan<int> ping, pong;
          wg.add(2);
          goro::go([&, ping, pong, pair]() mutable {
            std::int64_t sum = 0;
            for (int i = 0; i < rounds; i++) {
              ping.send(pair * rounds + i);
              std::optional<int> r = pong.recv();
              if (!r || *r != pair * rounds + i + 1) bad_replies++;
              sum += r.value_or(0);
            }
            ping.close();
            note_p();
            results.send(sum);
            wg.done();
          });
          goro::go([&, ping, pong]() mutable {
            while (std::optional<int> v = ping.recv()) {
              pong.send(*v + 1);
              std::lock_guard<goro::Mutex> l(mu);
              guarded++;
            }
            note_p();
            wg.done();
          });
        }
        wg.wait();
        std::int64_t total = 0;
        for (int pair = 0; pair < kPairs; pair++) total += results.recv().value();
        EXPECT_FALSE(results.try_recv().has_value()) << "a pair sent its result twice";
        EXPECT_EQ(bad_replies.load(), 0);
        std::lock_guard<goro::Mutex> l(mu);
        EXPECT_EQ(guarded, static_cast<std::int64_t>(kPairs) * rounds);
        // Sum over pairs p and rounds i of p*rounds + i + 1.
        const std::int64_t n = static_cast<std::int64_t>(kPairs) * rounds;
        EXPECT_EQ(total, n * (n + 1) / 2);
        EXPECT_GE(max_p.load(), 0);
        EXPECT_LT(max_p.load(), procs) << "a goroutine ran on a P the run does not have";
      },
      {.maxprocs = procs});
}

INSTANTIATE_TEST_SUITE_P(Procs, MaxProcsSweep, ::testing::Values(1, 2, 4, 8, 64));
