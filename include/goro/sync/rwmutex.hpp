// goro/sync/rwmutex.hpp — sync.RWMutex (Go's sync/rwmutex.go). Meets the
// standard Lockable and SharedLockable requirements.
#pragma once

#include <atomic>
#include <cstdint>
#include <goro/sync/mutex.hpp>

namespace goro {

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

}  // namespace goro
