// netpoll.cpp — the platform-independent poller: the PollDesc cache, the
// wait protocol of a PollDesc's rg/wg slots (netpollblock/netpollunblock,
// drawn in netpoll.hpp), deadlines on the runtime's timers, and
// wait_readable/wait_writable for descriptors a program brings.
// Invariants: the slots and the error state (PollDesc::info) are seq_cst:
// a waiter sets its slot and then reads the state, an unblocker sets the
// state and then reads the slot, and one of them must see the other (a
// store-buffer pattern). A slot goes pdWait -> G only in netpollblockcommit, on g0,
// after the goroutine is _Gwaiting, so whoever takes the G out of the slot
// may ready it at once; netpollWaiters counts the Gs in slots. A PollDesc's
// lock is never held across a park or a goready. Mirrors Go's netpoll.go
// (and, for wait_*, what internal/poll's fd does around it).

#include "netpoll.hpp"

#include <poll.h>
#include <sys/epoll.h>

#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>

#include "goro/poll.hpp"
#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {

void PollDesc::publishInfo() {
  std::uint32_t i = 0;
  if (closing) i |= kClosing;
  if (rd < 0) i |= kExpiredRead;
  if (wd < 0) i |= kExpiredWrite;
  info.store(i, std::memory_order_seq_cst);
}

namespace {

std::atomic<bool> netpollInited{false};
Lock netpollInitLock;
std::atomic<std::int32_t> netpollWaiters{0};

// The cache of PollDescs: never freed, so that an event naming one that
// was closed reads valid memory (and is dropped by its tag).
Lock pollcacheLock;
PollDesc* pollcacheFirst = nullptr;
PollDesc* pollcacheAll = nullptr;

void netpollReadDeadline(void* arg, std::int64_t now);
void netpollWriteDeadline(void* arg, std::int64_t now);

PollDesc* pollcacheAlloc() {
  LockGuard l(pollcacheLock);
  PollDesc* pd = pollcacheFirst;
  if (pd != nullptr) {
    pollcacheFirst = pd->link;
    return pd;
  }
  pd = new PollDesc;  // lives for the process
  pd->rt.f = &netpollReadDeadline;
  pd->rt.arg = pd;
  pd->wt.f = &netpollWriteDeadline;
  pd->wt.arg = pd;
  pd->alllink = pollcacheAll;
  pollcacheAll = pd;
  return pd;
}

void pollcacheFree(PollDesc* pd) {
  LockGuard l(pollcacheLock);
  pd->link = pollcacheFirst;
  pollcacheFirst = pd;
}

int netpollcheckerr(PollDesc* pd, int mode) {
  std::uint32_t info = pd->info.load(std::memory_order_seq_cst);
  if ((info & PollDesc::kClosing) != 0) return pollErrClosing;
  if ((mode == 'r' && (info & PollDesc::kExpiredRead) != 0) || (mode == 'w' && (info & PollDesc::kExpiredWrite) != 0)) {
    return pollErrTimeout;
  }
  return pollNoError;
}

std::atomic<std::uintptr_t>& slot(PollDesc* pd, int mode) { return mode == 'r' ? pd->rg : pd->wg; }

// On g0, gp _Gwaiting: publish gp in its slot, unless readiness (or an
// unblock) came first, in which case gp resumes at once.
bool netpollblockcommit(G* gp, void* gpp) {
  auto* s = static_cast<std::atomic<std::uintptr_t>*>(gpp);
  std::uintptr_t expect = pdWait;
  if (s->compare_exchange_strong(expect, reinterpret_cast<std::uintptr_t>(gp), std::memory_order_seq_cst)) {
    netpollWaiters.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  return false;
}

// Returns true if IO is ready, false if timed out or closed. waitio:
// wait only for completed IO, ignore errors.
bool netpollblock(PollDesc* pd, int mode, bool waitio) {
  auto& gpp = slot(pd, mode);
  // Set the slot to pdWait.
  for (;;) {
    std::uintptr_t old = pdReady;
    if (gpp.compare_exchange_strong(old, pdNil, std::memory_order_seq_cst)) return true;
    if (old == pdNil) {
      if (gpp.compare_exchange_strong(old, pdWait, std::memory_order_seq_cst)) break;
      continue;
    }
    if (old != pdReady)
      detail::fatal("runtime: double wait (two goroutines wait on one descriptor for the same direction)");
  }
  // The error state may have changed since the caller looked: check again
  // now that the slot is pdWait (an unblock from here on sees it).
  if (waitio || netpollcheckerr(pd, mode) == pollNoError) {
    gopark(&netpollblockcommit, &gpp, WaitReason::io_wait);
  }
  std::uintptr_t old = gpp.exchange(pdNil, std::memory_order_seq_cst);
  if (old > pdWait) detail::fatal("runtime: corrupted polldesc");
  return old == pdReady;
}

// Take the G out of pd's mode slot: ioready leaves pdReady behind (the next
// netpollblock returns at once); otherwise (a deadline, a close) only a
// waiter is woken, to look at the error state.
G* netpollunblock(PollDesc* pd, int mode, bool ioready) {
  auto& gpp = slot(pd, mode);
  for (;;) {
    std::uintptr_t old = gpp.load(std::memory_order_seq_cst);
    if (old == pdReady) return nullptr;
    if (old == pdNil && !ioready) return nullptr;
    std::uintptr_t nw = ioready ? pdReady : pdNil;
    if (gpp.compare_exchange_strong(old, nw, std::memory_order_seq_cst)) {
      if (old == pdNil || old == pdWait) return nullptr;  // a pdWait goroutine sees nw in its commit
      netpollWaiters.fetch_sub(1, std::memory_order_seq_cst);
      return reinterpret_cast<G*>(old);
    }
  }
}

// A deadline timer fired: if the deadline it was set for has passed (it
// may have been moved since), mark it passed and wake the waiter.
void netpollDeadline(void* arg, std::int64_t now, bool read) {
  auto* pd = static_cast<PollDesc*>(arg);
  G* gp = nullptr;
  {
    LockGuard l(pd->lock);
    std::int64_t& d = read ? pd->rd : pd->wd;
    if (pd->closing || d <= 0 || d > now) return;
    d = -1;
    pd->publishInfo();
    gp = netpollunblock(pd, read ? 'r' : 'w', false);
  }
  if (gp != nullptr) goready(gp);
}

// The descriptors wait_readable/wait_writable registered, while some
// goroutine waits on them (goro::wait, below).
struct WaitEntry {
  PollDesc* pd = nullptr;
  bool reading = false, writing = false;  // a goroutine waits in that direction
};
std::mutex waitMu;  // never held across a park
std::unordered_map<int, WaitEntry> waitTable;

void netpollReadDeadline(void* arg, std::int64_t now) { netpollDeadline(arg, now, true); }
void netpollWriteDeadline(void* arg, std::int64_t now) { netpollDeadline(arg, now, false); }

}  // namespace

bool netpollinited() { return netpollInited.load(std::memory_order_acquire); }

void netpollGenericInit() {
  if (netpollinited()) return;
  {
    LockGuard l(netpollInitLock);
    if (netpollinited()) return;
    netpollinit();
    netpollInited.store(true, std::memory_order_seq_cst);
  }
  // An M asleep until the next timer sleeps on a futex: have it poll now.
  pollBreak();
}

bool netpollAnyWaiters() { return netpollWaiters.load(std::memory_order_seq_cst) > 0; }

void netpollTeardown() {
  {
    // The waiters are abandoned: their descriptors go back to the program.
    std::lock_guard<std::mutex> l(waitMu);
    for (auto& [fd, e] : waitTable) {
      e.pd->closing = true;
      e.pd->rg.store(pdNil, std::memory_order_relaxed);
      e.pd->wg.store(pdNil, std::memory_order_relaxed);
      pollClose(e.pd);
    }
    waitTable.clear();
  }
  LockGuard l(pollcacheLock);
  for (PollDesc* pd = pollcacheAll; pd != nullptr; pd = pd->alllink) {
    for (auto* s : {&pd->rg, &pd->wg}) {
      if (s->load(std::memory_order_acquire) > pdWait) s->store(pdNil, std::memory_order_release);
    }
  }
  netpollWaiters.store(0, std::memory_order_seq_cst);
}

PollDesc* pollOpen(int fd) {
  netpollGenericInit();
  PollDesc* pd = pollcacheAlloc();
  {
    LockGuard l(pd->lock);
    if (pd->rg.load(std::memory_order_relaxed) > pdWait || pd->wg.load(std::memory_order_relaxed) > pdWait) {
      detail::fatal("runtime: blocked read or write on a free polldesc");
    }
    pd->fd = fd;
    pd->fdseq.fetch_add(1, std::memory_order_release);
    pd->closing = false;
    pd->rg.store(pdNil, std::memory_order_relaxed);
    pd->wg.store(pdNil, std::memory_order_relaxed);
    pd->rd = 0;
    pd->wd = 0;
    pd->publishInfo();
  }
  int err = netpollopen(fd, pd);
  if (err != 0) {
    pollcacheFree(pd);
    errno = err;
    return nullptr;
  }
  return pd;
}

void pollClose(PollDesc* pd) {
  if (!pd->closing) detail::fatal("runtime: close polldesc w/o unblock");
  if (pd->rg.load(std::memory_order_acquire) > pdWait || pd->wg.load(std::memory_order_acquire) > pdWait) {
    detail::fatal("runtime: blocked read or write on closing polldesc");
  }
  netpollclose(pd->fd);
  pollcacheFree(pd);
}

int pollReset(PollDesc* pd, int mode) {
  int err = netpollcheckerr(pd, mode);
  if (err != pollNoError) return err;
  if (mode == 'r') {
    pd->rg.store(pdNil, std::memory_order_release);
  } else if (mode == 'w') {
    pd->wg.store(pdNil, std::memory_order_release);
  }
  return pollNoError;
}

int pollWait(PollDesc* pd, int mode) {
  int err = netpollcheckerr(pd, mode);
  if (err != pollNoError) return err;
  while (!netpollblock(pd, mode, false)) {
    err = netpollcheckerr(pd, mode);
    if (err != pollNoError) return err;
    // A deadline fired and woke us, then was moved before we ran: wait on.
  }
  return pollNoError;
}

void pollSetDeadline(PollDesc* pd, std::int64_t d, int mode) {
  G* rg = nullptr;
  G* wg = nullptr;
  {
    LockGuard l(pd->lock);
    if (pd->closing) return;
    std::int64_t now = nanotime();
    if (d > 0 && d <= now) d = -1;  // passed already
    if (mode == 'r' || mode == 'r' + 'w') pd->rd = d;
    if (mode == 'w' || mode == 'r' + 'w') pd->wd = d;
    pd->publishInfo();
    // The timers: armed for a deadline to come, stopped otherwise. One that
    // fires for a deadline since moved finds it later (netpollDeadline).
    if (pd->rd > 0) {
      modtimer(&pd->rt, pd->rd, 0);
    } else {
      deltimer(&pd->rt);
    }
    if (pd->wd > 0) {
      modtimer(&pd->wt, pd->wd, 0);
    } else {
      deltimer(&pd->wt);
    }
    if (pd->rd < 0) rg = netpollunblock(pd, 'r', false);
    if (pd->wd < 0) wg = netpollunblock(pd, 'w', false);
  }
  if (rg != nullptr) goready(rg);
  if (wg != nullptr) goready(wg);
}

void pollUnblock(PollDesc* pd) {
  G* rg = nullptr;
  G* wg = nullptr;
  {
    LockGuard l(pd->lock);
    if (pd->closing) detail::fatal("runtime: unblock on closing polldesc");
    pd->closing = true;
    pd->publishInfo();
    rg = netpollunblock(pd, 'r', false);
    wg = netpollunblock(pd, 'w', false);
    deltimer(&pd->rt);
    deltimer(&pd->wt);
    pd->rd = 0;
    pd->wd = 0;
  }
  if (rg != nullptr) goready(rg);
  if (wg != nullptr) goready(wg);
}

void netpollready(GList& list, PollDesc* pd, int mode) {
  if (mode == 'r' || mode == 'r' + 'w') {
    if (G* gp = netpollunblock(pd, 'r', true)) list.push(gp);
  }
  if (mode == 'w' || mode == 'r' + 'w') {
    if (G* gp = netpollunblock(pd, 'w', true)) list.push(gp);
  }
}

}  // namespace goro::runtime

// ---------------------------------------------------------------------------
// wait_readable / wait_writable: a descriptor the program brings is
// registered while some goroutine waits on it, and only then (the program
// may close it, or hand it to another poller, at any other time). Waiters
// on one descriptor share its PollDesc: one per direction at a time.

namespace goro {

namespace {

using namespace runtime;

[[noreturn]] void throwErrno(int err, const char* what, int fd) {
  throw std::system_error(err, std::generic_category(),
                          std::string("goro::") + what + ": descriptor " + std::to_string(fd));
}

// A thread that is not running a goroutine (or a goroutine inside
// goro::syscall, which owns its thread): block the thread in poll(2).
bool waitThread(int fd, short events, std::int64_t deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline != 0) {
      std::int64_t left = deadline - nanotime();
      if (left <= 0) return false;
      timeout = static_cast<int>(std::min<std::int64_t>((left + 999999) / 1000000, 1 << 30));
    }
    struct pollfd p {
      fd, events, 0
    };
    int n = ::poll(&p, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwErrno(errno, events == POLLIN ? "wait_readable" : "wait_writable", fd);
    }
    if (n > 0) {
      if ((p.revents & POLLNVAL) != 0) throwErrno(EBADF, events == POLLIN ? "wait_readable" : "wait_writable", fd);
      return true;
    }
  }
}

bool wait(int fd, int mode, std::int64_t deadline) {
  const char* what = mode == 'r' ? "wait_readable" : "wait_writable";
  if (fd < 0) throw std::invalid_argument(std::string("goro::") + what + ": negative descriptor " + std::to_string(fd));
  G* gp = getg();
  if (unannouncedReturn(gp)) exitsyscallUnannounced();
  if (gp == nullptr || readgstatus(gp) == _Gsyscall || gp->m->p == nullptr) {
    return waitThread(fd, mode == 'r' ? POLLIN : POLLOUT, deadline);
  }
  if (deadline != 0 && deadline <= nanotime()) return false;
  PollDesc* pd = nullptr;
  {
    std::lock_guard<std::mutex> l(waitMu);
    WaitEntry& e = waitTable[fd];
    if (e.pd == nullptr) {
      e.pd = pollOpen(fd);
      if (e.pd == nullptr) {
        int err = errno;
        waitTable.erase(fd);
        // A regular file (or a directory) cannot be polled: it is always
        // ready, as poll(2) says.
        if (err == EPERM) return true;
        throwErrno(err, what, fd);
      }
    }
    bool& busy = mode == 'r' ? e.reading : e.writing;
    if (busy) {
      throw std::logic_error(std::string("goro::") + what + ": another goroutine already waits on descriptor " +
                             std::to_string(fd) + (mode == 'r' ? " to become readable" : " to become writable"));
    }
    busy = true;
    pd = e.pd;
  }
  // The deadline is the PollDesc's for this direction while we wait.
  pollSetDeadline(pd, deadline, mode);
  int err = pollWait(pd, mode);
  pollSetDeadline(pd, 0, mode);
  {
    std::lock_guard<std::mutex> l(waitMu);
    WaitEntry& e = waitTable[fd];
    (mode == 'r' ? e.reading : e.writing) = false;
    if (!e.reading && !e.writing) {
      pollUnblock(pd);
      pollClose(pd);
      waitTable.erase(fd);
    }
  }
  return err == pollNoError;
}

}  // namespace

void wait_readable(int fd) { wait(fd, 'r', 0); }
void wait_writable(int fd) { wait(fd, 'w', 0); }

bool wait_readable(int fd, Clock::time_point deadline) {
  return wait(fd, 'r', std::max<std::int64_t>(1, deadline.time_since_epoch() / std::chrono::nanoseconds(1)));
}

bool wait_writable(int fd, Clock::time_point deadline) {
  return wait(fd, 'w', std::max<std::int64_t>(1, deadline.time_since_epoch() / std::chrono::nanoseconds(1)));
}

}  // namespace goro
