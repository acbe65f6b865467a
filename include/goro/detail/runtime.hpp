// goro/detail/runtime.hpp — what goro/runtime.hpp's templates expand to:
// the type-erased entry points of the runtime (src/runtime) behind run(),
// go(), syscall() and blocking(). Not for users: names and signatures here
// change without notice. Mirrors the runtime half of Go's `go` statement
// (newproc) and of package syscall's Syscall (entersyscall/exitsyscall).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

// The runtime switches stacks, which ASan and TSan must be told about; so goro
// and the code that uses it must be built with the same sanitizer. The entry
// point run() calls carries the sanitizer in its mangled name: an
// instrumented program linking an uninstrumented goro (or the other way
// round) fails to link with an undefined reference to
// goro::detail::san_<mode>::runtime_run, instead of crashing at run time.
#if defined(__SANITIZE_THREAD__)
#define GORO_DETAIL_SAN_ABI san_thread
#elif defined(__SANITIZE_ADDRESS__)
#define GORO_DETAIL_SAN_ABI san_address
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_DETAIL_SAN_ABI san_thread
#elif __has_feature(address_sanitizer)
#define GORO_DETAIL_SAN_ABI san_address
#endif
#endif
#ifndef GORO_DETAIL_SAN_ABI
#define GORO_DETAIL_SAN_ABI san_none
#endif

namespace goro {

struct Options;

namespace detail {

// Go's _MaxGomaxprocs.
inline constexpr int kMaxProcs = 1024;

// The type-erased core behind run() and go(). A goroutine's closure is built
// in place at the top of its own stack, so starting one costs no allocation.
using EntryFn = void (*)(void* closure);
inline namespace GORO_DETAIL_SAN_ABI {
int runtime_run(EntryFn main_entry, void* main_closure, const Options& opts);
}
// newproc in three steps: reserve a G and room for the closure on its stack,
// let the caller construct the closure there, then make the G runnable (or
// give it back if construction threw).
struct NewProc {
  void* closure;
  void* g;
  bool foreign;  // begun on a thread that is not an M
};
NewProc newproc_begin(std::size_t size, std::size_t align, EntryFn entry);
void newproc_commit(NewProc np);
void newproc_abort(NewProc np) noexcept;

// The system-call hand-off (proc.cpp). entersyscall returns false on a
// thread that is not running a goroutine, where there is nothing to do.
bool entersyscall(bool block) noexcept;
void exitsyscall() noexcept;
// Runs f between entersyscall and exitsyscall. An exception from f is held
// until exitsyscall is done and rethrown after: exitsyscall may move the
// goroutine to another thread, which must not happen mid-unwind (the C++
// runtime counts exceptions in flight per thread).
template <class F>
decltype(auto) syscall_call(F&& f, bool block) {
  using R = std::decay_t<std::invoke_result_t<F>>;
  bool entered = entersyscall(block);
  std::exception_ptr ep;
  if constexpr (std::is_void_v<R>) {
    try {
      std::invoke(std::forward<F>(f));
    } catch (...) {
      ep = std::current_exception();
    }
    if (entered) exitsyscall();
    if (ep) std::rethrow_exception(ep);
  } else {
    std::optional<R> r;
    try {
      r.emplace(std::invoke(std::forward<F>(f)));
    } catch (...) {
      ep = std::current_exception();
    }
    if (entered) exitsyscall();
    if (ep) std::rethrow_exception(ep);
    return R(std::move(*r));
  }
}

template <class Fn, class... Args>
struct Closure {
  Fn fn;
  std::tuple<Args...> args;

  template <class F, class... A>
  explicit Closure(F&& f, A&&... a) : fn(std::forward<F>(f)), args(std::forward<A>(a)...) {}

  // Runs the goroutine's function, then destroys the closure. The closure is
  // destroyed even when fn exits by exception (goexit or a panic).
  static void invoke(void* p) {
    auto* self = static_cast<Closure*>(p);
    struct Destroy {
      Closure* c;
      ~Destroy() { c->~Closure(); }
    } destroy{self};
    std::apply([&](auto&&... a) { std::invoke(std::move(self->fn), std::move(a)...); }, std::move(self->args));
  }
};

}  // namespace detail

}  // namespace goro
