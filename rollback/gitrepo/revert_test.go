package gitrepo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rangeOf fetches and lists base..origin/main, as the coordinator would
// for the push being rolled back.
func (w *world) rangeOf() []Commit {
	w.t.Helper()
	if err := w.repo.Fetch(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	commits, err := w.repo.Range(w.ctx, w.base, "origin/main")
	if err != nil {
		w.t.Fatal(err)
	}
	return commits
}

func (w *world) push() Result {
	w.t.Helper()
	res, err := w.repo.Push(w.ctx)
	if err != nil {
		w.t.Fatalf("%v\n%s", err, res.Output())
	}
	return res
}

const reason = "push 20250101-120000-000-abc rolled back: php_errors rose by 40 on www (http://127.0.0.1:5680/pushes/1)"

// TestRevertRangeOneCommit: a range of three whose middle commit is the
// culprit is reverted whole in one commit that names all three, and the
// push brings the files back to what they were before the range.
func TestRevertRangeOneCommit(t *testing.T) {
	w := newWorld(t)
	shas := w.threeCommits()
	commits := w.rangeOf()
	res, err := w.repo.RevertRange(w.ctx, commits, RevertOptions{Reason: reason, Name: "immune", Email: "immune@coordinator.invalid"})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Output())
	}
	if res.Base != shas[0] || len(res.Reverts) != 1 || res.Head != res.Reverts[0] {
		t.Fatalf("result: base %s, reverts %v, head %s", res.Base, res.Reverts, res.Head)
	}
	if w.remoteHead() != shas[0] {
		t.Error("RevertRange pushed: that is Push's job")
	}
	pushed := w.push()
	if w.remoteHead() != res.Head || pushed.Head != res.Head {
		t.Fatalf("remote at %s after Push, want the revert %s", w.remoteHead(), res.Head)
	}
	if w.tree("main") != w.tree(w.base) {
		t.Errorf("after the revert the files differ from before the range:\n%s", gitIn(t, w.remote, "diff", "--stat", w.base, "main"))
	}
	w.clean(res.Head)

	msg := gitIn(t, w.remote, "log", "-1", "--format=%an <%ae>%n%B", "main")
	for _, want := range []string{
		"immune <immune@coordinator.invalid>",
		"Revert 3 commits, " + short(shas[2]) + " to " + short(shas[0]),
		reason,
		"- " + shas[0] + ` "cart: bigger buttons" by Alice <alice@example.com>`,
		"- " + shas[1] + ` "checkout: new payment flow" by Bob <bob@example.com>`,
		"- " + shas[2] + ` "add the cart" by Alice <alice@example.com>`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("revert message lacks %q:\n%s", want, msg)
		}
	}
	out := res.Output() + pushed.Output()
	for _, want := range []string{"$ git fetch -q --prune -- origin", "$ git revert --no-commit -- " + shas[1], "$ git push --porcelain -- origin refs/heads/main:refs/heads/main", "Done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestRevertRangePerCommit: one revert commit per commit, newest reverted
// first, each in git's own form, with the working copy's identity.
func TestRevertRangePerCommit(t *testing.T) {
	w := newWorld(t)
	shas := w.threeCommits()
	gitIn(t, w.repo.Dir, "config", "user.name", "Coordinator")
	gitIn(t, w.repo.Dir, "config", "user.email", "coordinator@example.com")
	res, err := w.repo.RevertRange(w.ctx, w.rangeOf(), RevertOptions{PerCommit: true, Reason: reason})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Output())
	}
	if len(res.Reverts) != 3 {
		t.Fatalf("%d revert commits, want 3", len(res.Reverts))
	}
	w.push()
	subjects := []string{"cart: bigger buttons", "checkout: new payment flow", "add the cart"}
	for i, rev := range res.Reverts {
		msg := gitIn(t, w.remote, "log", "-1", "--format=%an%n%B", rev)
		for _, want := range []string{"Coordinator\n", `Revert "` + subjects[i] + `"`, "This reverts commit " + shas[i] + ".", reason} {
			if !strings.Contains(msg, want) {
				t.Errorf("revert %d's message lacks %q:\n%s", i, want, msg)
			}
		}
	}
	if w.tree("main") != w.tree(w.base) {
		t.Error("after the reverts the files differ from before the range")
	}
	w.clean(res.Head)
}

// TestRevertConflict: a later commit edits the lines the range's newest
// commit did; the revert is aborted, the working copy left clean, nothing
// pushed, and the error names the commit.
func TestRevertConflict(t *testing.T) {
	w := newWorld(t)
	shas := w.threeCommits()
	commits := w.rangeOf()
	later := w.commit("Dave", "six, again", map[string]string{"app.txt": edit(edit(baseText, 2, "TWO (bad)"), 6, "SIX, again")})
	for _, perCommit := range []bool{false, true} {
		res, err := w.repo.RevertRange(w.ctx, commits, RevertOptions{PerCommit: perCommit, Reason: reason})
		want := "conflict reverting " + short(shas[0]) + " (cart: bigger buttons) in app.txt"
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), want) {
			t.Fatalf("per commit %v: err = %v, want %q", perCommit, err, want)
		}
		if !strings.Contains(res.Output(), "CONFLICT") || !strings.Contains(res.Output(), "$ git revert --abort") {
			t.Errorf("git's own account of the conflict is not kept:\n%s", res.Output())
		}
		if len(res.Reverts) != 0 || res.Head != later {
			t.Errorf("a failed revert reports reverts %v, head %s", res.Reverts, res.Head)
		}
		w.clean(later)
		if w.remoteHead() != later {
			t.Error("the remote moved")
		}
	}
}

// TestRevertRecovers: a working copy left mid-revert with a conflict and
// stray files (the coordinator died there) is reset before the revert.
func TestRevertRecovers(t *testing.T) {
	w := newWorld(t)
	shas := w.threeCommits()
	commits := w.rangeOf()
	w.commit("Dave", "six, again", map[string]string{"app.txt": edit(edit(baseText, 2, "TWO (bad)"), 6, "SIX, again")})
	gitIn(t, w.repo.Dir, "pull", "-q", "--ff-only", "origin", "main")
	if _, err := w.repo.command(w.ctx, w.repo.Dir, nil, "revert", "--no-edit", shas[0]).query(); err == nil {
		t.Fatal("the setup's revert should conflict")
	}
	if err := os.WriteFile(filepath.Join(w.repo.Dir, "stray.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := w.repo.RevertRange(w.ctx, commits[1:2], RevertOptions{Reason: reason})
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Output())
	}
	w.clean(res.Head)
	if got := gitIn(t, w.repo.Dir, "show", "HEAD:app.txt"); got != strings.TrimSpace(edit(baseText, 6, "SIX, again")) {
		t.Errorf("app.txt after reverting the culprit alone:\n%s", got)
	}
}

// TestRevertAlreadyUndone: commits reverted by hand already make no
// commit, and no error.
func TestRevertAlreadyUndone(t *testing.T) {
	w := newWorld(t)
	w.threeCommits()
	commits := w.rangeOf()
	gitIn(t, w.dev, "-c", "user.name=Bob", "-c", "user.email=bob@example.com", "revert", "--no-edit", commits[1].SHA)
	gitIn(t, w.dev, "push", "-q", "origin", "main")
	undone := gitIn(t, w.dev, "rev-parse", "HEAD")
	res, err := w.repo.RevertRange(w.ctx, commits[1:2], RevertOptions{})
	if err != nil || len(res.Reverts) != 0 || res.Head != undone {
		t.Errorf("reverting the undone: reverts %v, head %s, %v; want none, %s", res.Reverts, res.Head, err, undone)
	}
	w.clean(undone)
}

// TestRevertRefuses: commits not on the branch, and a working copy that
// is a subdirectory of one, are refused before anything changes.
func TestRevertRefuses(t *testing.T) {
	w := newWorld(t)
	w.threeCommits()
	commits := w.rangeOf()
	gitIn(t, w.dev, "checkout", "-q", "-b", "side", w.base)
	side := w.commit("Mallory", "side work", map[string]string{"side.txt": "x\n"})
	gitIn(t, w.dev, "push", "-q", "origin", "side")
	_, err := w.repo.RevertRange(w.ctx, []Commit{{SHA: side, Subject: "side work"}}, RevertOptions{})
	if err == nil || !strings.Contains(err.Error(), "is not on origin/main") {
		t.Errorf("reverting a commit beside the branch: %v", err)
	}
	if _, err := w.repo.RevertRange(w.ctx, []Commit{{SHA: "--exec=x"}}, RevertOptions{}); !errors.Is(err, ErrBadRevision) {
		t.Errorf("reverting %q: %v, want ErrBadRevision", "--exec=x", err)
	}
	if _, err := w.repo.RevertRange(w.ctx, commits, RevertOptions{Name: "Eve\nSigned-off-by: x"}); err == nil {
		t.Error("an identity with a line break was accepted")
	}
	if _, err := w.repo.RevertRange(w.ctx, nil, RevertOptions{}); err == nil {
		t.Error("reverting nothing should be an error")
	}
	sub := filepath.Join(w.repo.Dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	inner := Open(sub, "origin", "main")
	if _, err := inner.RevertRange(w.ctx, commits, RevertOptions{}); err == nil || !strings.Contains(err.Error(), "not the top of one") {
		t.Errorf("a subdirectory as the working copy: %v", err)
	}
	if _, err := os.Stat(sub); err != nil {
		t.Error("the refused revert cleaned the working copy")
	}
}

// TestPushRejected: someone pushed after the revert's fetch; the push is
// refused rather than forced, and a second revert on top of theirs goes.
func TestPushRejected(t *testing.T) {
	w := newWorld(t)
	w.threeCommits()
	commits := w.rangeOf()
	if _, err := w.repo.RevertRange(w.ctx, commits, RevertOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := w.commit("Dave", "docs", map[string]string{"README": "hello\n"})
	res, err := w.repo.Push(w.ctx)
	if err == nil {
		t.Fatal("a push that is not a fast-forward went through")
	}
	if !strings.Contains(res.Output(), "rejected") || w.remoteHead() != theirs {
		t.Errorf("remote at %s, output:\n%s", w.remoteHead(), res.Output())
	}
	again, err := w.repo.RevertRange(w.ctx, commits, RevertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.push()
	if w.remoteHead() != again.Head || gitIn(t, w.remote, "rev-parse", "main^") != theirs {
		t.Error("the second revert is not on top of their commit")
	}
}

// TestTimeoutKillsGit: a git that hangs, and what it started, is killed at
// the timeout.
func TestTimeoutKillsGit(t *testing.T) {
	w := newWorld(t)
	fake := filepath.Join(t.TempDir(), "git")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nsleep 60 &\nsleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := Open(w.repo.Dir, "origin", "main")
	r.Git, r.Timeout = fake, 200*time.Millisecond
	begun := time.Now()
	err := r.Fetch(w.ctx)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Errorf("Fetch with a hanging git: %v", err)
	}
	if took := time.Since(begun); took > 4*time.Second {
		t.Errorf("the hanging git held Fetch for %s", took)
	}
}
