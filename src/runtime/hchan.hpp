// hchan.hpp — a channel's state (Go's hchan) and its wait queues.
// Invariants: lock guards everything but the atomics, which are read
// without it by the non-blocking fast paths and len(); a non-empty recvq
// implies an empty buffer, a non-empty sendq a full one. Mirrors chan.go.
#pragma once

#include <atomic>
#include <cstddef>

#include "goro/chan.hpp"
#include "lock_futex.hpp"
#include "sudog.hpp"

namespace goro::runtime {

// A FIFO of sudogs (Go's waitq). Changed under the channel's lock; first
// is atomic because the non-blocking fast paths peek at it without it
// (stored with release, so that a peek with acquire orders what follows it;
// see chanrecv).
struct WaitQ {
  std::atomic<Sudog*> first{nullptr};
  Sudog* last = nullptr;
  bool empty(std::memory_order mo = std::memory_order_relaxed) const { return first.load(mo) == nullptr; }
  void enqueue(Sudog* sg);
  // The first waiter still able to take the operation: a select that has
  // already been decided elsewhere (selectDone) is skipped.
  Sudog* dequeue();
  // Remove sg (select's pass 3, teardown).
  void dequeueSudoG(Sudog* sg);
};

}  // namespace goro::runtime

namespace goro::detail {

struct hchan {
  runtime::Lock lock;
  std::atomic<int> refs{1};
  const ElemType* et = nullptr;
  std::size_t dataqsiz = 0;            // capacity of the circular buffer
  std::atomic<std::size_t> qcount{0};  // values in the buffer
  unsigned char* buf = nullptr;
  std::size_t sendx = 0, recvx = 0;  // buffer indices
  std::atomic<std::uint32_t> closed{0};
  runtime::WaitQ recvq, sendq;

  void* slot(std::size_t i) const { return buf + i * et->size; }
};

}  // namespace goro::detail

namespace goro::runtime {

// The buffer's tail and head, with c locked: move *ep in (there is room),
// or move the head out into ep (there is a value).
void chanbufput(hchan* c, void* ep);
void chanbufget(hchan* c, void* ep);

// Go's send and recv, with c locked and sg a waiter taken off its queue:
// hand the value over, unlockf(arg) (which releases c), then ready sg's G.
// Also used by select, whose unlockf releases every channel it locked.
void chan_send_locked(hchan* c, Sudog* sg, void* ep, void (*unlockf)(void*), void* arg);
void chan_recv_locked(hchan* c, Sudog* sg, void* ep, void (*unlockf)(void*), void* arg);
// Detach sg from the channel it waits on (detach_abandoned).
void chan_detach(Sudog* sg);

}  // namespace goro::runtime
