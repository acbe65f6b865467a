// crash_test.cpp — death tests for every fatal message the core can print:
// unrecovered panics, stack overflow, thread exhaustion, illegal G status
// transitions, double note wakeups, deadlocks. Each asserts the message Go
// prints.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

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
        // m0 and sysmon fit; the M for a second P does not.
        setenv("GORO_MAXTHREADS", "2", 1);
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
      ::testing::KilledBySignal(SIGABRT), "runtime: program exceeds 2-thread limit\nfatal error: thread exhaustion");
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

// checkdead (Go's "all goroutines are asleep"): the message and the dump,
// with every goroutine's wait reason.
TEST_F(Crash, DeadlockMainBlocksOnAChannel) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::Chan<int> c;
          c.recv();
        });
      },
      ::testing::KilledBySignal(SIGABRT),
      "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[chan receive\\]:");
}

TEST_F(Crash, DeadlockDumpShowsEveryGoroutine) {
  EXPECT_EXIT(
      {
        goro::run(
            [] {
              goro::Mutex mu;
              mu.lock();
              goro::WaitGroup wg;
              wg.add(3);
              goro::go([&] {
                mu.lock();  // never unlocked
                wg.done();
              });
              goro::go([&] {
                goro::select();  // no cases: blocks for ever
              });
              goro::go([&] {
                goro::Chan<int> c(1);
                c.send(1);
                c.send(2);  // full
              });
              goro::sleep_for(std::chrono::milliseconds(20));  // a timer pending: no deadlock yet
              wg.wait();
            },
            {.maxprocs = 2});
      },
      ::testing::KilledBySignal(SIGABRT),
      "fatal error: all goroutines are asleep - deadlock!\n"
      "(.|\n)*goroutine [0-9]+ \\[sync.Mutex.Lock\\]:"
      "(.|\n)*goroutine [0-9]+ \\[select \\(no cases\\)\\]:"
      "(.|\n)*goroutine [0-9]+ \\[chan send\\]:");
}

TEST_F(Crash, DeadlockSelectWithNoCasesInMain) {
  EXPECT_EXIT({ goro::run([] { goro::select(); }); }, ::testing::KilledBySignal(SIGABRT),
              "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[select \\(no cases\\)\\]:");
}

TEST_F(Crash, DeadlockWithMainLockedToItsThread) {
  EXPECT_EXIT(
      {
        goro::run(
            [] {
              goro::lock_os_thread();
              goro::Chan<int> c;
              goro::go([&] { c.send(1); });
              c.recv();
              c.recv();  // nobody sends again
            },
            {.maxprocs = 2});
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
}

TEST_F(Crash, DeadlockOnceTheLastTimerFired) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::Chan<int> c;
          goro::go([&] {
            goro::sleep_for(std::chrono::milliseconds(30));
            c.send(1);
            c.send(2);  // main receives once only
          });
          c.recv();
          goro::Chan<int>().recv();
        });
      },
      ::testing::KilledBySignal(SIGABRT),
      "fatal error: all goroutines are asleep - deadlock!(.|\n)*goroutine 1 \\[chan receive\\]:"
      "(.|\n)*\\[chan send\\]:");
}

TEST_F(Crash, MainGoexitWithNothingLeftIsADeadlock) {
  EXPECT_EXIT({ goro::run([] { goro::goexit(); }); }, ::testing::KilledBySignal(SIGABRT),
              "fatal error: no goroutines \\(main called runtime.Goexit\\) - deadlock!");
}

// Not deadlocks: a goroutine in a system call, or a plain thread (started
// before run, silent until then) that will wake main.
TEST_F(Crash, NoDeadlockWhileAGoroutineIsInASyscall) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::Chan<int> c;
          goro::go([&] {
            goro::syscall([] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); });
            c.send(1);
          });
          c.recv();
        });
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Crash, NoDeadlockWhileAPlainThreadWillWakeMain) {
  EXPECT_EXIT(
      {
        goro::Chan<int> c(1);
        std::atomic<bool> started{false};
        std::thread t([&] {
          while (!started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          c.send(7);
        });
        int got = goro::run([&] {
          started = true;
          return *c.recv();
        });
        t.join();
        std::exit(got == 7 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Crash, DeadlockReportedAfterAThreadThatStartedAGoroutineExits) {
  EXPECT_EXIT(
      {
        goro::run(
            [] {
              goro::Chan<int> c;
              std::thread t([] {
                std::this_thread::sleep_for(std::chrono::milliseconds(30));
                goro::go([] {});
              });
              t.detach();
              c.recv();
            },
            {.maxprocs = 1});
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
}

TEST_F(Crash, BlockingInsideASyscallBodyIsFatal) {
  EXPECT_EXIT(
      {
        goro::run([] {
          goro::Chan<int> c(1);
          goro::syscall([&] { c.recv(); });
        });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: a goroutine blocked inside goro::syscall/goro::blocking");
}

TEST_F(Crash, DeadlockReportedAfterThePlainThreadExits) {
  EXPECT_EXIT(
      {
        goro::Chan<int> c;
        goro::run([&] {
          std::thread t([&] { (void)goro::Chan<int>(1).try_send(1); });  // uses the runtime, then exits
          t.detach();
          c.recv();
        });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
}

}  // namespace
