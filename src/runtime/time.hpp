// time.hpp — runtime timers: one 4-ary heap per P (Go's p.timers).
// Invariants:
//   - Lock order: a timer's mu, then a heap's lock, then sched.lock. A heap's
//     lock is never held while a timer's mu is taken.
//   - A timer has at most one live heap entry: the one whose seq equals the
//     timer's seq, in the heap t->ts. Changing or stopping a timer bumps seq,
//     which turns the old entry stale; stale entries are dropped when they
//     reach the top, or all at once when they exceed a quarter of the heap.
//   - A timer function runs with no lock held, on g0 of an M that holds a P.
// Mirrors time.go (addtimer, modtimer, deltimer, checkTimers, runtimer).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "lock_futex.hpp"

namespace goro::runtime {

struct P;
struct PTimers;

// Called when the timer fires, with the time it was due and the time now.
using TimerFunc = void (*)(void* arg, std::int64_t now);

struct HeapTimer {
  Lock mu;
  // Guarded by mu.
  std::int64_t when = 0;    // nanotime when due; 0: not pending
  std::int64_t period = 0;  // > 0: fires again every period
  PTimers* ts = nullptr;    // heap with the live entry; nullptr: none
  std::atomic<std::uint64_t> seq{0};
  TimerFunc f = nullptr;
  void* arg = nullptr;
  // Timers owned by handles (time.cpp) are reference-counted, and every heap
  // entry holds a reference; a goroutine's sleep timer has refs == nullptr
  // and lives as long as its G.
  std::atomic<std::int32_t>* refs = nullptr;
  void (*release)(HeapTimer*) = nullptr;  // called when refs drops to 0
};

struct TimerEntry {
  std::int64_t when;
  HeapTimer* t;
  std::uint64_t seq;
};

struct PTimers {
  Lock lock;
  std::vector<TimerEntry> heap;             // 4-ary min-heap on when; guarded by lock
  std::atomic<std::int64_t> timer0When{0};  // heap[0].when, 0 if empty: read without lock
  std::atomic<std::int32_t> stale{0};       // entries known to be stale (a hint)
  std::atomic<std::int32_t> len{0};         // heap.size(), for schedtrace and checkdead
};

// modtimer: (re)arm t to fire at when (period > 0: then every period) on the
// current P's heap (the first P's from a thread that is not an M). Returns
// whether t was pending. when must be > 0.
bool modtimer(HeapTimer* t, std::int64_t when, std::int64_t period);
// deltimer: stop t; returns whether it was pending.
bool deltimer(HeapTimer* t);

// checkTimers: run pp's timers that are due. Returns the time of the next
// one (0: none), and sets ran if any ran. now == 0 is read from the clock
// only if some timer exists (and so returned). Called with a P held.
std::int64_t checkTimers(P* pp, std::int64_t& now, bool* ran = nullptr);
// The earliest timer of every P (0: none): how long an M may sleep.
std::int64_t timeSleepUntil();
// Move every timer of `from` to `to` (procresize; the world is stopped).
// The references of stale entries go to dropped, for timersRelease once no
// runtime lock is held (releasing may run a user's destructor).
void moveTimers(P* from, P* to, std::vector<HeapTimer*>& dropped);
void timersRelease(const std::vector<HeapTimer*>& dropped);
// Drop every heap entry (teardown), releasing the timers they hold.
void timersDestroy(PTimers& ts);

// Timers of the time API (Timer, Ticker, after, after_func) allocated and
// not yet freed, over every run: the leak check in tests.
std::int64_t timers_alive();

// For tests: the first broken invariant of ts, or nullptr. The heap is a
// 4-ary min-heap on when; len and timer0When match it; no entry's seq is
// ahead of its timer's; a live entry's timer points back at ts with the
// entry's when, and no timer has two live entries. Takes ts.lock, then
// (having released it, as the lock order wants) each timer's mu: call it
// while ts's timers are left alone.
const char* timers_invariant_violation(PTimers& ts);

// The time an M blocked in findRunnable sleeps until is woken earlier when
// a timer due before it is added (Go's netpollBreak); see proc.cpp.
void wakeNetPoller(std::int64_t when);

// time.Sleep for the current goroutine: parks it until nanotime() >= until.
void timeSleep(std::int64_t until);

}  // namespace goro::runtime
