// stack.hpp — goroutine stacks: reserved in large chunks, guarded, pooled.
// Invariants: a stack is [lo, hi) with kStackGuardSize faulting bytes below
// lo; a stack in the pool has no committed pages. Mirrors stack.go (with
// fixed-size stacks: C++ frames hold pointers into the stack, so Go's
// copying growth is impossible; the kernel commits pages on first touch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime2.hpp"

namespace goro::runtime {

inline constexpr std::size_t kDefaultStackSize = std::size_t{256} * 1024;
// Large enough that a big frame cannot jump over it into the next stack.
inline constexpr std::size_t kStackGuardSize = std::size_t{64} * 1024;
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;

// Per run: the usable size of every stack (page-rounded).
void stackinit(std::size_t size);
std::size_t stack_size();
// A stack of stack_size() bytes from the pool or a chunk.
Stack stackalloc();
// Gives the stack's memory back to the kernel and pools its address range.
void stackfree(Stack s);
// stackfree for many stacks at once: address-adjacent stacks are given back
// with one madvise (guards survive it). Sorts v.
void stackfree_batch(std::vector<Stack>& v);
// Unmaps every chunk (run() is over), but for the stacks in keep (with
// their guards): those of goroutines whose threads teardown abandoned in a
// system call, which still run on them; each is unmapped by stackunmap.
void stackfreeall(const std::vector<Stack>& keep = {});
// Unmaps one stack and its guard, outside the pool (an abandoned thread's).
void stackunmap(Stack s);
// Stacks handed out and not freed (the leak check in tests).
std::size_t stacks_in_use();
// Whether guards are kernel guard markers (no extra mappings) or mprotect.
bool stack_guard_markers();

inline bool in_stack_guard(const Stack& s, std::uintptr_t addr) {
  return s.lo != 0 && addr < s.lo && addr >= s.lo - kStackGuardSize;
}

}  // namespace goro::runtime
