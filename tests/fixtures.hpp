// fixtures.hpp — helpers shared by the runtime tests: run a test body as
// goroutine 1 and fail if it leaves goroutines, stacks or threads behind;
// wait for a state; retry a timing-dependent check with a growing margin.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace goro::testing {

// Runs body as the main goroutine. When body returns, every goroutine it
// started must have finished (num_goroutine back to 1, waiting a little
// for exiting ones), and with them every sudog they acquired must be back
// (sudogs in use as before body); after run() no stack is left in use, no
// timer the run made is left alive (the heaps' references went with the
// run: one a handle still holds is a leak), and the runtime's threads are
// gone (no more threads than before, waiting a little for exiting ones).
template <class F>
void run_checked(F&& body, Options opts = {}) {
  const int threads_before = thread_count();
  const std::int64_t timers_before = timers_alive();
  int leaked = -1;
  std::int64_t sudogs_before = 0, sudogs_after = 0;
  int rc = goro::run(
      [&] {
        sudogs_before = sudogs_in_use();
        body();
        // num_goroutine sums per-P counts without a lock (as Go's does),
        // so one reading may be off for a moment: three in a row must agree.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        int agree = 0;
        while (agree < 3 && std::chrono::steady_clock::now() < deadline) {
          agree = goro::num_goroutine() > 1 ? 0 : agree + 1;
          goro::yield();
        }
        leaked = agree == 3 ? 0 : goro::num_goroutine() - 1;
        // The Ps' counts are read without their owners' locks: a moment
        // after the last goroutine released its sudog, this one may still
        // see that P's count from before.
        sudogs_after = sudogs_in_use();
        for (int i = 0; i < 100 && sudogs_after != sudogs_before; i++) {
          goro::yield();
          sudogs_after = sudogs_in_use();
        }
        return 7;
      },
      opts);
  EXPECT_EQ(rc, 7);
  EXPECT_EQ(leaked, 0) << "goroutines still alive when the test body returned";
  EXPECT_EQ(sudogs_after, sudogs_before) << "sudogs acquired and not released";
  EXPECT_EQ(stacks_in_use(), 0u) << "stacks not given back after run()";
  EXPECT_EQ(timers_alive(), timers_before) << "timers left alive after run()";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (thread_count() > threads_before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_LE(thread_count(), threads_before) << "threads left behind by run()";
}

// Yields (or, on a plain thread, sleeps briefly) until pred() holds or 10 s
// pass; returns whether it holds. For "once the other goroutine is
// blocked" steps, which must not depend on how fast a loaded machine (or a
// sanitizer) runs it.
template <class Pred>
bool wait_until(Pred&& pred) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    goro::yield();
  }
  return true;
}

// For a check whose verdict depends on timing (a deadline met, an order
// of expiry, a rate): attempt(k) runs it with margin k = 0, 1, 2... (the
// caller widens its durations or bounds with k) and returns "" when the
// claim held, else what went wrong. The first success passes; a loaded
// machine may fail the early attempts, a broken runtime fails them all.
// Go's timing tests do the same (TestAfterQueuing, TestReset, TestTicker).
template <class F>
::testing::AssertionResult with_growing_margin(int attempts, F&& attempt) {
  std::string failures;
  for (int k = 0; k < attempts; k++) {
    std::string why = attempt(k);
    if (why.empty()) return ::testing::AssertionSuccess();
    std::printf("attempt %d failed: %s\n", k, why.c_str());
    failures += "\n  attempt " + std::to_string(k) + ": " + why;
  }
  return ::testing::AssertionFailure() << "every attempt failed:" << failures;
}

// Milliseconds in d, for messages.
template <class Rep, class Period>
double ms(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace goro::testing
