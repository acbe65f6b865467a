// ehglobals.hpp — the C++ runtime's per-thread exception state, carried
// with each goroutine. libstdc++ and libc++abi keep the stack of caught
// exceptions (what `throw;` rethrows and std::current_exception returns)
// and the count of exceptions in flight (std::uncaught_exceptions) in a
// thread-local __cxa_eh_globals. A goroutine that parks inside a catch
// block, or while unwinding, may resume on another thread: so every switch
// saves the leaving G's state in the G and installs the entering G's, as
// the thread itself would have had it. Invariant: while a G runs, its
// saved copy is empty; the thread's state is the G's.
// (Go has no such state; this is goro's, on x86-64 Itanium C++ ABI.)
#pragma once

#include <cxxabi.h>

namespace goro::runtime {

// The layout of __cxa_eh_globals on x86-64 (libstdc++ unwind-cxx.h and
// libc++abi cxa_exception.h agree; only ARM EHABI adds a field).
struct EhGlobals {
  void* caughtExceptions = nullptr;
  unsigned int uncaughtExceptions = 0;
};

// The calling thread's state (a stable address per thread).
inline EhGlobals* ehglobals_of_thread() { return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals()); }

// Switching from the G that owns `saved_from` to the one owning `saved_to`
// on the thread whose state is *thread.
inline void ehswitch(EhGlobals* thread, EhGlobals* saved_from, EhGlobals* saved_to) {
  // The common case, nothing caught or in flight on either side: saved_from
  // is empty already (the invariant), so there is nothing to move.
  if ((thread->caughtExceptions == nullptr) & (thread->uncaughtExceptions == 0) &
      (saved_to->caughtExceptions == nullptr) & (saved_to->uncaughtExceptions == 0)) {
    return;
  }
  *saved_from = *thread;
  *thread = *saved_to;
  *saved_to = EhGlobals{};
}

}  // namespace goro::runtime
