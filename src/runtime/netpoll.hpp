// netpoll.hpp — the network poller: descriptors a goroutine waits on
// without holding a thread or a P (Go's netpoll.go), over the platform's
// readiness interface (netpoll_epoll.cpp).
//
// A PollDesc has one wait slot per direction (rg for reading, wg for
// writing), a word that is pdNil, pdReady, pdWait or the waiting G:
//
//   pdNil ──netpollblock──▶ pdWait ──park commit (CAS)──▶ G
//     ▲ ▲                     │                           │
//     │ └─ consumed ─ pdReady ◀── netpollunblock(ioready) ─┤ (G readied)
//     └──────────── netpollunblock(!ioready): deadline, close ─┘
//
// Invariants: at most one goroutine waits per slot (the callers serialise
// readers and writers); a PollDesc is never freed, only reused (pollcache),
// so an event that names a closed one is harmless, and one of an earlier
// life of a reused one is dropped by its sequence tag (Go's fdseq); the
// descriptor stays registered from pollOpen to pollClose, edge-triggered.
#pragma once

#include <atomic>
#include <cstdint>

#include "lock_futex.hpp"
#include "runtime2.hpp"
#include "time.hpp"

namespace goro::runtime {

constexpr std::uintptr_t pdNil = 0, pdReady = 1, pdWait = 2;

// What pollWait and pollReset return (Go's pollNoError...).
enum PollErr : int { pollNoError = 0, pollErrClosing = 1, pollErrTimeout = 2 };

struct PollDesc {
  PollDesc* link = nullptr;     // pollcache free list; guarded by its lock
  PollDesc* alllink = nullptr;  // every PollDesc ever made (netpollTeardown)
  Lock lock;                    // guards the fields below but rg and wg
  int fd = -1;
  // Bumped each time the PollDesc is handed out: the tag of its
  // registration, so that an event of an earlier life is dropped.
  std::atomic<std::uint32_t> fdseq{0};
  bool closing = false;
  std::atomic<std::uintptr_t> rg{pdNil}, wg{pdNil};
  // Deadlines: nanotime, 0 for none, -1 once passed. A timer that fires
  // for a deadline since moved finds it in the future and does nothing.
  std::int64_t rd = 0, wd = 0;
  HeapTimer rt, wt;
  // closing and the two "deadline passed" states, readable without the
  // lock (Go's atomicInfo): netpollcheckerr on the fast path.
  static constexpr std::uint32_t kClosing = 1, kExpiredRead = 2, kExpiredWrite = 4;
  std::atomic<std::uint32_t> info{0};
  void publishInfo();  // lock held
};

// The generic poller (netpoll.cpp).
bool netpollinited();
void netpollGenericInit();
// Goroutines parked in netpollblock now (Go's netpollWaiters).
bool netpollAnyWaiters();
// Register fd (non-blocking) for edge-triggered readiness. Returns the
// PollDesc, or nullptr with errno set.
PollDesc* pollOpen(int fd);
// Unregister and recycle; after pollUnblock, with no goroutine left in it.
void pollClose(PollDesc* pd);
// Before an I/O attempt: consume a stale readiness of mode ('r', 'w' or
// 'r'+'w'), or report closing / deadline passed.
int pollReset(PollDesc* pd, int mode);
// Park until pd is ready for mode, or closing, or the deadline passes.
int pollWait(PollDesc* pd, int mode);
// Set the deadline (nanotime; 0: none; in the past: passed now) of mode,
// waking a goroutine blocked in pollWait if it has passed.
void pollSetDeadline(PollDesc* pd, std::int64_t d, int mode);
// Mark pd closing and wake whoever waits in it.
void pollUnblock(PollDesc* pd);
// Ready the goroutine waiting on pd for mode into list (netpoll's events).
void netpollready(GList& list, PollDesc* pd, int mode);
// The end of a run (teardown): goroutines parked in a PollDesc are taken
// out of it (abandoned with the rest), and the count starts again at 0.
// The descriptors wait_readable registered for them are unregistered (they
// are the program's); those of other PollDescs stay registered.
void netpollTeardown();

// The platform's side (netpoll_epoll.cpp).
void netpollinit();
int netpollopen(int fd, PollDesc* pd);  // 0, or an errno
void netpollclose(int fd);
// Wake the M blocked in netpoll (Go's netpollBreak); sticky until it polls.
void netpollBreak();
// Poll for ready descriptors, returning the goroutines they ready (still
// _Gwaiting: injectglist makes them runnable): delay < 0 blocks until one is ready or a
// netpollBreak, 0 does not block, > 0 blocks up to delay ns.
GList netpoll(std::int64_t delay);

}  // namespace goro::runtime
