// exceptions_test.cpp — C++ exception state travels with the goroutine
// (ehglobals.hpp): a goroutine that parks inside a catch block, or while
// unwinding, and resumes on another thread still has its current exception
// (`throw;` rethrows it) and its count of exceptions in flight; goroutines
// running meanwhile on its old thread see none of it.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

#include "fixtures.hpp"
#include "goro/goro.hpp"

using namespace std::chrono_literals;
using goro::testing::Countdown;
using goro::testing::run_checked;
using goro::testing::scaled;

namespace {

long gettid_() { return ::syscall(SYS_gettid); }

// Two goroutines that keep both Ps busy, so that a parked goroutine often
// resumes on another thread.
struct Busy {
  std::atomic<bool> stop{false};
  Countdown cd{2};
  Busy() {
    for (int k = 0; k < 2; k++) {
      goro::go([this] {
        while (!stop.load()) goro::yield();
        cd.done();
      });
    }
  }
  ~Busy() {
    stop = true;
    cd.wait();
  }
};

}  // namespace

// The goroutine parks inside its catch block: asleep (it may resume on
// either thread), and every tenth time in a system call long enough for
// sysmon to hand its P off while both Ps have work, so that it comes back
// to the global queue with its thread stopped and resumes on another one.
// Whether it moved still depends on scheduling: the loop goes on (up to
// 50 times as long) until it has.
TEST(Exceptions, RethrowInACatchBlockAfterMovingThreads) {
  const int n = static_cast<int>(scaled(2000, 20));
  int rethrown = 0, moved = 0, rounds = 0;
  run_checked(
      [&] {
        Busy busy;
        for (int i = 0; i < n || (moved == 0 && i < 50 * n); i++, rounds++) {
          try {
            try {
              throw std::runtime_error("x" + std::to_string(i));
            } catch (...) {
              long t0 = gettid_();
              if (i % 10 == 9) {
                goro::syscall([] { std::this_thread::sleep_for(1ms); });
              } else {
                goro::sleep_for(20us);
              }
              if (gettid_() != t0) moved++;
              throw;  // the goroutine's exception, whatever thread this is
            }
          } catch (const std::runtime_error& e) {
            if (e.what() == "x" + std::to_string(i)) rethrown++;
          }
          EXPECT_EQ(std::uncaught_exceptions(), 0);
          EXPECT_FALSE(std::current_exception());
        }
      },
      {.maxprocs = 2});
  std::printf("resumed on another thread inside the catch block %d times of %d\n", moved, rounds);
  EXPECT_EQ(rethrown, rounds);
  EXPECT_GT(moved, 0) << "the goroutine never resumed on another thread inside its catch block";
}

TEST(Exceptions, CurrentExceptionBelongsToTheGoroutine) {
  run_checked(
      [] {
        goro::Chan<int> parked, go_on;
        std::atomic<bool> other_saw_exception{false};
        Countdown cd(2);
        goro::go([&] {
          try {
            throw std::logic_error("mine");
          } catch (...) {
            parked.send(1);
            go_on.recv();  // parks with an exception caught
            try {
              std::rethrow_exception(std::current_exception());
            } catch (const std::logic_error& e) {
              EXPECT_STREQ(e.what(), "mine");
            }
          }
          cd.done();
        });
        goro::go([&] {
          parked.recv();
          // Runs while the first goroutine is parked, maybe on its thread.
          if (std::current_exception()) other_saw_exception = true;
          go_on.send(1);
          cd.done();
        });
        cd.wait();
        EXPECT_FALSE(other_saw_exception.load());
      },
      {.maxprocs = 1});
}

// A destructor that parks while an exception unwinds through it; another
// goroutine runs meanwhile, on the same P (so usually the same thread).
TEST(Exceptions, UncaughtExceptionsCountedPerGoroutine) {
  std::atomic<int> during_before{-1}, during_after{-1}, other{-1};
  run_checked(
      [&] {
        goro::Chan<int> c;
        Countdown cd(2);
        goro::go([&] {
          struct ParksInDestructor {
            goro::Chan<int>& c;
            std::atomic<int>& before;
            std::atomic<int>& after;
            ~ParksInDestructor() {
              before = std::uncaught_exceptions();
              c.send(1);
              after = std::uncaught_exceptions();
            }
          };
          try {
            ParksInDestructor p{c, during_before, during_after};
            throw std::runtime_error("unwinding");
          } catch (const std::runtime_error&) {
          }
          cd.done();
        });
        goro::go([&] {
          // The first one is parked in its destructor, mid-unwind.
          EXPECT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_sender(c); }));
          other = std::uncaught_exceptions();
          c.recv();
          cd.done();
        });
        cd.wait();
      },
      {.maxprocs = 1});
  EXPECT_EQ(during_before.load(), 1);
  EXPECT_EQ(during_after.load(), 1);
  EXPECT_EQ(other.load(), 0);
}

// run() called inside a catch block: the goroutines do not see the
// caller's exception, and the caller has it back after run().
TEST(Exceptions, RunInsideACatchBlock) {
  try {
    throw std::runtime_error("outer");
  } catch (...) {
    bool main_saw = true;
    goro::run([&] {
      main_saw = static_cast<bool>(std::current_exception());
      goro::yield();
    });
    EXPECT_FALSE(main_saw);
    try {
      throw;
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "outer");
    }
  }
}
