// sudog.hpp — a G waiting on a channel (or in a select), and the waiters
// that block plain threads the way gopark blocks goroutines.
// Invariants: a sudog is on at most one wait queue; it is owned by its G
// while off the queue. Sudogs come from a per-P cache (Go's
// acquireSudog/releaseSudog), threads' from their own stack.
// Mirrors runtime2.go (sudog) and proc.go (acquireSudog, releaseSudog).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "runtime2.hpp"

namespace goro::detail {
struct hchan;
}

namespace goro::runtime {

using detail::hchan;

struct Sudog {
  G* g = nullptr;
  Sudog* next = nullptr;  // wait queue links
  Sudog* prev = nullptr;
  void* elem = nullptr;       // data element: the sender's value, or the receiver's storage
  Sudog* waitlink = nullptr;  // g.waiting list (select)
  hchan* c = nullptr;         // the channel
  std::uint32_t ticket = 0;   // select: the case index
  bool isSelect = false;      // g is in a select: g.selectDone decides who wins
  bool success = false;       // woken by a completed operation (false: by close)
  // Where the sudog is queued: a channel (c), a semaphore (elem is the
  // address) or a notify list (elem is the list).
  enum class Queue : std::uint8_t { chan, sema, notify } queue = Queue::chan;
  bool isSend = false;  // on the channel's sendq (else its recvq)
  // Semaphore waits (sema.cpp), all under the root's lock. The first waiter
  // of an address is a node of its root's treap: parent/left/right are the
  // tree links, priority (never 0 while a node, 0 otherwise) its random heap
  // key, waittail the last of the other waiters of that address. Those hang
  // off the node through next/prev, in wake order. Not waitlink: that links
  // g.waiting, which detach_abandoned walks.
  Sudog* parent = nullptr;
  Sudog* left = nullptr;
  Sudog* right = nullptr;
  Sudog* waittail = nullptr;
  std::uint32_t priority = 0;
};

Sudog* acquireSudog();
void releaseSudog(Sudog* s);

// SudogLease: the sudog the current waiter gp blocks with, for one
// operation. A goroutine's comes from its P's cache (acquireSudog) and goes
// back when the lease ends (releaseSudog checks that it was cleaned up); a
// plain thread's is built in the thread's own storage (`local`: on its
// stack, off every queue before the thread returns), and only then, so
// that a goroutine does not pay for initializing one it will not use. The
// one way chan, select and the semaphores get a sudog: select, which needs
// one per case, uses take/give; the others the RAII lease.
class SudogLease {
 public:
  static Sudog* take(const G* gp, Sudog* local) {
    return gp->threadnote != nullptr ? ::new (local) Sudog : acquireSudog();
  }
  static void give(const G* gp, Sudog* sg) {
    if (gp->threadnote == nullptr) releaseSudog(sg);
  }
  explicit SudogLease(const G* gp) : gp_(gp), sg_(take(gp, reinterpret_cast<Sudog*>(buf_))) {}
  ~SudogLease() { give(gp_, sg_); }
  SudogLease(const SudogLease&) = delete;
  SudogLease& operator=(const SudogLease&) = delete;
  Sudog* get() const { return sg_; }

 private:
  const G* gp_;
  alignas(Sudog) unsigned char buf_[sizeof(Sudog)];
  Sudog* sg_;
};
static_assert(std::is_trivially_destructible_v<Sudog>, "SudogLease never destroys a thread's Sudog");
// At the end of a run, a goroutine abandoned while blocked leaves the
// queues it is on (channels, semaphores, notify lists), which may outlive
// the run and be used by plain threads.
void detach_abandoned(G* gp);
// At the end of a run: free every sudog.
void sudogfreeall();
// Sudogs allocated in this run (the caches keep the count small).
std::size_t sudogs_allocated();
// Sudogs acquired and not released in this run, summed over the Ps (each
// counted by its owner, read here without a lock: exact once the Ps'
// owners are quiet). The leak check in tests.
std::int64_t sudogs_in_use();

// The blocking side, for goroutines and plain threads alike.
// current_waiter: the current G, or the calling thread's stand-in G.
G* current_waiter();
// Blocks gp (the current waiter). For a goroutine this is gopark; for a
// thread, unlockf runs (if it returns false the thread does not block),
// then the thread sleeps until ready_waiter.
void park_waiter(G* gp, bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
// Wakes a waiter blocked by park_waiter (goready for a goroutine).
void ready_waiter(G* gp);

}  // namespace goro::runtime
