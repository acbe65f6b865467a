// traceback.cpp — fatal errors, panics and goroutine dumps.
// Invariants: the fatal paths write with write(2) and take no lock they
// might already hold (allglock is try-locked); the dump prints Go's
// `goroutine N [status]:` headers. Mirrors panic.go (throw, fatalpanic) and
// traceback.go (goroutineheader, tracebackothers).
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

}  // namespace

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

Stats stats() {
  using namespace goro::runtime;
  Stats s;
  ForeignCall fc;  // a plain thread: teardown waits before freeing the Ps
  if (!fc.ok()) return s;
  s.goroutines = gcount();
  {
    LockGuard l(sched.lock);
    s.threads = static_cast<int>(sched.mnext) - sched.nmfreed;
    s.idle_threads = sched.nmidle;
    s.global_runqueue = sched.runqsize.load();
  }
  s.maxprocs = gomaxprocs.load();
  s.idle_procs = sched.npidle.load();
  s.spinning_threads = sched.nmspinning.load();
  for (P* pp : allp) s.local_runqueues.push_back(static_cast<int>(runqlen(pp->runq)));
  // Counters of Ps removed by maxprocs(n) still count.
  for (std::size_t i = 0; i < allp.created(); i++) {
    P* pp = allp.slot(i);
    s.syscall_handoffs += pp->counters.handoffs.get();
    s.goroutines_created += pp->counters.created.get();
    s.context_switches += pp->counters.switches.get();
    s.steals += pp->counters.steals.get();
    s.stolen_goroutines += pp->counters.stolen.get();
    s.preemptions += pp->counters.preemptions.get();
    s.parks += pp->counters.parks.get();
    s.wakeups += pp->counters.wakeups.get();
  }
  return s;
}

}  // namespace goro::debug
