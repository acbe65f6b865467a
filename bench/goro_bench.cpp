// goro_bench.cpp — the scheduler's benchmarks, twins of bench/go: yield
// ping-pong, spawn+exit, park/ready handoff, skynet, the system-call fast
// path (timer lateness is bench/timer_lateness.cpp). Each reports the user
// counter per_op_ns that bench/compare sets against Go's. Timing is taken
// inside the runtime (run()'s start-up and shutdown are not counted).
// GORO_BENCH_SCALE scales the workloads (bench/compare --scale).
#include <benchmark/benchmark.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using goro::testing::Countdown;
using goro::testing::Parker;

std::int64_t scaled(std::int64_t n) {
  static const double scale = [] {
    const char* s = std::getenv("GORO_BENCH_SCALE");
    return s != nullptr ? std::atof(s) : 1.0;
  }();
  auto v = static_cast<std::int64_t>(static_cast<double>(n) * scale);
  return v < 1 ? 1 : v;
}

double since_ns(Clock::time_point t0) { return std::chrono::duration<double, std::nano>(Clock::now() - t0).count(); }

// Runs `body` (which returns {elapsed ns, ops}) once untimed as a warm-up
// and then once per benchmark iteration, all in one goro::run, as Go's
// twin runs its warm-up and timed runs in one process.
void measure(benchmark::State& state, int procs, const std::function<std::pair<double, double>()>& body) {
  double total_ns = 0, total_ops = 0;
  goro::run(
      [&] {
        body();
        for (auto _ : state) {
          std::pair<double, double> r = body();
          state.SetIterationTime(r.first / 1e9);
          total_ns += r.first;
          total_ops += r.second;
        }
      },
      {.maxprocs = procs});
  state.counters["per_op_ns"] = total_ns / total_ops;
}

// yield/procs:1 — two goroutines calling yield() (Gosched) in turn; per
// yield, i.e. per switch.
void BM_Yield(benchmark::State& state) {
  const std::int64_t n = scaled(2000000);
  measure(state, 1, [n] {
    Countdown cd(2);
    auto t0 = Clock::now();
    for (int k = 0; k < 2; k++)
      goro::go([&] {
        for (std::int64_t i = 0; i < n; i++) goro::yield();
        cd.done();
      });
    cd.wait();
    return std::pair{since_ns(t0), 2.0 * static_cast<double>(n)};
  });
}

// spawn_exit/procs:2 — a million goroutines that only count themselves
// done; per goroutine.
void BM_SpawnExit(benchmark::State& state) {
  const std::int64_t n = scaled(1000000);
  measure(state, 2, [n] {
    std::atomic<std::int64_t> left{n};
    Parker done;
    auto t0 = Clock::now();
    for (std::int64_t i = 0; i < n; i++)
      goro::go([&] {
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done.unpark();
      });
    done.park();
    return std::pair{since_ns(t0), static_cast<double>(n)};
  });
}

// park_ready/procs:N — two goroutines handing a token back and forth with
// gopark/goready; per handoff.
void BM_ParkReady(benchmark::State& state, int procs) {
  const std::int64_t n = scaled(1000000);
  measure(state, procs, [n] {
    Parker a, b;
    Countdown cd(2);
    auto t0 = Clock::now();
    goro::go([&] {
      for (std::int64_t i = 0; i < n; i++) {
        b.unpark();
        a.park();
      }
      cd.done();
    });
    goro::go([&] {
      for (std::int64_t i = 0; i < n; i++) {
        b.park();
        a.unpark();
      }
      cd.done();
    });
    cd.wait();
    return std::pair{since_ns(t0), 2.0 * static_cast<double>(n)};
  });
}

std::int64_t skynet(std::int64_t num, std::int64_t size, std::int64_t div) {
  if (size == 1) return num;
  std::int64_t results[10] = {};
  Countdown cd(div);
  for (std::int64_t i = 0; i < div; i++) {
    goro::go([&, i] {
      results[i] = skynet(num + i * (size / div), size / div, div);
      cd.done();
    });
  }
  cd.wait();
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < div; i++) sum += results[i];
  return sum;
}

// skynet/procs:2 — skynet over 1,000,000 leaves, a result slot per child
// until channels exist; per whole run.
void BM_Skynet(benchmark::State& state) {
  std::int64_t size = 10;
  while (size * 10 <= scaled(1000000)) size *= 10;
  measure(state, 2, [size] {
    auto t0 = Clock::now();
    std::int64_t sum = skynet(0, size, 10);
    double ns = since_ns(t0);
    if (sum != size * (size - 1) / 2) {
      std::fprintf(stderr, "skynet: wrong sum %lld\n", static_cast<long long>(sum));
      std::abort();
    }
    return std::pair{ns, 1.0};
  });
}

// chan_pingpong/procs:N — a round trip over two unbuffered channels.
void BM_ChanPingPong(benchmark::State& state, int procs) {
  const std::int64_t n = scaled(1000000);
  measure(state, procs, [n] {
    goro::Chan<int> ping, pong;
    goro::WaitGroup wg;
    wg.add(1);
    auto t0 = Clock::now();
    goro::go([&] {
      for (std::int64_t i = 0; i < n; i++) pong.send(*ping.recv());
      wg.done();
    });
    for (std::int64_t i = 0; i < n; i++) {
      ping.send(static_cast<int>(i));
      pong.recv();
    }
    wg.wait();
    return std::pair{since_ns(t0), static_cast<double>(n)};
  });
}

// chan_prodcons_PxC/procs:2 — P producers, C consumers, one channel of
// capacity 128; per item.
void BM_ChanProdCons(benchmark::State& state, int producers, int consumers) {
  const std::int64_t per = std::max<std::int64_t>(1, scaled(4000000) / producers);
  measure(state, 2, [per, producers, consumers] {
    goro::Chan<int> c(128);
    goro::WaitGroup prod, cons;
    std::atomic<std::int64_t> received{0};
    auto t0 = Clock::now();
    for (int p = 0; p < producers; p++) {
      prod.add(1);
      goro::go([&] {
        for (std::int64_t i = 0; i < per; i++) c.send(static_cast<int>(i));
        prod.done();
      });
    }
    for (int k = 0; k < consumers; k++) {
      cons.add(1);
      goro::go([&] {
        std::int64_t n = 0;
        for (int v : c) n += v >= 0;
        received += n;
        cons.done();
      });
    }
    prod.wait();
    c.close();
    cons.wait();
    double ns = since_ns(t0);
    if (received.load() != per * producers) std::abort();
    return std::pair{ns, static_cast<double>(per * producers)};
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
  std::int64_t size = 10;
  while (size * 10 <= scaled(1000000)) size *= 10;
  measure(state, 2, [size] {
    goro::Chan<std::int64_t> c(1);
    auto t0 = Clock::now();
    skynet_chan(c, 0, size, 10);
    std::int64_t sum = *c.recv();
    double ns = since_ns(t0);
    if (sum != size * (size - 1) / 2) std::abort();
    return std::pair{ns, 1.0};
  });
}

// mutex_contended/procs:2 — 4 goroutines incrementing under one Mutex; per
// lock/unlock pair.
void BM_MutexContended(benchmark::State& state) {
  const std::int64_t per = std::max<std::int64_t>(1, scaled(4000000) / 4);
  measure(state, 2, [per] {
    goro::Mutex mu;
    std::int64_t counter = 0;
    goro::WaitGroup wg;
    auto t0 = Clock::now();
    for (int g = 0; g < 4; g++) {
      wg.add(1);
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
    if (counter != 4 * per) std::abort();
    return std::pair{ns, static_cast<double>(4 * per)};
  });
}

// select4/procs:1 — a sender selecting over 4 send cases, a receiver over
// the 4 matching receive cases; per transfer.
void BM_Select4(benchmark::State& state) {
  const std::int64_t n = scaled(1000000);
  measure(state, 1, [n] {
    goro::Chan<int> c0, c1, c2, c3;
    goro::WaitGroup wg;
    wg.add(1);
    auto t0 = Clock::now();
    goro::go([&] {
      for (std::int64_t i = 0; i < n; i++) {
        int v = static_cast<int>(i);
        goro::select(goro::on_send(c0, v), goro::on_send(c1, v), goro::on_send(c2, v), goro::on_send(c3, v));
      }
      wg.done();
    });
    std::int64_t sum = 0;
    auto add = [&](std::optional<int> v) { sum += *v; };
    for (std::int64_t i = 0; i < n; i++) {
      goro::select(goro::on_recv(c0, add), goro::on_recv(c1, add), goro::on_recv(c2, add), goro::on_recv(c3, add));
    }
    wg.wait();
    double ns = since_ns(t0);
    if (sum != n * (n - 1) / 2) std::abort();
    return std::pair{ns, static_cast<double>(n)};
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
    return std::pair{ns, static_cast<double>(n)};
  });
}

void BM_SyscallBare(benchmark::State& state) {
  syscall_loop(state, [] { return ::syscall(SYS_getppid); });
}

void BM_SyscallFastpath(benchmark::State& state) {
  syscall_loop(state, [] { return goro::syscall([] { return ::syscall(SYS_getppid); }); });
}

}  // namespace

int main(int argc, char** argv) {
  auto reg = [](const char* name, auto fn, int iterations) {
    benchmark::RegisterBenchmark(name, fn)->UseManualTime()->Iterations(iterations)->Unit(benchmark::kMillisecond);
  };
  reg("yield/procs:1", BM_Yield, 3);
  reg("spawn_exit/procs:2", BM_SpawnExit, 3);
  reg(
      "park_ready/procs:1", [](benchmark::State& s) { BM_ParkReady(s, 1); }, 3);
  reg(
      "park_ready/procs:2", [](benchmark::State& s) { BM_ParkReady(s, 2); }, 3);
  reg("skynet/procs:2", BM_Skynet, 3);
  reg(
      "chan_pingpong/procs:1", [](benchmark::State& s) { BM_ChanPingPong(s, 1); }, 3);
  reg(
      "chan_pingpong/procs:2", [](benchmark::State& s) { BM_ChanPingPong(s, 2); }, 3);
  reg(
      "chan_prodcons_1x1/procs:2", [](benchmark::State& s) { BM_ChanProdCons(s, 1, 1); }, 3);
  reg(
      "chan_prodcons_4x4/procs:2", [](benchmark::State& s) { BM_ChanProdCons(s, 4, 4); }, 3);
  reg("skynet_chan/procs:2", BM_SkynetChan, 3);
  reg("mutex_contended/procs:2", BM_MutexContended, 3);
  reg("select4/procs:1", BM_Select4, 3);
  reg("syscall_bare/procs:1", BM_SyscallBare, 3);
  reg("syscall_fastpath/procs:1", BM_SyscallFastpath, 3);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
