// panic.cpp — fatal errors and unrecovered panics: Go's throw (fatal) and
// fatalpanic, and the write(2)-only printing they use.
// Invariant: nothing here allocates or takes a lock: a fatal error may
// strike in a signal handler or with runtime locks held; the goroutine
// dump that follows try-locks (traceback.cpp). Mirrors panic.go.

#include "panic.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "proc.hpp"

namespace goro::runtime {

void printerr(const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void printerr_u64(unsigned long long v) {
  char buf[24];
  int i = 23;
  buf[i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  printerr(buf + i);
}

[[noreturn]] void fatalpanic(const char* what) {
  printerr("panic: ");
  printerr(what);
  printerr("\n");
  dump_to_stderr(current_user_g());
  std::abort();
}

}  // namespace goro::runtime

namespace goro::detail {

[[noreturn]] void fatal(const char* msg) {
  using namespace goro::runtime;
  printerr("fatal error: ");
  printerr(msg);
  printerr("\n");
  dump_to_stderr(current_user_g());
  std::abort();
}

}  // namespace goro::detail
