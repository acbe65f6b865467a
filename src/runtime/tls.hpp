// tls.hpp — getg()/setg(): the current G, in thread-local storage.
// Invariant: getg() reads the TLS slot afresh at every call. A goroutine may
// resume on another thread after any switch, and compilers cache the
// address of a thread_local across calls, so the read is an asm volatile
// the compiler can neither cache nor move. Mirrors Go's g register / TLS.
#pragma once

namespace goro::runtime {
struct G;
}

extern "C" {
// g on g0 while scheduling, curg while a goroutine runs; nullptr on threads
// that are not Ms. Initial-exec so that the asm below can address it.
extern __thread goro::runtime::G* goro_tls_g __attribute__((tls_model("initial-exec")));
// Runtime locks (lock_futex.hpp's Mutex) the thread holds: Go's m.locks, kept
// per thread so that plain threads are counted too (an M is one thread).
extern __thread int goro_tls_locks __attribute__((tls_model("initial-exec")));
}

namespace goro::runtime {

#if defined(__x86_64__)
inline G* getg() {
  G* gp;
  asm volatile(
      "movq goro_tls_g@gottpoff(%%rip), %0\n\t"
      "movq %%fs:(%0), %0"
      : "=r"(gp));
  return gp;
}
inline void setg(G* gp) {
  void* off;
  asm volatile(
      "movq goro_tls_g@gottpoff(%%rip), %0\n\t"
      "movq %1, %%fs:(%0)"
      : "=&r"(off)
      : "r"(gp)
      : "memory");
}
// The calling thread's lock count (see goro_tls_locks): its address is
// computed afresh at every call, as getg() is.
inline int* mlocksp() {
  int* p;
  asm volatile(
      "movq goro_tls_locks@gottpoff(%%rip), %0\n\t"
      "addq %%fs:0, %0"
      : "=r"(p));
  return p;
}
// Adds d to the calling thread's lock count: one add to the TLS slot, for the
// runtime mutex's hot paths. No "memory" clobber (it made every channel
// operation reload what it held in registers: chan_prodcons_1x1 7 % slower):
// nothing the compiler keeps lives in this slot, and the reader, mlocksp(),
// is asm volatile too (kept in order with this one) and yields an address
// the compiler cannot have loaded from before. The compiler may move the
// add across the lock's own atomics; the count is read at scheduling
// points, never between the two.
template <int d>
inline void mlocks_add() {
  void* off;
  asm volatile(
      "movq goro_tls_locks@gottpoff(%%rip), %0\n\t"
      "addl %1, %%fs:(%0)"
      : "=&r"(off)
      : "i"(d)
      : "cc");
}
#else
// Elsewhere: out-of-line accessors, which the compiler cannot cache across.
G* getg();
void setg(G* gp);
int* mlocksp();
template <int d>
inline void mlocks_add() {
  *mlocksp() += d;
}
#endif

}  // namespace goro::runtime
