// syscall.cpp — system calls: entersyscall, exitsyscall (the fast path
// that takes back the P, and exitsyscall0 on g0), handoffp, and the same
// for calls nobody announced (entersyscallUnannounced, from the preemption
// signal's handler; exitsyscallUnannounced).
// Invariants: a G in _Gsyscall runs no runtime code that needs a P; its P
// stays _Psyscall until retake or exitsyscall claims it by CAS; at shutdown
// the M of a goroutine still in a call is abandoned (M::insyscall) and
// never runs goroutine code again. Mirrors proc.go's entersyscall family.

#include "netpoll.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"
#include "stack.hpp"
#include "time.hpp"

namespace goro::runtime {

// pstopped_locked: pp, already _Pgcstop, is counted as stopped for
// stop-the-world; the last P to stop wakes the stopper. sched.lock held.
void pstopped_locked(P* pp) {
  if (pp->status.load(std::memory_order_relaxed) != _Pgcstop) detail::fatal("pstopped: P is not stopped");
  if (--sched.stopwait == 0) sched.stopnote.wakeup();
}

// handoffp: hand off pp from an M that is blocked in a system call, is
// locked to a waiting G, or is exiting: start an M on it if there is work,
// else put it on the idle list. Mirrors Go's conditions.
void handoffp(P* pp) {
  // If it has local work, start it straight away.
  if (!runqempty(pp->runq) || sched.runqsize.load(std::memory_order_relaxed) != 0) {
    startm(pp, false);
    return;
  }
  // No local work: if no M is spinning and no P is idle, our help may be
  // needed by work that appears soon.
  std::int32_t zero = 0;
  if (sched.nmspinning.load() + sched.npidle.load() == 0 && sched.nmspinning.compare_exchange_strong(zero, 1)) {
    startm(pp, true);
    return;
  }
  sched.lock.lock();
  if (sched.gcwaiting.load(std::memory_order_relaxed)) {
    setPstatus(pp, _Pidle, _Pgcstop);
    pstopped_locked(pp);
    sched.lock.unlock();
    return;
  }
  if (sched.runqsize.load(std::memory_order_relaxed) != 0) {
    sched.lock.unlock();
    startm(pp, false);
    return;
  }
  // The last running P, with timers pending or goroutines waiting on
  // descriptors, and nobody sleeping until them: an M must (Go: "nobody
  // is polling network").
  if (sched.npidle.load() == gomaxprocs.load(std::memory_order_relaxed) - 1 &&
      !sched.polling.load(std::memory_order_seq_cst) &&
      (timeSleepUntil() != 0 || (netpollinited() && netpollAnyWaiters()))) {
    sched.lock.unlock();
    startm(pp, false);
    return;
  }
  std::int64_t when = pp->timers.timer0When.load(std::memory_order_acquire);
  gfpurge(pp);
  pidleput(pp);
  sched.lock.unlock();
  if (when != 0) wakeNetPoller(when);
  // As a non-spinning M that idles its P in findRunnable: the global queue
  // once more (a plain thread's G); a G queued on a running P is left to
  // that P, or to sysmon's retake once its slice is over.
  if (sched.runqsize.load(std::memory_order_seq_cst) != 0) wakep();
}

namespace {

// exitsyscallfast: back from a system call, take the old P if sysmon left
// it, else an idle one.
bool exitsyscallfast(P* oldp) {
  if (oldp != nullptr && oldp->status.load(std::memory_order_relaxed) == _Psyscall) {
    if (casPstatus(oldp, _Psyscall, _Pidle)) {
      acquirep(oldp);
      return true;
    }
  }
  if (sched.npidle.load(std::memory_order_relaxed) > 0) {
    sched.lock.lock();
    P* pp = sched.gcwaiting.load(std::memory_order_relaxed) ? nullptr : pidleget();
    sched.lock.unlock();
    if (pp != nullptr) {
      acquirep(pp);
      return true;
    }
  }
  return false;
}

// exitsyscall0: on g0, no P was free: gp goes to the global queue (or runs
// at once on an idle P that appeared) and the M stops.
Gobuf* exitsyscall0(G* gp) {
  M* mp = getg()->m;
  casgstatus(gp, _Gsyscall, _Grunnable);
  dropg();
  sched.lock.lock();
  P* pp = sched.gcwaiting.load(std::memory_order_relaxed) ? nullptr : pidleget();
  if (pp == nullptr) globrunqput(gp);
  sched.lock.unlock();
  if (pp != nullptr) {
    acquirep(pp);
    return execute(gp, false);
  }
  if (mp->lockedg != nullptr) {
    // Wait until another M schedules gp, and hands us its P.
    stoplockedm();
    if (sched.exiting.load(std::memory_order_acquire)) return mexit();
    return execute(gp, false);
  }
  if (!mp->is_m0) stopm();  // m0 retires in schedule instead
  return schedule();
}

}  // namespace

// The M's goroutine is about to run the system call's body: from here to
// exitsyscall the thread touches nothing of the runtime's but its own M and
// G, so teardown may abandon it (M::insyscall). Release: teardown reads the
// M's curg once it sees the flag.
void insyscall(M* mp) { mp->insyscall.store(M::kInSyscall, std::memory_order_release); }

namespace {

// exitsyscall_leave_m: on g0, back from a system call after the run ended:
// the goroutine never runs again, and the M leaves (to mstart_thread, which
// returns). An abandoned M (teardown did not wait for it, see M::insyscall)
// first frees the goroutine it kept, whose stack teardown left mapped.
Gobuf* exitsyscall_leave_m(G* gp) {
  M* mp = getg()->m;
  dropg();
  if (mp->insyscall.load(std::memory_order_acquire) == M::kAbandoned) {
    san::unpoison(gp->stack.lo, gp->stack.hi - gp->stack.lo);
    stackunmap(gp->stack);
    if (san::kTsan) san::tsan_destroy_fiber(gp->sched.fiber);
    delete gp;  // (its sleep timer, if any, teardown freed)
  }
  san::handle_no_return();
  return &mp->exitbuf;
}

}  // namespace

// entersyscall's P reservation: gp goes _Gsyscall and its P _Psyscall,
// kept for a quick return; sysmon hands it off if the call lasts.
void reservep(G* gp, M* mp) {
  P* pp = mp->p;
  casgstatus(gp, _Grunning, _Gsyscall);
  pp->m.store(nullptr, std::memory_order_relaxed);
  mp->oldp = pp;
  mp->p = nullptr;
  setPstatus(pp, _Prunning, _Psyscall, std::memory_order_seq_cst);
  if (sched.gcwaiting.load(std::memory_order_seq_cst)) {
    // Stop-the-world is waiting for this P: give it up now.
    if (casPstatus(pp, _Psyscall, _Pgcstop)) {
      LockGuard l(sched.lock);
      pstopped_locked(pp);
    }
  }
  insyscall(mp);
}

// In the preemption signal's handler, on the thread of a goroutine that
// sysmon found blocked in a call nobody announced (M::unannounced): do
// what entersyscall would have done, so that retake hands the P off. The
// handler checked that the thread holds no runtime lock and has no runtime
// frame on its stack.
void entersyscallUnannounced(G* gp, M* mp, const std::uintptr_t* pcs, int npcs) {
  mp->p->counters.unannouncedBlocks.inc();
  mp->blockedSince = nanotime();
  mp->blockedLook = mp->blockedSince;
  mp->blockedCPU.store(cputime(mp->cpuclock.load(std::memory_order_relaxed)), std::memory_order_relaxed);
  mp->blockedGoid = gp->goid;
  mp->blockReported = false;
  mp->nblockedPCs = npcs;
  for (int i = 0; i < npcs; i++) mp->blockedPCs[i] = pcs[i];
  reservep(gp, mp);
  sched.nunannounced.fetch_add(1, std::memory_order_relaxed);
  mp->unannounced.store(M::kBlocked, std::memory_order_release);
}

// Back from the call: take a P as exitsyscall does. At the goroutine's next
// call into the runtime (mcall, gopark, yield, a channel wait), or from
// asyncPreempt2 when sysmon saw the thread compute.
void exitsyscallUnannounced() {
  M* mp = getg()->m;
  mp->unannounced.store(M::kNotBlocked, std::memory_order_relaxed);
  // An M the run's end abandoned is off the books (schedinit zeroes the
  // count for the next run): exitsyscall only lets its thread leave.
  if (mp->insyscall.load(std::memory_order_acquire) == M::kInSyscall) {
    sched.nunannounced.fetch_sub(1, std::memory_order_relaxed);
  }
  detail::exitsyscall();
}

void syscallReturnOrFatal(G* gp) {
  if (!unannouncedReturn(gp)) syscall_block_fatal();
  exitsyscallUnannounced();
}

void syscall_block_fatal() {
  detail::fatal(
      "a goroutine blocked inside goro::syscall/goro::blocking (their body must not wait on channels, select, "
      "sleep or sync objects)");
}

}  // namespace goro::runtime

namespace goro {

using namespace runtime;

namespace detail {

bool entersyscall(bool block) noexcept {
  G* gp = getg();
  if (unannouncedReturn(gp)) exitsyscallUnannounced();
  if (gp == nullptr || gp == gp->m->g0 || gp->m->p == nullptr) return false;
  // A preemption point: a goroutine looping over short system calls
  // otherwise keeps its P for ever (Go's syscall path checks gp.preempt).
  preemptcheck();
  M* mp = gp->m;
  P* pp = mp->p;
  if (block) {
    casgstatus(gp, _Grunning, _Gsyscall);
    // entersyscallblock: the call is known to block: hand the P off now.
    mp->oldp = nullptr;
    pp->syscalltick.inc();
    pp->counters.handoffs.inc();
    handoffp(releasep());
    insyscall(mp);
    return true;
  }
  // The P stays reserved for this M (_Psyscall), for a quick return;
  // sysmon hands it off if the call lasts.
  reservep(gp, mp);
  return true;
}

// The body's errno is read on the thread the body ran on, and put back on
// whichever thread resumes the goroutine: the runtime's own calls (futexes,
// locks) may overwrite it, and the goroutine may come back on another
// thread, whose errno is another.
void exitsyscall() noexcept {
  int err = errno_get();
  G* gp = getg();
  M* mp = gp->m;
  // The run ended while the body ran: teardown either abandoned this thread
  // (it did not wait for the call) or waits for it to leave. Either way no
  // goroutine code runs here again. (An abandoned thread touches nothing
  // but its own M, G and stack from here on: another run may be going.)
  std::uint32_t in = M::kInSyscall;
  bool abandoned = !mp->insyscall.compare_exchange_strong(in, M::kNotInSyscall, std::memory_order_acq_rel);
  if (abandoned) {
    // teardown is taking what it needs from the M and the G: wait for it.
    while (mp->insyscall.load(std::memory_order_acquire) != M::kAbandoned) osyield();
  }
  if (abandoned || sched.exiting.load(std::memory_order_acquire)) mcall(&exitsyscall_leave_m, abandoned);
  P* oldp = mp->oldp;
  mp->oldp = nullptr;
  if (exitsyscallfast(oldp)) {
    P* pp = mp->p;
    pp->syscalltick.inc();
    casgstatus(gp, _Gsyscall, _Grunning);
  } else {
    // No P: queue the goroutine and stop this M until it runs again.
    mcall(&exitsyscall0);
  }
  errno_set(err);
}

}  // namespace detail

}  // namespace goro
