package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/fixtures/fleetmodel"
)

// verdictsTable measures the judge the way statisticians do: every
// scenario of fleetmodel pushed over many seeds on a virtual clock with
// the coordinator's own judging code, and scored: the share of good pushes
// rolled back, the share of bad ones caught (for the right gauge), and the
// time from the first harm to the rollback, in sample intervals.
func verdictsTable(ctx context.Context, w io.Writer, goodSeeds, badSeeds int) error {
	began := time.Now()
	type job struct {
		s    fleetmodel.Scenario
		seed uint64
	}
	jobs := make(chan job)
	results := map[string][]fleetmodel.Result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r := j.s.Run(j.seed)
				mu.Lock()
				results[j.s.Name] = append(results[j.s.Name], r)
				mu.Unlock()
			}
		}()
	}
feed:
	for _, s := range fleetmodel.Scenarios {
		n := goodSeeds
		if s.Bad {
			n = badSeeds
		}
		for seed := 1; seed <= n; seed++ {
			select {
			case jobs <- job{s, uint64(seed) * 7919}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nThe judge over many seeds (fleetmodel: 24 www, 4 db, 6 chat; %s samples, confidence 99%%):\n\n", fleetmodel.Interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpush\tpushes\trolled back\tright gauge\tto rollback, median\tp95\tmax\t")
	var good, goodRolled, bad, badCaught, badRight int
	var gross []float64
	for _, s := range fleetmodel.Scenarios {
		rs := results[s.Name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].Seed < rs[j].Seed })
		sum := fleetmodel.Summarize(s, rs)
		kind := "good"
		if s.Bad {
			kind = "bad"
			bad += sum.Pushes
			badCaught += sum.RolledBack
			badRight += sum.RightGauge
			if s.Gross {
				for _, r := range rs {
					if r.RolledBack {
						gross = append(gross, r.ToRollback)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.0f\t%.0f\t%.0f\t\n", s.Name, kind, sum.Pushes, share(sum.RolledBack, sum.Pushes),
				sum.RightGauge, sum.MedianToRollback, sum.P95ToRollback, sum.MaxToRollback)
			continue
		}
		good += sum.Pushes
		goodRolled += sum.RolledBack
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\t\t\t\t\n", s.Name, kind, sum.Pushes, share(sum.RolledBack, sum.Pushes))
	}
	tw.Flush()
	sort.Float64s(gross)
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tresult\ttarget\t")
	fmt.Fprintf(tw, "good pushes rolled back\t%s of %d\t≤ 1%%\t\n", share(goodRolled, good), good)
	fmt.Fprintf(tw, "bad pushes caught\t%s of %d\t≥ 95%%\t\n", share(badCaught, bad), bad)
	fmt.Fprintf(tw, "caught for the right gauge\t%s of %d\t\t\n", share(badRight, badCaught), badCaught)
	if len(gross) > 0 {
		fmt.Fprintf(tw, "gross harm to rollback, median / p95\t%.0f / %.0f samples\t≤ 3 samples\t\n", percentile(gross, 0.5), percentile(gross, 0.95))
	}
	tw.Flush()
	fmt.Fprintf(w, "(%d pushes in %s)\n", good+bad, time.Since(began).Round(time.Second))
	return nil
}

func share(n, of int) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

// percentile of sorted xs by the nearest rank.
func percentile(xs []float64, q float64) float64 {
	i := int(float64(len(xs))*q+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
