// proc.hpp — the scheduler's internal interface between runtime files.
// Invariant: functions with an _m suffix run on g0 (reached through mcall);
// the rest run on a goroutine's stack or on g0. Mirrors proc.go's exports.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

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
extern Mutex allglock;
extern std::vector<G*> allgs;
extern PMask idlepMask;
extern std::atomic<bool> runtime_active;

// A plain thread inside the runtime (go(), timers, stats): counted while
// there, so that teardown waits for it to leave; refused (ok() false) when
// no runtime runs or the run is ending. Goroutines pass through for free.
extern std::atomic<std::int32_t> foreign_calls;
class ForeignCall {
 public:
  ForeignCall() : active_(getg() == nullptr) {
    if (!active_) return;
    foreign_calls.fetch_add(1, std::memory_order_seq_cst);
    if (!runtime_active.load(std::memory_order_seq_cst) || sched.exiting.load(std::memory_order_seq_cst)) {
      foreign_calls.fetch_sub(1, std::memory_order_seq_cst);
      active_ = false;
      ok_ = false;
    }
  }
  ~ForeignCall() {
    if (active_) foreign_calls.fetch_sub(1, std::memory_order_seq_cst);
  }
  ForeignCall(const ForeignCall&) = delete;
  ForeignCall& operator=(const ForeignCall&) = delete;
  bool ok() const { return ok_; }
  // The count outlives this guard: whoever ends the call subtracts it
  // (newproc_commit/abort).
  void keep() { active_ = false; }

 private:
  bool active_;
  bool ok_ = true;
};

// casgstatus: the one way a G's status changes; an illegal transition or a
// status other than `from` is a fatal error.
void casgstatus(G* gp, std::uint32_t from, std::uint32_t to);
inline std::uint32_t readgstatus(const G* gp) { return gp->atomicstatus.load(std::memory_order_acquire); }

// Park the current goroutine. On g0, after gp is _Gwaiting, unlockf(gp, lock)
// runs; if it returns false gp resumes at once, else it stays parked until
// goready. unlockf must not block.
void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
// Make a parked gp runnable: it runs next on the caller's P (runnext,
// inheriting the time slice), or goes on the global queue from a thread
// that holds no P.
void goready(G* gp);

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

std::int64_t nanotime();
// A cheap clock for wait times: nanotime as sysmon last read it, at most
// 10 ms old while any P runs (sysmon's longest sleep then).
std::int64_t coarsetime();

// A plain thread (not an M) used the runtime in this run: while it lives,
// and is not blocked in the runtime, it may still wake goroutines, so
// checkdead does not call their waiting a deadlock. (A thread that never
// used the runtime does not count: API.md, Fatal errors.)
void foreign_register();
inline void foreign_use() {
  if (getg() == nullptr) foreign_register();
}
// The entry of a channel operation or a select: a preemption point for a
// goroutine, as Go's function prologues are (one that sends and receives
// without ever blocking still yields its slice), and for a plain thread the
// mark that it used the runtime. One TLS read for both.
inline void chanop_enter() {
  G* gp = getg();
  if (gp == nullptr) {
    foreign_register();
  } else {
    preemptcheck(gp);
  }
}
// The calling plain thread is about to block in the runtime (a channel, a
// semaphore): it no longer counts as one that may wake a goroutine.
// Returns a token for foreign_unblock, which whoever wakes it calls before
// the wakeup (so checkdead never sees it blocked once it may run), or the
// thread itself when it did not block after all.
std::uint32_t foreign_block();
void foreign_unblock(std::uint32_t token);

// Stop every P at its next scheduling point, and start them again (Go's
// stopTheWorldWithSema/startTheWorldWithSema); procs > 0 resizes to procs
// Ps while stopped. Called from a goroutine; callers hold sched.worldsema.
void stopTheWorld();
void startTheWorld(std::int32_t procs);
std::uint32_t fastrand();
// Goroutines alive in the current run (Go's gcount).
std::int32_t gcount();

}  // namespace goro::runtime
