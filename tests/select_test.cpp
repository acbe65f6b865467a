// select_test.cpp — select (select.cpp): the intent of Go's test/chan
// select*.go and doubleselect.go and runtime/chan_test.go's select tests
// (fairness, duplicate channels, stress), with default, nil and closed
// channels, callbacks, and plain threads.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using goro::Chan;
using goro::on_default;
using goro::on_recv;
using goro::on_send;
using goro::testing::has_receiver;
using goro::testing::has_sender;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::wait_until;

TEST(Select, DefaultWhenNothingIsReady) {
  run_checked([] {
    Chan<int> a, b(1);
    bool ran = false;
    std::size_t i = goro::select(on_recv(a), on_recv(b), on_default([&] { ran = true; }));
    EXPECT_EQ(i, 2u);
    EXPECT_TRUE(ran);
    // A full buffered channel's send is not ready either.
    b.send(1);
    EXPECT_EQ(goro::select(on_send(b, 2), on_default()), 1u);
  });
}

TEST(Select, ReadyCasesRunWithTheirValues) {
  run_checked([] {
    Chan<int> a(1);
    Chan<std::string> b(1);
    b.send("hi");
    std::string got;
    std::size_t i =
        goro::select(on_recv(a, [](std::optional<int>) { FAIL(); }), on_recv(b, [&](std::optional<std::string> v) {
                       if (v) got = std::move(*v);
                     }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, "hi");
    bool sent = false;
    EXPECT_EQ(goro::select(on_send(a, 5, [&] { sent = true; })), 0u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(a.recv(), 5);
  });
}

TEST(Select, BlocksUntilACaseIsReady) {
  run_checked([] {
    Chan<int> a, b;
    goro::go([b]() mutable {
      EXPECT_TRUE(wait_until([&] { return has_receiver(b); })) << "the select did not block";
      b.send(9);
    });
    int got = 0;
    std::size_t i = goro::select(on_recv(a), on_recv(b, [&](std::optional<int> v) { got = *v; }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, 9);
    // A blocked send case completes when a receiver arrives.
    goro::go([a]() mutable {
      EXPECT_TRUE(wait_until([&] { return has_sender(a); })) << "the select did not block";
      EXPECT_EQ(a.recv(), 3);
    });
    EXPECT_EQ(goro::select(on_send(a, 3), on_recv(b)), 0u);
  });
}

TEST(Select, ClosedChannels) {
  run_checked([] {
    Chan<int> a;
    a.close();
    bool closed = false;
    EXPECT_EQ(goro::select(on_recv(a, [&](std::optional<int> v) { closed = !v; })), 0u);
    EXPECT_TRUE(closed);
    EXPECT_THROW(goro::select(on_send(a, 1)), goro::ChannelClosed);
    EXPECT_THROW(goro::select(on_send(a, 1), on_default()), goro::ChannelClosed);
    // Closing wakes a blocked select.
    Chan<int> b;
    goro::go([b]() mutable {
      EXPECT_TRUE(wait_until([&] { return has_receiver(b); })) << "the select did not block";
      b.close();
    });
    bool got_closed = false;
    goro::select(on_recv(b, [&](std::optional<int> v) { got_closed = !v; }));
    EXPECT_TRUE(got_closed);
    // ... and a blocked send case throws.
    Chan<int> c;
    goro::go([c]() mutable {
      EXPECT_TRUE(wait_until([&] { return has_sender(c); })) << "the select did not block";
      c.close();
    });
    EXPECT_THROW(goro::select(on_send(c, 1)), goro::ChannelClosed);
  });
}

TEST(Select, NilChannelCasesAreNeverReady) {
  run_checked([] {
    auto n = Chan<int>::nil();
    Chan<int> a(1);
    a.send(1);
    for (int i = 0; i < 100; i++) {
      EXPECT_EQ(goro::select(on_recv(n), on_send(n, 1), on_default()), 2u);
    }
    EXPECT_EQ(goro::select(on_recv(n), on_recv(a)), 1u);
  });
}

TEST(Select, EmptySelectBlocksForever) {
  std::atomic<bool> after{false};
  goro::run([&] {
    goro::go([&] {
      goro::select();
      after = true;
    });
    ASSERT_TRUE(wait_until([&] {
      return goro::testing::goroutines_waiting(goro::testing::WaitReason::select_no_cases) == 1 || after.load();
    }));
    EXPECT_FALSE(after.load()) << "an empty select returned";
  });
  EXPECT_FALSE(after.load());
}

// TestSelectFairness: every ready case is chosen with near-equal
// frequency.
TEST(Select, FairAmongReadyCases) {
  run_checked([] {
    constexpr int kTrials = 40000;
    std::array<Chan<int>, 4> cs = {Chan<int>(1), Chan<int>(1), Chan<int>(1), Chan<int>(1)};
    std::array<int, 4> counts{};
    for (auto& c : cs) c.send(0);
    for (int t = 0; t < kTrials; t++) {
      std::size_t i = goro::select(on_recv(cs[0]), on_recv(cs[1]), on_recv(cs[2]), on_recv(cs[3]));
      counts[i]++;
      cs[i].send(0);
    }
    // Binomial(40000, 1/4): sd ~87; 10% off is beyond 11 sd.
    for (int k = 0; k < 4; k++) {
      EXPECT_GT(counts[k], kTrials / 4 * 9 / 10) << "case " << k;
      EXPECT_LT(counts[k], kTrials / 4 * 11 / 10) << "case " << k;
    }
  });
}

// A blocked select raced by two senders takes exactly one value; the
// other sender stays blocked until a second select takes its value.
TEST(Select, BlockedSelectTakesOneOfTwoRacingSenders) {
  run_checked(
      [] {
        const int trials = static_cast<int>(scaled(4000, 10));
        Chan<int> a, b;
        std::array<int, 2> counts{};
        for (int t = 0; t < trials; t++) {
          goro::go([a, b]() mutable {
            goro::go([a]() mutable { a.send(0); });
            goro::go([b]() mutable { b.send(1); });
          });
          int first = -1, second = -1;
          auto take = [](int& into) { return [&into](std::optional<int> v) { into = *v; }; };
          std::size_t i = goro::select(on_recv(a, take(first)), on_recv(b, take(first)));
          ASSERT_EQ(first, static_cast<int>(i));
          std::size_t j = goro::select(on_recv(a, take(second)), on_recv(b, take(second)));
          ASSERT_EQ(second, static_cast<int>(j));
          ASSERT_NE(i, j) << "the same sender's value was taken twice";
          counts[i]++;
        }
        EXPECT_EQ(counts[0] + counts[1], trials);
      },
      {.maxprocs = 2});
}

// The same channel in several cases: locked once, and works.
TEST(Select, DuplicateChannels) {
  run_checked([] {
    Chan<int> c(1);
    c.send(1);
    std::size_t i = goro::select(on_recv(c), on_recv(c), on_recv(c));
    EXPECT_LT(i, 3u);
    // Send and receive on the same buffered channel in one select.
    std::size_t j = goro::select(on_send(c, 2), on_recv(c));
    EXPECT_EQ(j, 0u) << "empty buffered channel: only the send is ready";
    EXPECT_EQ(goro::select(on_send(c, 3), on_recv(c)), 1u) << "full: only the receive";
    // Blocking with duplicates, woken by another goroutine.
    Chan<int> d;
    goro::go([d]() mutable { d.send(4); });
    int got = 0;
    goro::select(on_recv(d, [&](std::optional<int> v) { got = *v; }),
                 on_recv(d, [&](std::optional<int> v) { got = *v; }));
    EXPECT_EQ(got, 4);
  });
}

// doubleselect.go: senders select over several channels; every value is
// received exactly once.
TEST(Select, DoubleSelect) {
  const int n = static_cast<int>(scaled(20000, 20));
  run_checked(
      [n] {
        Chan<int> c1, c2, c3, c4;
        Chan<int> out;
        goro::go([=]() mutable {
          for (int i = 0; i < n; i++) goro::select(on_send(c1, i), on_send(c2, i), on_send(c3, i), on_send(c4, i));
          c1.close();
          c2.close();
          c3.close();
          c4.close();
        });
        Chan<bool> done(4);
        auto mux = [out, done](Chan<int> in) mutable {
          for (int v : in) out.send(v);
          done.send(true);
        };
        goro::go(mux, c1);
        goro::go(mux, c2);
        goro::go(mux, c3);
        goro::go(mux, c4);
        goro::go([done, out]() mutable {
          for (int i = 0; i < 4; i++) done.recv();
          out.close();
        });
        std::vector<int> seen(static_cast<std::size_t>(n));
        for (int v : out) seen[static_cast<std::size_t>(v)]++;
        for (int i = 0; i < n; i++) ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1) << i;
      },
      {.maxprocs = 2});
}

// TestSelectStress: senders and receivers through selects on four
// channels, on both Ps; every send is matched by a receive.
TEST(SelectStress, FourChannels) {
  const int n = static_cast<int>(scaled(20000, 20));
  run_checked(
      [n] {
        std::array<Chan<int>, 4> c = {Chan<int>(), Chan<int>(), Chan<int>(2), Chan<int>(3)};
        Chan<bool> done(4);
        std::atomic<std::int64_t> sum{0};
        for (int k = 0; k < 2; k++) {
          goro::go([&, done]() mutable {
            for (int i = 0; i < n; i++)
              goro::select(on_send(c[0], i), on_send(c[1], i), on_send(c[2], i), on_send(c[3], i));
            done.send(true);
          });
          goro::go([&, done]() mutable {
            for (int i = 0; i < n; i++) {
              auto add = [&](std::optional<int> v) { sum += *v; };
              goro::select(on_recv(c[0], add), on_recv(c[1], add), on_recv(c[2], add), on_recv(c[3], add));
            }
            done.send(true);
          });
        }
        for (int i = 0; i < 4; i++) done.recv();
        EXPECT_EQ(sum.load(), 2LL * n * (n - 1) / 2);
      },
      {.maxprocs = 2});
}

// select2.go: a long loop of blocking selects does not grow memory; the
// sudogs come from the per-P caches.
TEST(Select, RepeatedSelectsReuseSudogs) {
  run_checked(
      [] {
        Chan<int> a, b, c;
        const int n = static_cast<int>(scaled(200000, 20));
        goro::go([&] {
          for (int i = 0; i < n; i++) goro::select(on_send(a, i), on_send(b, i));
          c.close();
        });
        long sum = 0;
        bool closed = false;
        while (!closed) {
          goro::select(on_recv(a, [&](std::optional<int> v) { sum += *v; }),
                       on_recv(b, [&](std::optional<int> v) { sum += *v; }),
                       on_recv(c, [&](std::optional<int> v) { closed = !v; }));
        }
        EXPECT_EQ(sum, static_cast<long>(n) * (n - 1) / 2);
        EXPECT_LT(goro::testing::sudogs_allocated(), 64u);
      },
      {.maxprocs = 2});
}

// Plain threads select too (blocking on a futex).
TEST(Select, FromAPlainThread) {
  run_checked(
      [] {
        Chan<int> a, b;
        std::thread t([a, b]() mutable {
          for (int i = 0; i < 1000; i++) {
            int got = -1;
            goro::select(on_recv(a, [&](std::optional<int> v) { got = *v; }),
                         on_recv(b, [&](std::optional<int> v) { got = *v; }));
            EXPECT_EQ(got, i);
          }
        });
        for (int i = 0; i < 1000; i++) (i % 2 ? a : b).send(i);
        t.join();
      },
      {.maxprocs = 2});
}

}  // namespace
