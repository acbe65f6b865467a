// sema.hpp — semaphores that park goroutines (and block plain threads),
// keyed by address, and the notify list behind Cond.
// Invariant: a waiter is queued under its root's lock and woken at most
// once; an address's waiters wake in queue order, each by one release of
// that address. Mirrors sema.go (semacquire1, semrelease1, semaRoot's
// treap, notifyList).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime2.hpp"
#include "sudog.hpp"

namespace goro::runtime {

// Wait until *addr > 0, then decrement it. lifo: queue at the head (a
// waiter that already waited once, as sync.Mutex does).
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason);
// Increment *addr and wake one waiter. With handoff the count goes to that
// waiter directly and the caller yields to it (sync.Mutex starvation mode).
void semrelease(std::atomic<std::uint32_t>* addr, bool handoff);

// For tests: the waiters queued on addr, and the first broken invariant of
// the semaphore table (treap order and heap order, links, nwait), or
// nullptr. Both take the roots' locks.
std::uint32_t sema_waiters(const void* addr);
const char* sema_invariant_violation();
// For tests of the table alone: the root addr hashes to, and the queue
// operations of semacquire and semrelease on sudogs the caller owns, with
// no waiter behind them (no park, no wakeup). sema_enqueue queues s on addr
// (lifo: at the head); sema_dequeue takes addr's first waiter out (nullptr
// if none), with its links cleared. sema_detach takes out any of them.
std::size_t sema_root_index(const void* addr);
void sema_enqueue(Sudog* s, const void* addr, bool lifo);
Sudog* sema_dequeue(const void* addr);

// Go's notifyList: tickets make Cond.Signal wake the longest waiter.
struct NotifyList {
  std::atomic<std::uint32_t> wait{0};    // ticket of the next waiter (atomic)
  std::atomic<std::uint32_t> notify{0};  // ticket of the next waiter to notify (stored under lock)
  Lock lock;
  Sudog* head = nullptr;
  Sudog* tail = nullptr;
};
// Remove an abandoned goroutine's sudog from its semaphore or notify list.
void sema_detach(Sudog* s);
void notify_detach(Sudog* s);
void notifyListDestroy(NotifyList* l);

std::uint32_t notifyListAdd(NotifyList* l);
void notifyListWait(NotifyList* l, std::uint32_t t);
// Ticket t was taken, but its holder will not wait after all (Cond::wait
// whose unlock threw): the list goes on as if t had never been taken.
void notifyListCancel(NotifyList* l, std::uint32_t t);
void notifyListNotifyOne(NotifyList* l);
void notifyListNotifyAll(NotifyList* l);

}  // namespace goro::runtime
