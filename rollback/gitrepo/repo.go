// Package gitrepo is the coordinator's working copy of the app repository:
// it fetches, checks the revisions people push, lists the commits a push
// brings, reverts them after a rollback and pushes the revert.
//
// It drives the git program: no shell, a deadline on every run, "--" (or
// --end-of-options where "--" would mean paths) before every revision, no
// terminal to prompt on, and every revision checked before git sees it. The
// working copy is the coordinator's own: a revert throws away whatever else
// is in it.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
)

// DefaultTimeout bounds one git run when the caller's context does not
// bound it sooner.
const DefaultTimeout = 2 * time.Minute

// ErrBadRevision is a revision refused before git runs.
var ErrBadRevision = errors.New("bad revision")

// ErrUnknownRevision is a revision the repository does not have, even after
// a fetch.
var ErrUnknownRevision = errors.New("unknown revision")

// revisionError is a refused revision: its message is for people, and
// errors.Is tells its kind (ErrBadRevision, ErrUnknownRevision).
type revisionError struct {
	kind error
	msg  string
}

func (e *revisionError) Error() string        { return e.msg }
func (e *revisionError) Is(target error) bool { return target == e.kind }

func badRevision(format string, args ...any) error {
	return &revisionError{kind: ErrBadRevision, msg: fmt.Sprintf(format, args...)}
}

// Repo is a working copy whose branch Branch tracks the remote named
// Remote. Its methods may be called from several goroutines: they take
// turns.
type Repo struct {
	Dir    string
	Remote string
	Branch string
	// Git is the git program (default "git" on PATH).
	Git string
	// Timeout bounds each git run (default DefaultTimeout).
	Timeout time.Duration

	// mu makes one operation at a time: git's own locks would fail the
	// second rather than wait for it.
	mu sync.Mutex
}

// Open is the working copy in dir, tracking branch of the remote named
// remote (such as "origin"). Nothing is checked until it is used.
func Open(dir, remote, branch string) *Repo {
	return &Repo{Dir: dir, Remote: remote, Branch: branch}
}

// Clone makes the working copy in dir from url's branch, with the remote
// named remote, and opens it.
func Clone(ctx context.Context, url, dir, remote, branch string) (*Repo, error) {
	r := Open(dir, remote, branch)
	if err := r.checkNames(); err != nil {
		return nil, err
	}
	if err := checkArg("repository URL", url); err != nil {
		return nil, err
	}
	if _, err := r.command(ctx, filepath.Dir(dir), nil, "clone", "-q", "--origin", remote, "--branch", branch, "--", url, dir).query(); err != nil {
		return nil, fmt.Errorf("clone %s into %s: %w", url, dir, err)
	}
	return r, nil
}

// remoteNameRE is what a remote's name may be: it is also a path in
// refs/remotes/.
var remoteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// branchRE is what a branch's name may be, stricter than git's rules so
// that it can never read as an option or a range.
var branchRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]*$`)

func (r *Repo) checkNames() error {
	switch {
	case !remoteNameRE.MatchString(r.Remote):
		return fmt.Errorf("remote %q: want the name of a remote of %s, such as origin", r.Remote, r.Dir)
	case !branchRE.MatchString(r.Branch) || strings.Contains(r.Branch, "..") || strings.HasSuffix(r.Branch, "/"):
		return fmt.Errorf("branch %q is not a branch name", r.Branch)
	case r.Dir == "":
		return errors.New("no working copy directory")
	}
	return nil
}

// tracking is the remote-tracking ref of the branch.
func (r *Repo) tracking() string { return "refs/remotes/" + r.Remote + "/" + r.Branch }

// checkArg refuses an argument that git could read as an option, or that
// holds a blank or a control character: revisions come from people.
func checkArg(what, s string) error {
	switch {
	case s == "":
		return badRevision("empty %s", what)
	case strings.HasPrefix(s, "-"):
		return badRevision("%s %q starts with '-', as an option would", what, s)
	case len(s) > 256:
		return badRevision("%s of %d bytes is too long", what, len(s))
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c == unicode.ReplacementChar {
			return badRevision("%s %q holds a blank or a control character", what, s)
		}
	}
	return nil
}

// CheckRevision refuses a revision that could be taken for an option or
// is not one word; it does not ask git whether the revision exists.
func CheckRevision(rev string) error { return checkArg("revision", rev) }

// shaRE is a full commit id, SHA-1 or SHA-256.
var shaRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// Fetch brings the remote's branches and tags into the working copy.
func (r *Repo) Fetch(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.fetch(ctx, nil)
	return err
}

func (r *Repo) fetch(ctx context.Context, res *Result) (string, error) {
	if err := r.checkNames(); err != nil {
		return "", err
	}
	out, err := r.run(ctx, res, nil, "fetch", "-q", "--prune", "--", r.Remote)
	if err != nil {
		return out, fmt.Errorf("git fetch from %s in %s: %w", r.Remote, r.Dir, err)
	}
	return out, nil
}

// Resolve is the full commit id of rev. A revision the working copy does
// not know is looked for again after a fetch. Names resolve as in the
// working copy: a branch is best given as origin/main, a push as its id.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if err := CheckRevision(rev); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sha, ok, err := r.resolve(ctx, rev); err != nil || ok {
		return sha, err
	}
	if _, err := r.fetch(ctx, nil); err != nil {
		return "", err
	}
	sha, ok, err := r.resolve(ctx, rev)
	if err == nil && !ok {
		msg := fmt.Sprintf("revision %s is not in %s (after git fetch from %s)", rev, r.Dir, r.Remote)
		if n := r.sharing(ctx, rev); n > 1 {
			msg = fmt.Sprintf("revision %s is the start of %d ids in %s: give more of it", rev, n, r.Dir)
		}
		err = &revisionError{kind: ErrUnknownRevision, msg: msg}
	}
	return sha, err
}

// abbrevRE is an abbreviated object id.
var abbrevRE = regexp.MustCompile(`^[0-9a-f]{4,39}$`)

// sharing counts the objects whose ids start with rev, when it is an
// abbreviation: git says no more than that it resolves to no one commit.
func (r *Repo) sharing(ctx context.Context, rev string) int {
	if !abbrevRE.MatchString(rev) {
		return 0
	}
	out, err := r.command(ctx, r.Dir, nil, "rev-parse", "--disambiguate="+rev).query()
	if err != nil {
		return 0
	}
	return len(strings.Fields(out))
}

// resolve asks the working copy alone; ok is false for an unknown revision.
func (r *Repo) resolve(ctx context.Context, rev string) (sha string, ok bool, err error) {
	out, err := r.command(ctx, r.Dir, nil, "rev-parse", "-q", "--verify", "--end-of-options", rev+"^{commit}").query()
	var ge *gitError
	if errors.As(err, &ge) && exitCode(err) == 1 {
		if strings.TrimSpace(ge.output) == "" {
			return "", false, nil // rev-parse -q says "unknown" by its status alone
		}
		// It names something, but not one commit: a blob, a tree, an
		// abbreviation of several.
		why, _, _ := strings.Cut(strings.TrimSpace(ge.output), "\n")
		return "", false, &revisionError{kind: ErrUnknownRevision,
			msg: fmt.Sprintf("revision %s is not one commit in %s: %s", rev, r.Dir, strings.TrimPrefix(why, "error: "))}
	}
	if err != nil {
		return "", false, fmt.Errorf("resolve %s in %s: %w", rev, r.Dir, err)
	}
	sha = strings.TrimSpace(out)
	if !shaRE.MatchString(sha) {
		return "", false, fmt.Errorf("resolve %s in %s: git rev-parse printed %q", rev, r.Dir, sha)
	}
	return sha, true, nil
}
