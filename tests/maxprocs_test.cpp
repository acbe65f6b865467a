// maxprocs_test.cpp — maxprocs(n) at run time: stop-the-world, procresize
// (grow; shrink moving run queues, free Gs and timers of the removed Ps)
// and start-the-world. Ports the intent of Go's runtime/proc_test.go
// (stop-the-world while goroutines run; GOMAXPROCS changes in a loop).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

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
// goroutines' timers, and Timer channels all still deliver.
TEST(MaxProcsResize, ShrinkingLosesNothing) {
  run_checked(
      [] {
        const int n = 200;
        Countdown cd(n);
        std::atomic<int> woke{0};
        for (int i = 0; i < n; i++) {
          goro::go([&, i] {
            if (i % 2 == 0) {
              goro::sleep_for(std::chrono::milliseconds(20 + i % 30));
            } else {
              goro::Timer t(std::chrono::milliseconds(10 + i % 40));
              t.channel().recv();
            }
            woke++;
            cd.done();
          });
        }
        goro::sleep_for(5ms);  // let the timers spread over the Ps' heaps
        EXPECT_EQ(goro::maxprocs(1), 4);
        cd.wait();
        EXPECT_EQ(woke.load(), n);
      },
      {.maxprocs = 4});
}

// main returning while another goroutine stops the world ends the run
// (the stopping goroutine does not wait for Ps that left).
TEST(MaxProcsResize, MainReturningDuringStopTheWorldEndsTheRun) {
  const int runs = static_cast<int>(scaled(200, 10));
  for (int r = 0; r < runs; r++) {
    std::atomic<bool> go_on{true};
    goro::run(
        [&] {
          goro::go([&] {
            for (int i = 0; go_on.load(); i++) goro::maxprocs(2 + i % 2);
          });
          goro::go([&] {
            for (;;) goro::yield();
          });
          for (int i = 0; i < r % 7; i++) goro::yield();
        },
        {.maxprocs = 2});
    go_on = false;
  }
}

// Two goroutines change maxprocs at once: the calls are serialized.
TEST(MaxProcsResize, ConcurrentCallersAreSerialized) {
  run_checked(
      [] {
        Countdown cd(2);
        for (int w = 0; w < 2; w++) {
          goro::go([&, w] {
            for (int i = 0; i < 200; i++) goro::maxprocs(1 + (i + w) % 3);
            cd.done();
          });
        }
        cd.wait();
        int p = goro::maxprocs();
        EXPECT_GE(p, 1);
        EXPECT_LE(p, 3);
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
