// fixtures.hpp — helpers shared by the runtime tests: run a test body as
// goroutine 1 and fail if it leaves goroutines or stacks behind.
#pragma once

#include <gtest/gtest.h>

#include <chrono>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace goro::testing {

// Runs body as the main goroutine. When body returns, every goroutine it
// started must have finished (num_goroutine back to 1, waiting a little
// for exiting ones), and after run() no stack is left in use.
template <class F>
void run_checked(F&& body, Options opts = {}) {
  int leaked = -1;
  int rc = goro::run(
      [&] {
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
        return 7;
      },
      opts);
  EXPECT_EQ(rc, 7);
  EXPECT_EQ(leaked, 0) << "goroutines still alive when the test body returned";
  EXPECT_EQ(stacks_in_use(), 0u) << "stacks not given back after run()";
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

}  // namespace goro::testing
