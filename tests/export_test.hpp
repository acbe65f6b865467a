// export_test.hpp — the runtime internals that tests and benchmarks reach
// (Go's export_test.go idea): a park/ready Parker, a join Countdown, the
// workload scale (GORO_TEST_SCALE), and views of the stack pool, the
// sudogs in use, the timers alive, the mappings, the channels' wait
// queues, parked goroutines and their wait reasons, timer heaps, the
// current M and P, and the process's threads.
// Invariant: nothing here is public API; it is built on gopark/goready.
#pragma once

#include <dirent.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "goro/goro.hpp"
#include "hchan.hpp"
#include "proc.hpp"
#include "san.hpp"
#include "stack.hpp"
#include "sudog.hpp"
#include "time.hpp"

namespace goro::testing {

using runtime::G;

inline constexpr bool kSanitized = runtime::san::kAsan || runtime::san::kTsan;

// How far tests scale their workloads down. GORO_TEST_SCALE chooses when
// set (the asan and tsan test presets set it): "sanitizer" scales as the
// build's sanitizer needs (as TSan's in a plain build: the slowest), "full"
// not at all; unset, the build decides (compile-time sanitizer detection).
enum class TestScale { full, asan, tsan };
inline TestScale test_scale() {
  static const TestScale scale = [] {
    TestScale build = runtime::san::kTsan ? TestScale::tsan : runtime::san::kAsan ? TestScale::asan : TestScale::full;
    const char* env = std::getenv("GORO_TEST_SCALE");
    if (env == nullptr || *env == '\0') return build;
    std::string v(env);
    if (v == "sanitizer") return build == TestScale::full ? TestScale::tsan : build;
    if (v == "full") return TestScale::full;
    std::fprintf(stderr, "GORO_TEST_SCALE=%s: expected \"sanitizer\" or \"full\"\n", env);
    std::abort();
  }();
  return scale;
}
// Whether tests run scaled down (and slowed down): timing margins start wider.
inline bool scaled_down() { return test_scale() != TestScale::full; }

// Scales a workload down (test_scale): by divisor at TSan scale (~20x
// slower, and a fiber per live goroutine), by a tenth of it at ASan scale
// (~2-3x slower).
inline std::int64_t scaled(std::int64_t n, std::int64_t sanitizer_divisor = 50) {
  TestScale t = test_scale();
  std::int64_t d = t == TestScale::tsan ? sanitizer_divisor : t == TestScale::asan ? (sanitizer_divisor + 9) / 10 : 1;
  std::int64_t s = n / d;
  return s < 1 ? 1 : s;
}

// One goroutine parks, any goroutine or thread wakes it; reusable. A wakeup
// that comes first is remembered (one), as a binary semaphore.
class Parker {
 public:
  void park() {
    std::uintptr_t s = kNotified;
    if (state_.compare_exchange_strong(s, kIdle)) return;
    runtime::gopark(&Parker::commit, this, runtime::WaitReason::test);
  }
  void unpark() {
    std::uintptr_t s = state_.load();
    for (;;) {
      if (s == kNotified) return;
      if (s == kIdle) {
        if (state_.compare_exchange_weak(s, kNotified)) return;
        continue;
      }
      if (state_.compare_exchange_weak(s, kIdle)) {
        runtime::goready(reinterpret_cast<G*>(s));
        return;
      }
    }
  }
  // Whether a goroutine is parked here.
  bool parked() const { return state_.load() > kNotified; }
  // unpark_no_wakep: for a goroutine parked here, the state a lost wakeup
  // leaves: it goes on the caller's P's runnext (the caller must be a
  // goroutine), and no M is woken to steal it.
  void unpark_no_wakep() {
    std::uintptr_t s = state_.exchange(kIdle);
    if (s == kIdle || s == kNotified) std::abort();  // not parked: a test bug
    if (!runtime::readyput(reinterpret_cast<G*>(s))) std::abort();
  }

 private:
  static constexpr std::uintptr_t kIdle = 0, kNotified = 1;
  // On g0, with the goroutine already _Gwaiting: publish it, unless a
  // wakeup arrived meanwhile (then it does not park at all).
  static bool commit(G* gp, void* p) {
    auto* self = static_cast<Parker*>(p);
    std::uintptr_t s = kIdle;
    if (self->state_.compare_exchange_strong(s, reinterpret_cast<std::uintptr_t>(gp))) return true;
    self->state_.store(kIdle);
    return false;
  }
  std::atomic<std::uintptr_t> state_{kIdle};
};

// A goroutine waits for n done() calls (skynet's join, a WaitGroup-lite).
class Countdown {
 public:
  explicit Countdown(std::int64_t n) : n_(n + 1) {}
  void done() {
    if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) runtime::goready(waiter_);
  }
  void wait() {
    waiter_ = runtime::getg();
    runtime::gopark(&Countdown::commit, this, runtime::WaitReason::test);
  }

 private:
  // The waiter holds one count: whoever drops the last one resumes it.
  static bool commit(G*, void* p) {
    return static_cast<Countdown*>(p)->n_.fetch_sub(1, std::memory_order_acq_rel) != 1;
  }
  std::atomic<std::int64_t> n_;
  G* waiter_ = nullptr;
};

inline std::size_t stacks_in_use() { return runtime::stacks_in_use(); }
inline std::size_t sudogs_allocated() { return runtime::sudogs_allocated(); }
inline std::int64_t sudogs_in_use() { return runtime::sudogs_in_use(); }
inline std::int64_t timers_alive() { return runtime::timers_alive(); }
// Dead Gs on the global free list that still hold a committed stack.
// User plus system CPU time of the whole process so far, in milliseconds.
inline double process_cpu_ms() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

// Heap entries (live and stale) over every P's timer heap.
inline int timers_in_heaps() {
  int n = 0;
  for (runtime::P* pp : runtime::allp) n += pp->timers.len.load();
  return n;
}
inline int free_gs_with_stacks() { return runtime::sched.gFree.nstack.load(); }
inline bool stack_guard_markers() { return runtime::stack_guard_markers(); }

// Whether a goroutine or thread is blocked sending to / receiving from ch.
// Under the channel's lock, so that what the waiter did before blocking
// happens-before what the caller does next.
template <class T>
bool has_receiver(const goro::Chan<T>& ch) {
  runtime::LockGuard l(goro::detail::ChanAccess::raw(ch)->lock);
  return !goro::detail::ChanAccess::raw(ch)->recvq.empty();
}
template <class T>
bool has_sender(const goro::Chan<T>& ch) {
  runtime::LockGuard l(goro::detail::ChanAccess::raw(ch)->lock);
  return !goro::detail::ChanAccess::raw(ch)->sendq.empty();
}

// Who is blocked receiving from / sending to ch, first to last: one letter
// per waiter, 'g' for a goroutine, 't' for a plain thread. Under the
// channel's lock, as has_receiver.
inline std::string waitq_kinds(const runtime::WaitQ& q) {
  std::string kinds;
  for (runtime::Sudog* sg = q.first.load(std::memory_order_relaxed); sg != nullptr; sg = sg->next) {
    kinds += sg->g->threadnote != nullptr ? 't' : 'g';
  }
  return kinds;
}
template <class T>
std::string recvq_kinds(const goro::Chan<T>& ch) {
  runtime::LockGuard l(goro::detail::ChanAccess::raw(ch)->lock);
  return waitq_kinds(goro::detail::ChanAccess::raw(ch)->recvq);
}
template <class T>
std::string sendq_kinds(const goro::Chan<T>& ch) {
  runtime::LockGuard l(goro::detail::ChanAccess::raw(ch)->lock);
  return waitq_kinds(goro::detail::ChanAccess::raw(ch)->sendq);
}

// Goroutines of the current run parked with reason r (what the goroutine
// dump shows as [r]). A goroutine counts from the moment it is _Gwaiting,
// which is before its park is committed: use it for goroutines that stay
// parked until the test releases them. Reads waitreason as the dump does
// (after an acquire load of the status that the park's CAS released).
inline int goroutines_waiting(runtime::WaitReason r) {
  runtime::LockGuard l(runtime::allglock);
  int n = 0;
  for (const G* gp : runtime::allgs) {
    if (runtime::readgstatus(gp) == runtime::_Gwaiting && gp->waitreason.load(std::memory_order_relaxed) == r) n++;
  }
  return n;
}
using runtime::WaitReason;
// Whether the goroutine with id goid is parked (_Gwaiting), and why. The
// status is read first: a parked G's id was written before it ran.
inline bool goroutine_waiting(std::uint64_t goid, WaitReason* why = nullptr) {
  runtime::LockGuard l(runtime::allglock);
  for (const G* gp : runtime::allgs) {
    if (runtime::readgstatus(gp) == runtime::_Gwaiting && gp->goid == goid) {
      if (why != nullptr) *why = gp->waitreason.load(std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

// Lines of /proc/self/maps: the process's memory mappings.
inline int mapping_count() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(f, line)) n++;
  return n;
}

// The M running the calling goroutine (-1 outside goroutines).
inline std::int64_t current_m() {
  G* gp = runtime::getg();
  return gp == nullptr ? -1 : gp->m->id;
}
// The P the calling goroutine runs on (-1 outside goroutines).
inline std::int32_t current_p() {
  G* gp = runtime::getg();
  return gp == nullptr || gp->m->p == nullptr ? -1 : gp->m->p->id;
}
// How many of the run's Ms are in each MStatus (indexed by it), read under
// sched.lock as schedtrace reads them.
inline std::array<int, runtime::_Mexited + 1> mstatus_counts() {
  std::array<int, runtime::_Mexited + 1> n{};
  runtime::LockGuard l(runtime::sched.lock);
  for (runtime::M* mp = runtime::allm; mp != nullptr; mp = mp->alllink) n[mp->status.load()]++;
  return n;
}
// Preemption signals handled by the run's Ms so far (preempt.cpp).
inline std::uint64_t preempt_signals_handled() {
  std::uint64_t n = 0;
  runtime::LockGuard l(runtime::sched.lock);
  for (runtime::M* mp = runtime::allm; mp != nullptr; mp = mp->alllink) n += mp->preemptSignals.load();
  return n;
}
// Send the thread tid goro's own preemption signal, as preemptM does.
inline bool send_preempt_signal(long tid) {
  return runtime::signalM(static_cast<std::int32_t>(tid), runtime::sigPreempt);
}

// Inside the body of goro::syscall/goro::blocking: whether the calling M
// still has a P, held or reserved for a quick return (syscall keeps it in
// _Psyscall; blocking hands it off before the body runs).
inline bool syscall_keeps_p() {
  G* gp = runtime::getg();
  return gp != nullptr && (gp->m->p != nullptr || gp->m->oldp != nullptr);
}

// Heap entries (live and stale) in the timer heaps of the Ps numbered
// first and up.
inline int timers_in_heaps_from(std::size_t first) {
  int n = 0;
  for (std::size_t i = first; i < runtime::allp.size(); i++) n += runtime::allp[i]->timers.len.load();
  return n;
}

// Threads of this process now (entries of /proc/self/task). TSan starts
// a background thread of its own with the process's first thread: one is
// made (and joined) before the first count, so that it counts always.
inline int thread_count() {
  if constexpr (runtime::san::kTsan) {
    static const bool tsan_thread_started = (std::thread([] {}).join(), true);
    (void)tsan_thread_started;
  }
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n;
}

}  // namespace goro::testing
