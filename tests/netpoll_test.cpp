// netpoll_test.cpp — the netpoller (netpoll.cpp, netpoll_epoll.cpp) through
// wait_readable/wait_writable: a goroutine waiting on a descriptor holds
// no P, wakes when the descriptor is ready (made so by a goroutine or a
// plain thread) or its deadline passes, and bad descriptors are refused.
// The intent of Go's TestNonblockingRead-style pipe tests and of its
// netpoll deadline tests, through the public API.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/sync.hpp"

namespace goro::testing {
namespace {

using namespace std::chrono_literals;

// A non-blocking pipe, closed at the end of the scope.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close(r);
    close(w);
  }
};

char read_byte(int fd) {
  char c = 0;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n == 1) return c;
    if (n < 0 && errno == EAGAIN) {
      goro::wait_readable(fd);
      continue;
    }
    ADD_FAILURE() << "read failed";
    return 0;
  }
}

// On one P, a goroutine waiting for a pipe to become readable does not
// keep the P: main runs meanwhile, then writes the byte that wakes it.
TEST(Netpoll, WaiterHoldsNoP) {
  Options o;
  o.maxprocs = 1;
  run_checked(
      [] {
        Pipe p;
        std::atomic<bool> waiting{false}, got{false};
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          waiting.store(true);
          EXPECT_EQ(read_byte(p.r), 'x');
          got.store(true);
          wg.done();
        });
        while (!waiting.load()) goro::yield();
        int turns = 0;
        for (int i = 0; i < 100; i++) {
          goro::yield();
          turns++;
        }
        EXPECT_FALSE(got.load()) << "the reader returned before anything was written";
        EXPECT_EQ(turns, 100);
        ASSERT_EQ(::write(p.w, "x", 1), 1);
        wg.wait();
        EXPECT_TRUE(got.load());
      },
      o);
}

// A plain thread (not a goroutine) makes the descriptor ready: the poller
// wakes the goroutine, with every P idle meanwhile (no deadlock report).
TEST(Netpoll, PlainThreadWakesTheWaiter) {
  Options o;
  o.maxprocs = 2;
  run_checked(
      [] {
        Pipe p;
        std::thread writer([&] {
          std::this_thread::sleep_for(50ms);
          ASSERT_EQ(::write(p.w, "y", 1), 1);
        });
        EXPECT_EQ(read_byte(p.r), 'y');
        writer.join();
      },
      o);
}

// Deadlines: one that passes returns false (no sooner than it), one in the
// past returns false at once, a ready descriptor returns true at once.
TEST(Netpoll, DeadlinePasses) {
  run_checked([] {
    Pipe p;
    auto t0 = goro::Clock::now();
    EXPECT_FALSE(goro::wait_readable(p.r, t0 + 30ms));
    EXPECT_GE(goro::Clock::now() - t0, 30ms);
    EXPECT_FALSE(goro::wait_readable(p.r, goro::Clock::now() - 1s));
    EXPECT_TRUE(goro::wait_writable(p.w, goro::Clock::now() + 10s));
    ASSERT_EQ(::write(p.w, "z", 1), 1);
    EXPECT_TRUE(goro::wait_readable(p.r, goro::Clock::now() + 10s));
    EXPECT_EQ(read_byte(p.r), 'z');
  });
}

// A reader and a writer wait on one socket at once, each in its own
// direction, and each is woken by its own event.
TEST(Netpoll, ReaderAndWriterOnOneDescriptor) {
  Options o;
  o.maxprocs = 2;
  run_checked(
      [] {
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        // Fill sv[0]'s send buffer, so that a writer must wait.
        std::vector<char> chunk(4096, 'a');
        std::size_t filled = 0;
        while (true) {
          ssize_t n = ::write(sv[0], chunk.data(), chunk.size());
          if (n < 0) break;
          filled += static_cast<std::size_t>(n);
        }
        std::atomic<bool> wrote{false}, read{false};
        goro::WaitGroup wg;
        wg.add(2);
        goro::go([&] {
          goro::wait_writable(sv[0]);
          wrote.store(true);
          wg.done();
        });
        goro::go([&] {
          goro::wait_readable(sv[0]);
          read.store(true);
          wg.done();
        });
        goro::sleep_for(20ms);
        EXPECT_FALSE(wrote.load());
        EXPECT_FALSE(read.load());
        // Drain the peer: sv[0] becomes writable.
        std::size_t drained = 0;
        while (drained < filled) {
          ssize_t n = ::read(sv[1], chunk.data(), chunk.size());
          if (n > 0) {
            drained += static_cast<std::size_t>(n);
          } else {
            goro::wait_readable(sv[1]);
          }
        }
        auto until = goro::Clock::now() + 10s;
        while (!wrote.load() && goro::Clock::now() < until) goro::sleep_for(1ms);
        EXPECT_TRUE(wrote.load());
        EXPECT_FALSE(read.load());
        ASSERT_EQ(::write(sv[1], "r", 1), 1);
        wg.wait();
        EXPECT_TRUE(read.load());
        close(sv[0]);
        close(sv[1]);
      },
      o);
}

// Many goroutines wait at once, on 2 Ps; every one is woken, once.
TEST(Netpoll, ThousandWaiters) {
  Options o;
  o.maxprocs = 2;
  run_checked(
      [] {
        const int n = static_cast<int>(scaled(1000, 10));
        std::vector<Pipe> pipes(static_cast<std::size_t>(n));
        std::atomic<int> woken{0};
        goro::WaitGroup wg;
        wg.add(n);
        for (int i = 0; i < n; i++) {
          goro::go([&, i] {
            EXPECT_EQ(read_byte(pipes[static_cast<std::size_t>(i)].r), static_cast<char>('a' + i % 26));
            woken.fetch_add(1);
            wg.done();
          });
        }
        goro::sleep_for(10ms);
        for (int i = 0; i < n; i++) {
          char c = static_cast<char>('a' + i % 26);
          ASSERT_EQ(::write(pipes[static_cast<std::size_t>(i)].w, &c, 1), 1);
        }
        wg.wait();
        EXPECT_EQ(woken.load(), n);
      },
      o);
}

// What cannot be waited on: a negative descriptor, a closed one, a second
// waiter in the same direction. A regular file is always ready.
TEST(Netpoll, BadDescriptors) {
  run_checked([] {
    EXPECT_THROW(goro::wait_readable(-1), std::invalid_argument);
    EXPECT_THROW(goro::wait_writable(-5, goro::Clock::now() + 1s), std::invalid_argument);
    // A descriptor number far from those in use, closed: nothing (the
    // poller's own descriptors included) takes it meanwhile.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    int bad = fcntl(fds[0], F_DUPFD_CLOEXEC, 900);
    ASSERT_GE(bad, 900);
    close(bad);
    close(fds[0]);
    close(fds[1]);
    try {
      goro::wait_readable(bad);
      ADD_FAILURE() << "waiting on a closed descriptor did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
      EXPECT_NE(std::string(e.what()).find("wait_readable"), std::string::npos) << e.what();
    }
    FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    EXPECT_TRUE(goro::wait_readable(fileno(f), goro::Clock::now() + 10s));
    std::fclose(f);

    Pipe p;
    std::atomic<bool> waiting{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      waiting.store(true);
      goro::wait_readable(p.r);
      wg.done();
    });
    while (!waiting.load()) goro::yield();
    goro::sleep_for(10ms);
    EXPECT_THROW(goro::wait_readable(p.r), std::logic_error);
    ASSERT_EQ(::write(p.w, "q", 1), 1);
    wg.wait();
  });
}

// From a thread that is not running a goroutine, the waits block the
// thread (poll(2)) and keep their meaning.
TEST(Netpoll, PlainThreadWaits) {
  Pipe p;
  EXPECT_FALSE(goro::wait_readable(p.r, goro::Clock::now() + 20ms));
  EXPECT_TRUE(goro::wait_writable(p.w, goro::Clock::now() + 1s));
  ASSERT_EQ(::write(p.w, "t", 1), 1);
  goro::wait_readable(p.r);
  char c = 0;
  EXPECT_EQ(::read(p.r, &c, 1), 1);
}

// run returns promptly while a goroutine waits on a descriptor nobody will
// make ready; it is abandoned, and the descriptor becoming ready after the
// run (and in the next one) wakes nothing that is gone.
TEST(Netpoll, RunReturnsWithAWaiter) {
  Pipe p;
  auto t0 = std::chrono::steady_clock::now();
  goro::run([&] {
    std::atomic<bool> waiting{false};
    goro::go([&] {
      waiting.store(true);
      goro::wait_readable(p.r);
    });
    while (!waiting.load()) goro::yield();
    goro::sleep_for(10ms);
  });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  run_checked([&] {
    ASSERT_EQ(::write(p.w, "x", 1), 1);
    goro::sleep_for(20ms);
    EXPECT_EQ(read_byte(p.r), 'x');
  });
}

// Timers keep their precision once the poller sleeps in epoll: a sleep
// ends neither early nor (retried with a growing margin) late.
TEST(Netpoll, TimersWhileThePollerSleeps) {
  Options o;
  o.maxprocs = 1;
  run_checked(
      [] {
        Pipe p;
        EXPECT_FALSE(goro::wait_readable(p.r, goro::Clock::now() + 1ms));  // the poller is in use
        EXPECT_TRUE(with_growing_margin(5, [](int k) -> std::string {
          auto d = std::chrono::milliseconds(5 << k);
          auto t0 = goro::Clock::now();
          goro::sleep_for(d);
          auto took = goro::Clock::now() - t0;
          if (took < d) return "woke " + std::to_string(ms(d - took)) + " ms early";
          if (took > d + d / 2 + 2ms) return "took " + std::to_string(ms(took)) + " ms for " + std::to_string(ms(d));
          return "";
        }));
      },
      o);
}

}  // namespace
}  // namespace goro::testing
