// signal_unix.cpp — the stack-overflow handler and per-M signal stacks.
// Invariants: the handler runs on the M's sigaltstack and uses only
// async-signal-safe calls; a fault it does not own goes to the previous
// handler (or the default action). Mirrors signal_unix.go (sigtrampgo,
// sighandler's stack-overflow check) and os_linux.go (minitSignalStack).
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>

#include "os.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "stack.hpp"

namespace goro::runtime {
namespace {

constexpr std::size_t kAltStackSize = std::size_t{64} * 1024;

struct sigaction old_segv, old_bus;
bool installed = false;

// The interrupted pc (Go's sigctxt.sigpc).
std::uintptr_t sigctxt_pc(void* uctx) {
  const auto* uc = static_cast<const ucontext_t*>(uctx);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
#error "sigctxt_pc: unsupported architecture"
#endif
}

// The last signal this thread forwarded (initial-exec TLS: safe to touch
// in a signal handler).
struct Forwarded {
  int sig;
  std::uintptr_t pc, addr;
};
__thread Forwarded last_forwarded __attribute__((tls_model("initial-exec"))) = {0, 0, 0};

// The signal's default action: for a fault, returning runs the faulting
// instruction again, which now kills; a signal that was sent (a kill or a
// re-raise) is raised again, to be delivered once this handler returns.
void die_by_default(int sig, const siginfo_t* info) {
  signal(sig, SIG_DFL);
  if (info->si_code <= 0) raise(sig);
}

// A fault goro does not own goes to the handler that was there before, as
// if goro's were not installed. That handler may send it straight back: by
// re-raising it (it is blocked while we run, so it is delivered to goro's
// handler again as soon as we return), or by returning without curing the
// fault (the instruction faults again). Forwarding again would loop for
// ever; so a signal at the pc (and, for a fault, the address) this thread
// has just forwarded takes the default action instead.
void chain(int sig, siginfo_t* info, void* uctx) {
  std::uintptr_t pc = sigctxt_pc(uctx);
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  bool fault = info->si_code > 0;
  Forwarded& last = last_forwarded;
  if (last.sig == sig && last.pc == pc && (!fault || last.addr == addr)) {
    die_by_default(sig, info);
    return;
  }
  last = Forwarded{sig, pc, addr};
  const struct sigaction& old = sig == SIGSEGV ? old_segv : old_bus;
  if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
    old.sa_sigaction(sig, info, uctx);
    return;
  }
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_handler != nullptr) {
    old.sa_handler(sig);
    return;
  }
  die_by_default(sig, info);
}

void hex(std::uintptr_t v) {
  char buf[19];
  buf[0] = '0';
  buf[1] = 'x';
  int n = 0;
  char tmp[16];
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  for (int i = 0; i < n; i++) buf[2 + i] = tmp[n - 1 - i];
  buf[2 + n] = '\0';
  printerr(buf);
}

void sigsegv_handler(int sig, siginfo_t* info, void* uctx) {
  auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  G* gp = getg();
  // In the instants around a switch, getg() may already be g0 while sp is
  // still on the goroutine's stack: check the goroutine the M runs too.
  if (gp != nullptr && !in_stack_guard(gp->stack, addr) && gp->m != nullptr && gp->m->curg != nullptr) {
    gp = gp->m->curg;
  }
  if (gp != nullptr && in_stack_guard(gp->stack, addr)) {
    printerr("runtime: goroutine ");
    printerr_u64(gp->goid);
    printerr(" stack exceeds ");
    printerr_u64(gp->stack.hi - gp->stack.lo);
    printerr("-byte limit\nruntime: fault addr=");
    hex(addr);
    printerr(" stack=[");
    hex(gp->stack.lo);
    printerr(", ");
    hex(gp->stack.hi);
    printerr("]\n");
    detail::fatal("stack overflow");
  }
  chain(sig, info, uctx);
}

}  // namespace

// The thread's own alternate stack is kept when it has one (as Go's
// minit does for a C thread's), else it gets one of ours.
void* signal_altstack_install() {
  stack_t old{};
  if (sigaltstack(nullptr, &old) == 0 && (old.ss_flags & SS_DISABLE) == 0) return nullptr;
  void* mem = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) detail::fatal("minit: cannot allocate the signal stack");
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) detail::fatal("minit: sigaltstack failed");
  return mem;
}

void signal_altstack_remove(void* stack) {
  if (stack == nullptr) return;  // the thread's own: left as it was
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(stack, kAltStackSize);
}

void signal_handlers_install() {
  struct sigaction sa {};
  sa.sa_sigaction = &sigsegv_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  installed = true;
}

void signal_handlers_remove() {
  if (!installed) return;
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  installed = false;
}

}  // namespace goro::runtime
