// proc.cpp — the scheduler: bootstrap, newproc, schedule, findRunnable,
// stealing, spinning Ms, park/ready, M start/stop, goexit, shutdown.
// Invariants (DESIGN.md): an M runs Go code only with a P; schedule() runs on
// g0; a G leaves the CPU only through mcall; whoever readies work enqueues
// it and then checks npidle/nmspinning, and an M that stops spinning drops
// nmspinning and then re-checks every queue (the delicate dance).
// Unlike Go, m0 (run()'s caller) runs only the main goroutine: when main
// blocks, m0 hands its P off and waits, so run() returns on the thread that
// called it as soon as main returns. At shutdown an M stuck in a system call
// is abandoned (M::insyscall), never waited for: it frees itself on return.
// Mirrors proc.go.
#include "proc.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <string>

#include "goro/debug.hpp"
#include "hchan.hpp"
#include "os.hpp"
#include "panic.hpp"
#include "san.hpp"
#include "sema.hpp"
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
Mutex allglock;
std::vector<G*> allgs;
PMask idlepMask;
std::atomic<bool> runtime_active{false};
std::atomic<std::int32_t> foreign_calls{0};

namespace {

M* m0 = nullptr;
G* maingp = nullptr;
std::atomic<bool> mainStarted{false};
std::atomic<std::int32_t> allglen{0};

// Thrown by goexit(), caught by the goroutine's entry. Deliberately not a
// std::exception, so that `catch (const std::exception&)` lets it through.
struct GoexitUnwind {};

constexpr std::uint32_t kGoidCacheBatch = 16;  // Go's _GoidCacheBatch
// Dead Gs on the global free list keep their (committed) stacks up to this
// many; the stacks of the rest go back to the kernel when an M goes idle.
constexpr std::int32_t kGlobalStackKeep = 4096;
// Global run queue length per P beyond which a spawning goroutine yields.
constexpr std::int32_t kSpawnBacklog = 512;
constexpr std::int64_t kScavengePeriodNS = std::int64_t{100} * 1000 * 1000;

// ---------------------------------------------------------------------------
// G status

// The transition table of runtime2.hpp's diagram.
bool legal_transition(std::uint32_t from, std::uint32_t to) {
  switch (from) {
    case _Gidle:
      return to == _Gdead;
    case _Gdead:
      return to == _Grunnable;
    case _Grunnable:
      return to == _Grunning;
    case _Grunning:
      return to == _Grunnable || to == _Gwaiting || to == _Gsyscall || to == _Gdead;
    case _Gwaiting:
      return to == _Grunnable;
    case _Gsyscall:
      return to == _Grunning || to == _Grunnable;
    default:
      return false;
  }
}

}  // namespace

void casgstatus(G* gp, std::uint32_t from, std::uint32_t to) {
  if (from == to || !legal_transition(from, to)) {
    detail::fatal("casgstatus: bad incoming values");
  }
  std::uint32_t old = from;
  if (!gp->atomicstatus.compare_exchange_strong(old, to, std::memory_order_acq_rel)) {
    detail::fatal("casgstatus: G is not in the expected status");
  }
}

std::int64_t nanotime() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

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

// ---------------------------------------------------------------------------
// Context switches. Only these functions change stacks.

G* g0_of(M* mp) { return mp->g0; }

// On g0, entered from goro_mcall: finish the sanitizer switch and run the
// M's mcall function.
Gobuf* mcall_on_g0(G* gp) {
  G* g0 = getg();
  san::finish_switch(g0->asan_fake_stack);
  san::handle_no_return();  // frames of earlier visits to g0 are dead
  return g0->m->mcallfn(gp);
}

// mcall(fn): leave the current goroutine for g0 and run fn(gp) there. fn
// returns the context to switch to. Returns when gp is resumed, possibly on
// another M.
void mcall(McallFn fn, bool dying = false) {
  G* gp = getg();
  M* mp = gp->m;
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

// The last step on g0 before gogo to gp: announce the switch and make gp
// the current G.
Gobuf* gogo(G* gp) {
  G* g0 = getg();
  ehswitch(g0->m->eh, &g0->eh, &gp->eh);
  san::start_switch(&g0->asan_fake_stack, gp->stack.lo, gp->stack.hi - gp->stack.lo);
  setg(gp);
  return &gp->sched;
}

// ---------------------------------------------------------------------------
// Ps and Ms

// wirep/acquirep: associate P and the current M.
void acquirep(P* pp) {
  M* mp = getg()->m;
  if (mp->p != nullptr) detail::fatal("wirep: already in go");
  if (pp->m != nullptr || pp->status.load(std::memory_order_relaxed) != _Pidle) {
    detail::fatal("wirep: invalid p state");
  }
  mp->p = pp;
  pp->m = mp;
  pp->status.store(_Prunning, std::memory_order_relaxed);
}

// releasep: disassociate P and the current M.
P* releasep() {
  M* mp = getg()->m;
  P* pp = mp->p;
  if (pp == nullptr) detail::fatal("releasep: invalid arg");
  if (pp->m != mp || pp->status.load(std::memory_order_relaxed) != _Prunning) {
    detail::fatal("releasep: invalid p state");
  }
  mp->p = nullptr;
  pp->m = nullptr;
  pp->status.store(_Pidle, std::memory_order_relaxed);
  return pp;
}

// pidleput: put pp on the idle list. sched.lock must be held.
void pidleput(P* pp) {
  if (!runqempty(pp->runq)) detail::fatal("pidleput: P has non-empty run queue");
  idlepMask.set(pp->id);
  pp->link = sched.pidle;
  sched.pidle = pp;
  sched.npidle.fetch_add(1, std::memory_order_seq_cst);
}

// pidleget: take a P off the idle list. sched.lock must be held.
void sysmonwake_locked();

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

void checkdead();

// mput/mget: the idle M list. sched.lock must be held.
void mput(M* mp) {
  mp->schedlink = sched.midle;
  sched.midle = mp;
  sched.nmidle++;
  checkdead();
}

M* mget() {
  M* mp = sched.midle;
  if (mp != nullptr) {
    sched.midle = mp->schedlink;
    sched.nmidle--;
  }
  return mp;
}

// ---------------------------------------------------------------------------
// Global run queue. sched.lock must be held.

// runqsize is stored relaxed (under the lock). A thread that puts work here
// and then calls wakep pairs with a spinning M that gives up (drops
// nmspinning, then loads runqsize): one must see the other's store. An M
// holding a P does not need that, as it looks at the global queue itself
// before it sleeps (the wakeup only adds parallelism); a thread with no P
// (goready or go() from a plain thread) does, and follows the put with
// foreign_put_fence.
void globrunqput(G* gp) {
  sched.runq.pushBack(gp);
  sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void globrunqputbatch(GQueue batch, std::int32_t n) {
  sched.runq.pushBackAll(batch);
  sched.runqsize.store(sched.runqsize.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// A full fence between a plain thread's globrunqput and its wakep (a
// seq_cst RMW, which TSan understands, unlike atomic_thread_fence): pairs
// with the spinning M's decrement of nmspinning and its re-check of
// runqsize.
void foreign_put_fence() { sched.runqsize.fetch_add(0, std::memory_order_seq_cst); }

bool runqput(P* pp, G* gp, bool next);

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

bool runqput(P* pp, G* gp, bool next) {
  return goro::runtime::runqput(pp->runq, gp, next, [](GQueue batch, std::uint32_t n) {
    MutexGuard l(sched.lock);
    globrunqputbatch(batch, static_cast<std::int32_t>(n));
  });
}

// ---------------------------------------------------------------------------
// Starting and stopping Ms

void* mstart_thread(void* arg);

void mspinning() { getg()->m->spinning = true; }

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

// startm: schedule some M to run pp (an idle P if pp is nullptr; if there
// is none, do nothing). With spinning, the caller incremented nmspinning and
// the M starts spinning; if no P is available the increment is undone.
void startm(P* pp, bool spinning) {
  sched.lock.lock();
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    if (spinning) sched.nmspinning.fetch_sub(1);
    return;
  }
  if (pp == nullptr) {
    pp = pidleget();
    if (pp == nullptr) {
      sched.lock.unlock();
      if (spinning) {
        // The caller incremented nmspinning, but there are no idle Ps,
        // so it's okay to just undo the increment and give up.
        if (sched.nmspinning.fetch_sub(1) - 1 < 0) detail::fatal("startm: negative nmspinning");
      }
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
  if (nmp->spinning) detail::fatal("startm: m is spinning");
  if (nmp->nextp != nullptr) detail::fatal("startm: m has p");
  if (spinning && !runqempty(pp->runq)) detail::fatal("startm: p has runnable gs");
  // The caller incremented nmspinning, so set m.spinning in the new M.
  nmp->spinning = spinning;
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

void scavengegstacks();

// mPark: sleep on the M's note until startm or startlockedm hands it a P
// in nextp, and take that P; or until the run ends (then no P is taken).
void mPark(M* mp) {
  mp->park.sleep();
  mp->park.clear();
  mp->blocked = false;
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
  if (mp->spinning) detail::fatal("stopm spinning");
  // Before going on the idle list: a startm must not find this M busy.
  scavengegstacks();
  sched.lock.lock();
  // Checked under the lock: shutdown sets exiting, then drains midle under
  // the lock, so an M either sees exiting here or is woken by the drain.
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  mput(mp);
  mp->blocked = true;
  sched.lock.unlock();
  mPark(mp);
}

void handoffp(P* pp);

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
  if (mp->spinning) {
    mp->spinning = false;
    if (sched.nmspinning.fetch_sub(1) - 1 < 0) detail::fatal("m0retire: negative nmspinning");
  }
  if (mp->p != nullptr) handoffp(releasep());
  sched.lock.lock();
  if (sched.exiting.load(std::memory_order_relaxed)) {
    sched.lock.unlock();
    return;
  }
  sched.m0retired = true;
  sched.nmsys++;
  mp->blocked = true;
  checkdead();
  sched.lock.unlock();
  mp->park.sleep();  // main_returned wakes it
  mp->park.clear();
  mp->blocked = false;
}

// resetspinning: the M found work while spinning. It stops spinning and,
// since the work may be the first of several, wakes another spinning M.
void resetspinning() {
  M* mp = getg()->m;
  if (!mp->spinning) detail::fatal("resetspinning: not a spinning m");
  mp->spinning = false;
  if (sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) - 1 < 0) {
    detail::fatal("resetspinning: negative nmspinning");
  }
  wakep();
}

// ---------------------------------------------------------------------------
// Free Gs

// Put gp on the global free list: the stack list if it has a stack, else
// the noStack list. sched.gFree.lock must be held.
void gfputglobal_locked(G* gp) {
  if (gp->stack.lo != 0) {
    sched.gFree.stack.push(gp);
    sched.gFree.nstack.fetch_add(1, std::memory_order_relaxed);
  } else {
    sched.gFree.noStack.push(gp);
  }
  sched.gFree.n.fetch_add(1, std::memory_order_relaxed);
}

void gfputglobal(G* gp) {
  MutexGuard l(sched.gFree.lock);
  gfputglobal_locked(gp);
}

void gfput(P* pp, G* gp) {
  if (readgstatus(gp) != _Gdead) detail::fatal("gfput: bad status (not Gdead)");
  pp->gFree.list.push(gp);
  std::int32_t n = pp->gFree.n.load(std::memory_order_relaxed) + 1;
  if (n >= 64) {
    // Move a batch of 32 to the global list, where other Ps can get them.
    GList batch;
    while (n >= 32) {
      batch.push(pp->gFree.list.pop());
      n--;
    }
    pp->gFree.n.store(n, std::memory_order_relaxed);
    MutexGuard l(sched.gFree.lock);
    while (G* g = batch.pop()) gfputglobal_locked(g);
    return;
  }
  pp->gFree.n.store(n, std::memory_order_relaxed);
}

// scavengegstacks: give back the stacks of dead Gs that sat unused on the
// global free list for a whole period: the low-water mark of the list since
// the last scavenge, less kGlobalStackKeep. Called by an M about to sleep,
// at most every kScavengePeriodNS, so a burst of goroutines (whose free
// list churns) is never slowed by madvise and re-faulting, while the
// memory of a burst that ended goes back. (Go frees them at each GC.)
void scavengegstacks() {
  if (sched.gFree.nstack.load(std::memory_order_relaxed) <= kGlobalStackKeep) return;
  std::int64_t now = nanotime();
  std::int64_t last = sched.lastscavenge.load(std::memory_order_relaxed);
  if (now - last < kScavengePeriodNS || !sched.lastscavenge.compare_exchange_strong(last, now)) return;
  std::vector<G*> gs;
  {
    MutexGuard l(sched.gFree.lock);
    std::int32_t excess = sched.gFree.nstackmin - kGlobalStackKeep;
    if (excess > 0) {
      // The coldest Gs are at the far end of the LIFO list.
      std::int32_t skip = sched.gFree.nstack.load(std::memory_order_relaxed) - excess;
      G* cut = nullptr;
      G* g = sched.gFree.stack.head;
      for (std::int32_t i = 0; i < skip && g != nullptr; i++) cut = g, g = g->schedlink;
      if (cut != nullptr)
        cut->schedlink = nullptr;
      else
        sched.gFree.stack.head = nullptr;
      for (; g != nullptr; g = g->schedlink) gs.push_back(g);
      sched.gFree.nstack.fetch_sub(static_cast<std::int32_t>(gs.size()), std::memory_order_relaxed);
    }
    sched.gFree.nstackmin = sched.gFree.nstack.load(std::memory_order_relaxed);
  }
  if (gs.empty()) return;
  std::vector<Stack> stacks;
  stacks.reserve(gs.size());
  for (G* g : gs) {
    stacks.push_back(g->stack);
    g->stack = Stack{};
  }
  stackfree_batch(stacks);
  MutexGuard l(sched.gFree.lock);
  for (G* g : gs) sched.gFree.noStack.push(g);
}

// gfpurge: move all of pp's free Gs to the global list. Done when pp goes
// idle (Go does it only when a P is destroyed): a goroutine spawning on
// another P would otherwise allocate new Gs, and fault in new stacks, while
// up to 63 dead ones sit on the idle P.
void gfpurge(P* pp) {
  if (pp->gFree.n.load(std::memory_order_relaxed) == 0) return;
  // The P's count drops first, so that gcount, which reads the counts
  // racily, tends to see these Gs on neither list (one more goroutine
  // alive, for a moment) rather than on both.
  pp->gFree.n.store(0, std::memory_order_relaxed);
  MutexGuard l(sched.gFree.lock);
  while (G* g = pp->gFree.list.pop()) gfputglobal_locked(g);
}

// Take one G from the global free list (the caller holds sched.gFree.lock).
G* gfget_global_locked() {
  G* gp = sched.gFree.stack.pop();
  if (gp != nullptr) {
    std::int32_t n = sched.gFree.nstack.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (n < sched.gFree.nstackmin) sched.gFree.nstackmin = n;
  } else {
    gp = sched.gFree.noStack.pop();
    if (gp == nullptr) return nullptr;
  }
  sched.gFree.n.fetch_sub(1, std::memory_order_relaxed);
  return gp;
}

// gfget: a dead G from pp's free list, refilled in batches of 32 from the
// global list; pp may be nullptr (a thread that is not an M).
G* gfget(P* pp) {
  G* gp = nullptr;
  if (pp == nullptr) {
    MutexGuard l(sched.gFree.lock);
    gp = gfget_global_locked();
  } else {
    if (pp->gFree.list.empty() && sched.gFree.n.load(std::memory_order_relaxed) > 0) {
      MutexGuard l(sched.gFree.lock);
      std::int32_t n = pp->gFree.n.load(std::memory_order_relaxed);
      while (n < 32) {
        G* g = gfget_global_locked();
        if (g == nullptr) break;
        pp->gFree.list.push(g);
        n++;
      }
      pp->gFree.n.store(n, std::memory_order_relaxed);
    }
    gp = pp->gFree.list.pop();
    if (gp != nullptr) pp->gFree.n.store(pp->gFree.n.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  if (gp == nullptr) return nullptr;
  if (gp->stack.lo == 0) {
    gp->stack = stackalloc();
  } else {
    san::unpoison(gp->stack.lo, gp->stack.hi - gp->stack.lo);
  }
  return gp;
}

// malg: a new G with a stack, registered in allgs, status _Gdead.
G* malg() {
  G* gp = new G;
  gp->stack = stackalloc();
  casgstatus(gp, _Gidle, _Gdead);
  MutexGuard l(allglock);
  allgs.push_back(gp);
  allglen.fetch_add(1, std::memory_order_relaxed);
  return gp;
}

std::uint64_t newgoid(P* pp) {
  if (pp == nullptr) return sched.goidgen.fetch_add(1) + 1;
  if (pp->goidcache == pp->goidcacheend) {
    // Sched.goidgen is the last allocated id; this batch is
    // [goidgen+1, goidgen+batch].
    pp->goidcache = sched.goidgen.fetch_add(kGoidCacheBatch) + 1;
    pp->goidcacheend = pp->goidcache + kGoidCacheBatch;
  }
  return pp->goidcache++;
}

void goentry();

// Prepare gp's stack so that gogo enters goentry (Go's gostartcall).
void gostart(G* gp, std::uintptr_t top) {
  gp->sched.sp = gostartcall(top, &goentry);
  if (san::kTsan) gp->sched.fiber = san::tsan_create_fiber();
}

// ---------------------------------------------------------------------------
// schedule

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
          if (G* gp = goro::runtime::runqget(pp->runq, inherit)) return gp;
          newWork = true;
        }
      }
      // Don't bother to attempt to steal if p2 is idle.
      if (!idlepMask.read(e.position())) {
        std::uint32_t n = 0;
        G* gp = goro::runtime::runqsteal(
            pp->runq, p2->runq, stealTimersOrRunNextG,
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

// checkRunqsNoP: after dropping its P and nmspinning, an M looks once more
// at every non-idle P's ring; if one has work, it takes an idle P back.
P* checkRunqsNoP() {
  for (P* p2 : allp) {
    if (!idlepMask.read(static_cast<std::uint32_t>(p2->id)) && !runqempty(p2->runq)) {
      sched.lock.lock();
      P* pp = pidleget();
      sched.lock.unlock();
      return pp;  // nullptr: no idle P, so every P is busy and will see the work
    }
  }
  return nullptr;
}

void gcstopm();

// pollBreak: wake the M sleeping until the next timer (Go's netpollBreak).
// Sticky: a break stays until the next poller starts (pollTimers), so one
// that lands after a sleep ended, or before the next began, still counts.
void pollBreak() {
  if (sched.pollWake.exchange(1, std::memory_order_seq_cst) == 0) futexwakeup(&sched.pollWake, 1);
}

// Sleep, holding no P, until the earliest timer (pollUntil) or a
// pollBreak; then take an idle P if there is one. Only one M at a time
// (sched.polling, just won by the caller) sleeps here: Go's M blocked in
// netpoll(delay). The breaks so far are consumed first, and the timers
// read again after that: a timer added before the clear is seen here, and
// one added after it breaks the sleep (both sides seq_cst: timer0When,
// pollWake).
P* pollTimers(M* mp, std::int64_t pollUntil) {
  sched.pollWake.store(0, std::memory_order_seq_cst);
  std::int64_t next = timeSleepUntil();
  if (next != 0 && next < pollUntil) pollUntil = next;
  sched.pollUntil.store(pollUntil, std::memory_order_seq_cst);
  std::int64_t delay = pollUntil - nanotime();
  if (delay > 0 && !sched.exiting.load(std::memory_order_seq_cst)) {
    mp->blocked = true;
    futexsleep(&sched.pollWake, 0, delay);
    mp->blocked = false;
  }
  sched.pollUntil.store(0, std::memory_order_seq_cst);
  sched.polling.store(false, std::memory_order_seq_cst);
  MutexGuard l(sched.lock);
  if (sched.gcwaiting.load(std::memory_order_relaxed)) return nullptr;
  return pidleget();
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
    if (G* next = pp->runq.runnext.exchange(nullptr, std::memory_order_seq_cst)) runqput(pp, next, false);
  }

  // local runq
  if (G* gp = goro::runtime::runqget(pp->runq, inheritTime)) return gp;

  // global runq
  if (sched.runqsize.load(std::memory_order_relaxed) != 0) {
    sched.lock.lock();
    G* gp = globrunqget(pp, 0);
    sched.lock.unlock();
    if (gp != nullptr) return gp;
  }

  // (The netpoller is polled here: a later issue.)

  // Spinning Ms: steal work from other Ps. Limit the number of spinning Ms
  // to half the number of busy Ps: on a machine with few busy Ps, many
  // spinning Ms burn CPU for nothing.
  if (mp->spinning || 2 * sched.nmspinning.load() < gomaxprocs.load(std::memory_order_relaxed) - sched.npidle.load()) {
    if (!mp->spinning) {
      mp->spinning = true;
      sched.nmspinning.fetch_add(1);
    }
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
  // check every source again (the RMW below is a full fence). The other way
  // round, work submitted after the check but before the drop would find
  // an M still spinning, wake nobody, and sit there.
  if (mp->spinning) {
    mp->spinning = false;
    if (sched.nmspinning.fetch_sub(1, std::memory_order_seq_cst) - 1 < 0) {
      detail::fatal("findrunnable: negative nmspinning");
    }
    // Every per-P ring...
    if (P* p2 = checkRunqsNoP()) {
      acquirep(p2);
      mp->spinning = true;
      sched.nmspinning.fetch_add(1);
      goto top;
    }
    // ...and the global queue: unlike Go, threads that are not Ms put Gs
    // there (go() and goready from a plain thread) and then leave, so no
    // running M is left to find them.
    if (sched.runqsize.load(std::memory_order_seq_cst) != 0) {
      sched.lock.lock();
      P* p2 = pidleget();
      sched.lock.unlock();
      if (p2 != nullptr) {
        acquirep(p2);
        mp->spinning = true;
        sched.nmspinning.fetch_add(1);
        goto top;
      }
    }
  }

  // Sleep until the earliest timer of any P (Go's checkTimersNoP and
  // netpoll(delay)): one M at a time does; the others make sure its sleep
  // ends no later than their own deadline.
  std::int64_t next = timeSleepUntil();
  if (next != 0 && (pollUntil == 0 || next < pollUntil)) pollUntil = next;
  if (pollUntil != 0) {
    if (!sched.polling.exchange(true, std::memory_order_seq_cst)) {
      if (P* p2 = pollTimers(mp, pollUntil)) {
        acquirep(p2);
        goto top;
      }
    } else {
      std::int64_t pu = sched.pollUntil.load(std::memory_order_seq_cst);
      if (pu == 0 || pu > pollUntil) pollBreak();
    }
  }
  stopm();
  goto top;
}

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

// The M leaves: every M notices sched.exiting here and returns to the
// context saved when it started (mstart / run).
Gobuf* mexit() {
  M* mp = getg()->m;
  if (mp->spinning) {
    mp->spinning = false;
    sched.nmspinning.fetch_sub(1);
  }
  san::handle_no_return();
  return &mp->exitbuf;
}

// schedule: one round of the scheduler: find a runnable goroutine and
// switch to it. Runs on g0; returns the context to gogo to.
void stoplockedm();
void startlockedm(G* gp);

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
    if (mp->p != nullptr && mp->spinning && !runqempty(mp->p->runq)) {
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
    if (mp->spinning) resetspinning();
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

// ---------------------------------------------------------------------------
// Parking, yielding, exiting

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

Gobuf* gosched_m(G* gp) { return goschedImpl(gp); }

Gobuf* goyield_m(G* gp) {
  P* pp = getg()->m->p;
  casgstatus(gp, _Grunning, _Grunnable);
  dropg();
  runqput(pp, gp, false);
  return schedule();
}

// gopreempt_m: the slice is over. Go puts the goroutine on the global
// queue (goschedImpl); goro puts it at the tail of its P's ring, as goyield
// does: it runs again after the goroutines already waiting there, where on
// the global queue it would wait for that queue's turn, which comes every
// 61 time slices while runnext handoffs keep the ring busy (measured:
// chan_prodcons_4x4 9% slower). The P's other goroutines get the P first
// either way (Go's TestPingPongHog holds), and other Ps may steal it.
// yield() still goes to the global queue, as Go's Gosched.
Gobuf* gopreempt_m(G* gp) {
  P* pp = getg()->m->p;
  pp->counters.preemptions.inc();
  pp->preempt.store(false, std::memory_order_relaxed);
  return goyield_m(gp);
}

Gobuf* mexitlocked();

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

void preemptall();

// main returned: every M leaves at its next trip through the scheduler. The
// idle ones are woken here; stopm checks exiting under the lock, so none
// can go to sleep after the drain.
void main_returned() {
  // Under the lock: a startm that saw exiting == false has already linked
  // its new M into allm, which teardown then joins.
  MutexGuard l(sched.lock);
  sched.exiting.store(true, std::memory_order_seq_cst);
  while (M* mp = mget()) mp->park.wakeup();
  // Ms waiting for their locked goroutine, or wedged (m0 whose locked
  // goroutine exited), are not on the idle list.
  for (M* mp = allm; mp != nullptr; mp = mp->alllink) {
    if (mp->lockedidle) {
      mp->lockedidle = false;
      mp->park.wakeup();
    }
  }
  if (sched.m0retired) {
    sched.m0retired = false;
    m0->park.wakeup();
  }
  // Goroutines running now leave at their next scheduling point (teardown
  // asks again until every M is out).
  preemptall();
  pollBreak();
  sysmonwake_locked();
}

// The first frame of every goroutine, entered by gogo; returns into
// goro_goexit. Exceptions never cross it: goexit's is swallowed, any
// other is an unrecovered panic.
void goentry() {
  G* gp = getg();
  san::finish_switch(nullptr);
  if (gp == maingp) mainStarted.store(true, std::memory_order_relaxed);
  bool goexited = false;
  try {
    gp->entry(gp->closure);
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

// ---------------------------------------------------------------------------
// System calls and hand-offs

// pstopped_locked: pp stops for stop-the-world; the last P to stop wakes
// the stopper. sched.lock held.
void pstopped_locked(P* pp) {
  pp->status.store(_Pgcstop, std::memory_order_relaxed);
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
    pstopped_locked(pp);
    sched.lock.unlock();
    return;
  }
  if (sched.runqsize.load(std::memory_order_relaxed) != 0) {
    sched.lock.unlock();
    startm(pp, false);
    return;
  }
  // The last running P, with timers pending and nobody sleeping until
  // them: an M must (Go: "nobody is polling network").
  if (sched.npidle.load() == gomaxprocs.load(std::memory_order_relaxed) - 1 &&
      !sched.polling.load(std::memory_order_seq_cst) && timeSleepUntil() != 0) {
    sched.lock.unlock();
    startm(pp, false);
    return;
  }
  std::int64_t when = pp->timers.timer0When.load(std::memory_order_acquire);
  gfpurge(pp);
  pidleput(pp);
  sched.lock.unlock();
  if (when != 0) wakeNetPoller(when);
}

// exitsyscallfast: back from a system call, take the old P if sysmon left
// it, else an idle one.
bool exitsyscallfast(P* oldp) {
  if (oldp != nullptr && oldp->status.load(std::memory_order_relaxed) == _Psyscall) {
    std::uint32_t s = _Psyscall;
    if (oldp->status.compare_exchange_strong(s, _Pidle, std::memory_order_acq_rel)) {
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

// The M's goroutine is about to run the system call's body: from here to
// exitsyscall the thread touches nothing of the runtime's but its own M and
// G, so teardown may abandon it (M::insyscall). Release: teardown reads the
// M's curg once it sees the flag.
void insyscall(M* mp) { mp->insyscall.store(M::kInSyscall, std::memory_order_release); }

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

// ---------------------------------------------------------------------------
// Locked Ms (LockOSThread)

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
  // pending on the note): only a real sleeper is marked for main_returned.
  if (mp->nextp == nullptr) mp->lockedidle = true;
  mp->blocked = true;
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
    lm->lockedidle = false;
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
      mp->lockedidle = true;
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
  mp->exited = true;
  checkdead();
  sched.lock.unlock();
  return mexit();
}

// ---------------------------------------------------------------------------
// Stop-the-world

// preemptall: ask the goroutine running on every P to stop at its next
// preemption point.
void preemptall() {
  for (P* pp : allp) {
    if (pp->status.load(std::memory_order_relaxed) == _Prunning) pp->preempt.store(true, std::memory_order_relaxed);
  }
}

// gcstopm: stop the current M for stop-the-world; it sleeps (stopm) until
// the world starts again.
void gcstopm() {
  M* mp = getg()->m;
  if (mp->spinning) {
    mp->spinning = false;
    if (sched.nmspinning.fetch_sub(1) - 1 < 0) detail::fatal("gcstopm: negative nmspinning");
  }
  P* pp = releasep();
  sched.lock.lock();
  pstopped_locked(pp);
  sched.lock.unlock();
  stopm();
}

// P.destroy: pp leaves (procresize shrinks). Its goroutines go to the
// global queue, its timers to `to`, its free Gs to the global list.
void pdestroy(P* pp, P* to, std::vector<Timer*>& dropped) {
  GQueue q;
  std::int32_t n = 0;
  if (G* next = pp->runq.runnext.exchange(nullptr)) {
    q.pushBack(next);
    n++;
  }
  bool inherit = false;
  while (G* gp = goro::runtime::runqget(pp->runq, inherit)) {
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
  pp->status.store(_Pdead, std::memory_order_relaxed);
}

// procresize: change the number of Ps to nprocs, with the world stopped
// and sched.lock held. Returns the Ps with local work (linked by link),
// which need an M; the others go idle. The current M keeps its P if it
// survives, else takes allp[0]; a plain thread (no M) takes none.
P* procresize(std::int32_t nprocs, std::vector<Timer*>& dropped) {
  std::int32_t old = gomaxprocs.load(std::memory_order_relaxed);
  if (nprocs < 1 || nprocs > detail::kMaxProcs) detail::fatal("procresize: invalid arg");
  // Grow: new Ps (or dead ones brought back) start stopped.
  for (std::int32_t i = old; i < nprocs; i++) {
    P* pp = allp.slot(static_cast<std::size_t>(i));
    if (pp == nullptr) {
      pp = new P;
      pp->id = i;
      allp.set_slot(static_cast<std::size_t>(i), pp);
    }
    pp->status.store(_Pgcstop, std::memory_order_relaxed);
  }
  G* gp = getg();
  M* mp = gp != nullptr ? gp->m : nullptr;
  P* cur = mp != nullptr ? mp->p : nullptr;
  if (mp == nullptr) {
    // A plain thread: every P is someone else's to run.
  } else if (cur != nullptr && cur->id < nprocs) {
    // Continue to use the current P.
    cur->status.store(_Prunning, std::memory_order_relaxed);
  } else {
    // Release the current P and acquire allp[0].
    if (cur != nullptr) {
      cur->m = nullptr;
      mp->p = nullptr;
    }
    P* p0 = allp[0];
    p0->m = nullptr;
    p0->status.store(_Pidle, std::memory_order_relaxed);
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
    pp->status.store(_Pidle, std::memory_order_relaxed);
    pp->m = nullptr;
    if (runqempty(pp->runq)) {
      pidleput(pp);
    } else {
      pp->link = runnablePs;
      runnablePs = pp;
    }
  }
  return runnablePs;
}

// ---------------------------------------------------------------------------
// sysmon

constexpr std::int64_t kForcePreemptNS = std::int64_t{10} * 1000 * 1000;  // Go's forcePreemptNS

std::int32_t debug_schedtrace = 0;  // GORO_DEBUG=schedtrace=MS
bool debug_scheddetail = false;     // GORO_DEBUG=scheddetail=1
std::int64_t runstarttime = 0;

void sysmonwake_locked() {
  sched.sysmonwait = false;
  sched.sysmonWake.store(1, std::memory_order_seq_cst);
  futexwakeup(&sched.sysmonWake, 1);
}

void sysmonsleep(std::int64_t ns) {
  futexsleep(&sched.sysmonWake, 0, ns);
  sched.sysmonWake.store(0, std::memory_order_seq_cst);
}

void incidlelocked(std::int32_t v) {
  MutexGuard l(sched.lock);
  sched.nmidlelocked += v;
  if (v > 0) checkdead();
}

// retake: hand off Ps that have sat in a system call, and ask goroutines
// that have run for a whole forcePreemptNS slice to yield. Returns the
// number of Ps retaken.
std::uint32_t retake(std::int64_t now) {
  std::uint32_t n = 0;
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
      } else if (pd.schedwhen + kForcePreemptNS <= now) {
        pp->preempt.store(true, std::memory_order_relaxed);
        // In case of syscall, preemption does not work: retake the P.
        sysretake = true;
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
      std::uint32_t expect = _Psyscall;
      if (pp->status.compare_exchange_strong(expect, _Pidle, std::memory_order_acq_rel)) {
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

void schedtrace(bool detailed);

// sysmon: a thread of its own, with no P, that runs while any P works:
// retakes Ps from system calls, asks long-running goroutines to yield,
// prints schedtrace. Sleeps 20 us, doubling after 1 ms without anything
// to do, up to 10 ms; and not at all while every P is idle.
void* sysmon(void*) {
  std::int64_t lasttrace = 0;
  int idle = 0;  // how many cycles in succession we had not woken somebody
  std::int64_t delay = 0;
  for (;;) {
    if (idle == 0) {
      delay = 20;  // start with 20us sleep...
    } else if (idle > 50) {
      delay *= 2;  // start doubling the sleep after 1ms...
    }
    if (delay > std::int64_t{10} * 1000) delay = std::int64_t{10} * 1000;  // up to 10ms
    sysmonsleep(delay * 1000);
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
    if (retake(now) != 0) {
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

// GORO_DEBUG=schedtrace=MS,scheddetail=1 (Go's GODEBUG names), and
// checkdead=0, which turns the deadlock report off.
struct DebugVars {
  std::int32_t schedtrace = 0;
  bool scheddetail = false;
  bool checkdead = true;
};

// Parsed before run() claims the runtime (bad values throw), applied after.
DebugVars parsedebugvars() {
  DebugVars d;
  const char* s = std::getenv("GORO_DEBUG");
  if (s == nullptr) return d;
  std::string v(s);
  std::size_t i = 0;
  while (i <= v.size()) {
    std::size_t j = v.find(',', i);
    if (j == std::string::npos) j = v.size();
    std::string kv = v.substr(i, j - i);
    std::size_t eq = kv.find('=');
    if (eq != std::string::npos) {
      std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      bool ok = !val.empty() && *end == '\0' && n >= 0 && n <= (1L << 30);
      if (!ok) {
        std::string msg = "goro::run: $GORO_DEBUG: ";
        msg += kv;
        msg += " is not a non-negative number";
        throw std::invalid_argument(msg);
      }
      if (key == "schedtrace") d.schedtrace = static_cast<std::int32_t>(n);
      if (key == "scheddetail") d.scheddetail = n != 0;
      if (key == "checkdead") d.checkdead = n != 0;
    }
    i = j + 1;
  }
  // scheddetail alone prints nothing, as in Go: it details schedtrace.
  return d;
}

std::int32_t mcount() { return static_cast<std::int32_t>(sched.mnext) - sched.nmfreed; }

// schedtrace: Go's SCHED lines. It reads Ms, Ps and Gs that change under
// it, as Go's does: the figures are a snapshot, not a consistent cut.
__attribute__((no_sanitize("thread"))) void schedtrace(bool detailed) {
  std::int64_t now = nanotime();
  std::string out;
  char buf[256];
  MutexGuard l(sched.lock);
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
    M* mp = pp->m;
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
                    mp->spinning ? "true" : "false", mp->blocked ? "true" : "false",
                    lg != nullptr ? static_cast<long long>(lg->goid) : -1LL);
      out += buf;
    }
    MutexGuard la(allglock);
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

// ---------------------------------------------------------------------------
// Deadlock detection

// The process's thread count (-1: cannot tell), from /proc/self/stat.
long procthreads() {
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Field 20 (num_threads), counted after the ")" that ends field 2.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  int field = 2;
  for (; *p != '\0' && field < 20; p++) {
    if (*p == ' ') field++;
  }
  return std::strtol(p, nullptr, 10);
}

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
  std::int32_t nforeign = sched.nforeign.value();
  auto foreignActive = [](std::int32_t nf) {
    return nf - sched.nforeignblocked.value() > 0 || foreign_calls.load(std::memory_order_seq_cst) != 0 ||
           foreign_wakers.load(std::memory_order_seq_cst) != 0;
  };
  if (foreignActive(nforeign)) {
    deferforforeign();
    return;
  }
  std::int32_t grunning = 0;
  {
    MutexGuard l(allglock);
    for (G* gp : allgs) {
      std::uint32_t s = readgstatus(gp);
      if (s == _Gwaiting) {
        grunning++;
      } else if (s == _Grunnable || s == _Grunning || s == _Gsyscall) {
        // A plain thread that registered since the look above may be in
        // go(): its goroutine is runnable, and the thread waits for
        // sched.lock to queue it (its call is counted until then).
        if (foreignActive(sched.nforeign.value())) {
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
  if (foreignActive(sched.nforeign.value())) {
    deferforforeign();
    return;
  }
  sched.lock.unlock();
  detail::fatal("all goroutines are asleep - deadlock!");
}

// ---------------------------------------------------------------------------
// Bootstrap

// The g0 stack of the calling thread: ASan needs its bounds.
void thread_stack_bounds(G* g0) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    g0->stack.lo = reinterpret_cast<std::uintptr_t>(addr);
    g0->stack.hi = g0->stack.lo + size;
  }
}

// minit: per-thread set-up on a new M (signal stack, sanitizer fiber).
void minit(M* mp) {
  G* g0 = mp->g0;
  setg(g0);
  mp->eh = ehglobals_of_thread();
  mp->locks = mlocksp();
  thread_stack_bounds(g0);
  g0->sched.fiber = san::tsan_current_fiber();
  mp->exitbuf.fiber = g0->sched.fiber;
  mp->altstack = signal_altstack_install();
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

int env_int(const char* name, long min, long max, const char* what) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < min || v > max) {
    throw std::invalid_argument(std::string("goro::run: $") + name + "=" + s + " is not " + what);
  }
  return static_cast<int>(v);
}

std::size_t env_size(const char* name) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  std::size_t mult = 1;
  if (*end == 'k' || *end == 'K')
    mult = 1024, end++;
  else if (*end == 'm' || *end == 'M')
    mult = std::size_t{1024} * 1024, end++;
  if (*end != '\0' || end == s) {
    throw std::invalid_argument(std::string("goro::run: $") + name + "=" + s +
                                " is not a size in bytes (optionally with a K or M suffix)");
  }
  return static_cast<std::size_t>(v) * mult;
}

int resolve_procs(const Options& opts) {
  if (opts.maxprocs > detail::kMaxProcs) {
    throw std::invalid_argument("goro::run: Options::maxprocs = " + std::to_string(opts.maxprocs) +
                                " exceeds the limit of " + std::to_string(detail::kMaxProcs));
  }
  if (opts.maxprocs < 0) {
    throw std::invalid_argument("goro::run: Options::maxprocs = " + std::to_string(opts.maxprocs) +
                                " is negative (0 chooses; the limit is " + std::to_string(detail::kMaxProcs) + ")");
  }
  if (opts.maxprocs > 0) return opts.maxprocs;
  int env = env_int("GOMAXPROCS", 0, detail::kMaxProcs, "a number of Ps between 1 and 1024");
  if (env > 0) return env;
  return std::max(1, std::min(osinit_ncpu(), detail::kMaxProcs));
}

std::size_t resolve_stack(const Options& opts) {
  std::size_t size = opts.stack_size;
  const char* from = "Options::stack_size";
  if (size == 0) {
    size = env_size("GORO_STACK_SIZE");
    from = "$GORO_STACK_SIZE";
  }
  if (size == 0) return kDefaultStackSize;
  if (size < detail::kMinStackSize) {
    throw std::invalid_argument(std::string("goro::run: ") + from + " = " + std::to_string(size) +
                                " bytes is below the safe minimum of " + std::to_string(detail::kMinStackSize) +
                                " bytes");
  }
  if (size > kMaxStackSize) {
    throw std::invalid_argument(std::string("goro::run: ") + from + " = " + std::to_string(size) +
                                " bytes exceeds the maximum of " + std::to_string(kMaxStackSize) + " bytes");
  }
  return size;
}

// schedinit + procresize for a fresh run: allp[0] goes to m0, the rest on
// the idle list.
void schedinit(int procs, std::int32_t maxthreads) {
  sched.goidgen.store(0);
  sched.midle = nullptr;
  sched.nmidle = 0;
  sched.mnext = 0;
  sched.maxmcount = maxthreads;
  sched.pidle = nullptr;
  sched.npidle.store(0);
  sched.nmspinning.store(0);
  sched.runq = GQueue{};
  sched.runqsize.store(0);
  sched.gFree.stack = GList{};
  sched.gFree.noStack = GList{};
  sched.gFree.n.store(0);
  sched.gFree.nstack.store(0);
  sched.gFree.nstackmin = 0;
  sched.lastscavenge.store(0);
  sched.nmfreed = 0;
  sched.nmidlelocked = 0;
  sched.nmsys = 0;
  sched.polling.store(false);
  sched.pollUntil.store(0);
  sched.pollWake.store(0);
  sched.sysmonwait = false;
  sched.sysmonWake.store(0);
  sched.sysmonstarted = false;
  sched.gcwaiting.store(false);
  sched.stopwait = 0;
  sched.worldsema.store(1);
  sched.deadlockDeferred.store(false);
  sched.deadlockSince = 0;
  std::uint32_t gen = sched.rungen.load() + 1;
  if (gen == 0) gen = 1;  // 0 is "no run" to the counters' users
  sched.rungen.store(gen);
  sched.nforeign.reset(gen);
  sched.nforeignblocked.reset(gen);
  sched.m0retired = false;
  sched.stopnote.clear();
  allglen.store(0);
  mainStarted.store(false);
  allm = nullptr;

  gomaxprocs.store(procs);
  allp.clear();
  idlepMask.reset();
  for (int i = 0; i < procs; i++) {
    P* pp = new P;
    pp->id = i;
    allp.set_slot(static_cast<std::size_t>(i), pp);
  }
  allp.set_size(static_cast<std::size_t>(procs));
  stealOrder.reset(static_cast<std::uint32_t>(procs));
  for (int i = procs - 1; i >= 1; i--) pidleput(allp[static_cast<std::size_t>(i)]);
}

// mleaveall: wait until every M but m0 has left. Each leaves at its next
// trip through the scheduler: main_returned asked the running goroutines to
// yield, and the request is repeated here every 100 us (a new time slice
// can clear it). An M in a system call is not waited for: its thread is
// abandoned (M::insyscall) and leaves by itself once the call returns.
// Returns the Ms that left (m0 too), to free, and what teardown needs of
// the abandoned goroutines, read while their threads wait (kAbandoning):
// from kAbandoned on, a G and its M are their thread's, which may free them.
struct AbandonedG {
  Stack stack;
  Timer* timer;
};

void mleaveall(M* ms, std::vector<M*>& left, std::vector<AbandonedG>& abandoned) {
  for (M* mp = ms; mp != nullptr;) {
    M* next = mp->alllink;  // an abandoned M is its thread's from kAbandoned on
    if (mp == m0) {
      left.push_back(mp);
      mp = next;
      continue;
    }
    while (!mp->thread_created.load(std::memory_order_acquire)) osyield();
    for (;;) {
      if (pthread_tryjoin_np(mp->thread, nullptr) == 0) {
        left.push_back(mp);
        break;
      }
      std::uint32_t in = M::kInSyscall;
      if (mp->insyscall.compare_exchange_strong(in, M::kAbandoning, std::memory_order_acq_rel)) {
        G* gp = mp->curg;
        abandoned.push_back(AbandonedG{gp->stack, gp->timer});
        {
          // Off the books before the thread may free it: nothing that walks
          // allgs (teardown, a dump) may reach it from kAbandoned on.
          MutexGuard l(allglock);
          allgs.erase(std::find(allgs.begin(), allgs.end(), gp));
        }
        pthread_detach(mp->thread);
        mp->insyscall.store(M::kAbandoned, std::memory_order_release);
        break;
      }
      preemptall();
      struct timespec ts = {0, 100L * 1000};
      nanosleep(&ts, nullptr);
    }
    mp = next;
  }
}

// Frees everything of a finished run, once every other M has left.
void teardown() {
  // seq_cst, as ForeignCall's fetch_add and load of exiting: a plain thread
  // either sees exiting and stays out, or is counted before this looks.
  if (!sched.exiting.load(std::memory_order_seq_cst)) detail::fatal("teardown: the run is not exiting");
  while (foreign_calls.load(std::memory_order_seq_cst) != 0) osyield();
  M* ms;
  {
    MutexGuard l(sched.lock);  // no M can be added now: exiting is set
    ms = allm;
  }
  std::vector<M*> left;
  std::vector<AbandonedG> abandoned;
  mleaveall(ms, left, abandoned);
  if (sched.sysmonstarted) pthread_join(sched.sysmonthread, nullptr);
  sched.sysmonstarted = false;
  std::vector<Stack> keep;
  {
    MutexGuard l(allglock);
    // Goroutines abandoned while blocked leave the queues they are on:
    // channels and sync objects may outlive the run and be used by plain
    // threads.
    for (G* gp : allgs) {
      if (gp->waiting != nullptr) detach_abandoned(gp);
    }
    // A plain thread may still be waking a goroutine it dequeued before
    // the detach, or an M (startm): let it finish with the G, its sudog and
    // the M's note before any of them is freed.
    while (foreign_wakers.load(std::memory_order_seq_cst) != 0) osyield();
    sudogfreeall();
    // Timers go before the Gs whose sleep timers their heaps may hold.
    for (std::size_t i = 0; i < allp.created(); i++) timersDestroy(allp.slot(i)->timers);
    // A goroutine left in a system call is its thread's to free (but its
    // sleep timer, which the heaps just let go of); its stack stays mapped.
    for (const AbandonedG& a : abandoned) {
      delete a.timer;
      keep.push_back(a.stack);
    }
    for (G* gp : allgs) {
      san::unpoison(gp->stack.lo, gp->stack.hi - gp->stack.lo);
      if (san::kTsan) san::tsan_destroy_fiber(gp->sched.fiber);
      delete gp->timer;
      delete gp;
    }
    allgs.clear();
    allgs.shrink_to_fit();
  }
  for (M* mp : left) {
    delete mp->g0;
    delete mp;
  }
  allm = nullptr;
  m0 = nullptr;
  for (std::size_t i = 0; i < allp.created(); i++) delete allp.slot(i);
  allp.clear();
  gomaxprocs.store(0);
  maingp = nullptr;
  stackfreeall(keep);
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

// ---------------------------------------------------------------------------
// Entry points

void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  G* gp = getg();
  if (readgstatus(gp) == _Gsyscall) syscall_block_fatal();
  M* mp = gp->m;
  mp->waitlock = lock;
  mp->waitunlockf = unlockf;
  gp->waitreason.store(reason, std::memory_order_relaxed);
  mcall(&park_m);
}

void goyield() { mcall(&goyield_m); }

void gopreempt() { mcall(&gopreempt_m); }

void syscall_block_fatal() {
  detail::fatal(
      "a goroutine blocked inside goro::syscall/goro::blocking (their body must not wait on channels, select, "
      "sleep or sync objects)");
}

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

void foreign_register() {
  struct Registration {
    std::uint32_t gen = 0;
    ~Registration() { sched.nforeign.add(gen, -1); }  // a no-op once its run is over
  };
  static thread_local Registration reg;
  std::uint32_t gen = sched.nforeign.gen();
  if (reg.gen != gen && sched.nforeign.add(gen, 1)) reg.gen = gen;
}

std::uint32_t foreign_block() {
  std::uint32_t gen = sched.nforeignblocked.gen();
  return sched.nforeignblocked.add(gen, 1) ? gen : 0;
}

void foreign_unblock(std::uint32_t token) {
  if (token != 0) sched.nforeignblocked.add(token, -1);
}

void stopTheWorld() {
  G* gp = getg();
  sched.lock.lock();
  sched.stopwait = gomaxprocs.load(std::memory_order_relaxed);
  sched.gcwaiting.store(true, std::memory_order_seq_cst);
  preemptall();
  // Stop current P (a plain thread has none).
  if (gp != nullptr) {
    gp->m->p->status.store(_Pgcstop, std::memory_order_relaxed);
    sched.stopwait--;
  }
  // Try to retake all P's in Psyscall status. seq_cst: with the gcwaiting
  // store above, the other half of entersyscall's store of _Psyscall and
  // load of gcwaiting (one of the two must see the other).
  for (P* pp : allp) {
    std::uint32_t s = _Psyscall;
    if (pp->status.compare_exchange_strong(s, _Pgcstop, std::memory_order_seq_cst)) {
      pp->syscalltick.inc();
      sched.stopwait--;
    }
  }
  // Stop idle P's.
  while (P* pp = pidleget()) {
    pp->status.store(_Pgcstop, std::memory_order_relaxed);
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
  std::vector<Timer*> dropped;
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

void goready(G* gp) {
  G* me = getg();
  // A plain thread readying a goroutine: checkdead must not see it
  // runnable with no M about to run it.
  if (me == nullptr) foreign_register();
  casgstatus(gp, _Gwaiting, _Grunnable);
  P* pp = me != nullptr ? me->m->p : nullptr;
  if (pp != nullptr) {
    pp->counters.wakeups.inc();
    runqput(pp, gp, true);
  } else {
    sched.lock.lock();
    globrunqput(gp);
    sched.lock.unlock();
    foreign_put_fence();
  }
  wakep();
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

// Defined in the inline namespace that names this build's sanitizer (see
// goro/runtime.hpp): a program built with another one does not link.
int GORO_DETAIL_SAN_ABI::runtime_run(EntryFn main_entry, void* main_closure, const Options& opts) {
  osinit_ncpu();
  int procs = resolve_procs(opts);
  std::size_t stack = resolve_stack(opts);
  std::int32_t maxthreads = 10000;  // Go's default limit
  if (int n = env_int("GORO_MAXTHREADS", 1, 1 << 20, "a thread limit of at least 1")) maxthreads = n;
  DebugVars debugvars = parsedebugvars();
  bool expected = false;
  if (getg() != nullptr || !runtime_active.compare_exchange_strong(expected, true)) {
    throw std::logic_error("goro::run: a runtime is already running (run cannot be nested or run twice at once)");
  }
  debug_schedtrace = debugvars.schedtrace;
  debug_scheddetail = debugvars.scheddetail;
  sched.checkdeadOn = debugvars.checkdead && opts.checkdead;
  stackinit(stack);
  schedinit(procs, maxthreads);
  signal_handlers_install();
  runstarttime = nanotime();
  sched.coarsenow.store(runstarttime);

  // m0 is this thread; its g0 is this thread's stack.
  m0 = new M;
  m0->id = sched.mnext++;
  m0->is_m0 = true;
  m0->g0 = new G;
  m0->g0->m = m0;
  m0->fastrand = static_cast<std::uint64_t>(nanotime()) | 1;
  m0->alllink = allm;
  allm = m0;
  m0->thread = pthread_self();
  minit(m0);
  acquirep(allp[0]);

  // newproc(main)
  maingp = malg();
  maingp->entry = main_entry;
  maingp->closure = main_closure;
  gostart(maingp, maingp->stack.hi);
  maingp->goid = newgoid(allp[0]);
  casgstatus(maingp, _Gdead, _Grunnable);
  allp[0]->counters.created.inc();

  // Open for business: until now exiting (true between runs) kept go()
  // from plain threads out of the half-built scheduler.
  sched.lock.lock();
  sched.exiting.store(false, std::memory_order_seq_cst);
  sched.lock.unlock();
  newsysmon();

  goro_gosave(&m0->exitbuf, &mstart1, m0);

  // main returned and m0 left the scheduler.
  signal_altstack_remove(m0->altstack);
  teardown();
  signal_handlers_remove();
  setg(nullptr);
  runtime_active.store(false);
  return 0;
}

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
    sched.lock.lock();
    globrunqput(newg);
    sched.lock.unlock();
    foreign_put_fence();
    wakep();
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

bool entersyscall(bool block) noexcept {
  G* gp = getg();
  if (gp == nullptr || gp == gp->m->g0 || gp->m->p == nullptr) return false;
  // A preemption point: a goroutine looping over short system calls
  // otherwise keeps its P for ever (Go's syscall path checks gp.preempt).
  preemptcheck();
  M* mp = gp->m;
  P* pp = mp->p;
  casgstatus(gp, _Grunning, _Gsyscall);
  if (block) {
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
  pp->m = nullptr;
  mp->oldp = pp;
  mp->p = nullptr;
  pp->status.store(_Psyscall, std::memory_order_seq_cst);
  if (sched.gcwaiting.load(std::memory_order_seq_cst)) {
    // Stop-the-world is waiting for this P: give it up now.
    std::uint32_t s = _Psyscall;
    if (pp->status.compare_exchange_strong(s, _Pgcstop, std::memory_order_acq_rel)) {
      MutexGuard l(sched.lock);
      pstopped_locked(pp);
    }
  }
  insyscall(mp);
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

void yield() {
  G* gp = getg();
  // A plain thread, or a syscall body (which owns its thread, not a P).
  if (gp == nullptr || readgstatus(gp) == _Gsyscall) {
    foreign_use();
    sched_yield();
    return;
  }
  mcall(&gosched_m);
}

void checkpoint() { preemptcheck(); }

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

[[noreturn]] void goexit() {
  if (getg() == nullptr) throw std::logic_error("goro::goexit: not called from a goroutine");
  throw GoexitUnwind{};
}

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
    // and a goroutine leaves its M at this scheduling point.
    semrelease(&sched.worldsema, false);
    if (gp != nullptr) mcall(&gosched_m);
    return cur;
  }
  startTheWorld(n);
  semrelease(&sched.worldsema, false);
  return cur;
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
