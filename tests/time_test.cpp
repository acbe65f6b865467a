// time_test.cpp — timers: sleep_for/sleep_until, after, Timer, Ticker,
// after_func, select on timer channels, and timer fairness. Ports the
// intent of Go's time/sleep_test.go, time/tick_test.go and
// runtime/proc_test.go (TestTimerFairness, TestTimerFairness2). Last, the
// per-P 4-ary heap of time.cpp at its own level: modtimer, deltimer and
// checkTimers driven with a "now" of the test's choosing, the heap's
// invariants (timers_invariant_violation) checked after every step.
#include "time.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/goro.hpp"
#include "proc.hpp"

using namespace std::chrono_literals;
using goro::Clock;
using goro::testing::Countdown;
using goro::testing::ms;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::with_growing_margin;

namespace {

// Timing margins: the lower bounds (a timer never fires early) must hold
// exactly; bounds on lateness, orders of expiry and rates depend on how
// busy the machine is, so those checks run with with_growing_margin and
// start wider at sanitizer scale.
const auto kSlack = goro::testing::scaled_down() ? 2s : 500ms;

auto since(Clock::time_point t0) { return Clock::now() - t0; }

// 4^k: the factor by which attempt k widens a margin.
int widen(int k) { return 1 << (2 * k); }

std::string late(const std::string& what, Clock::duration took, Clock::duration bound) {
  return what + " took " + std::to_string(ms(took)) + " ms, bound " + std::to_string(ms(bound)) + " ms";
}

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
    EXPECT_TRUE(with_growing_margin(3, [](int k) -> std::string {
      auto t0 = Clock::now();
      goro::sleep_for(100ms);
      auto d = since(t0);
      EXPECT_GE(d, 100ms) << "slept for only " << ms(d) << " ms";
      auto bound = 100ms + kSlack * widen(k);
      return d < bound ? "" : late("sleep_for(100ms)", d, bound);
    }));
    stop = true;
    cd.wait();
  });
}

// A sleep of zero or less returns at once: the goroutine does not park.
TEST(Sleep, ZeroAndNegativeReturnAtOnce) {
  run_checked([] {
    std::uint64_t parks = goro::debug::stats().parks;
    for (int i = 0; i < 1000; i++) {
      goro::sleep_for(0ns);
      goro::sleep_for(-1s);
    }
    goro::sleep_until(Clock::now() - 1h);
    EXPECT_EQ(goro::debug::stats().parks, parks) << "a sleep of zero or less parked";
  });
}

TEST(Sleep, SleepUntilWakesAtTheTime) {
  run_checked([] {
    EXPECT_TRUE(with_growing_margin(3, [](int k) -> std::string {
      auto until = Clock::now() + 50ms;
      goro::sleep_until(until);
      auto woke = Clock::now();
      EXPECT_GE(woke, until) << "woke " << ms(until - woke) << " ms early";
      auto bound = kSlack * widen(k);
      return woke - until < bound ? "" : late("waking after the time", woke - until, bound);
    }));
  });
}

TEST(Sleep, OnAPlainThreadSleepsTheThread) {
  auto t0 = Clock::now();
  goro::sleep_for(20ms);
  EXPECT_GE(since(t0), 20ms);
}

// Ten thousand sleepers on two Ps: none wakes early, and all wake soon
// after their time (the latest within the margin).
TEST(Sleep, ManySleepersAllWakeInTime) {
  const int n = static_cast<int>(scaled(10000, 10));
  run_checked(
      [&] {
        EXPECT_TRUE(with_growing_margin(3, [n](int k) -> std::string {
          std::atomic<int> early{0};
          std::atomic<std::int64_t> latest_ns{0};
          Countdown cd(n);
          for (int i = 0; i < n; i++) {
            goro::go([&, i] {
              auto d = std::chrono::milliseconds(1 + (i * 7919) % 20);
              auto t0 = Clock::now();
              goro::sleep_for(d);
              auto took = since(t0);
              if (took < d) early++;
              std::int64_t late_ns = std::chrono::nanoseconds(took - d).count();
              for (std::int64_t l = latest_ns.load(); late_ns > l && !latest_ns.compare_exchange_weak(l, late_ns);) {
              }
              cd.done();
            });
          }
          cd.wait();
          EXPECT_EQ(early.load(), 0) << "sleepers woke early";
          auto latest = std::chrono::nanoseconds(latest_ns.load());
          auto bound = kSlack * widen(k);
          std::printf("%d sleepers: the latest woke %.2f ms after its time\n", n, ms(latest));
          return latest < bound ? "" : late("the latest sleeper's wakeup", latest, bound);
        }));
      },
      {.maxprocs = 2});
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
// of their creation, each near its deadline. As Go's, the timers are made
// by main, up front, and each goroutine reports the time its timer
// delivered; a loaded machine may upset the order of short timers, so the
// slots widen with each attempt (Go: 20 ms, then 50 ms more each time).
TEST(After, FiresInDeadlineOrder) {
  run_checked([] {
    const int slots[] = {5, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0};
    EXPECT_TRUE(with_growing_margin(5, [&](int k) -> std::string {
      auto delta = (goro::testing::scaled_down() ? 40ms : 20ms) + 50ms * k;
      struct Result {
        int slot;
        Clock::time_point t;
      };
      goro::Chan<Result> result(std::size(slots));
      auto t0 = Clock::now();
      for (int s : slots) {
        goro::go(
            [result, s](goro::Chan<Clock::time_point> c) mutable {
              result.send({s, *c.recv()});
            },
            goro::after(s * delta));
      }
      std::vector<Result> got;
      for (std::size_t i = 0; i < std::size(slots); i++) got.push_back(*result.recv());
      std::string order;
      for (auto& r : got) order += std::to_string(r.slot) + " ";
      for (std::size_t i = 1; i < got.size(); i++) {
        if (got[i].slot < got[i - 1].slot) return "fired out of order: " + order;
      }
      for (auto& r : got) {
        Clock::duration dt = r.t - t0, target = r.slot * delta;
        EXPECT_GE(dt, target) << "slot " << r.slot << " fired early";
        if (dt > target + delta * 10) return late("slot " + std::to_string(r.slot), dt, target + delta * 10);
      }
      return "";
    }));
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
    // stop must come before the timer's deadline: on a loaded machine
    // the deadline moves further out with each attempt.
    EXPECT_TRUE(with_growing_margin(4, [](int k) -> std::string {
      auto d = 50ms * widen(k);
      goro::Timer t(d);
      if (!t.stop()) return "the timer fired before stop, " + std::to_string(ms(d)) + " ms after it was made";
      EXPECT_FALSE(t.stop());
      goro::sleep_for(d + 10ms);
      EXPECT_FALSE(t.channel().try_recv().has_value()) << "a stopped timer sent a value";
      return "";
    }));
  });
}

TEST(TimerTest, StopAfterFiringReturnsFalseAndKeepsTheValue) {
  run_checked([] {
    goro::Timer t(1ms);
    ASSERT_TRUE(goro::testing::wait_until([&] { return t.channel().size() == 1; })) << "the timer never fired";
    EXPECT_FALSE(t.stop());
    EXPECT_TRUE(t.channel().try_recv().has_value()) << "Go 1.19: stop does not drain the channel";
  });
}

// Go's TestReset: reset returns whether the timer was pending, and moves
// its deadline. As Go's, with longer durations until one attempt works on
// a loaded machine (25 ms units: 1, 3, 7, 15).
TEST(TimerTest, ResetResultsAndDeadline) {
  run_checked([] {
    const int units[] = {1, 3, 7, 15};
    EXPECT_TRUE(with_growing_margin(4, [&](int k) -> std::string {
      auto d = 25ms * units[k] * (goro::testing::scaled_down() ? 4 : 1);
      goro::Timer t(2 * d);
      goro::sleep_for(d);
      if (!t.reset(3 * d)) return "resetting an unfired timer returned false";
      goro::sleep_for(2 * d);
      if (t.channel().try_recv().has_value()) return "fired at the old deadline";
      goro::sleep_for(2 * d);
      if (!t.channel().try_recv().has_value()) return "did not fire at the new deadline";
      auto t0 = Clock::now();
      EXPECT_FALSE(t.reset(d)) << "resetting an expired timer returned true";
      t.channel().recv();
      EXPECT_GE(since(t0), d) << "fired before the deadline it was reset to";
      return "";
    }));
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
    EXPECT_TRUE(with_growing_margin(3, [](int k) -> std::string {
      auto t0 = Clock::now();
      goro::Timer t(-5s);
      auto v = t.channel().recv();
      auto took = since(t0);
      EXPECT_TRUE(v.has_value());
      if (v) {
        EXPECT_GE(*v, t0) << "the value is the time it fired, not its (past) deadline";
      }
      auto bound = kSlack * widen(k);
      return took < bound ? "" : late("a timer of -5 s", took, bound);
    }));
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
    // As StopBeforeFiring: the deadline moves out until stop is in time.
    EXPECT_TRUE(with_growing_margin(4, [](int k) -> std::string {
      auto d = 20ms * widen(k);
      auto ran = std::make_shared<std::atomic<bool>>(false);  // a late call may outlive the attempt
      goro::Timer t = goro::after_func(d, [ran] { *ran = true; });
      if (!t.stop()) return "the function was started before stop, " + std::to_string(ms(d)) + " ms after";
      goro::sleep_for(d * 5 / 2);
      EXPECT_FALSE(ran->load()) << "a stopped after_func ran";
      EXPECT_TRUE(t.channel().is_nil());
      return "";
    }));
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

// Go's TestTicker: ticks arrive at the period (within 30 %), and reset
// changes it. As Go's, a first attempt with short periods and, if the
// machine was too busy for them, longer ones.
TEST(TickerTest, TicksAtThePeriodAndResetChangesIt) {
  run_checked([] {
    struct Try {
      int count;
      std::chrono::milliseconds delta;
    };
    const Try tries[] = {{10, 20ms}, {10, 60ms}, {8, 250ms}, {8, 1000ms}};
    EXPECT_TRUE(with_growing_margin(4, [&](int k) -> std::string {
      auto [count, delta] = tries[k];
      goro::Ticker ticker(delta);
      auto t0 = Clock::now();
      for (int i = 0; i < count / 2; i++) ticker.channel().recv();
      ticker.reset(delta * 2);
      for (int i = count / 2; i < count; i++) ticker.channel().recv();
      ticker.stop();
      auto dt = since(t0);
      auto target = delta * (count / 2) + delta * 2 * (count / 2);
      auto slop = target * 3 / 10;
      // After stop, no more ticks (at most one was sent before it).
      goro::sleep_for(delta * 4);
      (void)ticker.channel().try_recv();
      goro::sleep_for(delta * 4);
      EXPECT_FALSE(ticker.channel().try_recv().has_value()) << "ticks after stop";
      if (dt < target - slop || dt > target + slop) {
        return std::to_string(count) + " ticks took " + std::to_string(ms(dt)) + " ms, expected " +
               std::to_string(ms(target)) + " ms +- 30 %";
      }
      return "";
    }));
  });
}

// A ticker whose reader is slow drops ticks: the channel holds one, and
// the ticker does not catch up with a burst of the missed ones. Every
// tick's value is the time it fired, and after firing a ticker re-arms
// for the next multiple of its period after that time: so n ticks span at
// least n - 2 periods, however late any of them came. A burst of the 20
// missed ticks would arrive within microseconds.
TEST(TickerTest, DropsTicksForASlowReader) {
  run_checked([] {
    const auto period = 5ms;
    goro::Ticker ticker(period);
    goro::sleep_for(100ms);  // 20 periods unread
    ASSERT_TRUE(goro::testing::wait_until([&] { return ticker.channel().size() == 1; })) << "no tick at all";
    EXPECT_EQ(ticker.channel().capacity(), 1u) << "the channel holds one tick";
    ticker.channel().recv();
    constexpr int kTicks = 10;
    std::vector<Clock::time_point> ticks;
    auto give_up = goro::after(30s);
    while (ticks.size() < kTicks) {
      bool timed_out = false;
      goro::select(goro::on_recv(ticker.channel(), [&](std::optional<Clock::time_point> v) { ticks.push_back(*v); }),
                   goro::on_recv(give_up, [&](std::optional<Clock::time_point>) { timed_out = true; }));
      if (timed_out) break;
    }
    ticker.stop();
    ASSERT_EQ(ticks.size(), std::size_t{kTicks}) << "the ticker stopped ticking";
    EXPECT_GE(ticks.back() - ticks.front(), period * (kTicks - 2))
        << kTicks << " ticks came within " << ms(ticks.back() - ticks.front()) << " ms: a burst";
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
// P back and forth through runnext); a timer must still fire. A starved
// timer fails the test at a generous deadline (instead of hanging it).
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
          auto give_up = Clock::now() + 30s;
          bool fired = false;
          while (!fired && Clock::now() < give_up) {
            fired = goro::select(goro::on_recv(c), goro::on_recv(timer)) == 1;
          }
          EXPECT_TRUE(fired) << "the timer did not fire within 30 s";
          done.close();
          cd.wait();
        },
        {.maxprocs = procs});
  }
}

// Go's TestTimerFairness2: goroutines each with their own timer, all
// ping-ponging on one channel; every timer fires (within a generous
// deadline, as above).
TEST(TimerFairness, EveryGoroutinesTimerFires) {
  run_checked(
      [] {
        goro::Chan<bool> c(1);
        std::atomic<int> fired{0};
        Countdown cd(2);
        for (int i = 0; i < 2; i++) {
          goro::go([&] {
            auto timer = goro::after(20ms);
            auto give_up = Clock::now() + 30s;
            while (Clock::now() < give_up) {
              int w = goro::select(goro::on_send(c, true), goro::on_recv(c), goro::on_recv(timer));
              if (w == 2) {
                fired++;
                break;
              }
            }
            cd.done();
          });
        }
        cd.wait();
        EXPECT_EQ(fired.load(), 2) << "a timer did not fire within 30 s";
      },
      {.maxprocs = 2});
}

// Timers changed from both Ps while they fire: each reset or stop result
// must be consistent with the values delivered (TSan checks the locking).
// The race is real only if both outcomes occur: some stops find the timer
// pending, some firings deliver a value; more rounds run until both have
// been seen.
TEST(TimerStress, ResetAndStopRacingFirings) {
  const int rounds = static_cast<int>(scaled(2000, 10));
  run_checked(
      [&] {
        goro::Timer t(1ms);
        std::atomic<int> pending_true{0}, delivered{0};
        for (int batch = 0; batch < 20 && (batch == 0 || pending_true.load() == 0 || delivered.load() == 0); batch++) {
          Countdown cd(2);
          for (int w = 0; w < 2; w++) {
            goro::go([&, w] {
              for (int i = 0; i < rounds; i++) {
                if ((i + w) % 3 == 0) {
                  if (t.stop()) pending_true++;
                } else {
                  t.reset(std::chrono::microseconds(i % 50));
                }
                if (t.channel().try_recv()) delivered++;
                if (i % 64 == 0) goro::yield();
              }
              cd.done();
            });
          }
          cd.wait();
        }
        std::printf("stops that found the timer pending: %d; values delivered: %d\n", pending_true.load(),
                    delivered.load());
        EXPECT_GT(pending_true.load(), 0) << "no stop raced a pending timer";
        EXPECT_GT(delivered.load(), 0) << "no timer fired";
        t.stop();
        // The timer is usable afterwards.
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

// --- the timer heap alone ---------------------------------------------------
//
// Runtime timers (not counted: no handle, refs == nullptr) on the heap of
// the only P, due far in the future by the clock, so that nothing but the
// test's own checkTimers calls, with the test's "now", ever fires them.
// One P, and the test never yields: no other M looks at this heap.

namespace {

namespace rt = goro::runtime;

struct HeapTimer {
  rt::HeapTimer t;
  int id = 0;
  // The model.
  bool pending = false;
  std::int64_t when = 0, period = 0;
};

struct Firing {
  int id;
  std::int64_t when;  // the model's when for it, just before the firing
};

struct HeapHarness {
  rt::P* pp = rt::getg()->m->p;
  std::int64_t base = rt::nanotime() + std::int64_t{1000000} * 1000000000;  // a million seconds from now
  std::vector<std::unique_ptr<HeapTimer>> ts;
  std::vector<int> fired;  // ids, in firing order

  static void record(void* arg, std::int64_t) {
    auto* h = static_cast<HeapTimer*>(arg);
    self->fired.push_back(h->id);
  }
  static inline HeapHarness* self = nullptr;

  explicit HeapHarness(int n) {
    self = this;
    for (int i = 0; i < n; i++) {
      ts.push_back(std::make_unique<HeapTimer>());
      HeapTimer* h = ts.back().get();
      h->id = i;
      h->t.f = &record;
      h->t.arg = h;
    }
  }
  // Also after a failed assertion: no heap entry may outlive its timer.
  ~HeapHarness() {
    clear();
    self = nullptr;
  }

  const char* violation() { return rt::timers_invariant_violation(pp->timers); }

  // The model's earliest pending when (0: none).
  std::int64_t next() const {
    std::int64_t n = 0;
    for (const auto& h : ts) {
      if (h->pending && (n == 0 || h->when < n)) n = h->when;
    }
    return n;
  }

  // checkTimers at now: the timers the model says are due must fire, each
  // once, in order of when; periodic ones move on by whole periods past
  // now. Returns "" or what went wrong.
  std::string fire(std::int64_t now) {
    std::vector<Firing> due;
    for (const auto& h : ts) {
      if (h->pending && h->when <= now) due.push_back({h->id, h->when});
    }
    fired.clear();
    bool ran = false;
    std::int64_t n = now;
    std::int64_t next_due = rt::checkTimers(pp, n, &ran);
    if (ran != !due.empty()) return "checkTimers' ran flag is wrong";
    // Periodic timers may fire once per call only: each due timer once.
    if (fired.size() != due.size()) {
      return "fired " + std::to_string(fired.size()) + " timers, " + std::to_string(due.size()) + " were due";
    }
    std::int64_t last = 0;
    for (int id : fired) {
      HeapTimer* h = ts[static_cast<std::size_t>(id)].get();
      auto it = std::find_if(due.begin(), due.end(), [&](const Firing& f) { return f.id == id; });
      if (it == due.end()) return "timer " + std::to_string(id) + " fired but was not due (or fired twice)";
      if (it->when < last) return "timer " + std::to_string(id) + " fired after a later one";
      last = it->when;
      due.erase(it);
      if (h->period > 0) {
        h->when += (1 + (now - h->when) / h->period) * h->period;
      } else {
        h->pending = false;
        h->when = 0;
      }
    }
    // What checkTimers returns is when to look again: never later than the
    // next pending timer, and after now (everything due has run). It may
    // be earlier, the when of a stale entry (as Go's timer0When may be a
    // deleted timer's), which costs an early look and no more.
    std::int64_t want = next();
    if (want != 0 && (next_due == 0 || next_due > want)) {
      return "checkTimers returned " + std::to_string(next_due) + ", later than the next due " + std::to_string(want);
    }
    if (next_due != 0 && next_due <= now) return "checkTimers returned a time already due";
    return "";
  }

  // Stops every timer and lets checkTimers drop the stale entries, so that
  // nothing on the heap refers to them once they are freed.
  void clear() {
    for (auto& h : ts) {
      rt::deltimer(&h->t);
      h->pending = false;
    }
    std::int64_t now = base + (std::int64_t{1} << 40);
    bool ran = false;
    EXPECT_EQ(rt::checkTimers(pp, now, &ran), 0);
    EXPECT_FALSE(ran);
    EXPECT_EQ(pp->timers.len.load(), 0);
  }
};

}  // namespace

// Random adds, modifications (earlier or later, periodic or not) and
// deletes: after each, the heap's invariants hold, modtimer and deltimer
// report whether the timer was pending, and the earliest entry is no later
// than the earliest pending timer. Every so often checkTimers runs at a
// later "now": exactly the due timers fire, in order of when.
TEST(TimerHeap, RandomAddModifyDeleteKeepTheHeapAndFireInOrder) {
  run_checked(
      [] {
        HeapHarness hh(300);
        ASSERT_EQ(hh.pp->timers.len.load(), 0) << "the heap was not empty to begin with";
        std::mt19937_64 rng(5);
        constexpr std::int64_t kSpan = 1000000;  // whens within base + [0, kSpan)
        std::int64_t now = hh.base;
        for (int step = 0; step < 20000; step++) {
          HeapTimer* h = hh.ts[rng() % hh.ts.size()].get();
          int op = static_cast<int>(rng() % 10);
          if (op < 6) {
            // Add or modify; a tenth of them periodic; some on the same when.
            std::int64_t when = now + 1 + static_cast<std::int64_t>(rng() % kSpan);
            if (op == 0) when = now + 1 + kSpan / 2;
            std::int64_t period = rng() % 10 == 0 ? 1 + static_cast<std::int64_t>(rng() % (kSpan / 4)) : 0;
            ASSERT_EQ(rt::modtimer(&h->t, when, period), h->pending) << "step " << step;
            h->pending = true;
            h->when = when;
            h->period = period;
          } else if (op < 9) {
            ASSERT_EQ(rt::deltimer(&h->t), h->pending) << "step " << step;
            h->pending = false;
            h->when = h->period = 0;
          } else {
            now += static_cast<std::int64_t>(rng() % (kSpan / 8));
            std::string why = hh.fire(now);
            ASSERT_EQ(why, "") << "step " << step;
          }
          const char* bad = hh.violation();
          ASSERT_EQ(bad, nullptr) << bad << " after step " << step;
          std::int64_t first = hh.pp->timers.timer0When.load();
          std::int64_t next = hh.next();
          if (next != 0) {
            ASSERT_NE(first, 0) << "step " << step;
            ASSERT_LE(first, next) << "step " << step << ": a pending timer is earlier than the heap's first entry";
          }
        }
      },
      {.maxprocs = 1});
}

// Many timers, a quarter of them on one shared when: one checkTimers far
// enough ahead fires them all, each once and in order of when; another one
// just past the first periodic timer's next when fires exactly the periodic
// ones due by then.
TEST(TimerHeap, FiresEveryDueTimerOnceInOrder) {
  run_checked(
      [] {
        HeapHarness hh(1000);
        std::mt19937_64 rng(9);
        for (auto& h : hh.ts) {
          h->when = hh.base + 1 + (h->id % 4 == 0 ? 5000 : static_cast<std::int64_t>(rng() % 100000));
          h->period = h->id % 10 == 1 ? 100000 + h->id : 0;
          h->pending = true;
          ASSERT_FALSE(rt::modtimer(&h->t, h->when, h->period));
        }
        ASSERT_EQ(hh.violation(), nullptr) << hh.violation();
        EXPECT_EQ(hh.pp->timers.len.load(), 1000);
        // Before anything is due: nothing fires.
        EXPECT_EQ(hh.fire(hh.base), "");
        EXPECT_TRUE(hh.fired.empty());
        // Everything is due.
        EXPECT_EQ(hh.fire(hh.base + 100000), "");
        EXPECT_EQ(hh.fired.size(), 1000u);
        ASSERT_EQ(hh.violation(), nullptr) << hh.violation();
        EXPECT_EQ(hh.pp->timers.len.load(), 100) << "the periodic timers are not back on the heap";
        // Past the next periodic whens: only the periodic timers fire again.
        EXPECT_EQ(hh.fire(hh.base + 250000), "");
        EXPECT_EQ(hh.fired.size(), 100u);
        for (int id : hh.fired) EXPECT_EQ(id % 10, 1);
        ASSERT_EQ(hh.violation(), nullptr) << hh.violation();
      },
      {.maxprocs = 1});
}
