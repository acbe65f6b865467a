// lockosthread.cpp — LockOSThread: a goroutine wired to its M, the M that
// runs only it (stoplockedm/startlockedm), and the M that exits with it.
// Invariants: a locked M sleeps without a P while its G is not running; it
// is handed the P of whoever readies its G. Mirrors proc.go's
// lockOSThread/stoplockedm/startlockedm.

#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {

// stoplockedm: the M is locked to a G that cannot run now: hand the P off
// and sleep until startlockedm passes one back with the G runnable.
void stoplockedm() {
  M* mp = getg()->m;
  if (mp->lockedg == nullptr || mp->lockedg->lockedm != mp) detail::fatal("stoplockedm: inconsistent locking");
  if (mp->p != nullptr) {
    // Schedule another M to run this P.
    P* pp = releasep();
    handoffp(pp);
  }
  sched.lock.lock();
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  sched.nmidlelocked++;
  // startlockedm may have handed us a P already (its wakeup is then
  // pending on the note, and we do not really sleep).
  if (mp->nextp == nullptr) setMstatus(mp, _Mrunning, _Mlockedidle);
  checkdead();
  sched.lock.unlock();
  mPark(mp);
}

// startlockedm: gp, locked to another M, is runnable: give that M our P
// (and gp) and stop.
void startlockedm(G* gp) {
  M* mp = getg()->m;
  M* lm = gp->lockedm;
  if (lm == mp) detail::fatal("startlockedm: locked to me");
  if (lm->nextp != nullptr) detail::fatal("startlockedm: m has p");
  // Directly hand off the current P to the locked M.
  P* pp = releasep();
  sched.lock.lock();
  bool exiting = sched.exiting.load(std::memory_order_relaxed);
  if (!exiting) {
    sched.nmidlelocked--;
    // lm may not have reached its sleep yet (still _Mrunning).
    if (lm->status.load(std::memory_order_relaxed) == _Mlockedidle) setMstatus(lm, _Mlockedidle, _Mrunning);
    lm->nextp = pp;  // lm runs its lockedg, gp, with it
  }
  sched.lock.unlock();
  if (!exiting) lm->park.wakeup();
  stopm();
  if (mp->p == nullptr && !sched.exiting.load(std::memory_order_acquire)) detail::fatal("startlockedm: no p");
}

// mexitlocked: the M's locked goroutine exited: the thread exits too (the
// run's teardown joins it). m0 cannot: run() returns on it, so it waits,
// wedged, for the end of the run, as Go's m0 does.
Gobuf* mexitlocked() {
  M* mp = getg()->m;
  P* pp = releasep();
  handoffp(pp);
  sched.lock.lock();
  if (mp->is_m0) {
    if (!sched.exiting.load(std::memory_order_relaxed)) {
      sched.nmidlelocked++;  // wedged: not running, for checkdead
      setMstatus(mp, _Mrunning, _Mretired);
      checkdead();
      sched.lock.unlock();
      mp->park.sleep();
      mp->park.clear();
    } else {
      sched.lock.unlock();
    }
    return mexit();
  }
  sched.nmfreed++;
  checkdead();
  sched.lock.unlock();
  return mexit();
}

}  // namespace goro::runtime

namespace goro {

using namespace runtime;

void lock_os_thread() {
  G* gp = getg();
  if (gp == nullptr || gp == gp->m->g0) return;  // a plain thread is its own thread
  M* mp = gp->m;
  if (mp->lockedExt + 1 == 0) detail::fatal("LockOSThread nesting overflow");
  mp->lockedExt++;
  mp->lockedg = gp;
  gp->lockedm = mp;
}

void unlock_os_thread() {
  G* gp = getg();
  if (gp == nullptr || gp == gp->m->g0) return;
  M* mp = gp->m;
  if (mp->lockedExt == 0) return;
  if (--mp->lockedExt == 0) {
    mp->lockedg = nullptr;
    gp->lockedm = nullptr;
  }
}

}  // namespace goro
