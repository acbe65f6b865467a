// proc.hpp — the scheduler's internal interface between runtime files.
// Invariant: functions with an _m suffix run on g0 (reached through mcall);
// the rest run on a goroutine's stack or on g0. Mirrors proc.go's exports.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "os.hpp"
#include "panic.hpp"
#include "runtime2.hpp"
#include "tls.hpp"

namespace goro::runtime {

// allp: the Ps, in a fixed array, so that threads without a P (an M about
// to sleep, sysmon, plain threads) may read it while procresize changes
// its length. P objects live until the run ends; the length changes only
// with the world stopped. Slots past the length hold dead Ps for reuse.
class AllP {
 public:
  std::size_t size() const { return len_.load(std::memory_order_acquire); }
  bool empty() const { return size() == 0; }
  P* operator[](std::size_t i) const { return slots_[i].load(std::memory_order_relaxed); }
  // Every P made in this run, dead ones included (counters, teardown).
  std::size_t created() const { return created_.load(std::memory_order_acquire); }
  P* slot(std::size_t i) const { return slots_[i].load(std::memory_order_relaxed); }
  void set_slot(std::size_t i, P* pp) {
    slots_[i].store(pp, std::memory_order_relaxed);
    if (i + 1 > created_.load(std::memory_order_relaxed)) created_.store(i + 1, std::memory_order_release);
  }
  void set_size(std::size_t n) { len_.store(n, std::memory_order_release); }
  void clear() {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);
    len_.store(0);
    created_.store(0);
  }
  struct iterator {
    const AllP* a;
    std::size_t i;
    P* operator*() const { return (*a)[i]; }
    iterator& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const iterator& o) const { return i != o.i; }
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, size()}; }

 private:
  std::array<std::atomic<P*>, detail::kMaxProcs> slots_{};
  std::atomic<std::size_t> len_{0};
  std::atomic<std::size_t> created_{0};
};

extern Sched sched;
extern AllP allp;
// GOMAXPROCS: written with the world stopped, read anywhere.
extern std::atomic<std::int32_t> gomaxprocs;
extern M* allm;
extern Lock allglock;
extern std::vector<G*> allgs;
extern PMask idlepMask;
extern std::atomic<bool> runtime_active;

// casgstatus: the one way a G's status changes; an illegal transition or a
// status other than `from` is a fatal error. Inline: callers pass constant
// states, so the table check folds away and only the CAS remains.
// The transition table of runtime2.hpp's diagram.
constexpr bool legal_transition(GStatus from, GStatus to) {
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

inline void casgstatus(G* gp, GStatus from, GStatus to) {
  if (from == to || !legal_transition(from, to)) {
    detail::fatal("casgstatus: bad incoming values");
  }
  std::uint32_t old = from;
  if (!gp->atomicstatus.compare_exchange_strong(old, to, std::memory_order_acq_rel)) {
    detail::fatal("casgstatus: G is not in the expected status");
  }
}
inline std::uint32_t readgstatus(const G* gp) { return gp->atomicstatus.load(std::memory_order_acquire); }

// The P transition table of runtime2.hpp.
constexpr bool legal_ptransition(PStatus from, PStatus to) {
  switch (from) {
    case _Pidle:
      return to == _Prunning || to == _Pgcstop;
    case _Prunning:
      return to == _Pidle || to == _Psyscall || to == _Pgcstop;
    case _Psyscall:
      return to == _Pidle || to == _Pgcstop;
    case _Pgcstop:
      return to == _Pidle || to == _Prunning || to == _Pdead;
    case _Pdead:
      return to == _Pgcstop;
    default:
      return false;
  }
}

// setPstatus: a change only pp's owner (or a stopped world) makes: fatal
// unless pp is in `from`. A load and a store, no RMW: acquirep and
// releasep are on the scheduler's paths. casPstatus: a claim that may
// race (exitsyscall against retake and stop-the-world); false if pp was
// not in `from`. Both check the table, folded away for constant states.
inline void setPstatus(P* pp, PStatus from, PStatus to, std::memory_order order = std::memory_order_relaxed) {
  if (from == to || !legal_ptransition(from, to)) detail::fatal("setPstatus: bad incoming values");
  if (pp->status.load(std::memory_order_relaxed) != from) detail::fatal("setPstatus: P is not in the expected status");
  pp->status.store(to, order);
}
inline bool casPstatus(P* pp, PStatus from, PStatus to, std::memory_order order = std::memory_order_acq_rel) {
  if (from == to || !legal_ptransition(from, to)) detail::fatal("casPstatus: bad incoming values");
  std::uint32_t old = from;
  return pp->status.compare_exchange_strong(old, to, order);
}

// The M transition table of runtime2.hpp.
constexpr bool legal_mtransition(MStatus from, MStatus to) {
  switch (from) {
    case _Mrunning:
      return to != _Mrunning;
    case _Mspinning:
    case _Mpolling:
    case _Mlockedidle:
    case _Mretired:
      return to == _Mrunning;
    case _Midle:
      return to == _Mrunning || to == _Mspinning;
    default:
      return false;
  }
}

// setMstatus: fatal unless mp is in `from` and the table allows the change.
// A load and a store: the callers never race (runtime2.hpp).
inline void setMstatus(M* mp, MStatus from, MStatus to) {
  if (!legal_mtransition(from, to)) detail::fatal("setMstatus: bad incoming values");
  if (mp->status.load(std::memory_order_relaxed) != from) detail::fatal("setMstatus: M is not in the expected status");
  mp->status.store(to, std::memory_order_relaxed);
}

// Park the current goroutine. On g0, after gp is _Gwaiting, unlockf(gp, lock)
// runs; if it returns false gp resumes at once, else it stays parked until
// goready. unlockf must not block.
void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
// Make a parked gp runnable: it runs next on the caller's P (runnext,
// inheriting the time slice), or goes on the global queue from a thread
// that holds no P.
void goready(G* gp);
// goready's first half: gp runnable on the caller's P's runnext (true: the
// caller owes the wakep) or on the global queue (false: woken already). A
// test leaves the wakep out to stand for one that was lost.
bool readyput(G* gp);

// Go's randomOrder: visit 0..count-1 in an order given by a random start and
// a stride coprime with count, so every P is visited exactly once.
struct RandomEnum {
  std::uint32_t i, count, pos, inc;
  bool done() const { return i == count; }
  void next() {
    i++;
    pos = (pos + inc) % count;
  }
  std::uint32_t position() const { return pos; }
};
struct RandomOrder {
  std::uint32_t count = 0;
  std::vector<std::uint32_t> coprimes;
  void reset(std::uint32_t n);
  RandomEnum start(std::uint32_t i) const {
    return RandomEnum{0, count, i % count, coprimes[(i / count) % coprimes.size()]};
  }
};
extern RandomOrder stealOrder;

// checkpoint(): if sysmon asked the running goroutine's P to end its time
// slice (P::preempt), yield it now (gopreempt). Inline, for the runtime's
// own preemption points on hot paths (channel operations, select, system
// calls); g0, plain threads and syscall bodies (no P) pass, and so does a
// goroutine holding a runtime lock (user code run under a channel's lock):
// the request stays pending until it is released, as in Go.
void gopreempt();
inline void preemptcheck(G* gp) {
  if (gp == nullptr || gp == gp->m->g0) return;
  P* pp = gp->m->p;
  if (pp != nullptr && pp->preempt.load(std::memory_order_relaxed) && *mlocksp() == 0) gopreempt();
}
inline void preemptcheck() { preemptcheck(getg()); }

// A goroutine inside goro::syscall tried to park: a fatal error.
[[noreturn]] void syscall_block_fatal();

// Go's goyield: like yield, but the goroutine goes to the tail of its P's
// local run queue (semrelease's handoff uses it).
void goyield();

// A cheap clock for wait times: nanotime as sysmon last read it, at most
// 10 ms old while any P runs (sysmon's longest sleep then).
std::int64_t coarsetime();

// Stop every P at its next scheduling point, and start them again (Go's
// stopTheWorldWithSema/startTheWorldWithSema); procs > 0 resizes to procs
// Ps while stopped. Called from a goroutine; callers hold sched.worldsema.
void stopTheWorld();
void startTheWorld(std::int32_t procs);
std::uint32_t fastrand();
// Goroutines alive in the current run (Go's gcount).
std::int32_t gcount();

// ---------------------------------------------------------------------------
// Between the scheduler's files. Each function's comment is at its
// definition; the file that defines it is named above each group.

// proc.cpp
extern M* m0;
extern G* maingp;                      // the main goroutine of the run
extern std::atomic<bool> mainStarted;  // main is running (checkdead)
extern std::atomic<std::int32_t> allglen;
void mcall(McallFn fn, bool dying = false);
void acquirep(P* pp);
P* releasep();
void globrunqput(G* gp);
void injectglist(GList& list);
// Wake the M asleep until the next timer or blocked in netpoll.
void pollBreak();
void gostart(G* gp, std::uintptr_t top);
Gobuf* execute(G* gp, bool inheritTime);
Gobuf* schedule();
void dropg();
Gobuf* gosched_m(G* gp);
Gobuf* goexit0(G* gp);
Gobuf* gopreempt_m(G* gp);
void main_returned();

// idle.cpp
void pidleput(P* pp);
P* pidleget();
M* mget();
void startm(P* pp, bool spinning);
void wakep();
void mPark(M* mp);
void stopm();
void m0retire();
void becomeSpinning(M* mp);
void dropSpinning(M* mp);
void resetspinning();

// mstart.cpp
void newm(M* mp);
void checkmcount();
M* allocm_locked(void (*fn)(), P* pp);
void minit(M* mp);
void mstart1(void* arg);
Gobuf* mexit();
std::int32_t mcount();

// gfree.cpp
void gfputglobal(G* gp);
void gfput(P* pp, G* gp);
G* gfget(P* pp);
void gfpurge(P* pp);
void scavengegstacks();
G* malg();
std::uint64_t newgoid(P* pp);

// syscall.cpp
void pstopped_locked(P* pp);
void reservep(G* gp, M* mp);
void entersyscallUnannounced(G* gp, M* mp, const std::uintptr_t* pcs, int npcs);
void exitsyscallUnannounced();
// Whether gp's thread is back from a blocking call nobody announced and has
// not taken a P yet (M::unannounced): call exitsyscallUnannounced first.
inline bool unannouncedReturn(G* gp) {
  return gp != nullptr && gp->m->unannounced.load(std::memory_order_relaxed) == M::kBlocked;
}
// A goroutine found _Gsyscall where it must not block: back from a blocking
// call nobody announced (take a P back), else inside goro::syscall (fatal).
void syscallReturnOrFatal(G* gp);
void handoffp(P* pp);
void insyscall(M* mp);

// lockosthread.cpp
void stoplockedm();
void startlockedm(G* gp);
Gobuf* mexitlocked();

// procresize.cpp
void preemptall();
void gcstopm();
P* allpslot(std::int32_t i);

// preempt.cpp
extern int sigPreempt;       // the preemption signal (Options::preempt_signal)
extern bool asyncPreemptOn;  // asynchronous preemption is on for this run
void preempt_init(bool on, int sig);
void preemptone(P* pp);
bool preemptM(M* mp);  // true if it sent the signal
void doSigPreempt(G* gp, void* uctx);
void lockOSThreadInt(G* gp, M* mp);
void unlockOSThreadInt(G* gp, M* mp);
Gobuf* asyncPreempt_m(G* gp);

// sysmon.cpp
extern std::int32_t debug_schedtrace;   // GORO_DEBUG=schedtrace=MS
extern bool debug_scheddetail;          // GORO_DEBUG=scheddetail=1
extern std::int32_t debug_blockreport;  // GORO_DEBUG=blockreport=MS
extern std::int64_t runstarttime;
extern std::int64_t forcePreemptNS;  // the time slice (GORO_DEBUG=forcepreemptns)
void sysmonwake_locked();
void newsysmon();
void schedtrace(bool detailed);

// traceback.cpp
std::string symbolize(std::uintptr_t pc);
// The dump after a fatal error or panic: every goroutine, current first.
void dump_to_stderr(const G* current);
// The goroutine running on this thread, if any (not g0).
G* current_user_g();

// checkdead.cpp
void checkdead();

// runtime1.cpp
int resolve_procs(const Options& opts);
void teardown();

}  // namespace goro::runtime
