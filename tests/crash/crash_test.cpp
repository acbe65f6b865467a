// crash_test.cpp — death tests for every fatal message the core can print:
// unrecovered panics, stack overflow, thread exhaustion, illegal G status
// transitions, double note wakeups, deadlocks. Each asserts the message Go
// prints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

// A frame far larger than the whole stack (and its 64 KiB guard): with
// stack-clash protection its pages are probed from the top down, so the
// guard faults before a byte lands in the goroutine stack carved below.
// The parked neighbour's canary is checked when the fatal error aborts.
constexpr char kCanary[] = "goro neighbour canary";
std::atomic<const char*> neighbour_canary{nullptr};
std::atomic<std::uintptr_t> neighbour_hi{0};

void check_canary_on_abort(int) {
  const char* c = neighbour_canary.load();
  bool intact = c != nullptr && std::memcmp(c, kCanary, sizeof kCanary) == 0;
  const char* msg = intact ? "neighbour canary intact\n" : "neighbour canary CORRUPTED\n";
  (void)!write(2, msg, std::strlen(msg));
  signal(SIGABRT, SIG_DFL);
  raise(SIGABRT);
}

__attribute__((noinline)) int huge_frame(int n) {
  volatile char big[330 * 1024];
  for (std::size_t i = 0; i < sizeof big; i++) big[i] = static_cast<char>(n);
  return big[n];
}

TEST_F(Crash, HugeFrameHitsTheGuardNotTheNeighbour) {
  EXPECT_EXIT(
      {
        signal(SIGABRT, &check_canary_on_abort);
        goro::run(
            [] {
              // Stacks of one fresh process are carved upwards: each new
              // goroutine's stack lies right above the previous one's.
              goro::Chan<int> park;
              goro::Chan<bool> ready;
              goro::go([park, ready]() mutable {
                char canary[sizeof kCanary];
                std::memcpy(canary, kCanary, sizeof kCanary);
                neighbour_canary = canary;
                neighbour_hi = goro::runtime::getg()->stack.hi;
                ready.send(true);
                park.recv();
                std::memcpy(canary, canary + 1, 1);  // keeps canary alive
              });
              ready.recv();
              goro::go([] {
                std::uintptr_t lo = goro::runtime::getg()->stack.lo;
                if (lo - goro::runtime::kStackGuardSize != neighbour_hi.load()) {
                  std::fprintf(stderr, "no neighbour below this stack\n");
                  std::_Exit(3);
                }
                huge_frame(1);
              });
              park.recv();
            },
            {.maxprocs = 1, .stack_size = 256 * 1024});
      },
      ::testing::KilledBySignal(SIGABRT),
      "runtime: goroutine 3 stack exceeds 262144-byte limit\n(.|\n)*fatal error: stack overflow\n\ngoroutine 3 "
      "\\[running\\]:(.|\n)*neighbour canary intact");
}

// A SIGSEGV goro does not own goes to the handler installed before run();
// one that re-raises it must not bounce between the two for ever (the line
// below once filled a log with 490 MB). alarm() turns a loop into a
// failure by SIGALRM instead of a hang.
void reraising_segv_handler(int sig, siginfo_t*, void*) {
  const char msg[] = "user SIGSEGV handler\n";
  (void)!write(2, msg, sizeof msg - 1);
  raise(sig);
}

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) n++;
  return n;
}

TEST_F(Crash, ForwardedFaultThatComesBackIsNotForwardedForEver) {
  EXPECT_EXIT(
      {
        alarm(20);
        struct sigaction sa {};
        sa.sa_sigaction = &reraising_segv_handler;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, nullptr);
        goro::run([] {
          goro::go([] {
            volatile std::uintptr_t bad = 16;
            *reinterpret_cast<volatile int*>(bad) = 1;
          });
          for (;;) goro::yield();
        });
      },
      ::testing::KilledBySignal(SIGSEGV), ::testing::Truly([](const std::string& out) {
        int n = count_of(out, "user SIGSEGV handler");
        return n >= 1 && n <= 2;
      }));
}

// User code runs under a channel's lock: T's move constructor, and the
// destructor of the moved-from value a receive leaves in a buffer slot. A
// scheduling point there would park the goroutine holding the lock, and
// the channel's next user would block its thread for ever (with one P:
// every goroutine). It is Go's fatal error instead. alarm() turns such a
// hang into a failure.
std::atomic<bool> armed{false};

struct YieldsWhenMoved {
  YieldsWhenMoved() = default;
  YieldsWhenMoved(YieldsWhenMoved&&) noexcept {
    if (armed.load()) goro::yield();
  }
};

TEST_F(Crash, SchedulingPointInAMoveUnderAChannelLockIsFatal) {
  EXPECT_EXIT(
      {
        alarm(20);
        goro::run(
            [] {
              goro::Chan<YieldsWhenMoved> c(1);
              goro::go([c]() mutable {
                for (;;) c.recv();
              });
              armed = true;
              c.send(YieldsWhenMoved{});
            },
            {.maxprocs = 1});
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: schedule: holding locks");
}

struct SleepsWhenDestroyed {
  ~SleepsWhenDestroyed() {
    if (armed.load()) goro::sleep_for(std::chrono::milliseconds(1));
  }
};

TEST_F(Crash, ParkingInADestructorUnderAChannelLockIsFatal) {
  EXPECT_EXIT(
      {
        alarm(20);
        goro::run(
            [] {
              goro::Chan<SleepsWhenDestroyed> c(1);
              c.send(SleepsWhenDestroyed{});
              armed = true;
              c.recv();
            },
            {.maxprocs = 1});
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: schedule: holding locks");
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

// P and M states have their tables too (runtime2.hpp), checked the same way.
TEST_F(Crash, IllegalPAndMStatusTransitionsAreFatal) {
  using namespace goro::runtime;
  EXPECT_EXIT(
      {
        P p;
        setPstatus(&p, _Pdead, _Prunning);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: setPstatus: bad incoming values");
  EXPECT_EXIT(
      {
        P p;  // starts _Pgcstop
        setPstatus(&p, _Pidle, _Prunning);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: setPstatus: P is not in the expected status");
  EXPECT_EXIT(
      {
        M m;
        setMstatus(&m, _Mpolling, _Mspinning);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: setMstatus: bad incoming values");
  EXPECT_EXIT(
      {
        M m;  // starts _Mrunning: dropping a spinning M that is not one
        dropSpinning(&m);
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: setMstatus: M is not in the expected status");
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

// A plain thread that used goro in this run, and is not blocked in it,
// may wake main later: no deadlock yet.
TEST_F(Crash, NoDeadlockWhileAPlainThreadThatUsedGoroWillWakeMain) {
  EXPECT_EXIT(
      {
        goro::Chan<int> c(1);
        goro::Chan<bool> hello(1);
        std::atomic<bool> used{false};
        int got = goro::run([&] {
          std::thread t([&] {
            hello.try_send(true);  // uses goro, then goes quiet for a while
            used = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            c.send(7);
          });
          t.detach();
          // Runnable (not blocked) until the thread has used goro: a
          // thread that has not yet does not count.
          while (!used.load()) goro::yield();
          return *c.recv();
        });
        std::exit(got == 7 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// A thread that never used goro does not count (as in Go, whose deadlock
// tests are ported below with one such thread alive): a program whose
// thread wakes a goroutine without having used goro before turns the
// report off.
TEST_F(Crash, NoDeadlockReportWhenTurnedOff) {
  for (bool by_env : {false, true}) {
    EXPECT_EXIT(
        {
          if (by_env) setenv("GORO_DEBUG", "checkdead=0", 1);
          goro::Chan<int> c(1);
          std::atomic<bool> started{false};
          std::thread t([&] {
            while (!started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            c.send(7);
          });
          goro::Options opts;
          opts.checkdead = by_env;  // one way or the other
          int got = goro::run(
              [&] {
                started = true;
                return *c.recv();
              },
              opts);
          t.join();
          std::exit(got == 7 ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
  }
}

// An unrelated thread (a logger, a watchdog, a test framework's helper)
// that never touches goro does not defer the report: Go's deadlock tests
// with one alive.
class UnrelatedThread {
 public:
  UnrelatedThread()
      : t_([this] {
          std::unique_lock<std::mutex> l(mu_);
          cv_.wait(l, [this] { return stop_; });
        }) {}
  ~UnrelatedThread() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    t_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread t_;
};

TEST_F(Crash, DeadlockWithAnUnrelatedThreadAlive) {
  EXPECT_EXIT(
      {
        UnrelatedThread logger;
        goro::run([] { goro::Chan<int>().recv(); });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
  EXPECT_EXIT(
      {
        UnrelatedThread logger;
        goro::run([] { goro::select(); });
      },
      ::testing::KilledBySignal(SIGABRT),
      "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[select \\(no cases\\)\\]:");
  // Go's LockedDeadlock and LockedDeadlock2: main locked to its thread.
  EXPECT_EXIT(
      {
        UnrelatedThread logger;
        goro::run([] {
          goro::lock_os_thread();
          goro::select();
        });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
  EXPECT_EXIT(
      {
        UnrelatedThread logger;
        goro::run([] {
          goro::Chan<int> c;
          goro::go([] {
            goro::lock_os_thread();
            goro::select();
          });
          c.recv();
        });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
  // Every goroutine blocked, on channels and a mutex, one locked.
  EXPECT_EXIT(
      {
        UnrelatedThread logger;
        goro::run(
            [] {
              goro::Mutex mu;
              mu.lock();
              goro::WaitGroup wg;
              wg.add(2);
              goro::go([&] {
                mu.lock();
                wg.done();
              });
              goro::go([&] {
                goro::lock_os_thread();
                goro::Chan<int>().send(1);
              });
              wg.wait();
            },
            {.maxprocs = 2});
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
}

// A thread that used goro but is itself blocked in it (here: on a channel
// only main could send to) does not defer the report either.
TEST_F(Crash, DeadlockWithAThreadBlockedInGoro) {
  EXPECT_EXIT(
      {
        goro::Chan<int> to_thread;
        std::thread t([to_thread]() mutable { to_thread.recv(); });
        t.detach();
        goro::run([] { goro::Chan<int>().recv(); });
      },
      ::testing::KilledBySignal(SIGABRT), "fatal error: all goroutines are asleep - deadlock!");
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
