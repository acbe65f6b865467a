// goro/poll.hpp — waiting for a descriptor without holding a thread: the
// building block for integrating other libraries' sockets, pipes and
// eventfds with goroutines (Go's netpoller, under its net package).
#pragma once

#include "goro/runtime.hpp"

namespace goro {

// Park the calling goroutine until fd (non-blocking, set up by the caller)
// is readable, resp. writable; its P runs other goroutines meanwhile. The
// readiness is the kernel's (epoll, edge-triggered): like any poller's, it
// may be stale by the time the goroutine runs, so do the I/O and wait
// again on EAGAIN. A descriptor that cannot be polled (a regular file) is
// always ready. At most one goroutine waits on a descriptor per direction
// (a second throws std::logic_error); the descriptor is registered with
// the poller only while someone waits, so it may be closed or handed
// elsewhere at any other time (not while waited on: the waiter would wait
// for ever). From a thread that is not running a goroutine, or inside
// goro::syscall, these block the thread in poll(2) instead.
// Throws std::invalid_argument for a negative fd, std::system_error for
// one the kernel refuses (EBADF...).
void wait_readable(int fd);
void wait_writable(int fd);
// The same, until deadline at the latest: false if it passed first.
bool wait_readable(int fd, Clock::time_point deadline);
bool wait_writable(int fd, Clock::time_point deadline);

}  // namespace goro
