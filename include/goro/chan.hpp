// goro/chan.hpp — channels (Go: chan): Chan<T>, a handle to a channel that
// parks goroutines (and blocks plain threads) as Go's do.
// Invariant: copies of a Chan share one channel; the channel lives while a
// handle does. Templates here call the type-erased core (goro/detail/chan.hpp,
// implemented in src/runtime/chan.cpp).
#pragma once

#include <cstddef>
#include <goro/detail/chan.hpp>
#include <iterator>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace goro {

// A send on, or a close of, a closed channel.
struct ChannelClosed : std::logic_error {
  using std::logic_error::logic_error;
};

template <class T>
class Chan {
  static_assert(std::is_move_constructible_v<T>, "goro::Chan<T>: T must be MoveConstructible");
  static_assert(!std::is_reference_v<T>, "goro::Chan<T>: T must not be a reference");

 public:
  using value_type = T;

  // make(chan T): unbuffered.
  Chan() : c_(detail::makechan(&detail::ElemTypeOf<T>::value, 0)) {}
  // make(chan T, cap); a capacity of 0 is an unbuffered channel.
  explicit Chan(std::size_t cap) : c_(detail::makechan(&detail::ElemTypeOf<T>::value, cap)) {}
  // The nil channel: send and receive block forever; close throws.
  static Chan nil() { return Chan(NilTag{}); }

  Chan(const Chan& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) detail::chanretain(c_);
  }
  Chan(Chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~Chan() {
    if (c_ != nullptr) detail::chanrelease(c_);
  }

  // ch <- v. Throws ChannelClosed if the channel is closed.
  void send(T v) { detail::chansend(c_, &v, true); }
  // v, ok := <-ch: std::nullopt once the channel is closed and drained.
  std::optional<T> recv() {
    detail::Slot<T> s;
    return s.take(detail::chanrecv(c_, s.ptr(), true).received);
  }
  // select { case ch <- v: true; default: false }. Throws if closed.
  bool try_send(T v) { return detail::chansend(c_, &v, false); }
  // select { case v := <-ch: v; default: nullopt } (nullopt also once
  // closed and drained).
  std::optional<T> try_recv() {
    detail::Slot<T> s;
    return s.take(detail::chanrecv(c_, s.ptr(), false).received);
  }
  // Throws ChannelClosed if already closed, std::logic_error on nil.
  void close() { detail::closechan(c_); }
  std::size_t size() const noexcept { return detail::chanlen(c_); }      // len(ch)
  std::size_t capacity() const noexcept { return detail::chancap(c_); }  // cap(ch)

  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.c_ == b.c_; }
  bool is_nil() const noexcept { return c_ == nullptr; }

  // for (auto&& v : ch): receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&&;
    iterator() = default;
    explicit iterator(Chan* ch) : ch_(ch) { ++*this; }
    // An rvalue: `for (T v : ch)` moves the value out, even for move-only T.
    T&& operator*() { return std::move(*v_); }
    T* operator->() { return &*v_; }
    iterator& operator++() {
      v_.reset();  // T need not be assignable
      detail::Slot<T> s;
      if (detail::chanrecv(ch_->c_, s.ptr(), true).received) {
        T* p = std::launder(reinterpret_cast<T*>(s.bytes));
        v_.emplace(std::move(*p));
        p->~T();
      } else {
        ch_ = nullptr;
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.ch_ == b.ch_; }

   private:
    Chan* ch_ = nullptr;
    std::optional<T> v_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  friend struct detail::ChanAccess;
  struct NilTag {};
  explicit Chan(NilTag) : c_(nullptr) {}
  detail::hchan* c_;
};

}  // namespace goro
