// sema.cpp — the semaphore table (a root per address hash, each a list of
// waiting sudogs) and the notify list.
// Invariants: root.nwait counts queued waiters, so a release with nobody
// waiting never takes the lock; a woken waiter re-checks the count unless
// the count was handed to it (ticket). Mirrors sema.go.
#include "sema.hpp"

#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {
namespace {

constexpr std::size_t kSemTabSize = 251;

struct SemaRoot {
  Mutex lock;
  Sudog* head = nullptr;  // waiters of every address hashing here, FIFO
  Sudog* tail = nullptr;
  std::atomic<std::uint32_t> nwait{0};
};

struct alignas(64) SemaRootPadded {
  SemaRoot root;
};
SemaRootPadded semtable[kSemTabSize];

SemaRoot* semroot(const void* addr) {
  return &semtable[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % kSemTabSize].root;
}

bool cansemacquire(std::atomic<std::uint32_t>* addr) {
  std::uint32_t v = addr->load(std::memory_order_relaxed);
  for (;;) {
    if (v == 0) return false;
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_acquire)) return true;
  }
}

void queue(SemaRoot* r, Sudog* s, bool lifo) {
  if (lifo) {
    s->next = r->head;
    s->prev = nullptr;
    if (r->head != nullptr) r->head->prev = s;
    r->head = s;
    if (r->tail == nullptr) r->tail = s;
  } else {
    s->next = nullptr;
    s->prev = r->tail;
    if (r->tail != nullptr) r->tail->next = s;
    r->tail = s;
    if (r->head == nullptr) r->head = s;
  }
}

void unlink(SemaRoot* r, Sudog* s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    r->head = s->next;
  }
  if (s->next != nullptr) {
    s->next->prev = s->prev;
  } else {
    r->tail = s->prev;
  }
  s->next = s->prev = nullptr;
}

// The first waiter on addr, removed from the root's list.
Sudog* dequeue(SemaRoot* r, const void* addr) {
  for (Sudog* s = r->head; s != nullptr; s = s->next) {
    if (s->elem != addr) continue;
    unlink(r, s);
    return s;
  }
  return nullptr;
}

bool unlock_mutex(G*, void* m) {
  static_cast<Mutex*>(m)->unlock();
  return true;
}

}  // namespace

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason) {
  if (cansemacquire(addr)) return;
  G* gp = current_waiter();
  bool thread = gp->threadnote != nullptr;
  Sudog local;
  Sudog* s = thread ? &local : acquireSudog();
  SemaRoot* root = semroot(addr);
  for (;;) {
    root->lock.lock();
    // Add ourselves to nwait to disable the "easy case" in semrelease.
    root->nwait.fetch_add(1, std::memory_order_seq_cst);
    // Check cansemacquire to avoid a missed wakeup.
    if (cansemacquire(addr)) {
      root->nwait.fetch_sub(1);
      root->lock.unlock();
      break;
    }
    // Any semrelease after the cansemacquire knows we're waiting (we set
    // nwait above), so go to sleep.
    s->g = gp;
    s->elem = addr;
    s->ticket = 0;
    s->queue = Sudog::Queue::sema;
    if (thread) gp->threadnote->clear();
    queue(root, s, lifo);
    gp->waiting = s;
    park_waiter(gp, &unlock_mutex, &root->lock, reason);
    gp->waiting = nullptr;
    if (s->ticket != 0 || cansemacquire(addr)) break;
  }
  s->elem = nullptr;
  s->g = nullptr;
  s->queue = Sudog::Queue::chan;
  if (!thread) releaseSudog(s);
}

void sema_detach(Sudog* s) {
  SemaRoot* root = semroot(s->elem);
  MutexGuard l(root->lock);
  for (Sudog* x = root->head; x != nullptr; x = x->next) {
    if (x != s) continue;
    unlink(root, s);
    root->nwait.fetch_sub(1);
    break;
  }
  s->elem = nullptr;
  s->queue = Sudog::Queue::chan;
}

void notifyListDestroy(NotifyList* l) {
  // Waiters still queued on a dying Cond wait forever (as on a destroyed
  // std::condition_variable, that is the caller's bug); they no longer
  // refer to the list. Ghosts (notifyListCancel) go.
  MutexGuard g(l->lock);
  for (Sudog* s = l->head; s != nullptr;) {
    Sudog* next = s->next;
    s->elem = nullptr;
    if (s->g == nullptr) delete s;
    s = next;
  }
  l->head = l->tail = nullptr;
}

void notify_detach(Sudog* s) {
  auto* l = static_cast<NotifyList*>(s->elem);
  if (l == nullptr) return;
  MutexGuard g(l->lock);
  for (Sudog *p = nullptr, *x = l->head; x != nullptr; p = x, x = x->next) {
    if (x != s) continue;
    if (p != nullptr)
      p->next = s->next;
    else
      l->head = s->next;
    if (s->next == nullptr) l->tail = p;
    s->next = nullptr;
    break;
  }
  s->elem = nullptr;
  s->queue = Sudog::Queue::chan;
}

void semrelease(std::atomic<std::uint32_t>* addr, bool handoff) {
  SemaRoot* root = semroot(addr);
  addr->fetch_add(1, std::memory_order_seq_cst);
  // Easy case: no waiters? This check must happen after the add, to avoid
  // a missed wakeup (see the loop in semacquire).
  if (root->nwait.load(std::memory_order_seq_cst) == 0) return;
  root->lock.lock();
  ForeignWake fw;
  if (root->nwait.load(std::memory_order_relaxed) == 0) {
    // The count is already consumed by another goroutine.
    root->lock.unlock();
    return;
  }
  Sudog* s = dequeue(root, addr);
  if (s != nullptr) root->nwait.fetch_sub(1);
  root->lock.unlock();
  if (s == nullptr) return;
  G* gp = s->g;
  bool handed = handoff && cansemacquire(addr);
  if (handed) s->ticket = 1;
  ready_waiter(gp);  // s belongs to the waiter again: not touched below
  if (handed) {
    // Direct handoff: yield so the waiter runs right away (Go's goyield;
    // the waiter is in our runnext). Only a goroutine that holds a P and no
    // runtime lock can: not g0, a plain thread, or a system call's body
    // (unlocking never waits, so it is allowed there), as Go yields only
    // with m.locks == 0.
    G* me = getg();
    if (me != nullptr && me != me->m->g0 && me->m->p != nullptr && readgstatus(me) == _Grunning && *mlocksp() == 0) {
      goyield();
    }
  }
}

std::uint32_t notifyListAdd(NotifyList* l) { return l->wait.fetch_add(1, std::memory_order_acq_rel); }

void notifyListWait(NotifyList* l, std::uint32_t t) {
  l->lock.lock();
  // Return right away if this ticket has already been notified.
  if (static_cast<std::int32_t>(t - l->notify.load(std::memory_order_relaxed)) < 0) {
    l->lock.unlock();
    return;
  }
  G* gp = current_waiter();
  bool thread = gp->threadnote != nullptr;
  Sudog local;
  Sudog* s = thread ? &local : acquireSudog();
  s->g = gp;
  s->ticket = t;
  s->next = nullptr;
  s->elem = l;
  s->queue = Sudog::Queue::notify;
  gp->waiting = s;
  if (l->tail == nullptr) {
    l->head = s;
  } else {
    l->tail->next = s;
  }
  l->tail = s;
  if (thread) gp->threadnote->clear();
  park_waiter(gp, &unlock_mutex, &l->lock, WaitReason::sync_cond_wait);
  gp->waiting = nullptr;
  s->g = nullptr;
  s->next = nullptr;
  s->elem = nullptr;
  s->queue = Sudog::Queue::chan;
  if (!thread) releaseSudog(s);
}

// A cancelled ticket that others came after: it stays in the list as a
// ghost (no G), which the notifiers skip, passing its notification on.
Sudog* newGhost(NotifyList* l, std::uint32_t t) {
  auto* s = new Sudog;
  s->ticket = t;
  s->elem = l;
  s->queue = Sudog::Queue::notify;
  return s;
}

void notifyListNotifyAll(NotifyList* l) {
  if (l->wait.load(std::memory_order_acquire) == l->notify.load(std::memory_order_acquire)) return;  // no new waiters
  l->lock.lock();
  ForeignWake fw;
  Sudog* s = l->head;
  l->head = l->tail = nullptr;
  for (Sudog* x = s; x != nullptr; x = x->next) x->elem = nullptr;  // off the list: nothing to detach
  l->notify.store(l->wait.load(std::memory_order_acquire), std::memory_order_release);
  l->lock.unlock();
  while (s != nullptr) {
    Sudog* next = s->next;
    s->next = nullptr;
    if (s->g != nullptr) {
      ready_waiter(s->g);
    } else {
      delete s;  // a ghost
    }
    s = next;
  }
}

namespace {

// Notify the next ticket, with l->lock held; returns its waiter, to ready
// once the lock is released (nullptr: none yet, or no ticket left). A ghost
// in the way passes the notification on to the ticket after it.
G* notifyOneLocked(NotifyList* l) {
  for (;;) {
    std::uint32_t t = l->notify.load(std::memory_order_relaxed);
    if (t == l->wait.load(std::memory_order_acquire)) return nullptr;
    l->notify.store(t + 1, std::memory_order_release);
    // The waiter with ticket t may not have queued itself yet; then it will
    // see the ticket notified in notifyListWait and not sleep.
    Sudog* s = l->head;
    Sudog* p = nullptr;
    for (; s != nullptr && s->ticket != t; p = s, s = s->next) {
    }
    if (s == nullptr) return nullptr;
    Sudog* n = s->next;
    if (p != nullptr)
      p->next = n;
    else
      l->head = n;
    if (n == nullptr) l->tail = p;
    s->next = nullptr;
    s->elem = nullptr;  // off the list: nothing to detach
    if (s->g != nullptr) return s->g;
    delete s;  // a ghost: on to the next ticket
  }
}

}  // namespace

void notifyListNotifyOne(NotifyList* l) {
  if (l->wait.load(std::memory_order_acquire) == l->notify.load(std::memory_order_acquire)) return;
  l->lock.lock();
  ForeignWake fw;
  G* gp = notifyOneLocked(l);
  l->lock.unlock();
  if (gp != nullptr) ready_waiter(gp);
}

void notifyListCancel(NotifyList* l, std::uint32_t t) {
  l->lock.lock();
  ForeignWake fw;
  G* gp = nullptr;
  std::uint32_t last = t + 1;
  if (l->wait.compare_exchange_strong(last, t, std::memory_order_acq_rel)) {
    // Nobody took a ticket after t: give it back. A notification t
    // consumed found no other waiter, so it did nothing: undone too.
    if (l->notify.load(std::memory_order_relaxed) == t + 1) l->notify.store(t, std::memory_order_release);
  } else if (static_cast<std::int32_t>(t - l->notify.load(std::memory_order_relaxed)) < 0) {
    // t was notified already: the notification goes to the next ticket.
    gp = notifyOneLocked(l);
  } else {
    Sudog* s = newGhost(l, t);
    if (l->tail == nullptr) {
      l->head = s;
    } else {
      l->tail->next = s;
    }
    l->tail = s;
  }
  l->lock.unlock();
  if (gp != nullptr) ready_waiter(gp);
}

}  // namespace goro::runtime
