// lock_os_thread_test.cpp — lock_os_thread/unlock_os_thread: a locked
// goroutine runs only on its thread and nothing else runs there; nesting
// is counted; a goroutine that exits locked takes its thread with it; the
// main goroutine may lock m0. Ports the intent of Go's runtime/proc_test.go
// (TestBlockLocked, TestYieldLockedProgress) and
// runtime/testdata/testprog/lockosthread.go.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "fixtures.hpp"
#include "goro/goro.hpp"

using namespace std::chrono_literals;
using goro::testing::Countdown;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::wait_until;

namespace {

pid_t gettid_() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

bool thread_alive(pid_t tid) {
  struct stat st;
  return stat(("/proc/self/task/" + std::to_string(tid)).c_str(), &st) == 0;
}

}  // namespace

// Go's TestBlockLocked: a locked goroutine blocks on a channel again and
// again; each time its thread waits for it, and the P moves elsewhere.
TEST(LockOSThread, BlockLocked) {
  const int n = static_cast<int>(scaled(10000, 20));
  run_checked(
      [&] {
        goro::Chan<bool> c;
        std::atomic<bool> moved{false};
        goro::go([&] {
          goro::lock_os_thread();
          pid_t tid = gettid_();
          for (int i = 0; i < n; i++) {
            c.send(true);
            if (gettid_() != tid) moved = true;
          }
          goro::unlock_os_thread();
        });
        for (int i = 0; i < n; i++) c.recv();
        EXPECT_FALSE(moved.load()) << "a locked goroutine resumed on another thread";
      },
      {.maxprocs = 2});
}

// Go's TestYieldLockedProgress: a locked goroutine that yields in a loop
// still lets main run and make it stop.
TEST(LockOSThread, YieldLockedProgress) {
  for (int procs : {1, 2}) {
    run_checked(
        [] {
          goro::Chan<bool> c, cack;
          goro::go([&] {
            goro::lock_os_thread();
            for (;;) {
              if (c.try_recv()) {
                cack.send(true);
                return;
              }
              goro::yield();
            }
          });
          goro::sleep_for(10ms);
          c.send(true);
          cack.recv();
        },
        {.maxprocs = procs});
  }
}

// While a goroutine is locked, no other goroutine runs on its thread, and
// it runs on no other thread, across yields, sleeps and channel waits.
TEST(LockOSThread, ThreadIsExclusive) {
  const int iters = static_cast<int>(scaled(2000, 20));
  run_checked(
      [&] {
        std::atomic<pid_t> locked_tid{0};
        std::atomic<bool> done{false};
        std::atomic<int> intruders{0}, moves{0};
        goro::Chan<int> c;
        Countdown cd(5);
        goro::go([&] {
          goro::lock_os_thread();
          locked_tid = gettid_();
          for (int i = 0; i < iters; i++) {
            if (i % 3 == 0) goro::yield();
            if (i % 3 == 1) c.send(i);
            if (i % 100 == 2) goro::sleep_for(100us);
            if (gettid_() != locked_tid.load()) moves++;
          }
          done = true;
          goro::unlock_os_thread();
          cd.done();
        });
        goro::go([&] {
          while (!done.load()) {
            if (c.try_recv()) continue;
            goro::yield();
          }
          cd.done();
        });
        for (int w = 0; w < 3; w++) {
          goro::go([&] {
            while (!done.load()) {
              if (gettid_() == locked_tid.load()) intruders++;
              goro::yield();
            }
            cd.done();
          });
        }
        cd.wait();
        EXPECT_EQ(moves.load(), 0);
        EXPECT_EQ(intruders.load(), 0) << "another goroutine ran on the locked thread";
      },
      {.maxprocs = 2});
}

TEST(LockOSThread, NestedCallsAreCounted) {
  run_checked(
      [] {
        goro::Chan<pid_t> tids(1);
        Countdown cd(1);
        goro::go([&] {
          goro::lock_os_thread();
          goro::lock_os_thread();
          pid_t tid = gettid_();
          goro::unlock_os_thread();
          // Still locked once: stays on its thread.
          for (int i = 0; i < 100; i++) {
            goro::sleep_for(10us);
            EXPECT_EQ(gettid_(), tid);
          }
          goro::unlock_os_thread();
          goro::unlock_os_thread();  // one too many: a no-op
          cd.done();
        });
        cd.wait();
      },
      {.maxprocs = 2});
}

TEST(LockOSThread, UnlockWithoutLockIsANoOp) {
  run_checked([] {
    goro::unlock_os_thread();
    goro::unlock_os_thread();
    goro::yield();
  });
  goro::lock_os_thread();  // plain thread: nothing to do
  goro::unlock_os_thread();
}

// A goroutine that exits while locked takes its thread with it (Go's
// TestLockOSThreadExit): the thread ends, and the others carry on.
TEST(LockOSThread, ExitWhileLockedEndsTheThread) {
  run_checked(
      [] {
        // main keeps m0 (which cannot exit: run() returns on it), so the
        // goroutine below runs on another thread.
        goro::lock_os_thread();
        goro::Chan<pid_t> c(1);
        goro::go([&] {
          goro::lock_os_thread();
          c.send(gettid_());
        });
        pid_t tid = *c.recv();
        EXPECT_NE(tid, gettid_());
        EXPECT_TRUE(wait_until([&] { return !thread_alive(tid); })) << "the locked goroutine's thread is still alive";
        // The runtime still works, with new threads if needed.
        Countdown cd(10);
        for (int i = 0; i < 10; i++) goro::go([&] { cd.done(); });
        cd.wait();
        goro::unlock_os_thread();
      },
      {.maxprocs = 2});
}

// The main goroutine may lock m0, the thread that called run().
TEST(LockOSThread, MainGoroutineLocksM0) {
  pid_t caller = gettid_();
  run_checked(
      [&] {
        goro::lock_os_thread();
        EXPECT_EQ(gettid_(), caller);
        goro::Chan<int> c;
        Countdown cd(4);
        for (int i = 0; i < 4; i++) {
          goro::go([&] {
            for (int j = 0; j < 100; j++) c.send(j);
            cd.done();
          });
        }
        for (int j = 0; j < 400; j++) {
          c.recv();
          EXPECT_EQ(gettid_(), caller);
        }
        goro::sleep_for(1ms);
        EXPECT_EQ(gettid_(), caller);
        cd.wait();
        goro::unlock_os_thread();
      },
      {.maxprocs = 2});
}

// main returning while locked ends the run normally.
TEST(LockOSThread, MainReturnsWhileLocked) {
  EXPECT_EQ(goro::run([] {
              goro::lock_os_thread();
              goro::sleep_for(1ms);
              return 5;
            }),
            5);
}

// A goroutine that exits locked takes its thread with it. run()'s own
// thread (m0) is never one of them: once main has left it, it runs no
// other goroutine (so none can wedge it, or hold up run's return), and the
// run ends on it as usual.
TEST(LockOSThread, ExitLockedNeverTakesRunsThread) {
  pid_t caller = gettid_();
  int rc = goro::run(
      [&] {
        EXPECT_EQ(gettid_(), caller) << "main starts on m0";
        std::atomic<int> on_m0{0};
        for (int i = 0; i < 100; i++) {
          Countdown cd(1);
          goro::go([&] {
            goro::lock_os_thread();
            if (gettid_() == caller) on_m0++;
            cd.done();
          });
          cd.wait();
        }
        EXPECT_EQ(on_m0.load(), 0) << "a goroutine ran on run()'s thread after main left it";
        Countdown cd(10);
        for (int i = 0; i < 10; i++) goro::go([&] { cd.done(); });
        cd.wait();
        return 9;
      },
      {.maxprocs = 2});
  EXPECT_EQ(rc, 9);
  EXPECT_EQ(gettid_(), caller);
}
