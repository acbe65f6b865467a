// netpoll_epoll.cpp — the poller on Linux: one epoll instance for the
// process, descriptors registered edge-triggered for both directions, an
// eventfd to break a blocked netpoll (netpollBreak).
// Invariants: an event's data is its PollDesc's address tagged with the
// low 16 bits of the PollDesc's fdseq at registration (data 0 is the
// eventfd), so an event of a descriptor since closed and reused is
// dropped; the eventfd is read, and netpollWakeSig cleared, only by a
// blocking netpoll. Mirrors Go's netpoll_epoll.go.

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "netpoll.hpp"
#include "os.hpp"
#include "panic.hpp"

namespace goro::runtime {

namespace {

int epfd = -1;
int netpollEventFd = -1;
std::atomic<std::uint32_t> netpollWakeSig{0};  // a break is on its way
// epoll_pwait2 (Linux 5.11): ns timeouts. Cleared for good the first time
// the kernel (or a seccomp filter, which says EPERM) refuses it.
std::atomic<bool> havePwait2{true};

constexpr int kTagShift = 48;
constexpr std::uint64_t kTagMask = 0xffff;

std::uint64_t tagged(PollDesc* pd, std::uint32_t seq) {
  return (static_cast<std::uint64_t>(seq) & kTagMask) << kTagShift | reinterpret_cast<std::uintptr_t>(pd);
}

// The wait itself: epoll_pwait2 with the delay in ns where the kernel has
// it (timers are due to the microsecond), else epoll_wait in ms, rounded
// up (an early return would only spin).
int epollwait(epoll_event* events, int max, std::int64_t delay) {
  if (havePwait2.load(std::memory_order_relaxed)) {
    struct timespec ts;
    struct timespec* tsp = timeout_timespec(delay, ts);
    int n = static_cast<int>(::syscall(SYS_epoll_pwait2, epfd, events, max, tsp, nullptr, 0));
    if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
    havePwait2.store(false, std::memory_order_relaxed);
  }
  int ms = -1;
  if (delay == 0) {
    ms = 0;
  } else if (delay > 0) {
    std::int64_t m = (delay + 999999) / 1000000;
    ms = m > 1000000000 ? 1000000000 : static_cast<int>(m);
  }
  return ::epoll_wait(epfd, events, max, ms);
}

}  // namespace

void netpollinit() {
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) detail::fatal("runtime: netpollinit failed (epoll_create1)");
  netpollEventFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (netpollEventFd < 0) detail::fatal("runtime: netpollinit failed (eventfd)");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (::epoll_ctl(epfd, EPOLL_CTL_ADD, netpollEventFd, &ev) != 0) {
    detail::fatal("runtime: netpollinit failed (epoll_ctl of the eventfd)");
  }
}

int netpollopen(int fd, PollDesc* pd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tagged(pd, pd->fdseq.load(std::memory_order_relaxed));
  return ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

void netpollclose(int fd) {
  epoll_event ev{};
  ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);  // EBADF: the program closed it already
}

void netpollBreak() {
  std::uint32_t zero = 0;
  if (!netpollWakeSig.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  std::uint64_t one = 1;
  for (;;) {
    if (::write(netpollEventFd, &one, sizeof one) == sizeof one) return;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return;  // the counter is full: a break is pending anyway
    detail::fatal("runtime: netpollBreak write failed");
  }
}

GList netpoll(std::int64_t delay) {
  GList list;
  if (epfd < 0) return list;
  epoll_event events[128];
  int n;
  for (;;) {
    n = epollwait(events, 128, delay);
    if (n >= 0) break;
    if (errno != EINTR) detail::fatal("runtime: netpoll failed (epoll_wait)");
    // An interrupted timed wait returns, so that the caller works out how
    // long to sleep from now.
    if (delay > 0) return list;
  }
  for (int i = 0; i < n; i++) {
    const epoll_event& ev = events[i];
    if (ev.events == 0) continue;
    if (ev.data.u64 == 0) {
      // The break: consumed only by a blocking poll, so that a break meant
      // for the M blocked in netpoll is not eaten by a non-blocking one.
      if (delay != 0) {
        std::uint64_t buf;
        while (::read(netpollEventFd, &buf, sizeof buf) < 0 && errno == EINTR) {
        }
        netpollWakeSig.store(0, std::memory_order_seq_cst);
      }
      continue;
    }
    int mode = 0;
    if ((ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) mode += 'r';
    if ((ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) mode += 'w';
    if (mode == 0) continue;
    auto* pd = reinterpret_cast<PollDesc*>(ev.data.u64 & ((std::uint64_t{1} << kTagShift) - 1));
    auto tag = static_cast<std::uint32_t>(ev.data.u64 >> kTagShift);
    if (tag != (pd->fdseq.load(std::memory_order_acquire) & kTagMask)) continue;  // an earlier life's event
    netpollready(list, pd, mode);
  }
  return list;
}

}  // namespace goro::runtime
