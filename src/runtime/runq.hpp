// runq.hpp — run queues: the per-P lock-free ring with runnext, and the
// intrusive G lists behind the global queue and the free lists.
// Invariants: only the owner P writes tail and sets runnext non-null; head
// moves by CAS (owner and thieves); a thief never writes the victim's tail.
// The types say so: the owner works through RunqOwner, a thief reaches a
// victim only through RunqStealer.
// Mirrors proc.go (runqput, runqputslow, runqget, runqgrab, runqsteal, gQueue).
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#include "panic.hpp"

namespace goro::runtime {

// Intrusive FIFO of Gs linked through G::schedlink (Go's gQueue).
template <class G>
struct GQueueT {
  G* head = nullptr;
  G* tail = nullptr;
  bool empty() const { return head == nullptr; }
  void push(G* gp) {
    gp->schedlink = head;
    head = gp;
    if (tail == nullptr) tail = gp;
  }
  void pushBack(G* gp) {
    gp->schedlink = nullptr;
    if (tail != nullptr) {
      tail->schedlink = gp;
    } else {
      head = gp;
    }
    tail = gp;
  }
  void pushBackAll(GQueueT q) {
    if (q.tail == nullptr) return;
    q.tail->schedlink = nullptr;
    if (tail != nullptr) {
      tail->schedlink = q.head;
    } else {
      head = q.head;
    }
    tail = q.tail;
  }
  G* pop() {
    G* gp = head;
    if (gp != nullptr) {
      head = gp->schedlink;
      if (head == nullptr) tail = nullptr;
    }
    return gp;
  }
};

// Intrusive LIFO of Gs (Go's gList).
template <class G>
struct GListT {
  G* head = nullptr;
  bool empty() const { return head == nullptr; }
  void push(G* gp) {
    gp->schedlink = head;
    head = gp;
  }
  G* pop() {
    G* gp = head;
    if (gp != nullptr) head = gp->schedlink;
    return gp;
  }
};

template <class G, std::uint32_t N>
class RunqOwner;
template <class G, std::uint32_t N>
class RunqStealer;

// A P's local run queue: a ring of N slots plus the runnext slot. N is a
// template parameter so that tests can run every wrap-around path with a
// tiny ring, as Tokio's tests do. It is used through two views (Tokio's
// Local and Steal): owner(), for the M that holds the P (or anyone while
// the world is stopped), which puts, gets and steals into this queue; and
// stealer(), all another M may touch: runqsteal grabs from it. Anyone may
// ask runqempty and runqlen.
template <class G, std::uint32_t N>
class RunQueue {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "ring size must be a power of two");

 public:
  static constexpr std::uint32_t kSize = N;

  RunqOwner<G, N> owner() noexcept { return RunqOwner<G, N>(*this); }
  RunqStealer<G, N> stealer() noexcept { return RunqStealer<G, N>(*this); }

 private:
  friend class RunqOwner<G, N>;
  friend class RunqStealer<G, N>;
  template <class G2, std::uint32_t N2>
  friend bool runqempty(const RunQueue<G2, N2>& q);
  template <class G2, std::uint32_t N2>
  friend std::uint32_t runqlen(const RunQueue<G2, N2>& q);

  G* slot(std::uint32_t i) const { return ring[i % N].load(std::memory_order_relaxed); }
  void set(std::uint32_t i, G* gp) { ring[i % N].store(gp, std::memory_order_relaxed); }

  alignas(64) std::atomic<std::uint32_t> head{0};  // moved by CAS: owner and thieves
  std::atomic<std::uint32_t> tail{0};              // stored only by the owner
  // runnext: a G readied by the running G, to run next in the remaining time
  // slice. Only the owner sets it non-null; thieves may CAS it to null.
  std::atomic<G*> runnext{nullptr};
  // Slots are atomics because a thief may read a slot the owner is
  // overwriting; its CAS on head then fails and the value is discarded.
  std::atomic<G*> ring[N] = {};
};

// runqempty reports whether q has no Gs. It never returns true spuriously:
// head, tail and runnext are read so that a G moving from runnext to the
// ring (runqput with next) is seen in one place or the other.
template <class G, std::uint32_t N>
bool runqempty(const RunQueue<G, N>& q) {
  for (;;) {
    std::uint32_t head = q.head.load(std::memory_order_seq_cst);
    std::uint32_t tail = q.tail.load(std::memory_order_seq_cst);
    G* runnext = q.runnext.load(std::memory_order_seq_cst);
    if (tail == q.tail.load(std::memory_order_seq_cst)) return head == tail && runnext == nullptr;
  }
}

// Number of Gs in the ring, and whether runnext is set (for stats).
template <class G, std::uint32_t N>
std::uint32_t runqlen(const RunQueue<G, N>& q) {
  std::uint32_t n = q.tail.load(std::memory_order_acquire) - q.head.load(std::memory_order_acquire);
  if (n > N) n = N;
  return n + (q.runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
}

// What another M may do to a queue: be stolen from, by runqsteal into the
// thief's own queue (an owner view). Nothing else.
template <class G, std::uint32_t N>
class RunqStealer {
 private:
  friend class RunQueue<G, N>;
  friend class RunqOwner<G, N>;
  explicit RunqStealer(RunQueue<G, N>& q) noexcept : q_(q) {}

  // runqgrab takes half of the queue's Gs into batch[batchHead...] (the
  // thief's ring). With stealRunNextG and an empty ring it takes runnext,
  // first backing off ~3us if the victim's P is running: the usual case is
  // a G that readied another and is about to block, and stealing in that
  // window would thrash. victimRunning() reports whether the victim's P is
  // running. Returns the count.
  template <class VictimRunning>
  std::uint32_t runqgrab(RunQueue<G, N>& batch, std::uint32_t batchHead, bool stealRunNextG,
                         VictimRunning&& victimRunning) {
    RunQueue<G, N>& q = q_;
    for (;;) {
      std::uint32_t h = q.head.load(std::memory_order_seq_cst);  // synchronize with other consumers
      std::uint32_t t = q.tail.load(std::memory_order_seq_cst);  // synchronize with the producer
      std::uint32_t n = t - h;
      n = n - n / 2;
      if (n == 0) {
        if (stealRunNextG) {
          G* next = q.runnext.load(std::memory_order_seq_cst);
          if (next != nullptr) {
            if (victimRunning()) {
              struct timespec ts = {0, 3000};
              nanosleep(&ts, nullptr);
            }
            if (!q.runnext.compare_exchange_strong(next, nullptr, std::memory_order_seq_cst)) continue;
            batch.set(batchHead, next);
            return 1;
          }
        }
        return 0;
      }
      if (n > N / 2) continue;  // read an inconsistent h and t
      for (std::uint32_t i = 0; i < n; i++) batch.set(batchHead + i, q.slot(h + i));
      if (q.head.compare_exchange_strong(h, h + n, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        return n;
      }
    }
  }

  RunQueue<G, N>& q_;
};

// What the queue's owner does: put, get, take runnext, and steal from
// another queue's stealer view into this one.
template <class G, std::uint32_t N>
class RunqOwner {
 public:
  // runqput puts gp on the queue. With next, gp goes to runnext and the G
  // it displaces is kicked to the tail of the ring. A full ring spills to
  // the global queue (then it returns true): putGlobal(GQueueT<G> batch, n)
  // appends under the global lock.
  template <class PutGlobal>
  bool runqput(G* gp, bool next, PutGlobal&& putGlobal) {
    RunQueue<G, N>& q = q_;
    if (next) {
      G* old = q.runnext.load(std::memory_order_relaxed);
      while (!q.runnext.compare_exchange_weak(old, gp, std::memory_order_seq_cst)) {
      }
      if (old == nullptr) return false;
      gp = old;  // kick the old runnext out to the regular run queue
    }
    for (;;) {
      std::uint32_t h = q.head.load(std::memory_order_acquire);  // synchronize with consumers
      std::uint32_t t = q.tail.load(std::memory_order_relaxed);
      if (t - h < N) {
        q.set(t, gp);
        // seq_cst, not just release: the caller's wakep then loads npidle
        // and nmspinning, and that store->load order is half of the
        // delicate dance (a spinning M drops nmspinning, then re-checks
        // every ring).
        q.tail.store(t + 1, std::memory_order_seq_cst);
        return false;
      }
      if (runqputslow(gp, h, t, putGlobal)) return true;
      // The ring is not full now: the put above must succeed.
    }
  }

  // runqget takes a G: runnext first, then the ring head. inheritTime is
  // true for runnext (the G shares the current time slice).
  G* runqget(bool& inheritTime) {
    RunQueue<G, N>& q = q_;
    // If there's a runnext, it's the next G to run. Only the owner sets it
    // non-null, so a CAS failure means a thief took it: fall back to the
    // ring.
    G* next = q.runnext.load(std::memory_order_relaxed);
    if (next != nullptr && q.runnext.compare_exchange_strong(next, nullptr, std::memory_order_seq_cst)) {
      inheritTime = true;
      return next;
    }
    inheritTime = false;
    for (;;) {
      std::uint32_t h = q.head.load(std::memory_order_acquire);  // synchronize with other consumers
      std::uint32_t t = q.tail.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      G* gp = q.slot(h);
      if (q.head.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_relaxed)) {
        return gp;
      }
    }
  }

  // Takes runnext out (nullptr if empty), leaving the ring alone: a slice
  // that is over, or a P being destroyed.
  G* takeRunnext() { return q_.runnext.exchange(nullptr, std::memory_order_seq_cst); }

  // runqsteal steals half of victim's Gs into this queue and returns one
  // of them to run (nullptr if there was nothing), racing with the
  // victim's owner and with other thieves; *nstolen is the count moved
  // (incl. the returned G).
  template <class VictimRunning>
  G* runqsteal(RunqStealer<G, N> victim, bool stealRunNextG, VictimRunning&& victimRunning,
               std::uint32_t* nstolen = nullptr) {
    RunQueue<G, N>& q = q_;
    std::uint32_t t = q.tail.load(std::memory_order_relaxed);
    std::uint32_t n = victim.runqgrab(q, t, stealRunNextG, victimRunning);
    if (nstolen != nullptr) *nstolen = n;
    if (n == 0) return nullptr;
    n--;
    G* gp = q.slot(t + n);
    if (n == 0) return gp;
    std::uint32_t h = q.head.load(std::memory_order_acquire);
    if (t - h + n >= N) {
      detail::fatal("runqsteal: runq overflow");
    }
    q.tail.store(t + n, std::memory_order_seq_cst);  // makes the items available
    return gp;
  }

 private:
  friend class RunQueue<G, N>;
  explicit RunqOwner(RunQueue<G, N>& q) noexcept : q_(q) {}

  // runqputslow moves gp and half of the full ring to the global queue in
  // one batch, so the global lock is taken once per N/2 Gs. Returns false
  // if a thief emptied part of the ring meanwhile (the caller retries the
  // fast path).
  template <class PutGlobal>
  bool runqputslow(G* gp, std::uint32_t h, std::uint32_t t, PutGlobal&& putGlobal) {
    RunQueue<G, N>& q = q_;
    G* batch[N / 2 + 1];
    std::uint32_t n = (t - h) / 2;
    if (n != N / 2) {
      // The ring is not full: the caller raced with a thief.
      return false;
    }
    for (std::uint32_t i = 0; i < n; i++) batch[i] = q.slot(h + i);
    if (!q.head.compare_exchange_strong(h, h + n, std::memory_order_release, std::memory_order_relaxed)) {
      return false;
    }
    batch[n] = gp;
    GQueueT<G> queue;
    for (std::uint32_t i = 0; i <= n; i++) queue.pushBack(batch[i]);
    putGlobal(queue, n + 1);
    return true;
  }

  RunQueue<G, N>& q_;
};

}  // namespace goro::runtime
