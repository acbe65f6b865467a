// arch/context.hpp — the saved goroutine context (Gobuf) shared with assembly.
// Invariant: a saved context is a block of kFrameSize bytes at Gobuf::sp on
// the goroutine's own stack (control words, callee-saved registers, resume
// pc), laid out once in context_amd64.h for the .S and this header. Mirrors Go's gobuf
// (runtime2.go) and the gogo/mcall/gosave of asm_amd64.s.
#pragma once

#include <cstddef>
#include <cstdint>

#include "context_amd64.h"

namespace goro::runtime {

struct G;

// Go's gobuf. Go saves sp/pc/bp in the struct because Go code keeps no values
// in registers across calls; C++ code does (callee-saved registers), so those
// are pushed on the stack being left and only sp is kept here.
struct Gobuf {
  std::uintptr_t sp = 0;
  void* fiber = nullptr;  // TSan fiber of the stack this context runs on
};

// Layout of a saved context at Gobuf::sp (x86-64): context_amd64.h, shared
// with the assembly.
inline constexpr std::size_t kCtxControl = CTX_CONTROL;  // mxcsr (4 bytes), x87 control word (2)
inline constexpr std::size_t kCtxR15 = CTX_R15;
inline constexpr std::size_t kCtxR14 = CTX_R14;
inline constexpr std::size_t kCtxR13 = CTX_R13;
inline constexpr std::size_t kCtxR12 = CTX_R12;
inline constexpr std::size_t kCtxRbx = CTX_RBX;
inline constexpr std::size_t kCtxRbp = CTX_RBP;
inline constexpr std::size_t kCtxPC = CTX_PC;
inline constexpr std::size_t kFrameSize = CTX_FRAME_SIZE;

static_assert(offsetof(Gobuf, sp) == GOBUF_SP, "context_amd64.h: GOBUF_SP");
static_assert(offsetof(Gobuf, fiber) == GOBUF_FIBER, "context_amd64.h: GOBUF_FIBER");
static_assert(kCtxPC + 8 == kFrameSize && kFrameSize % 16 == 0, "context_amd64.h: the frame keeps sp 16-aligned");

// What an mcall'd function returns: the context to switch to next.
using McallFn = Gobuf* (*)(G* gp);

extern "C" {
// Set (proc.cpp) when the runtime's C++ is compiled with TSan: goro_gogo
// calls it with buf->fiber before it switches stacks. Data, not a macro, so
// the assembly needs no sanitizer flags and cannot disagree with the C++.
extern __attribute__((visibility("hidden"))) void (*goro_tsan_switch_hook)(void* fiber, unsigned flags);
// Restores buf: never returns. Under TSan first switches to buf->fiber.
[[noreturn]] void goro_gogo(Gobuf* buf);
// Saves the current context in *save, switches to g0's stack (g0->sp), and
// calls fn(gp) there; then gogo()s to the Gobuf fn returns. Returns to the
// caller when something later gogo()s to *save.
void goro_mcall(Gobuf* save, Gobuf* g0, McallFn fn, G* gp);
// Saves the current context in *buf and calls fn(arg) on the same stack below
// it. Returns when fn returns or when something gogo()s to *buf.
void goro_gosave(Gobuf* buf, void (*fn)(void*), void* arg);
// Calls fn(arg) below a frame record {0, 0}, which ends the goroutine's
// frame-pointer chain; fn returns to goro_callentry_ret.
void goro_callentry(void (*fn)(void*), void* arg);
extern const char goro_callentry_ret[];
// A new goroutine's first frame returns here: calls goro_goexit1. Its first
// byte is a nop so that the return address (goro_goexit + 1) lies inside it.
void goro_goexit();
// Called from goro_goexit, on the dying goroutine's stack (proc.cpp).
[[noreturn]] void goro_goexit1();
}

// Build the initial context of a new goroutine at the top of [lo, hi):
// gogo() will enter `entry` with goro_goexit as its return address (Go's
// gostartcall). Returns the Gobuf::sp to store.
inline std::uintptr_t gostartcall(std::uintptr_t top, void (*entry)()) {
  // After gogo's ret into entry, sp + kFrameSize holds entry's return address
  // and must be 8 mod 16 (the SysV alignment at function entry).
  std::uintptr_t sp = ((top - 16) & ~std::uintptr_t{15}) - kFrameSize - 8;
  auto* w = reinterpret_cast<std::uintptr_t*>(sp);
  w[kCtxControl / 8] = 0x1F80 | (std::uintptr_t{0x037F} << 32);  // default mxcsr, x87 cw
  w[kCtxR15 / 8] = w[kCtxR14 / 8] = w[kCtxR13 / 8] = w[kCtxR12 / 8] = w[kCtxRbx / 8] = 0;
  w[kCtxRbp / 8] = 0;  // ends the frame-pointer chain
  w[kCtxPC / 8] = reinterpret_cast<std::uintptr_t>(entry);
  w[kFrameSize / 8] = reinterpret_cast<std::uintptr_t>(&goro_goexit) + 1;
  return sp;
}

}  // namespace goro::runtime
