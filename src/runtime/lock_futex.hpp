// lock_futex.hpp — the runtime's own mutex and one-shot notes, on futexes.
// Invariants: a Lock is never held across a goroutine switch; a Note is
// woken at most once between clears (a second wakeup is a fatal error).
// Mirrors lock_futex.go (lock/unlock, notesleep/notewakeup/notetsleep).
#pragma once

#include <atomic>
#include <cstdint>

#include "tls.hpp"

namespace goro::runtime {

// os_linux.cpp: futex(2) wrappers. futexsleep returns when *addr != val, on a
// wakeup, after ns nanoseconds (ns < 0: no timeout), or spuriously.
void futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns);
void futexwakeup(std::atomic<std::uint32_t>* addr, std::uint32_t cnt);
void osyield();
void procyield(std::uint32_t cycles);
// CPUs usable by the process: written by every run's osinit (and maxprocs
// queries), read by spinning locks on any thread, so an atomic (relaxed: a
// stale value only tunes spinning).
extern std::atomic<int> ncpu;

// Go's runtime mutex: 0 unlocked, 1 locked, 2 locked with sleepers. Spins
// briefly on a multi-core machine before sleeping in the kernel. The
// thread's count of held locks (mlocksp) goes up while one is held: a
// goroutine that reaches a scheduling point then (user code run under a
// channel's lock, say) is a fatal error instead of a thread blocked for ever
// on the next lock of it, and preemption waits until it is released.
class Lock {
 public:
  void lock() {
    mlocks_add<1>();
    std::uint32_t v = key_.exchange(kLocked, std::memory_order_acquire);
    if (v != kUnlocked) lock_slow(v);
  }
  void unlock() {
    if (key_.exchange(kUnlocked, std::memory_order_release) == kSleeping) {
      futexwakeup(&key_, 1);
    }
    mlocks_add<-1>();
  }
  bool held() const { return key_.load(std::memory_order_relaxed) != kUnlocked; }

 private:
  static constexpr std::uint32_t kUnlocked = 0, kLocked = 1, kSleeping = 2;
  void lock_slow(std::uint32_t v);
  std::atomic<std::uint32_t> key_{kUnlocked};
};

class LockGuard {
 public:
  explicit LockGuard(Lock& m) : m_(m) { m_.lock(); }
  ~LockGuard() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lock& m_;
};

// A one-shot event: one sleeper, one waker (Go's note).
class Note {
 public:
  void clear() { key_.store(0, std::memory_order_relaxed); }
  void wakeup();  // fatal error on a double wakeup
  void sleep();   // until woken
  // Sleeps at most ns nanoseconds; true if woken.
  bool tsleep(std::int64_t ns);
  bool woken() const { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace goro::runtime
