// mstart.cpp — Ms: allocm, newm (a thread per M), minit, mstart, mexit,
// and the thread limit (checkmcount).
// Invariants: an M is linked into allm, under sched.lock, before its thread
// starts; an M's thread leaves only through mexit, and only at the end of
// the run (or, locked to an exiting goroutine, at once). Mirrors proc.go's
// allocm/newm/mstart/mexit.

#include <pthread.h>

#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"

namespace goro::runtime {

// checkmcount: one more thread must stay within the limit (Go's
// SetMaxThreads, $GORO_MAXTHREADS). sched.lock must be held.
void checkmcount() {
  if (sched.mnext - sched.nmfreed + 1 > sched.maxmcount) {
    printerr("runtime: program exceeds ");
    printerr_u64(static_cast<unsigned long long>(sched.maxmcount));
    printerr("-thread limit\n");
    detail::fatal("thread exhaustion");
  }
}

// Ms alive (Go's mcount).
std::int32_t mcount() { return static_cast<std::int32_t>(sched.mnext) - sched.nmfreed; }

// A new M, counted and linked into allm. sched.lock must be held.
M* allocm_locked(void (*fn)(), P* pp) {
  checkmcount();
  M* mp = new M;
  mp->id = sched.mnext++;
  mp->g0 = new G;
  mp->g0->m = mp;
  mp->nextp = pp;
  mp->mstartfn = fn;
  mp->fastrand = static_cast<std::uint64_t>(nanotime()) * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(mp->id);
  mp->alllink = allm;
  allm = mp;
  return mp;
}

// The M leaves: every M notices sched.exiting here and returns to the
// context saved when it started (mstart / run).
Gobuf* mexit() {
  M* mp = getg()->m;
  if (mp->spinning()) dropSpinning(mp);
  setMstatus(mp, _Mrunning, _Mexited);
  san::handle_no_return();
  return &mp->exitbuf;
}

// minit: per-thread set-up on a new M (signal stack and mask, sanitizer
// fiber).
void minit(M* mp) {
  G* g0 = mp->g0;
  setg(g0);
  mp->eh = ehglobals_of_thread();
  mp->locks = mlocksp();
  mp->procid.store(gettid_(), std::memory_order_relaxed);
  mp->cpuclock.store(thread_cpuclock(), std::memory_order_relaxed);
  thread_stack_bounds(&g0->stack.lo, &g0->stack.hi);
  g0->sched.fiber = san::tsan_current_fiber();
  mp->exitbuf.fiber = g0->sched.fiber;
  mp->altstack = signal_altstack_install();
  minitSignalMask(mp);
}

// mstart1: on g0, below the context saved in exitbuf. Records where mcall
// puts g0's frames from now on, then schedules forever.
void mstart1(void* arg) {
  M* mp = static_cast<M*>(arg);
  G* g0 = mp->g0;
  // Everything below exitbuf is free for g0's frames: schedule never
  // returns here, and mexit leaves through exitbuf.
  g0->sched.sp = (mp->exitbuf.sp - 256) & ~std::uintptr_t{15};
  if (mp->mstartfn != nullptr) mp->mstartfn();
  if (mp->is_m0) {
    // main starts on the calling thread, straight away: it is in no run
    // queue, where another M could steal it first.
    goro_gogo(execute(maingp, false));
  }
  acquirep(mp->nextp);
  mp->nextp = nullptr;
  goro_gogo(schedule());
}

namespace {

void* mstart_thread(void* arg) {
  M* mp = static_cast<M*>(arg);
  minit(mp);
  goro_gosave(&mp->exitbuf, &mstart1, mp);
  // The runtime is exiting. teardown frees the M once it joined the
  // thread; an abandoned one (M::insyscall) is the thread's to free.
  signal_altstack_remove(mp->altstack);
  mp->altstack = nullptr;
  setg(nullptr);
  if (mp->insyscall.load(std::memory_order_acquire) == M::kAbandoned) {
    delete mp->g0;
    delete mp;
  }
  return nullptr;
}

}  // namespace

// allocm + newosproc: a new M with its own thread, which starts by running
// fn and then schedules with pp. The M was already counted (mReserveID) and
// linked into allm under sched.lock.
void newm(M* mp) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, san::kAsan || san::kTsan ? 8 << 20 : 1 << 20);
  int err = pthread_create(&mp->thread, &attr, &mstart_thread, mp);
  pthread_attr_destroy(&attr);
  if (err != 0) detail::fatal("newosproc: pthread_create failed");
  mp->thread_created.store(true, std::memory_order_release);
}

}  // namespace goro::runtime
