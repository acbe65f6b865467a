// sema.cpp — the semaphore table behind Mutex, RWMutex and WaitGroup
// (semacquire, semrelease), and the notify list behind Cond. Mirrors Go's
// runtime/sema.go.
//
// The table owns kSemTabSize roots; an address's waiters live in the root
// its address hashes to. Each root holds, under its lock, a treap (a binary
// search tree kept balanced, in expectation, by random heap priorities) of
// one node per address that has waiters. The node is the address's first
// waiter; the other waiters of the address hang off it in a list. So a
// release finds its address in O(log n) of the distinct addresses on the
// root, however many waiters the other addresses have (a single list per
// root made it O(all waiters on the root)), and queueing or dequeueing
// within an address is O(1).
//
// Invariants, under root.lock:
//  - treap: ordered by address (left < node < right), one node per address,
//    parent links match child links, priority is a min-heap (a parent's is
//    <= its children's) and is nonzero exactly on nodes.
//  - a node's list: node->next is its second waiter, then on through next;
//    prev points back (nullptr only on the node); node->waittail is the
//    last waiter, nullptr when the node waits alone. A release wakes the
//    node; FIFO acquires join at the tail, lifo ones (a sync.Mutex waiter
//    that already waited once) take the node's place.
//  - nwait is the number of queued sudogs. It is also read without the
//    lock, so that a release with nobody waiting on the root never locks.
//  - a queued sudog's links belong to the root; a dequeued one (links all
//    cleared) belongs to its waiter again, but for the handoff ticket its
//    waker sets before readying it.
// A woken waiter re-checks the count unless it was handed to it (ticket).
#include "sema.hpp"

#include "foreign.hpp"
#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {
namespace {

constexpr std::size_t kSemTabSize = 251;  // prime: unlikely to correlate with address patterns

struct SemaRoot {
  Lock lock;
  Sudog* treap = nullptr;  // root of the treap of per-address nodes
  std::atomic<std::uint32_t> nwait{0};
};

struct alignas(64) SemaRootPadded {
  SemaRoot root;
};
SemaRootPadded semtable[kSemTabSize];

std::size_t semindex(const void* addr) { return (reinterpret_cast<std::uintptr_t>(addr) >> 3) % kSemTabSize; }
SemaRoot* semroot(const void* addr) { return &semtable[semindex(addr)].root; }

bool addr_less(const void* a, const void* b) {
  return reinterpret_cast<std::uintptr_t>(a) < reinterpret_cast<std::uintptr_t>(b);
}

bool cansemacquire(std::atomic<std::uint32_t>* addr) {
  // Reading 0 here is what sends semacquire to sleep, so this load and the
  // CAS's reload on failure are seq_cst: they close a Dekker pair with
  // semrelease. semacquire makes its seq_cst nwait RMW, then reads *addr
  // here; semrelease makes its seq_cst add on *addr, then a seq_cst nwait
  // load. In the single total order of those four, the releaser sees our
  // nwait or we see its count, never neither (a lost wakeup). On x86 the
  // locked RMW is a full fence and a plain load would do; on ARM or POWER
  // a relaxed load may be satisfied before the RMW's store is visible.
  // Success only needs acquire, pairing with the add that made the count
  // (what the releaser wrote before releasing is visible to us). It is
  // seq_cst anyway because GCC 12 flags a failure order stronger than the
  // success one (-Winvalid-memory-model, in the TSan build), which C++17
  // allows; on x86 both are the same locked cmpxchg.
  std::uint32_t v = addr->load(std::memory_order_seq_cst);
  for (;;) {
    if (v == 0) return false;
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_seq_cst, std::memory_order_seq_cst)) return true;
  }
}

// --- the treap, all under root.lock ---------------------------------------

// The link that points at node x: its parent's child slot, or the root.
Sudog** link_to(SemaRoot* r, Sudog* x) {
  Sudog* p = x->parent;
  if (p == nullptr) return &r->treap;
  return p->left == x ? &p->left : &p->right;
}

// Turns (x a (y b c)) into (y (x a b) c): x's right child y takes x's place.
void rotate_left(SemaRoot* r, Sudog* x) {
  Sudog* y = x->right;
  Sudog* b = y->left;
  *link_to(r, x) = y;
  y->parent = x->parent;
  y->left = x;
  x->parent = y;
  x->right = b;
  if (b != nullptr) b->parent = x;
}

// Turns (y (x a b) c) into (x a (y b c)): y's left child x takes y's place.
void rotate_right(SemaRoot* r, Sudog* y) {
  Sudog* x = y->left;
  Sudog* b = x->right;
  *link_to(r, y) = x;
  x->parent = y->parent;
  x->right = y;
  y->parent = x;
  y->left = b;
  if (b != nullptr) b->parent = y;
}

// The node of addr, or nullptr if nobody waits on it.
Sudog* find(SemaRoot* r, const void* addr) {
  Sudog* t = r->treap;
  while (t != nullptr && t->elem != addr) t = addr_less(addr, t->elem) ? t->left : t->right;
  return t;
}

// Puts s where node t is in the tree (t's links and priority go to s) and
// leaves t out of it. The lists are the caller's.
void replace_node(SemaRoot* r, Sudog* t, Sudog* s) {
  *link_to(r, t) = s;
  s->parent = t->parent;
  s->left = t->left;
  s->right = t->right;
  s->priority = t->priority;
  if (s->left != nullptr) s->left->parent = s;
  if (s->right != nullptr) s->right->parent = s;
  t->parent = t->left = t->right = nullptr;
  t->priority = 0;
}

// Queues s (s->elem set) behind the other waiters of its address, or in
// front of them if lifo.
void queue(SemaRoot* r, Sudog* s, bool lifo) {
  s->next = s->prev = nullptr;
  s->parent = s->left = s->right = nullptr;
  s->waittail = nullptr;
  s->priority = 0;
  Sudog* parent = nullptr;
  Sudog** link = &r->treap;
  for (Sudog* t = *link; t != nullptr; t = *link) {
    if (t->elem == s->elem) {
      if (lifo) {
        // s becomes the node; t, with its list, follows it.
        replace_node(r, t, s);
        s->waittail = t->waittail != nullptr ? t->waittail : t;
        t->waittail = nullptr;
        s->next = t;
        t->prev = s;
      } else {
        Sudog* last = t->waittail != nullptr ? t->waittail : t;
        last->next = s;
        s->prev = last;
        t->waittail = s;
      }
      return;
    }
    parent = t;
    link = addr_less(s->elem, t->elem) ? &t->left : &t->right;
  }
  // A new address: a leaf, rotated up until its parent's priority is no
  // larger. The low bit keeps priority nonzero, which marks nodes. The
  // priority is a hash of the address (Go draws a random number): as
  // balanced for addresses a program did not pick to defeat a multiplicative
  // hash, and a multiply instead of a random draw on every first waiter of
  // an address, which is every wait of a plain handoff.
  auto h = reinterpret_cast<std::uintptr_t>(s->elem) * std::uint64_t{0x9E3779B97F4A7C15};
  s->priority = static_cast<std::uint32_t>(h >> 32) | 1;
  s->parent = parent;
  *link = s;
  while (s->parent != nullptr && s->parent->priority > s->priority) {
    if (s->parent->left == s) {
      rotate_right(r, s->parent);
    } else {
      rotate_left(r, s->parent);
    }
  }
}

// Takes node s out: its next waiter, if any, becomes the node in its place;
// else s is rotated down to a leaf (the child with the smaller priority
// going up, to keep the heap order) and cut off.
void remove_node(SemaRoot* r, Sudog* s) {
  if (Sudog* t = s->next) {
    replace_node(r, s, t);
    t->prev = nullptr;
    t->waittail = s->waittail == t ? nullptr : s->waittail;
    s->next = nullptr;
    s->waittail = nullptr;
    return;
  }
  while (s->left != nullptr || s->right != nullptr) {
    if (s->right == nullptr || (s->left != nullptr && s->left->priority < s->right->priority)) {
      rotate_right(r, s);
    } else {
      rotate_left(r, s);
    }
  }
  *link_to(r, s) = nullptr;
  s->parent = nullptr;
  s->priority = 0;
}

// Takes s, a waiter behind node, out of node's list.
void remove_follower(Sudog* node, Sudog* s) {
  s->prev->next = s->next;
  if (s->next != nullptr) {
    s->next->prev = s->prev;
  } else {
    node->waittail = s->prev == node ? nullptr : s->prev;
  }
  s->next = s->prev = nullptr;
}

// The first waiter on addr, dequeued.
Sudog* dequeue(SemaRoot* r, const void* addr) {
  Sudog* s = find(r, addr);
  if (s != nullptr) remove_node(r, s);
  return s;
}

bool unlock_mutex(G*, void* m) {
  static_cast<Lock*>(m)->unlock();
  return true;
}

// Checks one subtree (addresses strictly between lo and hi, nullptr for no
// bound) and counts its waiters into n.
const char* check_subtree(const SemaRoot* r, const Sudog* t, const Sudog* parent, const void* lo, const void* hi,
                          std::uint64_t& n) {
  if (t == nullptr) return nullptr;
  if (semroot(t->elem) != r) return "an address is on the wrong root";
  if (t->parent != parent) return "a node's parent link does not match";
  if (t->priority == 0) return "a node has priority 0";
  if (parent != nullptr && parent->priority > t->priority) return "heap order broken";
  if ((lo != nullptr && !addr_less(lo, t->elem)) || (hi != nullptr && !addr_less(t->elem, hi))) {
    return "search order broken (or an address has two nodes)";
  }
  if (t->prev != nullptr) return "a node has a prev link";
  n++;
  const Sudog* last = t;
  for (const Sudog* f = t->next; f != nullptr; last = f, f = f->next) {
    if (f->prev != last) return "a waiter's prev link does not match";
    if (f->elem != t->elem) return "a waiter is in another address's list";
    if (f->priority != 0 || f->parent != nullptr || f->left != nullptr || f->right != nullptr ||
        f->waittail != nullptr) {
      return "a waiter behind a node has tree links";
    }
    n++;
  }
  if (t->waittail != (last == t ? nullptr : last)) return "a node's waittail is not its last waiter";
  if (const char* e = check_subtree(r, t->left, t, lo, t->elem, n)) return e;
  return check_subtree(r, t->right, t, t->elem, hi, n);
}

}  // namespace

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason) {
  if (cansemacquire(addr)) return;
  G* gp = current_waiter();
  bool thread = gp->threadnote != nullptr;
  SudogLease lease(gp);
  Sudog* s = lease.get();
  SemaRoot* root = semroot(addr);
  for (;;) {
    root->lock.lock();
    // Count ourselves in nwait to disable the lock-free "nobody waits" exit
    // in semrelease. seq_cst: the first half of the Dekker pair with
    // cansemacquire's reads below (see there).
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
    // The ticket was written before ready_waiter, which orders it before
    // our wakeup.
    if (s->ticket != 0 || cansemacquire(addr)) break;
  }
  s->elem = nullptr;
  s->g = nullptr;
  s->queue = Sudog::Queue::chan;
}

void sema_detach(Sudog* s) {
  SemaRoot* root = semroot(s->elem);
  LockGuard l(root->lock);
  // Where s is: a node has a priority, a waiter behind one a prev link, and
  // a sudog a release already dequeued neither (that release counted it
  // out of nwait; its waiter was readied but never ran).
  if (s->priority != 0) {
    remove_node(root, s);
    root->nwait.fetch_sub(1);
  } else if (s->prev != nullptr) {
    Sudog* node = find(root, s->elem);
    if (node == nullptr) detail::fatal("sema_detach: queued sudog without a node");
    remove_follower(node, s);
    root->nwait.fetch_sub(1);
  }
  s->elem = nullptr;
  s->queue = Sudog::Queue::chan;
}

std::uint32_t sema_waiters(const void* addr) {
  SemaRoot* root = semroot(addr);
  LockGuard l(root->lock);
  std::uint32_t n = 0;
  for (const Sudog* s = find(root, addr); s != nullptr; s = s->next) n++;
  return n;
}

std::size_t sema_root_index(const void* addr) { return semindex(addr); }

void sema_enqueue(Sudog* s, const void* addr, bool lifo) {
  SemaRoot* root = semroot(addr);
  LockGuard l(root->lock);
  s->elem = const_cast<void*>(addr);
  s->queue = Sudog::Queue::sema;
  queue(root, s, lifo);
  root->nwait.fetch_add(1);
}

Sudog* sema_dequeue(const void* addr) {
  SemaRoot* root = semroot(addr);
  LockGuard l(root->lock);
  Sudog* s = dequeue(root, addr);
  if (s != nullptr) root->nwait.fetch_sub(1);
  return s;
}

const char* sema_invariant_violation() {
  for (SemaRootPadded& p : semtable) {
    SemaRoot* r = &p.root;
    LockGuard l(r->lock);
    std::uint64_t n = 0;
    if (const char* e = check_subtree(r, r->treap, nullptr, nullptr, nullptr, n)) return e;
    if (n != r->nwait.load(std::memory_order_relaxed)) return "nwait differs from the number of queued waiters";
  }
  return nullptr;
}

void notifyListDestroy(NotifyList* l) {
  // Waiters still queued on a dying Cond wait forever (as on a destroyed
  // std::condition_variable, that is the caller's bug); they no longer
  // refer to the list. Ghosts (notifyListCancel) go.
  LockGuard g(l->lock);
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
  LockGuard g(l->lock);
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
  // seq_cst add, then seq_cst nwait load: our half of the Dekker pair with
  // semacquire's nwait RMW and cansemacquire's reads. Either the acquirer
  // sees this count, or we see its nwait and go wake it. (The add also
  // releases to whoever's CAS takes the count.)
  addr->fetch_add(1, std::memory_order_seq_cst);
  // Easy case: no waiters? This check must happen after the add, to avoid
  // a missed wakeup (see the loop in semacquire).
  if (root->nwait.load(std::memory_order_seq_cst) == 0) return;
  root->lock.lock();
  ForeignWake fw;
  // Relaxed: every nwait write is made under the lock we hold.
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
  SudogLease lease(gp);
  Sudog* s = lease.get();
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
