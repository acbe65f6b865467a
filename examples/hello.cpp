// hello.cpp — the smallest goro program: goroutines that report over a
// channel, started with goro::go and run by goro::run.
#include <cstdio>
#include <goro/goro.hpp>

int main() {
  return goro::run([] {
    goro::Chan<int> results;
    for (int i = 0; i < 10; i++) {
      goro::go([results](int id) mutable { results.send(id * id); }, i);
    }
    int sum = 0;
    for (int i = 0; i < 10; i++) sum += *results.recv();
    std::printf("sum of squares: %d\n", sum);
    return sum == 285 ? 0 : 1;
  });
}
