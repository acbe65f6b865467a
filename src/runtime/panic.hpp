// panic.hpp — fatal errors and unrecovered panics (Go's throw and fatalpanic).
// Invariant: both print to stderr with write(2) only (safe in a signal
// handler or with runtime locks held), then the goroutine dump, then abort.
// Mirrors panic.go.
#pragma once

namespace goro::detail {

// Go's throw: "fatal error: <msg>", a goroutine dump, abort. For broken
// runtime invariants, never for user errors (those throw exceptions).
[[noreturn]] void fatal(const char* msg);

}  // namespace goro::detail

namespace goro::runtime {

// An unrecovered panic in the current goroutine: "panic: <what>" and the
// dump, then abort (SIGABRT).
[[noreturn]] void fatalpanic(const char* what);

// Writes s to stderr with write(2).
void printerr(const char* s);
void printerr_u64(unsigned long long v);

}  // namespace goro::runtime
