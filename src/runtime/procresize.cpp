// procresize.cpp — stop-the-world (preemptall, gcstopm), start-the-world
// and procresize: what maxprocs(n) runs to change the number of Ps.
// Invariants: Ps are created, destroyed or resized only while the world is
// stopped (every P _Pgcstop); callers hold sched.worldsema. Mirrors
// proc.go's stopTheWorldWithSema/startTheWorldWithSema/procresize.

#include <stdexcept>
#include <string>
#include <vector>

#include "foreign.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "sema.hpp"
#include "time.hpp"

namespace goro::runtime {

// allpslot: the P in allp's slot i, made on first use; a P that died in a
// shrink is brought back as it is (its queues were emptied then). The one
// way a P is made.
P* allpslot(std::int32_t i) {
  P* pp = allp.slot(static_cast<std::size_t>(i));
  if (pp == nullptr) {
    pp = new P;
    pp->id = i;
    allp.set_slot(static_cast<std::size_t>(i), pp);
  }
  return pp;
}

// preemptall: ask the goroutine running on every P to stop: at its next
// preemption point, or asynchronously (preemptone).
void preemptall() {
  for (P* pp : allp) {
    if (pp->status.load(std::memory_order_relaxed) == _Prunning) preemptone(pp);
  }
}

// gcstopm: stop the current M for stop-the-world; it sleeps (stopm) until
// the world starts again.
void gcstopm() {
  M* mp = getg()->m;
  if (mp->spinning()) dropSpinning(mp);
  P* pp = releasep();
  sched.lock.lock();
  setPstatus(pp, _Pidle, _Pgcstop);
  pstopped_locked(pp);
  sched.lock.unlock();
  stopm();
}

namespace {

// P.destroy: pp leaves (procresize shrinks). Its goroutines go to the
// global queue, its timers to `to`, its free Gs to the global list.
void pdestroy(P* pp, P* to, std::vector<HeapTimer*>& dropped) {
  GQueue q;
  std::int32_t n = 0;
  if (G* next = pp->runq.owner().takeRunnext()) {
    q.pushBack(next);
    n++;
  }
  bool inherit = false;
  while (G* gp = pp->runq.owner().runqget(inherit)) {
    q.pushBack(gp);
    n++;
  }
  // To the head of the global queue, in order: they were runnable first.
  if (n > 0) {
    q.pushBackAll(sched.runq);
    sched.runq = q;
    sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  moveTimers(pp, to, dropped);
  gfpurge(pp);
  setPstatus(pp, _Pgcstop, _Pdead);
}

// procresize: change the number of Ps to nprocs, with the world stopped
// and sched.lock held. Returns the Ps with local work (linked by link),
// which need an M; the others go idle. The current M keeps its P if it
// survives, else takes allp[0]; a plain thread (no M) takes none.
P* procresize(std::int32_t nprocs, std::vector<HeapTimer*>& dropped) {
  std::int32_t old = gomaxprocs.load(std::memory_order_relaxed);
  if (nprocs < 1 || nprocs > detail::kMaxProcs) detail::fatal("procresize: invalid arg");
  // Grow: new Ps (or dead ones brought back) start stopped.
  for (std::int32_t i = old; i < nprocs; i++) {
    P* pp = allpslot(i);
    if (pp->status.load(std::memory_order_relaxed) == _Pdead) setPstatus(pp, _Pdead, _Pgcstop);
  }
  G* gp = getg();
  M* mp = gp != nullptr ? gp->m : nullptr;
  P* cur = mp != nullptr ? mp->p : nullptr;
  if (mp == nullptr) {
    // A plain thread: every P is someone else's to run.
  } else if (cur != nullptr && cur->id < nprocs) {
    // Continue to use the current P.
    setPstatus(cur, _Pgcstop, _Prunning);
  } else {
    // Release the current P and acquire allp[0].
    if (cur != nullptr) {
      cur->m = nullptr;
      mp->p = nullptr;
    }
    P* p0 = allp[0];
    p0->m = nullptr;
    setPstatus(p0, _Pgcstop, _Pidle);
    acquirep(p0);
    cur = p0;
  }
  // Shrink: the Ps beyond nprocs give everything to the current P (or the
  // first) and the global queue.
  for (std::int32_t i = nprocs; i < old; i++) {
    pdestroy(allp[static_cast<std::size_t>(i)], cur != nullptr ? cur : allp[0], dropped);
  }
  allp.set_size(static_cast<std::size_t>(nprocs));
  gomaxprocs.store(nprocs, std::memory_order_seq_cst);
  stealOrder.reset(static_cast<std::uint32_t>(nprocs));
  idlepMask.reset();
  P* runnablePs = nullptr;
  for (std::int32_t i = nprocs - 1; i >= 0; i--) {
    P* pp = allp[static_cast<std::size_t>(i)];
    if (pp == cur) continue;
    setPstatus(pp, _Pgcstop, _Pidle);
    pp->m.store(nullptr, std::memory_order_relaxed);
    if (runqempty(pp->runq)) {
      pidleput(pp);
    } else {
      pp->link = runnablePs;
      runnablePs = pp;
    }
  }
  return runnablePs;
}

}  // namespace

void stopTheWorld() {
  G* gp = getg();
  sched.lock.lock();
  sched.stopwait = gomaxprocs.load(std::memory_order_relaxed);
  sched.gcwaiting.store(true, std::memory_order_seq_cst);
  preemptall();
  // Stop current P (a plain thread has none).
  if (gp != nullptr) {
    setPstatus(gp->m->p, _Prunning, _Pgcstop);
    sched.stopwait--;
  }
  // Try to retake all P's in Psyscall status. seq_cst: with the gcwaiting
  // store above, the other half of entersyscall's store of _Psyscall and
  // load of gcwaiting (one of the two must see the other).
  for (P* pp : allp) {
    if (casPstatus(pp, _Psyscall, _Pgcstop, std::memory_order_seq_cst)) {
      pp->syscalltick.inc();
      sched.stopwait--;
    }
  }
  // Stop idle P's.
  while (P* pp = pidleget()) {
    setPstatus(pp, _Pidle, _Pgcstop);
    sched.stopwait--;
  }
  bool wait = sched.stopwait > 0;
  sched.lock.unlock();
  // Wait for remaining P's to stop voluntarily. main returning ends the
  // wait: the Ms leave instead of stopping (Go's exit ends the process).
  if (wait) {
    for (;;) {
      if (sched.exiting.load(std::memory_order_acquire)) return;
      // Wait for 100us, then try to re-preempt in case of any races.
      if (sched.stopnote.tsleep(std::int64_t{100} * 1000)) {
        sched.stopnote.clear();
        break;
      }
      preemptall();
    }
  }
  if (sched.exiting.load(std::memory_order_acquire)) return;
  if (sched.stopwait != 0) detail::fatal("stopTheWorld: not stopped");
  for (P* pp : allp) {
    if (pp->status.load(std::memory_order_relaxed) != _Pgcstop) detail::fatal("stopTheWorld: not stopped");
  }
}

void startTheWorld(std::int32_t procs) {
  std::vector<HeapTimer*> dropped;
  sched.lock.lock();
  P* p1 = procresize(procs > 0 ? procs : gomaxprocs.load(std::memory_order_relaxed), dropped);
  sched.gcwaiting.store(false, std::memory_order_seq_cst);
  if (sched.sysmonwait) sysmonwake_locked();
  sched.lock.unlock();
  while (p1 != nullptr) {
    P* pp = p1;
    p1 = p1->link;
    startm(pp, false);
  }
  // Wakeup an additional proc in case we have excessive runnable
  // goroutines in local queues or in the global queue.
  wakep();
  timersRelease(dropped);
}

}  // namespace goro::runtime

namespace goro {

using namespace runtime;

int maxprocs(int n) {
  if (n > detail::kMaxProcs) {
    throw std::invalid_argument("goro::maxprocs: n = " + std::to_string(n) + " exceeds the limit of " +
                                std::to_string(detail::kMaxProcs));
  }
  // From a plain thread too: the running runtime's value, which the
  // thread may change; the run cannot end under it meanwhile (ForeignCall).
  G* gp = getg();
  ForeignCall fc;
  if (!fc.ok()) {
    // No runtime: what run() would choose.
    int procs = resolve_procs(Options{});
    if (n > 0) throw std::logic_error("goro::maxprocs: no goro runtime is running; set Options::maxprocs");
    return procs;
  }
  int cur = gomaxprocs.load();
  if (n <= 0 || n == cur) return cur;
  // Stop the world, resize, start it again. worldsema parks a second
  // caller (a futex would hold its P, which the first one waits for).
  semacquire(&sched.worldsema, false, WaitReason::semacquire);
  cur = gomaxprocs.load();
  stopTheWorld();
  if (sched.exiting.load(std::memory_order_acquire)) {
    // main returned meanwhile: the world is not restarted, the run ends,
    // and a goroutine leaves its M at this scheduling point, through the
    // scheduler, with its P running again (a locked M releases it there).
    semrelease(&sched.worldsema, false);
    if (gp != nullptr) {
      setPstatus(gp->m->p, _Pgcstop, _Prunning);
      mcall(&gosched_m);
    }
    return cur;
  }
  startTheWorld(n);
  semrelease(&sched.worldsema, false);
  return cur;
}

}  // namespace goro
