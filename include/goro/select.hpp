// goro/select.hpp — select over channel cases (Go: select statement).
// Invariant: exactly one case runs; among ready cases the choice is uniform
// at random; the chosen case's callback runs after its operation completed.
// The cases are templates; the algorithm is Go's selectgo in select.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"

namespace goro {

namespace detail {

// One case as the core sees it (Go's scase).
struct SelectCase {
  hchan* c;    // nullptr: a nil channel (never ready)
  void* elem;  // send: the value to move from; recv: storage for one value
  bool send;
};
// Go's selectgo. Returns the index of the case that ran, or -1 (only when
// !block: no case was ready). recvOK: a receive got a value (not closed).
// Throws ChannelClosed for a chosen send case on a closed channel.
int selectgo(SelectCase* cases, int n, bool block, bool* recvOK);

struct NoCallback {};

template <class T, class F>
struct RecvCase {
  Chan<T> ch;
  F f;
  Slot<T> slot;
  SelectCase scase() { return {ChanAccess::raw(ch), slot.ptr(), false}; }
  void done(bool ok) {
    std::optional<T> v = slot.take(ok);
    if constexpr (!std::is_same_v<F, NoCallback>) std::move(f)(std::move(v));
  }
};

template <class T, class F>
struct SendCase {
  Chan<T> ch;
  T value;
  F f;
  SelectCase scase() { return {ChanAccess::raw(ch), &value, true}; }
  void done(bool) {
    if constexpr (!std::is_same_v<F, NoCallback>) std::move(f)();
  }
};

template <class F>
struct DefaultCase {
  F f;
  void done() {
    if constexpr (!std::is_same_v<F, NoCallback>) std::move(f)();
  }
};

template <class C>
struct IsDefault : std::false_type {};
template <class F>
struct IsDefault<DefaultCase<F>> : std::true_type {};

}  // namespace detail

// case v, ok := <-ch: f is given the std::optional<T> (nullopt: closed).
template <class T, class F>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& f) {
  return {ch, std::forward<F>(f), {}};
}
template <class T>
detail::RecvCase<T, detail::NoCallback> on_recv(const Chan<T>& ch) {
  return {ch, {}, {}};
}
// case ch <- v: f runs after the value was sent.
template <class T, class V, class F>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, V&& v, F&& f) {
  return {ch, static_cast<T>(std::forward<V>(v)), std::forward<F>(f)};
}
template <class T, class V>
detail::SendCase<T, detail::NoCallback> on_send(const Chan<T>& ch, V&& v) {
  return {ch, static_cast<T>(std::forward<V>(v)), {}};
}
// default: runs when no other case is ready.
template <class F>
detail::DefaultCase<std::decay_t<F>> on_default(F&& f) {
  return {std::forward<F>(f)};
}
inline detail::DefaultCase<detail::NoCallback> on_default() { return {{}}; }

// Go's select: runs one ready case (chosen uniformly at random), or blocks
// until one is ready, or runs the default case if there is one. Returns the
// index of the case that ran, in argument order. With no cases at all it
// blocks forever, as `select {}`.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t kN = sizeof...(Cases);
  constexpr std::size_t kDefaults = (std::size_t{0} + ... + detail::IsDefault<std::decay_t<Cases>>::value);
  static_assert(kDefaults <= 1, "goro::select: at most one on_default case");
  auto tup = std::forward_as_tuple(cases...);
  detail::SelectCase sc[kN == 0 ? 1 : kN];
  int index_of[kN == 0 ? 1 : kN];  // core case -> argument index
  std::size_t default_index = kN;
  int n = 0;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          auto& c = std::get<I>(tup);
          if constexpr (detail::IsDefault<std::decay_t<decltype(c)>>::value) {
            default_index = I;
          } else {
            sc[n] = c.scase();
            index_of[n] = static_cast<int>(I);
            n++;
          }
        }(),
        ...);
  }
  (std::make_index_sequence<kN>{});
  bool recvOK = false;
  int chosen = detail::selectgo(sc, n, kDefaults == 0, &recvOK);
  std::size_t which = chosen < 0 ? default_index : static_cast<std::size_t>(index_of[chosen]);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if (I != which) return;
          auto& c = std::get<I>(tup);
          if constexpr (detail::IsDefault<std::decay_t<decltype(c)>>::value) {
            c.done();
          } else {
            c.done(recvOK);
          }
        }(),
        ...);
  }
  (std::make_index_sequence<kN>{});
  return which;
}

}  // namespace goro
