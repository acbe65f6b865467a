// chan.cpp — channels: make, send, receive, close, and the sudogs and
// waiters that block on them.
// Invariants: a value goes straight from a parked sender to a receiver (or
// the other way) without passing the buffer; every wakeup of a waiter is
// decided under the channel's lock and delivered after it is released.
// Mirrors chan.go (and proc.go's acquireSudog/releaseSudog).
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "foreign.hpp"
#include "hchan.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "sema.hpp"

namespace goro::runtime {

// ---------------------------------------------------------------------------
// Sudogs

namespace {

constexpr std::size_t kSudogCacheMax = 128;

struct SudogCentral {
  Lock lock;
  std::vector<Sudog*> free;  // the central cache
  std::vector<Sudog*> all;   // every sudog allocated in this run
} central;

}  // namespace

Sudog* acquireSudog() {
  P* pp = getg()->m->p;
  if (pp->sudogcache.empty()) {
    // Refill half the local cache from the central one, or allocate.
    LockGuard l(central.lock);
    while (pp->sudogcache.size() < kSudogCacheMax / 2 && !central.free.empty()) {
      pp->sudogcache.push_back(central.free.back());
      central.free.pop_back();
    }
    if (pp->sudogcache.empty()) {
      Sudog* s = new Sudog;
      central.all.push_back(s);
      pp->sudogcache.push_back(s);
    }
  }
  Sudog* s = pp->sudogcache.back();
  pp->sudogcache.pop_back();
  pp->sudogsInUse.inc(1);
  return s;
}

void releaseSudog(Sudog* s) {
  if (s->elem != nullptr || s->next != nullptr || s->prev != nullptr || s->waitlink != nullptr) {
    detail::fatal("releaseSudog: sudog still in use");
  }
  // What the channel and semaphore code set and leave set; next, prev,
  // elem and waitlink are checked clear above, and a semaphore wait sets
  // its treap links itself (sema.cpp's queue).
  s->g = nullptr;
  s->c = nullptr;
  s->ticket = 0;
  s->isSelect = false;
  s->success = false;
  s->queue = Sudog::Queue::chan;
  s->isSend = false;
  P* pp = getg()->m->p;
  pp->sudogsInUse.inc(-1);
  if (pp->sudogcache.size() == kSudogCacheMax) {
    // Move half the local cache to the central one.
    LockGuard l(central.lock);
    while (pp->sudogcache.size() > kSudogCacheMax / 2) {
      central.free.push_back(pp->sudogcache.back());
      pp->sudogcache.pop_back();
    }
  }
  pp->sudogcache.push_back(s);
}

std::size_t sudogs_allocated() {
  LockGuard l(central.lock);
  return central.all.size();
}

std::int64_t sudogs_in_use() {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < allp.created(); i++) n += allp.slot(i)->sudogsInUse.get();
  return n;
}

void sudogfreeall() {
  LockGuard l(central.lock);
  for (Sudog* s : central.all) delete s;
  central.all.clear();
  central.all.shrink_to_fit();
  central.free.clear();
  central.free.shrink_to_fit();
}

// ---------------------------------------------------------------------------
// Waiters: goroutines park, plain threads sleep on a note.

namespace {

// A plain thread's stand-in G and the note it sleeps on, in its TLS. A
// waker touches the note after the sleeper may already be awake, and the
// sleeper may then exit at once: the TLS destructor waits until no waker
// is inside wakeup() (waking counts them), so the note outlives every
// FUTEX_WAKE on it.
struct ThreadWaiter {
  Note note;
  std::atomic<std::int32_t> waking{0};
  std::uint32_t blocked = 0;  // foreign_block's token while asleep (0: not counted)
  G g;
  ThreadWaiter() { g.threadnote = &note; }
  ~ThreadWaiter() {
    // Pairs with ready_waiter's release decrement: once it is seen, the
    // waker is done with the note.
    while (waking.load(std::memory_order_acquire) != 0) osyield();
  }
  static ThreadWaiter* of(G* gp) {
    return reinterpret_cast<ThreadWaiter*>(reinterpret_cast<char*>(gp) - offsetof(ThreadWaiter, g));
  }
};
static_assert(std::is_standard_layout_v<ThreadWaiter>, "ThreadWaiter::of needs offsetof");

}  // namespace

namespace {

[[gnu::noinline]] G* current_waiter_syscall(G* gp) {
  syscallReturnOrFatal(gp);
  return gp;
}

}  // namespace

G* current_waiter() {
  if (G* gp = getg()) {
    if (readgstatus(gp) == _Gsyscall) [[unlikely]]
      return current_waiter_syscall(gp);
    return gp;
  }
  foreign_register();
  static thread_local ThreadWaiter tw;
  return &tw.g;
}

void park_waiter(G* gp, bool (*unlockf)(G*, void*), void* lock, WaitReason reason) {
  if (gp->threadnote == nullptr) {
    gopark(unlockf, lock, reason);
    return;
  }
  // The note was cleared before gp was made visible to wakers. The thread
  // counts as blocked before the lock that hides it from wakers goes.
  ThreadWaiter* tw = ThreadWaiter::of(gp);
  tw->blocked = foreign_block();
  if (unlockf != nullptr && !unlockf(gp, lock)) {
    foreign_unblock(std::exchange(tw->blocked, 0));
    return;
  }
  // As schedule() checks for goroutines: blocking with a runtime lock held
  // (user code run under a channel's lock) would block its next user too.
  if (*mlocksp() != 0) detail::fatal("schedule: holding locks");
  gp->threadnote->sleep();
}

namespace {

// ready_waiter's thread half, out of the goroutine's way.
__attribute__((noinline)) void ready_thread(G* gp) {
  ThreadWaiter* tw = ThreadWaiter::of(gp);
  foreign_unblock(std::exchange(tw->blocked, 0));
  tw->waking.fetch_add(1, std::memory_order_relaxed);  // before the note is set: the sleeper cannot be gone yet
  tw->note.wakeup();
  tw->waking.fetch_sub(1, std::memory_order_release);
}

}  // namespace

void ready_waiter(G* gp) {
  if (gp->threadnote == nullptr) {
    goready(gp);
  } else {
    ready_thread(gp);
  }
}

// ---------------------------------------------------------------------------
// Wait queues

void WaitQ::enqueue(Sudog* sg) {
  sg->next = nullptr;
  sg->prev = last;
  if (last != nullptr) {
    last->next = sg;
  } else {
    first.store(sg, std::memory_order_release);
  }
  last = sg;
}

Sudog* WaitQ::dequeue() {
  for (;;) {
    Sudog* sg = first.load(std::memory_order_relaxed);
    if (sg == nullptr) return nullptr;
    Sudog* y = sg->next;
    first.store(y, std::memory_order_release);
    if (y != nullptr) {
      y->prev = nullptr;
    } else {
      last = nullptr;
    }
    sg->next = sg->prev = nullptr;
    // A select is woken once: if another case won the race (selectDone),
    // this sudog is stale; the select removes it from this queue itself
    // in its pass 3, and we move on.
    if (sg->isSelect) {
      std::uint32_t zero = 0;
      if (!sg->g->selectDone.compare_exchange_strong(zero, 1)) continue;
    }
    return sg;
  }
}

void WaitQ::dequeueSudoG(Sudog* sg) {
  Sudog* x = sg->prev;
  Sudog* y = sg->next;
  if (x != nullptr) {
    if (y != nullptr) {
      x->next = y;
      y->prev = x;
    } else {
      x->next = nullptr;
      last = x;
    }
  } else if (y != nullptr) {
    y->prev = nullptr;
    first.store(y, std::memory_order_release);
  } else if (first.load(std::memory_order_relaxed) == sg) {
    first.store(nullptr, std::memory_order_release);
    last = nullptr;
  }
  // else: not on this queue (already dequeued)
  sg->next = sg->prev = nullptr;
}

// ---------------------------------------------------------------------------
// Operations

namespace {

void unlock_chan(void* c) { static_cast<hchan*>(c)->lock.unlock(); }

// On g0 (or the thread) after the waiter is committed to block: release
// the channel (Go's chanparkcommit).
bool chanparkcommit(G*, void* lock) {
  static_cast<Lock*>(lock)->unlock();
  return true;
}

// A nil channel: block forever.
[[noreturn]] void block_forever(WaitReason reason) {
  G* gp = current_waiter();
  for (;;) {
    if (gp->threadnote != nullptr) gp->threadnote->clear();
    park_waiter(gp, nullptr, nullptr, reason);
  }
}

bool full(const hchan* c) {
  if (c->dataqsiz == 0) return c->recvq.empty();
  return c->qcount.load(std::memory_order_relaxed) == c->dataqsiz;
}

// mo: acquire where a later load (of closed) must not be satisfied before
// this one (chanrecv's fast path); pairs with the release stores of qcount
// and WaitQ::first, all made under the lock.
bool empty(const hchan* c, std::memory_order mo = std::memory_order_relaxed) {
  if (c->dataqsiz == 0) return c->sendq.empty(mo);
  return c->qcount.load(mo) == 0;
}

// Block the current waiter on queue q of c (locked): the common tail of a
// blocking send and receive. Returns sudog.success.
bool block_on(hchan* c, WaitQ& q, void* ep, WaitReason reason) {
  // The waiter holds a reference: a goroutine abandoned here at the end of
  // a run keeps the channel alive until teardown detaches it (the handle
  // it blocked through may be gone by then).
  detail::chanretain(c);
  G* gp = current_waiter();
  bool thread = gp->threadnote != nullptr;
  SudogLease lease(gp);
  Sudog* mysg = lease.get();
  if (thread) gp->threadnote->clear();
  mysg->elem = ep;
  mysg->g = gp;
  mysg->isSelect = false;
  mysg->isSend = &q == &c->sendq;
  mysg->c = c;
  gp->waiting = mysg;
  gp->param = nullptr;
  q.enqueue(mysg);
  park_waiter(gp, &chanparkcommit, &c->lock, reason);
  // Woken by the other side or by close.
  if (gp->param != mysg) detail::fatal("chan: woken by the wrong sudog");
  gp->waiting = nullptr;
  gp->param = nullptr;
  bool success = mysg->success;
  mysg->elem = nullptr;
  mysg->c = nullptr;
  mysg->isSend = false;
  detail::chanrelease(c);
  return success;
}

}  // namespace

void chanbufput(hchan* c, void* ep) {
  std::size_t q = c->qcount.load(std::memory_order_relaxed);
  c->et->move_construct(c->slot(c->sendx), ep);
  if (++c->sendx == c->dataqsiz) c->sendx = 0;
  c->qcount.store(q + 1, std::memory_order_release);
}

void chanbufget(hchan* c, void* ep) {
  std::size_t q = c->qcount.load(std::memory_order_relaxed);
  void* qp = c->slot(c->recvx);
  c->et->move_construct(ep, qp);
  c->et->destroy(qp);
  if (++c->recvx == c->dataqsiz) c->recvx = 0;
  c->qcount.store(q - 1, std::memory_order_release);
}

namespace {

// The end of a handoff to a waiter: release the lock(s), then ready it.
void wake_after_handoff(Sudog* sg, void (*unlockf)(void*), void* arg) {
  sg->elem = nullptr;
  G* gp = sg->g;
  unlockf(arg);
  gp->param = sg;
  sg->success = true;
  ready_waiter(gp);
}

}  // namespace

void chan_send_locked(hchan* c, Sudog* sg, void* ep, void (*unlockf)(void*), void* arg) {
  // Straight into the receiver's storage: never through the buffer.
  if (sg->elem != nullptr) c->et->move_construct(sg->elem, ep);
  wake_after_handoff(sg, unlockf, arg);
}

void chan_recv_locked(hchan* c, Sudog* sg, void* ep, void (*unlockf)(void*), void* arg) {
  if (c->dataqsiz == 0) {
    if (ep != nullptr) c->et->move_construct(ep, sg->elem);
  } else {
    // The buffer is full: take its head, and put the sender's value in the
    // freed slot (head and tail are the same slot then).
    void* qp = c->slot(c->recvx);
    if (ep != nullptr) c->et->move_construct(ep, qp);
    c->et->destroy(qp);
    c->et->move_construct(qp, sg->elem);
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    c->sendx = c->recvx;
  }
  wake_after_handoff(sg, unlockf, arg);
}

void chan_detach(Sudog* sg) {
  hchan* c = sg->c;
  if (c == nullptr) return;
  {
    LockGuard l(c->lock);
    (sg->isSend ? c->sendq : c->recvq).dequeueSudoG(sg);
  }
  sg->c = nullptr;
  // Drop the reference the waiter took (block_on, selectgo).
  detail::chanrelease(c);
}

void detach_abandoned(G* gp) {
  for (Sudog* sg = gp->waiting; sg != nullptr;) {
    Sudog* next = sg->waitlink;
    switch (sg->queue) {
      case Sudog::Queue::chan:
        chan_detach(sg);
        break;
      case Sudog::Queue::sema:
        sema_detach(sg);
        break;
      case Sudog::Queue::notify:
        notify_detach(sg);
        break;
    }
    sg->waitlink = nullptr;
    sg = next;
  }
  gp->waiting = nullptr;
}

}  // namespace goro::runtime

namespace goro::detail {

using namespace goro::runtime;

hchan* makechan(const ElemType* t, std::size_t cap) {
  if (t->size != 0 && cap > (std::size_t{1} << 40) / t->size) {
    throw std::length_error("goro::Chan: capacity " + std::to_string(cap) + " is out of range");
  }
  auto* c = new hchan;
  c->et = t;
  c->dataqsiz = cap;
  if (cap > 0) {
    std::size_t align = t->align < alignof(std::max_align_t) ? alignof(std::max_align_t) : t->align;
    std::size_t bytes = (t->size * cap + align - 1) / align * align;
    c->buf = static_cast<unsigned char*>(::operator new(bytes == 0 ? align : bytes, std::align_val_t(align)));
  }
  return c;
}

void chanretain(hchan* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chanrelease(hchan* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The last handle: destroy the buffered values.
  for (std::size_t n = c->qcount.load(), i = c->recvx; n > 0; n--) {
    c->et->destroy(c->slot(i));
    if (++i == c->dataqsiz) i = 0;
  }
  if (c->buf != nullptr) {
    std::size_t align = c->et->align < alignof(std::max_align_t) ? alignof(std::max_align_t) : c->et->align;
    ::operator delete(c->buf, std::align_val_t(align));
  }
  delete c;
}

bool chansend(hchan* c, void* ep, bool block) {
  chanop_enter();
  if (c == nullptr) {
    if (!block) return false;
    block_forever(WaitReason::chan_send_nil);
  }
  // Fast path: fail a non-blocking send without the lock. A closed
  // channel is reported below, under the lock.
  if (!block && c->closed.load(std::memory_order_relaxed) == 0 && full(c)) return false;

  c->lock.lock();
  ForeignWake fw;
  if (c->closed.load(std::memory_order_relaxed) != 0) {
    c->lock.unlock();
    throw ChannelClosed("send on closed channel");
  }
  if (Sudog* sg = c->recvq.dequeue()) {
    // A waiting receiver: hand the value straight to it.
    chan_send_locked(c, sg, ep, &unlock_chan, c);
    return true;
  }
  if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
    chanbufput(c, ep);
    c->lock.unlock();
    return true;
  }
  if (!block) {
    c->lock.unlock();
    return false;
  }
  fw.done();
  if (!block_on(c, c->sendq, ep, WaitReason::chan_send)) throw ChannelClosed("send on closed channel");
  return true;
}

RecvResult chanrecv(hchan* c, void* ep, bool block) {
  chanop_enter();
  if (c == nullptr) {
    if (!block) return {false, false};
    block_forever(WaitReason::chan_receive_nil);
  }
  // Fast path: a non-blocking receive on an empty channel. The order of
  // the two loads matters (Go's chanrecv explains): empty, then closed.
  // Were closed read first, "open, then closed, then drained" could read
  // as "open and empty", a state that never was: hence acquire on empty,
  // which the drain's release store pairs with.
  if (!block && empty(c, std::memory_order_acquire)) {
    if (c->closed.load(std::memory_order_acquire) == 0) return {false, false};
    if (empty(c)) return {true, false};
  }

  c->lock.lock();
  ForeignWake fw;
  std::size_t q = c->qcount.load(std::memory_order_relaxed);
  if (c->closed.load(std::memory_order_relaxed) != 0 && q == 0) {
    c->lock.unlock();
    return {true, false};
  }
  if (Sudog* sg = c->sendq.dequeue()) {
    // A waiting sender: take its value (through the buffer's head if the
    // channel is buffered, which is then full).
    chan_recv_locked(c, sg, ep, &unlock_chan, c);
    return {true, true};
  }
  if (q > 0) {
    chanbufget(c, ep);
    c->lock.unlock();
    return {true, true};
  }
  if (!block) {
    c->lock.unlock();
    return {false, false};
  }
  fw.done();
  bool success = block_on(c, c->recvq, ep, WaitReason::chan_receive);
  return {true, success};
}

void closechan(hchan* c) {
  if (c == nullptr) throw std::logic_error("close of nil channel");
  foreign_use();
  std::vector<G*> wake;
  wake.reserve(8);
  c->lock.lock();
  ForeignWake fw;
  if (c->closed.load(std::memory_order_relaxed) != 0) {
    c->lock.unlock();
    throw ChannelClosed("close of closed channel");
  }
  c->closed.store(1, std::memory_order_release);
  // Release every receiver (they get "closed") and every sender (they
  // throw). Ready them only after the lock is released.
  while (Sudog* sg = c->recvq.dequeue()) {
    sg->elem = nullptr;
    sg->success = false;
    sg->g->param = sg;
    wake.push_back(sg->g);
  }
  while (Sudog* sg = c->sendq.dequeue()) {
    sg->elem = nullptr;
    sg->success = false;
    sg->g->param = sg;
    wake.push_back(sg->g);
  }
  c->lock.unlock();
  for (G* gp : wake) ready_waiter(gp);
}

std::size_t chanlen(const hchan* c) noexcept { return c == nullptr ? 0 : c->qcount.load(std::memory_order_relaxed); }

std::size_t chancap(const hchan* c) noexcept { return c == nullptr ? 0 : c->dataqsiz; }

}  // namespace goro::detail
