// checkdead.cpp — deadlock detection: "all goroutines are asleep".
// Invariants: called with sched.lock held whenever an M goes idle or
// blocks; reports only when no M runs, no goroutine is runnable, no timer is
// pending and no thread outside the runtime may still wake a goroutine
// (foreign.hpp). Mirrors proc.go's checkdead.

#include "foreign.hpp"
#include "panic.hpp"
#include "time.hpp"

namespace goro::runtime {

namespace {

// Threads that are neither this run's Ms nor plain threads that used it:
// a logger, a sanitizer's, or one just created that has not made its
// first goro call yet.
// nforeign is the count read before the threads are counted: a thread that
// registers in between is then one of the unknown, not lost between the two.
bool unknownThreadsAlive(std::int32_t nforeign) {
  long threads = procthreads();
  return threads < 0 || threads > mcount() + nforeign;
}

// How long a deadlock with threads of unknown intent alive waits before
// it is reported (see checkdead).
constexpr std::int64_t kDeadlockGraceNS = std::int64_t{1000} * 1000 * 1000;

// A deadlock put off for plain threads: sysmon looks again every 100 ms
// (it may be asleep for good already: wake it). sched.lock held.
void deferdeadlock() {
  sched.deadlockDeferred.store(true);
  if (sched.sysmonwait) sysmonwake_locked();
}

// A plain thread may still wake somebody: no deadlock, and the grace for
// unknown threads starts again. sched.lock held.
void deferforforeign() {
  sched.deadlockSince = 0;
  deferdeadlock();
}

}  // namespace

// checkdead: called with sched.lock held whenever an M goes idle. If no M
// is running, no goroutine can ever run again: a deadlock (Go's checkdead),
// unless a timer is pending or a plain thread may still wake somebody.
void checkdead() {
  if (sched.exiting.load(std::memory_order_relaxed) || !sched.checkdeadOn) return;
  std::int32_t run = mcount() - sched.nmidle - sched.nmidlelocked - sched.nmsys;
  if (run > 0) {
    sched.deadlockSince = 0;
    return;
  }
  if (run < 0) {
    printerr("runtime: checkdead: nmidle=");
    printerr_u64(static_cast<unsigned long long>(sched.nmidle));
    printerr(" nmidlelocked=");
    printerr_u64(static_cast<unsigned long long>(sched.nmidlelocked));
    printerr(" mcount=");
    printerr_u64(static_cast<unsigned long long>(mcount()));
    printerr("\n");
    detail::fatal("checkdead: inconsistent counts");
  }
  // A plain thread that used the runtime in this run and is not blocked in
  // it may be about to wake a goroutine; one inside a runtime call may even
  // be half-way through a goready. Threads that never used the runtime do
  // not count (a logger, a test framework's helper): as in Go, the deadlock
  // is reported with them alive.
  // The plain threads' counters move without sched.lock: nforeign is read
  // once, before the threads are counted, and the whole test is made again
  // at the end (a thread may register and call go() while this runs).
  std::int32_t nforeign = foreign_threads();
  if (foreign_may_wake(nforeign)) {
    deferforforeign();
    return;
  }
  std::int32_t grunning = 0;
  {
    LockGuard l(allglock);
    for (G* gp : allgs) {
      std::uint32_t s = readgstatus(gp);
      if (s == _Gwaiting) {
        grunning++;
      } else if (s == _Grunnable || s == _Grunning || s == _Gsyscall) {
        // A plain thread that registered since the look above may be in
        // go(): its goroutine is runnable, and the thread waits for
        // sched.lock to queue it (its call is counted until then).
        if (foreign_may_wake(foreign_threads())) {
          deferforforeign();
          return;
        }
        printerr("runtime: checkdead: find g ");
        printerr_u64(gp->goid);
        printerr(" in status ");
        printerr_u64(s);
        printerr("\n");
        allglock.unlock();
        detail::fatal("checkdead: runnable g");
      }
    }
  }
  if (grunning == 0) {  // possible if main goroutine calls goexit
    sched.lock.unlock();
    detail::fatal("no goroutines (main called runtime.Goexit) - deadlock!");
  }
  // A pending timer will wake somebody.
  for (P* pp : allp) {
    if (pp->timers.len.load(std::memory_order_relaxed) > 0) {
      sched.deadlockSince = 0;
      return;
    }
  }
  // Threads that never used the runtime do not count; but one may have just
  // been created to wake a goroutine and not have made its first call yet
  // (a std::thread started right before main blocks). It gets a grace
  // period: the report comes once the deadlock has lasted that long.
  if (unknownThreadsAlive(nforeign)) {
    std::int64_t now = nanotime();
    if (sched.deadlockSince == 0) sched.deadlockSince = now;
    if (now - sched.deadlockSince < kDeadlockGraceNS) {
      deferdeadlock();
      return;
    }
  }
  if (foreign_may_wake(foreign_threads())) {
    deferforforeign();
    return;
  }
  sched.lock.unlock();
  detail::fatal("all goroutines are asleep - deadlock!");
}

}  // namespace goro::runtime
