// goro/debug.hpp — observability (Go: runtime/debug, GODEBUG).
// Counters are cumulative over the current run(); reading them is racy by
// nature (each P updates its own) but every field is a coherent snapshot of
// one counter.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

namespace goro::debug {

struct Stats {
  int goroutines = 0;                // alive now (num_goroutine)
  int threads = 0;                   // threads of the runtime (Ms and sysmon) not exited
  int maxprocs = 0;                  // Ps
  int idle_procs = 0;                // Ps on the idle list
  int spinning_threads = 0;          // Ms spinning for work
  int idle_threads = 0;              // Ms parked on the idle list
  int global_runqueue = 0;           // Gs on the global run queue
  std::vector<int> local_runqueues;  // per P: ring length (+1 if runnext is set)

  std::uint64_t goroutines_created = 0;
  std::uint64_t context_switches = 0;    // goroutines switched to (execute)
  std::uint64_t steals = 0;              // successful runqsteal calls
  std::uint64_t stolen_goroutines = 0;   // goroutines moved by them
  std::uint64_t preemptions = 0;         // time slices ended by the runtime (all kinds)
  std::uint64_t async_preemptions = 0;   // of which by the preemption signal
  std::uint64_t unannounced_blocks = 0;  // Ps handed off from calls nobody announced (blocked in the kernel)
  std::uint64_t syscall_handoffs = 0;    // Ps handed off from a system call
  std::uint64_t parks = 0;               // gopark
  std::uint64_t wakeups = 0;             // goready
};

// A snapshot of the scheduler's state and counters. All zero outside run().
Stats stats();

// Every goroutine of the current run, in Go's traceback header format:
// `goroutine N [state]:` with Go's wait-reason strings.
void dump_goroutines(std::ostream& out);

}  // namespace goro::debug
