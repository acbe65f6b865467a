// runtime1.cpp — a run from start to end: run() (runtime_run), schedinit,
// the environment (GORO_MAXPROCS, GORO_DEBUG, stack size) and teardown.
// Invariants: one run at a time; teardown starts only once the run is
// exiting, and returns with every M joined or abandoned and every stack
// freed (but those of abandoned goroutines). Mirrors runtime1.go (GODEBUG)
// and proc.go's schedinit/main.

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "foreign.hpp"
#include "netpoll.hpp"
#include "panic.hpp"
#include "san.hpp"
#include "stack.hpp"
#include "sudog.hpp"
#include "time.hpp"

namespace goro::runtime {

namespace {

// GORO_DEBUG=schedtrace=MS,scheddetail=1,asyncpreemptoff=1 (Go's GODEBUG
// names); checkdead=0, which turns the deadlock report off; and
// forcepreemptns=N, the time slice (Go's forcePreemptNS, 10 ms), for tests
// that want preemption often; blockreport=MS, a line on stderr for each
// goroutine blocked MS ms in a call nobody announced.
struct DebugVars {
  std::int32_t schedtrace = 0;
  bool scheddetail = false;
  bool checkdead = true;
  bool asyncpreemptoff = false;
  std::int64_t forcepreemptns = 0;  // 0: Go's 10 ms
  std::int32_t blockreport = 0;
};

// Parsed before run() claims the runtime (bad values throw), applied after.
DebugVars parsedebugvars() {
  DebugVars d;
  const char* s = std::getenv("GORO_DEBUG");
  if (s == nullptr) return d;
  std::string v(s);
  std::size_t i = 0;
  while (i <= v.size()) {
    std::size_t j = v.find(',', i);
    if (j == std::string::npos) j = v.size();
    std::string kv = v.substr(i, j - i);
    std::size_t eq = kv.find('=');
    if (eq != std::string::npos) {
      std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      bool ok = !val.empty() && *end == '\0' && n >= 0 && n <= (1L << 30);
      if (!ok) {
        std::string msg = "goro::run: $GORO_DEBUG: ";
        msg += kv;
        msg += " is not a non-negative number";
        throw std::invalid_argument(msg);
      }
      if (key == "schedtrace") d.schedtrace = static_cast<std::int32_t>(n);
      if (key == "scheddetail") d.scheddetail = n != 0;
      if (key == "checkdead") d.checkdead = n != 0;
      if (key == "asyncpreemptoff") d.asyncpreemptoff = n != 0;
      if (key == "forcepreemptns") d.forcepreemptns = n;
      if (key == "blockreport") d.blockreport = static_cast<std::int32_t>(n);
    }
    i = j + 1;
  }
  // scheddetail alone prints nothing, as in Go: it details schedtrace.
  return d;
}

int env_int(const char* name, long min, long max, const char* what) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (*end != '\0' || v < min || v > max) {
    throw std::invalid_argument(std::string("goro::run: $") + name + "=" + s + " is not " + what);
  }
  return static_cast<int>(v);
}

std::size_t env_size(const char* name) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  std::size_t mult = 1;
  if (*end == 'k' || *end == 'K')
    mult = 1024, end++;
  else if (*end == 'm' || *end == 'M')
    mult = std::size_t{1024} * 1024, end++;
  if (*end != '\0' || end == s) {
    throw std::invalid_argument(std::string("goro::run: $") + name + "=" + s +
                                " is not a size in bytes (optionally with a K or M suffix)");
  }
  return static_cast<std::size_t>(v) * mult;
}

}  // namespace

int resolve_procs(const Options& opts) {
  if (opts.maxprocs > detail::kMaxProcs) {
    throw std::invalid_argument("goro::run: Options::maxprocs = " + std::to_string(opts.maxprocs) +
                                " exceeds the limit of " + std::to_string(detail::kMaxProcs));
  }
  if (opts.maxprocs < 0) {
    throw std::invalid_argument("goro::run: Options::maxprocs = " + std::to_string(opts.maxprocs) +
                                " is negative (0 chooses; the limit is " + std::to_string(detail::kMaxProcs) + ")");
  }
  if (opts.maxprocs > 0) return opts.maxprocs;
  int env = env_int("GOMAXPROCS", 0, detail::kMaxProcs, "a number of Ps between 1 and 1024");
  if (env > 0) return env;
  return std::max(1, std::min(osinit_ncpu(), detail::kMaxProcs));
}

namespace {

// Options::preempt_signal: 0 is SIGURG, -1 none; a signal the program or the
// kernel needs for itself (faults, SIGKILL, SIGSTOP, SIGABRT) is refused.
int resolve_preempt_signal(const Options& opts) {
  int sig = opts.preempt_signal;
  if (sig == 0) return SIGURG;
  if (sig == -1) return -1;
  if (sig < 1 || sig > SIGRTMAX || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
      sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGABRT || sig == SIGSYS) {
    throw std::invalid_argument("goro::run: Options::preempt_signal = " + std::to_string(sig) +
                                " is not a signal goro can use for preemption (0: SIGURG; -1: none)");
  }
  return sig;
}

std::size_t resolve_stack(const Options& opts) {
  std::size_t size = opts.stack_size;
  const char* from = "Options::stack_size";
  if (size == 0) {
    size = env_size("GORO_STACK_SIZE");
    from = "$GORO_STACK_SIZE";
  }
  if (size == 0) return kDefaultStackSize;
  if (size < min_stack_size) {
    throw std::invalid_argument(std::string("goro::run: ") + from + " = " + std::to_string(size) +
                                " bytes is below the safe minimum of " + std::to_string(min_stack_size) + " bytes");
  }
  if (size > kMaxStackSize) {
    throw std::invalid_argument(std::string("goro::run: ") + from + " = " + std::to_string(size) +
                                " bytes exceeds the maximum of " + std::to_string(kMaxStackSize) + " bytes");
  }
  return size;
}

// schedinit + procresize for a fresh run: allp[0] goes to m0, the rest on
// the idle list.
void schedinit(int procs, std::int32_t maxthreads) {
  sched.goidgen.store(0);
  sched.midle = nullptr;
  sched.nmidle = 0;
  sched.mnext = 0;
  sched.maxmcount = maxthreads;
  sched.pidle = nullptr;
  sched.npidle.store(0);
  sched.nmspinning.store(0);
  sched.runq = GQueue{};
  sched.runqsize.store(0);
  sched.gFree.stack = GList{};
  sched.gFree.noStack = GList{};
  sched.gFree.n.store(0);
  sched.gFree.nstack.store(0);
  sched.gFree.nstackmin = 0;
  sched.lastscavenge.store(0);
  sched.nmfreed = 0;
  sched.nmidlelocked = 0;
  sched.nmsys = 0;
  sched.polling.store(false);
  sched.pollUntil.store(0);
  sched.pollWake.store(0);
  sched.sysmonwait = false;
  sched.sysmonWake.store(0);
  sched.sysmonstarted = false;
  sched.gcwaiting.store(false);
  sched.stopwait = 0;
  sched.worldsema.store(1);
  sched.deadlockDeferred.store(false);
  sched.deadlockSince = 0;
  sched.nunannounced.store(0);
  sched.lastpoll.store(nanotime());
  std::uint32_t gen = sched.rungen.load() + 1;
  if (gen == 0) gen = 1;  // 0 is "no run" to the counters' users
  sched.rungen.store(gen);
  foreign_newrun(gen);
  sched.stopnote.clear();
  allglen.store(0);
  mainStarted.store(false);
  allm = nullptr;

  gomaxprocs.store(procs);
  allp.clear();
  idlepMask.reset();
  for (int i = 0; i < procs; i++) setPstatus(allpslot(i), _Pgcstop, _Pidle);
  allp.set_size(static_cast<std::size_t>(procs));
  stealOrder.reset(static_cast<std::uint32_t>(procs));
  for (int i = procs - 1; i >= 1; i--) pidleput(allp[static_cast<std::size_t>(i)]);
}

// mleaveall: wait until every M but m0 has left. Each leaves at its next
// trip through the scheduler: main_returned asked the running goroutines to
// yield, and the request is repeated here every 100 us (a new time slice
// can clear it). An M in a system call is not waited for: its thread is
// abandoned (M::insyscall) and leaves by itself once the call returns.
// Returns the Ms that left (m0 too), to free, and what teardown needs of
// the abandoned goroutines, read while their threads wait (kAbandoning):
// from kAbandoned on, a G and its M are their thread's, which may free them.
struct AbandonedG {
  Stack stack;
  HeapTimer* timer;
};

void mleaveall(M* ms, std::vector<M*>& left, std::vector<AbandonedG>& abandoned) {
  for (M* mp = ms; mp != nullptr;) {
    M* next = mp->alllink;  // an abandoned M is its thread's from kAbandoned on
    if (mp == m0) {
      left.push_back(mp);
      mp = next;
      continue;
    }
    while (!mp->thread_created.load(std::memory_order_acquire)) osyield();
    for (;;) {
      if (pthread_tryjoin_np(mp->thread, nullptr) == 0) {
        left.push_back(mp);
        break;
      }
      std::uint32_t in = M::kInSyscall;
      if (mp->insyscall.compare_exchange_strong(in, M::kAbandoning, std::memory_order_acq_rel)) {
        G* gp = mp->curg;
        abandoned.push_back(AbandonedG{gp->stack, gp->timer});
        {
          // Off the books before the thread may free it: nothing that walks
          // allgs (teardown, a dump) may reach it from kAbandoned on.
          LockGuard l(allglock);
          allgs.erase(std::find(allgs.begin(), allgs.end(), gp));
        }
        pthread_detach(mp->thread);
        mp->insyscall.store(M::kAbandoned, std::memory_order_release);
        break;
      }
      preemptall();
      struct timespec ts = {0, 100L * 1000};
      nanosleep(&ts, nullptr);
    }
    mp = next;
  }
}

}  // namespace

// Frees everything of a finished run, once every other M has left.
void teardown() {
  if (!sched.exiting.load(std::memory_order_seq_cst)) detail::fatal("teardown: the run is not exiting");
  foreign_wait_calls();
  M* ms;
  {
    LockGuard l(sched.lock);  // no M can be added now: exiting is set
    ms = allm;
  }
  // sysmon first (it leaves at its next tick: exiting is set): it reads Ms
  // (their CPU clocks, to preempt or hand off), and an M abandoned in a
  // system call below frees itself once its call returns.
  if (sched.sysmonstarted) pthread_join(sched.sysmonthread, nullptr);
  sched.sysmonstarted = false;
  std::vector<M*> left;
  std::vector<AbandonedG> abandoned;
  mleaveall(ms, left, abandoned);
  std::vector<Stack> keep;
  {
    LockGuard l(allglock);
    // Goroutines abandoned while blocked leave the queues they are on:
    // channels and sync objects may outlive the run and be used by plain
    // threads.
    for (G* gp : allgs) {
      if (gp->waiting != nullptr) detach_abandoned(gp);
    }
    // A plain thread may still be waking a goroutine it dequeued before
    // the detach, or an M (startm): let it finish with the G, its sudog and
    // the M's note before any of them is freed.
    foreign_wait_wakers();
    sudogfreeall();
    // Goroutines parked on descriptors are taken out of their PollDescs
    // before they are freed (an event in a later run finds no one).
    netpollTeardown();
    // Timers go before the Gs whose sleep timers their heaps may hold.
    for (std::size_t i = 0; i < allp.created(); i++) timersDestroy(allp.slot(i)->timers);
    // A goroutine left in a system call is its thread's to free (but its
    // sleep timer, which the heaps just let go of); its stack stays mapped.
    for (const AbandonedG& a : abandoned) {
      delete a.timer;
      keep.push_back(a.stack);
    }
    for (G* gp : allgs) {
      san::unpoison(gp->stack.lo, gp->stack.hi - gp->stack.lo);
      if (san::kTsan) san::tsan_destroy_fiber(gp->sched.fiber);
      delete gp->timer;
      delete gp;
    }
    allgs.clear();
    allgs.shrink_to_fit();
  }
  for (M* mp : left) {
    delete mp->g0;
    delete mp;
  }
  allm = nullptr;
  m0 = nullptr;
  for (std::size_t i = 0; i < allp.created(); i++) delete allp.slot(i);
  allp.clear();
  gomaxprocs.store(0);
  maingp = nullptr;
  stackfreeall(keep);
}

}  // namespace goro::runtime

namespace goro {

using namespace runtime;

namespace detail {

// Defined in the inline namespace that names this build's sanitizer (see
// goro/runtime.hpp): a program built with another one does not link.
int GORO_DETAIL_SAN_ABI::runtime_run(EntryFn main_entry, void* main_closure, const Options& opts) {
  osinit_ncpu();
  int procs = resolve_procs(opts);
  std::size_t stack = resolve_stack(opts);
  std::int32_t maxthreads = 10000;  // Go's default limit
  if (int n = env_int("GORO_MAXTHREADS", 1, 1 << 20, "a thread limit of at least 1")) maxthreads = n;
  DebugVars debugvars = parsedebugvars();
  int sigpreempt = resolve_preempt_signal(opts);
  bool expected = false;
  if (getg() != nullptr || !runtime_active.compare_exchange_strong(expected, true)) {
    throw std::logic_error("goro::run: a runtime is already running (run cannot be nested or run twice at once)");
  }
  debug_schedtrace = debugvars.schedtrace;
  debug_scheddetail = debugvars.scheddetail;
  debug_blockreport = debugvars.blockreport;
  forcePreemptNS = debugvars.forcepreemptns > 0 ? debugvars.forcepreemptns : std::int64_t{10} * 1000 * 1000;
  sched.checkdeadOn = debugvars.checkdead && opts.checkdead;
  stackinit(stack);
  schedinit(procs, maxthreads);
  bool asyncpreempt = sigpreempt > 0 && !debugvars.asyncpreemptoff;
  preempt_init(asyncpreempt, sigpreempt);
  signal_handlers_install(asyncPreemptOn ? sigpreempt : 0);
  runstarttime = nanotime();
  sched.coarsenow.store(runstarttime);

  // m0 is this thread; its g0 is this thread's stack.
  {
    LockGuard l(sched.lock);
    m0 = allocm_locked(nullptr, nullptr);
  }
  m0->is_m0 = true;
  m0->thread = pthread_self();
  minit(m0);
  acquirep(allp[0]);

  // newproc(main)
  maingp = malg();
  maingp->entry = main_entry;
  maingp->closure = main_closure;
  gostart(maingp, maingp->stack.hi);
  maingp->goid = newgoid(allp[0]);
  casgstatus(maingp, _Gdead, _Grunnable);
  allp[0]->counters.created.inc();

  // Open for business: until now exiting (true between runs) kept go()
  // from plain threads out of the half-built scheduler.
  sched.lock.lock();
  sched.exiting.store(false, std::memory_order_seq_cst);
  sched.lock.unlock();
  newsysmon();

  goro_gosave(&m0->exitbuf, &mstart1, m0);

  // main returned and m0 left the scheduler.
  signal_altstack_remove(m0->altstack);
  unminitSignalMask(m0);
  teardown();
  signal_handlers_remove();
  setg(nullptr);
  runtime_active.store(false);
  return 0;
}

}  // namespace detail

}  // namespace goro
