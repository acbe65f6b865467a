// sysmon.cpp — sysmon, the monitor thread without a P: retake (P handoff
// from long system calls, preemption of long time slices), the coarse
// clock, the thread limit and schedtrace.
// Invariants: sysmon holds no P and never blocks on a runtime lock held
// across a goroutine switch; it sleeps (sysmonwait) while every P is idle.
// Mirrors proc.go's sysmon/retake and schedtrace.

#include <pthread.h>

#include <cstdio>
#include <string>

#include "netpoll.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"
#include "time.hpp"

namespace goro::runtime {

namespace {

constexpr std::int64_t kForcePreemptNS = std::int64_t{10} * 1000 * 1000;  // Go's forcePreemptNS
// CPU time a thread must have used since sysmon's last look to count as
// computing rather than blocked (retake).
constexpr std::int64_t kComputingNS = 50 * 1000;
// A thread that used ran ns of CPU in wall ns computes: 50 us at least, and
// a twentieth of the time (a loaded machine shares a core).
bool computed(std::int64_t ran, std::int64_t wall) { return ran > kComputingNS && ran * 20 > wall; }
// How long a thread holding a P must stand still (its CPU clock) for
// sysmon to hand its P off as if it had announced a system call.
constexpr std::int64_t kBlockedNS = std::int64_t{10} * 1000 * 1000;
// How long past a slice's end sysmon wakes to look at it (a futex sleep
// may end a little early).
constexpr std::int64_t kDeadlineSlack = 50 * 1000;
// How long the network may go unpolled before sysmon polls it.
constexpr std::int64_t kNetpollNS = std::int64_t{10} * 1000 * 1000;

}  // namespace

// The time slice: Go's forcePreemptNS, or GORO_DEBUG=forcepreemptns=N (a
// knob for tests that want preemption to land often).
std::int64_t forcePreemptNS = kForcePreemptNS;

std::int32_t debug_schedtrace = 0;  // GORO_DEBUG=schedtrace=MS

bool debug_scheddetail = false;  // GORO_DEBUG=scheddetail=1

std::int32_t debug_blockreport = 0;  // GORO_DEBUG=blockreport=MS

std::int64_t runstarttime = 0;

void sysmonwake_locked() {
  sched.sysmonwait = false;
  sched.sysmonWake.store(1, std::memory_order_seq_cst);
  futexwakeup(&sched.sysmonWake, 1);
}

namespace {

void sysmonsleep(std::int64_t ns) {
  futexsleep(&sched.sysmonWake, 0, ns);
  sched.sysmonWake.store(0, std::memory_order_seq_cst);
}

void incidlelocked(std::int32_t v) {
  LockGuard l(sched.lock);
  sched.nmidlelocked += v;
  if (v > 0) checkdead();
}

// The CPU clock of the thread running pp, read at now: the base the tick
// at the slice's end measures computing from (retake).
void notecputime(P* pp, std::int64_t now) {
  auto& pd = pp->sysmontick;
  M* mp = pp->m.load(std::memory_order_acquire);
  pd.cpum = mp;
  pd.cputime = mp != nullptr ? cputime(mp->cpuclock.load(std::memory_order_relaxed)) : -1;
  pd.cpuwhen = now;
}

// retake: hand off Ps that have sat in a system call, ask goroutines that
// have run for a whole forcePreemptNS slice to yield, and wake an M to
// steal what waits behind them. Returns the number of Ps retaken; overdue
// says a slice is over and its goroutine still runs (the signal found no
// safe point yet, or none was sent); deadline is the earliest end of a
// slice still running (0: none), which sysmon wakes for.
std::uint32_t retake(std::int64_t now, bool& overdue, std::int64_t& deadline) {
  std::uint32_t n = 0;
  auto due = [&](std::int64_t when) {
    if (deadline == 0 || when < deadline) deadline = when;
  };
  for (P* pp : allp) {
    auto& pd = pp->sysmontick;
    std::uint32_t s = pp->status.load(std::memory_order_acquire);
    bool sysretake = false;
    if (s == _Prunning || s == _Psyscall) {
      // Preempt G if it's running for too long.
      std::uint32_t t = pp->schedtick.get();
      if (pd.schedtick != t) {
        pd.schedtick = t;
        pd.schedwhen = now;
        if (s == _Prunning) due(now + forcePreemptNS);
      } else if (pd.schedwhen + forcePreemptNS > now) {
        if (s == _Prunning) {
          due(pd.schedwhen + forcePreemptNS);
          // A slice that outlived a sysmon tick: its thread's CPU clock
          // now, so that the tick at its end can tell a computing thread
          // (signal it) from a blocked one at once. (Short slices, the
          // common case, cost no clock read.)
          if (pd.cpum != pp->m.load(std::memory_order_relaxed) || pd.cpuwhen < pd.schedwhen) notecputime(pp, now);
        }
      } else {
        pp->preempt.store(true, std::memory_order_relaxed);
        if (s == _Prunning) {
          overdue = true;
          // The signal goes only to a thread that has computed since the
          // last look (for 50 us, and a twentieth of the time: a loaded
          // machine shares a core): one blocked in the kernel (a read
          // nobody announced with goro::syscall) would have its call
          // interrupted, and poll, nanosleep and the like return EINTR
          // whatever SA_RESTART says. (Handling a signal costs ~20 us of
          // CPU: counting any movement would keep signalling a blocked
          // thread for ever.) The first overdue tick only looks.
          M* mp = pp->m.load(std::memory_order_acquire);
          std::int64_t cpu = mp != nullptr ? cputime(mp->cpuclock.load(std::memory_order_relaxed)) : -1;
          std::int64_t ran = cpu - pd.cputime;
          bool seen = mp != nullptr && mp == pd.cpum && pd.cputime >= 0 && cpu >= 0;
          bool computing = seen && computed(ran, now - pd.cpuwhen);
          // Standing still: blocked in the kernel (or waiting for a CPU;
          // the handler tells which) in a call nobody announced. After
          // kBlockedNS its P is handed off (M::unannounced).
          bool still = seen && ran <= kComputingNS;
          if (!still) {
            pd.stillSince = 0;
            pd.stillAsks = 0;
          } else if (pd.stillSince == 0) {
            pd.stillSince = pd.cpuwhen;
          }
          pd.cpum = mp;
          pd.cputime = cpu;
          pd.cpuwhen = now;
          if (computing) preemptone(pp);
          // Not under a sanitizer: the handoff runs the runtime's
          // (instrumented) code in a signal handler the sanitizer does not
          // know about, on a thread that may be blocked inside the
          // sanitizer itself.
          if (!san::kTsan && !san::kAsan && still && now - pd.stillSince >= kBlockedNS) {
            // If the handler finds no way to hand the P off (a runtime
            // frame on the stack, or none it can rule out), it is asked
            // again after 10, 20, 40... ms, up to 640: each ask interrupts
            // the call once.
            pd.stillSince = now + (kBlockedNS << (pd.stillAsks < 6 ? pd.stillAsks : 6)) - kBlockedNS;
            pd.stillAsks++;
            std::uint32_t no = M::kNotBlocked;
            if (mp->unannounced.compare_exchange_strong(no, M::kHandoffAsked, std::memory_order_acq_rel)) preemptM(mp);
          }
        }
        // In case of syscall, preemption does not work: retake the P.
        sysretake = true;
        // A goroutine that keeps its P without reaching a scheduling
        // point strands what is queued behind it unless some M steals it:
        // wake one if none is looking (every tick, until the slice ends).
        // This bounds the wait of a G queued while no M was left to look
        // (findRunnable's re-check is only a spinner's) by a slice even
        // when the signal finds no safe point.
        if (s == _Prunning && (!runqempty(pp->runq) || sched.runqsize.load(std::memory_order_seq_cst) != 0)) wakep();
      }
    }
    if (s == _Psyscall) {
      // Retake P from syscall if it's there for more than 1 sysmon tick.
      std::uint32_t t = pp->syscalltick.get();
      if (!sysretake && pd.syscalltick != t) {
        pd.syscalltick = t;
        pd.syscallwhen = now;
        continue;
      }
      // On the one hand we don't want to retake Ps if there is no other
      // work to do, but on the other hand we want to retake them
      // eventually because they can prevent the sysmon thread from deep
      // sleep.
      if (runqempty(pp->runq) && sched.nmspinning.load() + sched.npidle.load() > 0 &&
          pd.syscallwhen + kForcePreemptNS > now) {
        continue;
      }
      // Pretend one more M is running until the P is handed off: the M
      // in the system call may return meanwhile, find no P, go idle and
      // run checkdead while this P is in flight (Go's incidlelocked(-1)).
      incidlelocked(-1);
      if (casPstatus(pp, _Psyscall, _Pidle)) {
        n++;
        pp->syscalltick.inc();
        pp->counters.handoffs.inc();
        handoffp(pp);
      }
      incidlelocked(1);
    }
  }
  return n;
}

// The block report (GORO_DEBUG=blockreport=MS): a goroutine blocked in a
// call nobody announced for MS milliseconds, named, with where it blocked.
void blockreport(M* mp, std::int64_t now) {
  std::string out = "goro: goroutine " + std::to_string(mp->blockedGoid) + " has been blocked for " +
                    std::to_string((now - mp->blockedSince) / 1000000) +
                    " ms in a call goro was not told about (wrap it in goro::syscall or goro::blocking), at:\n";
  for (int i = 0; i < mp->nblockedPCs; i++) out += "  " + symbolize(mp->blockedPCs[i]) + "\n";
  printerr(out.c_str());
}

// Ms whose goroutine sysmon found blocked in a call nobody announced
// (M::kBlocked): one computing again is signalled to take a P back
// (asyncPreempt2); one blocked long enough is reported.
void watchUnannounced(std::int64_t now) {
  LockGuard l(sched.lock);
  for (M* mp = allm; mp != nullptr; mp = mp->alllink) {
    if (mp->unannounced.load(std::memory_order_acquire) != M::kBlocked) continue;
    // Computing again, by retake's rule (since the last look, not since the
    // handoff: each signal costs its thread some CPU, and counting those
    // up would keep signalling a thread still blocked).
    std::int64_t cpu = cputime(mp->cpuclock.load(std::memory_order_relaxed));
    std::int64_t ran = cpu - mp->blockedCPU.load(std::memory_order_relaxed);
    if (computed(ran, now - mp->blockedLook)) preemptM(mp);
    mp->blockedCPU.store(cpu, std::memory_order_relaxed);
    mp->blockedLook = now;
    if (debug_blockreport > 0 && !mp->blockReported &&
        now - mp->blockedSince >= std::int64_t{debug_blockreport} * 1000 * 1000) {
      mp->blockReported = true;
      blockreport(mp, now);
    }
  }
}

// sysmon: a thread of its own, with no P, that runs while any P works:
// retakes Ps from system calls, asks long-running goroutines to yield,
// prints schedtrace. Sleeps 20 us, doubling after 1 ms without anything
// to do, up to 10 ms; and not at all while every P is idle.
void* sysmon(void*) {
  std::int64_t lasttrace = 0;
  int idle = 0;  // how many cycles in succession we had not woken somebody
  std::int64_t delay = 0;
  bool overdue = false;       // a slice is over and its goroutine still runs
  std::int64_t deadline = 0;  // when the next running slice ends (0: none)
  for (;;) {
    if (idle == 0) {
      delay = 20;  // start with 20us sleep...
    } else if (idle > 50) {
      delay *= 2;  // start doubling the sleep after 1ms...
    }
    if (delay > std::int64_t{10} * 1000) delay = std::int64_t{10} * 1000;  // up to 10ms
    // A shorter slice (forcepreemptns) is looked at twice per slice.
    std::int64_t slice_us = forcePreemptNS / 2000;
    if (delay > slice_us) delay = slice_us < 20 ? 20 : slice_us;
    // A preemption the signal could not make (the goroutine was at an
    // unsafe point: in libc, say) is tried again within a millisecond.
    if (overdue && delay > 1000) delay = 1000;
    // The next slice to end is looked at when it ends, not up to a tick
    // later (beyond Go, whose slices run 10 to 20 ms).
    std::int64_t sleep = delay * 1000;
    if (deadline != 0) {
      std::int64_t until = deadline - nanotime() + kDeadlineSlack;
      if (until < sleep) sleep = until < 20000 ? 20000 : until;
    }
    sysmonsleep(sleep);
    if (sched.exiting.load(std::memory_order_acquire)) break;
    std::int64_t now = nanotime();
    sched.coarsenow.store(now, std::memory_order_relaxed);
    if (debug_schedtrace <= 0 &&
        (sched.gcwaiting.load() || sched.npidle.load() == gomaxprocs.load(std::memory_order_relaxed))) {
      sched.lock.lock();
      if (!sched.exiting.load(std::memory_order_relaxed) &&
          (sched.gcwaiting.load() || sched.npidle.load() == gomaxprocs.load(std::memory_order_relaxed))) {
        // Deep sleep: until the next timer, or until a P goes to work.
        std::int64_t next = timeSleepUntil();
        if (next == 0 || next > now) {
          sched.sysmonwait = true;
          bool deferred = sched.deadlockDeferred.load();
          sched.lock.unlock();
          std::int64_t sleep = next == 0 ? -1 : next - now;
          // A deadlock put off for plain threads is looked at again.
          constexpr std::int64_t kDeadlockRecheck = std::int64_t{100} * 1000 * 1000;
          if (deferred && (sleep < 0 || sleep > kDeadlockRecheck)) sleep = kDeadlockRecheck;
          sysmonsleep(sleep);
          sched.lock.lock();
          sched.sysmonwait = false;
          if (deferred && !sched.exiting.load(std::memory_order_relaxed)) {
            sched.deadlockDeferred.store(false);
            checkdead();
          }
          idle = 0;
          delay = 20;
          deadline = 0;
        }
      }
      sched.lock.unlock();
      if (sched.exiting.load(std::memory_order_acquire)) break;
      now = nanotime();
      sched.coarsenow.store(now, std::memory_order_relaxed);
    }
    // A timer long overdue while nobody sleeps until timers (every M busy
    // with long goroutines, or asleep): start a spinning M to run it.
    std::int64_t next = timeSleepUntil();
    if (next != 0 && next < now - std::int64_t{1000} * 1000 && !sched.polling.load()) wakep();
    // Poll the network if nobody has for 10 ms (Go's sysmon): goroutines
    // whose descriptors are ready while every M is busy still get to run.
    if (netpollinited() && netpollAnyWaiters() && !sched.polling.load(std::memory_order_seq_cst) &&
        sched.lastpoll.load(std::memory_order_relaxed) + kNetpollNS < now) {
      sched.lastpoll.store(now, std::memory_order_relaxed);
      // Pretend one more M runs from the poll until the goroutines it
      // readies are queued and Ms started for them: they are in nobody's
      // queue meanwhile, and no longer counted as waiting on descriptors,
      // so an M going idle must not find nothing to run and nobody
      // running, and report a deadlock.
      incidlelocked(-1);
      GList ready = netpoll(0);
      injectglist(ready);
      incidlelocked(1);
    }
    if (sched.nunannounced.load(std::memory_order_relaxed) > 0) watchUnannounced(now);
    overdue = false;
    deadline = 0;
    if (retake(now, overdue, deadline) != 0) {
      idle = 0;
    } else {
      idle++;
    }
    if (debug_schedtrace > 0 && lasttrace + std::int64_t{debug_schedtrace} * 1000000 <= now) {
      lasttrace = now;
      schedtrace(debug_scheddetail);
    }
  }
  return nullptr;
}

}  // namespace

// newsysmon: start sysmon's thread. It counts against the thread limit,
// but not as a running M for checkdead (nmsys).
void newsysmon() {
  sched.lock.lock();
  checkmcount();
  sched.mnext++;
  sched.nmsys++;
  sched.lock.unlock();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, san::kAsan || san::kTsan ? 8 << 20 : 256 << 10);
  int err = pthread_create(&sched.sysmonthread, &attr, &sysmon, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) detail::fatal("newosproc: pthread_create failed (sysmon)");
  sched.sysmonstarted = true;
}

// schedtrace: Go's SCHED lines. It reads Ms, Ps and Gs that change under
// it, as Go's does: the figures are a snapshot, not a consistent cut.
// needspinning is always 0, kept so the line parses as Go's: Go 1.21 sets
// it when a waker finds no idle P; goro closes that window instead with
// retake's rescue of work queued behind a slice that is over.
__attribute__((no_sanitize("thread"))) void schedtrace(bool detailed) {
  std::int64_t now = nanotime();
  std::string out;
  char buf[256];
  LockGuard l(sched.lock);
  std::snprintf(buf, sizeof buf,
                "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d spinningthreads=%d needspinning=0 "
                "idlethreads=%d runqueue=%d",
                static_cast<long long>((now - runstarttime) / 1000000), gomaxprocs.load(), sched.npidle.load(),
                mcount(), sched.nmspinning.load(), sched.nmidle, sched.runqsize.load());
  out += buf;
  if (detailed) {
    std::snprintf(buf, sizeof buf, " gcwaiting=%s nmidlelocked=%d stopwait=%d sysmonwait=%s\n",
                  sched.gcwaiting.load() ? "true" : "false", sched.nmidlelocked, sched.stopwait,
                  sched.sysmonwait ? "true" : "false");
    out += buf;
  }
  std::size_t np = allp.size();
  for (std::size_t i = 0; i < np; i++) {
    P* pp = allp[i];
    M* mp = pp->m.load(std::memory_order_relaxed);
    std::uint32_t len = runqlen(pp->runq);
    if (detailed) {
      std::snprintf(buf, sizeof buf,
                    "  P%zu: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d timerslen=%d\n", i,
                    pp->status.load(), pp->schedtick.get(), pp->syscalltick.get(),
                    static_cast<long long>(mp != nullptr ? mp->id : -1), len, pp->gFree.n.load(),
                    pp->timers.len.load());
    } else {
      std::snprintf(buf, sizeof buf, " %s%u%s", i == 0 ? "[" : "", len, i == np - 1 ? "]\n" : "");
    }
    out += buf;
  }
  if (detailed) {
    for (M* mp = allm; mp != nullptr; mp = mp->alllink) {
      P* pp = mp->p;
      G* gp = mp->curg;
      G* lg = mp->lockedg;
      std::snprintf(buf, sizeof buf,
                    "  M%lld: p=%d curg=%lld mallocing=0 throwing=0 preemptoff= locks=%d dying=0 spinning=%s "
                    "blocked=%s lockedg=%lld\n",
                    static_cast<long long>(mp->id), pp != nullptr ? pp->id : -1,
                    gp != nullptr ? static_cast<long long>(gp->goid) : -1LL, mp->locks != nullptr ? *mp->locks : 0,
                    mp->spinning() ? "true" : "false", mp->blocked() ? "true" : "false",
                    lg != nullptr ? static_cast<long long>(lg->goid) : -1LL);
      out += buf;
    }
    LockGuard la(allglock);
    for (G* gp : allgs) {
      M* mp = gp->m;
      M* lm = gp->lockedm;
      std::snprintf(
          buf, sizeof buf, "  G%llu: status=%u(%s) m=%lld lockedm=%lld\n", static_cast<unsigned long long>(gp->goid),
          readgstatus(gp), wait_reason_string(gp->waitreason.load(std::memory_order_relaxed)),
          static_cast<long long>(mp != nullptr ? mp->id : -1), static_cast<long long>(lm != nullptr ? lm->id : -1));
      out += buf;
    }
  }
  printerr(out.c_str());
}

}  // namespace goro::runtime
