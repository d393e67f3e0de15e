package gitrepo_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/rollback/gitrepo"

	"github.com/immune-ops/immune/rollback/gitrepo/gittest"
)

// world is gittest's world with the live revision and a push of three
// commits over it.
type world struct {
	*gittest.World
	t             *testing.T
	repo          *gitrepo.Repo
	base, a, b, c string
}

var git = gittest.Git

func newWorld(t *testing.T) *world {
	g := gittest.New(t)
	w := &world{World: g, t: t, repo: g.Repo}
	w.base = git(t, g.Dev, "rev-parse", "HEAD")
	w.a = g.Commit("a.php", "a\n", "search: faster index")
	w.b = g.Commit("b.php", "b1\nb2\n", "pricing: call the new service")
	w.c = g.Commit("c.php", "c\n", "signup: shorter form")
	return w
}

func (w *world) commit(file, body, subject string) string { return w.Commit(file, body, subject) }

func TestRangeAndChecks(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.repo.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := w.repo.Resolve(ctx, w.c[:10])
	if err != nil || got != w.c {
		t.Fatalf("Resolve: %q %v", got, err)
	}
	for _, bad := range []string{"-rf", "--exec=touch /tmp/x", "a b", "nosuchrev"} {
		if _, err := w.repo.Resolve(ctx, bad); err == nil {
			t.Errorf("Resolve(%q) accepted", bad)
		}
	}
	if _, err := w.repo.Resolve(ctx, "1234567"); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("unknown revision: %v", err)
	}
	if ok, err := w.repo.IsAncestor(ctx, w.base, w.c); !ok || err != nil {
		t.Errorf("base is an ancestor of c: %v %v", ok, err)
	}
	if ok, err := w.repo.IsAncestor(ctx, w.c, w.base); ok || err != nil {
		t.Errorf("c is not an ancestor of base: %v %v", ok, err)
	}
	commits, err := w.repo.Range(ctx, w.base, w.c)
	if err != nil || len(commits) != 3 || commits[0].SHA != w.c || commits[2].SHA != w.a ||
		commits[1].Subject != "pricing: call the new service" || commits[1].Author != "Ann Dev" {
		t.Fatalf("Range: %+v %v", commits, err)
	}
	// A commit pushed after Open is seen after a fetch.
	later := w.commit("d.php", "d\n", "later")
	if _, err := w.repo.Resolve(ctx, later); err == nil {
		t.Error("resolved a commit not fetched yet")
	}
	w.repo.Fetch(ctx)
	if _, err := w.repo.Resolve(ctx, later); err != nil {
		t.Errorf("after fetch: %v", err)
	}
}

func TestRevertRange(t *testing.T) {
	for _, each := range []bool{false, true} {
		w := newWorld(t)
		ctx := context.Background()
		w.repo.Fetch(ctx)
		commits, _ := w.repo.Range(ctx, w.base, w.c)
		out, err := w.repo.RevertRange(ctx, commits, gitrepo.RevertOptions{EachCommit: each, Reason: "php_errors rose", Push: []string{"git", "push", "-q", "origin", "main"}})
		if err != nil {
			t.Fatalf("each %v: %v\n%s", each, err, out)
		}
		// The remote has the revert: a fresh clone has none of the three files.
		check := w.Clone()
		for _, f := range []string{"a.php", "b.php", "c.php"} {
			if _, err := os.Stat(filepath.Join(check, f)); err == nil {
				t.Errorf("each %v: %s is still there after the revert", each, f)
			}
		}
		subjects := git(t, check, "log", "--format=%s", w.c+"..HEAD")
		msg := git(t, check, "log", "-1", "--format=%B")
		if each {
			if n := len(strings.Split(subjects, "\n")); n != 3 {
				t.Errorf("one revert a commit: %q", subjects)
			}
		} else if subjects != "Revert the 3 commits of a rolled-back push" || !strings.Contains(msg, "pricing: call the new service (Ann Dev)") || !strings.Contains(msg, "Why: php_errors rose") {
			t.Errorf("one revert: %q\n%s", subjects, msg)
		}
	}
}

func TestRevertConflictAborts(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.repo.Fetch(ctx)
	commits, _ := w.repo.Range(ctx, w.base, w.c)
	// After the push someone edits b's lines: reverting b conflicts.
	w.commit("b.php", "b1 changed\nb2\n", "pricing: fix the rounding")
	for _, each := range []bool{false, true} {
		out, err := w.repo.RevertRange(ctx, commits, gitrepo.RevertOptions{EachCommit: each})
		if err == nil || !strings.Contains(err.Error(), "conflict reverting "+commits[1].Short()+" (pricing: call the new service by Ann Dev)") {
			t.Fatalf("each %v: %v\n%s", each, err, out)
		}
		if st := git(t, w.repo.Dir, "status", "--porcelain"); st != "" {
			t.Errorf("each %v: working copy left dirty: %q", each, st)
		}
		if head := git(t, w.repo.Dir, "log", "-1", "--format=%s"); head != "pricing: fix the rounding" {
			t.Errorf("each %v: HEAD is %q, want the branch as it was", each, head)
		}
	}
}
