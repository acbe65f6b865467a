package main

import (
	_ "unsafe" // for go:linkname
)

// Go has no public gopark/goready. The closest primitive the runtime exposes
// is the semaphore that package sync is built on: semacquire parks the calling
// goroutine on a wait queue keyed by the address, semrelease readies one
// waiter (without handoff it goes to the releasing P's runnext slot, like
// goready). The bodies live in package runtime; the empty .s file in this
// package lets these bodyless declarations compile.

//go:linkname runtime_Semacquire sync.runtime_Semacquire
func runtime_Semacquire(s *uint32)

//go:linkname runtime_Semrelease sync.runtime_Semrelease
func runtime_Semrelease(s *uint32, handoff bool, skipframes int)
