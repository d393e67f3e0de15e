package rollback

import (
	"context"
	"fmt"
	"strings"

	"github.com/immune-ops/immune/rollback/gitrepo"
)

// preflight checks a revision against the working copy before a push is
// accepted, and returns the live revision and the commits the push brings.
// Without a working copy there is nothing to check.
func (c *Coordinator) preflight(ctx context.Context, revision, force string) (string, []gitrepo.Commit, error) {
	if c.Repo == nil {
		return "", nil, nil
	}
	if _, err := c.Repo.Fetch(ctx); err != nil {
		return "", nil, fmt.Errorf("%w: fetch before checking %s: %v", ErrRefused, revision, err)
	}
	sha, err := c.Repo.Resolve(ctx, revision)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	base, err := c.liveRevision(ctx)
	if err != nil {
		return "", nil, err
	}
	if base != "" {
		if _, err := c.Repo.Resolve(ctx, base); err != nil {
			base = "" // the live revision is gone (rewritten history): judge the push alone
		} else if ok, err := c.Repo.IsAncestor(ctx, base, sha); err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrRefused, err)
		} else if !ok && strings.TrimSpace(force) == "" {
			return "", nil, fmt.Errorf("%w: %s does not descend from the live revision %s: it would drop commits that are live (push --force \"why\" to do it anyway)",
				ErrRefused, revision, shortRev(base))
		}
	}
	commits, err := c.Repo.Range(ctx, base, sha)
	if err != nil {
		return "", nil, fmt.Errorf("%w: list the commits since %s: %v", ErrRefused, shortRev(base), err)
	}
	if len(commits) == 0 {
		return "", nil, fmt.Errorf("%w: %s brings no commit over the live revision %s", ErrRefused, revision, shortRev(base))
	}
	return base, commits, nil
}

// liveRevision is the revision of the newest push that went live; before
// any, what the first agent that answers runs.
func (c *Coordinator) liveRevision(ctx context.Context) (string, error) {
	pushes, err := c.Store.Pushes(0)
	if err != nil {
		return "", fmt.Errorf("read pushes: %w", err)
	}
	for _, p := range pushes {
		if p.State == StateLive || p.State == StateWatching {
			if len(p.Range) > 0 {
				return p.Range[0].SHA, nil
			}
			return p.Revision, nil
		}
	}
	if c.agents() == nil {
		return "", nil
	}
	for _, h := range c.fleet().Hosts {
		if r, err := c.agents().Release(ctx, h); err == nil && r.Current != "" {
			if sha, err := c.Repo.Resolve(ctx, r.Current); err == nil {
				return sha, nil
			}
			return "", nil
		}
	}
	return "", nil
}

// rangeText says what a push brings, for its first event.
func rangeText(p *Push) string {
	if len(p.Range) == 0 {
		return ""
	}
	parts := make([]string, len(p.Range))
	for i, cm := range p.Range {
		parts[i] = fmt.Sprintf("%s %s (%s)", cm.Short(), cm.Subject, cm.Author)
	}
	s := fmt.Sprintf("; brings %d commit(s): %s", len(p.Range), strings.Join(parts, "; "))
	if p.Forced != "" {
		s += "; forced over the live revision by " + p.Forced
	}
	return s
}
