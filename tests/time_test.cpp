// time_test.cpp — timers: sleep_for/sleep_until, after, Timer, Ticker,
// after_func, select on timer channels, and timer fairness. Ports the
// intent of Go's time/sleep_test.go, time/tick_test.go and
// runtime/proc_test.go (TestTimerFairness, TestTimerFairness2).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/goro.hpp"

using namespace std::chrono_literals;
using goro::Clock;
using goro::testing::Countdown;
using goro::testing::run_checked;
using goro::testing::scaled;

namespace {

// Generous upper bounds: the machine is shared and sanitizers are slow;
// the lower bounds are the ones that must hold exactly.
constexpr auto kSlack = goro::testing::kSanitized ? 2s : 500ms;

auto since(Clock::time_point t0) { return Clock::now() - t0; }

}  // namespace

TEST(Sleep, LastsAtLeastTheDuration) {
  run_checked([] {
    // Another goroutine keeps the P busy meanwhile (Go's TestSleep
    // interrupts the sleeper; here it must not cut the sleep short).
    std::atomic<bool> stop{false};
    Countdown cd(1);
    goro::go([&] {
      while (!stop.load()) goro::yield();
      cd.done();
    });
    auto t0 = Clock::now();
    goro::sleep_for(100ms);
    auto d = since(t0);
    stop = true;
    cd.wait();
    EXPECT_GE(d, 100ms);
    EXPECT_LT(d, 100ms + kSlack);
  });
}

TEST(Sleep, ZeroAndNegativeReturnAtOnce) {
  run_checked([] {
    auto t0 = Clock::now();
    for (int i = 0; i < 1000; i++) {
      goro::sleep_for(0ns);
      goro::sleep_for(-1s);
    }
    goro::sleep_until(Clock::now() - 1h);
    EXPECT_LT(since(t0), 100ms);
  });
}

TEST(Sleep, SleepUntilWakesAtTheTime) {
  run_checked([] {
    auto until = Clock::now() + 50ms;
    goro::sleep_until(until);
    EXPECT_GE(Clock::now(), until);
  });
}

TEST(Sleep, OnAPlainThreadSleepsTheThread) {
  auto t0 = Clock::now();
  goro::sleep_for(20ms);
  EXPECT_GE(since(t0), 20ms);
}

TEST(Sleep, ManySleepersAllWakeInTime) {
  const int n = static_cast<int>(scaled(10000, 10));
  std::atomic<int> early{0};
  run_checked(
      [&] {
        Countdown cd(n);
        for (int i = 0; i < n; i++) {
          goro::go([&, i] {
            auto d = std::chrono::milliseconds(1 + (i * 7919) % 20);
            auto t0 = Clock::now();
            goro::sleep_for(d);
            if (since(t0) < d) early++;
            cd.done();
          });
        }
        cd.wait();
      },
      {.maxprocs = 2});
  EXPECT_EQ(early.load(), 0);
}

TEST(After, DeliversTheTimeAfterTheDelay) {
  run_checked([] {
    auto t0 = Clock::now();
    auto v = goro::after(50ms).recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(since(t0), 50ms);
    EXPECT_GE(*v - t0, 50ms);
    EXPECT_LE(*v, Clock::now());
  });
}

// Go's TestAfterQueuing: timers fire in the order of their deadlines, not
// of their creation.
TEST(After, FiresInDeadlineOrder) {
  run_checked([] {
    const int slots[] = {5, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0};
    goro::Chan<int> result(std::size(slots));
    auto delta = goro::testing::kSanitized ? 40ms : 20ms;
    for (int s : slots) {
      goro::go([&, s] {
        goro::after(s * delta).recv();
        result.send(s);
      });
    }
    int last = -1;
    for (std::size_t i = 0; i < std::size(slots); i++) {
      int s = *result.recv();
      EXPECT_GE(s, last) << "timers fired out of order";
      last = s;
    }
  });
}

// Go's TestAfterStress: a ticker keeps ticking while another goroutine
// sleeps in a tight loop.
TEST(After, StressWithTickerAndSleeper) {
  run_checked(
      [] {
        std::atomic<bool> stop{false};
        Countdown cd(1);
        goro::go([&] {
          while (!stop.load()) goro::sleep_for(1ns);
          cd.done();
        });
        goro::Ticker ticker(1ns);
        for (int i = 0; i < 100; i++) ticker.channel().recv();
        ticker.stop();
        stop = true;
        cd.wait();
      },
      {.maxprocs = 2});
}

TEST(TimerTest, StopBeforeFiringReturnsTrueThenFalse) {
  run_checked([] {
    goro::Timer t(1s);
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.stop());
    goro::sleep_for(10ms);
    EXPECT_FALSE(t.channel().try_recv().has_value()) << "a stopped timer sent a value";
  });
}

TEST(TimerTest, StopAfterFiringReturnsFalseAndKeepsTheValue) {
  run_checked([] {
    goro::Timer t(1ms);
    goro::sleep_for(20ms);
    EXPECT_FALSE(t.stop());
    EXPECT_TRUE(t.channel().try_recv().has_value()) << "Go 1.19: stop does not drain the channel";
  });
}

// Go's TestReset: reset returns whether the timer was pending, and moves
// its deadline.
TEST(TimerTest, ResetResultsAndDeadline) {
  run_checked([] {
    auto d = goro::testing::kSanitized ? 100ms : 40ms;
    goro::Timer t(2 * d);
    goro::sleep_for(d);
    EXPECT_TRUE(t.reset(3 * d)) << "the timer was pending";
    goro::sleep_for(2 * d);
    EXPECT_FALSE(t.channel().try_recv().has_value()) << "fired at the old deadline";
    goro::sleep_for(2 * d);
    EXPECT_TRUE(t.channel().try_recv().has_value()) << "did not fire at the new deadline";
    EXPECT_FALSE(t.reset(d)) << "the timer had fired";
    auto t0 = Clock::now();
    t.channel().recv();
    EXPECT_GE(since(t0), d - 5ms);
  });
}

TEST(TimerTest, ResetAfterStopRearms) {
  run_checked([] {
    goro::Timer t(1h);
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.reset(10ms));
    EXPECT_TRUE(t.channel().recv().has_value());
  });
}

TEST(TimerTest, NegativeDurationFiresAtOnce) {
  run_checked([] {
    goro::Timer t(-5s);
    auto t0 = Clock::now();
    t.channel().recv();
    EXPECT_LT(since(t0), kSlack);
  });
}

TEST(TimerTest, DestroyingTheHandleDoesNotStopIt) {
  run_checked([] {
    goro::Chan<Clock::time_point> c = goro::Chan<Clock::time_point>::nil();
    {
      goro::Timer t(10ms);
      c = t.channel();
    }
    EXPECT_TRUE(c.recv().has_value());
  });
}

TEST(TimerTest, CopiesShareOneTimer) {
  run_checked([] {
    goro::Timer a(1h);
    goro::Timer b = a;
    EXPECT_TRUE(b.stop());
    EXPECT_FALSE(a.stop());
    EXPECT_TRUE(a.channel() == b.channel());
  });
}

TEST(TimerTest, FromAPlainThread) {
  run_checked([] {
    std::atomic<bool> got{false};
    std::thread th([&] {
      goro::Timer t(10ms);
      got = t.channel().recv().has_value();
    });
    th.join();
    EXPECT_TRUE(got.load());
  });
}

TEST(TimerTest, NeedsARuntime) { EXPECT_THROW(goro::Timer(1s), std::logic_error); }

// A Timer kept past its run: stop reports it was not pending (the run's
// end dropped it); reset needs a runtime.
TEST(TimerTest, OutlivingItsRun) {
  std::optional<goro::Timer> kept;
  std::optional<goro::Ticker> ticker;
  goro::run([&] {
    kept.emplace(1h);
    ticker.emplace(1h);
  });
  EXPECT_FALSE(kept->stop());
  EXPECT_THROW(kept->reset(10ms), std::logic_error);
  EXPECT_THROW(ticker->reset(10ms), std::logic_error);
  ticker->stop();
  EXPECT_FALSE(kept->channel().try_recv().has_value());
}

TEST(AfterFunc, RunsInItsOwnGoroutine) {
  run_checked([] {
    goro::Chan<std::uint64_t> c(1);
    goro::after_func(5ms, [c]() mutable { c.send(goro::goid()); });
    auto id = c.recv();
    ASSERT_TRUE(id.has_value());
    EXPECT_NE(*id, 0u);
    EXPECT_NE(*id, goro::goid());
  });
}

// Go's TestAfterFunc: a chain of AfterFunc(0) each starting the next.
TEST(AfterFunc, ChainOfTen) {
  run_checked([] {
    goro::Chan<bool> c;
    std::atomic<int> i{10};
    std::function<void()> f;
    f = [&] {
      if (--i >= 0) {
        goro::after_func(0ns, f);
      } else {
        c.send(true);
      }
    };
    goro::after_func(0ns, f);
    EXPECT_TRUE(c.recv().has_value());
  });
}

TEST(AfterFunc, StopPreventsTheCall) {
  run_checked([] {
    std::atomic<bool> ran{false};
    goro::Timer t = goro::after_func(20ms, [&] { ran = true; });
    EXPECT_TRUE(t.stop());
    goro::sleep_for(50ms);
    EXPECT_FALSE(ran.load());
    EXPECT_TRUE(t.channel().is_nil());
  });
}

TEST(AfterFunc, RunsEvenIfTheTimerIsDropped) {
  run_checked([] {
    goro::Chan<int> c(1);
    (void)goro::after_func(5ms, [c]() mutable { c.send(1); });
    EXPECT_EQ(c.recv(), 1);
  });
}

TEST(AfterFunc, EmptyFunctionThrows) {
  run_checked([] { EXPECT_THROW(goro::after_func(1ms, std::function<void()>{}), std::invalid_argument); });
}

// Go's TestTicker: ticks arrive at the period, and reset changes it.
TEST(TickerTest, TicksAtThePeriodAndResetChangesIt) {
  run_checked([] {
    const int count = 10;
    auto delta = 20ms;
    goro::Ticker ticker(delta);
    auto t0 = Clock::now();
    for (int i = 0; i < count / 2; i++) ticker.channel().recv();
    ticker.reset(delta * 2);
    for (int i = count / 2; i < count; i++) ticker.channel().recv();
    ticker.stop();
    auto dt = since(t0);
    auto target = delta * (count / 2) + delta * 2 * (count / 2);
    EXPECT_GE(dt, target - target * 3 / 10);
    EXPECT_LE(dt, target + kSlack);
    // After stop, no more ticks.
    goro::sleep_for(delta * 4);
    (void)ticker.channel().try_recv();  // at most one tick sent before stop
    goro::sleep_for(delta * 4);
    EXPECT_FALSE(ticker.channel().try_recv().has_value()) << "ticks after stop";
  });
}

TEST(TickerTest, DropsTicksForASlowReader) {
  run_checked([] {
    goro::Ticker ticker(5ms);
    goro::sleep_for(100ms);
    EXPECT_EQ(ticker.channel().size(), 1u) << "the channel holds one tick";
    ticker.channel().recv();
    // The missed ticks do not come in a burst: over the next 50 ms about
    // 10 ticks arrive, not the 20 missed ones on top.
    int ticks = 0;
    auto deadline = goro::after(50ms);
    for (;;) {
      if (goro::select(goro::on_recv(ticker.channel()), goro::on_recv(deadline)) == 1) break;
      ticks++;
    }
    ticker.stop();
    EXPECT_LE(ticks, 12);
    EXPECT_GE(ticks, goro::testing::kSanitized ? 1 : 5);
  });
}

TEST(TickerTest, NonPositivePeriodThrows) {
  run_checked([] {
    EXPECT_THROW(goro::Ticker(0ns), std::invalid_argument);
    EXPECT_THROW(goro::Ticker(-1s), std::invalid_argument);
    goro::Ticker t(1h);
    EXPECT_THROW(t.reset(0ns), std::invalid_argument);
    t.stop();
  });
}

TEST(SelectTimer, TimeoutCaseWins) {
  run_checked([] {
    goro::Chan<int> never;
    auto t0 = Clock::now();
    auto timeout = goro::after(30ms);
    int which = goro::select(goro::on_recv(never), goro::on_recv(timeout));
    EXPECT_EQ(which, 1);
    EXPECT_GE(since(t0), 30ms);
  });
}

// Go's TestTimerFairness: two goroutines keep a channel busy (handing the
// P back and forth through runnext); a timer must still fire.
TEST(TimerFairness, BusyChannelCannotStarveATimer) {
  for (int procs : {1, 2}) {
    run_checked(
        [] {
          goro::Chan<bool> done;
          goro::Chan<bool> c;
          Countdown cd(2);
          for (int i = 0; i < 2; i++) {
            goro::go([&] {
              for (;;) {
                if (goro::select(goro::on_send(c, true), goro::on_recv(done)) == 1) break;
              }
              cd.done();
            });
          }
          auto timer = goro::after(20ms);
          for (;;) {
            if (goro::select(goro::on_recv(c), goro::on_recv(timer)) == 1) break;
          }
          done.close();
          cd.wait();
        },
        {.maxprocs = procs});
  }
}

// Go's TestTimerFairness2: goroutines each with their own timer, all
// ping-ponging on one channel; every timer fires.
TEST(TimerFairness, EveryGoroutinesTimerFires) {
  run_checked(
      [] {
        goro::Chan<bool> c(1);
        Countdown cd(2);
        for (int i = 0; i < 2; i++) {
          goro::go([&] {
            auto timer = goro::after(20ms);
            for (;;) {
              int w = goro::select(goro::on_send(c, true), goro::on_recv(c), goro::on_recv(timer));
              if (w == 2) break;
            }
            cd.done();
          });
        }
        cd.wait();
      },
      {.maxprocs = 2});
}

// Timers changed from both Ps while they fire: each reset or stop result
// must be consistent with the values delivered. TSan checks the locking.
TEST(TimerStress, ResetAndStopRacingFirings) {
  const int rounds = static_cast<int>(scaled(2000, 10));
  run_checked(
      [&] {
        goro::Timer t(1ms);
        Countdown cd(2);
        std::atomic<int> pending_true{0};
        for (int w = 0; w < 2; w++) {
          goro::go([&, w] {
            for (int i = 0; i < rounds; i++) {
              if ((i + w) % 3 == 0) {
                if (t.stop()) pending_true++;
              } else {
                t.reset(std::chrono::microseconds(i % 50));
              }
              (void)t.channel().try_recv();
              if (i % 64 == 0) goro::yield();
            }
            cd.done();
          });
        }
        cd.wait();
        t.stop();
        // Each stop that returned true stopped a pending timer; the rest
        // either fired or were replaced. Nothing to count exactly, but the
        // timer must be usable afterwards.
        (void)t.channel().try_recv();
        t.reset(1ms);
        EXPECT_TRUE(t.channel().recv().has_value());
      },
      {.maxprocs = 2});
}

// Stale heap entries of a timer reset again and again do not pile up.
TEST(TimerStress, RepeatedResetFarAwayKeepsTheHeapSmall) {
  run_checked([] {
    goro::Timer t(1h);
    for (int i = 0; i < 100000; i++) t.reset(std::chrono::hours(1) + std::chrono::nanoseconds(i));
    goro::sleep_for(1ms);  // a trip through the scheduler cleans up
    EXPECT_LE(goro::testing::timers_in_heaps(), 100);
    t.stop();
  });
}
