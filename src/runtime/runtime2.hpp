// runtime2.hpp — the scheduler's data: G, M, P, Sched and their states.
// Invariants: a G's status changes only through casgstatus (proc.cpp); an M
// runs goroutine code only while it holds a P; sched.lock guards the idle
// lists, the global run queue and the M/P bookkeeping. Mirrors runtime2.go.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "arch/context.hpp"
#include "ehglobals.hpp"
#include "goro/runtime.hpp"
#include "lock_futex.hpp"
#include "runq.hpp"
#include "time.hpp"

namespace goro::runtime {

struct M;
struct P;
struct Sudog;

// G status (runtime2.go). The legal transitions, checked by casgstatus:
//
//   _Gidle ──newproc──▶ _Grunnable ──execute──▶ _Grunning ──goexit0──▶ _Gdead
//                          ▲   ▲                  │   │                  │
//                          │   └──gosched/yield───┘   │                  │
//                          └──ready── _Gwaiting ◀─park┘                  │
//                          └──exitsyscall── _Gsyscall ◀─entersyscall     │
//   _Gdead ──newproc (reuse)──▶ _Grunnable ◀─────────────────────────────┘
//   _Gwaiting ──park_m when unlockf fails──▶ _Grunnable (then runs at once)
enum GStatus : std::uint32_t {
  _Gidle = 0,
  _Grunnable = 1,
  _Grunning = 2,
  _Gsyscall = 3,
  _Gwaiting = 4,
  _Gdead = 6,  // Go's value; 5 (_Gmoribund_unused) is not used
};

// P status (runtime2.go). The legal transitions, checked by setPstatus (the
// P's owner, or anyone with the world stopped) and casPstatus (racing
// claims: exitsyscall, retake, stop-the-world); row: from, column: to.
//
//               _Pidle        _Prunning   _Psyscall     _Pgcstop   _Pdead
//   _Pidle      .             acquirep    .             stop*      .
//   _Prunning   releasep      .           entersyscall  stop*      .
//   _Psyscall   exitsyscall,  .           .             stop* CAS  .
//               retake CAS
//   _Pgcstop    procresize    procresize  .             .          procresize
//   _Pdead      .             .           .             procresize .
//
// stop*: stopTheWorld, gcstopm, handoffp or entersyscall seeing gcwaiting.
// A new P starts _Pgcstop (procresize brings it up), as Go's p.init.
enum PStatus : std::uint32_t {
  _Pidle = 0,
  _Prunning = 1,
  _Psyscall = 2,
  _Pgcstop = 3,
  _Pdead = 4,
};

// M status: what an M's thread is doing. Go keeps booleans (m.spinning,
// m.blocked); one state says which of their combinations exist. Row: from,
// column: to; each entry names who makes the change.
//
//               _Mrunning      _Mspinning      _Midle  _Mpolling   _Mlockedidle  _Mretired     _Mexited
//  _Mrunning    .              becomeSpinning  stopm   pollTimers  stoplockedm   m0retire,     mexit
//                                                                                mexitlocked
//  _Mspinning   dropSpinning   .               .       .           .             .             .
//  _Midle       startm,        startm          .       .           .             .             .
//               main_returned
//  _Mpolling    pollTimers     .               .       .           .             .             .
//  _Mlockedidle startlockedm,  .               .       .           .             .             .
//               main_returned
//  _Mretired    main_returned  .               .       .           .             .             .
//  _Mexited     .              .               .       .           .             .             .
//
// _Midle: on the idle list, asleep until startm hands it a P. _Mpolling:
// asleep until the earliest timer (the one M that is). _Mlockedidle:
// asleep until its locked goroutine is runnable. _Mretired: m0, asleep
// until the run ends (m0retire, or wedged when its locked goroutine
// exited). _Mexited: its thread has left. Only the M itself, or the thread
// that wakes it (under sched.lock, or owning it after mget), changes an M's
// state, never two at once: setMstatus checks the state and the table.
// A new M starts _Mrunning: its thread is on its way.
enum MStatus : std::uint32_t {
  _Mrunning = 0,
  _Mspinning = 1,
  _Midle = 2,
  _Mpolling = 3,
  _Mlockedidle = 4,
  _Mretired = 5,
  _Mexited = 6,
};

// Why a goroutine is waiting: Go's waitReason strings (runtime2.go).
enum class WaitReason : std::uint8_t {
  zero,
  chan_receive_nil,
  chan_send_nil,
  select,
  select_no_cases,
  chan_receive,
  chan_send,
  semacquire,
  sleep,
  sync_cond_wait,
  sync_mutex_lock,
  sync_rwmutex_rlock,
  sync_rwmutex_lock,
  io_wait,
  preempted,
  test,  // parked by a test or benchmark through export_test.hpp
};
const char* wait_reason_string(WaitReason r);

// A goroutine's stack: usable [lo, hi), with a guard region of
// kStackGuardSize bytes below lo that faults on touch.
struct Stack {
  std::uintptr_t lo = 0;
  std::uintptr_t hi = 0;
};

struct G {
  Gobuf sched;  // saved context while not running
  Stack stack;
  std::atomic<std::uint32_t> atomicstatus{_Gidle};
  // Relaxed atomic: dumps, schedtrace and tests read it while the goroutine
  // may be parking again (its status, read first, orders the rest).
  std::atomic<WaitReason> waitreason{WaitReason::zero};
  M* m = nullptr;          // the M running it; nullptr when not running
  M* lockedm = nullptr;    // the M it is wired to (lock_os_thread)
  G* schedlink = nullptr;  // run queue and free list link
  std::uint64_t goid = 0;
  std::int64_t waitsince = 0;  // nanotime when it started waiting
  detail::EntryFn entry = nullptr;
  void* closure = nullptr;  // the go() closure at the top of the stack
  void* asan_fake_stack = nullptr;
  // Blocking on channels and select (Go's g.waiting, g.param, g.selectDone).
  Sudog* waiting = nullptr;  // sudogs this G is queued with, linked by waitlink
  Sudog* param = nullptr;    // the sudog whose operation woke it (nullptr: a close)
  std::atomic<std::uint32_t> selectDone{0};
  HeapTimer* timer = nullptr;  // sleep_for's timer, made on first use
  EhGlobals eh;                // C++ exception state while not running (ehglobals.hpp)
  // Non-null for the stand-in G of a plain thread (chan.cpp): it blocks on
  // this note instead of parking, and is never scheduled.
  Note* threadnote = nullptr;
};

using GQueue = GQueueT<G>;
using GList = GListT<G>;

struct M {
  G* g0 = nullptr;    // scheduling stack: the thread's own
  G* curg = nullptr;  // the goroutine running on this M
  P* p = nullptr;     // attached P, nullptr when not running Go code
  P* nextp = nullptr;
  P* oldp = nullptr;  // the P held before entering a system call
  std::int64_t id = 0;
  std::atomic<MStatus> status{_Mrunning};  // setMstatus; read by anyone (schedtrace)
  bool is_m0 = false;
  G* lockedg = nullptr;         // the G wired to this M (lock_os_thread)
  std::uint32_t lockedExt = 0;  // lock_os_thread nesting depth
  // The runtime's own wiring (Go's lockedInt): 1 while the goroutine the
  // preemption signal interrupted must resume on this thread (preempt.cpp);
  // cleared at that goroutine's next scheduling point of its own (mcall).
  std::uint32_t lockedInt = 0;
  std::atomic<std::int32_t> procid{0};  // the thread's id (gettid), for signalM; read by sysmon
  std::atomic<int> cpuclock{0};         // the thread's CPU-time clock (thread_cpuclock)
  // A preemption signal is on its way to this M (Go's m.signalPending):
  // set by preemptM, cleared by the handler.
  std::atomic<std::uint32_t> signalPending{0};
  std::atomic<std::uint64_t> preemptSignals{0};  // preemption signals its thread handled
  // When the pending signal was sent (or the slice it is pending for
  // began to wait), for which P schedtick, and when preemptone last asked
  // the kernel why it is still pending (checkPreemptSignal).
  std::atomic<std::int64_t> signalSent{0};
  std::atomic<std::uint32_t> signalTick{0};
  std::atomic<std::int64_t> signalChecked{0};
  sigset_t sigmask{};  // m0: run's caller's signal mask (minitSignalMask)
  // A blocking call nobody announced (sysmon found the thread's CPU clock
  // standing still while it held a P):
  //
  //   kNotBlocked ──sysmon──▶ kHandoffAsked ──handler: entersyscallUnannounced──▶ kBlocked
  //        ▲                       │ (no safe point: sysmon asks again later)          │
  //        └───────────────────────┘◀──────── exitsyscallUnannounced ────────────────┘
  //
  // In kBlocked the goroutine is _Gsyscall and its P _Psyscall, as after
  // entersyscall; the thread takes a P back (exitsyscall) at its next call
  // into the runtime, or when sysmon sees it compute and signals it.
  static constexpr std::uint32_t kNotBlocked = 0, kHandoffAsked = 1, kBlocked = 2;
  std::atomic<std::uint32_t> unannounced{kNotBlocked};
  std::int64_t blockedSince = 0;  // nanotime of the handoff (kBlocked)
  // Its CPU time then, at sysmon's last look, or when the handler last
  // returned (a signal costs the thread CPU time: not computing).
  std::atomic<std::int64_t> blockedCPU{0};
  std::int64_t blockedLook = 0;        // nanotime of sysmon's last look (watchUnannounced)
  std::uint64_t blockedGoid = 0;       // the goroutine, for the block report
  bool blockReported = false;          // GORO_DEBUG=blockreport printed it
  std::uintptr_t blockedPCs[16] = {};  // where it blocked: pc, then return addresses
  int nblockedPCs = 0;
  bool keepPin = false;  // mcall keeps lockedInt (exitsyscallUnannounced from the signal)
  // Whether the M's goroutine is in a system call, for the run's end:
  //
  //   kNotInSyscall ──entersyscall──▶ kInSyscall ──exitsyscall (CAS)──▶ kNotInSyscall
  //                                      │
  //                          teardown (CAS)▼
  //                                 kAbandoning ──teardown──▶ kAbandoned
  //
  // teardown does not wait for a call that may last: it takes the M's
  // goroutine off its books (kAbandoning), then lets go (kAbandoned). The
  // thread, back from the call, finds its CAS failed, waits for kAbandoned,
  // and leaves without running goroutine code, freeing what is its own.
  static constexpr std::uint32_t kNotInSyscall = 0, kInSyscall = 1, kAbandoning = 2, kAbandoned = 3;
  std::atomic<std::uint32_t> insyscall{kNotInSyscall};
  const int* locks = nullptr;  // the thread's lock count (goro_tls_locks), for schedtrace
  Note park;                   // stopm sleeps here
  M* schedlink = nullptr;      // idle list link
  M* alllink = nullptr;        // allm
  void (*mstartfn)() = nullptr;
  McallFn mcallfn = nullptr;
  // gopark's unlock callback and its argument, run by park_m on g0.
  bool (*waitunlockf)(G*, void*) = nullptr;
  void* waitlock = nullptr;
  std::uint64_t fastrand = 0;
  Gobuf exitbuf;            // gosave()d in mstart: where the M returns to exit
  EhGlobals* eh = nullptr;  // the thread's C++ exception state
  pthread_t thread{};
  std::atomic<bool> thread_created{false};  // thread is set: teardown may join
  void* altstack = nullptr;                 // sigaltstack for the stack-overflow handler

  bool spinning() const { return status.load(std::memory_order_relaxed) == _Mspinning; }
  // Asleep (Go's m.blocked, for schedtrace).
  bool blocked() const {
    MStatus st = status.load(std::memory_order_relaxed);
    return st == _Midle || st == _Mpolling || st == _Mlockedidle || st == _Mretired;
  }
};

// A counter written only by whoever owns the P (relaxed load and store, no
// read-modify-write), read from anywhere.
template <class T>
struct OwnerCounter {
  std::atomic<T> v{0};
  void inc(T n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  T get() const { return v.load(std::memory_order_relaxed); }
};

// A count that belongs to one run: the run's number in the high half, the
// count in the low half. Plain threads outlive runs; one that counts itself
// out after its run ended (it exits, or is woken, later) must not change the
// next run's count, and the check and the change are one CAS.
struct RunCounter {
  std::atomic<std::uint64_t> w{0};
  void reset(std::uint32_t gen) { w.store(std::uint64_t{gen} << 32, std::memory_order_seq_cst); }
  std::uint32_t gen() const { return static_cast<std::uint32_t>(w.load(std::memory_order_seq_cst) >> 32); }
  // Adds d if the count is run gen's; returns whether it did.
  bool add(std::uint32_t gen, std::int32_t d) {
    std::uint64_t v = w.load(std::memory_order_relaxed);
    while ((v >> 32) == gen) {
      auto low = static_cast<std::uint32_t>(v) + static_cast<std::uint32_t>(d);
      if (w.compare_exchange_weak(v, (v & ~std::uint64_t{0xffffffff}) | low, std::memory_order_seq_cst)) return true;
    }
    return false;
  }
  std::int32_t value() const {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(w.load(std::memory_order_seq_cst)));
  }
};

// Per-P counters for debug::stats.
struct PCounters {
  template <class T>
  using Counter = OwnerCounter<T>;
  Counter<std::uint64_t> created, switches, steals, stolen, parks, wakeups, preemptions, asyncPreemptions, handoffs,
      unannouncedBlocks;
};

inline constexpr std::uint32_t kLocalRunQueueSize = 256;

struct P {
  std::int32_t id = 0;
  std::atomic<std::uint32_t> status{_Pgcstop};  // PStatus: setPstatus/casPstatus
  P* link = nullptr;                            // idle list
  // Incremented when a new time slice starts (execute) and on each system
  // call; written by the owner, read by sysmon.
  OwnerCounter<std::uint32_t> schedtick;
  OwnerCounter<std::uint32_t> syscalltick;
  // Set by sysmon when the current time slice has lasted 10 ms; honoured
  // by checkpoint() and yield; cleared when a new slice starts.
  std::atomic<bool> preempt{false};
  struct {
    std::uint32_t schedtick = 0, syscalltick = 0;
    std::int64_t schedwhen = 0, syscallwhen = 0;
    // The CPU time of cpum's thread when sysmon last looked (at cpuwhen)
    // at its overdue slice: a thread whose CPU clock has hardly moved since
    // is blocked in the kernel, and the signal would only interrupt its
    // call.
    M* cpum = nullptr;
    std::int64_t cputime = -1, cpuwhen = 0;
    std::int64_t stillSince = 0;  // since when cpum's clock has stood still (0: it moves)
    std::uint32_t stillAsks = 0;  // handoffs asked of it since (each waits twice as long)
  } sysmontick;                   // sysmon's last observation (sysmon only)
  // Back-link to the M (nullptr if idle): written by the owner, read by
  // sysmon and stop-the-world to signal the M (preemptone).
  std::atomic<M*> m{nullptr};
  std::uint64_t goidcache = 0, goidcacheend = 0;
  RunQueue<G, kLocalRunQueueSize> runq;  // ring + runnext
  struct {
    GList list;
    std::atomic<std::int32_t> n{0};  // owner writes; gcount reads racily
  } gFree;
  PCounters counters;
  std::vector<Sudog*> sudogcache;  // Go's p.sudogcache
  // Sudogs acquired on this P minus those released on it (chan.cpp). A
  // goroutine may release its sudog on another P, so one P's count may be
  // negative; the sum over every P of the run is the sudogs in use.
  OwnerCounter<std::int64_t> sudogsInUse;
  PTimers timers;
};

// A bitmask with one bit per P, read without locks (Go's pMask). Fixed
// size, so that procresize never moves it under a reader.
struct PMask {
  std::array<std::atomic<std::uint32_t>, (detail::kMaxProcs + 31) / 32> words{};
  void reset() {
    for (auto& w : words) w.store(0);
  }
  bool read(std::uint32_t id) const { return (words[id / 32].load(std::memory_order_seq_cst) >> (id % 32)) & 1; }
  void set(std::int32_t id) { words[id / 32].fetch_or(1u << (id % 32)); }
  void clear(std::int32_t id) { words[id / 32].fetch_and(~(1u << (id % 32))); }
};

struct Sched {
  std::atomic<std::uint64_t> goidgen{0};

  Lock lock;
  // Below here guarded by lock, except the atomics, which are read unlocked.
  M* midle = nullptr;  // idle Ms waiting for work
  std::int32_t nmidle = 0;
  std::int64_t mnext = 0;  // number of Ms created; next M id
  std::int32_t maxmcount = 10000;
  std::int32_t nmfreed = 0;       // Ms whose thread exited during the run (locked G exit)
  std::int32_t nmidlelocked = 0;  // locked Ms waiting for their G
  std::int32_t nmsys = 0;         // system Ms not counted for deadlock (sysmon)

  P* pidle = nullptr;
  std::atomic<std::int32_t> npidle{0};
  std::atomic<std::int32_t> nmspinning{0};

  GQueue runq;  // global run queue
  std::atomic<std::int32_t> runqsize{0};

  struct {
    Lock lock;
    GList stack;    // Gs with a committed stack
    GList noStack;  // Gs whose stack memory was given back
    // Written under lock; read without it as hints (gfget, scavenging).
    std::atomic<std::int32_t> n{0};
    std::atomic<std::int32_t> nstack{0};
    std::int32_t nstackmin = 0;  // low-water mark of nstack since the last scavenge
  } gFree;
  std::atomic<std::int64_t> lastscavenge{0};

  // Set when main returns (every M leaves) and between runs (go() from a
  // plain thread is refused); cleared once a run's bootstrap is complete.
  std::atomic<bool> exiting{true};

  // The M that sleeps, without a P, until the earliest timer (Go's M
  // blocked in netpoll): polling is set while there is one, pollUntil is
  // the time it sleeps until (0: about to sleep), and pollWake breaks its
  // sleep (Go's netpollBreak).
  std::atomic<bool> polling{false};
  std::atomic<std::int64_t> pollUntil{0};
  std::atomic<std::uint32_t> pollWake{0};
  // When the network was last polled by the M that sleeps or by sysmon:
  // sysmon polls it when nobody has for 10 ms.
  std::atomic<std::int64_t> lastpoll{0};

  // sysmon: sleeps on sysmonnote while every P is idle (sysmonwait, under
  // lock); pidleget wakes it.
  bool sysmonwait = false;
  Note sysmonnote;
  pthread_t sysmonthread{};
  bool sysmonstarted = false;

  // Stop-the-world (stopTheWorldWithSema): gcwaiting asks every P to stop
  // at its next scheduling point; stopwait counts the ones still running;
  // the last one wakes stopnote.
  std::atomic<bool> gcwaiting{false};
  std::int32_t stopwait = 0;  // under lock
  Note stopnote;
  std::atomic<std::uint32_t> worldsema{1};   // a semaphore (sema.hpp) serializing stop-the-world
  std::atomic<std::uint32_t> sysmonWake{0};  // sysmon sleeps on this futex word
  std::atomic<std::int64_t> coarsenow{0};    // nanotime at sysmon's last tick (coarsetime)

  // checkdead found every goroutine blocked while plain threads that might
  // wake them are alive: sysmon looks again every 100 ms.
  std::atomic<bool> deadlockDeferred{false};
  std::int64_t deadlockSince = 0;             // first seen with unknown threads alive (0: not now); under lock
  bool checkdeadOn = true;                    // GORO_DEBUG=checkdead=0 / Options::checkdead
  std::atomic<std::uint32_t> rungen{0};       // this run's number (never 0 during a run)
  RunCounter nforeign;                        // plain threads that used the runtime in this run, alive
  RunCounter nforeignblocked;                 // of which blocked in it (a channel, a lock...)
  std::atomic<std::int32_t> nunannounced{0};  // Ms in M::kBlocked (sysmon watches them)
};

}  // namespace goro::runtime
