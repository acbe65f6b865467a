// os_linux.cpp — Linux: futexes, the monotonic clock, CPU count (affinity
// and cgroup quota), thread stack bounds, the process's thread count and
// signals to one thread (signalM).
// Invariant: futexsleep may return spuriously; callers loop.
// Mirrors os_linux.go and lock_futex.go.
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "lock_futex.hpp"
#include "os.hpp"
#include "panic.hpp"
#include "san.hpp"

namespace goro::runtime {

std::atomic<int> ncpu{1};

struct timespec* timeout_timespec(std::int64_t ns, struct timespec& ts) {
  if (ns < 0) return nullptr;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  return &ts;
}

void futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns) {
  struct timespec ts;
  struct timespec* tsp = timeout_timespec(ns, ts);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, val, tsp, nullptr, 0);
}

void futexwakeup(std::atomic<std::uint32_t>* addr, std::uint32_t cnt) {
  long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, cnt, nullptr, nullptr, 0);
  if (r < 0) detail::fatal("futexwakeup failed");
}

void osyield() { sched_yield(); }

int errno_get() { return errno; }
void errno_set(int e) { errno = e; }

void procyield(std::uint32_t cycles) {
  for (std::uint32_t i = 0; i < cycles; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
}

// lock_futex.go's lock: spin a little (only worth it with another CPU to
// release the lock), yield once, then sleep in the kernel.
void Lock::lock_slow(std::uint32_t v) {
  constexpr int kActiveSpin = 4, kActiveSpinCnt = 30, kPassiveSpin = 1;
  // wait is kLocked or kSleeping: whatever we saw. If we take the lock we
  // must store kSleeping if there might be sleepers.
  std::uint32_t wait = v;
  int spin = ncpu.load(std::memory_order_relaxed) > 1 ? kActiveSpin : 0;
  for (;;) {
    for (int i = 0; i < spin; i++) {
      while (key_.load(std::memory_order_relaxed) == kUnlocked) {
        std::uint32_t expect = kUnlocked;
        if (key_.compare_exchange_weak(expect, wait, std::memory_order_acquire)) return;
      }
      procyield(kActiveSpinCnt);
    }
    for (int i = 0; i < kPassiveSpin; i++) {
      while (key_.load(std::memory_order_relaxed) == kUnlocked) {
        std::uint32_t expect = kUnlocked;
        if (key_.compare_exchange_weak(expect, wait, std::memory_order_acquire)) return;
      }
      osyield();
    }
    v = key_.exchange(kSleeping, std::memory_order_acquire);
    if (v == kUnlocked) return;
    wait = kSleeping;
    futexsleep(&key_, kSleeping, -1);
  }
}

void Note::wakeup() {
  if (key_.exchange(1, std::memory_order_release) != 0) detail::fatal("notewakeup - double wakeup");
  futexwakeup(&key_, 1);
}

void Note::sleep() {
  while (key_.load(std::memory_order_acquire) == 0) futexsleep(&key_, 0, -1);
}

bool Note::tsleep(std::int64_t ns) {
  if (ns < 0) {
    sleep();
    return true;
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  std::int64_t deadline = std::int64_t{now.tv_sec} * 1000000000 + now.tv_nsec + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    std::int64_t left = deadline - (std::int64_t{now.tv_sec} * 1000000000 + now.tv_nsec);
    if (left <= 0) return false;
    futexsleep(&key_, 0, left);
  }
  return true;
}

namespace {

// The CPU limit of the cgroup this process is in, as a (possibly
// fractional) number of CPUs; 0 when there is none. cgroup v2 (cpu.max)
// and v1 (cpu.cfs_quota_us / cpu.cfs_period_us), every level up to the root.
double cgroup_cpu_limit() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  double limit = 0;
  auto consider = [&limit](double quota, double period) {
    if (quota > 0 && period > 0) {
      double l = quota / period;
      if (limit == 0 || l < limit) limit = l;
    }
  };
  while (std::getline(cg, line)) {
    // hierarchy-ID:controller-list:cgroup-path
    auto c1 = line.find(':');
    auto c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    bool v2 = controllers.empty();
    bool v1cpu = false;
    std::stringstream ss(controllers);
    for (std::string c; std::getline(ss, c, ',');) v1cpu |= c == "cpu";
    if (!v2 && !v1cpu) continue;
    for (;;) {
      if (v2) {
        std::ifstream f("/sys/fs/cgroup" + path + "/cpu.max");
        std::string q;
        double period = 0;
        if (f >> q >> period && q != "max") consider(std::stod(q), period);
      } else {
        std::string base = "/sys/fs/cgroup/" + controllers + path;
        std::ifstream fq(base + "/cpu.cfs_quota_us"), fp(base + "/cpu.cfs_period_us");
        double quota = 0, period = 0;
        if (fq >> quota && fp >> period) consider(quota, period);
      }
      if (path.empty() || path == "/") break;
      auto slash = path.find_last_of('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  }
  return limit;
}

}  // namespace

int osinit_ncpu() {
  cpu_set_t set;
  int n = 1;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  double limit = cgroup_cpu_limit();
  if (limit > 0) {
    int l = static_cast<int>(std::ceil(limit));
    if (l < n) n = l;
  }
  if (n < 1) n = 1;
  ncpu.store(n, std::memory_order_relaxed);
  return n;
}

std::int64_t nanotime() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

long procthreads() {
  int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Field 20 (num_threads), counted after the ")" that ends field 2.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return -1;
  int field = 2;
  for (; *p != '\0' && field < 20; p++) {
    if (*p == ' ') field++;
  }
  return std::strtol(p, nullptr, 10);
}

std::int32_t gettid_() { return static_cast<std::int32_t>(syscall(SYS_gettid)); }

int thread_cpuclock() {
  clockid_t c{};
  if (pthread_getcpuclockid(pthread_self(), &c) != 0) return 0;
  return static_cast<int>(c);
}

// Also called from the preemption signal's handler: the raw system call
// (a thread's CPU clock has no vDSO path anyway), which no sanitizer
// intercepts.
GORO_NO_SANITIZE std::int64_t cputime(int clock) {
  struct timespec ts;
  if (clock == 0 || ::syscall(SYS_clock_gettime, clock, &ts) != 0) return -1;
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

namespace {
const char cookie = 0;
}

const void* signal_cookie() { return &cookie; }

// rt_tgsigqueueinfo rather than tgkill: the siginfo it carries tells the
// handler the signal is goro's, not one the program sent or the kernel
// raised (SIGURG is also out-of-band data on a socket).
bool signalM(std::int32_t tid, int sig) {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_ptr = const_cast<char*>(&cookie);
  return syscall(SYS_rt_tgsigqueueinfo, si.si_pid, tid, sig, &si) == 0;
}

void thread_stack_bounds(std::uintptr_t* lo, std::uintptr_t* hi) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    *lo = reinterpret_cast<std::uintptr_t>(addr);
    *hi = *lo + size;
  }
}

}  // namespace goro::runtime
