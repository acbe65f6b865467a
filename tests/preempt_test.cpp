// preempt_test.cpp — asynchronous preemption (preempt.cpp): goroutines that
// never reach a scheduling point are stopped by the preemption signal at a
// safe point, resume on their own thread with every register intact, and
// the program's own use of the signal is left alone. Go's
// TestPreemptionGC, TestAsyncPreempt, TestPreemptionStopTheWorld-style
// tests (proc_test.go, preempt_test.go), with their set-up.
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/sync.hpp"

namespace goro::testing {
namespace {

using namespace std::chrono_literals;

// A loop the compiler cannot turn into anything with a call in it: a plain
// atomic load, no checkpoint().
void spin_until(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_relaxed)) {
  }
}

long tid() { return ::syscall(SYS_gettid); }

// Why the unannounced-blocking tests skip under ASan and TSan.
constexpr const char* kNoHandoffUnderSanitizer =
    "no unannounced-blocking handoff under a sanitizer: it would run instrumented runtime code in a signal handler "
    "the sanitizer does not know about (issue 12 tracks it)";

// In a goroutine: start a goroutine that runs before(), then spins with no
// scheduling point until this one, once it gets the P back, stops it. On
// one P, only preemption lets this one run again.
template <class Before>
void stop_a_spinner(Before before) {
  std::atomic<bool> stop{false}, started{false};
  goro::WaitGroup wg;
  wg.add(1);
  goro::go([&] {
    before();
    started.store(true);
    spin_until(stop);
    wg.done();
  });
  while (!started.load()) goro::yield();  // the spinner has the P now and then
  stop.store(true);
  wg.wait();
}
void stop_a_spinner() {
  stop_a_spinner([] {});
}

// Go's TestAsyncPreempt/TestPreemptionGC intent: on one P, a goroutine that
// spins without a scheduling point does not keep the goroutine that will
// stop it from running. 100 times in a row.
TEST(AsyncPreempt, SpinnerDoesNotStopAnotherOnOneP) {
  Options o;
  o.maxprocs = 1;
  for (int i = 0; i < 100; i++) {
    run_checked([] { stop_a_spinner(); }, o);
  }
}

// TestAsyncPreemptionTurnTaking's intent: two spinners on one P take turns:
// each sees the other's counter move several times. 100 runs in a row
// (10 under a sanitizer, where a preemption waits longer for a safe point).
TEST(AsyncPreempt, TwoSpinnersTakeTurnsOnOneP) {
  Options o;
  o.maxprocs = 1;
  for (std::int64_t run = 0; run < scaled(100, 10); run++) {
    run_checked(
        [] {
          std::atomic<std::uint64_t> count[2] = {0, 0};
          std::atomic<int> turns[2] = {0, 0};
          goro::WaitGroup wg;
          wg.add(2);
          for (int me = 0; me < 2; me++) {
            goro::go([&, me] {
              std::uint64_t seen = count[1 - me].load(std::memory_order_relaxed);
              while (turns[me].load(std::memory_order_relaxed) < 3) {
                count[me].fetch_add(1, std::memory_order_relaxed);
                std::uint64_t now = count[1 - me].load(std::memory_order_relaxed);
                if (now != seen) {
                  seen = now;
                  turns[me].fetch_add(1, std::memory_order_relaxed);
                }
                // The other has finished: nobody left to take turns with.
                if (turns[1 - me].load(std::memory_order_relaxed) >= 3) break;
              }
              wg.done();
            });
          }
          wg.wait();
          EXPECT_GE(turns[0].load() + turns[1].load(), 3);
          EXPECT_GT(turns[0].load(), 0);
          EXPECT_GT(turns[1].load(), 0);
        },
        o);
  }
}

// Go's TestPreemptionStopTheWorld intent: maxprocs(n) stops the world, which
// needs every P back, while two goroutines spin on two Ps. 100 runs in a row
// (10 under a sanitizer).
TEST(AsyncPreempt, MaxprocsCompletesWhileGoroutinesSpin) {
  Options o;
  o.maxprocs = 2;
  for (std::int64_t i = 0; i < scaled(100, 10); i++) {
    run_checked(
        [] {
          std::atomic<bool> stop{false};
          std::atomic<int> started{0};
          goro::WaitGroup wg;
          wg.add(2);
          for (int k = 0; k < 2; k++) {
            goro::go([&] {
              started.fetch_add(1);
              spin_until(stop);
              wg.done();
            });
          }
          while (started.load() < 2) goro::yield();
          int prev = goro::maxprocs(1);
          EXPECT_EQ(prev, 2);
          EXPECT_EQ(goro::maxprocs(2), 1);
          stop.store(true);
          wg.wait();
        },
        o);
  }
}

// run returns promptly when main returns, while goroutines spin forever
// (they are abandoned, as API.md says). 100 runs; the median wait from
// main's return to run's must be under 100 ms, and none may hang.
TEST(AsyncPreempt, RunReturnsPromptlyWhileGoroutinesSpin) {
  static std::atomic<bool> never{false};
  std::vector<double> waits;
  for (int i = 0; i < 100; i++) {
    std::chrono::steady_clock::time_point returned;
    Options o;
    o.maxprocs = 2;
    goro::run(
        [&] {
          std::atomic<int> started{0};
          for (int k = 0; k < 3; k++) {
            goro::go([&started] {
              started.fetch_add(1);
              spin_until(never);
            });
          }
          while (started.load() < 2) goro::yield();
          returned = std::chrono::steady_clock::now();
        },
        o);
    waits.push_back(ms(std::chrono::steady_clock::now() - returned));
    ASSERT_LT(waits.back(), 5000) << "run " << i << " took " << waits.back() << " ms to return";
  }
  std::sort(waits.begin(), waits.end());
  EXPECT_LT(waits[waits.size() / 2], 100) << "median wait for run to return after main, ms";
}

// An asynchronously preempted goroutine resumes on the thread it was
// interrupted on, until its own next scheduling point: the code around the
// interrupted point may keep a thread_local's address in a register.
TEST(AsyncPreempt, PreemptedGoroutineResumesOnItsThread) {
  Options o;
  o.maxprocs = 2;
  run_checked(
      [] {
        std::uint64_t before = goro::debug::stats().preemptions;
        std::atomic<bool> stop{false};
        std::atomic<long> t0{0}, t1{0};
        goro::WaitGroup wg;
        wg.add(4);
        // Four spinners on two Ps: each is preempted many times while the
        // others wait for its P.
        for (int k = 0; k < 4; k++) {
          goro::go([&, k] {
            long a = tid();
            spin_until(stop);
            long b = tid();
            if (k == 0) t0.store(a), t1.store(b);
            EXPECT_EQ(a, b) << "an asynchronously preempted goroutine moved to another thread";
            wg.done();
          });
        }
        goro::sleep_for(200ms);
        stop.store(true);
        wg.wait();
        EXPECT_GT(goro::debug::stats().preemptions, before + 4) << "the spinners were not preempted";
        EXPECT_EQ(t0.load(), t1.load());
      },
      o);
}

// Every general register and the vector registers come out of a
// preemption as they went in: a loop keeps 12 integer accumulators and 4
// SSE accumulators live across millions of iterations, preempted many
// times, and must reach the same values as the same loop run undisturbed.
struct Sums {
  std::uint64_t r[12];
  double v[4];
  bool operator==(const Sums& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};

__attribute__((noinline)) Sums churn(std::uint64_t n) {
  std::uint64_t a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8, i = 9, j = 10, k = 11, l = 12;
  double v0 = 1.0, v1 = 0.5, v2 = 0.25, v3 = 0.125;
  for (std::uint64_t x = 0; x < n; x++) {
    a = a * 6364136223846793005ull + b;
    b ^= a >> 7;
    c += b * 3 + d;
    d = (d << 3) ^ c;
    e += d ^ (e >> 11);
    f = f * 2862933555777941757ull + e;
    g ^= f + (g << 5);
    h += g * 7;
    i = (i ^ h) * 0x9E3779B97F4A7C15ull;
    j += i >> 13;
    k ^= j + x;
    l = l * 31 + k;
    v0 = v0 * 0.999999 + static_cast<double>(a & 0xff) * 1e-6;
    v1 = v1 * 0.999997 + static_cast<double>(c & 0xff) * 1e-6;
    v2 = v2 * 0.999995 + static_cast<double>(e & 0xff) * 1e-6;
    v3 = v3 * 0.999993 + static_cast<double>(g & 0xff) * 1e-6;
    asm volatile(""
                 : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f), "+r"(g), "+r"(h), "+r"(i), "+r"(j), "+r"(k),
                   "+r"(l));
    asm volatile("" : "+x"(v0), "+x"(v1), "+x"(v2), "+x"(v3));
  }
  return Sums{{a, b, c, d, e, f, g, h, i, j, k, l}, {v0, v1, v2, v3}};
}

TEST(AsyncPreempt, RegistersSurvivePreemptionBitExact) {
  constexpr std::uint64_t kIters = 300'000'000;
  Sums want = churn(kIters);
  Options o;
  o.maxprocs = 1;
  run_checked(
      [&] {
        std::uint64_t before = goro::debug::stats().preemptions;
        Sums got[2];
        goro::WaitGroup wg;
        wg.add(2);
        for (int k = 0; k < 2; k++) {
          goro::go([&, k] {
            got[k] = churn(kIters);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_GT(goro::debug::stats().preemptions, before) << "nothing was preempted: the test proves nothing";
        EXPECT_TRUE(got[0] == want);
        EXPECT_TRUE(got[1] == want);
      },
      o);
}

// The program's own handler for the preemption signal still runs for the
// signals the program sends, and never for goro's own.
std::atomic<int> user_sigurgs{0};
void on_sigurg(int) { user_sigurgs.fetch_add(1); }

TEST(AsyncPreempt, ProgramsSigurgHandlerIsChained) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = &on_sigurg;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ASSERT_EQ(sigaction(SIGURG, &sa, &old), 0);
  user_sigurgs.store(0);
  Options o;
  o.maxprocs = 1;
  run_checked(
      [] {
        std::uint64_t before = goro::debug::stats().preemptions;
        stop_a_spinner();
        EXPECT_GT(goro::debug::stats().preemptions, before);
        EXPECT_EQ(user_sigurgs.load(), 0) << "goro's own preemption signals reached the program's handler";
        for (int i = 0; i < 3; i++) ::kill(getpid(), SIGURG);
        EXPECT_TRUE(wait_until([] { return user_sigurgs.load() >= 1; }));
      },
      o);
  // Standard signals sent before delivery may merge: at least one arrived.
  EXPECT_GE(user_sigurgs.load(), 1);
  struct sigaction now {};
  sigaction(SIGURG, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &on_sigurg) << "run() did not put the program's handler back";
  sigaction(SIGURG, &old, nullptr);
}

// On two Ps, a goroutine reads 5 bytes from an empty pipe with a plain
// ::read (not announced with goro::syscall) while the caller runs
// during(reader's thread id); then the caller writes them. The read must
// return them.
template <class During>
void read_pipe_while(During during) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Options o;
  o.maxprocs = 2;
  run_checked(
      [&] {
        ssize_t got = 0;
        int err = 0;
        char buf[8] = {};
        std::atomic<long> reader{0};
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          reader.store(tid());
          got = ::read(fds[0], buf, 5);
          err = errno;
          wg.done();
        });
        while (reader.load() == 0) goro::yield();
        during(reader.load());
        ASSERT_EQ(::write(fds[1], "hello", 5), 5);
        wg.wait();
        EXPECT_EQ(got, 5) << "read failed: " << std::strerror(err);
        EXPECT_STREQ(buf, "hello");
      },
      o);
  close(fds[0]);
  close(fds[1]);
}

// The reader keeps its P well past its slice, but its thread's CPU clock
// stands still: sysmon does not send it a preemption signal every tick
// (each would interrupt the call; poll or nanosleep would return EINTR),
// only the one that hands its P off (UnannouncedBlocking below), asked
// again with a doubling back-off if the handler could not make it: at
// most 5 in 300 ms (10, 30, 70, 150, 310 ms). Sysmon ticks every
// millisecond meanwhile: a signal per tick would be ~290.
TEST(AsyncPreempt, BlockedThreadIsNotSignalled) {
  if (runtime::san::kAsan || runtime::san::kTsan) {
    GTEST_SKIP() << kNoHandoffUnderSanitizer;
  }
  read_pipe_while([](long) {
    std::uint64_t before = preempt_signals_handled();
    goro::sleep_for(300ms);  // 30 slices
    EXPECT_LE(preempt_signals_handled() - before, 5u) << "a thread blocked in read was sent preemption signals";
  });
}

// When the signal does reach a thread blocked in a user's read (stop-the-
// world and run's end signal every running M), the handler is installed
// with SA_RESTART: the read goes on and returns the data, never EINTR.
TEST(AsyncPreempt, ReadInterruptedByThePreemptionSignalCompletes) {
  read_pipe_while([](long reader) {
    std::uint64_t before = preempt_signals_handled();
    for (int i = 0; i < 20; i++) {
      ASSERT_TRUE(send_preempt_signal(reader));
      goro::sleep_for(5ms);
    }
    EXPECT_GT(preempt_signals_handled(), before) << "the signals did not reach the reader";
  });
}

// A goroutine that blocks the preemption signal on its thread is preempted
// only cooperatively meanwhile (the documented fallback): the signal waits,
// pending, and lands once the goroutine unblocks it; nothing is lost.
TEST(AsyncPreempt, BlockedSignalMaskFallsBackUntilUnblocked) {
  Options o;
  o.maxprocs = 1;
  run_checked(
      [] {
        sigset_t set, old;
        stop_a_spinner([&] {
          sigemptyset(&set);
          sigaddset(&set, SIGURG);
          pthread_sigmask(SIG_BLOCK, &set, &old);
          auto until = std::chrono::steady_clock::now() + 50ms;
          while (std::chrono::steady_clock::now() < until) {
          }
          pthread_sigmask(SIG_SETMASK, &old, nullptr);
        });
      },
      o);
}

// A program that blocks the preemption signal before run (to take its
// signals on a thread of its own, say) still gets preemption: every M
// unblocks it (minitSignalMask), and run's caller gets its mask back.
TEST(AsyncPreempt, CallersBlockedSignalIsUnblockedOnMs) {
  sigset_t set, old, after;
  sigemptyset(&set);
  sigaddset(&set, SIGURG);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  Options o;
  o.maxprocs = 1;
  std::atomic<int> blocked_in_goroutine{-1};
  run_checked(
      [&] {
        sigset_t cur;
        pthread_sigmask(SIG_SETMASK, nullptr, &cur);
        blocked_in_goroutine.store(sigismember(&cur, SIGURG));
        stop_a_spinner();
      },
      o);
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(blocked_in_goroutine.load(), 0);
  EXPECT_EQ(sigismember(&after, SIGURG), 1) << "run did not give its caller its signal mask back";
}

class PreemptSignalDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// In a goroutine, on one P: break preemption with broken(), then spin. The
// goroutine cannot be preempted, so goro stops the program with a message
// rather than let run's end wait for ever.
template <class Broken>
void spin_unpreemptible(Broken broken) {
  Options o;
  o.maxprocs = 1;
  goro::run(
      [&] {
        std::atomic<bool> never{false};
        goro::go([&] {
          broken();
          spin_until(never);
        });
        goro::yield();
        std::_Exit(0);  // not reached: the spinner keeps the only P
      },
      o);
}

// A goroutine that keeps the preemption signal blocked past a second of an
// overdue slice is a fatal error naming the signal, thread and goroutine.
TEST_F(PreemptSignalDeathTest, GoroutineBlockingTheSignalIsFatal) {
  EXPECT_DEATH(spin_unpreemptible([] {
                 sigset_t set;
                 sigemptyset(&set);
                 sigaddset(&set, SIGURG);
                 pthread_sigmask(SIG_BLOCK, &set, nullptr);
               }),
               "fatal error: the preemption signal \\(SIGURG\\) sent to thread [0-9]+, running goroutine [0-9]+, "
               "has not been handled for [0-9]+ ms: the thread blocks it");
}

// Likewise a goroutine that replaces goro's handler for the signal.
TEST_F(PreemptSignalDeathTest, ReplacingTheHandlerIsFatal) {
  EXPECT_DEATH(spin_unpreemptible([] { signal(SIGURG, SIG_IGN); }),
               "fatal error: the preemption signal \\(SIGURG\\) .* its handler was replaced");
}

// Unannounced blocking (issue 12's part 4): on one P, a goroutine calls a
// plain ::read on an empty pipe (no goro::syscall) for 300 ms. sysmon sees
// its thread's CPU clock stand still and hands its P off as for a system
// call: main runs meanwhile (and counts its turns), and the reader takes a
// P back when the read returns. With blockreport, sysmon names the
// goroutine and shows `read` among its frames.
TEST(UnannouncedBlocking, OthersRunWhileAPlainReadBlocks) {
  if (runtime::san::kAsan || runtime::san::kTsan) {
    GTEST_SKIP() << kNoHandoffUnderSanitizer;
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  setenv("GORO_DEBUG", "blockreport=100", 1);
  ::testing::internal::CaptureStderr();
  Options o;
  o.maxprocs = 1;
  std::uint64_t reader_id = 0;
  run_checked(
      [&] {
        std::uint64_t before = goro::debug::stats().unannounced_blocks;
        std::atomic<ssize_t> got{0};
        char buf[8] = {};
        std::atomic<bool> reading{false};
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          reader_id = goro::goid();
          reading.store(true);
          got = ::read(fds[0], buf, 5);
          wg.done();
        });
        // Only a handoff lets main run again before the write: it counts
        // the turns it gets while the read still blocks. The writer waits
        // for the first (at least 300 ms, at most 10 s: a loaded machine
        // or a sanitizer may take longer to find the block), then 300 ms
        // more, for the report.
        std::atomic<std::int64_t> turns{0};
        std::thread writer([&] {
          while (!reading.load()) std::this_thread::sleep_for(1ms);
          auto start = std::chrono::steady_clock::now();
          std::this_thread::sleep_for(300ms);
          while (turns.load() == 0 && std::chrono::steady_clock::now() - start < 10s) {
            std::this_thread::sleep_for(1ms);
          }
          std::this_thread::sleep_for(300ms);
          ASSERT_EQ(::write(fds[1], "hello", 5), 5);
        });
        while (!reading.load()) goro::yield();
        while (got.load() == 0) {
          goro::yield();
          if (got.load() == 0) turns++;
        }
        wg.wait();
        writer.join();
        EXPECT_GT(turns.load(), 0) << "nothing else ran while the read blocked";
        EXPECT_EQ(got.load(), 5);
        EXPECT_STREQ(buf, "hello");
        EXPECT_GE(goro::debug::stats().unannounced_blocks, before + 1);
      },
      o);
  std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("GORO_DEBUG");
  close(fds[0]);
  close(fds[1]);
  EXPECT_NE(err.find("goroutine " + std::to_string(reader_id) + " has been blocked"), std::string::npos) << err;
  EXPECT_NE(err.find("read"), std::string::npos) << err;
}

// run returns while a goroutine blocks in a plain ::read whose P sysmon
// handed off: its thread is abandoned, as one in goro::syscall is. When the
// read returns, its code runs on to its next call into goro (yield), where
// the thread leaves: nothing after that point runs. The next run works as
// usual.
TEST(UnannouncedBlocking, RunReturnsWhileAPlainReadBlocks) {
  if (runtime::san::kAsan || runtime::san::kTsan) {
    GTEST_SKIP() << kNoHandoffUnderSanitizer;
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  static std::atomic<bool> returned{false}, ran_on{false};
  returned = false;
  ran_on = false;
  Options o;
  o.maxprocs = 1;
  goro::run(
      [&] {
        std::uint64_t before = goro::debug::stats().unannounced_blocks;
        goro::go([fd = fds[0]] {
          char c;
          (void)::read(fd, &c, 1);
          returned.store(true);
          goro::yield();
          ran_on.store(true);
        });
        // Until sysmon has handed the reader's P off (main runs only then).
        auto until = std::chrono::steady_clock::now() + 10s;
        while (goro::debug::stats().unannounced_blocks == before && std::chrono::steady_clock::now() < until) {
          goro::yield();
        }
        EXPECT_GT(goro::debug::stats().unannounced_blocks, before) << "the plain read's P was never handed off";
      },
      o);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!returned.load() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(returned.load()) << "the abandoned reader never came back from its read";
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ran_on.load()) << "an abandoned goroutine ran past its next call into goro";
  run_checked([] { stop_a_spinner(); }, o);
  close(fds[0]);
  close(fds[1]);
}

// A goroutine that computes is never taken for blocked: its CPU clock
// moves (on a loaded machine, a twentieth of the time is enough).
TEST(UnannouncedBlocking, ComputingIsNotBlocking) {
  Options o;
  o.maxprocs = 1;
  run_checked(
      [] {
        std::uint64_t before = goro::debug::stats().unannounced_blocks;
        stop_a_spinner([] {
          auto until = std::chrono::steady_clock::now() + 300ms;
          while (std::chrono::steady_clock::now() < until) {
          }
        });
        EXPECT_EQ(goro::debug::stats().unannounced_blocks, before);
      },
      o);
}

// Options::preempt_signal: another signal works the same; -1 turns
// asynchronous preemption off; a signal goro cannot use is refused.
TEST(AsyncPreempt, PreemptSignalIsConfigurable) {
  Options o;
  o.maxprocs = 1;
  o.preempt_signal = SIGUSR2;
  run_checked([] { stop_a_spinner(); }, o);
  for (int bad : {SIGKILL, SIGSEGV, SIGSTOP, -2, 100000}) {
    o.preempt_signal = bad;
    EXPECT_THROW(goro::run([] {}, o), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace goro::testing
