// goro/detail/chan.hpp — what goro/chan.hpp's templates expand to: the
// type-erased channel core (hchan, src/runtime/chan.cpp), the element type
// descriptor it moves values with, raw storage for one value, and ChanAccess,
// the one door from a Chan<T> handle to its hchan (select, timers, tests).
// Not for users: names and signatures here change without notice. Mirrors
// Go's chan.go entry points (makechan, chansend, chanrecv, closechan).
#pragma once

#include <cstddef>
#include <new>
#include <optional>
#include <utility>

namespace goro {

template <class T>
class Chan;

namespace detail {

// What the core needs to know about T: its size, and how to move one.
struct ElemType {
  std::size_t size;
  std::size_t align;
  void (*move_construct)(void* dst, void* src) noexcept;  // new (dst) T(std::move(*src))
  void (*destroy)(void* p) noexcept;
};

template <class T>
struct ElemTypeOf {
  static constexpr ElemType value = {sizeof(T), alignof(T),
                                     [](void* d, void* s) noexcept { ::new (d) T(std::move(*static_cast<T*>(s))); },
                                     [](void* p) noexcept { static_cast<T*>(p)->~T(); }};
};

struct hchan;
hchan* makechan(const ElemType* t, std::size_t cap);
void chanretain(hchan* c) noexcept;
void chanrelease(hchan* c) noexcept;
// Send *elem (moved from). block = false: returns false instead of blocking.
// Throws ChannelClosed. A nil channel blocks forever.
bool chansend(hchan* c, void* elem, bool block);
// Receive into out (raw storage for one T). Returns {selected, received}:
// received means *out was constructed; selected && !received: closed.
struct RecvResult {
  bool selected;
  bool received;
};
RecvResult chanrecv(hchan* c, void* out, bool block);
void closechan(hchan* c);
std::size_t chanlen(const hchan* c) noexcept;
std::size_t chancap(const hchan* c) noexcept;

// Raw storage for one T that may or may not hold a value.
template <class T>
struct Slot {
  alignas(T) unsigned char bytes[sizeof(T)];
  void* ptr() { return bytes; }
  std::optional<T> take(bool constructed) {
    std::optional<T> v;
    if (constructed) {
      T* p = std::launder(reinterpret_cast<T*>(bytes));
      v.emplace(std::move(*p));
      p->~T();
    }
    return v;
  }
};

// A Chan<T> handle's channel, and a handle to a channel of the core
// (retained). Chan<T> befriends this, and nothing else, for its hchan.
struct ChanAccess {
  template <class T>
  static hchan* raw(const Chan<T>& ch) noexcept {
    return ch.c_;
  }
  template <class T>
  static Chan<T> from_raw(hchan* c) noexcept {
    chanretain(c);
    Chan<T> ch = Chan<T>::nil();
    ch.c_ = c;
    return ch;
  }
};

}  // namespace detail
}  // namespace goro
