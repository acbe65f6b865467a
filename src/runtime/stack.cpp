// stack.cpp — goroutine stack reservation, guards and the stack pool.
// Invariants: chunks are only unmapped by stackfreeall (after run); a pooled
// stack's pages are decommitted. Mirrors stack.go (stackalloc, stackfree).
//
// A million stacks must fit in Linux's 65,530 mappings per process, so
// stacks are carved from large reservations, and guards are kernel guard
// markers (MADV_GUARD_INSTALL, Linux 6.13+) that do not split the mapping.
// On older kernels guards fall back to mprotect, which costs two mappings
// per stack and limits the count to about 30,000.
#include "stack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <vector>

#include "panic.hpp"
#include "san.hpp"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORO_HAVE_VALGRIND 1
#endif
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace goro::runtime {
namespace {

struct Chunk {
  std::uintptr_t base;
  std::size_t len;
};

struct Pool {
  std::mutex mu;
  std::size_t size = kDefaultStackSize;  // usable bytes per stack
  std::vector<Chunk> chunks;
  std::uintptr_t next = 0, end = 0;  // uncarved part of the newest chunk
  std::size_t chunk_stacks = 16;     // stacks per chunk; doubles up to 1024
  std::vector<Stack> free;
  std::size_t in_use = 0;
  int guard_mode = 0;  // 0 unknown, 1 markers, 2 mprotect
};

Pool pool;

std::size_t pagesize() {
  static const std::size_t ps = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return ps;
}

void install_guard(std::uintptr_t lo) {
  void* g = reinterpret_cast<void*>(lo - kStackGuardSize);
  if (pool.guard_mode != 2) {
    if (madvise(g, kStackGuardSize, MADV_GUARD_INSTALL) == 0) {
      pool.guard_mode = 1;
      return;
    }
    if (pool.guard_mode == 1) detail::fatal("stackalloc: MADV_GUARD_INSTALL failed");
    pool.guard_mode = 2;
  }
  if (mprotect(g, kStackGuardSize, PROT_NONE) != 0) detail::fatal("stackalloc: mprotect of the guard failed");
}

}  // namespace

void stackinit(std::size_t size) {
  std::lock_guard<std::mutex> l(pool.mu);
  std::size_t ps = pagesize();
  size = (size + ps - 1) & ~(ps - 1);
  if (size != pool.size) {
    // Pooled stacks of another size are of no use: forget them (their
    // chunks stay mapped until stackfreeall).
    pool.free.clear();
    pool.next = pool.end = 0;
  }
  pool.size = size;
}

std::size_t stack_size() { return pool.size; }

Stack stackalloc() {
  std::lock_guard<std::mutex> l(pool.mu);
  pool.in_use++;
  if (!pool.free.empty()) {
    Stack s = pool.free.back();
    pool.free.pop_back();
    san::unpoison(s.lo, s.hi - s.lo);  // its last goroutine's frames are dead
    return s;
  }
  std::size_t stride = pool.size + kStackGuardSize;
  if (pool.next + stride > pool.end) {
    std::size_t len = stride * pool.chunk_stacks;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) detail::fatal("runtime: cannot allocate goroutine stack (out of address space)");
    pool.chunks.push_back({reinterpret_cast<std::uintptr_t>(p), len});
    pool.next = reinterpret_cast<std::uintptr_t>(p);
    pool.end = pool.next + len;
    if (pool.chunk_stacks < 1024) pool.chunk_stacks *= 2;
  }
  Stack s;
  s.lo = pool.next + kStackGuardSize;
  s.hi = s.lo + pool.size;
  pool.next += stride;
  install_guard(s.lo);
#ifdef GORO_HAVE_VALGRIND
  VALGRIND_STACK_REGISTER(reinterpret_cast<void*>(s.lo), reinterpret_cast<void*>(s.hi));
#endif
  return s;
}

void stackfree(Stack s) {
  // Decommit outside the lock: madvise may take a while (TLB shootdowns).
  if (s.hi - s.lo == pool.size) {
    madvise(reinterpret_cast<void*>(s.lo), s.hi - s.lo, MADV_DONTNEED);
  }
  std::lock_guard<std::mutex> l(pool.mu);
  pool.in_use--;
  if (s.hi - s.lo == pool.size) pool.free.push_back(s);
}

void stackfree_batch(std::vector<Stack>& v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  std::size_t size = pool.size;
  std::size_t i = 0;
  while (i < v.size()) {
    std::size_t j = i + 1;
    while (j < v.size() && v[j].lo == v[j - 1].hi + kStackGuardSize) j++;
    madvise(reinterpret_cast<void*>(v[i].lo), v[j - 1].hi - v[i].lo, MADV_DONTNEED);
    i = j;
  }
  std::lock_guard<std::mutex> l(pool.mu);
  for (const Stack& s : v) {
    pool.in_use--;
    if (s.hi - s.lo == size) pool.free.push_back(s);
  }
}

void stackfreeall(const std::vector<Stack>& keep) {
  std::lock_guard<std::mutex> l(pool.mu);
  for (const Chunk& c : pool.chunks) {
    // Unmap the chunk around the kept stacks (each with its guard below it).
    std::uintptr_t from = c.base, end = c.base + c.len;
    std::vector<Stack> in;
    for (const Stack& s : keep) {
      if (s.lo > c.base && s.hi <= end) in.push_back(s);
    }
    std::sort(in.begin(), in.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
    for (const Stack& s : in) {
      std::uintptr_t lo = s.lo - kStackGuardSize;
      if (lo > from) munmap(reinterpret_cast<void*>(from), lo - from);
      from = s.hi;
    }
    if (end > from) munmap(reinterpret_cast<void*>(from), end - from);
  }
  pool.chunks.clear();
  pool.free.clear();
  pool.free.shrink_to_fit();
  pool.next = pool.end = 0;
  pool.chunk_stacks = 16;
  pool.in_use = 0;
}

void stackunmap(Stack s) { munmap(reinterpret_cast<void*>(s.lo - kStackGuardSize), s.hi - s.lo + kStackGuardSize); }

std::size_t stacks_in_use() {
  std::lock_guard<std::mutex> l(pool.mu);
  return pool.in_use;
}

bool stack_guard_markers() { return pool.guard_mode == 1; }

}  // namespace goro::runtime
