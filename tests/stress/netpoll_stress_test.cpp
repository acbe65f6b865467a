// netpoll_stress_test.cpp — the netpoller from both cores: pairs of
// goroutines pass numbered messages over non-blocking socket pairs
// (wait_readable/wait_writable on EAGAIN, small buffers so that writers
// wait too), while other goroutines wait with deadlines that pass, and
// plain threads write to pipes goroutines wait on. Every message must
// arrive once and in order; the runtime must not trip over its invariants.
// GORO_STRESS_SECONDS sets the length (default 3).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using goro::testing::run_checked;
using goro::testing::scaled;
using namespace std::chrono_literals;

int stress_seconds() {
  const char* s = std::getenv("GORO_STRESS_SECONDS");
  int n = s != nullptr ? std::atoi(s) : 0;
  return n > 0 ? n : 3;
}

// Write all of buf to a non-blocking fd, waiting while it is full.
void write_all(int fd, const void* buf, std::size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      goro::wait_writable(fd);
    } else {
      FAIL() << "write: " << std::strerror(errno);
    }
  }
}

// Read exactly len bytes; false at end of stream.
bool read_full(int fd, void* buf, std::size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::read(fd, p, len);
    if (n > 0) {
      p += n;
      len -= static_cast<std::size_t>(n);
    } else if (n == 0) {
      return false;
    } else if (errno == EAGAIN) {
      goro::wait_readable(fd);
    } else {
      ADD_FAILURE() << "read: " << std::strerror(errno);
      return false;
    }
  }
  return true;
}

TEST(NetpollStress, MessagesDeadlinesAndPlainThreads) {
  goro::Options o;
  o.maxprocs = 2;
  run_checked(
      [] {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(stress_seconds());
        const int pairs = static_cast<int>(scaled(64, 8));
        std::atomic<long> messages{0}, timeouts{0}, thread_wakes{0};
        goro::WaitGroup wg;
        // Message pairs: a writer sends numbered 64-byte messages, a reader
        // checks the numbers; small socket buffers make both sides wait.
        for (int i = 0; i < pairs; i++) {
          int sv[2];
          ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
          int small = 4096;
          setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
          setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
          wg.add(2);
          goro::go([&, fd = sv[0]] {
            std::uint64_t msg[8] = {};
            for (std::uint64_t k = 0; std::chrono::steady_clock::now() < until; k++) {
              msg[0] = k;
              write_all(fd, msg, sizeof msg);
            }
            close(fd);
            wg.done();
          });
          goro::go([&, fd = sv[1]] {
            std::uint64_t msg[8];
            for (std::uint64_t k = 0; read_full(fd, msg, sizeof msg); k++) {
              if (msg[0] != k) {
                ADD_FAILURE() << "message " << msg[0] << " arrived where " << k << " was due";
                break;
              }
              messages.fetch_add(1, std::memory_order_relaxed);
            }
            close(fd);
            wg.done();
          });
        }
        // Deadline waiters: a pipe nobody writes, waited on with deadlines
        // of 0-2 ms that must all pass.
        for (int i = 0; i < 8; i++) {
          int fds[2];
          ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
          wg.add(1);
          goro::go([&, fds, i] {
            for (int k = 0; std::chrono::steady_clock::now() < until; k++) {
              auto d = std::chrono::microseconds((k * 7 + i * 13) % 2000);
              if (goro::wait_readable(fds[0], goro::Clock::now() + d)) {
                ADD_FAILURE() << "a pipe nobody writes became readable";
                break;
              }
              timeouts.fetch_add(1, std::memory_order_relaxed);
            }
            close(fds[0]);
            close(fds[1]);
            wg.done();
          });
        }
        // Plain threads wake goroutines through pipes.
        std::vector<std::thread> threads;
        for (int i = 0; i < 2; i++) {
          int fds[2];
          ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
          wg.add(1);
          goro::go([&, r = fds[0]] {
            char c;
            while (read_full(r, &c, 1)) thread_wakes.fetch_add(1, std::memory_order_relaxed);
            close(r);
            wg.done();
          });
          threads.emplace_back([w = fds[1], until] {
            while (std::chrono::steady_clock::now() < until) {
              char c = 'p';
              if (::write(w, &c, 1) != 1) std::this_thread::yield();
              std::this_thread::sleep_for(100us);
            }
            close(w);
          });
        }
        wg.wait();
        for (auto& t : threads) t.join();
        EXPECT_GT(messages.load(), 0);
        EXPECT_GT(timeouts.load(), 0);
        EXPECT_GT(thread_wakes.load(), 0);
        std::printf("messages %ld, timeouts %ld, wakes from threads %ld\n", messages.load(), timeouts.load(),
                    thread_wakes.load());
      },
      o);
}

}  // namespace
