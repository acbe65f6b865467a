// sched_stress_test.cpp — the scheduler hammered from every side at once:
// spawning trees, park/ready rings, yields, goexit, and plain threads
// spawning and waking goroutines, on both cores (run under TSan in CI).
// Everything must complete (no lost wakeups) and every count must add up.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using goro::testing::Countdown;
using goro::testing::Parker;
using goro::testing::run_checked;
using goro::testing::scaled;

// A ring of goroutines passing one token: each parks until its predecessor
// wakes it. Rings on several Ps at once, with yields and goexits mixed in.
void token_rings(int rings, int ring_size, std::int64_t laps, std::atomic<std::int64_t>& passes) {
  Countdown all(static_cast<std::int64_t>(rings) * ring_size);
  std::vector<std::unique_ptr<std::vector<Parker>>> parkers;
  for (int r = 0; r < rings; r++) {
    parkers.push_back(std::make_unique<std::vector<Parker>>(static_cast<std::size_t>(ring_size)));
    auto* ring = parkers.back().get();
    for (int i = 0; i < ring_size; i++) {
      goro::go([&, ring, i] {
        struct Done {
          Countdown* c;
          ~Done() { c->done(); }
        } done{&all};
        auto& me = (*ring)[static_cast<std::size_t>(i)];
        auto& next = (*ring)[static_cast<std::size_t>((i + 1) % ring_size)];
        for (std::int64_t lap = 0; lap < laps; lap++) {
          if (!(i == 0 && lap == 0)) me.park();
          passes++;
          if (lap % 7 == 3) goro::yield();
          next.unpark();
        }
        if (i == 0) me.park();  // the token's last lap ends here
        if (i % 3 == 0) goro::goexit();
      });
    }
  }
  all.wait();
}

class SchedStress : public ::testing::TestWithParam<int> {};

TEST_P(SchedStress, EverythingAtOnce) {
  const std::int64_t laps = scaled(100000, 100);
  const std::int64_t trees = scaled(5000, 250);
  constexpr int kRings = 6, kRingSize = 10;
  std::atomic<std::int64_t> passes{0}, leaves{0}, foreign{0};
  run_checked(
      [&] {
        Countdown phases(3);
        // 1. token rings
        goro::go([&] {
          token_rings(kRings, kRingSize, laps, passes);
          phases.done();
        });
        // 2. spawn trees: each node spawns 4 children down to depth 4
        goro::go([&] {
          struct Tree {
            static void grow(int depth, std::atomic<std::int64_t>* leaves, Countdown* parent) {
              if (depth == 0) {
                leaves->fetch_add(1);
              } else {
                Countdown cd(4);
                for (int i = 0; i < 4; i++) goro::go(&Tree::grow, depth - 1, leaves, &cd);
                cd.wait();
              }
              parent->done();
            }
          };
          for (std::int64_t t = 0; t < trees; t++) {
            Countdown cd(1);
            goro::go(&Tree::grow, 4, &leaves, &cd);
            cd.wait();
          }
          phases.done();
        });
        // 3. plain threads spawning goroutines and waking a parked one
        goro::go([&] {
          constexpr int kThreads = 2;
          const std::int64_t per = scaled(500000, 250);
          Countdown cd(kThreads * per);
          std::vector<std::thread> ts;
          for (int t = 0; t < kThreads; t++) {
            ts.emplace_back([&] {
              for (std::int64_t i = 0; i < per; i++) {
                goro::go([&] {
                  foreign++;
                  cd.done();
                });
              }
            });
          }
          cd.wait();
          for (auto& t : ts) t.join();
          phases.done();
        });
        phases.wait();
      },
      {.maxprocs = GetParam()});
  EXPECT_EQ(passes.load(), kRings * kRingSize * laps);
  EXPECT_EQ(leaves.load(), trees * 256);
  EXPECT_EQ(foreign.load(), 2 * scaled(500000, 250));
}

INSTANTIATE_TEST_SUITE_P(MaxProcs, SchedStress, ::testing::Values(1, 2, 4, 8, 64));

// A goroutine that computes with no scheduling point and starts another
// (into its own P's runnext) depends on another M to steal it: nobody else
// ever looks at that P. Plain threads start short goroutines in bursts
// meanwhile (every other one in a short system call, so Ps are handed off
// and taken back without spinning), so the other P's M keeps deciding
// whether to spin or to give its P up while the spawner's wakep is in
// flight: the windows of tests/model/spinning.pml ("Sysmon's rescue"). A
// goroutine not yet run after 5 ms may be slow (a loaded machine) or
// waiting for sysmon's retake to wake an M for it once the computing
// goroutine's slice is over: the threads then pause, and it must still run.
// One not run 20 s later was lost.
TEST(SchedStress, GoFromComputingGoroutine) {
  const std::int64_t rounds = scaled(20000, 200);
  std::int64_t stranded_round = -1, slow_rounds = 0;
  std::atomic<bool> pause{false}, stop{false};
  std::atomic<std::int64_t> started{0}, finished{0};
  std::vector<std::thread> threads;
  run_checked(
      [&] {
        for (int t = 0; t < 2; t++) {
          threads.emplace_back([&, t] {
            unsigned seed = 12345u + static_cast<unsigned>(t);
            while (!stop.load()) {
              if (pause.load()) {
                std::this_thread::sleep_for(std::chrono::microseconds(100));
                continue;
              }
              started++;
              if (seed & 1) {
                goro::go([&] {
                  goro::syscall([] { std::this_thread::sleep_for(std::chrono::microseconds(30)); });
                  finished++;
                });
              } else {
                goro::go([&] { finished++; });
              }
              seed = seed * 1103515245u + 12345u;
              std::this_thread::sleep_for(std::chrono::microseconds((seed >> 16) % 50));
            }
          });
        }
        using clock = std::chrono::steady_clock;
        for (std::int64_t r = 0; r < rounds && stranded_round < 0; r++) {
          auto ran = std::make_shared<std::atomic<bool>>(false);
          goro::go([ran] { ran->store(true); });
          auto deadline = clock::now() + std::chrono::milliseconds(5);
          while (!ran->load() && clock::now() < deadline) {
          }
          if (ran->load()) continue;
          slow_rounds++;
          pause = true;
          deadline = clock::now() + std::chrono::seconds(20);
          while (!ran->load() && clock::now() < deadline) {
          }
          pause = false;
          if (!ran->load()) stranded_round = r;
        }
        stop = true;
        for (auto& t : threads) t.join();
        while (finished.load() != started.load()) goro::yield();
      },
      {.maxprocs = 2});
  EXPECT_EQ(stranded_round, -1) << "a goroutine started by a computing goroutine was not run for 20 s with every "
                                   "other M idle ("
                                << slow_rounds << " rounds took over 5 ms)";
  EXPECT_GT(started.load(), 0);
}

// Threads of this process, once those that are exiting are gone (up to
// 10 s): what a run left behind.
int settled_thread_count(int expected) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int n = goro::testing::thread_count();
  while (n > expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    n = goro::testing::thread_count();
  }
  return n;
}

// Runtimes started and stopped over and over, with goroutines abandoned
// mid-flight each time: shutdown must never hang or leak threads (counted
// in /proc/self/task).
TEST(SchedStress, RepeatedRunsWithAbandonedGoroutines) {
  const int threads_before = goro::testing::thread_count();
  int max_during = 0;
  for (int i = 0; i < scaled(1000, 20); i++) {
    goro::run(
        [&max_during] {
          for (int k = 0; k < 20; k++)
            goro::go([] {
              for (int j = 0; j < 100; j++) goro::yield();
            });
          goro::yield();
          max_during = std::max(max_during, goro::testing::thread_count());
        },
        {.maxprocs = 2});
  }
  EXPECT_GT(max_during, threads_before) << "the runs started no threads";
  EXPECT_LE(settled_thread_count(threads_before), threads_before) << "threads left behind by the runs";
  EXPECT_EQ(goro::testing::stacks_in_use(), 0u);
}

// Plain threads calling go() while runtimes start and stop: each call either
// starts a goroutine of the current run or throws std::logic_error; none
// may touch a half-built or torn-down scheduler.
TEST(SchedStress, ForeignGoAcrossRunBoundaries) {
  const int threads_before = goro::testing::thread_count();
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> started{0}, refused{0}, ran{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; t++) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        try {
          goro::go([&] { ran++; });
          started++;
        } catch (const std::logic_error&) {
          refused++;
        }
      }
    });
  }
  for (int i = 0; i < scaled(300, 10); i++) {
    goro::run(
        [] {
          for (int k = 0; k < 10; k++) goro::yield();
        },
        {.maxprocs = 2});
  }
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_GT(started.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_LE(ran.load(), started.load());
  EXPECT_LE(settled_thread_count(threads_before), threads_before) << "threads left behind by the runs";
  EXPECT_EQ(goro::testing::stacks_in_use(), 0u);
}

}  // namespace
