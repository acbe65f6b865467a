package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
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
func yieldRun(scale float64) (time.Duration, int64, int64) {
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
	return time.Since(start), 2 * n, 2 * n
}

// spawnExitRun: spawn count goroutines that each only decrement a shared
// counter; the one that reaches zero closes done. One op is one goroutine.
func spawnExitRun(scale float64) (time.Duration, int64, int64) {
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
	return time.Since(start), count, count
}

// semaPingPong: two goroutines pass a token back and forth n times through
// the runtime semaphores a and b; main waits for both. One op is one handoff
// (one park + one ready).
func semaPingPong(n int64, a, b *uint32) (time.Duration, int64, int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() { // A: pass the token to B, wait for it to come back.
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			runtime_Semrelease(b, false, 0)
			runtime_Semacquire(a)
		}
	}()
	go func() { // B: wait for the token, pass it back to A.
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			runtime_Semacquire(b)
			runtime_Semrelease(a, false, 0)
		}
	}()
	wg.Wait()
	return time.Since(start), 2 * n, 2 * n
}

// parkReadyRun: semaPingPong on two semaphores of their own.
func parkReadyRun(scale float64) (time.Duration, int64, int64) {
	var semA, semB uint32
	return semaPingPong(scaled(1000000, scale), &semA, &semB)
}

// semaRoots is the size of the runtime's semaphore table (Go's and goro's):
// an address's root is (addr>>3) % semaRoots, so semaphores semaRoots*8
// bytes apart share a root.
const semaRoots = 251

// collideSlot is a semaphore padded to semaRoots*8 bytes: all the slots of a
// []collideSlot hash to the same root.
type collideSlot struct {
	sem uint32
	_   [semaRoots*8 - 4]byte
}

// settleYields lets a waiter that was preempted between announcing itself
// and parking reach its semaphore before the clock starts.
const settleYields = 10

// semaCollideRun returns the workload of sema_collide/waiters:<waiters>: that
// many goroutines park on distinct semaphores of one root, then semaPingPong
// runs 10,000 times each way on two more semaphores of that root; only the
// ping-pong is timed. One op is one handoff, whose release must find its
// waiter among the others. Afterwards every waiter is released and joined,
// which leaves every semaphore at 0, so the slots (allocated once, so that
// the timed runs allocate nothing) serve every run.
func semaCollideRun(waiters int) func(scale float64) (time.Duration, int64, int64) {
	var slots []collideSlot
	return func(scale float64) (time.Duration, int64, int64) {
		if slots == nil {
			slots = make([]collideSlot, waiters+2)
		}
		n := scaled(10000, scale)
		var parked, exited sync.WaitGroup
		parked.Add(waiters)
		exited.Add(waiters)
		for j := 0; j < waiters; j++ {
			go func(s *uint32) {
				parked.Done()
				runtime_Semacquire(s)
				exited.Done()
			}(&slots[j+2].sem)
		}
		parked.Wait()
		for i := 0; i < settleYields; i++ {
			runtime.Gosched()
		}
		d, ops, size := semaPingPong(n, &slots[0].sem, &slots[1].sem)
		for j := 0; j < waiters; j++ {
			runtime_Semrelease(&slots[j+2].sem, false, 0)
		}
		exited.Wait()
		return d, ops, size
	}
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

// skynetSize is the number of leaves: the power of ten nearest (on a log
// scale) to scaled(1,000,000), between 10 and 10^9 - the same integer formula
// as skynet_size() in bench/goro_bench.cpp. 10^k is nearest when
// 10^(2k-1) <= n^2 < 10^(2k+1) (n^2 never equals an odd power of ten).
func skynetSize(scale float64) int64 {
	n := scaled(1000000, scale)
	if n > 1000000000 {
		n = 1000000000 // n^2 fits in an int64
	}
	size, bound := int64(10), int64(1000) // bound = 10^(2k+1)
	for k := 1; k < 9 && n*n >= bound; k++ {
		size *= 10
		bound *= 100
	}
	return size
}

// skynetRun: one whole root run is the op.
func skynetRun(scale float64) (time.Duration, int64, int64) {
	size := skynetSize(scale)
	start := time.Now()
	got := skynet(0, size, skynetDiv)
	elapsed := time.Since(start)
	if want := size * (size - 1) / 2; got != want {
		fmt.Fprintf(os.Stderr, "gobench: skynet(0, %d, %d) = %d, want %d\n", size, skynetDiv, got, want)
		os.Exit(1)
	}
	return elapsed, 1, size
}

// chanPingPongRun: A sends i on ping and waits for the reply on pong; B
// echoes every value back. Both channels are unbuffered. One op is one round
// trip (two channel handoffs).
func chanPingPongRun(scale float64) (time.Duration, int64, int64) {
	n := scaled(1000000, scale)
	ping := make(chan int)
	pong := make(chan int)
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	go func() { // A
		defer wg.Done()
		for i := 0; i < int(n); i++ {
			ping <- i
			<-pong
		}
	}()
	go func() { // B
		defer wg.Done()
		for i := 0; i < int(n); i++ {
			v := <-ping
			pong <- v
		}
	}()
	wg.Wait()
	return time.Since(start), n, n
}

const prodConsBuffer = 128

// chanProdCons1x1Run: one producer sends n ints into a buffered channel, one
// consumer receives them all. One op is one item.
func chanProdCons1x1Run(scale float64) (time.Duration, int64, int64) {
	n := scaled(4000000, scale)
	c := make(chan int, prodConsBuffer)
	var wg sync.WaitGroup
	var sum int64
	wg.Add(2)
	start := time.Now()
	go func() { // producer
		defer wg.Done()
		for i := 0; i < int(n); i++ {
			c <- i
		}
	}()
	go func() { // consumer
		defer wg.Done()
		var s int64
		for i := int64(0); i < n; i++ {
			s += int64(<-c)
		}
		sum = s
	}()
	wg.Wait()
	elapsed := time.Since(start)
	if want := n * (n - 1) / 2; sum != want {
		fmt.Fprintf(os.Stderr, "gobench: chan_prodcons_1x1 received sum %d, want %d\n", sum, want)
		os.Exit(1)
	}
	return elapsed, n, n
}

const prodConsWorkers = 4

// chanProdCons4x4Run: 4 producers each send n/4 ints into one buffered
// channel, which is closed once all producers are done; 4 consumers receive
// until it is closed. One op is one item.
func chanProdCons4x4Run(scale float64) (time.Duration, int64, int64) {
	per := scaled(4000000, scale) / prodConsWorkers
	if per < 1 {
		per = 1
	}
	n := per * prodConsWorkers
	c := make(chan int, prodConsBuffer)
	var producers, consumers sync.WaitGroup
	var received int64
	producers.Add(prodConsWorkers)
	consumers.Add(prodConsWorkers)
	start := time.Now()
	for p := 0; p < prodConsWorkers; p++ {
		go func() {
			defer producers.Done()
			for i := 0; i < int(per); i++ {
				c <- i
			}
		}()
	}
	for q := 0; q < prodConsWorkers; q++ {
		go func() {
			defer consumers.Done()
			var got int64
			for range c {
				got++
			}
			atomic.AddInt64(&received, got)
		}()
	}
	producers.Wait()
	close(c)
	consumers.Wait()
	elapsed := time.Since(start)
	if received != n {
		fmt.Fprintf(os.Stderr, "gobench: chan_prodcons_4x4 received %d items, want %d\n", received, n)
		os.Exit(1)
	}
	return elapsed, n, n
}

// skynetChan is skynet with channels: every node sends its sum on c; an inner
// node collects its div children's sums from a channel buffered with div.
func skynetChan(c chan int64, num, size, div int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64, div)
	for i := int64(0); i < div; i++ {
		go skynetChan(rc, num+i*size/div, size/div, div)
	}
	var sum int64
	for i := int64(0); i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

// skynetChanRun: one whole root run is the op.
func skynetChanRun(scale float64) (time.Duration, int64, int64) {
	size := skynetSize(scale)
	root := make(chan int64, 1) // buffered: the root's final send must not block
	start := time.Now()
	skynetChan(root, 0, size, skynetDiv) // the root runs on main, like skynet's
	got := <-root
	elapsed := time.Since(start)
	if want := size * (size - 1) / 2; got != want {
		fmt.Fprintf(os.Stderr, "gobench: skynet_chan(0, %d, %d) = %d, want %d\n", size, skynetDiv, got, want)
		os.Exit(1)
	}
	return elapsed, 1, size
}

const mutexWorkers = 4

// mutexContendedRun: 4 goroutines each lock, increment a shared counter and
// unlock n/4 times. One op is one Lock/Unlock pair.
func mutexContendedRun(scale float64) (time.Duration, int64, int64) {
	per := scaled(4000000, scale) / mutexWorkers
	if per < 1 {
		per = 1
	}
	n := per * mutexWorkers
	var mu sync.Mutex
	var counter int64
	var wg sync.WaitGroup
	wg.Add(mutexWorkers)
	start := time.Now()
	for g := 0; g < mutexWorkers; g++ {
		go func() {
			defer wg.Done()
			for i := int64(0); i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if counter != n {
		fmt.Fprintf(os.Stderr, "gobench: mutex_contended counter = %d, want %d\n", counter, n)
		os.Exit(1)
	}
	return elapsed, n, n
}

// select4Run: a sender does n selects over sends on 4 unbuffered channels, a
// receiver does n selects over receives from the same 4 channels. One op is
// one transfer (one select on each side).
func select4Run(scale float64) (time.Duration, int64, int64) {
	n := scaled(1000000, scale)
	c0 := make(chan int)
	c1 := make(chan int)
	c2 := make(chan int)
	c3 := make(chan int)
	var wg sync.WaitGroup
	var sum int64
	wg.Add(2)
	start := time.Now()
	go func() { // sender
		defer wg.Done()
		for i := 0; i < int(n); i++ {
			select {
			case c0 <- i:
			case c1 <- i:
			case c2 <- i:
			case c3 <- i:
			}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		var s int64
		for i := int64(0); i < n; i++ {
			var v int
			select {
			case v = <-c0:
			case v = <-c1:
			case v = <-c2:
			case v = <-c3:
			}
			s += int64(v)
		}
		sum = s
	}()
	wg.Wait()
	elapsed := time.Since(start)
	if want := n * (n - 1) / 2; sum != want {
		fmt.Fprintf(os.Stderr, "gobench: select4 received sum %d, want %d\n", sum, want)
		os.Exit(1)
	}
	return elapsed, n, n
}

// syscallLoopRun: one goroutine makes n getppid system calls through call,
// main waits for it. One op is one call.
func syscallLoopRun(scale float64, call func() uintptr) (time.Duration, int64, int64) {
	n := scaled(1000000, scale)
	ppid := uintptr(os.Getppid())
	var wrong int64
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			if call() != ppid {
				wrong++
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	if wrong != 0 {
		fmt.Fprintf(os.Stderr, "gobench: getppid returned a wrong pid %d times\n", wrong)
		os.Exit(1)
	}
	return elapsed, n, n
}

// syscallBareRun: syscall.RawSyscall, which does not tell the scheduler.
func syscallBareRun(scale float64) (time.Duration, int64, int64) {
	return syscallLoopRun(scale, func() uintptr {
		r, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		return r
	})
}

// syscallFastpathRun: syscall.Syscall, i.e. entersyscall/exitsyscall around
// the call (the P stays reserved for the quick return).
func syscallFastpathRun(scale float64) (time.Duration, int64, int64) {
	return syscallLoopRun(scale, func() uintptr {
		r, _, _ := syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
		return r
	})
}

// forcePreempt is Go's time slice (runtime.forcePreemptNS), goro's too.
const forcePreempt = 10 * time.Millisecond

// preemptLatencyRun: GOMAXPROCS=1; n times, a goroutine records when it
// starts running and then spins on an atomic load, with no call in its
// loop, so only asynchronous preemption can stop it; main, queued behind
// it (Gosched), runs again only once the spinner is preempted. One
// latency is main's wake time - (the spinner's start + forcePreempt): from
// the spinner's slice expiring to the waiting goroutine running. The time
// returned is the median of the n latencies (ops = 1, size = n).
func preemptLatencyRun(scale float64) (time.Duration, int64, int64) {
	n := scaled(50, scale)
	lat := make([]float64, 0, n)
	base := time.Now()
	for i := int64(0); i < n; i++ {
		var start atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			start.Store(int64(time.Since(base)) + 1)
			for !stop.Load() {
			}
			wg.Done()
		}()
		for start.Load() == 0 {
			runtime.Gosched()
		}
		woke := int64(time.Since(base)) + 1
		stop.Store(true)
		wg.Wait()
		lat = append(lat, float64(woke-start.Load()-int64(forcePreempt)))
	}
	return time.Duration(median(lat)), 1, n
}
