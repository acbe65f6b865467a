// goro/sync/mutex.hpp — sync.Mutex (Go's sync/mutex.go): a lock that parks
// goroutines (and blocks plain threads) on the runtime's semaphores.
// Meets the standard Lockable requirements.
#pragma once

#include <atomic>
#include <cstdint>

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

}  // namespace goro
