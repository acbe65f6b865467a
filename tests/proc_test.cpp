// proc_test.cpp — the scheduler (proc.cpp): run/go/yield/goexit semantics,
// fairness of the global queue, stealing across Ms, lost wakeups, idleness,
// a million live goroutines, and bad input. Ports the intent of Go's
// runtime/proc_test.go.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using namespace std::chrono_literals;
using goro::testing::Countdown;
using goro::testing::Parker;
using goro::testing::run_checked;
using goro::testing::scaled;

TEST(Run, ReturnsMainsResult) {
  EXPECT_EQ(goro::run([] { return 42; }), 42);
  EXPECT_EQ(goro::run([] {}), 0);
}

TEST(Run, TwiceInOneProcess) {
  for (int i = 0; i < 3; i++) {
    std::atomic<int> n{0};
    run_checked([&] {
      Countdown cd(100);
      for (int k = 0; k < 100; k++)
        goro::go([&] {
          n++;
          cd.done();
        });
      cd.wait();
    });
    EXPECT_EQ(n.load(), 100);
  }
}

TEST(Run, MainIsGoroutineOne) {
  goro::run([] {
    EXPECT_EQ(goro::goid(), 1u);
    EXPECT_EQ(goro::num_goroutine(), 1);
  });
  EXPECT_EQ(goro::goid(), 0u) << "goid() outside goroutines is 0";
  EXPECT_EQ(goro::num_goroutine(), 0) << "no runtime, no goroutines";
}

TEST(Run, MaxprocsOption) {
  goro::run([] { EXPECT_EQ(goro::maxprocs(), 3); }, {.maxprocs = 3});
  goro::run([] { EXPECT_EQ(goro::maxprocs(), 1); }, {.maxprocs = 1});
}

TEST(Run, DefaultMaxprocsIsTheCpusThisThreadMayUse) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  goro::run([&] { EXPECT_EQ(goro::maxprocs(), CPU_COUNT(&saved)); });
  EXPECT_EQ(goro::maxprocs(), CPU_COUNT(&saved)) << "outside a runtime: what run() would choose";
  // Restricted to one CPU (as by taskset), run() chooses one P.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &saved)) {
      CPU_SET(c, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  int procs = 0;
  goro::run([&] { procs = goro::maxprocs(); });
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(procs, 1);
}

TEST(Run, ReturningMainAbandonsOtherGoroutines) {
  // What an abandoned goroutine owns is never destroyed (nothing of it runs
  // again, as in Go), so it holds nothing on the heap here.
  std::atomic<bool> resumed{false};
  Parker parker;
  goro::run([&] {
    goro::go([&] {
      parker.park();
      resumed = true;  // never: main returns first and nothing runs again
    });
    goro::yield();
  });
  EXPECT_FALSE(resumed.load());
}

TEST(Go, ArgumentsAreDecayCopiedAndPassedAsRvalues) {
  run_checked([] {
    std::string s = "before";
    auto up = std::make_unique<int>(7);
    Countdown cd(1);
    std::string got;
    int got_int = 0;
    goro::go(
        [&](std::string str, std::unique_ptr<int> p) {
          got = std::move(str);
          got_int = *p;
          cd.done();
        },
        s, std::move(up));
    s = "after";  // the goroutine has its own copy
    cd.wait();
    EXPECT_EQ(got, "before");
    EXPECT_EQ(got_int, 7);
  });
}

TEST(Go, MoveOnlyCallable) {
  run_checked([] {
    Countdown cd(1);
    auto p = std::make_unique<int>(5);
    int seen = 0;
    goro::go([p = std::move(p), &seen, &cd] {
      seen = *p;
      cd.done();
    });
    cd.wait();
    EXPECT_EQ(seen, 5);
  });
}

TEST(Go, ClosureDestroyedAfterRun) {
  auto token = std::make_shared<int>(1);
  run_checked([&] {
    Countdown cd(1);
    goro::go([token, &cd] { cd.done(); });
    cd.wait();
  });
  EXPECT_EQ(token.use_count(), 1) << "the goroutine's copy of its closure was destroyed";
}

TEST(Go, GoidsAreUnique) {
  run_checked([] {
    constexpr int kN = 1000;
    std::vector<std::uint64_t> ids(kN);
    Countdown cd(kN);
    for (int i = 0; i < kN; i++)
      goro::go([&, i] {
        ids[i] = goro::goid();
        cd.done();
      });
    cd.wait();
    std::set<std::uint64_t> uniq(ids.begin(), ids.end());
    EXPECT_EQ(uniq.size(), static_cast<std::size_t>(kN));
    EXPECT_EQ(uniq.count(0), 0u);
    EXPECT_EQ(uniq.count(1), 0u) << "1 is main's";
  });
}

TEST(Go, FromAForeignThread) {
  run_checked([] {
    Countdown cd(100);
    std::thread t([&] {
      for (int i = 0; i < 100; i++) goro::go([&] { cd.done(); });
    });
    cd.wait();
    t.join();
  });
}

TEST(Go, NumGoroutineCounts) {
  run_checked([] {
    constexpr int kN = 50;
    std::vector<Parker> ps(kN);
    std::atomic<int> started{0};
    Countdown cd(kN);
    for (int i = 0; i < kN; i++)
      goro::go([&, i] {
        started++;
        ps[i].park();
        cd.done();
      });
    while (started.load() < kN) goro::yield();
    EXPECT_EQ(goro::num_goroutine(), kN + 1);
    for (auto& p : ps) p.unpark();
    cd.wait();
  });
}

TEST(Goexit, RunsDestructorsAndEndsTheGoroutine) {
  run_checked([] {
    struct Flag {
      std::atomic<bool>* f;
      ~Flag() { *f = true; }
    };
    std::atomic<bool> destroyed{false}, after{false};
    Countdown cd(1);
    goro::go([&] {
      struct Done {
        Countdown* cd;
        ~Done() { cd->done(); }
      } done{&cd};
      Flag flag{&destroyed};
      [] { goro::goexit(); }();
      after = true;
    });
    cd.wait();
    EXPECT_TRUE(destroyed.load());
    EXPECT_FALSE(after.load()) << "code after goexit() ran";
  });
}

TEST(Goexit, IsNotCaughtAsStdException) {
  run_checked([] {
    std::atomic<bool> caught{false};
    Countdown cd(1);
    goro::go([&] {
      struct Done {
        Countdown* cd;
        ~Done() { cd->done(); }
      } done{&cd};
      try {
        goro::goexit();
      } catch (const std::exception&) {
        caught = true;
      }
    });
    cd.wait();
    EXPECT_FALSE(caught.load());
  });
}

TEST(Goexit, OutsideAGoroutineThrows) { EXPECT_THROW(goro::goexit(), std::logic_error); }

TEST(Yield, OnAPlainThreadYieldsTheThread) { goro::yield(); }

TEST(Yield, TwoGoroutinesAlternateOnOneP) {
  run_checked(
      [] {
        std::vector<int> order;
        Countdown cd(2);
        for (int id = 0; id < 2; id++) {
          goro::go([&, id] {
            for (int i = 0; i < 5; i++) {
              order.push_back(id);
              goro::yield();
            }
            cd.done();
          });
        }
        cd.wait();
        ASSERT_EQ(order.size(), 10u);
        // yield puts the caller at the back of the global queue: strict
        // alternation once both are running.
        for (std::size_t i = 2; i < order.size(); i++) EXPECT_NE(order[i], order[i - 1]) << "at " << i;
      },
      {.maxprocs = 1});
}

// Go's reason for checking the global queue every 61 ticks: two goroutines
// respawning each other through runnext must not starve a goroutine on the
// global queue. main yields (global queue) while the chain runs on the only
// P. Each child inherits the time slice (runnext), so the tick does not
// move; the chain has no preemption point of its own, so it is the slice's
// end that lets main in: sysmon marks the slice over after 10 ms, and the
// next round of the scheduler looks at the global queue first. (Go 1.19
// lets the chain run for over a second.) The bound allows for a loaded
// machine.
TEST(Fairness, RespawningChainCannotStarveGlobalQueue) {
  run_checked(
      [] {
        std::atomic<bool> stop{false};
        std::atomic<std::int64_t> spawns{0};
        std::atomic<int> alive{0};
        struct Chain {
          static void step(std::atomic<bool>* stop, std::atomic<std::int64_t>* spawns, std::atomic<int>* alive) {
            if (stop->load()) {
              alive->fetch_sub(1);
              return;
            }
            spawns->fetch_add(1);
            goro::go(&Chain::step, stop, spawns, alive);
          }
        };
        alive = 1;
        goro::go(&Chain::step, &stop, &spawns, &alive);
        auto worst = goro::Clock::duration::zero();
        for (int i = 0; i < 20; i++) {
          auto before = goro::Clock::now();
          goro::yield();
          worst = std::max(worst, goro::Clock::now() - before);
        }
        stop = true;
        while (alive.load() != 0) goro::yield();
        EXPECT_LT(worst, 2s) << "main waited behind the chain for "
                             << std::chrono::duration_cast<std::chrono::milliseconds>(worst).count() << " ms";
        EXPECT_GT(spawns.load(), 0);
      },
      {.maxprocs = 1});
}

// Go's TestPingPongHog: with one P, a pair of goroutines that hand the P
// back and forth after a million increments each, and a pair that do so
// after a thousand, get comparable CPU. A woken goroutine inherits its
// waker's time slice (runnext), so each pair is preempted as one after
// 10 ms, and neither can starve the other.
TEST(Fairness, PingPongHog) {
  run_checked(
      [] {
        goro::Chan<bool> done;
        goro::Chan<bool> hogChan, lightChan;
        std::atomic<std::int64_t> hogCount{0}, lightCount{0};
        auto run = [&done](std::int64_t limit, std::atomic<std::int64_t>* counter, goro::Chan<bool> wake) {
          for (;;) {
            bool quit = false;
            goro::select(goro::on_recv(done, [&](std::optional<bool>) { quit = true; }),
                         goro::on_recv(wake, [&](std::optional<bool>) {
                           // Plain loads and stores, as Go's *counter++: the
                           // loop stays a loop, without atomic read-modify-writes.
                           for (std::int64_t i = 0; i < limit; i++) {
                             counter->store(counter->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                           }
                           wake.send(true);
                         }));
            if (quit) return;
          }
        };
        goro::WaitGroup wg;
        wg.add(4);
        for (int i = 0; i < 2; i++) {
          goro::go([&] {
            run(1000000, &hogCount, hogChan);
            wg.done();
          });
        }
        for (int i = 0; i < 2; i++) {
          goro::go([&] {
            run(1000, &lightCount, lightChan);
            wg.done();
          });
        }
        hogChan.send(true);
        lightChan.send(true);
        goro::sleep_for(100ms);
        done.close();
        hogChan.recv();
        lightChan.recv();
        wg.wait();
        // Go's factor: were the pairs scheduled badly, the gap would be
        // about a thousandfold.
        constexpr std::int64_t kFactor = 5;
        std::int64_t h = hogCount.load(), l = lightCount.load();
        EXPECT_TRUE(h <= l * kFactor && l <= h * kFactor)
            << "want hogCount/lightCount in [1/5, 5]; got " << h << "/" << l << " = "
            << static_cast<double>(h) / static_cast<double>(std::max<std::int64_t>(l, 1));
      },
      {.maxprocs = 1});
}

// TestGoroutineParallelism's idea: with two Ps, goroutines spawned by one
// goroutine run on two Ms at the same time (the second M steals).
TEST(Stealing, SpreadsCpuBoundWorkToTwoMs) {
  run_checked(
      [] {
        std::atomic<int> arrived{0};
        std::atomic<std::int64_t> ms[2] = {-1, -1};
        std::atomic<bool> both{false};
        Countdown cd(2);
        goro::go([&] {
          for (int i = 0; i < 2; i++) {
            goro::go([&, i] {
              ms[i] = goro::testing::current_m();
              arrived++;
              // CPU-bound: spin until the other one runs too (no yield).
              auto deadline = std::chrono::steady_clock::now() + 10s;
              while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) {
              }
              if (arrived.load() == 2) both = true;
              cd.done();
            });
          }
        });
        cd.wait();
        EXPECT_TRUE(both.load()) << "the two goroutines never ran at the same time";
        EXPECT_NE(ms[0].load(), ms[1].load());
        EXPECT_GE(goro::debug::stats().steals, 1u);
      },
      {.maxprocs = 2});
}

// A million park/ready handoffs among pairs spread over two Ps: none may
// be lost (a lost wakeup hangs the test). Then handoffs that cross Ps by
// construction: the waker keeps running for a while after each wakeup, so
// the idle P's spinning M steals the wakee from runnext (after Go's ~3 us
// back-off) and it resumes on another P than the one it parked on.
TEST(Wakeups, MillionHandoffsAcrossPs) {
  const std::int64_t total = scaled(1000000, 20);
  constexpr int kPairs = 4;
  const std::int64_t per_pair = total / kPairs / 2;
  const std::int64_t slow_rounds = scaled(5000, 10);
  std::atomic<std::int64_t> handoffs{0}, cross{0};
  auto spin = [](int us) {
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    while (std::chrono::steady_clock::now() < until) {
    }
  };
  run_checked(
      [&] {
        struct Pair {
          Parker a, b;
        };
        auto ping_pong = [&](int pairs, std::int64_t rounds, int spin_us) {
          std::vector<Pair> ps(static_cast<std::size_t>(pairs));
          Countdown cd(2 * pairs);
          for (auto& pr : ps) {
            goro::go([&, p = &pr] {
              for (std::int64_t i = 0; i < rounds; i++) {
                p->b.unpark();
                if (spin_us > 0) spin(spin_us);
                p->a.park();
                handoffs++;
              }
              p->b.unpark();
              cd.done();
            });
            goro::go([&, p = &pr] {
              for (std::int64_t i = 0; i < rounds; i++) {
                std::int32_t before = goro::testing::current_p();
                p->b.park();
                if (goro::testing::current_p() != before) cross++;
                p->a.unpark();
                handoffs++;
              }
              cd.done();
            });
          }
          cd.wait();
        };
        ping_pong(kPairs, per_pair, 0);
        ping_pong(1, slow_rounds, 10);
      },
      {.maxprocs = 2});
  std::printf("%lld handoffs, %lld of them resumed the wakee on another P\n", static_cast<long long>(handoffs.load()),
              static_cast<long long>(cross.load()));
  EXPECT_EQ(handoffs.load(), 2 * kPairs * per_pair + 2 * slow_rounds);
  EXPECT_GT(cross.load(), 0) << "no handoff crossed Ps";
}

// Goroutines readied from a plain thread (no P: the global queue) and a
// thread woken by goroutines: both directions, no lost wakeups.
TEST(Wakeups, ForeignThreadHandoffs) {
  const std::int64_t n = scaled(100000, 20);
  run_checked(
      [&] {
        Parker g_side;
        std::atomic<std::int64_t> turn{0};
        std::thread t([&] {
          for (std::int64_t i = 0; i < n; i++) {
            while (turn.load() != 2 * i) std::this_thread::yield();
            turn.store(2 * i + 1);
            g_side.unpark();
          }
        });
        for (std::int64_t i = 0; i < n; i++) {
          g_side.park();
          ASSERT_EQ(turn.load(), 2 * i + 1);
          turn.store(2 * i + 2);
        }
        t.join();
      },
      // The thread wakes main without having used goro before main first
      // blocks: without this, that is a deadlock (API.md, Fatal errors).
      {.maxprocs = 2, .checkdead = false});
}

// Idle is idle: with nothing runnable the runtime's threads sleep.
TEST(Idle, UsesNoCpuWithNothingRunnable) {
  if (goro::testing::kSanitized) GTEST_SKIP() << "sanitizer runtimes run background threads of their own";
  double cpu_ms = -1;
  run_checked(
      [&] {
        // Start some threads first, so that there are idle Ms to misbehave.
        Countdown cd(8);
        for (int i = 0; i < 8; i++) goro::go([&] { cd.done(); });
        cd.wait();
        Parker main;
        std::thread t([&] {
          std::this_thread::sleep_for(100ms);  // let everything settle
          double before = goro::testing::process_cpu_ms();
          std::this_thread::sleep_for(1s);
          cpu_ms = goro::testing::process_cpu_ms() - before;
          main.unpark();
        });
        main.park();
        t.join();
      },
      {.maxprocs = 2, .checkdead = false});  // the thread wakes main without having used goro
  std::printf("idle: %.2f ms of CPU over 1 s\n", cpu_ms);
  EXPECT_LE(cpu_ms, 20.0) << "the process used " << cpu_ms << " ms of CPU over 1 s with nothing to run";
}

// Starts n goroutines that each park until released, runs while_parked()
// once all of them are parked (or about to), then releases them and waits
// until every one has finished.
template <class F>
void with_parked_goroutines(std::int64_t n, F&& while_parked) {
  std::vector<Parker> parkers(static_cast<std::size_t>(n));
  std::atomic<std::int64_t> started{0};
  Countdown cd(n);
  for (std::int64_t i = 0; i < n; i++) {
    goro::go([&, p = &parkers[static_cast<std::size_t>(i)]] {
      started++;
      p->park();
      cd.done();
    });
  }
  while (started.load() < n) goro::yield();
  while_parked();
  for (auto& p : parkers) p.unpark();
  cd.wait();
}

// Parks the calling goroutine for d: nothing of it runs meanwhile, so the
// runtime's Ms can go idle. A plain thread wakes it.
void park_for(std::chrono::milliseconds d) {
  Parker p;
  std::thread t([&] {
    std::this_thread::sleep_for(d);
    p.unpark();
  });
  p.park();
  t.join();
}

// A million goroutines alive at once, each parked until released: the
// stacks must fit Linux's default 65,530 mappings.
TEST(Scale, MillionGoroutinesAlive) {
  const std::int64_t n = scaled(1000000, goro::testing::kSanitized ? 200 : 1);
  int maps_alive = 0, maps_before = 0;
  int alive = 0;
  run_checked(
      [&] {
        maps_before = goro::testing::mapping_count();
        with_parked_goroutines(n, [&] {
          alive = goro::num_goroutine();
          maps_alive = goro::testing::mapping_count();
        });
      },
      {.maxprocs = 2});
  std::printf("%lld goroutines alive: %d mappings (%d before), guard markers: %s\n", static_cast<long long>(n),
              maps_alive, maps_before, goro::testing::stack_guard_markers() ? "yes" : "no");
  EXPECT_EQ(alive, n + 1);
  if (goro::runtime::san::kTsan) {
    // TSan maps memory of its own for every fiber (one per goroutine);
    // the stacks' share is measured in the other builds.
    EXPECT_LT(maps_alive, 65530);
  } else if (goro::testing::stack_guard_markers()) {
    EXPECT_LT(maps_alive, 2000) << "mappings with " << n << " goroutines alive (" << maps_before << " before)";
  } else {
    // mprotect guards (kernel < 6.13): two mappings per stack.
    EXPECT_LT(maps_alive, 65530);
  }
}

// Stacks of dead goroutines beyond a few thousand go back to the kernel
// once the runtime has been idle for a while (the scavenger runs when an M
// goes to sleep).
TEST(Scale, IdleRuntimeGivesStacksBack) {
  const std::int64_t n = scaled(20000, 4);
  int after_burst = 0, after_idle = 0;
  run_checked(
      [&] {
        with_parked_goroutines(n, [] {});
        // Let the dead Gs reach the global list (an idle P hands its own over).
        park_for(50ms);
        after_burst = goro::testing::free_gs_with_stacks();
        // Idle for several scavenger periods: each idle M may scavenge.
        for (int i = 0; i < 4; i++) park_for(150ms);
        after_idle = goro::testing::free_gs_with_stacks();
      },
      {.maxprocs = 2, .checkdead = false});  // park_for's thread wakes main without having used goro
  std::printf("free Gs with stacks: %d after the burst, %d after idling\n", after_burst, after_idle);
  if (n > 8192) {
    EXPECT_GT(after_burst, 4096) << "the burst's stacks were kept for reuse at first";
  }
  EXPECT_LE(after_idle, 4096) << "stacks kept after the runtime idled";
}

// maxprocs = 1 and maxprocs = 64 (oversubscribed on 2 CPUs) both compute
// right: a tree of goroutines summing into slots, as skynet does.
std::int64_t tree(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::int64_t results[10] = {};
  Countdown cd(10);
  for (int i = 0; i < 10; i++) {
    goro::go([&, i] {
      results[i] = tree(num + i * (size / 10), size / 10);
      cd.done();
    });
  }
  cd.wait();
  std::int64_t sum = 0;
  for (auto r : results) sum += r;
  return sum;
}

class Procs : public ::testing::TestWithParam<int> {};

TEST_P(Procs, TreeSumIsCorrect) {
  // A TSan fiber per goroutine makes each spawn costly there (60 s for
  // 11,111 goroutines): a smaller tree under sanitizers.
  std::int64_t size = goro::testing::kSanitized ? 1000 : 100000;
  std::int64_t got = -1;
  run_checked([&] { got = tree(0, size); }, {.maxprocs = GetParam()});
  EXPECT_EQ(got, size * (size - 1) / 2);
}

INSTANTIATE_TEST_SUITE_P(MaxProcs, Procs, ::testing::Values(1, 2, 64));

TEST(BadInput, GoWithoutRuntimeThrows) {
  try {
    goro::go([] {});
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("no goro runtime is running"), std::string::npos) << e.what();
  }
}

TEST(BadInput, RunInsideRunThrows) {
  bool threw = false;
  goro::run([&] {
    try {
      goro::run([] {});
    } catch (const std::logic_error& e) {
      threw = std::string(e.what()).find("already running") != std::string::npos;
    }
  });
  EXPECT_TRUE(threw);
}

TEST(BadInput, RunFromAnotherThreadWhileRunningThrows) {
  bool threw = false;
  goro::run([&] {
    std::thread t([&] {
      try {
        goro::run([] {});
      } catch (const std::logic_error&) {
        threw = true;
      }
    });
    t.join();
  });
  EXPECT_TRUE(threw);
}

TEST(BadInput, MaxprocsAboveLimitThrows) {
  try {
    goro::run([] {}, {.maxprocs = 1025});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1024"), std::string::npos) << e.what();
  }
  EXPECT_THROW(goro::run([] {}, {.maxprocs = -1}), std::invalid_argument);
  EXPECT_THROW(goro::maxprocs(1025), std::invalid_argument);
  goro::run([] { EXPECT_THROW(goro::maxprocs(5000), std::invalid_argument); });
}

TEST(BadInput, TinyStackThrows) {
  try {
    goro::run([] {}, {.stack_size = 4096});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(goro::detail::kMinStackSize)), std::string::npos) << e.what();
  }
  // The smallest legal size works.
  EXPECT_EQ(goro::run([] { return 3; }, {.stack_size = goro::detail::kMinStackSize}), 3);
}

TEST(BadInput, BadEnvironmentThrows) {
  setenv("GOMAXPROCS", "lots", 1);
  EXPECT_THROW(goro::run([] {}), std::invalid_argument);
  setenv("GOMAXPROCS", "2000", 1);
  EXPECT_THROW(goro::run([] {}), std::invalid_argument);
  setenv("GOMAXPROCS", "2", 1);
  goro::run([] { EXPECT_EQ(goro::maxprocs(), 2); });
  unsetenv("GOMAXPROCS");
  setenv("GORO_STACK_SIZE", "1K", 1);
  EXPECT_THROW(goro::run([] {}), std::invalid_argument);
  setenv("GORO_STACK_SIZE", "64K", 1);
  EXPECT_EQ(goro::run([] { return 1; }), 1);
  unsetenv("GORO_STACK_SIZE");
  // A runtime still starts after all that.
  EXPECT_EQ(goro::run([] { return 2; }), 2);
}

TEST(BadInput, GoOfNilFuncThrows) {
  run_checked([] {
    void (*fp)() = nullptr;
    EXPECT_THROW(goro::go(fp), std::invalid_argument);
    std::function<void()> empty;
    EXPECT_THROW(goro::go(empty), std::invalid_argument);
  });
}

TEST(BadInput, BadMaxThreadsLeavesNoRuntimeBehind) {
  setenv("GORO_MAXTHREADS", "zero", 1);
  EXPECT_THROW(goro::run([] {}), std::invalid_argument);
  unsetenv("GORO_MAXTHREADS");
  EXPECT_EQ(goro::run([] { return 5; }), 5) << "a failed start must not leave the runtime marked as running";
}

TEST(BadInput, ClosureTooLargeThrows) {
  run_checked([] {
    struct Big {
      char data[128 * 1024];
    };
    auto big = std::make_unique<Big>();
    EXPECT_THROW(goro::go([b = *big] { (void)b; }), std::length_error);
  });
}

}  // namespace
