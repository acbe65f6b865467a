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
#else
// Elsewhere: out-of-line accessors, which the compiler cannot cache across.
G* getg();
void setg(G* gp);
#endif

}  // namespace goro::runtime
