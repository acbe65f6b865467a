// goro/sync/once.hpp — sync.Once (Go's sync/once.go), on a Mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <goro/sync/mutex.hpp>
#include <mutex>
#include <utility>

namespace goro {

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

}  // namespace goro
