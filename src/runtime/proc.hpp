// proc.hpp — the scheduler's internal interface between runtime files.
// Invariant: functions with an _m suffix run on g0 (reached through mcall);
// the rest run on a goroutine's stack or on g0. Mirrors proc.go's exports.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime2.hpp"
#include "tls.hpp"

namespace goro::runtime {

extern Sched sched;
extern std::vector<P*> allp;
extern std::int32_t gomaxprocs;
extern M* allm;
extern Mutex allglock;
extern std::vector<G*> allgs;
extern PMask idlepMask;
extern std::atomic<bool> runtime_active;

// casgstatus: the one way a G's status changes; an illegal transition or a
// status other than `from` is a fatal error.
void casgstatus(G* gp, std::uint32_t from, std::uint32_t to);
inline std::uint32_t readgstatus(const G* gp) { return gp->atomicstatus.load(std::memory_order_acquire); }

// Park the current goroutine. On g0, after gp is _Gwaiting, unlockf(gp, lock)
// runs; if it returns false gp resumes at once, else it stays parked until
// goready. unlockf must not block.
void gopark(bool (*unlockf)(G*, void*), void* lock, WaitReason reason);
// Make a parked gp runnable: it runs next on the caller's P (runnext,
// inheriting the time slice), or goes on the global queue from a thread
// that holds no P.
void goready(G* gp);

// Go's randomOrder: visit 0..count-1 in an order given by a random start and
// a stride coprime with count, so every P is visited exactly once.
struct RandomEnum {
  std::uint32_t i, count, pos, inc;
  bool done() const { return i == count; }
  void next() {
    i++;
    pos = (pos + inc) % count;
  }
  std::uint32_t position() const { return pos; }
};
struct RandomOrder {
  std::uint32_t count = 0;
  std::vector<std::uint32_t> coprimes;
  void reset(std::uint32_t n);
  RandomEnum start(std::uint32_t i) const {
    return RandomEnum{0, count, i % count, coprimes[(i / count) % coprimes.size()]};
  }
};
extern RandomOrder stealOrder;

// Go's goyield: like yield, but the goroutine goes to the tail of its P's
// local run queue (semrelease's handoff uses it).
void goyield();

std::int64_t nanotime();
std::uint32_t fastrand();
// Goroutines alive in the current run (Go's gcount).
std::int32_t gcount();

}  // namespace goro::runtime
