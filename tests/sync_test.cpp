// sync_test.cpp — Mutex, RWMutex, WaitGroup, Once, Cond (sync.cpp,
// sema.cpp): the intent of Go's sync tests — mutual exclusion, fairness
// and starvation, writer priority, WaitGroup reuse and misuse, Once with
// a throwing function, Cond FIFO signalling — from goroutines and plain
// threads.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"
#include "sema.hpp"

namespace {

using namespace std::chrono_literals;
using goro::Chan;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::WaitReason;

// A thread's scheduling state as /proc shows it: 'R' running, 'S'
// sleeping (blocked, here on a futex)...; '?' if unreadable.
char thread_state(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string stat;
  std::getline(f, stat);
  auto close = stat.rfind(')');  // the name in parentheses may hold spaces
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

TEST(Mutex, MutualExclusion) {
  const int per = static_cast<int>(scaled(100000, 20));
  run_checked(
      [per] {
        goro::Mutex mu;
        int counter = 0;  // plain int: only ever touched under mu
        goro::WaitGroup wg;
        for (int g = 0; g < 8; g++) {
          wg.add(1);
          goro::go([&] {
            for (int i = 0; i < per; i++) {
              std::lock_guard<goro::Mutex> l(mu);
              counter++;
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(counter, 8 * per);
      },
      {.maxprocs = 2});
}

TEST(Mutex, TryLockAndMisuse) {
  goro::Mutex mu;
  EXPECT_TRUE(mu.try_lock());
  EXPECT_FALSE(mu.try_lock());
  mu.unlock();
  EXPECT_THROW(mu.unlock(), std::logic_error);
  EXPECT_TRUE(mu.try_lock()) << "a failed unlock must not corrupt the mutex";
  mu.unlock();
  std::unique_lock<goro::Mutex> ul(mu, std::try_to_lock);
  EXPECT_TRUE(ul.owns_lock());
}

// TestMutexFairness: a goroutine that keeps re-locking cannot keep
// another out (starvation mode hands the lock over after 1 ms). As in Go,
// the one that wants the lock 10 times is a goroutine of its own and main
// waits for it with a deadline, so the test fails (rather than hangs)
// when the lock never comes.
TEST(Mutex, StarvationModeLetsAWaiterIn) {
  run_checked(
      [] {
        goro::Mutex mu;
        goro::Chan<bool> stop, done(1);
        goro::WaitGroup wg;
        wg.add(2);
        goro::go([&] {
          for (;;) {
            mu.lock();
            goro::sleep_for(100us);
            mu.unlock();
            if (goro::select(goro::on_recv(stop), goro::on_default()) == 0) break;
          }
          wg.done();
        });
        goro::go([&] {
          for (int i = 0; i < 10; i++) {
            goro::sleep_for(100us);
            mu.lock();
            mu.unlock();
          }
          done.send(true);
          wg.done();
        });
        auto timeout = goro::after(10s);
        bool acquired = goro::select(goro::on_recv(done), goro::on_recv(timeout)) == 0;
        EXPECT_TRUE(acquired) << "could not acquire the mutex 10 times in 10 seconds";
        stop.close();  // then the mutex is free, and a starved waiter finishes too
        wg.wait();
      },
      {.maxprocs = 2});
}

// Goroutines and plain threads contend on one Mutex and hand work back and
// forth through channels: nothing is lost.
TEST(Mutex, SharedWithPlainThreads) {
  const int n = static_cast<int>(scaled(100000, 20));
  run_checked(
      [n] {
        goro::Mutex mu;
        long counter = 0;
        std::vector<std::thread> ts;
        goro::WaitGroup wg;
        for (int t = 0; t < 2; t++) {
          ts.emplace_back([&] {
            for (int i = 0; i < n / 4; i++) {
              mu.lock();
              counter++;
              mu.unlock();
            }
          });
          wg.add(1);
          goro::go([&] {
            for (int i = 0; i < n / 4; i++) {
              mu.lock();
              counter++;
              mu.unlock();
            }
            wg.done();
          });
        }
        wg.wait();
        for (auto& t : ts) t.join();
        EXPECT_EQ(counter, 4L * (n / 4));
      },
      {.maxprocs = 2});
}

TEST(RWMutex, ReadersShareWritersExclude) {
  run_checked(
      [] {
        goro::RWMutex rw;
        std::atomic<int> readers{0};
        int value = 0;
        goro::WaitGroup wg;
        for (int g = 0; g < 8; g++) {
          wg.add(1);
          goro::go([&, g] {
            for (int i = 0; i < 2000; i++) {
              if ((i + g) % 10 == 0) {
                std::lock_guard<goro::RWMutex> l(rw);
                EXPECT_EQ(readers.load(), 0);
                value++;
              } else {
                std::shared_lock<goro::RWMutex> l(rw);
                ++readers;
                if (i % 100 == 0) goro::yield();  // let other goroutines in while reading
                --readers;
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(value, 8 * 200);
        // Readers share: a second reader gets in while one holds the lock,
        // and a writer does not.
        rw.lock_shared();
        bool second = false, writer = true;
        wg.add(1);  // before go: the goroutine's done() may come first
        goro::go([&] {
          second = rw.try_lock_shared();
          if (second) rw.unlock_shared();
          writer = rw.try_lock();
          wg.done();
        });
        wg.wait();
        rw.unlock_shared();
        EXPECT_TRUE(second);
        EXPECT_FALSE(writer);
      },
      {.maxprocs = 2});
}

// A writer waiting for readers blocks new readers (Go's writer preference).
TEST(RWMutex, WaitingWriterBlocksNewReaders) {
  run_checked([] {
    goro::RWMutex rw;
    rw.lock_shared();
    std::atomic<bool> writer_in{false}, reader2_in{false};
    goro::go([&] {
      rw.lock();
      writer_in = true;
      rw.unlock();
    });
    // Wait until the writer is pending: from then on no new reader gets in.
    ASSERT_TRUE(goro::testing::wait_until([&] {
      if (!rw.try_lock_shared()) return true;
      rw.unlock_shared();
      return false;
    }));
    EXPECT_FALSE(rw.try_lock_shared()) << "a new reader got in past a waiting writer";
    goro::go([&] {
      rw.lock_shared();
      reader2_in = true;
      rw.unlock_shared();
    });
    // Both are parked: the writer waiting for the reader, the new reader
    // behind the writer.
    ASSERT_TRUE(goro::testing::wait_until([] {
      return goro::testing::goroutines_waiting(WaitReason::sync_rwmutex_lock) == 1 &&
             goro::testing::goroutines_waiting(WaitReason::sync_rwmutex_rlock) == 1;
    }));
    EXPECT_FALSE(writer_in.load());
    EXPECT_FALSE(reader2_in.load());
    rw.unlock_shared();
    while (!writer_in.load() || !reader2_in.load()) goro::yield();
  });
}

TEST(RWMutex, Misuse) {
  goro::RWMutex rw;
  EXPECT_THROW(rw.unlock(), std::logic_error);
  EXPECT_THROW(rw.unlock_shared(), std::logic_error);
  EXPECT_TRUE(rw.try_lock());
  EXPECT_FALSE(rw.try_lock_shared());
  EXPECT_THROW(rw.unlock_shared(), std::logic_error);
  rw.unlock();
  EXPECT_TRUE(rw.try_lock_shared());
  EXPECT_FALSE(rw.try_lock());
  rw.unlock_shared();
}

TEST(WaitGroup, WaitsForAllAndCanBeReused) {
  run_checked(
      [] {
        goro::WaitGroup wg;
        for (int round = 0; round < 3; round++) {
          std::atomic<int> n{0};
          for (int i = 0; i < 100; i++) {
            wg.add(1);
            goro::go([&] {
              n++;
              wg.done();
            });
          }
          wg.wait();
          EXPECT_EQ(n.load(), 100) << "round " << round;
        }
        wg.wait();  // counter 0: returns at once
      },
      {.maxprocs = 2});
}

TEST(WaitGroup, NegativeCounterThrows) {
  goro::WaitGroup wg;
  EXPECT_THROW(wg.done(), std::logic_error);
  wg.add(2);
  EXPECT_THROW(wg.add(-3), std::logic_error);
  wg.add(-2);  // the failed add changed nothing
  wg.wait();
}

TEST(WaitGroup, ManyWaiters) {
  run_checked([] {
    goro::WaitGroup wg, all;
    wg.add(1);
    std::atomic<int> woke{0};
    for (int i = 0; i < 10; i++) {
      all.add(1);
      goro::go([&] {
        wg.wait();
        woke++;
        all.done();
      });
    }
    ASSERT_TRUE(goro::testing::wait_until([] {
      return goro::testing::goroutines_waiting(WaitReason::semacquire) == 10;
    })) << "the waiters did not all block in wait()";
    EXPECT_EQ(woke.load(), 0);
    wg.done();
    all.wait();
    EXPECT_EQ(woke.load(), 10);
  });
}

TEST(Once, RunsOnceAcrossGoroutines) {
  run_checked(
      [] {
        goro::Once once;
        std::atomic<int> calls{0};
        goro::WaitGroup wg;
        for (int i = 0; i < 50; i++) {
          wg.add(1);
          goro::go([&] {
            once.call([&] { calls++; });
            EXPECT_EQ(calls.load(), 1) << "call returned before the function finished";
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(calls.load(), 1);
      },
      {.maxprocs = 2});
}

TEST(Once, ThrowingFunctionLeavesItNotDone) {
  goro::Once once;
  int calls = 0;
  EXPECT_THROW(once.call([&] {
    calls++;
    throw std::runtime_error("first");
  }),
               std::runtime_error);
  once.call([&] { calls++; });
  once.call([&] { calls++; });
  EXPECT_EQ(calls, 2);
}

// Signal wakes the longest waiter first; broadcast wakes all.
TEST(Cond, SignalIsFifoAndBroadcastWakesAll) {
  run_checked([] {
    goro::Mutex mu;
    goro::Cond cond(mu);
    std::vector<int> order;
    int waiting = 0;
    goro::WaitGroup wg;
    constexpr int kN = 5;
    for (int i = 0; i < kN; i++) {
      wg.add(1);
      goro::go([&, i] {
        std::unique_lock<goro::Mutex> l(mu);
        waiting++;
        cond.wait();
        order.push_back(i);
        wg.done();
      });
      // Let goroutine i queue before i+1 starts.
      for (;;) {
        std::lock_guard<goro::Mutex> l(mu);
        if (waiting == i + 1) break;
        mu.unlock();
        goro::yield();
        mu.lock();
      }
    }
    for (int i = 0; i < kN; i++) {
      cond.signal();
      for (;;) {
        std::lock_guard<goro::Mutex> l(mu);
        if (static_cast<int>(order.size()) == i + 1) break;
        mu.unlock();
        goro::yield();
        mu.lock();
      }
    }
    wg.wait();
    for (int i = 0; i < kN; i++) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
    // Broadcast.
    std::atomic<int> woke{0};
    waiting = 0;
    for (int i = 0; i < kN; i++) {
      wg.add(1);
      goro::go([&] {
        std::unique_lock<goro::Mutex> l(mu);
        waiting++;
        cond.wait();
        woke++;
        wg.done();
      });
    }
    for (;;) {
      std::lock_guard<goro::Mutex> l(mu);
      if (waiting == kN) break;
      mu.unlock();
      goro::yield();
      mu.lock();
    }
    cond.broadcast();
    wg.wait();
    EXPECT_EQ(woke.load(), kN);
  });
}

// Waits for ch with a deadline: false if nothing came (a lost wakeup shows
// as a failure, not a hang).
bool recv_within(Chan<bool> ch, std::chrono::seconds d) {
  bool got = false;
  goro::select(goro::on_recv(ch, [&](std::optional<bool> v) { got = v.has_value(); }), goro::on_recv(goro::after(d)));
  return got;
}

// wait() with the mutex not held throws, and leaves the Cond as it was: the
// ticket it took is given back, so the next signal reaches the next waiter.
TEST(Cond, WaitWithoutTheMutexThrowsAndLosesNoSignal) {
  run_checked([] {
    goro::Mutex mu;
    goro::Cond cond(mu);
    EXPECT_THROW(cond.wait(), std::logic_error);
    bool ready = false;
    Chan<bool> done(1);
    goro::go([&] {
      std::unique_lock<goro::Mutex> l(mu);
      while (!ready) cond.wait();
      done.send(true);
    });
    // Once main holds mu the waiter is inside wait() with its ticket taken.
    goro::yield();
    {
      std::lock_guard<goro::Mutex> l(mu);
      ready = true;
    }
    cond.signal();
    EXPECT_TRUE(recv_within(done, 10s)) << "the signal went to the ticket of the wait() that threw";
  });
}

// A ticket given back after later ones were taken: the notifications pass
// over it, whether it was notified already or not.
TEST(Cond, CancelledTicketBetweenWaitersIsSkipped) {
  run_checked([] {
    goro::runtime::NotifyList l;
    goro::Mutex mu;  // guards woke
    std::vector<int> woke;
    auto woken = [&] {
      std::lock_guard<goro::Mutex> g(mu);
      return woke;
    };
    goro::WaitGroup wg;
    auto waiter = [&](std::uint32_t t, int who) {
      wg.add(1);
      goro::go([&, t, who] {
        goro::runtime::notifyListWait(&l, t);
        std::lock_guard<goro::Mutex> g(mu);
        woke.push_back(who);
        wg.done();
      });
    };
    // Waiters queued on the list (so that wake order is notify order).
    auto queued = [&] {
      goro::runtime::LockGuard g(l.lock);
      int n = 0;
      for (goro::runtime::Sudog* s = l.head; s != nullptr; s = s->next) n += s->g != nullptr;
      return n;
    };
    // Not yet notified: a ghost between tickets 0 and 2.
    std::uint32_t t0 = goro::runtime::notifyListAdd(&l);
    std::uint32_t t1 = goro::runtime::notifyListAdd(&l);
    std::uint32_t t2 = goro::runtime::notifyListAdd(&l);
    waiter(t0, 0);
    ASSERT_TRUE(goro::testing::wait_until([&] { return queued() == 1; }));
    waiter(t2, 2);
    ASSERT_TRUE(goro::testing::wait_until([&] { return queued() == 2; }));
    goro::runtime::notifyListCancel(&l, t1);
    goro::runtime::notifyListNotifyOne(&l);
    ASSERT_TRUE(goro::testing::wait_until([&] { return woken().size() == 1; }));
    EXPECT_EQ(woken()[0], 0);
    goro::runtime::notifyListNotifyOne(&l);  // passes over the cancelled ticket
    ASSERT_TRUE(goro::testing::wait_until([&] { return woken().size() == 2; }))
        << "a notification was lost on the cancelled ticket";
    EXPECT_EQ(woken()[1], 2);
    wg.wait();
    // Already notified when cancelled: the notification moves on.
    {
      std::lock_guard<goro::Mutex> g(mu);
      woke.clear();
    }
    std::uint32_t t3 = goro::runtime::notifyListAdd(&l);
    std::uint32_t t4 = goro::runtime::notifyListAdd(&l);
    goro::runtime::notifyListNotifyOne(&l);  // to t3, which has not waited yet
    waiter(t4, 4);
    ASSERT_TRUE(goro::testing::wait_until([&] { return queued() == 1; }));
    goro::runtime::notifyListCancel(&l, t3);
    wg.wait();
    ASSERT_EQ(woken().size(), 1u);
    EXPECT_EQ(woken()[0], 4);
    goro::runtime::notifyListDestroy(&l);
  });
}

// Unlocking never waits, so it works inside goro::syscall, in starvation
// mode too, where the unlock hands the mutex to the next waiter and Go
// yields to it: not from a system call, which has no P to yield (before:
// "fatal error: casgstatus").
TEST(Mutex, UnlockInASyscallInStarvationMode) {
  run_checked(
      [] {
        goro::Mutex mu;
        mu.lock();
        std::atomic<bool> got{false}, checked{false};
        goro::go([&] {
          mu.lock();  // waits; then is woken, loses the race, and starves
          got = true;
          // Hold the mutex until main has looked: if sysmon hands main's P
          // off during its system call, this may run before main's check.
          while (!checked.load()) goro::yield();
          mu.unlock();
        });
        goro::yield();  // it runs and blocks
        goro::sleep_for(5ms);
        mu.unlock();    // wakes it (it is in our runnext, not running)
        mu.lock();      // and barge in before it runs
        goro::yield();  // it runs: waited over 1 ms, lock taken: starvation mode
        goro::syscall([&] { mu.unlock(); });
        // Starvation mode handed the mutex to the waiter: it is not free.
        bool taken = mu.try_lock();
        EXPECT_FALSE(taken) << "not in starvation mode: the test did not test it";
        if (taken) mu.unlock();
        checked = true;
        ASSERT_TRUE(goro::testing::wait_until([&] { return got.load(); }));
      },
      {.maxprocs = 1});
}

// A plain thread blocks in Cond::wait (asleep in the kernel, not spinning)
// until signalled, and each signal wakes it once.
TEST(Cond, PlainThreadWaits) {
  goro::Mutex mu;
  goro::Cond cond(mu);
  bool ready = false;  // under mu
  int wakeups = 0;     // under mu
  std::atomic<pid_t> tid{0};
  std::thread t([&] {
    std::unique_lock<goro::Mutex> l(mu);
    tid = static_cast<pid_t>(::syscall(SYS_gettid));
    while (!ready) {
      cond.wait();
      wakeups++;
    }
  });
  // The thread is inside wait() (it let go of mu after waking n times)
  // and asleep there.
  auto asleep_in_wait_after = [&](int n) {
    return goro::testing::wait_until([&] {
      if (tid.load() == 0) return false;
      {
        std::lock_guard<goro::Mutex> l(mu);
        if (wakeups != n) return false;
      }
      return thread_state(tid.load()) == 'S';
    });
  };
  ASSERT_TRUE(asleep_in_wait_after(0));
  cond.signal();  // not ready yet: it wakes, and waits again
  EXPECT_TRUE(asleep_in_wait_after(1));
  {
    std::lock_guard<goro::Mutex> l(mu);
    ready = true;
  }
  cond.signal();
  t.join();
  EXPECT_EQ(wakeups, 2) << "wait() returned without a signal";
}

// Goroutines abandoned while blocked on sync objects that outlive the run
// are detached from the runtime's queues, so releasing those objects
// afterwards touches no freed goroutine (ASan checks). The objects' own
// state still counts the abandoned waiters, as if they waited on (in Go the
// process would have exited): only releasing them is meaningful.
TEST(Sync, ObjectsOutliveTheRun) {
  goro::Mutex mu, cmu;
  goro::Cond cond(cmu);
  goro::WaitGroup wg;
  goro::RWMutex rw;
  mu.lock();
  rw.lock();
  wg.add(1);
  goro::run([&] {
    goro::go([&] { mu.lock(); });  // blocks: this thread holds it
    goro::go([&] { wg.wait(); });
    goro::go([&] { rw.lock_shared(); });
    goro::go([&] {
      cmu.lock();
      cond.wait();  // abandoned in there, having let go of cmu
    });
    // Every one of them blocked on its object.
    ASSERT_TRUE(goro::testing::wait_until([] {
      using goro::testing::goroutines_waiting;
      return goroutines_waiting(WaitReason::sync_mutex_lock) == 1 && goroutines_waiting(WaitReason::semacquire) == 1 &&
             goroutines_waiting(WaitReason::sync_rwmutex_rlock) == 1 &&
             goroutines_waiting(WaitReason::sync_cond_wait) == 1;
    }));
  });
  // The waiters are gone: none of these may touch them.
  cond.signal();
  cond.broadcast();
  mu.unlock();
  wg.done();
  rw.unlock();
}

// A Cond destroyed with a goroutine abandoned in wait(): teardown must not
// touch the dead Cond.
TEST(Sync, CondDestroyedWithAbandonedWaiter) {
  goro::run([] {
    auto mu = std::make_unique<goro::Mutex>();
    auto cond = std::make_unique<goro::Cond>(*mu);
    goro::Chan<int> waiting(1);
    goro::go([&] {
      std::unique_lock<goro::Mutex> l(*mu);
      waiting.send(1);
      cond->wait();
    });
    waiting.recv();
    // Getting mu means the waiter has its ticket, but it may still be inside
    // Cond::wait touching the Cond: wait until it is parked.
    ASSERT_TRUE(goro::testing::wait_until([] {
      std::ostringstream dump;
      goro::debug::dump_goroutines(dump);
      return dump.str().find("[sync.Cond.Wait]") != std::string::npos;
    }));
    std::lock_guard<goro::Mutex> l(*mu);
    cond.reset();
  });
}

// Stress under TSan: all the primitives at once on both cores.
TEST(SyncStress, Everything) {
  const int n = static_cast<int>(scaled(20000, 20));
  run_checked(
      [n] {
        goro::Mutex mu;
        goro::RWMutex rw;
        goro::Cond cond(mu);
        long a = 0, b = 0;
        goro::WaitGroup wg;
        for (int g = 0; g < 6; g++) {
          wg.add(1);
          goro::go([&, g] {
            for (int i = 0; i < n; i++) {
              if (g % 2 == 0) {
                std::lock_guard<goro::Mutex> l(mu);
                a++;
                cond.signal();
              } else if (i % 5 == 0) {
                std::lock_guard<goro::RWMutex> l(rw);
                b++;
              } else {
                std::shared_lock<goro::RWMutex> l(rw);
                (void)b;
              }
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(a, 3L * n);
        EXPECT_EQ(b, 3L * (n / 5));
      },
      {.maxprocs = 2});
}

}  // namespace
