// Command timer_lateness is the Go twin of goro's bench/timer_lateness.cpp:
// 5 rounds of 100,000 goroutines that each sleep a random 1–100 ms
// (time.Sleep) and record how late they woke (wake time minus start +
// duration). It prints one JSON line: p50/p99/max lateness (µs) over all
// wakeups and the process's CPU time (getrusage user+sys) per wakeup (ns),
// measured over the 5 rounds. GOMAXPROCS is Go's default.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
)

const (
	rounds     = 5
	goroutines = 100000
	minSleep   = time.Millisecond
	maxSleep   = 100 * time.Millisecond
)

type result struct {
	Name           string  `json:"name"`
	Procs          int     `json:"procs"`
	Goroutines     int64   `json:"goroutines"`
	Rounds         int     `json:"rounds"`
	Wakeups        int     `json:"wakeups"`
	P50Us          float64 `json:"p50_us"`
	P99Us          float64 `json:"p99_us"`
	MaxUs          float64 `json:"max_us"`
	CPUPerWakeupNs float64 `json:"cpu_per_wakeup_ns"`
}

// cpuNs is the user plus system CPU time of the whole process so far.
func cpuNs() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintf(os.Stderr, "timer_lateness: getrusage: %v\n", err)
		os.Exit(1)
	}
	return float64(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func main() {
	scale := flag.Float64("scale", 1.0, "multiply the goroutine count by this factor")
	flag.Parse()
	if !(*scale > 0) {
		fmt.Fprintln(os.Stderr, "timer_lateness: -scale must be > 0")
		os.Exit(2)
	}
	n := int64(math.Round(goroutines * *scale))
	if n < 1 {
		n = 1
	}
	total := int(n) * rounds

	// Durations are drawn before the clock starts; lateness[k] is sample k.
	rng := rand.New(rand.NewSource(1))
	sleeps := make([]time.Duration, total)
	for k := range sleeps {
		sleeps[k] = minSleep + time.Duration(rng.Int63n(int64(maxSleep-minSleep)+1))
	}
	lateness := make([]time.Duration, total)

	var wg sync.WaitGroup
	cpu0 := cpuNs()
	for r := 0; r < rounds; r++ {
		wg.Add(int(n))
		for k := r * int(n); k < (r+1)*int(n); k++ {
			go func(d time.Duration, out *time.Duration) {
				start := time.Now()
				time.Sleep(d)
				*out = time.Since(start) - d
				wg.Done()
			}(sleeps[k], &lateness[k])
		}
		wg.Wait()
	}
	cpu := cpuNs() - cpu0

	sort.Slice(lateness, func(i, j int) bool { return lateness[i] < lateness[j] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	res := result{
		Name:           "timer_lateness",
		Procs:          runtime.GOMAXPROCS(0),
		Goroutines:     n,
		Rounds:         rounds,
		Wakeups:        total,
		P50Us:          us(percentile(lateness, 0.50)),
		P99Us:          us(percentile(lateness, 0.99)),
		MaxUs:          us(lateness[total-1]),
		CPUPerWakeupNs: cpu / float64(total),
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "timer_lateness: %v\n", err)
		os.Exit(1)
	}
}
