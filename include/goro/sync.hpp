// goro/sync.hpp — Go's sync package: Mutex, RWMutex, WaitGroup, Once, Cond.
// Waiting parks the goroutine (or blocks a plain thread) on the runtime's
// semaphores; the algorithms are Go's (sync/mutex.go, rwmutex.go,
// waitgroup.go, once.go, cond.go). Mutex and RWMutex meet the standard
// Lockable and SharedLockable requirements.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace goro {

// A mutual exclusion lock with Go's normal and starvation modes: waiters
// queue FIFO, but a newly arriving goroutine may barge in; a waiter that
// failed to get the lock for over 1 ms switches the mutex to starvation
// mode, where ownership is handed directly to the longest waiter.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock();
  bool try_lock();
  // Throws std::logic_error if the mutex is not locked.
  void unlock();

 private:
  friend class RWMutex;
  static constexpr std::int32_t kLocked = 1, kWoken = 2, kStarving = 4, kWaiterShift = 3;
  void lock_slow();
  void unlock_slow(std::int32_t newstate);
  std::atomic<std::int32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

// A reader/writer lock: any number of readers or one writer. A blocked
// writer keeps new readers out, so writers are not starved.
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock();  // throws std::logic_error if not write-locked
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();  // throws std::logic_error if not read-locked

 private:
  static constexpr std::int32_t kMaxReaders = 1 << 30;
  Mutex w_;
  std::atomic<std::uint32_t> writerSem_{0};
  std::atomic<std::uint32_t> readerSem_{0};
  std::atomic<std::int32_t> readerCount_{0};
  std::atomic<std::int32_t> readerWait_{0};
};

// Waits for a collection of goroutines to finish.
class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Throws std::logic_error if the counter would go negative, and on
  // misuse Go detects (add racing with wait on a zero counter).
  void add(int delta);
  void done() { add(-1); }
  void wait();

 private:
  std::atomic<std::uint64_t> state_{0};  // high 32 bits: counter, low 32: waiters
  std::atomic<std::uint32_t> sema_{0};
};

// Runs a function once. Unlike Go, and like std::call_once, a call that
// throws leaves the Once not done: the next call runs its function.
class Once {
 public:
  template <class F>
  void call(F&& f) {
    if (done_.load(std::memory_order_acquire) != 0) return;
    std::lock_guard<Mutex> l(m_);
    if (done_.load(std::memory_order_relaxed) == 0) {
      std::forward<F>(f)();
      done_.store(1, std::memory_order_release);
    }
  }

 private:
  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

// A condition variable on a Mutex. signal wakes the longest waiter.
class Cond {
 public:
  explicit Cond(Mutex& l);
  ~Cond();
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  // Unlocks the mutex, waits for signal or broadcast, locks it again.
  void wait();
  void signal();
  void broadcast();
  Mutex& mutex() { return l_; }

 private:
  Mutex& l_;
  // The runtime's notify list (sema.cpp), built in place.
  alignas(8) unsigned char notify_[40];
};

}  // namespace goro
