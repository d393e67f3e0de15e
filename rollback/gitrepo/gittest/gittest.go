// Package gittest makes real git repositories for tests: a bare remote, a
// developer's clone that commits and pushes to it, and a working copy of
// the coordinator's, all in a test's temp dir.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/rollback/gitrepo"
)

// Git runs git in dir as the developer Ann Dev, whatever the machine's
// git config says, and returns its output; a failure fails the test.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ann Dev", "GIT_AUTHOR_EMAIL=ann@example.com",
		"GIT_COMMITTER_NAME=Ann Dev", "GIT_COMMITTER_EMAIL=ann@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// World is a remote, a developer's clone and the coordinator's working copy.
type World struct {
	t           testing.TB
	Remote, Dev string
	Repo        *gitrepo.Repo
}

// New makes a world whose main branch has one commit, cloned by both.
func New(t testing.TB) *World {
	dir := t.TempDir()
	w := &World{t: t, Remote: filepath.Join(dir, "remote.git"), Dev: filepath.Join(dir, "dev")}
	Git(t, dir, "init", "-q", "--bare", "-b", "main", w.Remote)
	Git(t, dir, "clone", "-q", w.Remote, w.Dev)
	Git(t, w.Dev, "checkout", "-q", "-b", "main")
	w.Commit("app.php", "v1\n", "the app today")
	work := filepath.Join(dir, "work")
	Git(t, dir, "clone", "-q", w.Remote, work)
	Git(t, work, "config", "user.name", "immune")
	Git(t, work, "config", "user.email", "immune@example.com")
	w.Repo = &gitrepo.Repo{Dir: work, Remote: "origin", Branch: "main"}
	return w
}

// Commit writes file in the developer's clone, commits it and pushes it,
// and returns the commit's SHA.
func (w *World) Commit(file, body, subject string) string {
	w.t.Helper()
	if err := os.WriteFile(filepath.Join(w.Dev, file), []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	Git(w.t, w.Dev, "add", file)
	Git(w.t, w.Dev, "commit", "-q", "-m", subject)
	Git(w.t, w.Dev, "push", "-q", "origin", "HEAD")
	return Git(w.t, w.Dev, "rev-parse", "HEAD")
}

// Clone is a fresh clone of the remote, to see what it holds.
func (w *World) Clone() string {
	dir := filepath.Join(w.t.TempDir(), "check")
	Git(w.t, filepath.Dir(dir), "clone", "-q", w.Remote, dir)
	return dir
}
