// Package gitrepo is the coordinator's working copy of the application's
// repository: it checks that a pushed revision exists and descends from
// what is live, lists the commits a push brings, and reverts them all when
// the push is rolled back. It drives the git command line, never a shell,
// with "--" before every revision so that none is read as an option.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"unicode"
)

// Repo is a working copy, with the remote and branch it follows ("" when
// it has none: reverts are committed where it stands).
type Repo struct {
	Dir, Remote, Branch string
}

// Commit is one commit a push brings.
type Commit struct {
	SHA     string `json:"sha"`
	Author  string `json:"author"`
	Email   string `json:"email,omitempty"`
	Subject string `json:"subject"`
}

// Short is the commit's abbreviated name.
func (c Commit) Short() string {
	if len(c.SHA) > 12 {
		return c.SHA[:12]
	}
	return c.SHA
}

// maxOutput bounds what a git command's output is kept of.
const maxOutput = 64 << 10

// git runs git in the working copy and returns its combined output.
func (r *Repo) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if len(text) > maxOutput {
		text = text[:maxOutput/2] + "\n[...]\n" + text[len(text)-maxOutput/2:]
	}
	if err != nil {
		return text, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(lastLine(text)))
	}
	return text, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// CheckRevision refuses what cannot be a revision before git sees it: a
// leading "-" (it would be an option) and blanks or control characters.
func CheckRevision(rev string) error {
	switch {
	case rev == "":
		return errors.New("the revision is empty")
	case strings.HasPrefix(rev, "-"):
		return fmt.Errorf("revision %q starts with '-': refused, it would be read as an option", rev)
	case strings.IndexFunc(rev, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
		return fmt.Errorf("revision %q has blanks or control characters", rev)
	}
	return nil
}

// Fetch brings the remote's commits, when there is a remote.
func (r *Repo) Fetch(ctx context.Context) (string, error) {
	if r.Remote == "" {
		return "", nil
	}
	return r.git(ctx, "fetch", "--prune", "--", r.Remote)
}

// Resolve names the commit a revision is.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if err := CheckRevision(rev); err != nil {
		return "", err
	}
	out, err := r.git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		where := r.Dir
		if r.Remote != "" {
			where += " (after git fetch from " + r.Remote + ")"
		}
		return "", fmt.Errorf("revision %s is not in %s", rev, where)
	}
	return strings.TrimSpace(out), nil
}

// IsAncestor reports whether a is b or one of b's ancestors.
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := r.git(ctx, "merge-base", "--is-ancestor", "--", a, b)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil
	}
	return false, err
}

// Range lists the commits in (from, to], newest first, merges left out:
// what a push of to brings over from. from "" means to alone.
func (r *Repo) Range(ctx context.Context, from, to string) ([]Commit, error) {
	args := []string{"log", "--no-merges", "--format=%H%x00%an%x00%ae%x00%s"}
	if from == "" {
		args = append(args, "-1", "--end-of-options", to)
	} else {
		args = append(args, "--end-of-options", from+".."+to)
	}
	out, err := r.git(ctx, append(args, "--")...)
	if err != nil {
		return nil, err
	}
	var commits []Commit
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(line, "\x00", 4)
		if len(f) == 4 {
			commits = append(commits, Commit{SHA: f[0], Author: f[1], Email: f[2], Subject: f[3]})
		}
	}
	return commits, nil
}

// RevertOptions is how a range is reverted.
type RevertOptions struct {
	// EachCommit reverts commit by commit; by default one commit reverts
	// the whole range.
	EachCommit bool
	// Reason goes into the revert's message: why the push was rolled back.
	Reason string
	// Push publishes the revert (argv run in the working copy); empty: none.
	Push []string
}

// RevertRange reverts commits (newest first, as Range lists them) on top of
// the branch as the remote has it, and publishes the revert. A conflict
// aborts cleanly, leaving the working copy as it was, and says which
// commit conflicted. The output of every git command is kept.
func (r *Repo) RevertRange(ctx context.Context, commits []Commit, o RevertOptions) (string, error) {
	if len(commits) == 0 {
		return "", errors.New("nothing to revert")
	}
	var log strings.Builder
	step := func(args ...string) error {
		fmt.Fprintf(&log, "$ git %s\n", strings.Join(args, " "))
		out, err := r.git(ctx, args...)
		log.WriteString(out)
		return err
	}
	if r.Remote != "" {
		if err := step("fetch", "--prune", "--", r.Remote); err != nil {
			return log.String(), err
		}
		if err := step("checkout", "-B", r.Branch, r.Remote+"/"+r.Branch); err != nil {
			return log.String(), err
		}
	}
	for _, c := range commits {
		args := []string{"revert", "--no-edit", "--no-commit", "--", c.SHA}
		if o.EachCommit {
			args = []string{"revert", "--no-edit", "--", c.SHA}
		}
		if err := step(args...); err != nil {
			step("revert", "--abort")
			if o.EachCommit {
				// Commits reverted before the conflict are undone too: a
				// half-reverted range is worse than none.
				step("reset", "--hard", "HEAD~"+fmt.Sprint(indexOf(commits, c)))
			}
			return log.String(), fmt.Errorf("conflict reverting %s (%s by %s): aborted, nothing reverted", c.Short(), c.Subject, c.Author)
		}
	}
	if !o.EachCommit {
		if err := step("commit", "--no-verify", "-m", Message(commits, o.Reason)); err != nil {
			step("reset", "--hard", "HEAD")
			return log.String(), err
		}
	}
	if len(o.Push) > 0 {
		fmt.Fprintf(&log, "$ %s\n", strings.Join(o.Push, " "))
		cmd := exec.CommandContext(ctx, o.Push[0], o.Push[1:]...)
		cmd.Dir = r.Dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		log.WriteString(out.String())
		if err != nil {
			return log.String(), fmt.Errorf("%s: %w", strings.Join(o.Push, " "), err)
		}
	}
	return log.String(), nil
}

func indexOf(commits []Commit, c Commit) int {
	for i, x := range commits {
		if x.SHA == c.SHA {
			return i
		}
	}
	return 0
}

// Message is the revert commit's message: what it reverts and why.
func Message(commits []Commit, reason string) string {
	var b strings.Builder
	if len(commits) == 1 {
		fmt.Fprintf(&b, "Revert %q\n\n", commits[0].Subject)
	} else {
		fmt.Fprintf(&b, "Revert the %d commits of a rolled-back push\n\n", len(commits))
	}
	b.WriteString("Reverted by immune after the push was rolled back:\n")
	for _, c := range commits {
		fmt.Fprintf(&b, "  %s %s (%s)\n", c.Short(), c.Subject, c.Author)
	}
	b.WriteString("\n")
	for _, c := range commits {
		fmt.Fprintf(&b, "This reverts commit %s.\n", c.SHA)
	}
	if reason != "" {
		fmt.Fprintf(&b, "\nWhy: %s\n", reason)
	}
	return b.String()
}
