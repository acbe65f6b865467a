// foreign.cpp — threads outside the runtime: plain threads that call go(),
// ready goroutines or block in the runtime, counted so that teardown waits
// for them and checkdead does not call a deadlock what one may still end.
// Invariants: counts are per run (a generation); see foreign.hpp. goro's
// own (Go has no plain threads).

#include "foreign.hpp"

#include "lock_futex.hpp"

namespace goro::runtime {

std::atomic<std::int32_t> foreign_calls{0};

void foreign_register() {
  struct Registration {
    std::uint32_t gen = 0;
    ~Registration() { sched.nforeign.add(gen, -1); }  // a no-op once its run is over
  };
  static thread_local Registration reg;
  std::uint32_t gen = sched.nforeign.gen();
  if (reg.gen != gen && sched.nforeign.add(gen, 1)) reg.gen = gen;
}

std::uint32_t foreign_block() {
  std::uint32_t gen = sched.nforeignblocked.gen();
  return sched.nforeignblocked.add(gen, 1) ? gen : 0;
}

void foreign_unblock(std::uint32_t token) {
  if (token != 0) sched.nforeignblocked.add(token, -1);
}

std::atomic<std::int32_t> foreign_wakers{0};

void foreign_newrun(std::uint32_t gen) {
  sched.nforeign.reset(gen);
  sched.nforeignblocked.reset(gen);
}

std::int32_t foreign_threads() { return sched.nforeign.value(); }

bool foreign_may_wake(std::int32_t nforeign) {
  return nforeign - sched.nforeignblocked.value() > 0 || foreign_calls.load(std::memory_order_seq_cst) != 0 ||
         foreign_wakers.load(std::memory_order_seq_cst) != 0;
}

// seq_cst, as ForeignCall's fetch_add and load of exiting: a plain thread
// either sees exiting and stays out, or is counted before this looks.
void foreign_wait_calls() {
  while (foreign_calls.load(std::memory_order_seq_cst) != 0) osyield();
}

void foreign_wait_wakers() {
  while (foreign_wakers.load(std::memory_order_seq_cst) != 0) osyield();
}

}  // namespace goro::runtime
