// san.hpp — telling ASan and TSan about goroutine stacks and switches.
// Invariant: every stack switch is announced: ASan start_switch before and
// finish_switch after; TSan's fiber switch happens in goro_gogo (asm) or just
// before goro_mcall. Everything here compiles to nothing without sanitizers.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__) && !defined(GORO_TSAN)
#define GORO_TSAN 1
#elif defined(__has_feature) && !defined(GORO_TSAN)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif

#ifdef GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

// The preemption signal's handler: installed past TSan (signal_unix.cpp),
// so TSan does not know it runs and it must not call into TSan; and it
// reads words of a goroutine's live frames, redzones included, which ASan
// would report. Not instrumented, and calls nothing that is.
#if defined(GORO_TSAN) || defined(GORO_ASAN)
#define GORO_NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#else
#define GORO_NO_SANITIZE
#endif

namespace goro::runtime::san {

#ifdef GORO_ASAN
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#ifdef GORO_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// About to leave the current stack for [bottom, bottom+size). save receives
// the current fiber's fake stack; nullptr when the current stack dies.
inline void start_switch(void** save, std::uintptr_t bottom, std::size_t size) {
#ifdef GORO_ASAN
  __sanitizer_start_switch_fiber(save, reinterpret_cast<const void*>(bottom), size);
#else
  (void)save, (void)bottom, (void)size;
#endif
}

// Arrived on a stack; save is what start_switch stored when it was left.
inline void finish_switch(void* save) {
#ifdef GORO_ASAN
  __sanitizer_finish_switch_fiber(save, nullptr, nullptr);
#else
  (void)save;
#endif
}

// A stack whose previous frames are dead (a reused goroutine stack).
inline void unpoison(std::uintptr_t lo, std::size_t size) {
#ifdef GORO_ASAN
  __asan_unpoison_memory_region(reinterpret_cast<void*>(lo), size);
#else
  (void)lo, (void)size;
#endif
}

// Leaving frames on this stack for good (a jump up the same stack).
inline void handle_no_return() {
#ifdef GORO_ASAN
  __asan_handle_no_return();
#endif
}

inline void* tsan_current_fiber() {
#ifdef GORO_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}
inline void* tsan_create_fiber() {
#ifdef GORO_TSAN
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void tsan_destroy_fiber(void* f) {
#ifdef GORO_TSAN
  if (f != nullptr) __tsan_destroy_fiber(f);
#else
  (void)f;
#endif
}
inline void tsan_switch_to(void* f) {
#ifdef GORO_TSAN
  __tsan_switch_to_fiber(f, 0);
#else
  (void)f;
#endif
}

}  // namespace goro::runtime::san
