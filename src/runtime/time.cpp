// time.cpp — runtime timers (per-P heaps, see time.hpp) and the time API
// built on them: sleep_for/sleep_until, after, Timer, Ticker, after_func.
// Invariants: lock order t->mu → ts.lock → sched.lock; timer functions run
// with no lock held; a heap entry holds a reference on a counted timer.
// Channel timers behave as Go 1.19's: a buffer of one value, filled without
// blocking, so a slow reader misses ticks and stop does not drain.
// Mirrors time.go (runtime) and sleep.go/tick.go (package time).
#include "time.hpp"

#include <time.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "foreign.hpp"
#include "goro/time.hpp"
#include "hchan.hpp"
#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {

namespace {

// The heap is 4-ary, as Go's: shallower than a binary heap, and the four
// children of a node share a cache line or two.
void siftupTimer(std::vector<TimerEntry>& h, std::size_t i) {
  TimerEntry e = h[i];
  while (i > 0) {
    std::size_t p = (i - 1) / 4;
    if (e.when >= h[p].when) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

void siftdownTimer(std::vector<TimerEntry>& h, std::size_t i) {
  std::size_t n = h.size();
  TimerEntry e = h[i];
  for (;;) {
    std::size_t c = i * 4 + 1;
    if (c >= n) break;
    std::size_t best = c;
    for (std::size_t k = c + 1; k < c + 4 && k < n; k++) {
      if (h[k].when < h[best].when) best = k;
    }
    if (h[best].when >= e.when) break;
    h[i] = h[best];
    i = best;
  }
  h[i] = e;
}

// ts.lock held.
void updateTimer0When(PTimers& ts) {
  // seq_cst, as the loads in timeSleepUntil and checkTimers: whoever adds
  // a timer then loads npidle/nmspinning (wakeNetPoller, wakep), and an M
  // going idle changes those and then loads timer0When; one must see the
  // other (the delicate dance, for timers).
  ts.timer0When.store(ts.heap.empty() ? 0 : ts.heap[0].when, std::memory_order_seq_cst);
  ts.len.store(static_cast<std::int32_t>(ts.heap.size()), std::memory_order_relaxed);
}

// ts.lock held. Removes heap[0].
void popTimer(PTimers& ts) {
  auto& h = ts.heap;
  h[0] = h.back();
  h.pop_back();
  if (!h.empty()) siftdownTimer(h, 0);
  updateTimer0When(ts);
}

// Stale entries crowd a heap of n entries once they are more than a quarter
// of it (Go's deletedTimers > len/4): then they are dropped all at once
// (cleanTimers), so each costs O(1) amortized. The one threshold, for the
// add, check and run paths.
bool tooStale(std::int32_t stale, std::size_t n) { return stale > 0 && stale > static_cast<std::int32_t>(n / 4); }

bool isStale(const TimerEntry& e) { return e.seq != e.t->seq.load(std::memory_order_acquire); }

void timerRetain(HeapTimer* t) {
  if (t->refs != nullptr) t->refs->fetch_add(1, std::memory_order_relaxed);
}

void timerRelease(HeapTimer* t) {
  if (t->refs != nullptr && t->refs->fetch_sub(1, std::memory_order_acq_rel) == 1) t->release(t);
}

// Drop the stale entries of ts (Go's clearDeletedTimers). ts.lock held; the
// dropped entries' references are handed back through out.
void cleanTimers(PTimers& ts, std::vector<HeapTimer*>& out) {
  auto& h = ts.heap;
  std::size_t j = 0;
  for (std::size_t i = 0; i < h.size(); i++) {
    if (isStale(h[i])) {
      out.push_back(h[i].t);
    } else {
      h[j++] = h[i];
    }
  }
  h.resize(j);
  for (std::size_t i = (h.size() + 2) / 4 + 1; i-- > 0;) {
    if (i < h.size()) siftdownTimer(h, i);
  }
  ts.stale.store(0, std::memory_order_relaxed);
  updateTimer0When(ts);
}

// The P whose heap a new timer goes on: the caller's, else the first.
P* timerP() {
  G* g = getg();
  if (g != nullptr && g->m->p != nullptr) return g->m->p;
  if (g == nullptr) foreign_register();
  return allp[0];
}

// t->mu held; t->when set, no live entry. Stale entries beyond a quarter
// of the heap are dropped first (their references handed back through
// dropped, to release once no lock is held), so that a timer reset again
// and again far ahead cannot grow the heap.
void addTimerLocked(HeapTimer* t, P* pp, std::vector<HeapTimer*>& dropped) {
  PTimers& ts = pp->timers;
  timerRetain(t);
  LockGuard l(ts.lock);
  if (tooStale(ts.stale.load(std::memory_order_relaxed), ts.heap.size())) cleanTimers(ts, dropped);
  ts.heap.push_back(TimerEntry{t->when, t, t->seq.load(std::memory_order_relaxed)});
  siftupTimer(ts.heap, ts.heap.size() - 1);
  updateTimer0When(ts);
  t->ts = &ts;
}

// t->mu held: turn the live entry (if any) stale.
void unheapLocked(HeapTimer* t) {
  if (t->ts != nullptr) {
    t->seq.fetch_add(1, std::memory_order_release);
    t->ts->stale.fetch_add(1, std::memory_order_relaxed);
    t->ts = nullptr;
  }
}

}  // namespace

bool modtimer(HeapTimer* t, std::int64_t when, std::int64_t period) {
  if (when <= 0) detail::fatal("modtimer: bad when");
  bool pending;
  std::vector<HeapTimer*> dropped;
  {
    LockGuard l(t->mu);
    pending = t->when != 0;
    unheapLocked(t);
    t->when = when;
    t->period = period;
    addTimerLocked(t, timerP(), dropped);
  }
  for (HeapTimer* d : dropped) timerRelease(d);
  wakeNetPoller(when);
  return pending;
}

bool deltimer(HeapTimer* t) {
  LockGuard l(t->mu);
  bool pending = t->when != 0;
  unheapLocked(t);
  t->when = 0;
  t->period = 0;
  return pending;
}

std::int64_t checkTimers(P* pp, std::int64_t& now, bool* ran) {
  PTimers& ts = pp->timers;
  std::int64_t next = ts.timer0When.load(std::memory_order_seq_cst);
  if (next == 0) return 0;
  if (now == 0) now = nanotime();
  if (next > now) {
    // Nothing due; but clean up if stale entries crowd the heap (a timer
    // reset again and again far into the future leaves one per reset).
    std::int32_t len = ts.len.load(std::memory_order_relaxed);
    if (!tooStale(ts.stale.load(std::memory_order_relaxed), static_cast<std::size_t>(len))) return next;
  }
  std::vector<HeapTimer*> dropped;
  for (;;) {
    ts.lock.lock();
    if (ts.heap.empty()) {
      ts.stale.store(0, std::memory_order_relaxed);
      ts.lock.unlock();
      break;
    }
    TimerEntry e = ts.heap[0];
    if (isStale(e)) {
      popTimer(ts);
      ts.lock.unlock();
      timerRelease(e.t);
      continue;
    }
    if (e.when > now) {
      if (tooStale(ts.stale.load(std::memory_order_relaxed), ts.heap.size())) cleanTimers(ts, dropped);
      ts.lock.unlock();
      break;
    }
    popTimer(ts);
    ts.lock.unlock();

    // Due. Check again under the timer's lock: it may have been changed
    // since the entry was read.
    HeapTimer* t = e.t;
    t->mu.lock();
    if (t->seq.load(std::memory_order_relaxed) != e.seq || t->ts != &ts) {
      t->mu.unlock();
      timerRelease(t);
      continue;
    }
    t->ts = nullptr;
    if (t->period > 0) {
      // Leave in heap but adjust next time to fire: skip the periods
      // already missed (a slow Ticker reader sees one tick, not a burst).
      std::int64_t delta = t->when - now;
      std::int64_t periods = 1 + (-delta) / t->period;
      if (t->when > std::numeric_limits<std::int64_t>::max() - periods * t->period) {
        t->when = std::numeric_limits<std::int64_t>::max();
      } else {
        t->when += periods * t->period;
      }
      addTimerLocked(t, pp, dropped);
    } else {
      t->when = 0;
    }
    TimerFunc f = t->f;
    void* arg = t->arg;
    t->mu.unlock();
    if (ran != nullptr) *ran = true;
    f(arg, now);
    timerRelease(t);
  }
  for (HeapTimer* t : dropped) timerRelease(t);
  return ts.timer0When.load(std::memory_order_seq_cst);
}

std::int64_t timeSleepUntil() {
  std::int64_t next = 0;
  for (P* pp : allp) {
    std::int64_t w = pp->timers.timer0When.load(std::memory_order_seq_cst);
    if (w != 0 && (next == 0 || w < next)) next = w;
  }
  return next;
}

void moveTimers(P* from, P* to, std::vector<HeapTimer*>& dropped) {
  std::vector<TimerEntry> entries;
  {
    LockGuard l(from->timers.lock);
    entries.swap(from->timers.heap);
    from->timers.stale.store(0, std::memory_order_relaxed);
    updateTimer0When(from->timers);
  }
  for (const TimerEntry& e : entries) {
    HeapTimer* t = e.t;
    bool moved = false;
    {
      LockGuard l(t->mu);
      if (t->seq.load(std::memory_order_relaxed) == e.seq && t->ts == &from->timers) {
        LockGuard l2(to->timers.lock);
        to->timers.heap.push_back(e);
        siftupTimer(to->timers.heap, to->timers.heap.size() - 1);
        updateTimer0When(to->timers);
        t->ts = &to->timers;
        moved = true;
      }
    }
    if (!moved) dropped.push_back(t);
  }
}

void timersRelease(const std::vector<HeapTimer*>& dropped) {
  for (HeapTimer* t : dropped) timerRelease(t);
}

void timersDestroy(PTimers& ts) {
  std::vector<TimerEntry> entries;
  {
    LockGuard l(ts.lock);
    entries.swap(ts.heap);
    updateTimer0When(ts);
  }
  for (const TimerEntry& e : entries) {
    {
      LockGuard l(e.t->mu);
      if (e.t->ts == &ts) {
        e.t->ts = nullptr;
        e.t->when = 0;
      }
    }
    timerRelease(e.t);
  }
}

const char* timers_invariant_violation(PTimers& ts) {
  std::vector<TimerEntry> h;
  {
    LockGuard l(ts.lock);
    h = ts.heap;
    for (std::size_t i = 1; i < h.size(); i++) {
      if (h[(i - 1) / 4].when > h[i].when) return "heap order broken: an entry is due before its parent";
    }
    if (ts.len.load(std::memory_order_relaxed) != static_cast<std::int32_t>(h.size())) {
      return "len differs from the heap's size";
    }
    if (ts.timer0When.load(std::memory_order_relaxed) != (h.empty() ? 0 : h[0].when)) {
      return "timer0When is not the first entry's when";
    }
  }
  std::vector<HeapTimer*> live;
  for (const TimerEntry& e : h) {
    LockGuard l(e.t->mu);
    std::uint64_t seq = e.t->seq.load(std::memory_order_relaxed);
    if (e.seq > seq) return "an entry's seq is ahead of its timer's";
    if (e.seq < seq) continue;  // stale
    if (e.t->ts != &ts) return "a live entry's timer does not point at its heap";
    if (e.t->when != e.when) return "a live entry's when differs from its timer's";
    live.push_back(e.t);
  }
  std::sort(live.begin(), live.end());
  if (std::adjacent_find(live.begin(), live.end()) != live.end()) return "a timer has two live entries";
  return nullptr;
}

namespace {

void goroutineReady(void* arg, std::int64_t) { goready(static_cast<G*>(arg)); }

struct SleepArgs {
  HeapTimer* t;
  std::int64_t until;
};

// On g0, after the goroutine is _Gwaiting: only now may the timer fire.
bool resetForSleep(G*, void* arg) {
  auto* a = static_cast<SleepArgs*>(arg);
  modtimer(a->t, a->until, 0);
  return true;
}

}  // namespace

void timeSleep(std::int64_t until) {
  G* gp = getg();
  if (gp->timer == nullptr) {
    gp->timer = new HeapTimer;
    gp->timer->f = &goroutineReady;
    gp->timer->arg = gp;
  }
  SleepArgs a{gp->timer, until};
  gopark(&resetForSleep, &a, WaitReason::sleep);
}

}  // namespace goro::runtime

// ---------------------------------------------------------------------------
// The public time API.

namespace goro {

using runtime::nanotime;

namespace {

// nanotime() + d, saturating (Go's when()): a negative d is now.
std::int64_t whenAfter(std::chrono::nanoseconds d) {
  std::int64_t now = nanotime();
  std::int64_t n = d.count();
  if (n <= 0) return now;
  if (n > std::numeric_limits<std::int64_t>::max() - now) return std::numeric_limits<std::int64_t>::max();
  return now + n;
}

Clock::time_point timeOf(std::int64_t nanotime_ns) {
  // steady_clock is CLOCK_MONOTONIC, the clock of nanotime.
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(nanotime_ns)));
}

}  // namespace

namespace detail {

// Timers alive (runtime::timers_alive): one more in SharedTimer(), one less
// in ~SharedTimer(). Relaxed: a count for tests, read once the timers are
// quiet.
std::atomic<std::int64_t> timers_alive_count{0};

// A timer shared by Timer/Ticker handles and by its heap entries.
struct SharedTimer {
  runtime::HeapTimer rt;
  std::atomic<std::int32_t> refs{1};
  hchan* c = nullptr;        // the channel it sends on (Timer, Ticker, after)
  std::function<void()> fn;  // or the function it starts (after_func)

  // Runs when due: Go's sendTime, a non-blocking send of the current time.
  static void sendTime(void* arg, std::int64_t now) {
    auto* self = static_cast<SharedTimer*>(arg);
    Clock::time_point tp = timeOf(now);
    try {
      chansend(self->c, &tp, false);
    } catch (const ChannelClosed&) {
      // Somebody closed the timer's channel: nothing to deliver to.
    }
  }
  // Go's goFunc: f runs in a goroutine of its own.
  static void goFunc(void* arg, std::int64_t) {
    auto* self = static_cast<SharedTimer*>(arg);
    self->refs.fetch_add(1, std::memory_order_relaxed);
    goro::go([self] {
      struct Release {
        SharedTimer* t;
        ~Release() { timer_release(t); }
      } r{self};
      self->fn();
    });
  }
  static void destroy(runtime::HeapTimer* rt) {
    auto* self = static_cast<SharedTimer*>(rt->arg);
    if (self->c != nullptr) chanrelease(self->c);
    delete self;
  }

  SharedTimer() {
    rt.refs = &refs;
    rt.release = &destroy;
    rt.arg = this;
    timers_alive_count.fetch_add(1, std::memory_order_relaxed);
  }
  ~SharedTimer() { timers_alive_count.fetch_sub(1, std::memory_order_relaxed); }
  SharedTimer(const SharedTimer&) = delete;
  SharedTimer& operator=(const SharedTimer&) = delete;
};

}  // namespace detail

std::int64_t runtime::timers_alive() { return detail::timers_alive_count.load(std::memory_order_relaxed); }

namespace detail {

void timer_retain(SharedTimer* t) noexcept { t->refs.fetch_add(1, std::memory_order_relaxed); }
void timer_release(SharedTimer* t) noexcept {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) SharedTimer::destroy(&t->rt);
}

hchan* timer_chan(const SharedTimer* t) noexcept { return t->c; }

namespace {
void need_runtime(const runtime::ForeignCall& fc) {
  if (!fc.ok()) throw std::logic_error("goro: timers need a running goro runtime (start one with goro::run)");
}
}  // namespace

SharedTimer* timer_new(std::chrono::nanoseconds d, std::chrono::nanoseconds period, std::function<void()> fn) {
  runtime::ForeignCall fc;  // a plain thread: teardown waits until the timer is in a heap
  need_runtime(fc);
  auto* t = new SharedTimer;
  if (fn) {
    t->fn = std::move(fn);
    t->rt.f = &SharedTimer::goFunc;
  } else {
    t->c = makechan(&ElemTypeOf<Clock::time_point>::value, 1);
    t->rt.f = &SharedTimer::sendTime;
  }
  runtime::modtimer(&t->rt, whenAfter(d), period.count());
  return t;
}

bool timer_stop(SharedTimer* t) noexcept { return runtime::deltimer(&t->rt); }

bool timer_reset(SharedTimer* t, std::chrono::nanoseconds d, std::chrono::nanoseconds period) {
  runtime::ForeignCall fc;
  need_runtime(fc);
  return runtime::modtimer(&t->rt, whenAfter(d), period.count());
}

}  // namespace detail

void sleep_for(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  if (runtime::getg() == nullptr) {
    runtime::foreign_register();  // it may wake a goroutine once awake
    std::this_thread::sleep_for(d);
    return;
  }
  runtime::timeSleep(whenAfter(d));
}

void sleep_until(Clock::time_point t) {
  sleep_for(std::chrono::duration_cast<std::chrono::nanoseconds>(t - Clock::now()));
}

Chan<Clock::time_point> after(std::chrono::nanoseconds d) { return Timer(d).channel(); }

Timer::Timer(std::chrono::nanoseconds d) : TimerHandle(detail::timer_new(d, std::chrono::nanoseconds(0), nullptr)) {}

Timer after_func(std::chrono::nanoseconds d, std::function<void()> f) {
  if (!f) throw std::invalid_argument("goro::after_func: f is empty (Go's AfterFunc of a nil func)");
  return Timer(detail::timer_new(d, std::chrono::nanoseconds(0), std::move(f)));
}

bool Timer::stop() { return detail::timer_stop(t_); }

bool Timer::reset(std::chrono::nanoseconds d) { return detail::timer_reset(t_, d, std::chrono::nanoseconds(0)); }

namespace {

void check_period(std::chrono::nanoseconds d, const char* what) {
  if (d.count() <= 0) {
    throw std::invalid_argument(std::string("goro::Ticker") + what + ": non-positive interval (" +
                                std::to_string(d.count()) + " ns)");
  }
}

}  // namespace

Ticker::Ticker(std::chrono::nanoseconds d) : TimerHandle((check_period(d, ""), detail::timer_new(d, d, nullptr))) {}

void Ticker::stop() { detail::timer_stop(t_); }

void Ticker::reset(std::chrono::nanoseconds d) {
  check_period(d, "::reset");
  detail::timer_reset(t_, d, d);
}

}  // namespace goro
