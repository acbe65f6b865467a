// proc.cpp — the scheduler's core: G status (casgstatus), context
// switches (mcall, gogo), P wiring (acquirep/releasep), the global run
// queue, schedule, findRunnable and stealWork (queuedWorkNoP, and the one
// M's sleep until the next timer: pollTimers/pollBreak), execute, park/ready,
// yielding and preemption, goexit, main's end, newproc and the public entry
// points for goroutines; the TLS slots of tls.hpp.
// Invariants (DESIGN.md): an M runs goroutine code only with a P; schedule()
// runs on g0; a G leaves the CPU only through mcall; whoever readies work
// enqueues it and then calls wakep, and an M that stops spinning drops
// nmspinning and then re-checks every queue (the delicate dance, idle.cpp).
// Unlike Go, m0 (run()'s caller) runs only the main goroutine (m0retire).
// Mirrors proc.go.

#include "proc.hpp"

#include <sched.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "foreign.hpp"
#include "netpoll.hpp"
#include "panic.hpp"
#include "san.hpp"
#include "stack.hpp"
#include "time.hpp"

extern "C" {
__thread goro::runtime::G* goro_tls_g __attribute__((tls_model("initial-exec"))) = nullptr;
__thread int goro_tls_locks __attribute__((tls_model("initial-exec"))) = 0;
__attribute__((visibility("hidden"))) void (*goro_tsan_switch_hook)(void*, unsigned) =
#ifdef GORO_TSAN
    &__tsan_switch_to_fiber;
#else
    nullptr;
#endif
}

namespace goro::runtime {

Sched sched;

AllP allp;

std::atomic<std::int32_t> gomaxprocs{0};

M* allm = nullptr;

Lock allglock;

std::vector<G*> allgs;

PMask idlepMask;

std::atomic<bool> runtime_active{false};

M* m0 = nullptr;

G* maingp = nullptr;

std::atomic<bool> mainStarted{false};

std::atomic<std::int32_t> allglen{0};

namespace {

// Thrown by goexit(), caught by the goroutine's entry. Deliberately not a
// std::exception, so that `catch (const std::exception&)` lets it through.
struct GoexitUnwind {};

// Global run queue length per P beyond which a spawning goroutine yields.
constexpr std::int32_t kSpawnBacklog = 512;

}  // namespace

std::int64_t coarsetime() { return sched.coarsenow.load(std::memory_order_relaxed); }

// wyrand, per M (Go's fastrand). Threads that are not Ms use a TLS state.
std::uint32_t fastrand() {
  static thread_local std::uint64_t foreign_state =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&foreign_state);
  G* g = getg();
  std::uint64_t& s = g != nullptr ? g->m->fastrand : foreign_state;
  s += 0xa0761d6478bd642full;
  __uint128_t r = static_cast<__uint128_t>(s) * (s ^ 0xe7037ed1a0b428dbull);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(r >> 64) ^ static_cast<std::uint64_t>(r));
}

// Go's gcount: the counts are read without a lock while Gs move between
// the free lists, so the result is a snapshot that may be off by the Gs in
// flight for a moment (clamped at 1), as Go's is.
std::int32_t gcount() {
  std::int32_t n = allglen.load(std::memory_order_relaxed);
  n -= sched.gFree.n.load(std::memory_order_relaxed);
  for (P* pp : allp) n -= pp->gFree.n.load(std::memory_order_relaxed);
  return n < 1 ? 1 : n;
}

namespace {

G* g0_of(M* mp) { return mp->g0; }

// On g0, entered from goro_mcall: finish the sanitizer switch and run the
// M's mcall function.
Gobuf* mcall_on_g0(G* gp) {
  G* g0 = getg();
  san::finish_switch(g0->asan_fake_stack);
  san::handle_no_return();  // frames of earlier visits to g0 are dead
  return g0->m->mcallfn(gp);
}

}  // namespace

namespace {

// mcall's switch to g0, for gp on mp.
[[gnu::always_inline]] inline void mcallSwitch(G* gp, M* mp, McallFn fn, bool dying) {
  G* g0 = g0_of(mp);
  if (gp == g0) detail::fatal("mcall called on g0 (a goroutine operation from a runtime callback)");
  mp->mcallfn = fn;
  ehswitch(mp->eh, &gp->eh, &g0->eh);
  san::start_switch(dying ? nullptr : &gp->asan_fake_stack, g0->stack.lo, g0->stack.hi - g0->stack.lo);
  san::tsan_switch_to(g0->sched.fiber);
  setg(g0);
  goro_mcall(&gp->sched, &g0->sched, &mcall_on_g0, gp);
  san::finish_switch(gp->asan_fake_stack);
}

// mcall's rare cases, out of line so that mcall itself stays a leaf that
// saves no register:
//  - Back from a blocking call nobody announced: take a P first (which may
//    move gp to another M).
//  - A scheduling point of gp's own ends the wiring of an asynchronous
//    preemption (asyncPreempt_m wires it again for the next one), unless
//    asyncPreempt2 is taking a P back for it (keepPin).
[[gnu::noinline]] void mcallSlow(McallFn fn, bool dying) {
  G* gp = getg();
  M* mp = gp->m;
  if (mp->unannounced.load(std::memory_order_relaxed) == M::kBlocked && gp != mp->g0) {
    exitsyscallUnannounced();
    mp = gp->m;
  }
  if (mp->lockedInt != 0 && !mp->keepPin) unlockOSThreadInt(gp, mp);
  mcallSwitch(gp, mp, fn, dying);
}

}  // namespace

// mcall(fn): leave the current goroutine for g0 and run fn(gp) there. fn
// returns the context to switch to. Returns when gp is resumed, possibly on
// another M.
void mcall(McallFn fn, bool dying) {
  G* gp = getg();
  M* mp = gp->m;
  // Both rare, so one test on the way.
  if (mp->lockedInt != 0 || mp->unannounced.load(std::memory_order_relaxed) == M::kBlocked) [[unlikely]] {
    mcallSlow(fn, dying);
    return;
  }
  mcallSwitch(gp, mp, fn, dying);
}

namespace {

// The last step on g0 before gogo to gp: announce the switch and make gp
// the current G.
Gobuf* gogo(G* gp) {
  G* g0 = getg();
  ehswitch(g0->m->eh, &g0->eh, &gp->eh);
  san::start_switch(&g0->asan_fake_stack, gp->stack.lo, gp->stack.hi - gp->stack.lo);
  setg(gp);
  return &gp->sched;
}

}  // namespace

// wirep/acquirep: associate P and the current M.
void acquirep(P* pp) {
  M* mp = getg()->m;
  if (mp->p != nullptr) detail::fatal("wirep: already in go");
  if (pp->m.load(std::memory_order_relaxed) != nullptr || pp->status.load(std::memory_order_relaxed) != _Pidle) {
    detail::fatal("wirep: invalid p state");
  }
  mp->p = pp;
  // Release: sysmon reads the M through pp->m (preemptone).
  pp->m.store(mp, std::memory_order_release);
  setPstatus(pp, _Pidle, _Prunning);
}

// releasep: disassociate P and the current M.
P* releasep() {
  M* mp = getg()->m;
  P* pp = mp->p;
  if (pp == nullptr) detail::fatal("releasep: invalid arg");
  if (pp->m.load(std::memory_order_relaxed) != mp || pp->status.load(std::memory_order_relaxed) != _Prunning) {
    detail::fatal("releasep: invalid p state");
  }
  mp->p = nullptr;
  pp->m.store(nullptr, std::memory_order_relaxed);
  setPstatus(pp, _Prunning, _Pidle);
  return pp;
}

// runqsize is stored relaxed (under the lock). A thread that puts work here
// and then calls wakep pairs with a spinning M that gives up (drops
// nmspinning, then loads runqsize): one must see the other's store. An M
// holding a P does not need that, as it looks at the global queue itself
// before it sleeps (the wakeup only adds parallelism); a thread with no P
// (goready or go() from a plain thread) does, and follows the put with
// runqputNoP's fence.
void globrunqput(G* gp) {
  sched.runq.pushBack(gp);
  sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// runqputNoP: gp, runnable, goes on the global queue from a thread with no P
// (a plain thread, or a goroutine inside a system call), and an M is woken
// for it. Between the put and wakep, a full fence (a seq_cst RMW, which
// TSan understands, unlike atomic_thread_fence): it pairs with a spinning
// M's decrement of nmspinning and re-check of runqsize (findRunnable).
void runqputNoP(G* gp) {
  {
    LockGuard l(sched.lock);
    globrunqput(gp);
  }
  sched.runqsize.fetch_add(0, std::memory_order_seq_cst);
  wakep();
}

namespace {

void globrunqputbatch(GQueue batch, std::int32_t n) {
  sched.runq.pushBackAll(batch);
  sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// runqput on pp's ring; an overflowing half goes to the global queue.
bool runqput(P* pp, G* gp, bool next) {
  return pp->runq.owner().runqput(gp, next, [](GQueue batch, std::uint32_t n) {
    LockGuard l(sched.lock);
    globrunqputbatch(batch, static_cast<std::int32_t>(n));
  });
}

// globrunqget: take a batch from the global queue: a fair share
// (size/gomaxprocs + 1), at most max (if > 0) and half the local ring. One
// G is returned; the rest go on pp's ring.
G* globrunqget(P* pp, std::int32_t max) {
  std::int32_t size = sched.runqsize.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  std::int32_t n = size / gomaxprocs + 1;
  if (n > size) n = size;
  if (max > 0 && n > max) n = max;
  if (n > static_cast<std::int32_t>(kLocalRunQueueSize / 2)) n = kLocalRunQueueSize / 2;
  sched.runqsize.store(size - n, std::memory_order_relaxed);
  G* gp = sched.runq.pop();
  for (n--; n > 0; n--) runqput(pp, sched.runq.pop(), false);
  return gp;
}

void goentry();  // the first frame of every goroutine, defined below

}  // namespace

// Prepare gp's stack so that gogo enters goentry (Go's gostartcall).
void gostart(G* gp, std::uintptr_t top) {
  gp->sched.sp = gostartcall(top, &goentry);
  if (san::kTsan) gp->sched.fiber = san::tsan_create_fiber();
}

namespace {

// queuedWorkNoP: the second half of the delicate dance. After the seq_cst
// RMW that dropped nmspinning, a spinner looks once more at every non-idle
// P's ring (Go's checkRunqsNoP) and at the global queue: unlike Go,
// threads that are not Ms put Gs there (go() and goready from a plain
// thread) and then leave, so no running M is left to find them. Every load
// is seq_cst, so a submitter's store then load of npidle and nmspinning and
// this M's store then loads cannot both miss.
bool queuedWorkNoP() {
  for (P* p2 : allp) {
    if (!idlepMask.read(static_cast<std::uint32_t>(p2->id)) && !runqempty(p2->runq)) return true;
  }
  return sched.runqsize.load(std::memory_order_seq_cst) != 0;
}

// stealWork: try to steal a runnable G from another P, in a random order
// over four passes; runnext is stolen, and other Ps' due timers are run,
// only on the last. now and pollUntil are updated with what the timers
// say; newWork is set when timers made something runnable elsewhere.
G* stealWork(P* pp, std::int64_t& now, std::int64_t& pollUntil, bool& newWork) {
  constexpr int kStealTries = 4;
  newWork = false;
  for (int i = 0; i < kStealTries; i++) {
    bool stealTimersOrRunNextG = i == kStealTries - 1;
    for (RandomEnum e = stealOrder.start(fastrand()); !e.done(); e.next()) {
      if (sched.exiting.load(std::memory_order_relaxed)) return nullptr;
      if (sched.gcwaiting.load(std::memory_order_relaxed)) {
        newWork = true;  // back to the top, to stop
        return nullptr;
      }
      P* p2 = allp[e.position()];
      if (pp == p2) continue;
      // Run p2's due timers: its M may be busy with a long goroutine, or
      // asleep. A timer readies its goroutine onto our P.
      if (stealTimersOrRunNextG && p2->timers.timer0When.load(std::memory_order_relaxed) != 0) {
        bool ran = false;
        std::int64_t w = checkTimers(p2, now, &ran);
        if (w != 0 && (pollUntil == 0 || w < pollUntil)) pollUntil = w;
        if (ran) {
          bool inherit = false;
          if (G* gp = pp->runq.owner().runqget(inherit)) return gp;
          newWork = true;
        }
      }
      // Don't bother to attempt to steal if p2 is idle.
      if (!idlepMask.read(e.position())) {
        std::uint32_t n = 0;
        G* gp = pp->runq.owner().runqsteal(
            p2->runq.stealer(), stealTimersOrRunNextG,
            [p2] { return p2->status.load(std::memory_order_relaxed) == _Prunning; }, &n);
        if (gp != nullptr) {
          pp->counters.steals.inc();
          pp->counters.stolen.inc(n);
          return gp;
        }
      }
    }
  }
  return nullptr;
}

}  // namespace

// pollBreak: wake the M sleeping until the next timer (Go's netpollBreak):
// in netpoll once the netpoller is in use, else on a futex. Sticky: a
// break stays until the next poller starts (pollTimers), so one that lands
// after a sleep ended, or before the next began, still counts.
void pollBreak() {
  if (netpollinited()) netpollBreak();
  if (sched.pollWake.exchange(1, std::memory_order_seq_cst) == 0) futexwakeup(&sched.pollWake, 1);
}

// injectglist: make the goroutines of list (_Gwaiting, readied by netpoll)
// runnable. With no P, all go to the global queue and an M is started for
// each idle P, up to their number; otherwise as many as there are idle Ps
// go to the global queue, with an M started for each such P, and the rest
// to this P's ring (this M runs them). Mirrors Go's injectglist.
void injectglist(GList& list) {
  if (list.empty()) return;
  std::int32_t n = 0;
  for (G* gp = list.head; gp != nullptr; gp = gp->schedlink) {
    casgstatus(gp, _Gwaiting, _Grunnable);
    n++;
  }
  auto startIdle = [](std::int32_t k) {
    for (; k > 0 && sched.npidle.load(std::memory_order_seq_cst) != 0; k--) startm(nullptr, false);
  };
  G* me = getg();
  P* pp = me != nullptr ? me->m->p : nullptr;
  std::int32_t global = pp == nullptr ? n : std::min(n, sched.npidle.load(std::memory_order_seq_cst));
  if (global > 0) {
    LockGuard l(sched.lock);
    for (std::int32_t i = 0; i < global; i++) globrunqput(list.pop());
  }
  startIdle(global);
  if (list.empty()) return;
  while (G* gp = list.pop()) runqput(pp, gp, false);
  // A P may have gone idle since npidle was read: it would sit idle while
  // work waits here (Go 1.21's injectglist ends the same way).
  wakep();
}

namespace {

// Sleep, holding no P, until the earliest timer (pollUntil; 0: none) or
// a pollBreak, and, once the netpoller is in use, until a descriptor a
// goroutine waits on is ready (ready gets those goroutines); then take an
// idle P if there is one. Only one M at a time (sched.polling, just won by
// the caller) sleeps here: Go's M blocked in netpoll(delay). The breaks so
// far are consumed first, and the timers read again after that: a timer
// added before the clear is seen here, and one added after it breaks the
// sleep (both sides seq_cst: timer0When, pollWake; the eventfd is sticky).
// Goroutines made ready with no P to run them go to the global queue.
P* pollTimers(M* mp, std::int64_t pollUntil, GList& ready) {
  sched.pollWake.store(0, std::memory_order_seq_cst);
  bool net = netpollinited();
  std::int64_t next = timeSleepUntil();
  if (next != 0 && (pollUntil == 0 || next < pollUntil)) pollUntil = next;
  // A sleep with no end is one that any new timer must break.
  sched.pollUntil.store(pollUntil != 0 ? pollUntil : std::numeric_limits<std::int64_t>::max(),
                        std::memory_order_seq_cst);
  std::int64_t delay = -1;
  if (pollUntil != 0) {
    delay = pollUntil - nanotime();
    if (delay < 0) delay = 0;
  }
  if (!sched.exiting.load(std::memory_order_seq_cst)) {
    if (net) {
      if (delay != 0) setMstatus(mp, _Mrunning, _Mpolling);
      ready = netpoll(delay);
      if (delay != 0) setMstatus(mp, _Mpolling, _Mrunning);
      sched.lastpoll.store(nanotime(), std::memory_order_relaxed);
    } else if (delay > 0) {
      setMstatus(mp, _Mrunning, _Mpolling);
      futexsleep(&sched.pollWake, 0, delay);
      setMstatus(mp, _Mpolling, _Mrunning);
    }
  }
  sched.pollUntil.store(0, std::memory_order_seq_cst);
  sched.polling.store(false, std::memory_order_seq_cst);
  P* pp = nullptr;
  {
    LockGuard l(sched.lock);
    if (!sched.gcwaiting.load(std::memory_order_relaxed)) pp = pidleget();
  }
  if (pp == nullptr && !ready.empty()) injectglist(ready);
  return pp;
}

// findRunnable: find a runnable goroutine, blocking (stopm) until one
// appears. Returns nullptr when the runtime exits.
G* findRunnable(bool& inheritTime) {
  M* mp = getg()->m;
top:
  if (sched.exiting.load(std::memory_order_acquire)) return nullptr;
  if (mp->is_m0) return nullptr;  // m0 runs main only (m0retire)
  P* pp = mp->p;
  if (sched.gcwaiting.load(std::memory_order_acquire)) {
    gcstopm();
    goto top;
  }
  inheritTime = false;

  // now and pollUntil are kept for the steal loop's timer checks; now
  // stays 0 (unread) while no timer is due.
  std::int64_t now = 0;
  std::int64_t pollUntil = checkTimers(pp, now);

  // Check the global runnable queue once in a while to ensure fairness.
  // Otherwise two goroutines can completely occupy the local runqueue by
  // constantly respawning each other. The tick is schedtick, as Go's: a G
  // taken from runnext inherits the time slice and does not advance it, so
  // a pair handing the P back and forth is one slice, which the global
  // queue does not cut into (Go's TestPingPongHog: counting every round
  // instead let a goroutine from the global queue in every 61 handoffs,
  // and a pair that hands off rarely took almost all the CPU). A slice
  // that sysmon found too long and that nobody honoured (a goroutine that
  // respawns itself, with no preemption point, then exits: Go would
  // preempt it asynchronously) also looks here first.
  bool preempted = pp->preempt.load(std::memory_order_relaxed);
  if ((pp->schedtick.get() % 61 == 0 || preempted) && sched.runqsize.load(std::memory_order_relaxed) > 0) {
    sched.lock.lock();
    G* gp = globrunqget(pp, 1);
    sched.lock.unlock();
    if (gp != nullptr) return gp;
  }
  if (preempted) {
    // The slice is over: runnext, which would inherit it, goes behind the
    // goroutines already waiting in the ring.
    if (G* next = pp->runq.owner().takeRunnext()) runqput(pp, next, false);
  }

  // local runq
  if (G* gp = pp->runq.owner().runqget(inheritTime)) return gp;

  // global runq
  if (sched.runqsize.load(std::memory_order_relaxed) != 0) {
    sched.lock.lock();
    G* gp = globrunqget(pp, 0);
    sched.lock.unlock();
    if (gp != nullptr) return gp;
  }

  // Poll the network without blocking, if no M is blocked polling it (Go:
  // an optimization before stealing): the first goroutine it readies runs
  // here, the others go to the queues.
  if (netpollinited() && netpollAnyWaiters() && !sched.polling.load(std::memory_order_relaxed)) {
    GList ready = netpoll(0);
    if (G* gp = ready.pop()) {
      injectglist(ready);
      casgstatus(gp, _Gwaiting, _Grunnable);
      return gp;
    }
  }

  // Spinning Ms: steal work from other Ps. Limit the number of spinning Ms
  // to half the number of busy Ps: on a machine with few busy Ps, many
  // spinning Ms burn CPU for nothing.
  if (mp->spinning() ||
      2 * sched.nmspinning.load() < gomaxprocs.load(std::memory_order_relaxed) - sched.npidle.load()) {
    if (!mp->spinning()) becomeSpinning(mp);
    bool newWork = false;
    if (G* gp = stealWork(pp, now, pollUntil, newWork)) return gp;
    if (newWork) goto top;
  }

  // Return P and block.
  gfpurge(pp);
  sched.lock.lock();
  if (sched.gcwaiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    goto top;
  }
  if (sched.runqsize.load(std::memory_order_relaxed) != 0) {
    G* gp = globrunqget(pp, 0);
    sched.lock.unlock();
    return gp;
  }
  if (releasep() != pp) detail::fatal("findrunnable: wrong p");
  pidleput(pp);
  sched.lock.unlock();

  // Delicate dance: the M goes from spinning to non-spinning, possibly
  // while new work is submitted. It must drop nmspinning first and then
  // check every source again (the RMW is a full fence). The other way
  // round, work submitted after the check but before the drop would find
  // an M still spinning, wake nobody, and sit there.
  // A non-spinning M looks again at the global queue only: plain threads
  // put Gs there and leave, with no running M to find them. It does not
  // look at the rings (Go 1.19 does not either): a G queued on a running P
  // while no M is left to look (the spinner it trusted had looked already,
  // or was a wakep that startm never started) runs when that P's G reaches
  // a scheduling point, or is stolen by the M sysmon wakes once the slice
  // is over (retake). Looking here instead sent such Ms spinning into the
  // runnext back-off (~55-70 us of sleep with Linux's timer slack) while
  // their own P's timers waited: timer_lateness's p50 rose 12-18 %.
  bool wasSpinning = mp->spinning();
  if (wasSpinning) dropSpinning(mp);
  if (wasSpinning ? queuedWorkNoP() : sched.runqsize.load(std::memory_order_seq_cst) != 0) {
    sched.lock.lock();
    P* p2 = pidleget();
    sched.lock.unlock();
    if (p2 != nullptr) {
      acquirep(p2);
      becomeSpinning(mp);
      goto top;
    }
  }

  // Sleep until the earliest timer of any P, or a descriptor a goroutine
  // waits on is ready (Go's checkTimersNoP and netpoll(delay)): one M at a
  // time does; the others make sure its sleep ends no later than their own
  // deadline.
  std::int64_t next = timeSleepUntil();
  if (next != 0 && (pollUntil == 0 || next < pollUntil)) pollUntil = next;
  if (pollUntil != 0 || (netpollinited() && netpollAnyWaiters())) {
    if (!sched.polling.exchange(true, std::memory_order_seq_cst)) {
      GList ready;
      if (P* p2 = pollTimers(mp, pollUntil, ready)) {
        acquirep(p2);
        if (G* gp = ready.pop()) {
          injectglist(ready);
          casgstatus(gp, _Gwaiting, _Grunnable);
          return gp;
        }
        goto top;
      }
    } else {
      std::int64_t pu = sched.pollUntil.load(std::memory_order_seq_cst);
      if (pollUntil != 0 && (pu == 0 || pu > pollUntil)) pollBreak();
    }
  }
  stopm();
  goto top;
}

}  // namespace

// execute: run gp on the current M. With inheritTime, gp shares the time
// slice of the G before it (it was in runnext); otherwise a new slice
// starts (schedtick).
Gobuf* execute(G* gp, bool inheritTime) {
  M* mp = getg()->m;
  mp->curg = gp;
  gp->m = mp;
  casgstatus(gp, _Grunnable, _Grunning);
  gp->waitsince = 0;
  P* pp = mp->p;
  if (!inheritTime) {
    // A new time slice: sysmon measures slices by this tick.
    pp->schedtick.inc();
    pp->preempt.store(false, std::memory_order_relaxed);
  }
  pp->counters.switches.inc();
  return gogo(gp);
}

Gobuf* schedule() {
  M* mp = getg()->m;
  if (*mlocksp() != 0) detail::fatal("schedule: holding locks");
  if (mp->lockedg != nullptr) {
    // This M runs only its locked G: wait until it is runnable.
    stoplockedm();
    if (sched.exiting.load(std::memory_order_acquire)) return mexit();
    return execute(mp->lockedg, false);
  }
  for (;;) {
    if (mp->p != nullptr && mp->spinning() && !runqempty(mp->p->runq)) {
      detail::fatal("schedule: spinning with local work");
    }
    bool inheritTime = false;
    G* gp = findRunnable(inheritTime);
    if (gp == nullptr) {
      if (mp->is_m0) m0retire();
      return mexit();
    }
    // This M is about to run a goroutine; if it was spinning, another M may
    // have to spin in its place.
    if (mp->spinning()) resetspinning();
    if (gp->lockedm != nullptr) {
      // Hands off own P to the locked M, then blocks waiting for a new P.
      startlockedm(gp);
      continue;
    }
    return execute(gp, inheritTime);
  }
}

void dropg() {
  M* mp = getg()->m;
  mp->curg->m = nullptr;
  mp->curg = nullptr;
}

namespace {

Gobuf* park_m(G* gp) {
  M* mp = getg()->m;
  gp->waitsince = coarsetime();
  casgstatus(gp, _Grunning, _Gwaiting);
  dropg();
  if (auto fn = mp->waitunlockf) {
    void* lock = mp->waitlock;
    mp->waitunlockf = nullptr;
    mp->waitlock = nullptr;
    if (!fn(gp, lock)) {
      casgstatus(gp, _Gwaiting, _Grunnable);
      return execute(gp, true);  // schedule it back, never returns
    }
  }
  mp->p->counters.parks.inc();
  return schedule();
}

Gobuf* goschedImpl(G* gp) {
  // The slice ends here: a pending preemption request is honoured.
  getg()->m->p->preempt.store(false, std::memory_order_relaxed);
  casgstatus(gp, _Grunning, _Grunnable);
  dropg();
  sched.lock.lock();
  globrunqput(gp);
  sched.lock.unlock();
  wakep();
  return schedule();
}

}  // namespace

Gobuf* gosched_m(G* gp) { return goschedImpl(gp); }

namespace {

Gobuf* goyield_m(G* gp) {
  P* pp = getg()->m->p;
  casgstatus(gp, _Grunning, _Grunnable);
  dropg();
  runqput(pp, gp, false);
  return schedule();
}

}  // namespace

// gopreempt_m: the slice is over. Go puts the goroutine on the global
// queue (goschedImpl); goro puts it at the tail of its P's ring, as goyield
// does: it runs again after the goroutines already waiting there, where on
// the global queue it would wait for that queue's turn, which comes every
// 61 time slices while runnext handoffs keep the ring busy (measured:
// chan_prodcons_4x4 9% slower). The P's other goroutines get the P first
// either way (Go's TestPingPongHog holds), and other Ps may steal it.
// yield() still goes to the global queue, as Go's Gosched. The request
// stays set until the next slice starts (execute): findRunnable then looks
// at the global queue first, as it does every 61 slices, so a goroutine
// waiting there runs after one slice, not 61.
Gobuf* gopreempt_m(G* gp) {
  P* pp = getg()->m->p;
  pp->counters.preemptions.inc();
  return goyield_m(gp);
}

// goexit0: on g0, gp has finished: it goes on the free list with its stack.
// A goroutine that ends while locked to its thread takes the thread with
// it (Go: the thread may be in a state nobody else should inherit).
Gobuf* goexit0(G* gp) {
  M* mp = getg()->m;
  casgstatus(gp, _Grunning, _Gdead);
  gp->waitreason.store(WaitReason::zero, std::memory_order_relaxed);
  gp->entry = nullptr;
  gp->closure = nullptr;
  gp->eh = EhGlobals{};  // (empty: the entry caught everything)
  bool locked = mp->lockedExt != 0;
  mp->lockedExt = 0;
  mp->lockedg = nullptr;
  gp->lockedm = nullptr;
  dropg();
  if (san::kTsan) {
    // A fiber's shadow stack keeps the frames that led to the final mcall;
    // a fresh fiber per goroutine keeps it from growing across reuses.
    san::tsan_destroy_fiber(gp->sched.fiber);
    gp->sched.fiber = nullptr;
  }
  gfput(mp->p, gp);
  if (locked) return mexitlocked();
  return schedule();
}

// main returned: every M leaves at its next trip through the scheduler. The
// idle ones are woken here; stopm checks exiting under the lock, so none
// can go to sleep after the drain.
void main_returned() {
  // Under the lock: a startm that saw exiting == false has already linked
  // its new M into allm, which teardown then joins.
  LockGuard l(sched.lock);
  sched.exiting.store(true, std::memory_order_seq_cst);
  while (M* mp = mget()) {
    setMstatus(mp, _Midle, _Mrunning);
    mp->park.wakeup();
  }
  // Ms waiting for their locked goroutine, and m0 retired or wedged, are
  // not on the idle list.
  for (M* mp = allm; mp != nullptr; mp = mp->alllink) {
    MStatus st = mp->status.load(std::memory_order_relaxed);
    if (st == _Mlockedidle || st == _Mretired) {
      setMstatus(mp, st, _Mrunning);
      mp->park.wakeup();
    }
  }
  // Goroutines running now leave at their next scheduling point (teardown
  // asks again until every M is out).
  preemptall();
  pollBreak();
  sysmonwake_locked();
}

namespace {

// The first frame of every goroutine, entered by gogo; returns into
// goro_goexit. Exceptions never cross it: goexit's is swallowed, any
// other is an unrecovered panic.
void goentry() {
  G* gp = getg();
  san::finish_switch(nullptr);
  if (gp == maingp) mainStarted.store(true, std::memory_order_relaxed);
  bool goexited = false;
  try {
    goro_callentry(gp->entry, gp->closure);
  } catch (const GoexitUnwind&) {
    goexited = true;
  } catch (const std::exception& e) {
    fatalpanic(e.what());
  } catch (...) {
    fatalpanic("unknown exception (not derived from std::exception)");
  }
  // Go's main: when main returns, the program exits; a main that called
  // Goexit leaves the other goroutines running.
  if (gp == maingp && !goexited) main_returned();
}

}  // namespace

RandomOrder stealOrder;

void RandomOrder::reset(std::uint32_t n) {
  count = n;
  coprimes.clear();
  for (std::uint32_t i = 1; i <= n; i++) {
    if (std::gcd(i, n) == 1) coprimes.push_back(i);
  }
}

namespace {

// gopark's rare case, out of line (gopark stays a leaf): back from a
// blocking call nobody announced, take a P, then park.
[[gnu::noinline]] void goparkFromSyscall(bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  syscallReturnOrFatal(getg());
  gopark(unlockf, lock, reason);
}

}  // namespace

void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  G* gp = getg();
  if (readgstatus(gp) == _Gsyscall) [[unlikely]] {
    goparkFromSyscall(unlockf, lock, reason);
    return;
  }
  M* mp = gp->m;
  mp->waitlock = lock;
  mp->waitunlockf = unlockf;
  gp->waitreason.store(reason, std::memory_order_relaxed);
  mcall(&park_m);
}

void goyield() { mcall(&goyield_m); }

void gopreempt() { mcall(&gopreempt_m); }

void wakeNetPoller(std::int64_t when) {
  if (sched.polling.load(std::memory_order_seq_cst)) {
    // An M sleeps until pollUntil (0: it is about to): break its sleep if
    // this timer is due earlier. Spurious wakeups are fine; missed ones not.
    std::int64_t pu = sched.pollUntil.load(std::memory_order_seq_cst);
    if (pu == 0 || pu > when) pollBreak();
  } else {
    // There are no threads sleeping until timers: try to get one there.
    wakep();
  }
}

bool readyput(G* gp) {
  G* me = getg();
  // A plain thread readying a goroutine: checkdead must not see it
  // runnable with no M about to run it.
  if (me == nullptr) foreign_register();
  casgstatus(gp, _Gwaiting, _Grunnable);
  P* pp = me != nullptr ? me->m->p : nullptr;
  if (pp == nullptr) {
    runqputNoP(gp);
    return false;
  }
  pp->counters.wakeups.inc();
  runqput(pp, gp, true);
  return true;
}

void goready(G* gp) {
  if (readyput(gp)) wakep();
}

}  // namespace goro::runtime

// goro_goexit (asm) calls this on the dying goroutine's stack.
extern "C" [[noreturn]] __attribute__((visibility("hidden"))) void goro_goexit1() {
  goro::runtime::mcall(&goro::runtime::goexit0, /*dying=*/true);
  goro::detail::fatal("goexit1: a dead goroutine was resumed");
}

namespace goro {

using namespace runtime;

namespace detail {

NewProc newproc_begin(std::size_t size, std::size_t align, EntryFn entry) {
  G* me = getg();
  ForeignCall fc;  // a plain thread: counted until newproc_commit/abort
  if (!fc.ok()) throw std::logic_error("goro::go: no goro runtime is running (start one with goro::run)");
  if (align < 16) align = 16;
  if (size + align > stack_size() / 4) {
    throw std::length_error("goro::go: the function and its arguments (" + std::to_string(size) +
                            " bytes) do not fit a quarter of the goroutine stack");
  }
  bool foreign = me == nullptr;
  if (foreign) foreign_register();
  P* pp = foreign ? nullptr : me->m->p;
  G* newg = gfget(pp);
  if (newg == nullptr) newg = malg();
  std::uintptr_t closure = (newg->stack.hi - size) & ~(align - 1);
  newg->entry = entry;
  newg->closure = reinterpret_cast<void*>(closure);
  fc.keep();
  return NewProc{newg->closure, newg, foreign};
}

void newproc_commit(NewProc np) {
  G* newg = static_cast<G*>(np.g);
  gostart(newg, reinterpret_cast<std::uintptr_t>(np.closure));
  // Re-read: constructing the closure may have switched threads.
  G* me = getg();
  P* pp = np.foreign ? nullptr : me->m->p;
  newg->goid = newgoid(pp);
  newg->waitreason.store(WaitReason::zero, std::memory_order_relaxed);
  casgstatus(newg, _Gdead, _Grunnable);
  if (pp != nullptr) {
    pp->counters.created.inc();
    bool spilled = runqput(pp, newg, true);
    if (mainStarted.load(std::memory_order_relaxed)) wakep();
    // Back-pressure: a goroutine that spawns faster than the Ps can run
    // what it spawns overflows its ring, again and again, into a long
    // global queue. Then it yields (as a preemption would) so that the
    // backlog runs while its stacks are still in cache, instead of growing
    // until every new goroutine needs a fresh stack. At most once per half
    // ring of spawns. Go's spawn path is slow enough not to need this.
    if (spilled && sched.runqsize.load(std::memory_order_relaxed) > kSpawnBacklog * gomaxprocs && me != me->m->g0) {
      mcall(&gosched_m);
    }
  } else {
    runqputNoP(newg);
  }
  if (np.foreign) foreign_calls.fetch_sub(1, std::memory_order_seq_cst);
}

void newproc_abort(NewProc np) noexcept {
  G* newg = static_cast<G*>(np.g);
  newg->entry = nullptr;
  newg->closure = nullptr;
  P* pp = np.foreign ? nullptr : getg()->m->p;
  if (pp != nullptr) {
    gfput(pp, newg);
  } else {
    gfputglobal(newg);
  }
  if (np.foreign) foreign_calls.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace detail

namespace {

// yield's rare cases, out of line (yield stays a leaf): a plain thread, or
// a syscall body (which owns its thread, not a P); or a goroutine back
// from a blocking call nobody announced, which takes a P back first.
[[gnu::noinline]] void yieldSlow(G* gp) {
  if (!unannouncedReturn(gp)) {
    foreign_use();
    sched_yield();
    return;
  }
  exitsyscallUnannounced();
  mcall(&gosched_m);
}

}  // namespace

void yield() {
  G* gp = getg();
  if (gp == nullptr || readgstatus(gp) == _Gsyscall) [[unlikely]] {
    yieldSlow(gp);
    return;
  }
  mcall(&gosched_m);
}

void checkpoint() { preemptcheck(); }

[[noreturn]] void goexit() {
  if (getg() == nullptr) throw std::logic_error("goro::goexit: not called from a goroutine");
  throw GoexitUnwind{};
}

int num_goroutine() {
  ForeignCall fc;
  if (!fc.ok()) return 0;
  return gcount();
}

std::uint64_t goid() {
  G* gp = getg();
  if (gp == nullptr || gp == gp->m->g0) return 0;
  return gp->goid;
}

}  // namespace goro
