// preempt.cpp — asynchronous preemption, as Go 1.14's: sysmon (retake) and
// stop-the-world (preemptall) ask for it with preemptone, which sends the M
// the preemption signal (preemptM); the handler (doSigPreempt) checks that
// the interrupted point is a safe point (isAsyncSafePoint) and, if it is,
// makes the goroutine call goro_asyncPreempt (arch/context_amd64.S), which
// saves every register and calls asyncPreempt2: the goroutine is wired to
// its thread and yields its P as at a preemption point of its own. The same
// signal hands off the P of a thread sysmon found blocked in a call nobody
// announced (M::unannounced), and later makes it take a P back.
//
// Invariants:
//  - The handler is async-signal-safe: it reads its own thread's G, M and P
//    and the text ranges fixed before the run's first M started, and writes
//    only the interrupted context and the goroutine's stack below the red
//    zone. An unsafe point leaves the request pending; sysmon asks again on
//    its next tick (Go's behaviour).
//  - Safe means: the goroutine is running on its own stack with room to
//    spare, its thread holds no runtime lock, the P's slice is over, the pc
//    is in preemptible text (the executable and non-system shared objects,
//    but never goro's own code, which the build puts in the goro_text
//    section), and the frame-pointer chain leads from the pc to the
//    goroutine's first frame through preemptible code only (so no runtime,
//    libc or signal-handler frame is below the pc).
//  - A goroutine preempted here resumes on the same thread (M::lockedInt,
//    as lock_os_thread wires it): the compiler may hold a thread_local's
//    address (errno's too) in a register across the interrupted point. The
//    wiring ends at the goroutine's next scheduling point of its own (mcall).
//
// Mirrors preempt.go (asyncPreempt2, isAsyncSafePoint, wantAsyncPreempt)
// and signal_unix.go (preemptM, doSigPreempt, sigctxt.pushCall).

#include <cpuid.h>
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <sys/auxv.h>
#include <ucontext.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "os.hpp"
#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"

extern "C" {
// goro's own code (the build renames its objects' text sections; see
// CMakeLists.txt): never preemptible.
extern const char __start_goro_text[] __attribute__((visibility("hidden")));
extern const char __stop_goro_text[] __attribute__((visibility("hidden")));
// The XSAVE area goro_asyncPreempt needs (bytes), and whether it uses XSAVE
// (else FXSAVE, 512 bytes). Set by preempt_init before any signal.
__attribute__((visibility("hidden"))) std::uint32_t goro_xsave_size = 512;
__attribute__((visibility("hidden"))) std::uint8_t goro_have_xsave = 0;
void goro_asyncPreempt();
void goro_asyncPreempt2();
}

namespace goro::runtime {

int sigPreempt = SIGURG;
bool asyncPreemptOn = false;

namespace {

// Stack the injected call may need below the interrupted sp: the red zone,
// goro_asyncPreempt's frame with the XSAVE area, asyncPreempt2 and mcall.
constexpr std::uintptr_t kRedZone = 128;
constexpr std::uintptr_t kAsyncPreemptStack = 8 * 1024;

// Preemptible text: [lo, hi) ranges, fixed at run start (preempt_init),
// read by the handler. Objects loaded later are not preemptible.
struct TextRange {
  std::uintptr_t lo, hi;
};
constexpr int kMaxRanges = 256;
TextRange textRanges[kMaxRanges];
int ntextRanges = 0;
std::uintptr_t goroTextLo = 0, goroTextHi = 0;

bool system_object(const char* path) {
  static const char* const dirs[] = {"/lib/",     "/lib32/",     "/lib64/",     "/libx32/",
                                     "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libx32/"};
  for (const char* d : dirs) {
    if (std::strncmp(path, d, std::strlen(d)) == 0) return true;
  }
  return false;
}

int collect_text(dl_phdr_info* info, std::size_t, void* vdso) {
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  // The executable has an empty name; the vDSO has no file; ld.so and libc
  // live in the system's directories.
  bool exe = name[0] == '\0' && info->dlpi_addr != reinterpret_cast<std::uintptr_t>(vdso);
  if (!exe && (name[0] != '/' || system_object(name))) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    if (ntextRanges == kMaxRanges) return 1;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    textRanges[ntextRanges++] = TextRange{lo, lo + ph.p_memsz};
  }
  return 0;
}

// Whether pc may be interrupted: in preemptible text and not goro's.
GORO_NO_SANITIZE bool preemptible_pc(std::uintptr_t pc) {
  if (pc >= goroTextLo && pc < goroTextHi) return false;
  for (int i = 0; i < ntextRanges; i++) {
    if (pc >= textRanges[i].lo && pc < textRanges[i].hi) return true;
  }
  return false;
}

GORO_NO_SANITIZE std::uintptr_t load(std::uintptr_t addr) { return *reinterpret_cast<const std::uintptr_t*>(addr); }

// Go's wantAsyncPreempt: the request is still wanted, and nothing in the M's
// state forbids acting on it.
GORO_NO_SANITIZE bool wantAsyncPreempt(G* gp, M* mp) {
  if (gp != mp->curg || gp->atomicstatus.load(std::memory_order_relaxed) != _Grunning) return false;
  P* pp = mp->p;
  if (pp == nullptr || !pp->preempt.load(std::memory_order_relaxed)) return false;
  return goro_tls_locks == 0;
}

// Go's isAsyncSafePoint, for code that has no safe-point tables: the pc is
// preemptible, the stack has room, and the frame-pointer chain climbs from
// the interrupted frame to the goroutine's entry (goro_callentry's record,
// {0, 0}, or a return to goro_callentry_ret) through preemptible code only.
// A chain that leaves the stack or does not climb passed through code
// without frame pointers, or a signal frame: unsafe. A function without a
// frame record of its own (a leaf, or one in its prologue or epilogue) has
// its return address within a few words of sp, below the record rbp points
// to: a return into goro there is unsafe too.
GORO_NO_SANITIZE bool isAsyncSafePoint(G* gp, std::uintptr_t pc, std::uintptr_t sp, std::uintptr_t fp) {
  std::uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
  if (sp < lo + kRedZone + kAsyncPreemptStack + goro_xsave_size || sp + 16 > hi) return false;
  if (fp < sp || fp + 16 > hi || fp % 8 != 0) return false;
  if (!preemptible_pc(pc)) return false;
  const auto entryret = reinterpret_cast<std::uintptr_t>(goro_callentry_ret);
  for (std::uintptr_t w = sp; w < fp && w < sp + 64; w += 8) {
    std::uintptr_t v = load(w);
    if (v >= goroTextLo && v < goroTextHi && v != entryret) return false;
  }
  for (int depth = 0; depth < 1024; depth++) {
    std::uintptr_t caller = load(fp), ret = load(fp + 8);
    if (caller == 0 || ret == entryret) return true;  // the goroutine's entry
    if (!preemptible_pc(ret)) return false;
    if (caller <= fp || caller + 16 > hi || caller % 8 != 0) return false;
    fp = caller;
  }
  return false;
}

// A handoff for an unannounced blocking call: the goroutine runs on its
// P, and its thread holds no runtime lock.
GORO_NO_SANITIZE bool wantHandoff(G* gp, M* mp) {
  return gp == mp->curg && gp->atomicstatus.load(std::memory_order_relaxed) == _Grunning && mp->p != nullptr &&
         goro_tls_locks == 0;
}

// Whether the thread was interrupted in a system call: at the syscall
// instruction (a call the kernel restarts after the handler) or just after
// it (one that returns EINTR). A thread sysmon saw standing still but that
// was not in a call was only waiting for a CPU.
GORO_NO_SANITIZE bool in_syscall(std::uintptr_t pc) {
  const auto* at = reinterpret_cast<const unsigned char*>(pc);
  return (at[0] == 0x0f && at[1] == 0x05) || (at[-2] == 0x0f && at[-1] == 0x05);
}

// A word that points into goro's code, other than the entry's return.
GORO_NO_SANITIZE bool goroword(std::uintptr_t v, std::uintptr_t entryret) {
  return v >= goroTextLo && v < goroTextHi && v != entryret;
}

// No frame of goro's on the goroutine's stack from sp up to its entry: the
// thread is in the program's own call (libc's read, say), not in one the
// runtime made. libc keeps no frame pointers, but leaves rbp alone: the
// words from sp to the frame rbp points to (libc's frames, holding the
// return address into its caller) must not point into goro, and the
// frame-pointer chain from there must reach the entry through code that is
// not goro's. Without a usable chain, every word up to the return into
// goro_callentry is looked at instead (stale words in frames may then
// point into goro: a handoff missed, never a wrong one). pcs gets the pc
// and the chain's return addresses, for the block report.
GORO_NO_SANITIZE bool noRuntimeFrames(G* gp, std::uintptr_t pc, std::uintptr_t sp, std::uintptr_t fp,
                                      std::uintptr_t* pcs, int& npcs) {
  std::uintptr_t hi = gp->stack.hi;
  if (sp < gp->stack.lo || sp + 16 > hi || (pc >= goroTextLo && pc < goroTextHi)) return false;
  const auto entryret = reinterpret_cast<std::uintptr_t>(goro_callentry_ret);
  npcs = 0;
  pcs[npcs++] = pc;
  bool chain = false;
  if (fp >= sp && fp + 16 <= hi && fp % 8 == 0) {
    chain = true;
    for (std::uintptr_t w = sp; w < fp && chain; w += 8) chain = !goroword(load(w), entryret);
    for (int depth = 0; chain && depth < 1024; depth++) {
      std::uintptr_t caller = load(fp), ret = load(fp + 8);
      if (caller == 0 || ret == entryret) return true;
      if (goroword(ret, entryret) || caller <= fp || caller + 16 > hi || caller % 8 != 0) {
        chain = false;
        break;
      }
      if (npcs < 16) pcs[npcs++] = ret;
      fp = caller;
    }
  }
  npcs = 1;
  for (std::uintptr_t w = sp; w + 8 <= hi; w += 8) {
    std::uintptr_t v = load(w);
    if (v == entryret) return true;
    if (goroword(v, entryret)) return false;
  }
  return false;
}

// sigctxt.pushCall: make the interrupted code call fn, as if it had called
// it at pc, below the red zone.
GORO_NO_SANITIZE void pushCall(ucontext_t* uc, void (*fn)()) {
  auto& gregs = uc->uc_mcontext.gregs;
  auto sp = static_cast<std::uintptr_t>(gregs[REG_RSP]) - kRedZone - 8;
  *reinterpret_cast<std::uintptr_t*>(sp) = static_cast<std::uintptr_t>(gregs[REG_RIP]);
  gregs[REG_RSP] = static_cast<greg_t>(sp);
  gregs[REG_RIP] = static_cast<greg_t>(reinterpret_cast<std::uintptr_t>(fn));
}

}  // namespace

// On g0, entered from asyncPreempt2: wire gp to this M until its next
// scheduling point of its own, then yield as gopreempt_m does. The P goes
// to whichever M finds gp's successors; gp comes back to this M
// (startlockedm) when some M picks it from the run queue.
Gobuf* asyncPreempt_m(G* gp) {
  M* mp = getg()->m;
  lockOSThreadInt(gp, mp);
  mp->p->counters.asyncPreemptions.inc();
  return gopreempt_m(gp);
}

// The set-up of one run, before any M starts: the text ranges and the XSAVE
// area's size.
void preempt_init(bool on, int sig) {
  sigPreempt = sig;
  ntextRanges = 0;
  goroTextLo = reinterpret_cast<std::uintptr_t>(__start_goro_text);
  goroTextHi = reinterpret_cast<std::uintptr_t>(__stop_goro_text);
  void* vdso = reinterpret_cast<void*>(getauxval(AT_SYSINFO_EHDR));
  dl_iterate_phdr(&collect_text, vdso);
  unsigned a = 0, b = 0, c = 0, d = 0;
  goro_have_xsave = 0;
  goro_xsave_size = 512;
  // CPUID.1:ECX bit 26 (XSAVE) and 27 (OSXSAVE: the kernel enabled it).
  if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 26)) != 0 && (c & (1u << 27)) != 0 &&
      __get_cpuid_count(0xD, 0, &a, &b, &c, &d) && b >= 576) {
    goro_have_xsave = 1;
    goro_xsave_size = b;  // for the components XCR0 enables now
  }
  asyncPreemptOn = on;
}

namespace {

// How long a slice may stay overdue, its preemption signal pending, before
// preemptone asks the kernel why (a thread waiting for a CPU gets the
// signal within a few scheduler periods), and how often it asks again.
constexpr std::int64_t kSignalStuckNS = std::int64_t{1000} * 1000 * 1000;
constexpr std::int64_t kSignalRecheckNS = std::int64_t{100} * 1000 * 1000;

// mp's preemption signal is still pending, for the slice (tick) it was sent
// for: if a second has passed and the thread blocks the signal, or goro's
// handler is gone, that goroutine cannot be preempted (run's end and
// maxprocs would wait for ever), so say so and stop, as Go throws. A slice
// that ended meanwhile (the goroutine reached a scheduling point: the
// cooperative fallback works) starts the clock again. (It reads mp->curg
// racily, as schedtrace does: for the message only.)
__attribute__((no_sanitize("thread"))) void checkPreemptSignal(M* mp, std::uint32_t tick) {
  std::int64_t now = nanotime();
  if (mp->signalTick.exchange(tick, std::memory_order_relaxed) != tick) {
    mp->signalSent.store(now, std::memory_order_relaxed);
    return;
  }
  std::int64_t sent = mp->signalSent.load(std::memory_order_relaxed);
  if (now - sent < kSignalStuckNS || now - mp->signalChecked.load(std::memory_order_relaxed) < kSignalRecheckNS) return;
  mp->signalChecked.store(now, std::memory_order_relaxed);
  std::int32_t tid = mp->procid.load(std::memory_order_relaxed);
  const char* why = preemptSignalStuck(tid);
  if (why == nullptr || mp->signalPending.load(std::memory_order_acquire) == 0) return;
  G* gp = mp->curg;
  const char* abbrev = sigabbrev_np(sigPreempt);
  std::string name = abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sigPreempt);
  std::string msg = "the preemption signal (" + name + ") sent to thread " + std::to_string(tid) +
                    (gp != nullptr ? ", running goroutine " + std::to_string(gp->goid) : std::string()) +
                    ", has not been handled for " + std::to_string((now - sent) / 1000000) + " ms: " + why +
                    ". goro preempts goroutines with it: leave it unblocked and handled by goro, choose another "
                    "with Options::preempt_signal, or turn asynchronous preemption off (preempt_signal = -1 or "
                    "GORO_DEBUG=asyncpreemptoff=1)";
  detail::fatal(msg.c_str());
}

}  // namespace

// preemptone: ask the goroutine running on pp to stop: at its next
// preemption point (P::preempt) or, asynchronously, by signal.
void preemptone(P* pp) {
  pp->preempt.store(true, std::memory_order_relaxed);
  if (!asyncPreemptOn) return;
  M* mp = pp->m.load(std::memory_order_acquire);
  if (mp == nullptr) return;
  std::uint32_t tick = pp->schedtick.get();
  if (preemptM(mp)) {
    mp->signalTick.store(tick, std::memory_order_relaxed);
  } else if (mp->signalPending.load(std::memory_order_acquire) != 0) {
    checkPreemptSignal(mp, tick);
  }
}

// preemptM: send mp the preemption signal, unless one is on its way (the
// handler clears signalPending). True if this call sent it.
bool preemptM(M* mp) {
  std::int32_t tid = mp->procid.load(std::memory_order_relaxed);
  std::uint32_t zero = 0;
  if (tid == 0 || !mp->signalPending.compare_exchange_strong(zero, 1, std::memory_order_acq_rel)) return false;
  if (!signalM(tid, sigPreempt)) {
    mp->signalPending.store(0, std::memory_order_release);
    return false;
  }
  mp->signalSent.store(nanotime(), std::memory_order_relaxed);
  return true;
}

// doSigPreempt: in the handler, on gp's thread, with the interrupted context.
GORO_NO_SANITIZE void doSigPreempt(G* gp, void* uctx) {
  M* mp = gp->m;
  mp->preemptSignals.store(mp->preemptSignals.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  auto* uc = static_cast<ucontext_t*>(uctx);
  const auto& gregs = uc->uc_mcontext.gregs;
  auto pc = static_cast<std::uintptr_t>(gregs[REG_RIP]);
  auto sp = static_cast<std::uintptr_t>(gregs[REG_RSP]);
  auto fp = static_cast<std::uintptr_t>(gregs[REG_RBP]);
  std::uint32_t blocked = mp->unannounced.load(std::memory_order_acquire);
  if (blocked == M::kHandoffAsked) {
    // sysmon saw this thread's CPU clock stand still while it held a P.
    std::uintptr_t pcs[16];
    int npcs = 0;
    if (wantHandoff(gp, mp) && in_syscall(pc) && noRuntimeFrames(gp, pc, sp, fp, pcs, npcs)) {
      entersyscallUnannounced(gp, mp, pcs, npcs);
    } else {
      mp->unannounced.store(M::kNotBlocked, std::memory_order_relaxed);
    }
  } else if (blocked == M::kBlocked) {
    // Back from that call and computing: take a P back (asyncPreempt2).
    if (gp == mp->curg && gp->atomicstatus.load(std::memory_order_relaxed) == _Gsyscall && goro_tls_locks == 0 &&
        preemptible_pc(pc) && isAsyncSafePoint(gp, pc, sp, fp)) {
      pushCall(uc, &goro_asyncPreempt);
    } else {
      // Still in the call (or at no safe point): what this handler cost
      // the thread is not computing (sysmon's next look starts here).
      mp->blockedCPU.store(cputime(mp->cpuclock.load(std::memory_order_relaxed)), std::memory_order_relaxed);
    }
  } else if (asyncPreemptOn && preemptible_pc(pc) && wantAsyncPreempt(gp, mp) && isAsyncSafePoint(gp, pc, sp, fp)) {
    pushCall(uc, &goro_asyncPreempt);
  }
  mp->signalPending.store(0, std::memory_order_release);
}

// The wiring of an asynchronously interrupted goroutine to its thread (Go's
// lockOSThread for lockedInt), until unlockOSThreadInt.
void lockOSThreadInt(G* gp, M* mp) {
  mp->lockedInt = 1;
  mp->lockedg = gp;
  gp->lockedm = mp;
}

// The end of an asynchronous preemption's wiring (Go's unlockOSThread for
// lockedInt): at gp's own scheduling point, in mcall. A lock_os_thread made
// meanwhile keeps the goroutine wired.
void unlockOSThreadInt(G* gp, M* mp) {
  mp->lockedInt = 0;
  if (mp->lockedExt == 0) {
    mp->lockedg = nullptr;
    gp->lockedm = nullptr;
  }
}

}  // namespace goro::runtime

// Called by goro_asyncPreempt, on the goroutine's stack, every register
// saved: yield the P (the goroutine resumes here, on this thread).
extern "C" __attribute__((visibility("hidden"))) void goro_asyncPreempt2() {
  using namespace goro::runtime;
  // The interrupted code may be about to read errno: the runtime's own
  // calls below must not change it (the thread stays the same).
  int err = errno_get();
  G* gp = getg();
  M* mp = gp->m;
  if (mp->unannounced.load(std::memory_order_relaxed) == M::kBlocked) {
    // Back from a blocking call nobody announced: take a P back, wired to
    // this thread as any asynchronously interrupted goroutine is.
    lockOSThreadInt(gp, mp);
    mp->keepPin = true;
    exitsyscallUnannounced();
    mp->keepPin = false;
  } else {
    mcall(&asyncPreempt_m);
  }
  errno_set(err);
}
