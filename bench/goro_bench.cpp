// goro_bench.cpp — the scheduler's benchmarks, twins of bench/go: yield
// ping-pong, spawn+exit, park/ready handoff, skynet, channels, select, Mutex,
// the system-call fast path, semaphore-table collisions and preemption
// latency (timer lateness is bench/timer_lateness.cpp). Every twin does the
// same work with the same public primitive as its Go counterpart
// (goro::WaitGroup for sync.WaitGroup, goro::Chan for chan, ...);
// park_ready and sema_collide use the runtime semaphore on both sides. Each
// benchmark reports the user counters per_op_ns (median over the timed
// runs, after one warm-up run), size (the work one run covers, identical to
// the Go side's) and runs, which bench/compare sets against Go's. Timing is
// taken inside the runtime (run()'s start-up and shutdown are not counted).
// GORO_BENCH_SCALE scales the workloads (bench/compare --scale),
// GORO_BENCH_RUNS sets the number of timed runs (default 3, bench/compare
// --runs).
#include <benchmark/benchmark.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "goro/goro.hpp"
#include "sema.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double env_number(const char* name, double fallback) {
  const char* s = std::getenv(name);
  return s != nullptr ? std::atof(s) : fallback;
}

// base × GORO_BENCH_SCALE, rounded half away from zero, at least 1: the
// same formula as scaled() in bench/go/workloads.go.
std::int64_t scaled(std::int64_t base) {
  static const double scale = env_number("GORO_BENCH_SCALE", 1.0);
  auto v = static_cast<std::int64_t>(std::llround(static_cast<double>(base) * scale));
  return v < 1 ? 1 : v;
}

// Timed runs per benchmark (after one warm-up run); Go's -runs.
int timed_runs() {
  static const int runs = std::max(1, static_cast<int>(env_number("GORO_BENCH_RUNS", 3)));
  return runs;
}

double since_ns(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

// What one run of a workload measured: elapsed time, the operations that
// time covers (per_op_ns = ns / ops) and the work's size (ops, or leaves for
// skynet), which bench/compare checks against Go's.
struct Work {
  double ns;
  std::int64_t ops;
  std::int64_t size;
};

Work per_op(double ns, std::int64_t ops) { return {ns, ops, ops}; }

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");  // no timed run (the benchmark was skipped)
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// Runs `body` once untimed as a warm-up and then once per benchmark
// iteration (timed_runs() of them), all in one goro::run, as Go's twin runs
// its warm-up and timed runs in one process; per_op_ns is the median of the
// timed runs' per-op times, as on the Go side.
void measure(benchmark::State& state, int procs, const std::function<Work()>& body) {
  std::vector<double> per_op_ns;
  std::int64_t size = 0;
  goro::run(
      [&] {
        body();
        for (auto _ : state) {
          Work w = body();
          state.SetIterationTime(std::max(w.ns, 1.0) / 1e9);  // a latency may be < 0
          per_op_ns.push_back(w.ns / static_cast<double>(w.ops));
          size = w.size;
        }
      },
      {.maxprocs = procs});
  state.counters["per_op_ns"] = median(per_op_ns);
  state.counters["size"] = static_cast<double>(size);
  state.counters["runs"] = static_cast<double>(per_op_ns.size());
}

// yield/procs:1 — two goroutines calling yield() (Gosched) in turn; per
// yield, i.e. per switch.
void BM_Yield(benchmark::State& state) {
  const std::int64_t n = scaled(2000000);
  measure(state, 1, [n] {
    goro::WaitGroup wg;
    wg.add(2);
    auto t0 = Clock::now();
    for (int k = 0; k < 2; k++)
      goro::go([&] {
        for (std::int64_t i = 0; i < n; i++) goro::yield();
        wg.done();
      });
    wg.wait();
    return per_op(since_ns(t0), 2 * n);
  });
}

// spawn_exit/procs:2 — a million goroutines that only count themselves
// done; the last one closes a channel main waits on. Per goroutine.
void BM_SpawnExit(benchmark::State& state) {
  const std::int64_t n = scaled(1000000);
  measure(state, 2, [n] {
    std::atomic<std::int64_t> left{n};
    goro::Chan<int> done;
    auto t0 = Clock::now();
    for (std::int64_t i = 0; i < n; i++)
      goro::go([&] {
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done.close();
      });
    done.recv();
    return per_op(since_ns(t0), n);
  });
}

// The runtime semaphore, as Go's twin reaches sync.runtime_Semacquire /
// sync.runtime_Semrelease (lifo=false, handoff=false).
void sem_acquire(std::atomic<std::uint32_t>* s) {
  goro::runtime::semacquire(s, false, goro::runtime::WaitReason::semacquire);
}
void sem_release(std::atomic<std::uint32_t>* s) { goro::runtime::semrelease(s, false); }

// Two goroutines pass a token back and forth n times through the runtime
// semaphores a and b; main waits for both. Per handoff (2n of them).
Work sema_pingpong(std::int64_t n, std::atomic<std::uint32_t>* a, std::atomic<std::uint32_t>* b) {
  goro::WaitGroup wg;
  wg.add(2);
  auto t0 = Clock::now();
  goro::go([&] {  // A: pass the token to B, wait for it to come back.
    for (std::int64_t i = 0; i < n; i++) {
      sem_release(b);
      sem_acquire(a);
    }
    wg.done();
  });
  goro::go([&] {  // B: wait for the token, pass it back to A.
    for (std::int64_t i = 0; i < n; i++) {
      sem_acquire(b);
      sem_release(a);
    }
    wg.done();
  });
  wg.wait();
  return per_op(since_ns(t0), 2 * n);
}

// park_ready/procs:N — two goroutines handing a token back and forth
// through the runtime semaphore (park on acquire, ready on release); per
// handoff.
void BM_ParkReady(benchmark::State& state, int procs) {
  const std::int64_t n = scaled(1000000);
  measure(state, procs, [n] {
    std::atomic<std::uint32_t> a{0}, b{0};
    return sema_pingpong(n, &a, &b);
  });
}

// Skynet's number of leaves: the power of ten nearest (on a log scale) to
// scaled(1,000,000), between 10 and 10^9 — the same integer formula as
// skynetSize in bench/go/workloads.go. 10^k is nearest when
// 10^(2k-1) <= n^2 < 10^(2k+1) (n^2 never equals an odd power of ten).
std::int64_t skynet_size() {
  std::int64_t n = std::min<std::int64_t>(scaled(1000000), 1000000000);  // n^2 fits
  std::int64_t size = 10, bound = 1000;                                  // bound = 10^(2k+1)
  for (int k = 1; k < 9 && n * n >= bound; k++) {
    size *= 10;
    bound *= 100;
  }
  return size;
}

std::int64_t skynet(std::int64_t num, std::int64_t size, std::int64_t div) {
  if (size == 1) return num;
  std::int64_t results[10] = {};
  goro::WaitGroup wg;
  const std::int64_t sub = size / div;
  wg.add(static_cast<int>(div));
  for (std::int64_t i = 0; i < div; i++) {
    goro::go([&, i] {
      results[i] = skynet(num + i * sub, sub, div);
      wg.done();
    });
  }
  wg.wait();
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < div; i++) sum += results[i];
  return sum;
}

// skynet/procs:2 — skynet over 1,000,000 leaves, a result slot per child
// and a WaitGroup per node; per whole run.
void BM_Skynet(benchmark::State& state) {
  const std::int64_t size = skynet_size();
  measure(state, 2, [size] {
    auto t0 = Clock::now();
    std::int64_t sum = skynet(0, size, 10);
    double ns = since_ns(t0);
    if (sum != size * (size - 1) / 2) {
      std::fprintf(stderr, "skynet: wrong sum %lld\n", static_cast<long long>(sum));
      std::abort();
    }
    return Work{ns, 1, size};
  });
}

// chan_pingpong/procs:N — A sends on ping and receives from pong, B echoes;
// both are goroutines, main waits. Per round trip over two unbuffered
// channels.
void BM_ChanPingPong(benchmark::State& state, int procs) {
  const std::int64_t n = scaled(1000000);
  measure(state, procs, [n] {
    goro::Chan<int> ping, pong;
    goro::WaitGroup wg;
    wg.add(2);
    auto t0 = Clock::now();
    goro::go([&] {  // A
      for (std::int64_t i = 0; i < n; i++) {
        ping.send(static_cast<int>(i));
        pong.recv();
      }
      wg.done();
    });
    goro::go([&] {  // B
      for (std::int64_t i = 0; i < n; i++) pong.send(*ping.recv());
      wg.done();
    });
    wg.wait();
    return per_op(since_ns(t0), n);
  });
}

constexpr std::size_t kProdConsBuffer = 128;

// chan_prodcons_1x1/procs:2 — one producer sends n ints into a channel of
// capacity 128, one consumer receives exactly n and sums them; main waits
// for both. Per item.
void BM_ChanProdCons1x1(benchmark::State& state) {
  const std::int64_t n = scaled(4000000);
  measure(state, 2, [n] {
    goro::Chan<int> c(kProdConsBuffer);
    goro::WaitGroup wg;
    std::int64_t sum = 0;
    wg.add(2);
    auto t0 = Clock::now();
    goro::go([&] {  // producer
      for (std::int64_t i = 0; i < n; i++) c.send(static_cast<int>(i));
      wg.done();
    });
    goro::go([&] {  // consumer
      std::int64_t s = 0;
      for (std::int64_t i = 0; i < n; i++) s += *c.recv();
      sum = s;
      wg.done();
    });
    wg.wait();
    double ns = since_ns(t0);
    if (sum != n * (n - 1) / 2) std::abort();
    return per_op(ns, n);
  });
}

// chan_prodcons_4x4/procs:2 — 4 producers, 4 consumers ranging over one
// channel of capacity 128, closed by main once the producers are done; per
// item.
void BM_ChanProdCons4x4(benchmark::State& state) {
  constexpr int kWorkers = 4;
  const std::int64_t per = std::max<std::int64_t>(1, scaled(4000000) / kWorkers);
  measure(state, 2, [per] {
    goro::Chan<int> c(kProdConsBuffer);
    goro::WaitGroup producers, consumers;
    std::atomic<std::int64_t> received{0};
    producers.add(kWorkers);
    consumers.add(kWorkers);
    auto t0 = Clock::now();
    for (int p = 0; p < kWorkers; p++) {
      goro::go([&] {
        for (std::int64_t i = 0; i < per; i++) c.send(static_cast<int>(i));
        producers.done();
      });
    }
    for (int q = 0; q < kWorkers; q++) {
      goro::go([&] {
        std::int64_t got = 0;
        for ([[maybe_unused]] int v : c) got++;
        received += got;
        consumers.done();
      });
    }
    producers.wait();
    c.close();
    consumers.wait();
    double ns = since_ns(t0);
    if (received.load() != per * kWorkers) std::abort();
    return per_op(ns, per * kWorkers);
  });
}

void skynet_chan(goro::Chan<std::int64_t> c, std::int64_t num, std::int64_t size, std::int64_t div) {
  if (size == 1) {
    c.send(num);
    return;
  }
  goro::Chan<std::int64_t> rc(static_cast<std::size_t>(div));
  for (std::int64_t i = 0; i < div; i++) goro::go(&skynet_chan, rc, num + i * (size / div), size / div, div);
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < div; i++) sum += *rc.recv();
  c.send(sum);
}

// skynet_chan/procs:2 — the classic skynet with channels; per whole run.
void BM_SkynetChan(benchmark::State& state) {
  const std::int64_t size = skynet_size();
  measure(state, 2, [size] {
    goro::Chan<std::int64_t> c(1);
    auto t0 = Clock::now();
    skynet_chan(c, 0, size, 10);
    std::int64_t sum = *c.recv();
    double ns = since_ns(t0);
    if (sum != size * (size - 1) / 2) std::abort();
    return Work{ns, 1, size};
  });
}

// mutex_contended/procs:2 — 4 goroutines incrementing under one Mutex; per
// lock/unlock pair.
void BM_MutexContended(benchmark::State& state) {
  constexpr int kWorkers = 4;
  const std::int64_t per = std::max<std::int64_t>(1, scaled(4000000) / kWorkers);
  measure(state, 2, [per] {
    goro::Mutex mu;
    std::int64_t counter = 0;
    goro::WaitGroup wg;
    wg.add(kWorkers);
    auto t0 = Clock::now();
    for (int g = 0; g < kWorkers; g++) {
      goro::go([&] {
        for (std::int64_t i = 0; i < per; i++) {
          mu.lock();
          counter++;
          mu.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    double ns = since_ns(t0);
    if (counter != kWorkers * per) std::abort();
    return per_op(ns, kWorkers * per);
  });
}

// select4/procs:1 — a sender goroutine selecting over 4 send cases, a
// receiver goroutine over the 4 matching receive cases, main waits; per
// transfer.
void BM_Select4(benchmark::State& state) {
  const std::int64_t n = scaled(1000000);
  measure(state, 1, [n] {
    goro::Chan<int> c0, c1, c2, c3;
    goro::WaitGroup wg;
    std::int64_t sum = 0;
    wg.add(2);
    auto t0 = Clock::now();
    goro::go([&] {  // sender
      for (std::int64_t i = 0; i < n; i++) {
        int v = static_cast<int>(i);
        goro::select(goro::on_send(c0, v), goro::on_send(c1, v), goro::on_send(c2, v), goro::on_send(c3, v));
      }
      wg.done();
    });
    goro::go([&] {  // receiver
      std::int64_t s = 0;
      auto add = [&](std::optional<int> v) { s += *v; };
      for (std::int64_t i = 0; i < n; i++) {
        goro::select(goro::on_recv(c0, add), goro::on_recv(c1, add), goro::on_recv(c2, add), goro::on_recv(c3, add));
      }
      sum = s;
      wg.done();
    });
    wg.wait();
    double ns = since_ns(t0);
    if (sum != n * (n - 1) / 2) std::abort();
    return per_op(ns, n);
  });
}

// syscall_bare/procs:1, syscall_fastpath/procs:1 — a goroutine calling
// getppid(2) in a loop: bare, or through goro::syscall (entersyscall/
// exitsyscall around it, Go's syscall.Syscall); per call. The difference of
// the two is the fast path's cost.
template <class Call>
void syscall_loop(benchmark::State& state, Call call) {
  const std::int64_t n = scaled(1000000);
  const long ppid = static_cast<long>(::getppid());
  measure(state, 1, [n, ppid, call] {
    std::int64_t wrong = 0;
    goro::WaitGroup wg;
    wg.add(1);
    auto t0 = Clock::now();
    goro::go([&] {
      for (std::int64_t i = 0; i < n; i++) wrong += call() != ppid;
      wg.done();
    });
    wg.wait();
    double ns = since_ns(t0);
    if (wrong != 0) std::abort();
    return per_op(ns, n);
  });
}

void BM_SyscallBare(benchmark::State& state) {
  syscall_loop(state, [] { return ::syscall(SYS_getppid); });
}

void BM_SyscallFastpath(benchmark::State& state) {
  syscall_loop(state, [] { return goro::syscall([] { return ::syscall(SYS_getppid); }); });
}

// The semaphore table (src/runtime/sema.cpp, like Go's) has 251 roots
// picked by (addr >> 3) % 251, so addresses 251 * 8 bytes apart share a
// root. A CollideSlot array puts every semaphore on the same root.
constexpr std::size_t kSemaRoots = 251;
struct alignas(8) CollideSlot {
  std::atomic<std::uint32_t> sem{0};
  char pad[kSemaRoots * 8 - sizeof(std::atomic<std::uint32_t>)];
};
static_assert(sizeof(CollideSlot) == kSemaRoots * 8);

// Yields that let a waiter preempted between announcing itself and parking
// reach its semaphore before the clock starts.
constexpr int kSettleYields = 10;

// sema_collide/waiters:W (GOMAXPROCS=1) — W goroutines park on W distinct
// semaphores of one root; then two goroutines hand a token back and forth
// on two more semaphores of that root (as park_ready does), 10,000 times
// each way; only that is timed. Per handoff: one release that must find
// its waiter among the W others, and one acquire that parks. Afterwards
// every waiter is released and joined, which leaves every semaphore at 0,
// so the slots (allocated once, as on the Go side) serve every run.
void BM_SemaCollide(benchmark::State& state) {
  const auto waiters = static_cast<std::size_t>(state.range(0));
  const std::int64_t n = scaled(10000);
  auto slots = std::make_unique<CollideSlot[]>(waiters + 2);
  measure(state, 1, [n, waiters, s = slots.get()] {
    goro::WaitGroup parked, exited;
    parked.add(static_cast<int>(waiters));
    exited.add(static_cast<int>(waiters));
    for (std::size_t j = 0; j < waiters; j++) {
      goro::go([&, sem = &s[j + 2].sem] {
        parked.done();
        sem_acquire(sem);
        exited.done();
      });
    }
    parked.wait();
    for (int i = 0; i < kSettleYields; i++) goro::yield();
    Work w = sema_pingpong(n, &s[0].sem, &s[1].sem);
    for (std::size_t j = 0; j < waiters; j++) sem_release(&s[j + 2].sem);
    exited.wait();
    return w;
  });
}

// preempt_latency/procs:1 — n times, a goroutine records when it starts
// running and then spins on an atomic load with no call in its loop, so
// only asynchronous preemption can stop it; main, queued behind it
// (yield), runs again only once the spinner is preempted. One latency is
// main's wake time - (the spinner's start + the 10 ms slice): from the
// slice expiring to the waiting goroutine running. The time reported is
// the median of the n latencies (ops = 1, size = n), as on the Go side.
void BM_PreemptLatency(benchmark::State& state) {
  const std::int64_t n = scaled(50);
  constexpr double kSliceNS = 10e6;  // Go's forcePreemptNS, goro's slice
  measure(state, 1, [n] {
    std::vector<double> lat;
    auto base = Clock::now();
    for (std::int64_t i = 0; i < n; i++) {
      std::atomic<double> start{0};
      std::atomic<bool> stop{false};
      goro::WaitGroup wg;
      wg.add(1);
      goro::go([&] {
        start.store(since_ns(base) + 1);
        while (!stop.load(std::memory_order_relaxed)) {
        }
        wg.done();
      });
      while (start.load() == 0) goro::yield();
      double woke = since_ns(base) + 1;
      stop.store(true);
      wg.wait();
      lat.push_back(woke - start.load() - kSliceNS);
    }
    return Work{median(lat), 1, n};
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = timed_runs();
  auto reg = [runs](const char* name, auto fn) {
    return benchmark::RegisterBenchmark(name, fn)->UseManualTime()->Iterations(runs)->Unit(benchmark::kMillisecond);
  };
  reg("yield/procs:1", BM_Yield);
  reg("spawn_exit/procs:2", BM_SpawnExit);
  reg("park_ready/procs:1", [](benchmark::State& s) { BM_ParkReady(s, 1); });
  reg("park_ready/procs:2", [](benchmark::State& s) { BM_ParkReady(s, 2); });
  reg("skynet/procs:2", BM_Skynet);
  reg("chan_pingpong/procs:1", [](benchmark::State& s) { BM_ChanPingPong(s, 1); });
  reg("chan_pingpong/procs:2", [](benchmark::State& s) { BM_ChanPingPong(s, 2); });
  reg("chan_prodcons_1x1/procs:2", BM_ChanProdCons1x1);
  reg("chan_prodcons_4x4/procs:2", BM_ChanProdCons4x4);
  reg("skynet_chan/procs:2", BM_SkynetChan);
  reg("mutex_contended/procs:2", BM_MutexContended);
  reg("select4/procs:1", BM_Select4);
  reg("preempt_latency/procs:1", BM_PreemptLatency);
  reg("syscall_bare/procs:1", BM_SyscallBare);
  reg("syscall_fastpath/procs:1", BM_SyscallFastpath);
  reg("sema_collide", BM_SemaCollide)->ArgName("waiters")->Arg(0)->Arg(1000)->Arg(10000)->Arg(20000);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
