// chan_test.cpp — channels (chan.cpp): the intent of Go's runtime/chan_test.go
// (TestChan, non-blocking races, multi-consumer) and test/chan (sieve, fifo,
// goroutines, nonblock, sendstmt, zerosize), plus C++ element types
// (move-only, no default constructor), nil channels and plain threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using namespace std::chrono_literals;
using goro::Chan;
using goro::testing::goroutines_waiting;
using goro::testing::has_receiver;
using goro::testing::has_sender;
using goro::testing::recvq_kinds;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::sendq_kinds;
using goro::testing::wait_until;
using goro::testing::WaitReason;

// TestChan: for unbuffered and buffered channels of several sizes.
class ChanSizes : public ::testing::TestWithParam<int> {};

TEST_P(ChanSizes, RecvFromEmptyBlocksUntilSend) {
  const std::size_t cap = static_cast<std::size_t>(GetParam());
  run_checked([cap] {
    Chan<int> c(cap);
    std::atomic<bool> recv{false};
    Chan<int> done;
    goro::go([&] {
      auto v = c.recv();
      recv = true;
      done.send(*v);
    });
    ASSERT_TRUE(wait_until([&] { return has_receiver(c) || recv.load(); }));
    EXPECT_FALSE(recv.load()) << "receive from empty channel did not block";
    EXPECT_EQ(recvq_kinds(c), "g");
    c.send(7);
    EXPECT_EQ(done.recv(), 7);
  });
}

TEST_P(ChanSizes, SendBlocksWhenFullAndFifoOrder) {
  const std::size_t cap = static_cast<std::size_t>(GetParam());
  run_checked([cap] {
    Chan<int> c(cap);
    for (std::size_t i = 0; i < cap; i++) c.send(static_cast<int>(i));
    EXPECT_EQ(c.size(), cap);
    EXPECT_EQ(c.capacity(), cap);
    std::atomic<bool> sent{false};
    goro::go([&] {
      c.send(1000);
      sent = true;
    });
    ASSERT_TRUE(wait_until([&] { return has_sender(c) || sent.load(); }));
    EXPECT_FALSE(sent.load()) << "send to full channel did not block";
    EXPECT_EQ(sendq_kinds(c), "g");
    for (std::size_t i = 0; i < cap; i++) EXPECT_EQ(c.recv(), static_cast<int>(i));
    EXPECT_EQ(c.recv(), 1000);
    while (!sent.load()) goro::yield();
  });
}

TEST_P(ChanSizes, CloseDrainsThenReportsClosed) {
  const std::size_t cap = static_cast<std::size_t>(GetParam());
  run_checked([cap] {
    Chan<int> c(cap);
    for (std::size_t i = 0; i < cap; i++) c.send(static_cast<int>(i));
    c.close();
    for (std::size_t i = 0; i < cap; i++) EXPECT_EQ(c.recv(), static_cast<int>(i));
    EXPECT_EQ(c.recv(), std::nullopt);
    EXPECT_EQ(c.recv(), std::nullopt);
    EXPECT_THROW(c.send(1), goro::ChannelClosed);
    EXPECT_THROW(c.try_send(1), goro::ChannelClosed);
    EXPECT_THROW(c.close(), goro::ChannelClosed);
  });
}

TEST_P(ChanSizes, CloseWakesBlockedReceiversAndSenders) {
  const std::size_t cap = static_cast<std::size_t>(GetParam());
  run_checked([cap] {
    Chan<int> c(cap);
    Chan<int> results(16);
    for (int i = 0; i < 3; i++) goro::go([&] { results.send(c.recv().has_value() ? 1 : 0); });
    ASSERT_TRUE(wait_until([&] { return recvq_kinds(c) == "ggg"; })) << "the receivers did not all block";
    c.close();
    for (int i = 0; i < 3; i++) EXPECT_EQ(results.recv(), 0);
    Chan<int> d(cap);
    for (std::size_t i = 0; i < cap; i++) d.send(0);
    for (int i = 0; i < 3; i++)
      goro::go([&] {
        try {
          d.send(1);
          results.send(1);
        } catch (const goro::ChannelClosed&) {
          results.send(2);
        }
      });
    ASSERT_TRUE(wait_until([&] { return sendq_kinds(d) == "ggg"; })) << "the senders did not all block";
    d.close();
    for (int i = 0; i < 3; i++) EXPECT_EQ(results.recv(), 2);
  });
}

// Go's sieve of Eratosthenes (test/chan/sieve1.go): a pipeline of filters.
TEST_P(ChanSizes, PrimeSieve) {
  const std::size_t cap = static_cast<std::size_t>(GetParam());
  run_checked([cap] {
    Chan<int> src(cap);
    goro::go([src]() mutable {
      for (int i = 2; i < 1000; i++) src.send(i);
      src.close();
    });
    std::vector<int> primes;
    Chan<int> ch = src;
    for (;;) {
      auto p = ch.recv();
      if (!p) break;
      primes.push_back(*p);
      Chan<int> out(cap);
      goro::go([in = ch, out, prime = *p]() mutable {
        for (int v : in) {
          if (v % prime != 0) out.send(v);
        }
        out.close();
      });
      ch = out;
    }
    ASSERT_EQ(primes.size(), 168u);
    EXPECT_EQ(primes[0], 2);
    EXPECT_EQ(primes.back(), 997);
  });
}

INSTANTIATE_TEST_SUITE_P(Caps, ChanSizes, ::testing::Values(0, 1, 2, 10, 100));

// A send to a parked receiver hands the value straight to it: the buffer
// stays empty, so a second value fits before the receiver even runs.
TEST(Chan, SendToParkedReceiverBypassesTheBuffer) {
  run_checked(
      [] {
        Chan<int> c(1);
        Chan<int> got(2);
        goro::go([&] { got.send(*c.recv()); });
        // The receiver runs and parks. (A yield alone does not promise it:
        // one findRunnable round in 61 looks at the global queue, where the
        // yielder is, first.)
        ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(c); }));
        c.send(1);  // handed over; the receiver is runnable, not running
        EXPECT_EQ(c.size(), 0u);
        EXPECT_TRUE(c.try_send(2)) << "the first value went through the buffer";
        EXPECT_EQ(got.recv(), 1);
        EXPECT_EQ(c.recv(), 2);
      },
      {.maxprocs = 1});
}

// Blocking operations take their sudogs from per-P caches: a million
// blocking handoffs allocate only a handful.
TEST(Chan, SudogsComeFromACache) {
  run_checked(
      [] {
        Chan<int> ping, pong;
        const int n = static_cast<int>(scaled(1000000, 20));
        goro::go([&ping, &pong, n] {  // n by value: read after the last send
          for (int i = 0; i < n; i++) pong.send(*ping.recv());
        });
        for (int i = 0; i < n; i++) {
          ping.send(i);
          pong.recv();
        }
        EXPECT_LT(goro::testing::sudogs_allocated(), 64u);
      },
      {.maxprocs = 2});
}

TEST(Chan, ZeroCapacityIsUnbuffered) {
  run_checked([] {
    Chan<int> c(0);
    EXPECT_FALSE(c.try_send(1)) << "no receiver: an unbuffered send cannot complete";
    EXPECT_EQ(c.capacity(), 0u);
  });
}

// test/chan/fifo.go: values from one sender arrive in order, through a
// chain of goroutines too.
TEST(Chan, FifoThroughAChain) {
  run_checked([] {
    constexpr int kN = 10;
    Chan<int> first;
    Chan<int> in = first;
    for (int i = 0; i < kN; i++) {
      Chan<int> out;
      goro::go([in, out]() mutable {
        for (int k = 0; k < 100; k++) out.send(*in.recv());
      });
      in = out;
    }
    goro::go([first]() mutable {
      for (int k = 0; k < 100; k++) first.send(k);
    });
    for (int k = 0; k < 100; k++) EXPECT_EQ(in.recv(), k);
  });
}

// test/chan/goroutines.go: a long chain of goroutines passing a value.
TEST(Chan, LongChainOfGoroutines) {
  run_checked([] {
    const int n = static_cast<int>(scaled(10000, 10));
    Chan<int> leftmost;
    Chan<int> left = leftmost;
    for (int i = 0; i < n; i++) {
      Chan<int> right;
      goro::go([left, right]() mutable { left.send(1 + *right.recv()); });
      left = right;
    }
    goro::go([left]() mutable { left.send(0); });
    EXPECT_EQ(leftmost.recv(), n);
  });
}

// test/chan/nonblock.go: try_send/try_recv never block; they succeed
// exactly when a partner or buffer space is there.
TEST(Chan, NonBlocking) {
  run_checked([] {
    for (std::size_t cap : {0u, 1u, 8u}) {
      Chan<int> c(cap);
      EXPECT_EQ(c.try_recv(), std::nullopt);
      for (std::size_t i = 0; i < cap; i++) EXPECT_TRUE(c.try_send(static_cast<int>(i)));
      EXPECT_FALSE(c.try_send(99));
      for (std::size_t i = 0; i < cap; i++) EXPECT_EQ(c.try_recv(), static_cast<int>(i));
      EXPECT_EQ(c.try_recv(), std::nullopt);
      // With a partner parked, the non-blocking operation succeeds.
      Chan<int> done;
      goro::go([&] { done.send(*c.recv()); });
      if (cap == 0) {
        ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(c); }));
      }
      EXPECT_TRUE(c.try_send(5));
      EXPECT_EQ(done.recv(), 5);
      c.close();
      EXPECT_EQ(c.try_recv(), std::nullopt);
    }
  });
}

// TestNonblockRecvRace: a channel holding a value (or closed) is always
// ready for a non-blocking receive, even while it is being closed.
TEST(Chan, NonblockRecvRace) {
  const int n = static_cast<int>(scaled(10000, 20));
  run_checked(
      [n] {
        std::atomic<int> not_ready{0};
        for (int i = 0; i < n; i++) {
          Chan<int> c(1);
          c.send(1);
          Chan<bool> done;
          goro::go([c, done, &not_ready]() mutable {
            goro::select(goro::on_recv(c), goro::on_default([&] { not_ready++; }));
            done.send(true);
          });
          c.close();
          c.recv();
          done.recv();
        }
        EXPECT_EQ(not_ready.load(), 0) << "a non-blocking receive found the channel not ready";
      },
      {.maxprocs = 2});
}

// test/chan/sendstmt.go / zerosize.go: values of any movable type.
struct NoDefault {
  explicit NoDefault(int v) : v(v) {}
  int v;
};

TEST(Chan, MoveOnlyAndNoDefaultConstructorTypes) {
  run_checked([] {
    Chan<std::unique_ptr<int>> c(2);
    c.send(std::make_unique<int>(1));
    goro::go([c]() mutable { c.send(std::make_unique<int>(2)); });
    EXPECT_EQ(**c.recv(), 1);
    EXPECT_EQ(**c.recv(), 2);
    Chan<NoDefault> d;
    goro::go([d]() mutable { d.send(NoDefault(42)); });
    EXPECT_EQ(d.recv()->v, 42);
    struct Empty {};
    Chan<Empty> e(3);
    e.send(Empty{});
    EXPECT_TRUE(e.recv().has_value());
    Chan<std::string> s(1);
    s.send(std::string(100, 'x'));
    EXPECT_EQ(s.recv()->size(), 100u);
  });
}

TEST(Chan, BufferedValuesAreDestroyedWithTheChannel) {
  auto p = std::make_shared<int>(0);
  {
    Chan<std::shared_ptr<int>> c(4);
    c.send(p);
    c.send(p);
    EXPECT_EQ(p.use_count(), 3);
  }
  EXPECT_EQ(p.use_count(), 1);
}

TEST(Chan, HandlesShareOneChannel) {
  Chan<int> a(1);
  Chan<int> b = a;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == Chan<int>(1));
  b.send(3);
  EXPECT_EQ(a.recv(), 3);
  EXPECT_TRUE(Chan<int>::nil() == Chan<int>::nil());
}

TEST(Chan, RangeForReceivesUntilClosed) {
  run_checked([] {
    Chan<int> c(3);
    goro::go([c]() mutable {
      for (int i = 1; i <= 5; i++) c.send(i);
      c.close();
    });
    int sum = 0;
    for (int v : c) sum += v;
    EXPECT_EQ(sum, 15);
  });
}

TEST(Chan, NilChannel) {
  run_checked([] {
    auto n = Chan<int>::nil();
    EXPECT_FALSE(n.try_send(1));
    EXPECT_EQ(n.try_recv(), std::nullopt);
    EXPECT_EQ(n.size(), 0u);
    EXPECT_EQ(n.capacity(), 0u);
    EXPECT_THROW(n.close(), std::logic_error);
    try {
      n.close();
    } catch (const goro::ChannelClosed&) {
      FAIL() << "close of nil is a logic_error, not ChannelClosed";
    } catch (const std::logic_error& e) {
      EXPECT_STREQ(e.what(), "close of nil channel");
    }
  });
}

// A goroutine blocked forever on a nil channel is abandoned at the end of
// the run (nothing of it runs again).
TEST(Chan, NilChannelBlocksForever) {
  std::atomic<bool> after{false};
  goro::run([&] {
    goro::go([&] {
      Chan<int>::nil().recv();
      after = true;
    });
    ASSERT_TRUE(wait_until([&] { return goroutines_waiting(WaitReason::chan_receive_nil) == 1 || after.load(); }));
    EXPECT_FALSE(after.load()) << "a receive from a nil channel returned";
  });
  EXPECT_FALSE(after.load());
}

// TestMultiConsumer: many producers, many consumers, every value received
// exactly once.
TEST(Chan, MultiConsumer) {
  const int nwork = 23, niter = static_cast<int>(scaled(27100, 20));
  for (std::size_t cap : {0u, 50u}) {
    run_checked(
        [&] {
          Chan<int> q(cap);
          Chan<std::int64_t> r(cap);
          Chan<int> done(nwork);
          for (int i = 0; i < nwork; i++) {
            goro::go([q, r, done]() mutable {
              for (int v : q) r.send(1LL * v * v);
              done.send(1);
            });
          }
          std::int64_t expect = 0;
          goro::go([&, q]() mutable {
            for (int i = 0; i < niter; i++) q.send(i % 37);
            q.close();
          });
          for (int i = 0; i < niter; i++) expect += 1LL * (i % 37) * (i % 37);
          goro::go([&, r, done]() mutable {
            for (int i = 0; i < nwork; i++) done.recv();
            r.close();
          });
          std::int64_t n = 0, s = 0;
          for (std::int64_t v : r) {
            n++;
            s += v;
          }
          EXPECT_EQ(n, niter);
          EXPECT_EQ(s, expect);
        },
        {.maxprocs = 2});
  }
}

// Plain threads and goroutines share channels, both directions: no lost
// wakeups over 100,000 handoffs.
TEST(Chan, ForeignThreadsAndGoroutines) {
  const int n = static_cast<int>(scaled(100000, 20));
  for (std::size_t cap : {0u, 16u}) {
    run_checked(
        [&] {
          Chan<int> to_g(cap), to_t(cap);
          std::thread t([&] {
            for (int i = 0; i < n; i++) {
              to_g.send(i);
              EXPECT_EQ(to_t.recv(), i);
            }
          });
          Chan<bool> done;
          goro::go([&] {
            for (int i = 0; i < n; i++) to_t.send(*to_g.recv());
            done.send(true);
          });
          done.recv();
          t.join();
        },
        {.maxprocs = 2});
  }
}

// Channels work on plain threads with no runtime at all, and after run().
TEST(Chan, WithoutARuntime) {
  Chan<int> c;
  std::thread t([c]() mutable {
    for (int i = 0; i < 1000; i++) c.send(i);
    c.close();
  });
  int sum = 0;
  for (int v : c) sum += v;
  t.join();
  EXPECT_EQ(sum, 999 * 1000 / 2);
}

TEST(Chan, OutlivesTheRun) {
  Chan<int> c(1);
  goro::run([c]() mutable {
    c.send(5);
    // A goroutine abandoned while blocked on the channel.
    // (It refers to the channel, holding no handle: what an abandoned
    // goroutine owns is never destroyed.)
    goro::go([&c] { c.send(6); });
    ASSERT_TRUE(wait_until([&] { return has_sender(c); }));
  });
  EXPECT_EQ(c.recv(), 5);
  EXPECT_EQ(c.try_recv(), std::nullopt) << "the abandoned sender's value must not appear";
  c.send(7);
  EXPECT_EQ(c.recv(), 7);
}

// A goroutine abandoned while blocked through a handle that dies before
// the runtime ends: teardown must not touch a freed channel (the waiter
// holds a reference) and must return.
TEST(Chan, AbandonedReceiverOnADeadHandle) {
  goro::run([] {
    auto c = std::make_unique<Chan<int>>();
    goro::go([p = c.get()] { p->recv(); });
    ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(*c); }));
    c.reset();  // the goroutine's channel lives on through its sudog's reference
  });
  SUCCEED();
}

// Teardown detaches an abandoned sender from the right queue: a plain
// thread queued behind it still gets its value through.
TEST(Chan, AbandonedSenderLeavesTheQueueIntact) {
  Chan<int> c;
  std::thread t;
  goro::run([&] {
    goro::go([&c] { c.send(1); });  // abandoned, first in sendq
    ASSERT_TRUE(wait_until([&] { return sendq_kinds(c) == "g"; }));
    t = std::thread([&c] { c.send(2); });  // second in sendq
    ASSERT_TRUE(wait_until([&] { return sendq_kinds(c) == "gt"; })) << "sendq: " << sendq_kinds(c);
  });
  EXPECT_EQ(c.recv(), 2) << "the thread's value, not the abandoned goroutine's";
  t.join();
  EXPECT_EQ(c.try_recv(), std::nullopt);
}

TEST(Chan, RangeForMovesValuesOut) {
  struct ConstMember {
    const int v;
  };
  Chan<std::unique_ptr<int>> c(2);
  c.send(std::make_unique<int>(1));
  c.send(std::make_unique<int>(2));
  c.close();
  int sum = 0;
  for (std::unique_ptr<int> p : c) sum += *p;  // moved out: move-only works
  EXPECT_EQ(sum, 3);
  Chan<ConstMember> d(1);  // not assignable
  d.send(ConstMember{5});
  d.close();
  for (auto&& m : d) EXPECT_EQ(m.v, 5);
}

TEST(Chan, WaitReasonsInDump) {
  run_checked([] {
    Chan<int> c;
    Chan<int> started;
    goro::go([&] {
      started.send(1);
      c.recv();
    });
    started.recv();
    ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(c); }));
    std::ostringstream out;
    goro::debug::dump_goroutines(out);
    EXPECT_NE(out.str().find("[chan receive]"), std::string::npos) << out.str();
    c.send(1);
  });
}

}  // namespace
