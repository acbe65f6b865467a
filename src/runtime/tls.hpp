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
// that are not Ms. Initial-exec (at least) so that the asm below can address
// it from any object of goro's.
extern __thread goro::runtime::G* goro_tls_g __attribute__((tls_model("initial-exec")));
// Runtime locks (lock_futex.hpp's Lock) the thread holds: Go's m.locks, kept
// per thread so that plain threads are counted too (an M is one thread).
extern __thread int goro_tls_locks __attribute__((tls_model("initial-exec")));
}

namespace goro::runtime {

// The x86-64 accessors below are asm volatile, each computing the slot's
// address afresh, in one of two ways:
//  - local-exec, when goro's build says this object can only be linked into
//    an executable that defines the slot (GORO_TLS_LOCAL_EXEC: goro's own
//    sources in a static, non-PIC library, the usual case; and never under
//    -fPIC, even if asked): the linker knows the slot's offset from %fs, so
//    an access is one instruction;
//  - initial-exec everywhere else (goro as a shared library, or the
//    white-box tests including this header): the offset is loaded from the
//    GOT first.
#if defined(GORO_TLS_LOCAL_EXEC) && defined(__PIC__) && !defined(__PIE__)
#undef GORO_TLS_LOCAL_EXEC
#endif

#if defined(__x86_64__)
inline G* getg() {
  G* gp;
#ifdef GORO_TLS_LOCAL_EXEC
  asm volatile("movq %%fs:goro_tls_g@tpoff, %0" : "=r"(gp));
#else
  asm volatile(
      "movq goro_tls_g@gottpoff(%%rip), %0\n\t"
      "movq %%fs:(%0), %0"
      : "=r"(gp));
#endif
  return gp;
}
inline void setg(G* gp) {
#ifdef GORO_TLS_LOCAL_EXEC
  asm volatile("movq %0, %%fs:goro_tls_g@tpoff" : : "r"(gp) : "memory");
#else
  void* off;
  asm volatile(
      "movq goro_tls_g@gottpoff(%%rip), %0\n\t"
      "movq %1, %%fs:(%0)"
      : "=&r"(off)
      : "r"(gp)
      : "memory");
#endif
}
// The calling thread's lock count (see goro_tls_locks).
inline int* mlocksp() {
  int* p;
#ifdef GORO_TLS_LOCAL_EXEC
  asm volatile(
      "movq %%fs:0, %0\n\t"
      "addq $goro_tls_locks@tpoff, %0"
      : "=r"(p));
#else
  asm volatile(
      "movq goro_tls_locks@gottpoff(%%rip), %0\n\t"
      "addq %%fs:0, %0"
      : "=r"(p));
#endif
  return p;
}
// Adds d to the calling thread's lock count, on the runtime mutex's hot
// paths: one add to the slot (local-exec), or a GOT load and the add. No
// "memory" clobber (it made every channel operation reload what it held in
// registers: chan_prodcons_1x1 7 % slower): nothing the compiler keeps
// lives in this slot, and the reader, mlocksp(), is asm volatile too (kept
// in order with this one) and yields an address the compiler cannot have
// loaded from before. The compiler may move the add across the lock's own
// atomics; the count is read at scheduling points, never between the two.
template <int d>
inline void mlocks_add() {
#ifdef GORO_TLS_LOCAL_EXEC
  asm volatile("addl %0, %%fs:goro_tls_locks@tpoff" : : "i"(d) : "cc");
#else
  void* off;
  asm volatile(
      "movq goro_tls_locks@gottpoff(%%rip), %0\n\t"
      "addl %1, %%fs:(%0)"
      : "=&r"(off)
      : "i"(d)
      : "cc");
#endif
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
