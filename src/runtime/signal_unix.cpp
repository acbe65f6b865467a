// signal_unix.cpp — the stack-overflow handler, the preemption signal's
// handler and per-M signal stacks.
// Invariants: the handlers run on the M's sigaltstack and use only
// async-signal-safe calls; a signal they do not own goes to the previous
// handler (or the default action), and errno is as the interrupted code
// left it. Mirrors signal_unix.go (sigtrampgo, sighandler's stack-overflow
// check, doSigPreempt's call site, sigfwd) and os_linux.go
// (minitSignalStack).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "os.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"
#include "stack.hpp"

namespace goro::runtime {
namespace {

constexpr std::size_t kAltStackSize = std::size_t{64} * 1024;

struct sigaction old_segv, old_bus, old_preempt;
bool installed = false;
int preemptsig = 0;  // the preemption signal while its handler is installed

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

// A signal's default action when it is not a fault: some are ignored.
GORO_NO_SANITIZE bool ignored_by_default(int sig) {
  return sig == SIGURG || sig == SIGCHLD || sig == SIGWINCH || sig == SIGCONT;
}

// The preemption signal: goro's own (signalM's marks) asks this thread's
// goroutine to yield; anything else is the program's and goes to the
// handler that was there before. Both may be one delivery: a standard
// signal sent twice before delivery arrives once, so a preemption request
// is looked at whatever the siginfo says.
GORO_NO_SANITIZE void sigpreempt_handler(int sig, siginfo_t* info, void* uctx) {
  int saved = errno;
  bool ours = info->si_code == SI_QUEUE && info->si_value.sival_ptr == signal_cookie() && info->si_pid == getpid();
  G* gp = getg();
  if (gp != nullptr && gp->m != nullptr) doSigPreempt(gp, uctx);
  if (!ours) {
    const struct sigaction& old = old_preempt;
    if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
      old.sa_sigaction(sig, info, uctx);
    } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_handler != nullptr) {
      old.sa_handler(sig);
    } else if (old.sa_handler == SIG_DFL && !ignored_by_default(sig)) {
      die_by_default(sig, info);
    }
  }
  errno = saved;
}

// The kernel's struct sigaction (rt_sigaction).
struct KernelSigaction {
  void (*handler)(int, siginfo_t*, void*);
  unsigned long flags;
  void (*restorer)();
  unsigned long mask;
};

// Install sa for sig. Under TSan, the handler goes to the kernel directly:
// TSan's own would run it later, at a point of TSan's choosing, with a copy
// of the interrupted context, and the preemption handler must change the
// context itself. TSan still sees the sigaction (it keeps its books), and
// the kernel gets TSan's restorer with goro's handler.
void install(int sig, const struct sigaction& sa, struct sigaction* old) {
  sigaction(sig, &sa, old);
  if constexpr (san::kTsan) {
    KernelSigaction k{};
    if (::syscall(SYS_rt_sigaction, sig, nullptr, &k, sizeof k.mask) != 0) return;
    k.handler = sa.sa_sigaction;
    k.flags = static_cast<unsigned long>(sa.sa_flags) | (k.flags & 0x04000000UL);  // SA_RESTORER
    ::syscall(SYS_rt_sigaction, sig, &k, nullptr, sizeof k.mask);
  }
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

void signal_handlers_install(int sigpreempt) {
  struct sigaction sa {};
  sa.sa_sigaction = &sigsegv_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  if (sigpreempt > 0) {
    sa.sa_sigaction = &sigpreempt_handler;
    install(sigpreempt, sa, &old_preempt);
    preemptsig = sigpreempt;
  }
  installed = true;
}

void minitSignalMask(M* mp) {
  if (preemptsig <= 0) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, preemptsig);
  pthread_sigmask(SIG_UNBLOCK, &set, mp->is_m0 ? &mp->sigmask : nullptr);
}

void unminitSignalMask(M* mp) {
  if (preemptsig > 0 && mp->is_m0) pthread_sigmask(SIG_SETMASK, &mp->sigmask, nullptr);
}

// The kernel's view of thread tid: the SigBlk line of
// /proc/self/task/TID/status, a hex mask with bit sig-1 for sig.
const char* preemptSignalStuck(std::int32_t tid) {
  struct sigaction cur {};
  if (sigaction(preemptsig, nullptr, &cur) == 0 && cur.sa_sigaction != &sigpreempt_handler) {
    return "its handler was replaced (a sigaction made while goro::run runs)";
  }
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/status", static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return nullptr;
  buf[n] = 0;
  const char* line = std::strstr(buf, "\nSigBlk:");
  if (line == nullptr) return nullptr;
  unsigned long long mask = std::strtoull(line + 8, nullptr, 16);
  if (preemptsig <= 64 && (mask >> (preemptsig - 1) & 1) != 0) {
    return "the thread blocks it (pthread_sigmask or sigprocmask in a goroutine)";
  }
  return nullptr;
}

void signal_handlers_remove() {
  if (!installed) return;
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  if (preemptsig > 0) sigaction(preemptsig, &old_preempt, nullptr);
  preemptsig = 0;
  installed = false;
}

}  // namespace goro::runtime
