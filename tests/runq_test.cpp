// runq_test.cpp — the per-P run queue (runq.hpp): FIFO order, runnext,
// overflow to the global queue, stealing half, and a stress test with an
// owner and two concurrent thieves. Rings of 4 slots exercise every
// wrap-around path, as Tokio tests its queue.
#include "runq.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "export_test.hpp"

namespace {

using goro::runtime::GQueueT;
using goro::runtime::RunQueue;

struct FakeG {
  int id = 0;
  FakeG* schedlink = nullptr;
  std::atomic<int> taken{0};
};

template <std::uint32_t N>
struct Harness {
  RunQueue<FakeG, N> q;
  GQueueT<FakeG> global;
  std::uint32_t global_n = 0;
  int spills = 0;
  void put(FakeG* g, bool next) {
    q.owner().runqput(g, next, [this](GQueueT<FakeG> batch, std::uint32_t n) {
      global.pushBackAll(batch);
      global_n += n;
      spills++;
    });
  }
  FakeG* get() {
    bool inherit = false;
    return q.owner().runqget(inherit);
  }
};

TEST(RunQueue, FIFOOrder) {
  Harness<256> h;
  std::vector<FakeG> gs(100);
  for (int i = 0; i < 100; i++) {
    gs[i].id = i;
    h.put(&gs[i], false);
  }
  for (int i = 0; i < 100; i++) {
    FakeG* g = h.get();
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->id, i);
  }
  EXPECT_EQ(h.get(), nullptr);
  EXPECT_TRUE(goro::runtime::runqempty(h.q));
}

TEST(RunQueue, FIFOAcrossWrapAround) {
  Harness<4> h;
  std::vector<FakeG> gs(1000);
  int next_put = 0, next_get = 0;
  // Keep 0..3 elements in a 4-slot ring while head and tail wrap many times.
  for (int round = 0; round < 250; round++) {
    for (int k = 0; k < 3; k++) {
      gs[next_put].id = next_put;
      h.put(&gs[next_put], false);
      next_put++;
    }
    for (int k = 0; k < 3; k++) {
      FakeG* g = h.get();
      ASSERT_NE(g, nullptr);
      EXPECT_EQ(g->id, next_get++);
    }
  }
  EXPECT_EQ(h.spills, 0);
}

TEST(RunQueue, RunnextRunsFirstAndInheritsTime) {
  Harness<256> h;
  FakeG a, b;
  h.put(&a, false);
  h.put(&b, true);
  bool inherit = false;
  EXPECT_EQ(h.q.owner().runqget(inherit), &b);
  EXPECT_TRUE(inherit);
  EXPECT_EQ(h.q.owner().runqget(inherit), &a);
  EXPECT_FALSE(inherit);
}

TEST(RunQueue, RunnextKicksOldToTail) {
  Harness<256> h;
  FakeG a, b, c, d;
  h.put(&a, false);
  h.put(&b, true);
  h.put(&c, true);  // b is kicked out behind a
  h.put(&d, false);
  EXPECT_EQ(h.get(), &c);
  EXPECT_EQ(h.get(), &a);
  EXPECT_EQ(h.get(), &b);
  EXPECT_EQ(h.get(), &d);
  EXPECT_EQ(h.get(), nullptr);
}

TEST(RunQueue, FullRingSpillsHalfPlusOneToGlobal) {
  Harness<4> h;
  FakeG gs[5];
  for (int i = 0; i < 5; i++) {
    gs[i].id = i;
    h.put(&gs[i], false);
  }
  // The 5th put found the ring full: 2 (half) + the new G went global, in
  // one batch, oldest first.
  EXPECT_EQ(h.spills, 1);
  EXPECT_EQ(h.global_n, 3u);
  EXPECT_EQ(h.global.pop()->id, 0);
  EXPECT_EQ(h.global.pop()->id, 1);
  EXPECT_EQ(h.global.pop()->id, 4);
  EXPECT_EQ(h.get()->id, 2);
  EXPECT_EQ(h.get()->id, 3);
  EXPECT_EQ(h.get(), nullptr);
}

TEST(RunQueue, FullRingOf256Spills129) {
  Harness<256> h;
  std::vector<FakeG> gs(257);
  for (auto& g : gs) h.put(&g, false);
  EXPECT_EQ(h.spills, 1);
  EXPECT_EQ(h.global_n, 129u);
  EXPECT_EQ(goro::runtime::runqlen(h.q), 128u);
}

TEST(RunQueue, StealTakesHalf) {
  Harness<256> victim, thief;
  std::vector<FakeG> gs(10);
  for (int i = 0; i < 10; i++) {
    gs[i].id = i;
    victim.put(&gs[i], false);
  }
  std::uint32_t n = 0;
  FakeG* g = thief.q.owner().runqsteal(
      victim.q.stealer(), false, [] { return false; }, &n);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(g->id, 4);  // the last stolen is returned to run
  EXPECT_EQ(goro::runtime::runqlen(thief.q), 4u);
  EXPECT_EQ(goro::runtime::runqlen(victim.q), 5u);
  for (int i = 0; i < 4; i++) EXPECT_EQ(thief.get()->id, i);
  for (int i = 5; i < 10; i++) EXPECT_EQ(victim.get()->id, i);
}

TEST(RunQueue, StealRoundsUpOddCounts) {
  Harness<4> victim, thief;
  FakeG gs[3];
  for (auto& g : gs) victim.put(&g, false);
  std::uint32_t n = 0;
  ASSERT_NE(thief.q.owner().runqsteal(
                victim.q.stealer(), false, [] { return false; }, &n),
            nullptr);
  EXPECT_EQ(n, 2u);
}

TEST(RunQueue, RunnextStolenOnlyWhenAsked) {
  Harness<256> victim, thief;
  FakeG a;
  victim.put(&a, true);
  EXPECT_FALSE(goro::runtime::runqempty(victim.q));
  EXPECT_EQ(thief.q.owner().runqsteal(victim.q.stealer(), false, [] { return false; }), nullptr);
  bool backed_off = false;
  FakeG* g = thief.q.owner().runqsteal(victim.q.stealer(), true, [&] { return backed_off = true; });
  EXPECT_EQ(g, &a);
  EXPECT_TRUE(backed_off) << "a running victim's runnext is stolen only after the back-off";
  EXPECT_TRUE(goro::runtime::runqempty(victim.q));
}

// The owner puts and gets while two thieves steal; every G must be taken
// exactly once (none lost, none run twice), and the spills to the global
// queue are drained too.
template <std::uint32_t N>
void StressOwnerAndTwoThieves(std::int64_t total) {
  std::vector<FakeG> gs(static_cast<std::size_t>(total));
  for (std::size_t i = 0; i < gs.size(); i++) gs[i].id = static_cast<int>(i);
  Harness<N> owner;
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> taken{0};
  auto take = [&](FakeG* g) {
    ASSERT_EQ(g->taken.fetch_add(1), 0) << "G " << g->id << " taken twice";
    taken.fetch_add(1);
  };
  auto thief = [&] {
    Harness<N> mine;
    while (!done.load()) {
      if (FakeG* g = mine.q.owner().runqsteal(owner.q.stealer(), true, [] { return true; })) {
        take(g);
        while (FakeG* h = mine.get()) take(h);
      }
    }
  };
  std::thread t1(thief), t2(thief);
  std::int64_t i = 0;
  std::uint32_t r = 12345;
  while (i < total) {
    r = r * 1103515245 + 12345;
    int puts = 1 + static_cast<int>((r >> 16) % 7);
    for (int k = 0; k < puts && i < total; k++, i++) owner.put(&gs[static_cast<std::size_t>(i)], (r >> 8) & 1);
    if ((r >> 20) % 3 == 0) {
      if (FakeG* g = owner.get()) take(g);
    }
  }
  while (FakeG* g = owner.get()) take(g);
  done.store(true);
  t1.join();
  t2.join();
  while (FakeG* g = owner.global.pop()) take(g);
  EXPECT_EQ(taken.load(), total);
  for (auto& g : gs) ASSERT_EQ(g.taken.load(), 1) << "G " << g.id << " lost";
}

TEST(RunQueueStress, OwnerAndTwoThievesRing4) { StressOwnerAndTwoThieves<4>(goro::testing::scaled(2000000, 20)); }
TEST(RunQueueStress, OwnerAndTwoThievesRing256) { StressOwnerAndTwoThieves<256>(goro::testing::scaled(3000000, 20)); }

}  // namespace
