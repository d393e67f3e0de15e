package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/counters"
	"github.com/immune-ops/immune/fixtures/memcached"
)

// counterWriters is how many goroutines count at once in the parallel run,
// as many PHP workers or request goroutines of one app would.
const counterWriters = 32

// countersTable is issue 5's table: counter increments per second against
// a real memcached, from one goroutine and from many, and the cost of one
// check_counter reading 60 buckets.
func countersTable(ctx context.Context, w io.Writer, d time.Duration) error {
	mc, err := memcached.Launch(memcached.Binary)
	if err != nil {
		return fmt.Errorf("start memcached (make bench-deps installs it): %w", err)
	}
	defer mc.Stop()
	client, err := counters.NewClient(mc.Addr)
	if err != nil {
		return err
	}
	cs, err := counters.New(client, counters.Options{})
	if err != nil {
		return err
	}
	incr := func(writers int) (float64, error) {
		var n atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) && ctx.Err() == nil {
					if err := cs.Incr(ctx, "bench_orders"); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return 0, err
		}
		return float64(n.Load()) / d.Seconds(), nil
	}
	one, err := incr(1)
	if err != nil {
		return err
	}
	many, err := incr(counterWriters)
	if err != nil {
		return err
	}
	// 60 full minutes of a counter, then the check reading them all.
	now := time.Now()
	for m := 1; m <= 60; m++ {
		at := now.Add(-time.Duration(m) * time.Minute)
		past, err := counters.New(client, counters.Options{Now: func() time.Time { return at }})
		if err != nil {
			return err
		}
		if err := past.Set(ctx, "bench_reads", 100); err != nil {
			return err
		}
	}
	fn, err := inProcess("check_counter", []string{"-H", "127.0.0.1", "-p", strconv.Itoa(mc.Port), "-k", "bench_reads", "-n", "60", "--missing=ok"})
	if err != nil {
		return err
	}
	runs := 200
	began := time.Now()
	perCPU, err := measure(runs, fn)
	if err != nil {
		return err
	}
	perWall := time.Since(began) / time.Duration(runs)
	fmt.Fprintf(w, "\nCounters in memcached (real memcached on loopback, %s per run)\n\n", d)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tresult\t")
	fmt.Fprintf(tw, "Incr, 1 goroutine\t%.0f/s\t\n", one)
	fmt.Fprintf(tw, "Incr, %d goroutines\t%.0f/s\t\n", counterWriters, many)
	fmt.Fprintf(tw, "check_counter over 60 buckets, one GetMulti\t%s wall, %s CPU\t\n", round(perWall), round(perCPU))
	return tw.Flush()
}
