// traceback.cpp — goroutine dumps: wait reasons, Go's `goroutine N
// [status]:` headers, the dump fatal errors print (dump_to_stderr) and
// debug::dump_goroutines; a pc's name (symbolize).
// Invariants: the fatal-path dump writes with write(2) and takes no lock
// it might already hold (allglock is try-locked). Mirrors traceback.go
// (goroutineheader, tracebackothers).
#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>

#include "foreign.hpp"
#include "goro/debug.hpp"
#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {

// A pc as `name+0xoff (object)`, from the dynamic symbol tables (dladdr):
// exported functions (libc's, a shared object's) have names; the
// executable's own show as an offset into it. Not async-signal-safe.
std::string symbolize(std::uintptr_t pc) {
  Dl_info info{};
  char buf[64];
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(buf, sizeof buf, "0x%zx", static_cast<std::size_t>(pc));
    return buf;
  }
  std::string out;
  if (info.dli_sname != nullptr) {
    int status = -1;
    char* dem = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    out = status == 0 && dem != nullptr ? dem : info.dli_sname;
    std::free(dem);
    std::snprintf(buf, sizeof buf, "+0x%zx",
                  static_cast<std::size_t>(pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr)));
  } else {
    std::snprintf(buf, sizeof buf, "+0x%zx",
                  static_cast<std::size_t>(pc - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
  }
  out += buf;
  out += " (";
  out += info.dli_fname[0] != '\0' ? info.dli_fname : "the executable";
  out += ")";
  return out;
}

const char* wait_reason_string(WaitReason r) {
  switch (r) {
    case WaitReason::zero:
      return "";
    case WaitReason::chan_receive_nil:
      return "chan receive (nil chan)";
    case WaitReason::chan_send_nil:
      return "chan send (nil chan)";
    case WaitReason::select:
      return "select";
    case WaitReason::select_no_cases:
      return "select (no cases)";
    case WaitReason::chan_receive:
      return "chan receive";
    case WaitReason::chan_send:
      return "chan send";
    case WaitReason::semacquire:
      return "semacquire";
    case WaitReason::sleep:
      return "sleep";
    case WaitReason::sync_cond_wait:
      return "sync.Cond.Wait";
    case WaitReason::sync_mutex_lock:
      return "sync.Mutex.Lock";
    case WaitReason::sync_rwmutex_rlock:
      return "sync.RWMutex.RLock";
    case WaitReason::sync_rwmutex_lock:
      return "sync.RWMutex.Lock";
    case WaitReason::io_wait:
      return "IO wait";
    case WaitReason::preempted:
      return "preempted";
    case WaitReason::test:
      return "test wait";
  }
  return "unknown";
}

namespace {

const char* status_string(std::uint32_t s) {
  switch (s) {
    case _Gidle:
      return "idle";
    case _Grunnable:
      return "runnable";
    case _Grunning:
      return "running";
    case _Gsyscall:
      return "syscall";
    case _Gwaiting:
      return "waiting";
    case _Gdead:
      return "dead";
  }
  return "???";
}

// Go's goroutineheader: "goroutine N [status]:" where a waiting G shows its
// wait reason. Formats into buf without allocating (fatal paths use it).
const char* goroutineheader(const G* gp, char (&buf)[160]) {
  std::uint32_t s = readgstatus(gp);
  const char* what = status_string(s);
  WaitReason why = gp->waitreason.load(std::memory_order_relaxed);
  if (s == _Gwaiting && why != WaitReason::zero) what = wait_reason_string(why);
  long long mins = 0;
  if (s == _Gwaiting && gp->waitsince != 0) mins = (nanotime() - gp->waitsince) / 60000000000;
  if (mins >= 1) {
    std::snprintf(buf, sizeof buf, "goroutine %llu [%s, %lld minutes]:\n", static_cast<unsigned long long>(gp->goid),
                  what, mins);
  } else {
    std::snprintf(buf, sizeof buf, "goroutine %llu [%s]:\n", static_cast<unsigned long long>(gp->goid), what);
  }
  return buf;
}

// Try-lock: a fatal error may strike while allglock is held.
template <class F>
bool with_allgs(F&& f) {
  for (int i = 0; i < 1000; i++) {
    if (!allglock.held()) {
      LockGuard l(allglock);
      f();
      return true;
    }
    osyield();
  }
  return false;
}

}  // namespace

void dump_to_stderr(const G* current) {
  if (current != nullptr) {
    char buf[160];
    printerr("\n");
    printerr(goroutineheader(current, buf));
  }
  bool ok = with_allgs([&] {
    for (const G* gp : allgs) {
      if (gp == current || readgstatus(gp) == _Gdead) continue;
      char buf[160];
      printerr("\n");
      printerr(goroutineheader(gp, buf));
    }
  });
  if (!ok) printerr("\n(goroutine list locked: other goroutines not shown)\n");
}

G* current_user_g() {
  G* gp = getg();
  if (gp == nullptr) return nullptr;
  if (gp == gp->m->g0) return gp->m->curg;
  return gp;
}

}  // namespace goro::runtime

namespace goro::debug {

void dump_goroutines(std::ostream& out) {
  using namespace goro::runtime;
  if (!runtime_active.load()) return;
  LockGuard l(allglock);
  bool first = true;
  for (const G* gp : allgs) {
    if (readgstatus(gp) == _Gdead) continue;
    if (!first) out << "\n";
    first = false;
    char buf[160];
    out << goroutineheader(gp, buf);
  }
}

}  // namespace goro::debug
