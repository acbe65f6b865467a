// goro/sync/waitgroup.hpp — sync.WaitGroup (Go's sync/waitgroup.go).
#pragma once

#include <atomic>
#include <cstdint>

namespace goro {

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

}  // namespace goro
