// goro/runtime.hpp — the runtime's public entry points (Go: package runtime).
// run() bootstraps a runtime on the calling thread; go() starts goroutines.
// Everything here is specified in API.md; implementation lives in src/runtime,
// and what the templates expand to in goro/detail/runtime.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <goro/detail/runtime.hpp>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace goro {

using Clock = std::chrono::steady_clock;

// Smallest Options::stack_size the runtime accepts (smaller throws
// std::invalid_argument): the goroutine entry, a libstdc++ exception unwind
// and a little user code must fit.
inline constexpr std::size_t min_stack_size = std::size_t{16} * 1024;

// Options for run(). Zero means "choose": see each field.
struct Options {
  // Number of Ps (GOMAXPROCS). 0: $GOMAXPROCS if set, else the number of CPUs
  // this process may use (affinity mask and cgroup CPU quota). At most 1024.
  int maxprocs = 0;
  // Bytes of address space reserved for each goroutine's stack (pages are
  // committed by the kernel on first touch). 0: $GORO_STACK_SIZE if set, else
  // 256 KiB. Must be at least min_stack_size.
  std::size_t stack_size = 0;
  // Report Go's "all goroutines are asleep - deadlock!" (a fatal error) when
  // no goroutine can ever run again. Turn it off for a program whose threads
  // wake goroutines without having used goro before (API.md, Fatal errors);
  // GORO_DEBUG=checkdead=0 does the same.
  bool checkdead = true;
  // The signal that preempts a goroutine running for more than 10 ms
  // without a scheduling point (Go's SIGURG, the default: 0). -1 turns
  // asynchronous preemption off (so does GORO_DEBUG=asyncpreemptoff=1):
  // such goroutines are then preempted only at their next checkpoint(),
  // yield or blocking call. A handler the program had for the signal still
  // runs for every signal that is not goro's own.
  int preempt_signal = 0;
};

// Runs `main` as goroutine 1 on a new runtime whose m0 is the calling thread,
// and returns when main returns: its int result, or 0 when it returns void.
// Goroutines still alive then never run again. Throws std::logic_error when a
// runtime is already running, std::invalid_argument for bad Options.
template <class F>
int run(F&& main, Options opts = {}) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "goro::run: main must be callable with no arguments");
  struct Main {
    Fn fn;
    int result = 0;
    static void invoke(void* p) {
      auto* self = static_cast<Main*>(p);
      if constexpr (std::is_convertible_v<std::invoke_result_t<Fn&>, int>) {
        self->result = static_cast<int>(std::invoke(self->fn));
      } else {
        std::invoke(self->fn);
      }
    }
  } m{std::forward<F>(main)};
  int rc = detail::runtime_run(&Main::invoke, &m, opts);
  return rc == 0 ? m.result : rc;
}

// `go f(args...)`: starts a goroutine. The callable and the arguments are
// decay-copied (or moved) now, and passed to f as rvalues, as std::thread does.
// Works from goroutines and from any other thread while a runtime is running;
// throws std::logic_error when none is.
template <class F, class... Args>
void go(F&& f, Args&&... args) {
  using C = detail::Closure<std::decay_t<F>, std::decay_t<Args>...>;
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "goro::go: f is not callable with these arguments (passed as rvalues)");
  if constexpr (std::is_pointer_v<std::decay_t<F>> || std::is_member_pointer_v<std::decay_t<F>>) {
    if (f == nullptr) throw std::invalid_argument("goro::go: go of nil func value");
  } else if constexpr (std::is_class_v<std::decay_t<F>> && std::is_constructible_v<bool, const std::decay_t<F>&> &&
                       !std::is_convertible_v<const std::decay_t<F>&, bool>) {
    // Types with an explicit operator bool, as std::function: empty is nil.
    if (!static_cast<bool>(f)) throw std::invalid_argument("goro::go: go of nil func value");
  }
  detail::NewProc np = detail::newproc_begin(sizeof(C), alignof(C), &C::invoke);
  try {
    ::new (np.closure) C(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    detail::newproc_abort(np);
    throw;
  }
  detail::newproc_commit(np);
}

// runtime.Gosched: yield the processor; the goroutine goes to the global run
// queue. On a thread that is not running a goroutine, yields the thread.
void yield();

// runtime.Goexit: unwinds the calling goroutine (destructors run), then ends
// it. Implemented as an exception the goroutine's entry catches, so a
// `catch (...)` that swallows it would stop the exit: rethrow what you catch.
// Called outside a goroutine, throws std::logic_error.
[[noreturn]] void goexit();

// runtime.GOMAXPROCS: returns the previous value; n > 0 changes it.
// n above 1024 throws std::invalid_argument.
int maxprocs(int n = 0);

// runtime.NumGoroutine: goroutines of the current run() that have not ended.
int num_goroutine();

// The current goroutine's id; 0 outside goroutines.
std::uint64_t goid();

// runtime.LockOSThread: wire the calling goroutine to its thread: it runs
// only there, and nothing else runs there, until as many unlock_os_thread
// calls. A goroutine that exits while locked takes its thread with it.
void lock_os_thread();
// runtime.UnlockOSThread; without a matching lock, a no-op.
void unlock_os_thread();

// Runs f as a blocking system call (Go's entersyscall/exitsyscall): the
// goroutine keeps its thread, and its P stays reserved for a quick return;
// if f blocks for long, sysmon hands the P to another thread so the other
// goroutines run meanwhile. Returns f's result by value; exceptions pass.
// f runs outside the scheduler: it must not wait on channels, select, sleep
// or sync objects (a fatal error); yield there yields the thread.
template <class F>
decltype(auto) syscall(F&& f) {
  return detail::syscall_call(std::forward<F>(f), false);
}
// As syscall, for a call known to block: the P is handed off at once
// (Go's entersyscallblock).
template <class F>
decltype(auto) blocking(F&& f) {
  return detail::syscall_call(std::forward<F>(f), true);
}

// Cooperative preemption point: cheap unless the runtime asked this goroutine
// to yield (it has run for more than 10 ms).
void checkpoint();

}  // namespace goro
