// stack_test.cpp — the goroutine stack pool (src/runtime/stack.cpp:
// stackinit, stackalloc, stackfree, stackfree_batch, stackfreeall,
// stackunmap) driven directly, outside a run: stacks are page-aligned and
// of the configured size, carved from chunks with a guard below each that
// faults (checked by probing, in /proc/self/maps, and as the runtime's
// "stack overflow" in a run), freed stacks are reused and their memory
// given back to the kernel, and stackfreeall unmaps all but the kept ones.
#include "stack.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "export_test.hpp"
#include "goro/goro.hpp"

namespace {

namespace rt = goro::runtime;
using rt::kStackGuardSize;
using rt::Stack;

std::size_t page() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

// Whether the kernel can read the byte at a (a write from it to a pipe):
// EFAULT for a guard, whether a guard marker or PROT_NONE, without a signal.
class Prober {
 public:
  Prober() {
    if (pipe(fd_) != 0) std::abort();
  }
  ~Prober() {
    close(fd_[0]);
    close(fd_[1]);
  }
  bool readable(std::uintptr_t a) {
    ssize_t n = write(fd_[1], reinterpret_cast<const void*>(a), 1);
    if (n == 1) {
      char c;
      if (read(fd_[0], &c, 1) != 1) std::abort();
      return true;
    }
    if (errno != EFAULT) std::abort();
    return false;
  }

 private:
  int fd_[2];
};

// Pages of [lo, hi) resident in memory; -1 if part of it is not mapped.
long resident_pages(std::uintptr_t lo, std::uintptr_t hi) {
  std::vector<unsigned char> v((hi - lo + page() - 1) / page());
  if (mincore(reinterpret_cast<void*>(lo), hi - lo, v.data()) != 0) return errno == ENOMEM ? -1 : -2;
  long n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}
long pages_in(const Stack& s) { return static_cast<long>((s.hi - s.lo) / page()); }

// Writes a pattern over every page of s (committing them).
void fill(const Stack& s, unsigned char v) { std::memset(reinterpret_cast<void*>(s.lo), v, s.hi - s.lo); }
bool filled_with(const Stack& s, unsigned char v) {
  for (std::uintptr_t a = s.lo; a < s.hi; a += 512) {
    if (*reinterpret_cast<const unsigned char*>(a) != v) return false;
  }
  return *reinterpret_cast<const unsigned char*>(s.hi - 1) == v;
}

// The line of /proc/self/maps whose range holds a ("" if none).
std::string mapping_of(std::uintptr_t a) {
  std::ifstream f("/proc/self/maps");
  std::string line;
  while (std::getline(f, line)) {
    std::uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) return line;
  }
  return "";
}
std::string perms(const std::string& mapping) {
  std::istringstream in(mapping);
  std::string range, p;
  in >> range >> p;
  return p;
}

// The pool is global: each test starts from an empty one at the default
// size and leaves it empty (every chunk unmapped).
class StackPool : public ::testing::Test {
 protected:
  void SetUp() override {
    rt::stackfreeall();
    rt::stackinit(rt::kDefaultStackSize);
    ASSERT_EQ(rt::stacks_in_use(), 0u);
  }
  void TearDown() override {
    rt::stackfreeall();
    rt::stackinit(rt::kDefaultStackSize);
  }
};

// Sizes are rounded up to whole pages; every stack is page-aligned, of
// that size, writable from end to end, and disjoint from every other one
// and its guard, across several chunks. Within a chunk stacks are carved
// one after another, each above its guard.
TEST_F(StackPool, StacksAreAlignedSizedAndDisjoint) {
  rt::stackinit(100 * 1024 + 123);
  const std::size_t size = (100 * 1024 + 123 + page() - 1) / page() * page();
  EXPECT_EQ(rt::stack_size(), size);
  constexpr int kN = 60;  // more than the first two chunks (16 and 32 stacks)
  std::vector<Stack> v;
  for (int i = 0; i < kN; i++) {
    Stack s = rt::stackalloc();
    EXPECT_EQ(s.lo % page(), 0u);
    EXPECT_EQ(s.hi - s.lo, size);
    v.push_back(s);
  }
  EXPECT_EQ(rt::stacks_in_use(), static_cast<std::size_t>(kN));
  EXPECT_EQ(v[1].lo, v[0].hi + kStackGuardSize) << "stacks of a chunk are not carved one after another";
  std::vector<Stack> sorted = v;
  std::sort(sorted.begin(), sorted.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  for (std::size_t i = 1; i < sorted.size(); i++) {
    EXPECT_GE(sorted[i].lo - kStackGuardSize, sorted[i - 1].hi) << "a stack overlaps the guard or stack below it";
  }
  for (std::size_t i = 0; i < v.size(); i++) fill(v[i], static_cast<unsigned char>(i + 1));
  for (std::size_t i = 0; i < v.size(); i++) EXPECT_TRUE(filled_with(v[i], static_cast<unsigned char>(i + 1)));
  for (const Stack& s : v) rt::stackfree(s);
  EXPECT_EQ(rt::stacks_in_use(), 0u);
}

// Every page of the guard below a stack is unreadable, the stack's first
// and last bytes are not, and neither is the top of the stack below it.
// With kernel guard markers the guards do not split the chunk's mapping;
// with the mprotect fallback each guard is a mapping of its own, with no
// access.
TEST_F(StackPool, GuardBelowEveryStackFaults) {
  Prober probe;
  std::vector<Stack> v;
  for (int i = 0; i < 8; i++) v.push_back(rt::stackalloc());
  for (const Stack& s : v) {
    EXPECT_TRUE(probe.readable(s.lo));
    EXPECT_TRUE(probe.readable(s.hi - 1));
    for (std::uintptr_t a = s.lo - kStackGuardSize; a < s.lo; a += page()) {
      EXPECT_FALSE(probe.readable(a)) << "guard page at lo-" << (s.lo - a) << " is accessible";
    }
    EXPECT_FALSE(probe.readable(s.lo - 1));
  }
  EXPECT_TRUE(probe.readable(v[1].lo - kStackGuardSize - 1)) << "the stack below the guard is not usable";
  if (rt::stack_guard_markers()) {
    // The eight stacks and their guards are one mapping: the chunk's.
    EXPECT_EQ(mapping_of(v.front().lo - kStackGuardSize), mapping_of(v.back().hi - 1))
        << "guard markers split the chunk's mapping";
    for (const Stack& s : v) {
      std::string m = mapping_of(s.lo - 1);
      EXPECT_EQ(m, mapping_of(s.lo)) << "the guard is a mapping of its own: " << m;
      EXPECT_EQ(perms(m), "rw-p");
    }
  } else {
    for (const Stack& s : v) {
      std::string m = mapping_of(s.lo - 1);
      EXPECT_EQ(perms(m), "---p") << m;
      EXPECT_EQ(m, mapping_of(s.lo - kStackGuardSize));
      EXPECT_NE(m, mapping_of(s.lo));
    }
  }
  for (const Stack& s : v) rt::stackfree(s);
}

// A freed stack is the next one handed out (the pool is a stack), with its
// memory given back: no page resident after the free, zeros when read
// again. The guard stays.
TEST_F(StackPool, FreedStackIsReusedWithItsMemoryGivenBack) {
  Prober probe;
  Stack a = rt::stackalloc();
  fill(a, 0xAB);
  EXPECT_EQ(resident_pages(a.lo, a.hi), pages_in(a));
  rt::stackfree(a);
  EXPECT_EQ(rt::stacks_in_use(), 0u);
  EXPECT_EQ(resident_pages(a.lo, a.hi), 0) << "a freed stack's pages were not given back";
  Stack b = rt::stackalloc();
  EXPECT_EQ(b.lo, a.lo);
  EXPECT_EQ(b.hi, a.hi);
  EXPECT_EQ(rt::stacks_in_use(), 1u);
  EXPECT_TRUE(filled_with(b, 0)) << "a reused stack still holds its last user's data";
  EXPECT_FALSE(probe.readable(b.lo - 1));
  EXPECT_FALSE(probe.readable(b.lo - kStackGuardSize));
  rt::stackfree(b);
}

// Freed stacks, in any order, are all handed out again before any new one
// is carved, last freed first.
TEST_F(StackPool, EveryFreedStackIsReusedBeforeANewOne) {
  constexpr int kN = 40;
  std::vector<Stack> v;
  for (int i = 0; i < kN; i++) v.push_back(rt::stackalloc());
  std::mt19937 rng(7);
  std::shuffle(v.begin(), v.end(), rng);
  for (const Stack& s : v) rt::stackfree(s);
  std::set<std::uintptr_t> freed;
  for (const Stack& s : v) freed.insert(s.lo);
  for (int i = kN - 1; i >= 0; i--) {
    Stack s = rt::stackalloc();
    EXPECT_EQ(s.lo, v[static_cast<std::size_t>(i)].lo) << "not last-freed-first";
    freed.erase(s.lo);
  }
  EXPECT_TRUE(freed.empty());
  Stack fresh = rt::stackalloc();
  for (const Stack& s : v) EXPECT_NE(fresh.lo, s.lo) << "a stack in use was handed out twice";
  EXPECT_EQ(rt::stacks_in_use(), static_cast<std::size_t>(kN + 1));
  for (const Stack& s : v) rt::stackfree(s);
  rt::stackfree(fresh);
  EXPECT_EQ(rt::stacks_in_use(), 0u);
}

// stackfree_batch gives back runs of address-adjacent stacks with one
// madvise over each run, guards between them included: the freed stacks'
// pages go, a stack in the middle of a run that is not freed keeps its
// data, the guards keep faulting, and the freed stacks are pooled.
TEST_F(StackPool, BatchFreeGivesBackRunsAndKeepsGuards) {
  Prober probe;
  constexpr int kN = 8;
  std::vector<Stack> v;
  for (int i = 0; i < kN; i++) v.push_back(rt::stackalloc());
  for (int i = 1; i < kN; i++) ASSERT_EQ(v[i].lo, v[i - 1].hi + kStackGuardSize) << "not one chunk";
  for (int i = 0; i < kN; i++) fill(v[i], static_cast<unsigned char>(0x10 + i));
  const Stack kept = v[3];
  std::vector<Stack> batch;
  for (int i : {6, 0, 2, 7, 1, 4, 5}) batch.push_back(v[i]);
  rt::stackfree_batch(batch);
  EXPECT_EQ(rt::stacks_in_use(), 1u);
  for (int i = 0; i < kN; i++) {
    if (i == 3) continue;
    EXPECT_EQ(resident_pages(v[i].lo, v[i].hi), 0) << "stack " << i << " still resident";
  }
  EXPECT_TRUE(filled_with(kept, 0x13)) << "the stack between two freed runs lost its data";
  EXPECT_EQ(resident_pages(kept.lo, kept.hi), pages_in(kept));
  for (int i = 0; i < kN; i++) {
    EXPECT_FALSE(probe.readable(v[i].lo - 1)) << "guard of stack " << i << " lost";
    EXPECT_FALSE(probe.readable(v[i].lo - kStackGuardSize)) << "guard of stack " << i << " lost";
  }
  std::set<std::uintptr_t> freed;
  for (const Stack& s : batch) freed.insert(s.lo);
  std::vector<Stack> again;
  for (int i = 0; i < kN - 1; i++) {
    again.push_back(rt::stackalloc());
    EXPECT_EQ(freed.erase(again.back().lo), 1u) << "a batch-freed stack was not pooled";
    EXPECT_TRUE(filled_with(again.back(), 0));
  }
  again.push_back(kept);
  rt::stackfree_batch(again);
  EXPECT_EQ(rt::stacks_in_use(), 0u);
}

// A new stack size makes the pooled stacks useless: they are not handed
// out again, and a stack of the old size freed afterwards is not pooled.
TEST_F(StackPool, ResizeForgetsStacksOfTheOldSize) {
  const std::size_t small = std::size_t{64} * 1024, large = std::size_t{128} * 1024;
  rt::stackinit(small);
  Stack a = rt::stackalloc();
  Stack c = rt::stackalloc();
  rt::stackfree(a);
  rt::stackinit(large);
  rt::stackfree(c);  // an old-size stack coming back after the change
  EXPECT_EQ(rt::stacks_in_use(), 0u);
  for (int i = 0; i < 3; i++) {
    Stack b = rt::stackalloc();
    EXPECT_EQ(b.hi - b.lo, large);
    EXPECT_NE(b.lo, a.lo);
    EXPECT_NE(b.lo, c.lo);
    EXPECT_TRUE(b.lo >= c.hi || b.hi + kStackGuardSize <= c.lo) << "a new stack overlaps an old one";
    rt::stackfree(b);
  }
}

// stackfreeall unmaps every chunk, except the stacks it is told to keep
// (with their guards): those stay mapped with their data until stackunmap.
// The count in use starts over.
TEST_F(StackPool, FreeAllUnmapsAllButTheKeptStacks) {
  Prober probe;
  constexpr int kN = 40;  // three chunks
  std::vector<Stack> v;
  for (int i = 0; i < kN; i++) v.push_back(rt::stackalloc());
  const Stack keep_first = v[0], keep_mid = v[20];  // the start of the first chunk; inside the second
  fill(keep_first, 0x5A);
  fill(keep_mid, 0xA5);
  rt::stackfree(v[5]);  // pooled stacks go too
  rt::stackfreeall({keep_first, keep_mid});
  EXPECT_EQ(rt::stacks_in_use(), 0u);
  for (int i = 0; i < kN; i++) {
    if (i == 0 || i == 20) continue;
    EXPECT_EQ(resident_pages(v[i].lo, v[i].hi), -1) << "stack " << i << " still mapped";
    EXPECT_EQ(resident_pages(v[i].lo - kStackGuardSize, v[i].lo), -1) << "guard of stack " << i << " still mapped";
  }
  EXPECT_TRUE(filled_with(keep_first, 0x5A));
  EXPECT_TRUE(filled_with(keep_mid, 0xA5));
  EXPECT_FALSE(probe.readable(keep_mid.lo - 1));
  EXPECT_FALSE(probe.readable(keep_first.lo - kStackGuardSize));
  // A new stack after freeall comes from a new chunk, not from a kept one.
  Stack n = rt::stackalloc();
  EXPECT_TRUE(n.lo != keep_first.lo && n.lo != keep_mid.lo);
  rt::stackfree(n);
  rt::stackunmap(keep_first);
  rt::stackunmap(keep_mid);
  EXPECT_EQ(resident_pages(keep_first.lo, keep_first.hi), -1);
  EXPECT_EQ(resident_pages(keep_mid.lo - kStackGuardSize, keep_mid.hi), -1);
}

// In a run, a touch anywhere in a goroutine's guard (its lowest byte, or
// the byte just below the stack) is the runtime's stack overflow, naming
// the goroutine, its stack and the faulting address.
// The death test's output holds "touching A [L, H)" (the child's own note)
// and then the runtime's report of that very address and stack.
bool reports_the_touch(const std::string& out) {
  unsigned long a = 0, lo = 0, hi = 0;
  std::size_t at = out.find("touching ");
  if (at == std::string::npos || std::sscanf(out.c_str() + at, "touching %lx [%lx, %lx)", &a, &lo, &hi) != 3) {
    return false;
  }
  char want[160];
  std::snprintf(want, sizeof want, "stack exceeds %lu-byte limit\nruntime: fault addr=%#lx stack=[%#lx, %#lx]\n",
                hi - lo, a, lo, hi);
  std::size_t report = out.find(want, at);
  return report != std::string::npos && out.find("fatal error: stack overflow\n", report) != std::string::npos &&
         out.find("runtime: goroutine 2 ", at) != std::string::npos;
}

class StackGuardDeathTest : public ::testing::TestWithParam<std::uintptr_t> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_P(StackGuardDeathTest, TouchIsAStackOverflow) {
  const std::uintptr_t below = GetParam();
  EXPECT_EXIT(
      {
        goro::run([below] {
          goro::go([below] {
            rt::G* gp = rt::getg();
            auto* p = reinterpret_cast<volatile char*>(gp->stack.lo - below);
            std::fprintf(stderr, "touching %p [%#lx, %#lx)\n", static_cast<volatile void*>(p), gp->stack.lo,
                         gp->stack.hi);
            *p = 1;
          });
          for (;;) goro::yield();
        });
      },
      ::testing::KilledBySignal(SIGABRT), ::testing::Truly(reports_the_touch));
}

INSTANTIATE_TEST_SUITE_P(Guard, StackGuardDeathTest, ::testing::Values(1, kStackGuardSize / 2, kStackGuardSize));

}  // namespace
