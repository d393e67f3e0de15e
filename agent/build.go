package agent

import (
	"fmt"
	"io"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/plugins"
)

// closer is a check that holds a process or another resource until closed.
type closer interface{ Close() error }

// buildJobs makes a job for every configured check. logs receives Go
// plugins' own warnings.
func buildJobs(cfgs []conf.Check, logs io.Writer) ([]*job, error) {
	jobs := make([]*job, 0, len(cfgs))
	for _, cfg := range cfgs {
		j := &job{cfg: cfg, build: builder(cfg, logs)}
		if cfg.ArgCount() == 0 {
			c, err := j.build(cfg.Args)
			if err != nil {
				closeJobs(jobs)
				return nil, fmt.Errorf("check %s: %w", cfg.Name, err)
			}
			j.check = c
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// builder returns how to make cfg's check with a given set of arguments.
func builder(cfg conf.Check, logs io.Writer) func(args []string) (checks.Check, error) {
	switch {
	case cfg.Builtin != "":
		return func(args []string) (checks.Check, error) {
			spec, ok := checks.Lookup(cfg.Builtin)
			if !ok {
				return nil, fmt.Errorf("no check named %q", cfg.Builtin)
			}
			return spec.New(args)
		}
	case cfg.Plugin != "":
		return func(args []string) (checks.Check, error) {
			return plugins.NewExec(cfg.Plugin, args, plugins.ExecOptions{Timeout: cfg.Timeout.D(), TimeoutState: cfg.TimeoutState.S()})
		}
	default:
		return func(args []string) (checks.Check, error) {
			return plugins.NewGo(cfg.GoPlugin, args, plugins.GoOptions{Timeout: cfg.Timeout.D(), TimeoutState: cfg.TimeoutState.S(), Log: logs})
		}
	}
}

// closeJobs stops what the jobs' checks hold, such as Go plugin processes.
func closeJobs(jobs []*job) {
	for _, j := range jobs {
		if c, ok := j.check.(closer); ok {
			c.Close()
		}
	}
}
