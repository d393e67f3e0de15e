package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/immune-ops/immune/fixtures/simfleet"
)

var (
	judgeSeeds    = flag.Int("judge-seeds", 10, "judge: pushes of each scenario, one seed each")
	judgeParallel = flag.Int("judge-parallel", 8, "judge: pushes at once, each with its own coordinator and simulated fleet")
)

// judgeBudget bounds the judge's table: runs not started by then are
// counted as failed rather than waited for.
const judgeBudget = 10 * time.Minute

// judgeTable is issue 11's table: every scenario of fixtures/simfleet (good
// pushes in noise, surges and outages; bad ones from gross to slow burns
// and harm at scale) pushed through bin/immune-coordinator with many seeds,
// and scored: false rollbacks of good pushes, detection of bad ones, the
// right gauge named, and the time from the harm to the first rollback.
func judgeTable(ctx context.Context, w io.Writer, bin string) error {
	coordinator := filepath.Join(bin, "immune-coordinator")
	if _, err := os.Stat(coordinator); err != nil {
		return fmt.Errorf("judge: %w (make build puts it there)", err)
	}
	dir, err := os.MkdirTemp("", "benchtable-judge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	seeds := make([]uint64, max(*judgeSeeds, 1))
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	scenarios := simfleet.Scenarios()
	ctx, cancel := context.WithTimeout(ctx, judgeBudget)
	defer cancel()
	r := &simfleet.Runner{Coordinator: coordinator, Dir: dir, Parallel: *judgeParallel}
	began := time.Now()
	scores := r.RunAll(ctx, scenarios, seeds, nil)
	t := simfleet.DefaultTiming
	fmt.Fprintf(w, "\nJudge: %d scenarios x %d seeds pushed through %s on simulated fleets (www x24, db x4, chat x6), %d at once, in %s\n",
		len(scenarios), len(seeds), coordinator, *judgeParallel, time.Since(began).Round(time.Second))
	fmt.Fprintf(w, "(sample interval %s, baseline %s, observe %s, phases 5%% and 100%%; times in sample intervals)\n\n",
		t.SampleInterval, t.Baseline, t.Observe)
	return simfleet.Summarize(scores).Write(w)
}
