// sema_test.cpp — the semaphore table (sema.cpp). First alone, with no
// run: sudogs queued and dequeued directly (sema_enqueue, sema_dequeue,
// sema_detach) on many addresses of one root, checked against a model
// (FIFO per address, lifo at the head, removal from the middle) with the
// treap's invariants after every step. Then through semacquire and
// semrelease: many distinct addresses on one root (they sit 251*8 bytes
// apart, so they hash alike) each with several waiters, goroutines and
// plain threads mixed. Checks FIFO wakeups per address, lifo waiters
// going first, releases never waking another address's waiter, the
// detaching of goroutines abandoned on semaphores at the end of a run, and
// a two-core stress of the whole (for TSan). sema_invariant_violation
// checks the treap's order, heap, links and nwait after each step.
#include "sema.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "export_test.hpp"
#include "fixtures.hpp"
#include "goro/goro.hpp"

namespace {

using goro::runtime::sema_dequeue;
using goro::runtime::sema_detach;
using goro::runtime::sema_enqueue;
using goro::runtime::sema_invariant_violation;
using goro::runtime::sema_root_index;
using goro::runtime::sema_waiters;
using goro::runtime::semacquire;
using goro::runtime::semrelease;
using goro::runtime::Sudog;
using goro::runtime::WaitReason;
using goro::testing::run_checked;
using goro::testing::scaled;
using goro::testing::wait_until;

using Sem = std::atomic<std::uint32_t>;

// Semaphores that all hash to the same root of the 251-root table: the
// table hashes addr>>3, so addresses 251*8 bytes apart collide.
class CollidingSems {
 public:
  static constexpr std::size_t kStride = 251 * 8 / sizeof(Sem);
  explicit CollidingSems(std::size_t n) : n_(n), mem_(new Sem[n * kStride]()) {}
  Sem& operator[](std::size_t i) { return mem_[i * kStride]; }
  std::size_t size() const { return n_; }

 private:
  std::size_t n_;
  std::unique_ptr<Sem[]> mem_;
};

// --- the table alone: sudogs queued by hand, no goroutine, no run --------

// Whether s has no link into the table left (what a waiter gets back).
bool unlinked(const Sudog* s) {
  return s->next == nullptr && s->prev == nullptr && s->parent == nullptr && s->left == nullptr &&
         s->right == nullptr && s->waittail == nullptr && s->priority == 0;
}

// The addresses these tests queue on collide, as they assume; the next
// word does not.
TEST(SemaTable, CollidingAddressesShareARoot) {
  CollidingSems sems(64);
  for (std::size_t i = 1; i < sems.size(); i++) EXPECT_EQ(sema_root_index(&sems[i]), sema_root_index(&sems[0]));
  EXPECT_NE(sema_root_index(&sems[0] + 2), sema_root_index(&sems[0]));
}

// FIFO per address, lifo at the head, addresses independent; a dequeued
// sudog comes back with every link cleared, and an address nobody waits
// on yields nothing.
TEST(SemaTable, FifoPerAddressAndLifoAtTheHead) {
  CollidingSems sems(3);
  std::vector<Sudog> sg(8);
  sema_enqueue(&sg[0], &sems[1], false);
  sema_enqueue(&sg[1], &sems[0], false);
  sema_enqueue(&sg[2], &sems[1], false);
  sema_enqueue(&sg[3], &sems[2], true);  // lifo on an address nobody waits on
  sema_enqueue(&sg[4], &sems[1], false);
  sema_enqueue(&sg[5], &sems[1], true);  // lifo in front of a list
  sema_enqueue(&sg[6], &sems[2], false);
  sema_enqueue(&sg[7], &sems[0], true);  // lifo in front of a lone waiter
  ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
  EXPECT_EQ(sema_waiters(&sems[0]), 2u);
  EXPECT_EQ(sema_waiters(&sems[1]), 4u);
  EXPECT_EQ(sema_waiters(&sems[2]), 2u);
  const std::vector<std::pair<std::size_t, std::size_t>> order = {{1, 5}, {0, 7}, {1, 0}, {2, 3},
                                                                  {1, 2}, {2, 6}, {1, 4}, {0, 1}};
  for (auto [addr, want] : order) {
    Sudog* s = sema_dequeue(&sems[addr]);
    ASSERT_EQ(s, &sg[want]) << "address " << addr;
    EXPECT_EQ(s->elem, &sems[addr]);
    EXPECT_TRUE(unlinked(s)) << "sudog " << want << " still linked";
    const char* bad = sema_invariant_violation();
    ASSERT_EQ(bad, nullptr) << bad;
  }
  for (std::size_t i = 0; i < 3; i++) {
    EXPECT_EQ(sema_dequeue(&sems[i]), nullptr);
    EXPECT_EQ(sema_waiters(&sems[i]), 0u);
  }
}

// Removal from anywhere: from the middle of a list, its tail (waittail
// moves back), its head (the next waiter becomes the tree node in its
// place), and a lone node with tree children (the tree reshapes); the
// others keep their order.
TEST(SemaTable, DetachFromTheMiddle) {
  CollidingSems sems(16);
  std::vector<Sudog> lone(16), list(6);
  // Other addresses first, so that sems[8]'s node has tree neighbours.
  for (std::size_t i = 0; i < 16; i++) {
    if (i != 8) sema_enqueue(&lone[i], &sems[i], false);
  }
  for (Sudog& s : list) sema_enqueue(&s, &sems[8], false);
  ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
  auto detach = [](Sudog* s) {
    sema_detach(s);
    EXPECT_EQ(s->elem, nullptr);
    EXPECT_TRUE(unlinked(s));
    const char* bad = sema_invariant_violation();
    EXPECT_EQ(bad, nullptr) << bad;
  };
  detach(&list[2]);  // middle
  detach(&list[5]);  // tail
  detach(&list[0]);  // head: the node
  EXPECT_EQ(sema_waiters(&sems[8]), 3u);
  // Lone nodes all over the tree, which rotate down and are cut off.
  for (std::size_t i : {7, 0, 15, 4, 11}) detach(&lone[i]);
  EXPECT_EQ(sema_waiters(&sems[7]), 0u);
  for (std::size_t want : {1, 3, 4}) {
    Sudog* s = sema_dequeue(&sems[8]);
    ASSERT_EQ(s, &list[want]);
    EXPECT_TRUE(unlinked(s));
  }
  EXPECT_EQ(sema_dequeue(&sems[8]), nullptr);
  for (std::size_t i = 0; i < 16; i++) {
    if (i == 8 || i == 7 || i == 0 || i == 15 || i == 4 || i == 11) continue;
    EXPECT_EQ(sema_dequeue(&sems[i]), &lone[i]) << "address " << i;
  }
  const char* bad = sema_invariant_violation();
  EXPECT_EQ(bad, nullptr) << bad;
}

// Random queueing (FIFO and lifo), dequeueing and detaching on many
// addresses of one root and a few on other roots, against a model of each
// address's queue: after every step the treap's invariants hold (order by
// address, heap by priority, links, nwait), the touched address has the
// model's number of waiters, and every dequeue returns the model's head.
TEST(SemaTable, RandomOperationsMatchAModelAndKeepTheTreap) {
  constexpr int kSteps = 20000;  // not scaled down: single-threaded, a few seconds under TSan
  constexpr std::size_t kColliding = 64, kOthers = 8, kSudogs = 1500;
  CollidingSems sems(kColliding);
  std::vector<Sem> others(kOthers * 2);  // every other one: 16 bytes apart, on different roots
  std::vector<Sem*> addrs;
  for (std::size_t i = 0; i < kColliding; i++) addrs.push_back(&sems[i]);
  for (std::size_t i = 0; i < kOthers; i++) addrs.push_back(&others[2 * i]);
  std::vector<Sudog> pool(kSudogs);
  std::vector<Sudog*> idle;
  for (Sudog& s : pool) idle.push_back(&s);
  std::map<const void*, std::deque<Sudog*>> model;
  std::vector<Sudog*> queued;  // for picking one to detach
  std::mt19937 rng(11);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  std::size_t max_waiting = 0;
  for (int step = 0; step < kSteps; step++) {
    // Grow for the first half, then shrink: deep lists and large trees both.
    int grow = step < kSteps / 2 ? 60 : 35;
    int r = static_cast<int>(rng() % 100);
    Sem* a = addrs[pick(addrs.size())];
    if (r < grow && !idle.empty()) {
      Sudog* s = idle.back();
      idle.pop_back();
      bool lifo = rng() % 5 == 0;
      sema_enqueue(s, a, lifo);
      if (lifo) {
        model[a].push_front(s);
      } else {
        model[a].push_back(s);
      }
      queued.push_back(s);
    } else if (r < grow + (100 - grow) * 2 / 3) {
      Sudog* s = sema_dequeue(a);
      auto& q = model[a];
      if (q.empty()) {
        ASSERT_EQ(s, nullptr) << "step " << step;
        continue;
      }
      ASSERT_EQ(s, q.front()) << "step " << step << ": not the head of the address's queue";
      ASSERT_TRUE(unlinked(s)) << "step " << step;
      q.pop_front();
      queued.erase(std::find(queued.begin(), queued.end(), s));
      s->elem = nullptr;
      idle.push_back(s);
    } else if (!queued.empty()) {
      std::size_t k = pick(queued.size());
      Sudog* s = queued[k];
      a = static_cast<Sem*>(s->elem);
      sema_detach(s);
      ASSERT_TRUE(unlinked(s)) << "step " << step;
      auto& q = model[a];
      q.erase(std::find(q.begin(), q.end(), s));
      queued[k] = queued.back();
      queued.pop_back();
      idle.push_back(s);
    }
    max_waiting = std::max(max_waiting, queued.size());
    const char* bad = sema_invariant_violation();
    ASSERT_EQ(bad, nullptr) << bad << " after step " << step;
    ASSERT_EQ(sema_waiters(a), model[a].size()) << "step " << step;
  }
  EXPECT_GT(max_waiting, kSudogs / 4) << "the table never grew large";
  // Drain: every address yields its model queue, in order.
  for (Sem* a : addrs) {
    for (Sudog* want : model[a]) ASSERT_EQ(sema_dequeue(a), want);
    EXPECT_EQ(sema_dequeue(a), nullptr);
  }
  const char* bad = sema_invariant_violation();
  EXPECT_EQ(bad, nullptr) << bad;
}

// --- through semacquire and semrelease ------------------------------------

// Waiters on semaphores, goroutines or plain threads, started one at a
// time: each is queued before start returns, so an address's queue order
// is the start order (lifo ones aside).
class Waiters {
 public:
  struct Waiter {
    Sem* sem = nullptr;
    std::atomic<bool> woke{false};
  };

  ~Waiters() { join(); }

  // Starts a goroutine (from a goroutine only) or a plain thread that
  // acquires s, and waits until it is queued.
  Waiter* start(Sem& s, bool lifo, bool thread) {
    ws_.push_back(std::make_unique<Waiter>());
    Waiter* w = ws_.back().get();
    w->sem = &s;
    std::uint32_t before = sema_waiters(&s);
    auto body = [this, w, lifo] {
      semacquire(w->sem, lifo, lifo ? WaitReason::sync_mutex_lock : WaitReason::semacquire);
      woken_.fetch_add(1);  // before woke: whoever sees woke sees this count
      w->woke.store(true);
    };
    if (thread) {
      threads_.emplace_back(body);
    } else {
      goro::go(body);
    }
    EXPECT_TRUE(wait_until([&] { return sema_waiters(&s) == before + 1; })) << "waiter not queued";
    return w;
  }

  int woken() const { return woken_.load(); }

  // Releases whatever is still queued until every waiter has woken, so that
  // the test ends (also after a failed expectation).
  void drain() {
    EXPECT_TRUE(wait_until([&] {
      bool all = true;
      for (auto& w : ws_) {
        if (w->woke.load()) continue;
        all = false;
        if (sema_waiters(w->sem) > 0) semrelease(w->sem, false);
      }
      return all;
    })) << "waiters still blocked after draining";
  }

  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::unique_ptr<Waiter>> ws_;
  std::vector<std::thread> threads_;
  std::atomic<int> woken_{0};
};

// Releases s once and expects exactly w to wake: the count of woken waiters
// goes up by one, and it is w.
void release_expecting(Waiters& ws, Sem& s, Waiters::Waiter* w, int& released) {
  semrelease(&s, false);
  released++;
  EXPECT_TRUE(wait_until([&] { return w->woke.load(); })) << "the expected waiter did not wake";
  EXPECT_EQ(ws.woken(), released) << "a release woke more than one waiter";
}

// Many addresses on one root, several waiters each (every fourth a plain
// thread), queued round-robin so that the tree grows first and the lists
// after; some addresses also get lifo waiters. Releases in a shuffled order
// across addresses wake each address's waiters in queue order, one per
// release; releases of a colliding address nobody waits on wake nobody.
TEST(SemaTreap, ManyCollidingAddressesWakeFifoPerAddress) {
  run_checked(
      [] {
        constexpr std::size_t kAddrs = 48, kPer = 4;
        CollidingSems sems(kAddrs + 1);
        Sem& idle = sems[kAddrs];  // on the same root, never waited on
        Waiters ws;
        std::vector<std::vector<Waiters::Waiter*>> expect(kAddrs);  // per address, in wake order
        for (std::size_t j = 0; j < kPer; j++) {
          for (std::size_t i = 0; i < kAddrs; i++) {
            expect[i].push_back(ws.start(sems[i], false, (i + j) % 4 == 0));
          }
        }
        // lifo waiters take the head: on every third address one, on every
        // sixth a second one, which goes before the first.
        for (std::size_t i = 0; i < kAddrs; i += 3) {
          expect[i].insert(expect[i].begin(), ws.start(sems[i], true, false));
          if (i % 6 == 0) expect[i].insert(expect[i].begin(), ws.start(sems[i], true, i % 12 == 0));
        }
        ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
        for (std::size_t i = 0; i < kAddrs; i++) EXPECT_EQ(sema_waiters(&sems[i]), expect[i].size());

        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < kAddrs; i++) order.insert(order.end(), expect[i].size(), i);
        std::mt19937 rng(20240611);
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<std::size_t> next(kAddrs, 0);
        int released = 0;
        for (std::size_t k = 0; k < order.size(); k++) {
          std::size_t i = order[k];
          release_expecting(ws, sems[i], expect[i][next[i]++], released);
          EXPECT_EQ(sema_waiters(&sems[i]), expect[i].size() - next[i]);
          if (k % 8 == 0) {
            // A colliding address without waiters: the count stays there and
            // nobody wakes (checked by the next release's count).
            semrelease(&idle, false);
          }
          const char* bad = sema_invariant_violation();
          ASSERT_EQ(bad, nullptr) << bad << " after release " << k;
        }
        for (int i = 0; i < 20; i++) goro::yield();
        EXPECT_EQ(ws.woken(), released);
        EXPECT_EQ(idle.load(), (order.size() + 7) / 8);
        for (std::size_t i = 0; i < kAddrs; i++) EXPECT_EQ(sems[i].load(), 0u) << "address " << i;
        ws.drain();
        ws.join();
      },
      {.maxprocs = 2});
}

// lifo queues at the head of the address's list, whether the address has
// a list, waits alone, or nobody waits on it; the node it replaces keeps
// its place in the tree (other addresses around it).
TEST(SemaTreap, LifoWaiterGoesFirst) {
  run_checked([] {
    CollidingSems sems(9);
    Waiters ws;
    // Other addresses on the root, so that sems[4] has tree neighbours.
    std::vector<Waiters::Waiter*> others;
    for (std::size_t i : {0, 2, 6, 8, 1, 7}) others.push_back(ws.start(sems[i], false, false));
    Waiters::Waiter* a = ws.start(sems[4], false, false);
    Waiters::Waiter* b = ws.start(sems[4], false, true);
    Waiters::Waiter* c = ws.start(sems[4], false, false);
    Waiters::Waiter* l1 = ws.start(sems[4], true, false);
    Waiters::Waiter* l2 = ws.start(sems[4], true, true);
    Waiters::Waiter* d = ws.start(sems[4], false, false);
    // lifo on an address nobody waits on, then FIFO behind it.
    Waiters::Waiter* e = ws.start(sems[5], true, false);
    Waiters::Waiter* f = ws.start(sems[5], false, false);
    // lifo on an address with a single waiter.
    Waiters::Waiter* g = ws.start(sems[3], false, false);
    Waiters::Waiter* h = ws.start(sems[3], true, false);
    ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
    EXPECT_EQ(sema_waiters(&sems[4]), 6u);
    int released = 0;
    for (Waiters::Waiter* w : {l2, l1, a, b, c, d}) {
      release_expecting(ws, sems[4], w, released);
      ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
    }
    for (Waiters::Waiter* w : {e, f}) release_expecting(ws, sems[5], w, released);
    for (Waiters::Waiter* w : {h, g}) release_expecting(ws, sems[3], w, released);
    ASSERT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
    std::size_t k = 0;
    for (std::size_t i : {0, 2, 6, 8, 1, 7}) release_expecting(ws, sems[i], others[k++], released);
    ws.drain();
    ws.join();
  });
}

// Releases with nobody waiting on the address leave their counts there,
// for acquires that then do not block, even while other addresses of the
// root have waiters (a handoff release too): those waiters are not woken,
// and nwait ends back at 0.
TEST(SemaTreap, CountsArePerAddress) {
  run_checked(
      [] {
        CollidingSems sems(4);
        semrelease(&sems[1], false);
        semrelease(&sems[1], false);
        semacquire(&sems[1], false, WaitReason::semacquire);  // does not block
        EXPECT_EQ(sems[1].load(), 1u);
        Waiters ws;
        Waiters::Waiter* w0 = ws.start(sems[0], false, false);
        Waiters::Waiter* w2 = ws.start(sems[2], false, true);
        // sems[1] has a count: acquiring it does not take anything from the
        // waiters around it, and releasing it wakes nobody.
        semacquire(&sems[1], false, WaitReason::semacquire);
        semrelease(&sems[1], true);
        semacquire(&sems[1], false, WaitReason::semacquire);
        EXPECT_EQ(ws.woken(), 0);
        int released = 0;
        release_expecting(ws, sems[2], w2, released);
        release_expecting(ws, sems[0], w0, released);
        ws.join();
        EXPECT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
        for (std::size_t i = 0; i < sems.size(); i++) EXPECT_EQ(sema_waiters(&sems[i]), 0u);
      },
      {.maxprocs = 2});
}

// Goroutines abandoned on semaphores at the end of a run are detached from
// the table (teardown's sema_detach): tree nodes with and without waiters
// behind them, waiters behind a node (goroutine or plain thread), and a
// goroutine whose release came but that never ran again. Plain threads
// queued among them stay queued, in order, and the semaphores keep working
// from plain threads after the run.
TEST(SemaDetach, AbandonedGoroutinesLeaveTheTree) {
  constexpr std::size_t kAddrs = 24;
  CollidingSems sems(kAddrs + 1);
  Sem& released_early = sems[kAddrs];
  Waiters ws;
  // Per address, the plain-thread waiters in the order they must wake.
  std::vector<std::vector<Waiters::Waiter*>> threads(kAddrs);
  Waiters::Waiter* early = nullptr;
  int rc = goro::run(
      [&] {
        for (std::size_t i = 0; i < kAddrs; i++) {
          Sem& s = sems[i];
          auto gor = [&](bool lifo = false) { ws.start(s, lifo, false); };
          auto thr = [&] { threads[i].push_back(ws.start(s, false, true)); };
          switch (i % 5) {
            case 0:  // goroutine node with goroutines behind it, a thread last
              gor();
              gor();
              gor();
              thr();
              break;
            case 1:  // thread node, goroutines behind it between threads
              thr();
              gor();
              thr();
              gor();
              break;
            case 2:  // goroutine node, threads behind it
              gor();
              thr();
              gor();
              thr();
              break;
            case 3:  // a goroutine alone: a node without followers
              gor();
              break;
            case 4:  // a goroutine that went lifo in front of a thread
              thr();
              gor(true);
              break;
          }
        }
        // Woken (dequeued, readied into this P's runnext) but never run:
        // with one P and no yield before main returns, it stays abandoned
        // with its sudog off the table.
        early = ws.start(released_early, false, false);
        semrelease(&released_early, false);
        EXPECT_EQ(sema_waiters(&released_early), 0u);
        EXPECT_EQ(sema_invariant_violation(), nullptr) << sema_invariant_violation();
        return 3;
      },
      {.maxprocs = 1});
  EXPECT_EQ(rc, 3);
  // Only the plain threads are left, in their order.
  const char* bad = sema_invariant_violation();
  EXPECT_EQ(bad, nullptr) << bad;
  for (std::size_t i = 0; i < kAddrs; i++) EXPECT_EQ(sema_waiters(&sems[i]), threads[i].size()) << "address " << i;
  // The count its waiter never took (unless the runtime did run it after
  // all, before main returned: then that case was not exercised).
  ASSERT_NE(early, nullptr);
  EXPECT_EQ(released_early.load(), early->woke.load() ? 0u : 1u);
  int released = early->woke.load() ? 1 : 0;
  // Interleave addresses: wake the first thread of each, then the second.
  for (std::size_t k = 0; k < 2; k++) {
    for (std::size_t i = 0; i < kAddrs; i++) {
      if (k < threads[i].size()) release_expecting(ws, sems[i], threads[i][k], released);
    }
  }
  ws.join();
  bad = sema_invariant_violation();
  EXPECT_EQ(bad, nullptr) << bad;
  for (std::size_t i = 0; i < kAddrs; i++) EXPECT_EQ(sema_waiters(&sems[i]), 0u);
  // The semaphores still work from plain threads: pass a token back and
  // forth through two colliding addresses.
  constexpr int kRounds = 200;
  std::thread t([&] {
    for (int r = 0; r < kRounds; r++) {
      semacquire(&sems[0], false, WaitReason::semacquire);
      semrelease(&sems[1], false);
    }
  });
  for (int r = 0; r < kRounds; r++) {
    semrelease(&sems[0], false);
    semacquire(&sems[1], false, WaitReason::semacquire);
  }
  t.join();
  EXPECT_EQ(sems[0].load(), 0u);
  EXPECT_EQ(sems[1].load(), 0u);
  bad = sema_invariant_violation();
  EXPECT_EQ(bad, nullptr) << bad;
}

// Both cores, goroutines and plain threads, on many colliding addresses
// used as binary semaphores guarding plain counters (TSan checks the
// acquire/release ordering): lifo re-waits and handoff releases mixed in,
// and critical sections that yield so that waiters pile up on the root.
TEST(SemaStress, CollidingAddressesOnBothCores) {
  const int n = static_cast<int>(scaled(20000, 5));
  run_checked(
      [n] {
        constexpr std::size_t kAddrs = 16;
        constexpr int kGoroutines = 6, kThreads = 2;
        CollidingSems sems(kAddrs);
        std::vector<long> counters(kAddrs, 0);  // counters[i] only under sems[i]
        for (std::size_t i = 0; i < kAddrs; i++) sems[i].store(1);
        auto work = [&](int id) {
          std::uint32_t x = static_cast<std::uint32_t>(id) * 2654435761u + 1;
          for (int i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            std::size_t a = (x >> 16) % kAddrs;
            semacquire(&sems[a], i % 5 == 0, WaitReason::semacquire);
            counters[a]++;
            if (i % 8 == 0) goro::yield();
            semrelease(&sems[a], i % 7 == 0);
          }
        };
        goro::WaitGroup wg;
        for (int g = 0; g < kGoroutines; g++) {
          wg.add(1);
          goro::go([&, g] {
            work(g);
            wg.done();
          });
        }
        std::vector<std::thread> ts;
        for (int t = 0; t < kThreads; t++) ts.emplace_back(work, kGoroutines + t);
        wg.wait();
        for (auto& t : ts) t.join();
        long total = 0;
        for (std::size_t i = 0; i < kAddrs; i++) {
          total += counters[i];
          EXPECT_EQ(sems[i].load(), 1u) << "address " << i;
          EXPECT_EQ(sema_waiters(&sems[i]), 0u) << "address " << i;
        }
        EXPECT_EQ(total, static_cast<long>(kGoroutines + kThreads) * n);
        const char* bad = sema_invariant_violation();
        EXPECT_EQ(bad, nullptr) << bad;
      },
      {.maxprocs = 2});
}

}  // namespace
