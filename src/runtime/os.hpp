// os.hpp — what the scheduler needs from the operating system, beside
// futexes (lock_futex.hpp): clock, CPU and thread counts, thread stacks,
// signal stacks and handlers.
// Invariant: Linux specifics stay behind these functions (os_linux.cpp,
// signal_unix.cpp). Mirrors os_linux.go and signal_unix.go.
#pragma once

#include <cstdint>
#include <ctime>

namespace goro::runtime {

struct M;

// CLOCK_MONOTONIC in nanoseconds.
std::int64_t nanotime();

// A relative timeout of ns nanoseconds for a system call, in ts: nullptr
// (wait for ever) when ns < 0.
struct timespec* timeout_timespec(std::int64_t ns, struct timespec& ts);

// The calling thread's stack, [lo, hi) (ASan needs a g0's bounds).
void thread_stack_bounds(std::uintptr_t* lo, std::uintptr_t* hi);

// The process's thread count (-1: cannot tell), from /proc/self/stat.
long procthreads();

// errno of the calling thread, read and written through a function the
// compiler cannot see into: __errno_location is declared const, so code
// that switches threads in between (exitsyscall) would otherwise keep using
// the address computed on the first thread.
int errno_get();
void errno_set(int e);

// osinit: CPUs this process may use: the affinity mask, capped by the
// cgroup CPU quota (rounded up), at least 1.
int osinit_ncpu();

// The calling thread's id (gettid).
std::int32_t gettid_();
// The calling thread's CPU-time clock, and a clock's reading in nanoseconds
// (-1 if it cannot be read: the thread is gone).
int thread_cpuclock();
std::int64_t cputime(int clock);
// Send sig to thread tid of this process, marked as goro's own (si_code
// SI_QUEUE, this process's pid, and the value signal_cookie()): Go's signalM.
// False if the thread is gone.
bool signalM(std::int32_t tid, int sig);
const void* signal_cookie();

// Per-M alternate signal stack, so the SIGSEGV handler can run when a
// goroutine has run off the end of its stack.
void* signal_altstack_install();
void signal_altstack_remove(void* stack);
// The SIGSEGV/SIGBUS handler for stack overflow and the preemption signal's
// handler (sig > 0), installed for one run(); signals they do not own go to
// the handler that was there before.
void signal_handlers_install(int sigpreempt);
void signal_handlers_remove();
// minitSignalMask: unblock the preemption signal on the calling thread, an
// M's (Go's minitSignalMask, for the one signal goro needs): a thread
// inherits its creator's mask, and a program that blocks signals in main
// to take them on a thread of its own must still be preemptible. m0's
// mask (run's caller's) is kept in M::sigmask and put back by
// unminitSignalMask.
void minitSignalMask(M* mp);
void unminitSignalMask(M* mp);
// Why a preemption signal sent to thread tid a while ago is still not
// handled: nullptr if the thread does not block it and goro's handler is
// still installed (the signal is on its way: the thread waits for a CPU).
const char* preemptSignalStuck(std::int32_t tid);

}  // namespace goro::runtime
