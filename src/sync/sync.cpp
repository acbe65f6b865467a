// sync.cpp — Mutex, RWMutex, WaitGroup and Cond on the runtime's
// semaphores. Invariants: Mutex.state packs locked, woken, starving and the
// waiter count as Go's does; misuse (unlock of an unlocked mutex, a
// negative WaitGroup counter) throws before any state changes.
// Mirrors sync/mutex.go, rwmutex.go, waitgroup.go, cond.go.
#include "goro/sync.hpp"

#include <new>
#include <string>

#include "foreign.hpp"
#include "proc.hpp"
#include "sema.hpp"

namespace goro {

using runtime::semacquire;
using runtime::semrelease;
using runtime::WaitReason;

namespace {

constexpr std::int64_t kStarvationThresholdNS = 1000000;  // 1 ms

// sync_runtime_canSpin: spin only on a multi-core machine, with other Ps
// running (someone may release the lock soon), an empty local run queue
// (nothing better to do), and only a few times.
bool canSpin(int iter) {
  using namespace runtime;
  if (iter >= 4 || ncpu.load(std::memory_order_relaxed) <= 1) return false;
  G* gp = getg();
  if (gp == nullptr || gp->m->p == nullptr) return false;
  if (gomaxprocs <=
      sched.npidle.load(std::memory_order_relaxed) + sched.nmspinning.load(std::memory_order_relaxed) + 1) {
    return false;
  }
  return runqempty(gp->m->p->runq);
}

}  // namespace

// ---------------------------------------------------------------------------
// Mutex

// Every locking entry point of the sync types first counts a plain thread
// as one that used the runtime (runtime::foreign_use): while it holds a
// lock a goroutine waits for, that goroutine is not deadlocked.
void Mutex::lock() {
  runtime::foreign_use();
  std::int32_t unlocked = 0;
  if (state_.compare_exchange_strong(unlocked, kLocked, std::memory_order_acquire)) return;
  lock_slow();
}

bool Mutex::try_lock() {
  runtime::foreign_use();
  std::int32_t old = state_.load(std::memory_order_relaxed);
  if ((old & (kLocked | kStarving)) != 0) return false;
  // There may be a goroutine waiting for the mutex, but we are running now
  // and can try to grab it before that goroutine wakes up.
  return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire);
}

void Mutex::lock_slow() {
  std::int64_t waitStartTime = 0;
  bool starving = false;
  bool awoke = false;
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Don't spin in starvation mode: ownership is handed off to waiters.
    if ((old & (kLocked | kStarving)) == kLocked && canSpin(iter)) {
      // Active spinning makes sense. Try to set the woken flag to tell
      // Unlock not to wake other blocked goroutines.
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_strong(old, old | kWoken)) {
        awoke = true;
      }
      runtime::procyield(30);
      iter++;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t newstate = old;
    // Don't try to acquire a starving mutex: new arrivals must queue.
    if ((old & kStarving) == 0) newstate |= kLocked;
    if ((old & (kLocked | kStarving)) != 0) newstate += 1 << kWaiterShift;
    // Switch to starvation mode, if the mutex is still locked.
    if (starving && (old & kLocked) != 0) newstate |= kStarving;
    if (awoke) newstate &= ~kWoken;  // we were woken: reset the flag
    if (state_.compare_exchange_strong(old, newstate, std::memory_order_acquire)) {
      if ((old & (kLocked | kStarving)) == 0) break;  // locked with CAS
      // If we were already waiting before, queue at the front.
      bool queueLifo = waitStartTime != 0;
      if (waitStartTime == 0) waitStartTime = runtime::nanotime();
      semacquire(&sema_, queueLifo, WaitReason::sync_mutex_lock);
      starving = starving || runtime::nanotime() - waitStartTime > kStarvationThresholdNS;
      old = state_.load(std::memory_order_relaxed);
      if ((old & kStarving) != 0) {
        // The mutex was handed off to us: fix up the state.
        std::int32_t delta = kLocked - (1 << kWaiterShift);
        if (!starving || (old >> kWaiterShift) == 1) {
          // Exit starvation mode: we are the last waiter, or not starving.
          delta -= kStarving;
        }
        state_.fetch_add(delta, std::memory_order_acquire);
        break;
      }
      awoke = true;
      iter = 0;
    } else {
      old = state_.load(std::memory_order_relaxed);
    }
  }
}

void Mutex::unlock() {
  std::int32_t old = state_.load(std::memory_order_relaxed);
  do {
    if ((old & kLocked) == 0) throw std::logic_error("sync: unlock of unlocked mutex");
  } while (!state_.compare_exchange_weak(old, old - kLocked, std::memory_order_release));
  std::int32_t newstate = old - kLocked;
  if (newstate != 0) unlock_slow(newstate);
}

void Mutex::unlock_slow(std::int32_t newstate) {
  if ((newstate & kStarving) == 0) {
    std::int32_t old = newstate;
    for (;;) {
      // No waiters, or a goroutine already woken or grabbed the lock: no
      // one to wake.
      if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
      // Grab the right to wake someone.
      newstate = (old - (1 << kWaiterShift)) | kWoken;
      if (state_.compare_exchange_strong(old, newstate)) {
        semrelease(&sema_, false);
        return;
      }
    }
  }
  // Starvation mode: hand ownership to the next waiter and yield to it.
  semrelease(&sema_, true);
}

// ---------------------------------------------------------------------------
// RWMutex

void RWMutex::lock_shared() {
  runtime::foreign_use();
  if (readerCount_.fetch_add(1, std::memory_order_acquire) + 1 < 0) {
    // A writer is pending: wait for it.
    semacquire(&readerSem_, false, WaitReason::sync_rwmutex_rlock);
  }
}

bool RWMutex::try_lock_shared() {
  runtime::foreign_use();
  std::int32_t c = readerCount_.load(std::memory_order_relaxed);
  for (;;) {
    if (c < 0) return false;
    if (readerCount_.compare_exchange_weak(c, c + 1, std::memory_order_acquire)) return true;
  }
}

void RWMutex::unlock_shared() {
  std::int32_t c = readerCount_.load(std::memory_order_relaxed);
  do {
    if (c == 0 || c == -kMaxReaders) throw std::logic_error("sync: RUnlock of unlocked RWMutex");
  } while (!readerCount_.compare_exchange_weak(c, c - 1, std::memory_order_release));
  if (c - 1 < 0) {
    // A writer is pending: the last departing reader wakes it.
    if (readerWait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) semrelease(&writerSem_, false);
  }
}

void RWMutex::lock() {
  // First, resolve competition with other writers.
  w_.lock();
  // Announce to readers there is a pending writer.
  std::int32_t r = readerCount_.fetch_add(-kMaxReaders, std::memory_order_acq_rel);
  // Wait for active readers.
  if (r != 0 && readerWait_.fetch_add(r, std::memory_order_acq_rel) + r != 0) {
    semacquire(&writerSem_, false, WaitReason::sync_rwmutex_lock);
  }
}

bool RWMutex::try_lock() {
  if (!w_.try_lock()) return false;
  std::int32_t zero = 0;
  if (!readerCount_.compare_exchange_strong(zero, -kMaxReaders, std::memory_order_acquire)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  std::int32_t c = readerCount_.load(std::memory_order_relaxed);
  do {
    if (c >= 0) throw std::logic_error("sync: Unlock of unlocked RWMutex");
  } while (!readerCount_.compare_exchange_weak(c, c + kMaxReaders, std::memory_order_release));
  // Announce to readers there is no active writer; unblock them.
  std::int32_t r = c + kMaxReaders;
  for (std::int32_t i = 0; i < r; i++) semrelease(&readerSem_, false);
  w_.unlock();
}

// ---------------------------------------------------------------------------
// WaitGroup

void WaitGroup::add(int delta) {
  runtime::foreign_use();
  std::uint64_t state = state_.load(std::memory_order_relaxed);
  std::uint64_t newstate;
  std::int32_t v;
  std::uint32_t w;
  do {
    v = static_cast<std::int32_t>(state >> 32) + delta;
    w = static_cast<std::uint32_t>(state);
    if (v < 0) throw std::logic_error("sync: negative WaitGroup counter");
    if (w != 0 && delta > 0 && v == delta) {
      throw std::logic_error("sync: WaitGroup misuse: Add called concurrently with Wait");
    }
    newstate = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(v)) << 32) | w;
  } while (!state_.compare_exchange_weak(state, newstate, std::memory_order_acq_rel));
  if (v > 0 || w == 0) return;
  // The counter is 0 and there are waiters: nobody may change the state
  // now (Go's second misuse check), reset it, and wake them all.
  if (state_.load(std::memory_order_relaxed) != newstate) {
    throw std::logic_error("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  // Release: a wait() that comes after the reset and returns at once must
  // see what every done() before it did (a plain store ends the release
  // sequence of the CAS above).
  state_.store(0, std::memory_order_release);
  for (std::uint32_t i = 0; i < w; i++) semrelease(&sema_, false);
}

void WaitGroup::wait() {
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;  // counter is 0: no need to wait
    // Increment the waiters count.
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel)) {
      semacquire(&sema_, false, WaitReason::semacquire);
      if (state_.load(std::memory_order_acquire) != 0) {
        throw std::logic_error("sync: WaitGroup is reused before previous Wait has returned");
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Cond

Cond::Cond(Mutex& l) : l_(l) {
  static_assert(sizeof(runtime::NotifyList) <= sizeof notify_, "Cond::notify_ is too small for the notify list");
  static_assert(alignof(runtime::NotifyList) <= kNotifyAlign, "Cond::notify_ is not aligned for the notify list");
  ::new (notify_) runtime::NotifyList();
}
Cond::~Cond() {
  auto* nl = std::launder(reinterpret_cast<runtime::NotifyList*>(notify_));
  runtime::notifyListDestroy(nl);
  nl->~NotifyList();
}

void Cond::wait() {
  auto* nl = std::launder(reinterpret_cast<runtime::NotifyList*>(notify_));
  // The ticket comes first, as in Go: a signal between the unlock and the
  // wait must not be lost. An unlock that throws (the mutex was not held)
  // hands the ticket back, so the Cond is as it was before the call.
  std::uint32_t t = runtime::notifyListAdd(nl);
  try {
    l_.unlock();
  } catch (...) {
    runtime::notifyListCancel(nl, t);
    throw;
  }
  runtime::notifyListWait(nl, t);
  l_.lock();
}

void Cond::signal() { runtime::notifyListNotifyOne(std::launder(reinterpret_cast<runtime::NotifyList*>(notify_))); }

void Cond::broadcast() { runtime::notifyListNotifyAll(std::launder(reinterpret_cast<runtime::NotifyList*>(notify_))); }

}  // namespace goro
