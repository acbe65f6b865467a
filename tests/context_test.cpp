// context_test.cpp — the context switch alone, with no scheduler, no G and
// no M (as marl's osfiber_test): goro_mcall, goro_gogo, goro_gosave and
// gostartcall (src/runtime/arch/context_amd64.S, arch/context.hpp) driven
// on stacks this test maps itself. Pins a fresh context's entry state
// (registers cleared, default MXCSR and x87 control word, SysV alignment,
// a return into goro_goexit+1), round trips, the callee-saved registers
// and both FP control words kept across a switch, and chains of contexts.
#include "arch/context.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <xmmintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "export_test.hpp"
#include "san.hpp"

namespace rt = goro::runtime;

// Helpers in assembly: C++ cannot set or read callee-saved registers around
// a call (a compiled wrapper would save and restore them itself, hiding a
// switch that loses them), nor see the registers a context is entered with.
extern "C" {
// What ctx_entry_probe saw on entry: rsp, [rsp] (the return address), rbx,
// rbp, r12, r13, r14, r15, then mxcsr (low half) and the x87 control word.
std::uint64_t ctx_probe[9];
void ctx_entry_probe();
void ctx_probed_entry();  // C++, jumped to by ctx_entry_probe
// Loads in[0..5] into rbx, rbp, r12..r15, calls goro_mcall(save, g0, fn,
// gp) and, once that returns (something gogo()s to *save), stores the same
// six registers to out[0..5].
void ctx_mcall_regs(rt::Gobuf* save, rt::Gobuf* g0, rt::McallFn fn, rt::G* gp, const std::uint64_t* in,
                    std::uint64_t* out);
// The same around goro_gosave(buf, fn, arg).
void ctx_gosave_regs(rt::Gobuf* buf, void (*fn)(void*), void* arg, const std::uint64_t* in, std::uint64_t* out);
// fn for goro_gosave: overwrites every callee-saved register, MXCSR
// (round up, flush to zero) and the x87 control word (round up), then
// goro_gogo(arg): only the restore of the saved context can undo that.
void ctx_clobber_and_gogo(void* buf);
}

asm(R"(
        .pushsection .text
        .globl ctx_entry_probe
        .type ctx_entry_probe, @function
        .p2align 4
ctx_entry_probe:
        movq %rsp, ctx_probe+0(%rip)
        movq (%rsp), %rax
        movq %rax, ctx_probe+8(%rip)
        movq %rbx, ctx_probe+16(%rip)
        movq %rbp, ctx_probe+24(%rip)
        movq %r12, ctx_probe+32(%rip)
        movq %r13, ctx_probe+40(%rip)
        movq %r14, ctx_probe+48(%rip)
        movq %r15, ctx_probe+56(%rip)
        stmxcsr ctx_probe+64(%rip)
        fnstcw ctx_probe+68(%rip)
        jmp ctx_probed_entry
        .size ctx_entry_probe, .-ctx_entry_probe

        # Loads rbx, rbp, r12-r15 from in[0..5], calls fn (its arguments
        # already in place), stores them to out[0..5] after.
        .macro CALL_WITH_REGS fn, in, out
        pushq %rbp
        pushq %rbx
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        pushq \out               # seven pushes: rsp is 16-byte aligned again
        movq 0(\in), %rbx
        movq 8(\in), %rbp
        movq 16(\in), %r12
        movq 24(\in), %r13
        movq 32(\in), %r14
        movq 40(\in), %r15
        call \fn
        popq \out
        movq %rbx, 0(\out)
        movq %rbp, 8(\out)
        movq %r12, 16(\out)
        movq %r13, 24(\out)
        movq %r14, 32(\out)
        movq %r15, 40(\out)
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret
        .endm

        .globl ctx_mcall_regs
        .type ctx_mcall_regs, @function
        .p2align 4
ctx_mcall_regs:
        CALL_WITH_REGS goro_mcall, %r8, %r9
        .size ctx_mcall_regs, .-ctx_mcall_regs

        .globl ctx_gosave_regs
        .type ctx_gosave_regs, @function
        .p2align 4
ctx_gosave_regs:
        CALL_WITH_REGS goro_gosave, %rcx, %r8
        .size ctx_gosave_regs, .-ctx_gosave_regs

        .globl ctx_clobber_and_gogo
        .type ctx_clobber_and_gogo, @function
        .p2align 4
ctx_clobber_and_gogo:
        movabsq $0xdead00000000b0b0, %rbx
        movabsq $0xdead00000000b1b1, %rbp
        movabsq $0xdead00000000c2c2, %r12
        movabsq $0xdead00000000c3c3, %r13
        movabsq $0xdead00000000c4c4, %r14
        movabsq $0xdead00000000c5c5, %r15
        subq $8, %rsp
        movl $0xdf80, (%rsp)    # round up, flush to zero, exceptions masked
        ldmxcsr (%rsp)
        movw $0x0b7f, 4(%rsp)   # x87: round up
        fldcw 4(%rsp)
        addq $8, %rsp
        jmp goro_gogo
        .size ctx_clobber_and_gogo, .-ctx_clobber_and_gogo
        .popsection
)");

namespace {

constexpr std::size_t kStackSize = std::size_t{256} * 1024;
constexpr std::size_t kGuard = 4096;

// MXCSR's control bits (rounding, FTZ, DAZ, exception masks); the low six
// are sticky exception flags that arithmetic sets as it goes.
constexpr std::uint32_t kMxcsrControl = 0xFFC0;
constexpr std::uint32_t kMxcsrDefault = 0x1F80;
constexpr std::uint16_t kX87Default = 0x037F;

std::uint32_t mxcsr() { return _mm_getcsr(); }
void set_mxcsr(std::uint32_t v) { _mm_setcsr(v); }
std::uint16_t x87cw() {
  std::uint16_t cw;
  asm volatile("fnstcw %0" : "=m"(cw));
  return cw;
}
void set_x87cw(std::uint16_t cw) { asm volatile("fldcw %0" : : "m"(cw)); }

// Divisions whose last bit depends on the rounding mode: SSE (float) and
// x87 (long double).
__attribute__((noinline)) std::uint32_t sse_div(float a, float b) {
  volatile float x = a, y = b;
  float q = x / y;
  std::uint32_t bits;
  std::memcpy(&bits, &q, sizeof bits);
  return bits;
}
__attribute__((noinline)) long double x87_div(long double a, long double b) {
  volatile long double x = a, y = b;
  return x / y;
}

// A stack mapped by the test, with an inaccessible page below it.
class TestStack {
 public:
  TestStack() {
    void* p = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(p);
    mprotect(base_, kGuard, PROT_NONE);
  }
  ~TestStack() { munmap(base_, kStackSize + kGuard); }
  TestStack(const TestStack&) = delete;
  TestStack& operator=(const TestStack&) = delete;
  std::uintptr_t lo() const { return reinterpret_cast<std::uintptr_t>(base_) + kGuard; }
  std::uintptr_t hi() const { return lo() + kStackSize; }

 private:
  char* base_;
};

// A saved context and the stack it runs on (for ASan's switch notes).
struct Ctx {
  rt::Gobuf buf;
  std::uintptr_t lo = 0, hi = 0;
  void* asan_fake = nullptr;
  bool contains(std::uintptr_t a) const { return a >= lo && a < hi; }
};

// The calling thread's own stack, as a context to come back to.
void thread_ctx(Ctx& c) {
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  c.lo = reinterpret_cast<std::uintptr_t>(addr);
  c.hi = c.lo + size;
  c.buf.fiber = rt::san::tsan_current_fiber();
}

// g0's part: goro_mcall runs its fn at g0->sp on this stack. One for the
// test thread; every mcall starts over at its top.
TestStack* g0_stack;
rt::Gobuf g0buf;
int g0_calls = 0;
std::uintptr_t g0_last_frame = 0;

// The mcall fn of every switch here: runs on g0's stack and names the
// context to gogo to (passed as the G* argument: the primitives never look
// inside a G).
rt::Gobuf* switch_to(rt::G* gp) {
  g0_calls++;
  g0_last_frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  return reinterpret_cast<rt::Gobuf*>(gp);
}

// Saves the current context in from and resumes to, by way of g0 (as a
// goroutine switch does: mcall, then gogo). Returns when something
// switches back to from.
void swap(Ctx& from, Ctx& to) {
  rt::san::start_switch(&from.asan_fake, to.lo, to.hi - to.lo);
  rt::goro_mcall(&from.buf, &g0buf, &switch_to, reinterpret_cast<rt::G*>(&to.buf));
  rt::san::finish_switch(from.asan_fake);
}

// swap, with the six callee-saved registers loaded from in before and
// stored to out after, across the switch itself.
void swap_regs(Ctx& from, Ctx& to, const std::uint64_t (&in)[6], std::uint64_t (&out)[6]) {
  rt::san::start_switch(&from.asan_fake, to.lo, to.hi - to.lo);
  ctx_mcall_regs(&from.buf, &g0buf, &switch_to, reinterpret_cast<rt::G*>(&to.buf), in, out);
  rt::san::finish_switch(from.asan_fake);
}

// A fresh context on a stack of its own: entered (by gostartcall's frame)
// at Fiber::entry (or the entry given), which runs body and then switches
// to exit_to for good.
struct Fiber {
  TestStack stack;
  Ctx ctx;
  std::function<void(Fiber&)> body;
  Ctx* exit_to = nullptr;
  bool finished = false;

  Fiber(std::function<void(Fiber&)> b, Ctx* exit, void (*entry)() = nullptr, std::uintptr_t top_gap = 0)
      : body(std::move(b)), exit_to(exit) {
    ctx.lo = stack.lo();
    ctx.hi = stack.hi();
    ctx.buf.sp = rt::gostartcall(stack.hi() - top_gap, entry != nullptr ? entry : &Fiber::entry);
    ctx.buf.fiber = rt::san::tsan_create_fiber();
  }
  ~Fiber() { rt::san::tsan_destroy_fiber(ctx.buf.fiber); }

  static inline Fiber* starting = nullptr;  // read by entry: the fiber being started

  // Switches from `from` to f for the first time.
  static void start(Fiber& f, Ctx& from) {
    starting = &f;
    swap(from, f.ctx);
  }

  static void entry() {
    rt::san::finish_switch(nullptr);  // a fresh stack: nothing saved to restore
    Fiber* self = starting;
    self->body(*self);
    self->finished = true;
    swap(self->ctx, *self->exit_to);
    std::fprintf(stderr, "a finished fiber was resumed\n");
    std::abort();
  }
};

class Context : public ::testing::Test {
 protected:
  void SetUp() override {
    g0_stack = new TestStack;
    g0buf.sp = g0_stack->hi() & ~std::uintptr_t{15};  // goro_mcall wants g0's sp aligned
    g0_calls = 0;
    thread_ctx(main_);
  }
  void TearDown() override {
    delete g0_stack;
    g0_stack = nullptr;
  }
  Ctx main_;
};

// A context switch to a fresh context runs its entry on its own stack (by
// way of g0's, where the mcall fn runs), and the switch back resumes the
// thread right after its own switch, with its locals intact.
TEST_F(Context, FreshContextRunsOnItsStackAndSwitchesBack) {
  std::uintptr_t fiber_local = 0;
  int ran = 0;
  Fiber f(
      [&](Fiber& self) {
        ran++;
        int local = 0;
        fiber_local = reinterpret_cast<std::uintptr_t>(&local);
        EXPECT_TRUE(self.ctx.contains(fiber_local)) << "the fiber's frame is not on its stack";
      },
      &main_);
  int before = 42;
  Fiber::start(f, main_);
  EXPECT_EQ(before, 42);
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(f.finished);
  EXPECT_TRUE(f.ctx.contains(fiber_local));
  EXPECT_TRUE(main_.contains(reinterpret_cast<std::uintptr_t>(&before)));
  // Two switches (there and back), each through g0's stack with its fn's
  // frame 16-byte aligned (mcall calls it at g0->sp, which is aligned).
  EXPECT_EQ(g0_calls, 2);
  EXPECT_GE(g0_last_frame, g0_stack->lo());
  EXPECT_LT(g0_last_frame, g0buf.sp);
  EXPECT_EQ(g0_last_frame % 16, 0u) << "the mcall fn was entered with a misaligned stack";
}

// Many round trips between two contexts: each side sees its own stack's
// locals intact after every switch, control alternates strictly, and each
// side's saved sp is the same on every trip (a switch leaves nothing on a
// stack).
TEST_F(Context, ManyRoundTrips) {
  const std::int64_t kTrips = goro::testing::scaled(200000, 20);
  std::int64_t turn = 0;
  std::uintptr_t fiber_sp = 0;
  int fiber_sp_changes = 0;
  Fiber f(
      [&](Fiber& self) {
        std::int64_t mine = 0;  // on the fiber's stack
        for (std::int64_t i = 0; i < kTrips; i++) {
          EXPECT_EQ(turn, 2 * i + 1);
          turn++;
          mine += 3;
          swap(self.ctx, main_);
          if (fiber_sp == 0) fiber_sp = self.ctx.buf.sp;
          if (self.ctx.buf.sp != fiber_sp) fiber_sp_changes++;
        }
        EXPECT_EQ(mine, 3 * kTrips);
      },
      &main_);
  std::int64_t mine = 0;
  std::uintptr_t main_sp = 0;
  int main_sp_changes = 0;
  turn = 1;
  Fiber::start(f, main_);
  for (std::int64_t i = 0; i < kTrips; i++) {
    ASSERT_EQ(turn, 2 * i + 2) << "trip " << i;
    turn++;
    mine += 5;
    if (main_sp == 0) main_sp = main_.buf.sp;
    if (main_.buf.sp != main_sp) main_sp_changes++;
    swap(main_, f.ctx);
  }
  EXPECT_TRUE(f.finished);
  EXPECT_EQ(mine, 5 * kTrips);
  EXPECT_EQ(turn, 2 * kTrips + 1);
  EXPECT_EQ(main_sp_changes, 0);
  EXPECT_EQ(fiber_sp_changes, 0);
  EXPECT_EQ(g0_calls, 2 * kTrips + 2);
}

// The fresh context that ctx_entry_probe is entered as: it reports the
// probe's registers by switching back, and is never resumed.
Ctx* probe_return_to = nullptr;
Fiber* probe_fiber = nullptr;
extern "C" void ctx_probed_entry() {
  rt::san::finish_switch(nullptr);
  swap(probe_fiber->ctx, *probe_return_to);
  std::abort();
}

// A fresh context is entered as a function called by goro_goexit: rsp is
// 8 mod 16 (the SysV alignment after a call) with goro_goexit+1 as the
// return address, rbp is 0 (the end of the frame-pointer chain), the other
// callee-saved registers are 0, and MXCSR and the x87 control word hold
// their defaults, whatever the caller's are. For every alignment of the
// top of the stack gostartcall is given.
TEST_F(Context, FreshContextEntryState) {
  const std::uint32_t saved_mxcsr = mxcsr();
  const std::uint16_t saved_cw = x87cw();
  for (std::uintptr_t gap = 0; gap < 16; gap++) {
    SCOPED_TRACE(gap);
    Fiber f(nullptr, &main_, &ctx_entry_probe, gap);
    std::memset(ctx_probe, 0xA5, sizeof ctx_probe);
    probe_fiber = &f;
    probe_return_to = &main_;
    // Not the defaults here: a fresh context must not inherit these.
    set_mxcsr(0x7F80 | (1u << 6));  // round toward zero, flush to zero, denormals are zero
    set_x87cw(0x0F7F);              // round toward zero
    swap(main_, f.ctx);
    EXPECT_EQ(mxcsr() & kMxcsrControl, (0x7F80u | (1u << 6)) & kMxcsrControl);
    EXPECT_EQ(x87cw(), 0x0F7F);
    set_mxcsr(saved_mxcsr);
    set_x87cw(saved_cw);

    std::uintptr_t rsp = ctx_probe[0];
    EXPECT_EQ(rsp % 16, 8u) << "a fresh context's entry is misaligned";
    EXPECT_TRUE(f.ctx.contains(rsp));
    EXPECT_LE(f.stack.hi() - gap - rsp, 64u) << "the first frame does not start at the top of the stack";
    EXPECT_EQ(ctx_probe[1], reinterpret_cast<std::uintptr_t>(&rt::goro_goexit) + 1)
        << "the entry does not return into goro_goexit";
    for (int r = 2; r < 8; r++) EXPECT_EQ(ctx_probe[r], 0u) << "callee-saved register " << r - 2 << " not cleared";
    EXPECT_EQ(static_cast<std::uint32_t>(ctx_probe[8]) & kMxcsrControl, kMxcsrDefault);
    EXPECT_EQ(static_cast<std::uint16_t>(ctx_probe[8] >> 32), kX87Default);
  }
}

// rbx, rbp and r12-r15 set just before a switch hold the same values when
// the switch returns, on both sides, over several trips, though the other
// side loads different values into all of them in between.
TEST_F(Context, CalleeSavedRegistersSurviveASwitch) {
  constexpr int kTrips = 16;
  auto values = [](std::uint64_t tag, int trip) {
    std::array<std::uint64_t, 6> v;
    for (int r = 0; r < 6; r++) v[r] = tag | (std::uint64_t(trip) << 16) | (std::uint64_t(r) << 8) | 0x5A;
    return v;
  };
  int fiber_mismatches = 0;
  Fiber f(
      [&](Fiber& self) {
        for (int trip = 0; trip < kTrips; trip++) {
          std::uint64_t in[6], out[6];
          auto v = values(0xF1BE000000000000, trip);
          std::copy(v.begin(), v.end(), in);
          swap_regs(self.ctx, main_, in, out);
          for (int r = 0; r < 6; r++) fiber_mismatches += out[r] != in[r];
        }
      },
      &main_);
  Fiber::start(f, main_);
  for (int trip = 0; trip < kTrips; trip++) {
    std::uint64_t in[6], out[6];
    auto v = values(0x3A1A000000000000, trip);
    std::copy(v.begin(), v.end(), in);
    swap_regs(main_, f.ctx, in, out);
    for (int r = 0; r < 6; r++) EXPECT_EQ(out[r], in[r]) << "trip " << trip << ", register " << r;
  }
  EXPECT_TRUE(f.finished);
  EXPECT_EQ(fiber_mismatches, 0);
}

// Each context keeps its own rounding modes (MXCSR for SSE, the x87
// control word for long double) across switches, while the other context
// runs with different ones: checked on the registers and on divisions
// whose last bit the mode decides.
TEST_F(Context, FloatingPointControlWordsArePerContext) {
  const std::uint32_t saved_mxcsr = mxcsr();
  const std::uint16_t saved_cw = x87cw();
  // main: SSE rounds toward zero with FTZ and DAZ, x87 rounds down.
  const std::uint32_t main_mxcsr = 0x7F80 | (1u << 6);
  const std::uint16_t main_cw = 0x077F;
  // fiber: SSE rounds up, x87 rounds up.
  const std::uint32_t fiber_mxcsr = 0x5F80;
  const std::uint16_t fiber_cw = 0x0B7F;
  // The results each mode gives, computed here with no switch involved.
  set_mxcsr(main_mxcsr);
  set_x87cw(main_cw);
  const std::uint32_t main_neg = sse_div(-1.0f, 3.0f), main_pos = sse_div(1.0f, 3.0f);
  const long double main_ld = x87_div(1.0L, 3.0L);
  set_mxcsr(fiber_mxcsr);
  set_x87cw(fiber_cw);
  const std::uint32_t fiber_neg = sse_div(-1.0f, 3.0f), fiber_pos = sse_div(1.0f, 3.0f);
  const long double fiber_ld = x87_div(1.0L, 3.0L);
  set_mxcsr(saved_mxcsr);
  set_x87cw(saved_cw);
  // Toward zero and up differ on 1/3; round-to-nearest differs from up on
  // -1/3: a context that fell back to the default mode is caught.
  ASSERT_NE(main_pos, fiber_pos);
  ASSERT_NE(fiber_neg, sse_div(-1.0f, 3.0f));
  ASSERT_LT(main_ld, fiber_ld);

  constexpr int kTrips = 8;
  int fiber_bad = 0;
  std::uint32_t fiber_first_mxcsr = 0;
  std::uint16_t fiber_first_cw = 0;
  Fiber f(
      [&](Fiber& self) {
        fiber_first_mxcsr = mxcsr();
        fiber_first_cw = x87cw();
        set_mxcsr(fiber_mxcsr);
        set_x87cw(fiber_cw);
        for (int trip = 0; trip < kTrips; trip++) {
          swap(self.ctx, main_);
          fiber_bad += (mxcsr() & kMxcsrControl) != (fiber_mxcsr & kMxcsrControl);
          fiber_bad += x87cw() != fiber_cw;
          fiber_bad += sse_div(1.0f, 3.0f) != fiber_pos || sse_div(-1.0f, 3.0f) != fiber_neg;
          fiber_bad += x87_div(1.0L, 3.0L) != fiber_ld;
        }
      },
      &main_);
  set_mxcsr(main_mxcsr);
  set_x87cw(main_cw);
  Fiber::start(f, main_);
  int main_bad = 0;
  for (int trip = 0; trip < kTrips; trip++) {
    main_bad += (mxcsr() & kMxcsrControl) != (main_mxcsr & kMxcsrControl);
    main_bad += x87cw() != main_cw;
    main_bad += sse_div(1.0f, 3.0f) != main_pos || sse_div(-1.0f, 3.0f) != main_neg;
    main_bad += x87_div(1.0L, 3.0L) != main_ld;
    swap(main_, f.ctx);
  }
  const std::uint32_t end_mxcsr = mxcsr();
  const std::uint16_t end_cw = x87cw();
  set_mxcsr(saved_mxcsr);
  set_x87cw(saved_cw);
  EXPECT_TRUE(f.finished);
  EXPECT_EQ(main_bad, 0);
  EXPECT_EQ(fiber_bad, 0);
  EXPECT_EQ(end_mxcsr & kMxcsrControl, main_mxcsr & kMxcsrControl);
  EXPECT_EQ(end_cw, main_cw);
  // And a fresh context started from main's modes got the defaults.
  EXPECT_EQ(fiber_first_mxcsr & kMxcsrControl, kMxcsrDefault);
  EXPECT_EQ(fiber_first_cw, kX87Default);
}

// A chain: main switches to the first of N contexts, each switches to the
// next, the last back to main; lap after lap, control visits them in
// order, and each keeps its own count.
TEST_F(Context, ChainOfContextsRunsInOrder) {
  constexpr int kN = 12, kLaps = 50;
  std::vector<int> trace;
  std::vector<std::unique_ptr<Fiber>> fs;
  for (int i = 0; i < kN; i++) {
    fs.push_back(std::make_unique<Fiber>(
        [&, i](Fiber& self) {
          int visits = 0;
          for (int lap = 0; lap < kLaps; lap++) {
            visits++;
            trace.push_back(i * 1000 + visits);
            Ctx& next = i + 1 < kN ? fs[static_cast<std::size_t>(i) + 1]->ctx : main_;
            if (lap == 0 && i + 1 < kN) {
              Fiber::start(*fs[static_cast<std::size_t>(i) + 1], self.ctx);
            } else {
              swap(self.ctx, next);
            }
          }
        },
        &main_));
  }
  Fiber::start(*fs[0], main_);
  for (int lap = 1; lap < kLaps; lap++) swap(main_, fs[0]->ctx);
  ASSERT_EQ(trace.size(), static_cast<std::size_t>(kN * kLaps));
  for (int lap = 0; lap < kLaps; lap++) {
    for (int i = 0; i < kN; i++) {
      EXPECT_EQ(trace[static_cast<std::size_t>(lap * kN + i)], i * 1000 + lap + 1) << "lap " << lap << ", step " << i;
    }
  }
  // Every fiber is parked in its last switch: none finished.
  for (auto& f : fs) EXPECT_FALSE(f->finished);
}

// goro_gosave saves a context and calls fn below it on the same stack;
// gosave returns when fn returns, with fn's frame below the saved sp and
// entered aligned.
TEST_F(Context, GosaveCallsFnBelowTheSavedContext) {
  struct Arg {
    rt::Gobuf* buf;
    std::uintptr_t saved_sp = 0, frame = 0;
    int calls = 0;
  };
  rt::Gobuf buf;
  Arg a{&buf};
  rt::goro_gosave(
      &buf,
      [](void* p) {
        auto* a = static_cast<Arg*>(p);
        a->calls++;
        a->saved_sp = a->buf->sp;
        a->frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
      },
      &a);
  int here = 0;
  EXPECT_EQ(a.calls, 1);
  EXPECT_NE(a.saved_sp, 0u);
  EXPECT_LT(a.frame, a.saved_sp) << "fn does not run below the saved context";
  EXPECT_GE(a.frame + 256, a.saved_sp);
  EXPECT_EQ(a.frame % 16, 0u) << "fn was entered with a misaligned stack";
  EXPECT_TRUE(main_.contains(a.saved_sp));
  EXPECT_TRUE(main_.contains(reinterpret_cast<std::uintptr_t>(&here)));
}

// gogo to a gosave()d context returns from that gosave, as an M's exit
// does: with every callee-saved register and both FP control words as
// they were at the gosave, though fn overwrote all of them before its
// gogo.
TEST_F(Context, GogoToAGosavedContextRestoresIt) {
  const std::uint32_t saved_mxcsr = mxcsr();
  const std::uint16_t saved_cw = x87cw();
  const std::uint32_t test_mxcsr = 0x3F80;  // round down
  const std::uint16_t test_cw = 0x077F;     // x87: round down
  set_mxcsr(test_mxcsr);
  set_x87cw(test_cw);
  rt::Gobuf buf;
  buf.fiber = rt::san::tsan_current_fiber();  // gogo switches TSan to it: the same one
  const std::uint64_t in[6] = {0x1111000000000001, 0x2222000000000002, 0x3333000000000003,
                               0x4444000000000004, 0x5555000000000005, 0x6666000000000006};
  std::uint64_t out[6] = {};
  ctx_gosave_regs(&buf, &ctx_clobber_and_gogo, &buf, in, out);
  const std::uint32_t after_mxcsr = mxcsr();
  const std::uint16_t after_cw = x87cw();
  set_mxcsr(saved_mxcsr);
  set_x87cw(saved_cw);
  for (int r = 0; r < 6; r++) EXPECT_EQ(out[r], in[r]) << "register " << r;
  EXPECT_EQ(after_mxcsr & kMxcsrControl, test_mxcsr & kMxcsrControl);
  EXPECT_EQ(after_cw, test_cw);
}

// An M's life in small: the thread gosave()s its exit context and leaves
// its stack by gogo into a chain of fresh contexts, each of which gogo()s
// to the next and is never resumed; the last gogo()s to the exit context,
// and gosave returns. Each context runs once, in order.
struct OneWay {
  std::vector<std::unique_ptr<Fiber>>* fs;
  rt::Gobuf* exit;
  Ctx* main;
  std::vector<int>* trace;
};
OneWay* one_way = nullptr;

// goro_gogo, called through a pointer the compiler cannot see through,
// of a type that does not say noreturn: under ASan a call to a noreturn
// function first unpoisons the stack it is on, which must not happen
// between the start_switch that announces the target stack and the switch.
void (*volatile gogo_fn)(rt::Gobuf*) = reinterpret_cast<void (*)(rt::Gobuf*)>(&rt::goro_gogo);
// (Nothing after the call, either: code the compiler sees cannot return,
// such as a final abort(), makes gogo() itself noreturn to it.)
void gogo(rt::Gobuf* buf) { gogo_fn(buf); }

// Leaves the current stack for good and enters c.
void jump(Ctx& c) {
  rt::san::start_switch(nullptr, c.lo, c.hi - c.lo);
  gogo(&c.buf);
}

TEST_F(Context, GosaveIsTheExitOfAChainOfGogos) {
  constexpr int kN = 10;
  std::vector<int> trace;
  std::vector<std::unique_ptr<Fiber>> fs;
  rt::Gobuf exit;
  exit.fiber = main_.buf.fiber;
  OneWay ow{&fs, &exit, &main_, &trace};
  one_way = &ow;
  for (int i = 0; i < kN; i++) {
    fs.push_back(std::make_unique<Fiber>(
        [i](Fiber&) {
          one_way->trace->push_back(i);
          if (i + 1 < kN) {
            Fiber::starting = (*one_way->fs)[static_cast<std::size_t>(i) + 1].get();
            jump(Fiber::starting->ctx);
          }
          // The last: back to the thread, through its exit context.
          rt::san::start_switch(nullptr, one_way->main->lo, one_way->main->hi - one_way->main->lo);
          gogo(one_way->exit);
        },
        &main_));
  }
  rt::san::start_switch(&main_.asan_fake, fs[0]->ctx.lo, fs[0]->ctx.hi - fs[0]->ctx.lo);
  rt::goro_gosave(
      &exit,
      [](void*) {
        Fiber::starting = (*one_way->fs)[0].get();
        gogo(&Fiber::starting->ctx.buf);
      },
      nullptr);
  rt::san::finish_switch(main_.asan_fake);
  std::vector<int> want;
  for (int i = 0; i < kN; i++) want.push_back(i);
  EXPECT_EQ(trace, want);
  for (auto& f : fs) EXPECT_FALSE(f->finished);  // each left by gogo, mid-body
}

}  // namespace
