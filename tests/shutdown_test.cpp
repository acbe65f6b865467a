// shutdown_test.cpp — the end of a run: run() returns promptly when main
// returns, whatever the other goroutines are doing at a scheduling point
// (looping on checkpoint or try_*, in a long goro::syscall/goro::blocking,
// whose thread is abandoned and never runs goroutine code again), and plain
// threads that wake goroutines, or are woken by them, while runs end leave
// nothing dangling. Ports the promise of API.md ("Goroutines still alive
// then are abandoned as in Go").
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using namespace std::chrono_literals;
using goro::Clock;
using goro::testing::scaled;
using goro::testing::thread_count;

// Aborts the test binary, naming what hung, if not disarmed in time: a run
// that never returns fails here instead of at ctest's timeout.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, const char* what)
      : t_([this, limit, what] {
          auto deadline = Clock::now() + limit;
          while (!done_.load()) {
            if (Clock::now() > deadline) {
              std::fprintf(stderr, "watchdog: %s\n", what);
              std::abort();
            }
            std::this_thread::sleep_for(5ms);
          }
        }) {}
  ~Watchdog() {
    done_ = true;
    t_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread t_;
};

// Runs main with opts; returns how long run() took to return after main
// did. started is what main waits for before it returns.
template <class Start>
Clock::duration time_to_return(Start start, goro::Options opts = {}) {
  Clock::time_point main_returned;
  Watchdog w(30s, "run() did not return after main returned");
  goro::run(
      [&] {
        start();
        main_returned = Clock::now();
      },
      opts);
  auto d = Clock::now() - main_returned;
  std::printf("run() returned %.3f ms after main\n", std::chrono::duration<double, std::milli>(d).count());
  return d;
}

// Promptly: Go's exit is immediate; goro asks the goroutines to yield and
// waits for them to, every 100 us. The bound leaves room for a loaded
// machine; a broken runtime never returns at all (the watchdog).
constexpr auto kPrompt = 1s;

// A goroutine looping on a scheduling point, running on the other P when
// main returns, with a fresh time slice: no preemption request from sysmon
// is pending for it, so only the end of the run asks it to leave.
void returns_while_a_goroutine_loops(std::function<void()> step) {
  // Shared, not on main's stack: the loop outlives main's frame.
  auto looping = std::make_shared<std::atomic<bool>>(false);
  auto d = time_to_return(
      [&step, looping] {
        goro::go([looping, step] {
          for (;;) {
            looping->store(true, std::memory_order_relaxed);
            step();
          }
        });
        while (!looping->load(std::memory_order_relaxed)) {
          // main keeps its P (no yield): the loop runs on the other one
        }
      },
      {.maxprocs = 2});
  EXPECT_LT(d, kPrompt);
}

TEST(Shutdown, ReturnsWhileAGoroutineLoopsOnCheckpoint) {
  returns_while_a_goroutine_loops([] { goro::checkpoint(); });
}

TEST(Shutdown, ReturnsWhileAGoroutineLoopsOnTryOperations) {
  goro::Chan<int> full(1), empty(1);
  full.try_send(0);
  returns_while_a_goroutine_loops([full]() mutable { (void)full.try_send(1); });
  returns_while_a_goroutine_loops([empty]() mutable { (void)empty.try_recv(); });
  returns_while_a_goroutine_loops([empty] { goro::select(goro::on_recv(empty), goro::on_default()); });
}

// A goroutine in a long system call: its thread is abandoned. It returns
// from the call later, runs nothing of the goroutine's (the flag), and
// exits by itself (the thread count comes back).
void abandons_a_thread_in_a_syscall(bool blocking) {
  static std::atomic<bool> ran_after{false};
  ran_after = false;
  int threads_before = thread_count();
  for (int procs : {1, 2}) {
    auto d = time_to_return(
        [blocking] {
          std::atomic<bool> in_call{false};
          goro::go([&in_call, blocking] {
            auto body = [&] {
              in_call = true;
              std::this_thread::sleep_for(2s);
            };
            if (blocking) {
              goro::blocking(body);
            } else {
              goro::syscall(body);
            }
            ran_after = true;  // must never run: the run is over by now
          });
          while (!in_call.load()) goro::yield();
        },
        {.maxprocs = procs});
    EXPECT_LT(d, kPrompt) << "procs " << procs;
  }
  // A run in the meantime works (the abandoned threads are still in their
  // calls, on stacks of the runs before).
  EXPECT_EQ(goro::run([] { return 5; }), 5);
  std::this_thread::sleep_for(2500ms);  // the calls return
  EXPECT_FALSE(ran_after.load()) << "goroutine code ran after its run ended";
  // The abandoned threads leave by themselves.
  bool back = goro::testing::wait_until([&] { return thread_count() <= threads_before; });
  EXPECT_TRUE(back) << thread_count() << " threads, " << threads_before << " before";
}

TEST(Shutdown, AbandonsAThreadInASyscall) { abandons_a_thread_in_a_syscall(false); }

TEST(Shutdown, AbandonsAThreadInABlockingCall) { abandons_a_thread_in_a_syscall(true); }

// All of it at once, on two Ps, run after run.
// A goroutine locked to its thread calls maxprocs(n) while another
// computes for a while without a scheduling point: stop-the-world waits
// for that P, and main returns meanwhile. Stop-the-world then gives up
// (the run is ending) with the caller's P stopped; the caller leaves its
// M through the scheduler, which for a locked M means stoplockedm and
// releasep: the P must be running again by then ("releasep: invalid p
// state" before). The run returns once the computing goroutine is done.
TEST(Shutdown, LockedGoroutineInMaxprocsWhenMainReturns) {
  auto computing = std::make_shared<std::atomic<bool>>(false);
  auto resizing = std::make_shared<std::atomic<bool>>(false);
  auto d = time_to_return(
      [computing, resizing] {
        goro::go([computing] {
          computing->store(true);
          auto until = Clock::now() + 300ms;
          while (Clock::now() < until) {
            // no scheduling point: stop-the-world waits for this P
          }
        });
        while (!computing->load()) {
        }
        goro::go([resizing] {
          goro::lock_os_thread();
          resizing->store(true);
          goro::maxprocs(2);
        });
        while (!resizing->load()) {
        }
        std::this_thread::sleep_for(20ms);  // the resize is waiting by now, most likely
      },
      {.maxprocs = 3});
  EXPECT_LT(d, 5s);
}

TEST(Shutdown, ReturnsWithEveryKindOfStragglerAtOnce) {
  for (int round = 0; round < static_cast<int>(scaled(10, 5)); round++) {
    auto d = time_to_return(
        [] {
          std::atomic<int> running{0};
          for (int i = 0; i < 2; i++) {
            goro::go([&running] {
              running++;
              for (;;) goro::checkpoint();
            });
            goro::go([&running] {
              running++;
              goro::syscall([] { std::this_thread::sleep_for(200ms); });
            });
            goro::go([&running] {
              running++;
              goro::blocking([] { std::this_thread::sleep_for(200ms); });
            });
            goro::go([&running] {
              running++;
              goro::Chan<int>().recv();  // parked for ever
            });
          }
          while (running.load() < 8) goro::yield();
        },
        {.maxprocs = 2});
    EXPECT_LT(d, kPrompt) << "round " << round;
  }
  std::this_thread::sleep_for(300ms);  // let the abandoned calls end before the process does
}

// main starts on the thread that called run(), and once it has left it
// (parked here), that thread runs no other goroutine: a goroutine's long
// system call can never hold run()'s thread.
TEST(Shutdown, RunsThreadRunsOnlyMain) {
  pthread_t caller = pthread_self();
  std::atomic<int> on_caller{0};
  goro::run(
      [&] {
        EXPECT_TRUE(pthread_equal(pthread_self(), caller)) << "main did not start on run()'s thread";
        goro::WaitGroup wg;
        for (int i = 0; i < 100; i++) {
          wg.add(1);
          goro::go([&] {
            for (int j = 0; j < 10; j++) {
              if (pthread_equal(pthread_self(), caller)) on_caller++;
              goro::yield();
            }
            wg.done();
          });
        }
        wg.wait();
      },
      {.maxprocs = 1});
  EXPECT_EQ(on_caller.load(), 0);
}

// Plain threads woken by goroutines exit right after waking: the waker's
// FUTEX_WAKE must not touch their freed thread-local note (before: EFAULT,
// "fatal error: futexwakeup failed", or a write into another thread's
// memory).
TEST(Shutdown, WokenThreadsExitingAtOnce) {
  const int n = static_cast<int>(scaled(500, 5));
  goro::run(
      [n] {
        for (int i = 0; i < n; i++) {
          goro::Chan<int> c;
          std::thread t([c]() mutable { c.recv(); });
          while (!goro::testing::has_receiver(c)) goro::yield();
          c.send(i);
          t.join();
        }
      },
      {.maxprocs = 2});
}

// Many short-lived plain threads wake goroutines (and spawn some) while
// runs end: teardown must wait for every such waker before it frees Ms,
// Gs and sudogs.
TEST(Shutdown, PlainThreadsWakingGoroutinesWhileRunsEnd) {
  const int rounds = static_cast<int>(scaled(200, 10));
  for (int r = 0; r < rounds; r++) {
    std::vector<goro::Chan<int>> chans;
    for (int i = 0; i < 8; i++) chans.emplace_back(0);
    std::vector<std::thread> threads;
    std::atomic<bool> go_on{false};
    goro::run(
        [&] {
          for (auto& c : chans) goro::go([c]() mutable { c.recv(); });
          for (int i = 0; i < 4; i++) {
            threads.emplace_back([&, i] {
              while (!go_on.load()) std::this_thread::yield();
              for (int k = i; k < 8; k += 4) (void)chans[static_cast<std::size_t>(k)].try_send(k);
              try {
                goro::go([] {});
              } catch (const std::logic_error&) {
                // the run ended first: refused, as documented
              }
            });
          }
          go_on = true;
          // main returns at once, racing the threads' wakeups
        },
        {.maxprocs = 2, .checkdead = false});
    for (auto& t : threads) t.join();
  }
}

// Plain threads contend on a channel's lock (its spin reads the CPU count)
// while runs start (each counts the CPUs again) and end, and another thread
// asks maxprocs(): TSan checks that nothing is shared without ordering.
TEST(Shutdown, PlainThreadsContendWhileRunsStartAndEnd) {
  goro::Chan<int> c(4);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; i++) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        (void)c.try_send(1);
        (void)c.try_recv();
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) (void)goro::maxprocs();
  });
  for (int r = 0; r < static_cast<int>(scaled(100, 10)); r++) {
    goro::run([&] {
      for (int i = 0; i < 10; i++) (void)c.try_send(2);
    });
  }
  stop = true;
  for (auto& t : threads) t.join();
}

}  // namespace
