// idle.cpp — idle Ps and Ms, and spinning: pidleput/pidleget, mput/mget,
// startm, wakep, stopm, m0retire, resetspinning.
// Invariants: the idle lists change under sched.lock; at most one M spins
// per busy P (nmspinning), and an M that stops spinning re-checks every
// queue after dropping nmspinning, so a wakep that saw it spinning is never
// lost. Every other M that idles a P re-checks the global queue
// (findRunnable, handoffp). A G queued on a running P whose wakep found a
// spinner that had already looked, or one that startm never started, waits
// for that P's next scheduling point or for the M sysmon wakes when the
// slice is over (retake). tests/model/spinning.pml checks all of it.
// Mirrors the "Worker thread parking/unparking" part of proc.go.

#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {

// pidleput: put pp on the idle list. sched.lock must be held.
void pidleput(P* pp) {
  if (!runqempty(pp->runq)) detail::fatal("pidleput: P has non-empty run queue");
  idlepMask.set(pp->id);
  pp->link = sched.pidle;
  sched.pidle = pp;
  sched.npidle.fetch_add(1, std::memory_order_seq_cst);
}

P* pidleget() {
  P* pp = sched.pidle;
  if (pp != nullptr) {
    idlepMask.clear(pp->id);
    sched.pidle = pp->link;
    sched.npidle.fetch_sub(1, std::memory_order_seq_cst);
    // A P goes to work: sysmon, asleep while every P was idle, watches again.
    if (sched.sysmonwait) sysmonwake_locked();
  }
  return pp;
}

// mput/mget: the idle M list. sched.lock must be held.
M* mget() {
  M* mp = sched.midle;
  if (mp != nullptr) {
    sched.midle = mp->schedlink;
    sched.nmidle--;
  }
  return mp;
}

namespace {

void mput(M* mp) {
  mp->schedlink = sched.midle;
  sched.midle = mp;
  sched.nmidle++;
  checkdead();
}

// The caller of startm counted the new M in nmspinning already.
void mspinning() { setMstatus(getg()->m, _Mrunning, _Mspinning); }

}  // namespace

// startm: schedule some M to run pp (an idle P if pp is nullptr; if there
// is none, do nothing). With spinning, the caller incremented nmspinning and
// the M starts spinning; if no P is available the increment is undone.
void startm(P* pp, bool spinning) {
  sched.lock.lock();
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    if (spinning) dropSpinning(nullptr);
    return;
  }
  if (pp == nullptr) {
    pp = pidleget();
    if (pp == nullptr) {
      sched.lock.unlock();
      // The caller incremented nmspinning, but there are no idle Ps, so
      // undo it and give up. Work that an M saw the increment for, and so
      // declined to spin, is found by sysmon's retake in a slice at worst.
      if (spinning) dropSpinning(nullptr);
      return;
    }
  }
  M* nmp = mget();
  if (nmp == nullptr) {
    M* mp = allocm_locked(spinning ? &mspinning : nullptr, pp);
    sched.lock.unlock();
    newm(mp);
    return;
  }
  sched.lock.unlock();
  if (nmp->nextp != nullptr) detail::fatal("startm: m has p");
  if (spinning && !runqempty(pp->runq)) detail::fatal("startm: p has runnable gs");
  // The caller incremented nmspinning, so the woken M is spinning.
  setMstatus(nmp, _Midle, spinning ? _Mspinning : _Mrunning);
  nmp->nextp = pp;
  nmp->park.wakeup();
}

// wakep: try to add one more spinning M to run Gs, if a P is idle and no M
// is spinning already (a spinning M that finds work wakes the next one).
void wakep() {
  if (sched.npidle.load(std::memory_order_seq_cst) == 0) return;
  // Be conservative about spinning threads: at most one at a time here.
  std::int32_t zero = 0;
  if (sched.nmspinning.load(std::memory_order_seq_cst) != 0 ||
      !sched.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) {
    return;
  }
  startm(nullptr, true);
}

// mPark: sleep on the M's note until startm or startlockedm hands it a P
// in nextp, and take that P; or until the run ends (then no P is taken).
// The waker has set the M's state.
void mPark(M* mp) {
  mp->park.sleep();
  mp->park.clear();
  if (sched.exiting.load(std::memory_order_acquire)) return;
  acquirep(mp->nextp);
  mp->nextp = nullptr;
}

// stopm: put the M on the idle list and sleep until startm hands it a P
// (or the runtime exits).
void stopm() {
  M* mp = getg()->m;
  if (*mlocksp() != 0) detail::fatal("stopm holding locks");
  if (mp->p != nullptr) detail::fatal("stopm holding p");
  if (mp->spinning()) detail::fatal("stopm spinning");
  // Before going on the idle list: a startm must not find this M busy.
  scavengegstacks();
  sched.lock.lock();
  // Checked under the lock: shutdown sets exiting, then drains midle under
  // the lock, so an M either sees exiting here or is woken by the drain.
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  setMstatus(mp, _Mrunning, _Midle);
  mput(mp);
  sched.lock.unlock();
  mPark(mp);
}

// m0retire: m0 runs only the main goroutine (Go's m0 runs any). run()
// returns on m0's thread once main returns; had m0 taken another goroutine
// by then, run() would wait for that one: for its system call to end, or
// for its next scheduling point. So once main has left m0 (parked,
// yielded, preempted, or back from a system call with no P free), m0 gives
// its P away and sleeps until the run ends, and main goes on on whichever
// M picks it up. (Main locked to its thread keeps m0, as in Go.) Counted as
// a system M, not a running one, for checkdead.
void m0retire() {
  M* mp = getg()->m;
  if (mp->spinning()) dropSpinning(mp);
  if (mp->p != nullptr) handoffp(releasep());
  sched.lock.lock();
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  setMstatus(mp, _Mrunning, _Mretired);
  sched.nmsys++;
  checkdead();
  sched.lock.unlock();
  mp->park.sleep();  // main_returned wakes it
  mp->park.clear();
}

// becomeSpinning/dropSpinning: the one way an M starts and stops spinning
// (looking for work with a P and none of its own), counted in nmspinning so
// that wakep starts no other M meanwhile. The decrement is a seq_cst RMW:
// the full fence findRunnable's delicate dance relies on. dropSpinning
// (nullptr) undoes the increment a waker made for an M that never started.
// A negative count, or dropping an M that is not spinning, is fatal.
void becomeSpinning(M* mp) {
  setMstatus(mp, _Mrunning, _Mspinning);
  sched.nmspinning.fetch_add(1, std::memory_order_seq_cst);
}

void dropSpinning(M* mp) {
  if (mp != nullptr) setMstatus(mp, _Mspinning, _Mrunning);
  if (sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) - 1 < 0) detail::fatal("negative nmspinning");
}

// resetspinning: the M found work while spinning. It stops spinning and,
// since the work may be the first of several, wakes another spinning M.
void resetspinning() {
  M* mp = getg()->m;
  dropSpinning(mp);
  wakep();
}

}  // namespace goro::runtime
