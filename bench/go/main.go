// Command gobench runs the Go twins of goro's scheduler benchmarks and prints
// one JSON object per benchmark and line:
// {"name": ..., "per_op_ns": ..., "ops": ..., "size": ..., "runs": ...}.
// per_op_ns is the median of -runs timed runs after one warm-up run; size is
// the work one run covers (ops, or leaves for skynet), which bench/compare
// checks against goro's before it compares the times.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"time"
)

type benchmark struct {
	name  string
	procs int
	// run performs the workload once and returns the measured time, the
	// number of operations that time covers and the size of the work.
	run func(scale float64) (time.Duration, int64, int64)
}

var benchmarks = []benchmark{
	{"yield/procs:1", 1, yieldRun},
	{"spawn_exit/procs:2", 2, spawnExitRun},
	{"park_ready/procs:1", 1, parkReadyRun},
	{"park_ready/procs:2", 2, parkReadyRun},
	{"skynet/procs:2", 2, skynetRun},
	{"chan_pingpong/procs:1", 1, chanPingPongRun},
	{"chan_pingpong/procs:2", 2, chanPingPongRun},
	{"chan_prodcons_1x1/procs:2", 2, chanProdCons1x1Run},
	{"chan_prodcons_4x4/procs:2", 2, chanProdCons4x4Run},
	{"skynet_chan/procs:2", 2, skynetChanRun},
	{"mutex_contended/procs:2", 2, mutexContendedRun},
	{"select4/procs:1", 1, select4Run},
	{"syscall_bare/procs:1", 1, syscallBareRun},
	{"syscall_fastpath/procs:1", 1, syscallFastpathRun},
	{"sema_collide/waiters:0", 1, semaCollideRun(0)},
	{"sema_collide/waiters:1000", 1, semaCollideRun(1000)},
	{"sema_collide/waiters:10000", 1, semaCollideRun(10000)},
	{"sema_collide/waiters:20000", 1, semaCollideRun(20000)},
	{"preempt_latency/procs:1", 1, preemptLatencyRun},
}

type result struct {
	Name    string  `json:"name"`
	PerOpNs float64 `json:"per_op_ns"`
	Ops     int64   `json:"ops"`
	Size    int64   `json:"size"`
	Runs    int     `json:"runs"`
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func measure(b benchmark, scale float64, runs int) result {
	runtime.GOMAXPROCS(b.procs)
	b.run(scale) // warm-up
	perOp := make([]float64, 0, runs)
	var ops, size int64
	for i := 0; i < runs; i++ {
		runtime.GC() // start every timed run from a collected heap
		var d time.Duration
		d, ops, size = b.run(scale)
		perOp = append(perOp, float64(d.Nanoseconds())/float64(ops))
	}
	return result{Name: b.name, PerOpNs: median(perOp), Ops: ops, Size: size, Runs: runs}
}

func main() {
	pattern := flag.String("bench", ".", "run only benchmarks whose name matches this regexp")
	scale := flag.Float64("scale", 1.0, "multiply workload sizes by this factor")
	runs := flag.Int("runs", 3, "timed runs per benchmark (after one warm-up); the median is reported")
	list := flag.Bool("list", false, "list benchmark names and exit")
	version := flag.Bool("version", false, "print the Go version this program was built with and exit")
	flag.Parse()

	if *version {
		fmt.Println(runtime.Version())
		return
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gobench: bad -bench regexp: %v\n", err)
		os.Exit(2)
	}
	if !(*scale > 0) {
		fmt.Fprintln(os.Stderr, "gobench: -scale must be > 0")
		os.Exit(2)
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "gobench: -runs must be >= 1")
		os.Exit(2)
	}

	enc := json.NewEncoder(os.Stdout)
	for _, b := range benchmarks {
		if !re.MatchString(b.name) {
			continue
		}
		if *list {
			fmt.Println(b.name)
			continue
		}
		if err := enc.Encode(measure(b, *scale, *runs)); err != nil {
			fmt.Fprintf(os.Stderr, "gobench: %v\n", err)
			os.Exit(1)
		}
	}
}
