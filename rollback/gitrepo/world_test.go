package gitrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/real"
)

// world is a bare remote, a developer's clone that commits and pushes to
// it, and the coordinator's working copy, all in a temp dir.
type world struct {
	t      *testing.T
	ctx    context.Context
	remote string
	dev    string
	repo   *Repo
	// base is the first commit: the revision live before the tests' pushes.
	base string
}

// baseText is the app's main file at base: lines the commits edit.
const baseText = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n"

func newWorld(t *testing.T) *world {
	t.Helper()
	real.Command(t, "git", "git")
	// The machine's git config is not the tests' business.
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	w := &world{t: t, ctx: ctx, remote: filepath.Join(dir, "app.git"), dev: filepath.Join(dir, "dev")}
	gitIn(t, dir, "init", "-q", "--bare", "-b", "main", w.remote)
	gitIn(t, dir, "clone", "-q", w.remote, w.dev)
	gitIn(t, w.dev, "symbolic-ref", "HEAD", "refs/heads/main")
	w.base = w.commit("Carol", "the app as it runs", map[string]string{"app.txt": baseText})
	repo, err := Clone(ctx, w.remote, filepath.Join(dir, "coordinator"), "origin", "main")
	if err != nil {
		t.Fatal(err)
	}
	w.repo = repo
	return w
}

// gitIn runs git in dir for the test's own setup and inspection.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files in the developer's clone, commits them as author
// and pushes, returning the commit's id.
func (w *world) commit(author, subject string, files map[string]string) string {
	w.t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(w.dev, name), []byte(text), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	gitIn(w.t, w.dev, "add", "-A")
	email := strings.ToLower(author) + "@example.com"
	gitIn(w.t, w.dev, "-c", "user.name="+author, "-c", "user.email="+email, "commit", "-q", "-m", subject)
	gitIn(w.t, w.dev, "push", "-q", "origin", "main")
	return gitIn(w.t, w.dev, "rev-parse", "HEAD")
}

// edit is baseText with line n (from 1) replaced.
func edit(text string, n int, line string) string {
	lines := strings.Split(text, "\n")
	lines[n-1] = line
	return strings.Join(lines, "\n")
}

// threeCommits pushes a range of three, the middle one the culprit, and
// returns them newest first, as Range lists them.
func (w *world) threeCommits() []string {
	a := w.commit("Alice", "add the cart", map[string]string{"cart.txt": "cart v1\n"})
	b := w.commit("Bob", "checkout: new payment flow", map[string]string{"app.txt": edit(baseText, 2, "TWO (bad)")})
	c := w.commit("Alice", "cart: bigger buttons", map[string]string{"cart.txt": "cart v2\n", "app.txt": edit(edit(baseText, 2, "TWO (bad)"), 6, "SIX")})
	return []string{c, b, a}
}

// remoteHead is the bare remote's main.
func (w *world) remoteHead() string {
	return gitIn(w.t, w.remote, "rev-parse", "refs/heads/main")
}

// tree is a commit's tree in the remote, to compare whole states.
func (w *world) tree(rev string) string {
	return gitIn(w.t, w.remote, "rev-parse", rev+"^{tree}")
}

// clean fails the test unless the coordinator's working copy has nothing
// staged, changed, untracked or half reverted, on the remote's head.
func (w *world) clean(wantHead string) {
	w.t.Helper()
	if st := gitIn(w.t, w.repo.Dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		w.t.Errorf("working copy is not clean:\n%s", st)
	}
	if _, err := os.Stat(filepath.Join(w.repo.Dir, ".git", "REVERT_HEAD")); err == nil {
		w.t.Error("a revert is still in progress (REVERT_HEAD)")
	}
	if _, err := os.Stat(filepath.Join(w.repo.Dir, ".git", "sequencer")); err == nil {
		w.t.Error("a revert sequence is still in progress (.git/sequencer)")
	}
	if head := gitIn(w.t, w.repo.Dir, "rev-parse", "HEAD"); head != wantHead {
		w.t.Errorf("working copy at %s, want %s", head, wantHead)
	}
	if branch := gitIn(w.t, w.repo.Dir, "symbolic-ref", "--short", "HEAD"); branch != "main" {
		w.t.Errorf("working copy on branch %s, want main", branch)
	}
}
