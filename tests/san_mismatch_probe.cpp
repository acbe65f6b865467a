// san_mismatch_probe.cpp — a program built with -fsanitize=thread against a
// goro built without it. It must not link (goro/runtime.hpp): the test that
// builds it (tests/CMakeLists.txt) expects the undefined reference that names
// the mismatch. Never run.
#include "goro/goro.hpp"

int main() {
  return goro::run([] { return 0; });
}
