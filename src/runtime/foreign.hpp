// foreign.hpp — threads outside the runtime ("plain threads": not Ms) that
// use it: call go(), start timers, wake waiters, block on a channel or a
// lock. Two questions are asked of them: checkdead's "may one still wake a
// goroutine?" (foreign_may_wake) and teardown's "is one still inside the
// runtime?" (foreign_wait_calls, foreign_wait_wakers).
// Invariants: the counts are per run (sched.nforeign's generation): a
// thread registered in an earlier run does not count in this one; every
// count moves with seq_cst RMWs, paired with the readers' seq_cst loads.
// goro's own: Go has no threads outside its runtime.
#pragma once

#include <atomic>
#include <cstdint>

#include "proc.hpp"

namespace goro::runtime {

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
// A plain thread waking waiters (it dequeued one, or may): counted from
// under the queue's lock until its last ready_waiter, so that teardown,
// after detaching the abandoned goroutines, waits for such wakers before
// freeing Gs and sudogs. Goroutines (whose Ms teardown joins) are not
// counted. done() ends it early, before the thread blocks.
extern std::atomic<std::int32_t> foreign_wakers;
class ForeignWake {
 public:
  ForeignWake() : active_(getg() == nullptr) {
    if (active_) {
      foreign_register();
      foreign_wakers.fetch_add(1, std::memory_order_seq_cst);
    }
  }
  ~ForeignWake() { done(); }
  ForeignWake(const ForeignWake&) = delete;
  ForeignWake& operator=(const ForeignWake&) = delete;
  void done() {
    if (active_) foreign_wakers.fetch_sub(1, std::memory_order_seq_cst);
    active_ = false;
  }

 private:
  bool active_;
};

// The calling plain thread is about to block in the runtime (a channel, a
// semaphore): it no longer counts as one that may wake a goroutine.
// Returns a token for foreign_unblock, which whoever wakes it calls before
// the wakeup (so checkdead never sees it blocked once it may run), or the
// thread itself when it did not block after all.
std::uint32_t foreign_block();
void foreign_unblock(std::uint32_t token);

// A new run starts counting afresh (gen: the run's generation).
void foreign_newrun(std::uint32_t gen);

// checkdead's question: may a plain thread still wake a goroutine? nforeign
// is foreign_threads() as read before the caller counted the process's
// threads (a thread that registers later is caught by asking again).
std::int32_t foreign_threads();
bool foreign_may_wake(std::int32_t nforeign);

// teardown's questions, asked once the run is exiting (no new call gets
// in): wait until no plain thread is inside a runtime call, and until none
// is still waking a waiter it dequeued.
void foreign_wait_calls();
void foreign_wait_wakers();

}  // namespace goro::runtime
