package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// scaled returns base*scale rounded, but at least 1.
func scaled(base int64, scale float64) int64 {
	n := int64(math.Round(float64(base) * scale))
	if n < 1 {
		n = 1
	}
	return n
}

// yieldRun: two goroutines each call runtime.Gosched n times.
// One op is one Gosched (one switch).
func yieldRun(scale float64) (time.Duration, int64) {
	n := scaled(2000000, scale)
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			defer wg.Done()
			for i := int64(0); i < n; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), 2 * n
}

// spawnExitRun: spawn count goroutines that each only decrement a shared
// counter; the one that reaches zero closes done. One op is one goroutine.
func spawnExitRun(scale float64) (time.Duration, int64) {
	count := scaled(1000000, scale)
	remaining := count
	done := make(chan struct{})
	start := time.Now()
	for i := int64(0); i < count; i++ {
		go func() {
			if atomic.AddInt64(&remaining, -1) == 0 {
				close(done)
			}
		}()
	}
	<-done
	return time.Since(start), count
}

// parkReadyRun: two goroutines pass a token back and forth n times through
// the runtime semaphore. One op is one handoff (one park + one ready).
func parkReadyRun(scale float64) (time.Duration, int64) {
	n := scaled(1000000, scale)
	var semA, semB uint32
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() { // A: pass the token to B, wait for it to come back.
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			runtime_Semrelease(&semB, false, 0)
			runtime_Semacquire(&semA)
		}
	}()
	go func() { // B: wait for the token, pass it back to A.
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			runtime_Semacquire(&semB)
			runtime_Semrelease(&semA, false, 0)
		}
	}()
	wg.Wait()
	return time.Since(start), 2 * n
}

const skynetDiv = 10

// skynet sums num..num+size-1 by recursively spawning div children per
// level; each child writes its result into its own slot.
func skynet(num, size, div int64) int64 {
	if size == 1 {
		return num
	}
	var results [skynetDiv]int64
	var wg sync.WaitGroup
	sub := size / div
	wg.Add(int(div))
	for i := int64(0); i < div; i++ {
		go func(i int64) {
			results[i] = skynet(num+i*sub, sub, div)
			wg.Done()
		}(i)
	}
	wg.Wait()
	var sum int64
	for i := int64(0); i < div; i++ {
		sum += results[i]
	}
	return sum
}

// skynetSize is 1,000,000*scale rounded to a power of ten, at least 10.
func skynetSize(scale float64) int64 {
	exp := math.Round(math.Log10(1e6 * scale))
	if exp < 1 || math.IsNaN(exp) {
		exp = 1
	}
	if exp > 9 {
		exp = 9
	}
	return int64(math.Pow(10, exp))
}

// skynetRun: one whole root run is the op.
func skynetRun(scale float64) (time.Duration, int64) {
	size := skynetSize(scale)
	start := time.Now()
	got := skynet(0, size, skynetDiv)
	elapsed := time.Since(start)
	if want := size * (size - 1) / 2; got != want {
		fmt.Fprintf(os.Stderr, "gobench: skynet(0, %d, %d) = %d, want %d\n", size, skynetDiv, got, want)
		os.Exit(1)
	}
	return elapsed, 1
}
