package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/immune-ops/immune/conf"
)

// schedRun is one scheduler running: a reload starts a new one and retires
// the old once its checks in flight and the NRPE queries using it are done.
type schedRun struct {
	sched  *Scheduler
	cancel context.CancelFunc
	done   chan struct{}
	// users counts the NRPE queries that hold this scheduler.
	users sync.WaitGroup
}

func startScheduler(ctx context.Context, s *Scheduler) *schedRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &schedRun{sched: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		s.Run(ctx)
	}()
	return r
}

// stop ends the run's schedule and waits for its checks and queries.
func (r *schedRun) stop() {
	r.cancel()
	<-r.done
	r.users.Wait()
}

// useScheduler is the scheduler NRPE queries run checks with; release
// tells a reload that the query is done with it.
func (a *Agent) useScheduler() (*Scheduler, func()) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.run == nil {
		return a.sched, func() {}
	}
	r := a.run
	r.users.Add(1)
	return a.sched, r.users.Done
}

// stopScheduler stops the running scheduler at the end of Run.
func (a *Agent) stopScheduler() {
	a.mu.Lock()
	r := a.run
	a.run = nil
	a.mu.Unlock()
	if r != nil {
		r.stop()
	}
}

// Reload puts a new config in force without a restart: the checks, their
// schedules, max_concurrent and the gauges change at once; a check run or
// an NRPE query in flight ends on the old config. Settings bound to what the
// agent opened at start (listeners, TLS, data dir, passive targets, deploy)
// keep their old values until a restart, and the result names them. When
// the new checks cannot be built, nothing changes and the error says why.
func (a *Agent) Reload(cfg *conf.Agent) (restartNeeded []string, err error) {
	jobs, names, err := a.buildAllJobs(cfg.Checks)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	next := *cfg
	restartNeeded = conf.KeepSettings(&next, a.cfg, StartupSettings...)
	sched := NewScheduler(jobs, a.store, next.MaxConcurrent, a.log)

	a.mu.Lock()
	oldJobs, oldRun := a.jobs, a.run
	a.cfg, a.jobs, a.sched = &next, jobs, sched
	if oldRun != nil {
		a.run = startScheduler(a.runCtx, sched)
	}
	a.mu.Unlock()

	a.store.Keep(names)
	if a.gauges != nil {
		a.gauges.Configure(next.Gauges)
	}
	go func() {
		if oldRun != nil {
			oldRun.stop()
		}
		closeJobs(oldJobs)
	}()
	return restartNeeded, nil
}

// StartupSettings are the agent's settings bound to what it opened at
// start: a reload keeps their old values until a restart.
var StartupSettings = []string{"host", "host_type", "data_dir", "nrpe", "http", "passive", "deploy"}
