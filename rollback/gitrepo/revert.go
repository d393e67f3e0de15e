package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrConflict is a revert git could not make without a person: a later
// commit changed the same lines.
var ErrConflict = errors.New("conflict")

// RevertOptions say how RevertRange reverts.
type RevertOptions struct {
	// PerCommit makes a revert commit for each commit. The default is one
	// commit for the whole range, whose message lists them: the range went
	// live together and is taken back together.
	PerCommit bool
	// Reason says why, in every revert commit's message: the push, its
	// verdict and the page that shows them.
	Reason string
	// Name and Email make the revert commits' author and committer
	// (default: the working copy's git config).
	Name, Email string
}

// Result is what RevertRange or Push did, with every git run.
type Result struct {
	// Base is the branch's head the reverts were made on: the remote's,
	// just fetched.
	Base string `json:"base,omitempty"`
	// Reverts are the revert commits made, oldest first. A commit whose
	// changes are undone already makes none, so a range reverted by hand
	// before makes no commit at all.
	Reverts []string `json:"reverts,omitempty"`
	// Head is the branch's head after: the last revert, or Base.
	Head string `json:"head,omitempty"`
	// Runs are the git runs in order, with what each printed.
	Runs []Run `json:"runs"`
}

// Output is every run as a terminal would have shown it.
func (r Result) Output() string {
	var b strings.Builder
	for _, run := range r.Runs {
		b.WriteString(run.String())
	}
	return b.String()
}

// RevertRange reverts commits, newest first as Range lists them, on top of
// the remote's branch as just fetched: the working copy's branch is reset
// to it first, and anything else in the working copy is thrown away. It is
// all or nothing: on any failure, a conflict above all, the revert is
// aborted and the branch is reset to the remote's again, clean. Nothing is
// pushed: Push does that.
func (r *Repo) RevertRange(ctx context.Context, commits []Commit, opts RevertOptions) (Result, error) {
	var res Result
	if len(commits) == 0 {
		return res, errors.New("revert: no commits to revert")
	}
	for _, c := range commits {
		if !shaRE.MatchString(c.SHA) {
			return res, badRevision("revert: %q is not a full commit id", c.SHA)
		}
	}
	ident, err := opts.identity()
	if err != nil {
		return res, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkNames(); err != nil {
		return res, err
	}
	if err := r.checkTopLevel(ctx); err != nil {
		return res, err
	}
	if _, err := r.fetch(ctx, &res); err != nil {
		return res, err
	}
	base, ok, err := r.resolve(ctx, r.tracking())
	if err != nil {
		return res, err
	}
	if !ok {
		return res, fmt.Errorf("revert: %s has no branch %s (after git fetch)", r.Remote, r.Branch)
	}
	res.Base, res.Head = base, base
	if err := r.reset(ctx, &res, base); err != nil {
		return res, err
	}
	for _, c := range commits {
		on, err := r.isAncestor(ctx, c.SHA, base)
		if err != nil {
			return res, err
		}
		if !on {
			return res, fmt.Errorf("revert: commit %s (%s) is not on %s/%s, so it cannot be reverted there", c.Short(), c.Subject, r.Remote, r.Branch)
		}
	}
	if err := r.revertAll(ctx, &res, commits, opts, ident); err != nil {
		// Nothing half done stays for the next revert to trip on.
		if rerr := r.reset(ctx, &res, base); rerr != nil {
			err = errors.Join(err, rerr)
		}
		res.Reverts, res.Head = nil, base
		return res, err
	}
	return res, nil
}

// identity is the git options that make the revert commits' author.
func (o RevertOptions) identity() ([]string, error) {
	var args []string
	for _, f := range []struct{ key, value string }{{"user.name", o.Name}, {"user.email", o.Email}} {
		if f.value == "" {
			continue
		}
		if strings.ContainsAny(f.value, "<>\n\r\x00") {
			return nil, fmt.Errorf("revert: %s %q holds '<', '>' or a line break", f.key, f.value)
		}
		args = append(args, "-c", f.key+"="+f.value)
	}
	return args, nil
}

// checkTopLevel makes sure Dir is a working copy's top: the reset and
// clean that a revert begins with must not reach a repository around it.
func (r *Repo) checkTopLevel(ctx context.Context) error {
	out, err := r.command(ctx, r.Dir, nil, "rev-parse", "--show-toplevel").query()
	if err != nil {
		return fmt.Errorf("revert: %s is not a git working copy: %w", r.Dir, err)
	}
	top, err := filepath.EvalSymlinks(strings.TrimSpace(out))
	if err != nil {
		return fmt.Errorf("revert: %w", err)
	}
	dir, err := filepath.Abs(r.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return fmt.Errorf("revert: %w", err)
	}
	if top != dir {
		return fmt.Errorf("revert: %s is inside the working copy %s, not the top of one", r.Dir, top)
	}
	return nil
}

// reset forgets any revert left half done, points the branch at base and
// makes the working copy exactly base's tree.
func (r *Repo) reset(ctx context.Context, res *Result, base string) error {
	for _, args := range [][]string{
		{"revert", "--quit"},
		{"checkout", "-q", "-f", "-B", r.Branch, base, "--"},
		{"clean", "-q", "-ffdx"},
	} {
		if _, err := r.run(ctx, res, nil, args...); err != nil {
			return fmt.Errorf("reset %s to %s/%s: %w", r.Dir, r.Remote, r.Branch, err)
		}
	}
	return nil
}

// revertAll reverts commits in order, committing each or all at once.
func (r *Repo) revertAll(ctx context.Context, res *Result, commits []Commit, opts RevertOptions, ident []string) error {
	for i, c := range commits {
		if err := r.revertOne(ctx, res, c); err != nil {
			return err
		}
		if opts.PerCommit {
			if err := r.commit(ctx, res, ident, message(commits[i:i+1], opts.Reason)); err != nil {
				return err
			}
		}
	}
	if opts.PerCommit {
		return nil
	}
	return r.commit(ctx, res, ident, message(commits, opts.Reason))
}

// revertOne applies the revert of c to the index and working tree.
func (r *Repo) revertOne(ctx context.Context, res *Result, c Commit) error {
	_, err := r.run(ctx, res, nil, "revert", "--no-commit", "--", c.SHA)
	if err == nil {
		return nil
	}
	conflicted, _ := r.command(ctx, r.Dir, nil, "diff", "--name-only", "--diff-filter=U").query()
	if _, aerr := r.run(ctx, res, nil, "revert", "--abort"); aerr != nil {
		err = errors.Join(err, aerr)
	}
	if files := strings.Fields(conflicted); len(files) > 0 {
		return fmt.Errorf("%w reverting %s (%s) in %s: a later commit changed the same lines; revert by hand",
			ErrConflict, c.Short(), c.Subject, strings.Join(files, ", "))
	}
	return fmt.Errorf("revert %s (%s): %w", c.Short(), c.Subject, err)
}

// commit commits what is staged with msg, unless nothing is: the commits'
// changes were undone already.
func (r *Repo) commit(ctx context.Context, res *Result, ident []string, msg string) error {
	_, err := r.command(ctx, r.Dir, nil, "diff", "--cached", "--quiet").query()
	switch exitCode(err) {
	case 0:
		// git revert --no-commit left its REVERT_HEAD for a commit that
		// is not coming.
		if _, err := r.run(ctx, res, nil, "revert", "--quit"); err != nil {
			return fmt.Errorf("revert: %w", err)
		}
		return nil
	case 1:
	default:
		return fmt.Errorf("revert: see what is staged: %w", err)
	}
	args := append(append([]string{}, ident...), "commit", "-q", "--cleanup=whitespace", "-F", "-")
	if _, err := r.run(ctx, res, []byte(msg), args...); err != nil {
		return fmt.Errorf("commit the revert: %w", err)
	}
	head, ok, err := r.resolve(ctx, "HEAD")
	if err != nil || !ok {
		return fmt.Errorf("revert: read the new commit's id: %v", err)
	}
	res.Reverts = append(res.Reverts, head)
	res.Head = head
	return nil
}

// message is a revert commit's message. One commit's keeps git's own
// form, which tools look for; a range's lists its commits.
func message(commits []Commit, reason string) string {
	var b strings.Builder
	if len(commits) == 1 {
		c := commits[0]
		fmt.Fprintf(&b, "Revert \"%s\"\n\n", c.Subject)
		if reason != "" {
			b.WriteString(reason + "\n\n")
		}
		fmt.Fprintf(&b, "This reverts commit %s.\nIts author: %s <%s>.\n", c.SHA, c.Author, c.Email)
		return b.String()
	}
	fmt.Fprintf(&b, "Revert %d commits, %s to %s\n\n", len(commits), commits[len(commits)-1].Short(), commits[0].Short())
	if reason != "" {
		b.WriteString(reason + "\n\n")
	}
	b.WriteString("This reverts these commits, newest first:\n")
	for _, c := range commits {
		fmt.Fprintf(&b, "- %s \"%s\" by %s <%s>\n", c.SHA, c.Subject, c.Author, c.Email)
	}
	return b.String()
}

// Push publishes the branch to the remote: the reverts RevertRange made.
// Only a fast-forward is pushed: when someone pushed since the fetch, git
// refuses and the revert is to be made again on top of theirs.
func (r *Repo) Push(ctx context.Context) (Result, error) {
	var res Result
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkNames(); err != nil {
		return res, err
	}
	head, ok, err := r.resolve(ctx, "refs/heads/"+r.Branch)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, fmt.Errorf("push: %s has no branch %s", r.Dir, r.Branch)
	}
	res.Head = head
	ref := "refs/heads/" + r.Branch
	if _, err := r.run(ctx, &res, nil, "push", "--porcelain", "--", r.Remote, ref+":"+ref); err != nil {
		return res, fmt.Errorf("push %s to %s: %w", r.Branch, r.Remote, err)
	}
	return res, nil
}

// Head is the commit the remote's branch was at, as last fetched.
func (r *Repo) Head(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkNames(); err != nil {
		return "", err
	}
	sha, ok, err := r.resolve(ctx, r.tracking())
	if err == nil && !ok {
		err = fmt.Errorf("%s has no branch %s (fetch first)", r.Remote, r.Branch)
	}
	return sha, err
}
