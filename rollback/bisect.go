package rollback

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/immune-ops/immune/rollback/gitrepo"
)

// StateBisecting: pushing halves of a rolled-back push's range again to
// find the commit that harmed.
const StateBisecting State = "bisecting"

// BisectRecord is the search for the culprit, step by step.
type BisectRecord struct {
	// Good and Bad index the push's commits oldest first: Good the newest
	// known good (-1: the live revision), Bad the oldest known bad.
	Good  int          `json:"good"`
	Bad   int          `json:"bad"`
	Steps []BisectStep `json:"steps,omitempty"`
	// Culprit is the one commit left; Doubt why the search gave up (then
	// the whole range is reverted).
	Culprit *gitrepo.Commit `json:"culprit,omitempty"`
	Doubt   string          `json:"doubt,omitempty"`
	Began   time.Time       `json:"began"`
}

// BisectStep is one short push of a revision of the range.
type BisectStep struct {
	Revision string `json:"revision"`
	Outcome  string `json:"outcome"` // good, bad
	Reason   string `json:"reason"`
}

// ArtifactStore keeps an artifact the coordinator built, for the agents
// to fetch by its sha256.
type ArtifactStore func(path string) (sha256 string, err error)

// wantsBisect reports whether a push rolled back for a breach should
// look for its culprit.
func (c *Coordinator) wantsBisect(p *Push) bool {
	return c.fleet().Bisect.Enabled && c.Repo != nil && c.Artifacts != nil && len(p.Range) > 1 &&
		p.Aborted == "" && !strings.Contains(p.Reason, "deploy failed") && !strings.Contains(p.Reason, "FAILED")
}

// bisect pushes the middle commit of what is left to the first phase's
// hosts, judges it like a phase, and narrows the range, until one commit
// is left or the search must give up; then it goes on to the revert.
func (c *Coordinator) bisect(ctx context.Context, p *Push, h *History) error {
	b := p.Bisect
	if b == nil {
		b = &BisectRecord{Good: -1, Bad: len(p.Range) - 1, Began: time.Now().UTC()}
		p.Bisect = b
	}
	cfg := c.fleet().Bisect
	oldest := func(i int) gitrepo.Commit { return p.Range[len(p.Range)-1-i] }
	for b.Bad-b.Good > 1 && b.Doubt == "" {
		if len(b.Steps) >= cfg.MaxSteps || time.Since(b.Began) > cfg.Timeout.D() {
			b.Doubt = fmt.Sprintf("gave up after %d steps and %s", len(b.Steps), time.Since(b.Began).Round(time.Second))
			break
		}
		mid := (b.Good + b.Bad) / 2
		commit := oldest(mid)
		if err := c.step(p, StateBisecting, "bisect: pushing %s (%s by %s) to the first phase's hosts", commit.Short(), commit.Subject, commit.Author); err != nil {
			return err
		}
		bad, reason, err := c.trial(ctx, p, h, commit.SHA)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.Doubt = fmt.Sprintf("%s could not be judged: %v", commit.Short(), err)
			break
		}
		outcome := "good"
		if bad {
			outcome, b.Bad = "bad", mid
		} else {
			b.Good = mid
		}
		b.Steps = append(b.Steps, BisectStep{Revision: commit.SHA, Outcome: outcome, Reason: reason})
		c.event(p, "bisect: %s is %s: %s", commit.Short(), outcome, reason)
	}
	if b.Doubt != "" {
		return c.step(p, StateReverting, "bisect: %s; reverting the whole range", b.Doubt)
	}
	culprit := oldest(b.Bad)
	b.Culprit = &culprit
	p.Reason += fmt.Sprintf("; culprit: %s %s by %s", culprit.Short(), culprit.Subject, culprit.Author)
	return c.step(p, StateReverting, "bisect: the culprit is %s (%s by %s); reverting it alone", culprit.Short(), culprit.Subject, culprit.Author)
}

// trial pushes one revision to the first phase's hosts for a phase's
// window, judges it, and puts the hosts back: bad says it breached.
func (c *Coordinator) trial(ctx context.Context, p *Push, h *History, revision string) (bad bool, reason string, err error) {
	sum, err := c.buildArtifact(ctx, revision)
	if err != nil {
		return false, "", err
	}
	t := &Push{ID: p.ID + "-bisect", Revision: revision, SHA256: sum, Previous: p.Previous,
		Phases: []PushPhase{{Percent: p.Phases[0].Percent, Hosts: p.Phases[0].Hosts}}}
	// The hosts rest, then the window before the short push is sampled.
	if err := c.sampleFor(ctx, h, c.fleet().Bisect.Settle.D()+c.fleet().Windows.Baseline.D(), nil); err != nil {
		return false, "", err
	}
	ph := &t.Phases[0]
	c.anchorAt(t, h, time.Now())
	ph.Started, ph.Switched, ph.Deployed = time.Now().UTC(), map[string]time.Time{}, map[string]string{}
	url := c.ArtifactURL(t.ID, sum)
	for _, name := range ph.Hosts {
		host := c.host(name)
		if err := c.deployHost(ctx, host, revision, url, sum); err != nil {
			c.putBack(ctx, t)
			return false, "", fmt.Errorf("deploy to %s: %w", name, err)
		}
		ph.Switched[name], ph.Deployed[name] = time.Now().UTC(), ""
	}
	defer c.putBack(ctx, t)
	var v Verdict
	var done bool
	err = c.sampleFor(ctx, h, -1, func() (bool, error) {
		v, done = c.look(t, h, time.Now())
		return done, nil
	})
	if err != nil {
		return false, "", err
	}
	switch v.Outcome {
	case Fail:
		return true, v.Reason, nil
	case Pass:
		return false, v.Reason, nil
	}
	return false, "", fmt.Errorf("inconclusive: %s", v.Reason)
}

// putBack switches a trial's hosts back to what they ran before the push.
func (c *Coordinator) putBack(ctx context.Context, t *Push) {
	for name := range t.Phases[0].Switched {
		if _, err := c.agents().Rollback(ctx, c.host(name), t.Previous[name]); err != nil {
			c.Log.Error("bisect: could not put a host back", "host", name, "err", err)
		}
	}
}

// buildArtifact makes a revision's artifact with bisect.build and stores it.
func (c *Coordinator) buildArtifact(ctx context.Context, revision string) (string, error) {
	dir, err := os.MkdirTemp("", "immune-bisect-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "release.tar.gz")
	argv := expand(c.fleet().Bisect.Build, map[string]string{"{revision}": revision, "{out}": out})
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.fleet().Revert.Repo
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w: %s", revision, err, strings.TrimSpace(string(msg)))
	}
	if err := checkArtifact(out); err != nil {
		return "", fmt.Errorf("build %s: %w", revision, err)
	}
	return c.Artifacts(out)
}

func expand(argv []string, vars map[string]string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		for k, v := range vars {
			a = strings.ReplaceAll(a, k, v)
		}
		out[i] = a
	}
	return out
}
