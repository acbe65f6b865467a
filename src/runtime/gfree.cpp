// gfree.cpp — dead Gs kept for reuse (per-P and global free lists), new
// Gs (malg), goroutine ids in per-P batches, and returning idle stacks to
// the kernel.
// Invariants: a G on a free list is _Gdead; the global list changes under
// sched.gFree.lock. Mirrors proc.go's gfput/gfget/gfpurge and newproc1's
// goid cache.

#include <vector>

#include "panic.hpp"
#include "proc.hpp"
#include "san.hpp"
#include "stack.hpp"

namespace goro::runtime {

namespace {

constexpr std::uint32_t kGoidCacheBatch = 16;  // Go's _GoidCacheBatch

// Dead Gs on the global free list keep their (committed) stacks up to this
// many; the stacks of the rest go back to the kernel when an M goes idle.
constexpr std::int32_t kGlobalStackKeep = 4096;

constexpr std::int64_t kScavengePeriodNS = std::int64_t{100} * 1000 * 1000;

// Put gp on the global free list: the stack list if it has a stack, else
// the noStack list. sched.gFree.lock must be held.
void gfputglobal_locked(G* gp) {
  if (gp->stack.lo != 0) {
    sched.gFree.stack.push(gp);
    sched.gFree.nstack.fetch_add(1, std::memory_order_relaxed);
  } else {
    sched.gFree.noStack.push(gp);
  }
  sched.gFree.n.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

void gfputglobal(G* gp) {
  LockGuard l(sched.gFree.lock);
  gfputglobal_locked(gp);
}

void gfput(P* pp, G* gp) {
  if (readgstatus(gp) != _Gdead) detail::fatal("gfput: bad status (not Gdead)");
  pp->gFree.list.push(gp);
  std::int32_t n = pp->gFree.n.load(std::memory_order_relaxed) + 1;
  if (n >= 64) {
    // Move a batch of 32 to the global list, where other Ps can get them.
    GList batch;
    while (n >= 32) {
      batch.push(pp->gFree.list.pop());
      n--;
    }
    pp->gFree.n.store(n, std::memory_order_relaxed);
    LockGuard l(sched.gFree.lock);
    while (G* g = batch.pop()) gfputglobal_locked(g);
    return;
  }
  pp->gFree.n.store(n, std::memory_order_relaxed);
}

// scavengegstacks: give back the stacks of dead Gs that sat unused on the
// global free list for a whole period: the low-water mark of the list since
// the last scavenge, less kGlobalStackKeep. Called by an M about to sleep,
// at most every kScavengePeriodNS, so a burst of goroutines (whose free
// list churns) is never slowed by madvise and re-faulting, while the
// memory of a burst that ended goes back. (Go frees them at each GC.)
void scavengegstacks() {
  if (sched.gFree.nstack.load(std::memory_order_relaxed) <= kGlobalStackKeep) return;
  std::int64_t now = nanotime();
  std::int64_t last = sched.lastscavenge.load(std::memory_order_relaxed);
  if (now - last < kScavengePeriodNS || !sched.lastscavenge.compare_exchange_strong(last, now)) return;
  std::vector<G*> gs;
  {
    LockGuard l(sched.gFree.lock);
    std::int32_t excess = sched.gFree.nstackmin - kGlobalStackKeep;
    if (excess > 0) {
      // The coldest Gs are at the far end of the LIFO list.
      std::int32_t skip = sched.gFree.nstack.load(std::memory_order_relaxed) - excess;
      G* cut = nullptr;
      G* g = sched.gFree.stack.head;
      for (std::int32_t i = 0; i < skip && g != nullptr; i++) cut = g, g = g->schedlink;
      if (cut != nullptr)
        cut->schedlink = nullptr;
      else
        sched.gFree.stack.head = nullptr;
      for (; g != nullptr; g = g->schedlink) gs.push_back(g);
      sched.gFree.nstack.fetch_sub(static_cast<std::int32_t>(gs.size()), std::memory_order_relaxed);
    }
    sched.gFree.nstackmin = sched.gFree.nstack.load(std::memory_order_relaxed);
  }
  if (gs.empty()) return;
  std::vector<Stack> stacks;
  stacks.reserve(gs.size());
  for (G* g : gs) {
    stacks.push_back(g->stack);
    g->stack = Stack{};
  }
  stackfree_batch(stacks);
  LockGuard l(sched.gFree.lock);
  for (G* g : gs) sched.gFree.noStack.push(g);
}

// gfpurge: move all of pp's free Gs to the global list. Done when pp goes
// idle (Go does it only when a P is destroyed): a goroutine spawning on
// another P would otherwise allocate new Gs, and fault in new stacks, while
// up to 63 dead ones sit on the idle P.
void gfpurge(P* pp) {
  if (pp->gFree.n.load(std::memory_order_relaxed) == 0) return;
  // The P's count drops first, so that gcount, which reads the counts
  // racily, tends to see these Gs on neither list (one more goroutine
  // alive, for a moment) rather than on both.
  pp->gFree.n.store(0, std::memory_order_relaxed);
  LockGuard l(sched.gFree.lock);
  while (G* g = pp->gFree.list.pop()) gfputglobal_locked(g);
}

namespace {

// Take one G from the global free list (the caller holds sched.gFree.lock).
G* gfget_global_locked() {
  G* gp = sched.gFree.stack.pop();
  if (gp != nullptr) {
    std::int32_t n = sched.gFree.nstack.fetch_sub(1, std::memory_order_relaxed) - 1;
    if (n < sched.gFree.nstackmin) sched.gFree.nstackmin = n;
  } else {
    gp = sched.gFree.noStack.pop();
    if (gp == nullptr) return nullptr;
  }
  sched.gFree.n.fetch_sub(1, std::memory_order_relaxed);
  return gp;
}

}  // namespace

// gfget: a dead G from pp's free list, refilled in batches of 32 from the
// global list; pp may be nullptr (a thread that is not an M).
G* gfget(P* pp) {
  G* gp = nullptr;
  if (pp == nullptr) {
    LockGuard l(sched.gFree.lock);
    gp = gfget_global_locked();
  } else {
    if (pp->gFree.list.empty() && sched.gFree.n.load(std::memory_order_relaxed) > 0) {
      LockGuard l(sched.gFree.lock);
      std::int32_t n = pp->gFree.n.load(std::memory_order_relaxed);
      while (n < 32) {
        G* g = gfget_global_locked();
        if (g == nullptr) break;
        pp->gFree.list.push(g);
        n++;
      }
      pp->gFree.n.store(n, std::memory_order_relaxed);
    }
    gp = pp->gFree.list.pop();
    if (gp != nullptr) pp->gFree.n.store(pp->gFree.n.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  if (gp == nullptr) return nullptr;
  if (gp->stack.lo == 0) {
    gp->stack = stackalloc();
  } else {
    san::unpoison(gp->stack.lo, gp->stack.hi - gp->stack.lo);
  }
  return gp;
}

// malg: a new G with a stack, registered in allgs, status _Gdead.
G* malg() {
  G* gp = new G;
  gp->stack = stackalloc();
  casgstatus(gp, _Gidle, _Gdead);
  LockGuard l(allglock);
  allgs.push_back(gp);
  allglen.fetch_add(1, std::memory_order_relaxed);
  return gp;
}

std::uint64_t newgoid(P* pp) {
  if (pp == nullptr) return sched.goidgen.fetch_add(1) + 1;
  if (pp->goidcache == pp->goidcacheend) {
    // Sched.goidgen is the last allocated id; this batch is
    // [goidgen+1, goidgen+batch].
    pp->goidcache = sched.goidgen.fetch_add(kGoidCacheBatch) + 1;
    pp->goidcacheend = pp->goidcache + kGoidCacheBatch;
  }
  return pp->goidcache++;
}

}  // namespace goro::runtime
