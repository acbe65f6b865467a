// crash_test.cpp — death tests for every fatal message the core can print:
// unrecovered panics, stack overflow, thread exhaustion, illegal G status
// transitions, double note wakeups. Each asserts the message Go prints.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace {

class Crash : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(Crash, EscapingExceptionIsAPanic) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::go([] { throw std::runtime_error("boom"); });
          for (;;) goro::yield();
        });
      },
      ::testing::KilledBySignal(SIGABRT), "panic: boom\n\ngoroutine [0-9]+ \\[running\\]:");
}

TEST_F(Crash, NonStdExceptionIsAPanic) {
  EXPECT_EXIT({ goro::run([] { throw 42; }); }, ::testing::KilledBySignal(SIGABRT), "panic: unknown exception");
}

// Recurses until the stack runs out (the flag stops the compiler from
// proving the recursion infinite).
std::atomic<bool> keep_going{true};
int deep(int n) {
  volatile char pad[512];
  pad[0] = static_cast<char>(n);
  if (!keep_going.load()) return pad[0];
  return deep(n + 1) + pad[0];
}

TEST_F(Crash, StackOverflowIsFatalAndNamesTheGoroutine) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::go([] { deep(0); });
          for (;;) goro::yield();
        });
      },
      ::testing::KilledBySignal(SIGABRT),
      "runtime: goroutine 2 stack exceeds [0-9]+-byte limit\n.*fatal error: stack overflow\n\ngoroutine 2 "
      "\\[running\\]:");
}

TEST_F(Crash, StackOverflowOnMainGoroutine) {
  EXPECT_EXIT({ goro::run([] { deep(0); }); }, ::testing::KilledBySignal(SIGABRT),
              "fatal error: stack overflow\n\ngoroutine 1 \\[running\\]:");
}

TEST_F(Crash, ThreadExhaustion) {
  EXPECT_EXIT(
      {
        setenv("GORO_MAXTHREADS", "1", 1);
        goro::run(
            [] {
              // Work for a second P needs a second M, beyond the limit.
              std::atomic<bool> stop{false};
              for (int i = 0; i < 4; i++)
                goro::go([&] {
                  while (!stop.load()) goro::yield();
                });
              for (;;) goro::yield();
            },
            {.maxprocs = 2});
      },
      ::testing::KilledBySignal(SIGABRT), "runtime: program exceeds 1-thread limit\nfatal error: thread exhaustion");
}

TEST_F(Crash, IllegalStatusTransitionIsFatal) {
  EXPECT_EXIT(
      {
        goro::runtime::G g;
        goro::runtime::casgstatus(&g, goro::runtime::_Gidle, goro::runtime::_Grunning);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: casgstatus: bad incoming values");
  EXPECT_EXIT(
      {
        goro::runtime::G g;
        goro::runtime::casgstatus(&g, goro::runtime::_Gwaiting, goro::runtime::_Grunnable);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: casgstatus: G is not in the expected status");
}

// A goroutine operation from a runtime callback on g0 (here: yield from a
// gopark unlock function) is Go's badmcall.
TEST_F(Crash, McallOnG0IsFatal) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::runtime::gopark(
              [](goro::runtime::G*, void*) {
                goro::yield();
                return true;
              },
              nullptr, goro::runtime::WaitReason::test);
        });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: mcall called on g0");
}

TEST_F(Crash, DoubleNoteWakeupIsFatal) {
  EXPECT_EXIT(
      {
        goro::runtime::Note n;
        n.wakeup();
        n.wakeup();
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: notewakeup - double wakeup");
}

}  // namespace
