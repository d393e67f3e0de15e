package gitrepo

import (
	"context"
	"fmt"
	"strings"
)

// Commit is one commit of a push's range, as people are told of it.
type Commit struct {
	SHA     string `json:"sha"`
	Author  string `json:"author"`
	Email   string `json:"email"`
	Subject string `json:"subject"`
}

// Short is the commit's id as people read it.
func (c Commit) Short() string { return short(c.SHA) }

func short(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

// IsAncestor reports whether a is b or one of b's ancestors: a push must
// descend from the revision live before it. Either revision unknown is an
// error, not false.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	for _, rev := range []string{a, b} {
		if err := CheckRevision(rev); err != nil {
			return false, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isAncestor(ctx, a, b)
}

func (r *Repo) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := r.command(ctx, r.Dir, nil, "merge-base", "--is-ancestor", "--", a, b).query()
	switch exitCode(err) {
	case 0:
		return true, nil
	case 1:
		return false, nil
	}
	return false, fmt.Errorf("is %s an ancestor of %s in %s: %w", a, b, r.Dir, err)
}

// Range is every commit in from..to but merges, newest first: the commits
// a push of to brings onto from. The order is topological (a commit comes
// before its parents), so reverting in this order never reverts a commit
// before one built on it. The commits merged from a side branch are in the
// range, each on its own, and the merge commit is not: reverting them undoes
// the merge's changes unless it resolved conflicts, which git then reports.
// Both revisions must be known to the working copy (Resolve them first);
// from need not be an ancestor of to, which IsAncestor checks.
func (r *Repo) Range(ctx context.Context, from, to string) ([]Commit, error) {
	for _, rev := range []string{from, to} {
		if err := CheckRevision(rev); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var shas [2]string
	for i, rev := range []string{from, to} {
		sha, ok, err := r.resolve(ctx, rev)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &revisionError{kind: ErrUnknownRevision, msg: fmt.Sprintf("revision %s is not in %s", rev, r.Dir)}
		}
		shas[i] = sha
	}
	out, err := r.command(ctx, r.Dir, nil, "log", "--no-merges", "--topo-order", "--format=%H%x00%an%x00%ae%x00%s%x00",
		"--end-of-options", shas[0]+".."+shas[1], "--").query()
	if err != nil {
		return nil, fmt.Errorf("list the commits %s..%s in %s: %w", short(shas[0]), short(shas[1]), r.Dir, err)
	}
	return parseLog(out)
}

// parseLog reads records of git log --format=%H%x00%an%x00%ae%x00%s%x00.
func parseLog(out string) ([]Commit, error) {
	var commits []Commit
	for rec := range strings.SplitSeq(out, "\x00\n") {
		if rec == "" {
			continue
		}
		f := strings.Split(rec, "\x00")
		if len(f) != 4 || !shaRE.MatchString(f[0]) {
			return nil, fmt.Errorf("git log printed %q, not a commit", rec)
		}
		commits = append(commits, Commit{SHA: f[0], Author: f[1], Email: f[2], Subject: f[3]})
	}
	return commits, nil
}
