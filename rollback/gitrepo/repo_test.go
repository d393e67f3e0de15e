package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFetchSeesNewCommits: a commit the developer pushes after Open is
// known after Fetch, and Resolve fetches by itself for one it lacks.
func TestFetchSeesNewCommits(t *testing.T) {
	w := newWorld(t)
	if head, err := w.repo.Head(w.ctx); err != nil || head != w.base {
		t.Fatalf("Head after clone = %s, %v; want %s", head, err, w.base)
	}
	later := w.commit("Alice", "add the cart", map[string]string{"cart.txt": "cart\n"})
	if head, _ := w.repo.Head(w.ctx); head != w.base {
		t.Fatalf("Head before Fetch = %s, want the old %s", head, w.base)
	}
	if err := w.repo.Fetch(w.ctx); err != nil {
		t.Fatal(err)
	}
	if head, err := w.repo.Head(w.ctx); err != nil || head != later {
		t.Errorf("Head after Fetch = %s, %v; want %s", head, err, later)
	}

	newer := w.commit("Bob", "fix the cart", map[string]string{"cart.txt": "cart, fixed\n"})
	for _, rev := range []string{newer, newer[:12]} {
		if sha, err := w.repo.Resolve(w.ctx, rev); err != nil || sha != newer {
			t.Errorf("Resolve(%s) = %s, %v; want %s, fetched on demand", rev, sha, err, newer)
		}
	}
	if sha, err := w.repo.Resolve(w.ctx, "origin/main"); err != nil || sha != newer {
		t.Errorf("Resolve(origin/main) = %s, %v; want %s", sha, err, newer)
	}
}

// TestResolveRefuses: revisions that are options or not one word are
// refused before git runs; unknown ones after a fetch, saying so.
func TestResolveRefuses(t *testing.T) {
	w := newWorld(t)
	// A git that leaves a mark shows whether it was run at all.
	mark := filepath.Join(t.TempDir(), "ran")
	fake := filepath.Join(t.TempDir(), "git")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\ntouch "+mark+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	guarded := Open(w.repo.Dir, "origin", "main")
	guarded.Git = fake
	for _, rev := range []string{"-rf", "--exec=x", "--upload-pack=touch /tmp/x", "", "main two", "a\nb", "tab\there", "nul\x00", "bell\a"} {
		_, err := guarded.Resolve(w.ctx, rev)
		if !errors.Is(err, ErrBadRevision) {
			t.Errorf("Resolve(%q) = %v, want ErrBadRevision", rev, err)
		}
		if _, err := guarded.IsAncestor(w.ctx, rev, "main"); !errors.Is(err, ErrBadRevision) {
			t.Errorf("IsAncestor(%q) = %v, want ErrBadRevision", rev, err)
		}
		if _, err := guarded.Range(w.ctx, "main", rev); !errors.Is(err, ErrBadRevision) {
			t.Errorf("Range(main, %q) = %v, want ErrBadRevision", rev, err)
		}
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("git ran for a refused revision")
	}
	if _, err := guarded.Resolve(w.ctx, "-rf"); err == nil || !strings.Contains(err.Error(), `"-rf" starts with '-'`) {
		t.Errorf("the refusal should say why: %v", err)
	}

	unknown := strings.Repeat("ab", 20)
	_, err := w.repo.Resolve(w.ctx, unknown)
	want := "revision " + unknown + " is not in " + w.repo.Dir + " (after git fetch from origin)"
	if !errors.Is(err, ErrUnknownRevision) || err.Error() != want {
		t.Errorf("Resolve(unknown) = %v, want %q", err, want)
	}
	if _, err := w.repo.Resolve(w.ctx, "no-such-branch"); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Resolve(no-such-branch) = %v, want ErrUnknownRevision", err)
	}
	// A blob is a revision git knows, but not a commit to push.
	blob := gitIn(t, w.remote, "rev-parse", w.base+":app.txt")
	if _, err := w.repo.Resolve(w.ctx, blob); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Resolve(a blob) = %v, want ErrUnknownRevision", err)
	}
}

// TestIsAncestor: a push must descend from what is live.
func TestIsAncestor(t *testing.T) {
	w := newWorld(t)
	range3 := w.threeCommits()
	// A commit beside main: pushed on a branch that forked from base.
	gitIn(t, w.dev, "checkout", "-q", "-b", "side", w.base)
	side := w.commit("Mallory", "side work", map[string]string{"side.txt": "x\n"})
	gitIn(t, w.dev, "push", "-q", "origin", "side")
	if err := w.repo.Fetch(w.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{w.base, range3[0], true},
		{range3[2], range3[0], true},
		{range3[0], range3[0], true},
		{range3[0], w.base, false},
		{w.base, side, true},
		{range3[0], side, false},
		{side, range3[0], false},
	} {
		got, err := w.repo.IsAncestor(w.ctx, c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("IsAncestor(%s, %s) = %v, %v; want %v", short(c.a), short(c.b), got, err, c.want)
		}
	}
	if _, err := w.repo.IsAncestor(w.ctx, strings.Repeat("cd", 20), w.base); err == nil {
		t.Error("IsAncestor of an unknown commit should fail, not say false")
	}
}

// TestRange lists a push's commits newest first, with their authors.
func TestRange(t *testing.T) {
	w := newWorld(t)
	shas := w.threeCommits()
	if err := w.repo.Fetch(w.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := w.repo.Range(w.ctx, w.base, "origin/main")
	if err != nil {
		t.Fatal(err)
	}
	want := []Commit{
		{SHA: shas[0], Author: "Alice", Email: "alice@example.com", Subject: "cart: bigger buttons"},
		{SHA: shas[1], Author: "Bob", Email: "bob@example.com", Subject: "checkout: new payment flow"},
		{SHA: shas[2], Author: "Alice", Email: "alice@example.com", Subject: "add the cart"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Range:\n got %+v\nwant %+v", got, want)
	}
	if got, err := w.repo.Range(w.ctx, shas[0], shas[0]); err != nil || len(got) != 0 {
		t.Errorf("an empty range = %+v, %v", got, err)
	}
	if _, err := w.repo.Range(w.ctx, w.base, strings.Repeat("ef", 20)); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Range to an unknown commit = %v, want ErrUnknownRevision", err)
	}
}

// TestRangeLeavesOutMerges: a merged side branch's commits are in the
// range, the merge commit is not, and every commit comes before its parent.
func TestRangeLeavesOutMerges(t *testing.T) {
	w := newWorld(t)
	gitIn(t, w.dev, "checkout", "-q", "-b", "feature")
	feat := w.commit("Bob", "feature work", map[string]string{"feature.txt": "f\n"})
	gitIn(t, w.dev, "checkout", "-q", "main")
	mainWork := w.commit("Alice", "main work", map[string]string{"main.txt": "m\n"})
	gitIn(t, w.dev, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
	gitIn(t, w.dev, "push", "-q", "origin", "main")
	if err := w.repo.Fetch(w.ctx); err != nil {
		t.Fatal(err)
	}
	got, err := w.repo.Range(w.ctx, w.base, "origin/main")
	if err != nil {
		t.Fatal(err)
	}
	var shas []string
	for _, c := range got {
		shas = append(shas, c.SHA)
		if c.Subject == "merge feature" {
			t.Error("the merge commit is in the range")
		}
	}
	if len(shas) != 2 || !(slices.Contains(shas, feat) && slices.Contains(shas, mainWork)) {
		t.Errorf("Range = %v, want %s and %s", shas, feat, mainWork)
	}
}

// TestBadNames: a remote or branch that could be read as an option is
// refused, not passed to git.
func TestBadNames(t *testing.T) {
	w := newWorld(t)
	for _, r := range []*Repo{
		Open(w.repo.Dir, "--upload-pack=x", "main"),
		Open(w.repo.Dir, "origin", "-main"),
		Open(w.repo.Dir, "origin", "main..other"),
		Open(w.repo.Dir, "origin", "ma in"),
		Open("", "origin", "main"),
	} {
		if err := r.Fetch(w.ctx); err == nil {
			t.Errorf("Fetch with remote %q, branch %q, dir %q: no error", r.Remote, r.Branch, r.Dir)
		}
	}
}

// TestResolveAmbiguous: an abbreviation of several commits' ids says so.
func TestResolveAmbiguous(t *testing.T) {
	w := newWorld(t)
	tree := gitIn(t, w.repo.Dir, "rev-parse", "HEAD^{tree}")
	// Commits, unpushed, until two ids share their first four digits.
	seen := map[string]string{}
	for i := 0; ; i++ {
		sha := gitIn(t, w.repo.Dir, "-c", "user.name=A", "-c", "user.email=a@example.com", "commit-tree", "-m", fmt.Sprint(i), tree)
		if other, ok := seen[sha[:4]]; ok {
			_, err := w.repo.Resolve(w.ctx, sha[:4])
			if !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), "revision "+sha[:4]+" is the start of ") {
				t.Errorf("Resolve(%s), the start of %s and %s: %v", sha[:4], sha, other, err)
			}
			return
		}
		seen[sha[:4]] = sha
	}
}
