// goro/sync/cond.hpp — sync.Cond (Go's sync/cond.go) on a Mutex, with the
// runtime's notify list (src/runtime/sema.cpp) built in its storage.
#pragma once

#include <cstddef>
#include <goro/sync/mutex.hpp>

namespace goro {

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
  // The runtime's notify list (sema.cpp), built in place; its size and
  // alignment are checked against these where it is built (sync.cpp).
  static constexpr std::size_t kNotifyAlign = 8;
  Mutex& l_;
  alignas(kNotifyAlign) unsigned char notify_[40];
};

}  // namespace goro
