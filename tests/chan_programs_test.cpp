// chan_programs_test.cpp — ports of the intent of Go's test/chan programs
// not covered case by case in chan_test.cpp and select_test.cpp: select3
// (which operations block or throw, on nil, closed, buffered, unbuffered
// channels, alone or in selects), select5 (every combination of a send or
// receive case, ready or not, with or without default), select6 (a stale
// select case must not steal a later send), select7 (every form of send
// against every form of receive), and powser (power series through
// pipelines of goroutines).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using namespace std::chrono_literals;
using goro::Chan;
using goro::on_default;
using goro::on_recv;
using goro::on_send;
using goro::testing::run_checked;

// select3's testBlock: does f block? f runs in a goroutine of its own,
// which either returns or parks (on a channel or in a select) where
// nothing here will ever wake it: then it is abandoned, with what it
// holds (tests/lsan.supp tells LeakSanitizer: select3_*, powser_*). The
// verdict is the goroutine's state, not a timeout, so a slow machine
// cannot turn "returns" into "blocks".
bool select3_blocks(std::function<void()> f) {
  struct State {
    std::atomic<std::uint64_t> goid{0};
    std::atomic<bool> returned{false};
  };
  auto st = std::make_shared<State>();
  goro::go([st, f = std::move(f)] {
    st->goid = goro::goid();
    f();
    st->returned = true;
  });
  bool parked = false;
  EXPECT_TRUE(goro::testing::wait_until([&] {
    if (st->returned.load()) return true;
    std::uint64_t id = st->goid.load();
    parked = id != 0 && goro::testing::goroutine_waiting(id);
    return parked;
  })) << "f neither returned nor blocked";
  return parked;
}

bool throws_closed(const std::function<void()>& f) {
  try {
    f();
  } catch (const goro::ChannelClosed&) {
    return true;
  }
  return false;
}

TEST(GoChanPrograms, Select3WhatBlocksAndWhatThrows) {
  goro::run(
      [] {
        auto nilch = Chan<int>::nil();
        Chan<int> closedch;
        closedch.close();
        // nil channels block, alone and in a select without default
        EXPECT_TRUE(select3_blocks([=]() mutable { nilch.send(7); }));
        EXPECT_TRUE(select3_blocks([=]() mutable { nilch.recv(); }));
        EXPECT_TRUE(select3_blocks([=]() mutable { goro::select(on_recv(nilch)); }));
        EXPECT_TRUE(select3_blocks([=]() mutable { goro::select(on_send(nilch, 7)); }));
        EXPECT_FALSE(select3_blocks([=]() mutable { goro::select(on_recv(nilch), on_default()); }));
        // an empty select blocks
        EXPECT_TRUE(select3_blocks([] { goro::select(); }));
        // unbuffered: send and receive block without a partner
        Chan<int> unb;
        EXPECT_TRUE(select3_blocks([=]() mutable { unb.send(7); }));
        Chan<int> unb2;
        EXPECT_TRUE(select3_blocks([=]() mutable { unb2.recv(); }));
        // buffered: a send blocks only when full, a receive only when empty
        Chan<int> buf(1);
        EXPECT_FALSE(select3_blocks([=]() mutable { buf.send(7); }));
        EXPECT_TRUE(select3_blocks([=]() mutable { buf.send(7); }));
        Chan<int> buf2(1);
        EXPECT_TRUE(select3_blocks([=]() mutable { buf2.recv(); }));
        // closed channels: receives never block; sends throw
        EXPECT_FALSE(select3_blocks([=]() mutable { closedch.recv(); }));
        EXPECT_FALSE(select3_blocks([=]() mutable { goro::select(on_recv(closedch)); }));
        EXPECT_FALSE(select3_blocks([=]() mutable {
          for (int v : closedch) (void)v;
        }));
        EXPECT_TRUE(throws_closed([=]() mutable { closedch.send(7); }));
        EXPECT_TRUE(throws_closed([=]() mutable { goro::select(on_send(closedch, 7)); }));
        EXPECT_TRUE(throws_closed([=]() mutable { goro::select(on_send(closedch, 7), on_default()); }));
        EXPECT_TRUE(throws_closed([=]() mutable { closedch.close(); }));
        EXPECT_FALSE(throws_closed([=]() mutable { closedch.recv(); }));
      },
      {.maxprocs = 2});
}

// select5's intent: each shape of a one-case select (send or receive;
// ready or not) alone and with a default, on buffered and unbuffered
// channels, does what the spec says.
TEST(GoChanPrograms, Select5EveryCaseShape) {
  run_checked([] {
    for (std::size_t cap : {0u, 1u}) {
      for (bool ready : {false, true}) {
        for (bool withDefault : {false, true}) {
          // receive case
          {
            Chan<int> c(cap);
            if (ready) {
              if (cap > 0) {
                c.send(1);
              } else {
                goro::go([c]() mutable { c.send(1); });
                ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_sender(c); }));
              }
            }
            if (!ready && !withDefault) continue;  // it would block forever
            int got = 0;
            std::size_t i = withDefault
                                ? goro::select(on_recv(c, [&](std::optional<int> v) { got = *v; }), on_default())
                                : goro::select(on_recv(c, [&](std::optional<int> v) { got = *v; }));
            EXPECT_EQ(i, ready ? 0u : 1u) << "recv cap=" << cap << " ready=" << ready;
            EXPECT_EQ(got, ready ? 1 : 0);
          }
          // send case
          {
            Chan<int> c(cap);
            Chan<int> got(1);
            if (ready && cap == 0) {
              goro::go([c, got]() mutable { got.send(*c.recv()); });
              ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(c); }));
            }
            if (!ready && cap > 0) c.send(0);  // full: not ready
            if (!ready && !withDefault) continue;
            std::size_t i = withDefault ? goro::select(on_send(c, 2), on_default()) : goro::select(on_send(c, 2));
            EXPECT_EQ(i, ready ? 0u : 1u) << "send cap=" << cap << " ready=" << ready;
            if (ready) {
              EXPECT_EQ(cap == 0 ? *got.recv() : *c.recv(), 2);
            }
          }
        }
      }
    }
  });
}

// select6 (Go issue 2075): a select that took c2 leaves a stale sudog on
// c1's queue; a later send on c1 must go to a live receiver, not to it.
TEST(GoChanPrograms, Select6StaleCaseDoesNotStealASend) {
  for (int round = 0; round < 100; round++) {
    run_checked([] {
      Chan<bool> c1, c2, c3;
      goro::WaitGroup wg;
      wg.add(2);
      goro::go([&] {
        c1.recv();
        wg.done();
      });
      goro::go([&] {
        bool wrong = false;
        goro::select(on_recv(c1, [&](std::optional<bool>) { wrong = true; }),
                     on_recv(c2, [&](std::optional<bool>) { c3.send(true); }));
        EXPECT_FALSE(wrong);
        c1.recv();
        wg.done();
      });
      goro::go([&] { c2.send(true); });
      c3.recv();
      c1.send(true);
      c1.send(true);
      wg.wait();
    });
  }
}

// select7: every form of receive (plain, one-case select, two-case
// select) against every form of send, each side's operation either the
// first (parked, waiting for the other: seen on the channel's queue) or the
// second: the value arrives and each select takes the case on c.
TEST(GoChanPrograms, Select7EveryFormAgainstEveryForm) {
  using Recv = std::function<int(Chan<int>)>;  // returns the value received
  using Send = std::function<void(Chan<int>)>;
  auto take = [](int& into) { return [&into](std::optional<int> v) { into = v.value_or(-2); }; };
  std::vector<Recv> recvs = {
      [](Chan<int> c) { return c.recv().value_or(-2); },
      [&](Chan<int> c) {
        int v = -1;
        EXPECT_EQ(goro::select(on_recv(c, take(v))), 0u);
        return v;
      },
      [&](Chan<int> c) {
        Chan<int> c2;
        int v = -1;
        EXPECT_EQ(goro::select(on_recv(c, take(v)), on_recv(c2)), 0u);
        return v;
      },
  };
  std::vector<Send> sends = {
      [](Chan<int> c) { c.send(1); },
      [](Chan<int> c) { EXPECT_EQ(goro::select(on_send(c, 1)), 0u); },
      [](Chan<int> c) {
        Chan<int> c2;
        EXPECT_EQ(goro::select(on_send(c, 1), on_send(c2, 1)), 0u);
      },
  };
  run_checked([&] {
    for (std::size_t si = 0; si < sends.size(); si++) {
      for (std::size_t ri = 0; ri < recvs.size(); ri++) {
        const Send& s = sends[si];
        const Recv& r = recvs[ri];
        // (Not SCOPED_TRACE: gtest keeps traces per thread, and a goroutine
        // may resume on another.)
        const std::string forms = "send form " + std::to_string(si) + ", receive form " + std::to_string(ri);
        // The receiver first, parked (select7's own order).
        {
          Chan<int> c;
          Chan<int> got(1);
          goro::go([&, c, got]() mutable { got.send(r(c)); });
          ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_receiver(c); })) << forms;
          s(c);
          EXPECT_EQ(got.recv(), 1) << forms << ", receiver first";
        }
        // The sender first, parked.
        {
          Chan<int> c;
          Chan<bool> sent(1);
          goro::go([&, c, sent]() mutable {
            s(c);
            sent.send(true);
          });
          ASSERT_TRUE(goro::testing::wait_until([&] { return goro::testing::has_sender(c); })) << forms;
          EXPECT_EQ(r(c), 1) << forms << ", sender first";
          EXPECT_EQ(sent.recv(), true) << forms;
        }
      }
    }
  });
}

// powser's intent: power series as streams of coefficients, each
// operation a goroutine reading channels and writing one. 1/(1-x) is all
// ones; its square is the series of (n+1); multiplying by 1-x gives back
// ones; the derivative of the square is (n+1)(n+2).
using Series = Chan<long>;

Series powser_ones() {
  Series out;
  goro::go([out]() mutable {
    for (;;) out.send(1);
  });
  return out;
}

// Two copies of a stream (Go's split).
std::pair<Series, Series> powser_split(Series in) {
  Series a(64), b(64);
  goro::go([in, a, b]() mutable {
    for (;;) {
      long v = *in.recv();
      a.send(v);
      b.send(v);
    }
  });
  return {a, b};
}

// Cauchy product: out[n] = sum a[i] b[n-i], keeping the prefixes.
Series powser_mul(Series a, Series b) {
  Series out;
  goro::go([a, b, out]() mutable {
    std::vector<long> as, bs;
    for (;;) {
      as.push_back(*a.recv());
      bs.push_back(*b.recv());
      long s = 0;
      std::size_t n = as.size() - 1;
      for (std::size_t i = 0; i <= n; i++) s += as[i] * bs[n - i];
      out.send(s);
    }
  });
  return out;
}

Series powser_one_minus_x() {
  Series out;
  goro::go([out]() mutable {
    out.send(1);
    out.send(-1);
    for (;;) out.send(0);
  });
  return out;
}

Series powser_deriv(Series in) {
  Series out;
  goro::go([in, out]() mutable {
    in.recv();  // the constant term vanishes
    for (long n = 1;; n++) out.send(n * *in.recv());
  });
  return out;
}

TEST(GoChanPrograms, PowerSeries) {
  goro::run(
      [] {
        auto [a, b] = powser_split(powser_mul(powser_ones(), powser_ones()));  // 1/(1-x)^2 = sum (n+1) x^n
        Series back = powser_mul(a, powser_one_minus_x());                     // = 1/(1-x)
        Series d = powser_deriv(b);                                            // = sum (n+1)(n+2) x^n... shifted
        for (long n = 0; n < 30; n++) {
          EXPECT_EQ(*back.recv(), 1) << "coefficient " << n;
          EXPECT_EQ(*d.recv(), (n + 1) * (n + 2)) << "coefficient " << n;
        }
        // The pipeline's goroutines are left blocked, as in Go's program.
      },
      {.maxprocs = 2});
}

}  // namespace
