// hello.cpp — the smallest goro program: goroutines on a work-stealing
// scheduler, started with goro::go and run by goro::run.
#include <atomic>
#include <cstdio>
#include <goro/goro.hpp>

int main() {
  return goro::run([] {
    std::atomic<int> done{0};
    for (int i = 0; i < 10; i++) {
      goro::go(
          [&done](int id) {
            std::printf("hello from goroutine %d (goid %llu)\n", id, static_cast<unsigned long long>(goro::goid()));
            done.fetch_add(1);
          },
          i);
    }
    while (done.load() < 10) goro::yield();
    return 0;
  });
}
