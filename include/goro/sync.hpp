// goro/sync.hpp — Go's sync package, one header per type under goro/sync/:
// Mutex, RWMutex, WaitGroup, Once, Cond. Waiting parks the goroutine (or
// blocks a plain thread) on the runtime's semaphores; the algorithms are
// Go's (sync/mutex.go, rwmutex.go, waitgroup.go, once.go, cond.go).
#pragma once

#include <goro/sync/cond.hpp>
#include <goro/sync/mutex.hpp>
#include <goro/sync/once.hpp>
#include <goro/sync/rwmutex.hpp>
#include <goro/sync/waitgroup.hpp>
