// goro/time.hpp — Go's package time on the runtime's per-P timer heaps:
// sleep_for/sleep_until, after, Timer, Ticker, after_func. Invariant: Timer and Ticker are handles; copies share one
// timer, and destroying a handle never stops it (stop does).
// Channel timers are Go 1.19's: the channel buffers one value, sent without
// blocking, so a Ticker drops ticks for a slow reader and stop/reset never
// drain a value already sent.
#pragma once

#include <chrono>
#include <functional>
#include <goro/chan.hpp>
#include <goro/runtime.hpp>
#include <utility>

namespace goro {

// time.Sleep: parks the goroutine for d (returns at once if d <= 0). On a
// thread that is not running a goroutine, sleeps the thread.
void sleep_for(std::chrono::nanoseconds d);
void sleep_until(Clock::time_point t);

namespace detail {
struct SharedTimer;
void timer_retain(SharedTimer* t) noexcept;
void timer_release(SharedTimer* t) noexcept;
hchan* timer_chan(const SharedTimer* t) noexcept;

// Shared handle plumbing of Timer and Ticker.
class TimerHandle {
 public:
  TimerHandle(const TimerHandle& o) noexcept : t_(o.t_) {
    if (t_ != nullptr) timer_retain(t_);
  }
  TimerHandle(TimerHandle&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  TimerHandle& operator=(TimerHandle o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~TimerHandle() {
    if (t_ != nullptr) timer_release(t_);
  }
  // The channel the timer sends the time on; the nil channel for after_func.
  Chan<Clock::time_point> channel() const {
    hchan* c = timer_chan(t_);
    return c == nullptr ? Chan<Clock::time_point>::nil() : ChanAccess::from_raw<Clock::time_point>(c);
  }

 protected:
  explicit TimerHandle(SharedTimer* t) noexcept : t_(t) {}
  SharedTimer* t_;
};
}  // namespace detail

// time.Timer: sends the time on channel() once, d from now (at once if d <= 0).
class Timer : public detail::TimerHandle {
 public:
  explicit Timer(std::chrono::nanoseconds d);
  // Stops the timer: true if this call stopped it, false if it had already
  // fired or been stopped. A value already sent stays in the channel.
  bool stop();
  // Re-arms the timer for d from now: true if it had been pending.
  bool reset(std::chrono::nanoseconds d);

 private:
  friend Timer after_func(std::chrono::nanoseconds d, std::function<void()> f);
  explicit Timer(detail::SharedTimer* t) noexcept : TimerHandle(t) {}
};

// time.Ticker: sends the time on channel() every d; the channel holds one
// tick, and ticks are dropped for a slow reader. d <= 0 throws
// std::invalid_argument.
class Ticker : public detail::TimerHandle {
 public:
  explicit Ticker(std::chrono::nanoseconds d);
  void stop();
  // Stops the ticker and restarts it with period d (the next tick d from now).
  void reset(std::chrono::nanoseconds d);
};

// time.After: the channel of a new Timer.
Chan<Clock::time_point> after(std::chrono::nanoseconds d);

// time.AfterFunc: after d, f runs in a goroutine of its own, whether or not
// the returned Timer is kept; stop() on it prevents that if still pending.
Timer after_func(std::chrono::nanoseconds d, std::function<void()> f);

}  // namespace goro
