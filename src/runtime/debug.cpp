// debug.cpp — goro::debug::stats: the scheduler's counters (Go's
// runtime/metrics /sched/* and the figures schedtrace prints).
// Invariant: a snapshot, not a consistent cut: per-P counters are read
// without stopping their owners; the run cannot end under the read
// (ForeignCall). Mirrors nothing in Go directly (runtime/metrics).

#include "goro/debug.hpp"

#include "foreign.hpp"
#include "proc.hpp"

namespace goro::debug {

Stats stats() {
  using namespace goro::runtime;
  Stats s;
  ForeignCall fc;  // a plain thread: teardown waits before freeing the Ps
  if (!fc.ok()) return s;
  s.goroutines = gcount();
  {
    LockGuard l(sched.lock);
    s.threads = static_cast<int>(sched.mnext) - sched.nmfreed;
    s.idle_threads = sched.nmidle;
    s.global_runqueue = sched.runqsize.load();
  }
  s.maxprocs = gomaxprocs.load();
  s.idle_procs = sched.npidle.load();
  s.spinning_threads = sched.nmspinning.load();
  for (P* pp : allp) s.local_runqueues.push_back(static_cast<int>(runqlen(pp->runq)));
  // Counters of Ps removed by maxprocs(n) still count.
  for (std::size_t i = 0; i < allp.created(); i++) {
    P* pp = allp.slot(i);
    s.syscall_handoffs += pp->counters.handoffs.get();
    s.goroutines_created += pp->counters.created.get();
    s.context_switches += pp->counters.switches.get();
    s.steals += pp->counters.steals.get();
    s.stolen_goroutines += pp->counters.stolen.get();
    s.preemptions += pp->counters.preemptions.get();
    s.async_preemptions += pp->counters.asyncPreemptions.get();
    s.unannounced_blocks += pp->counters.unannouncedBlocks.get();
    s.parks += pp->counters.parks.get();
    s.wakeups += pp->counters.wakeups.get();
  }
  return s;
}

}  // namespace goro::debug
