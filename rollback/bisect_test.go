package rollback

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/rollback/gitrepo/gittest"
)

// TestBisectFindsTheCulprit: a push of four commits whose second is bad
// is rolled back; bisect pushes halves to the first phase's hosts, finds
// the second commit, and only it is reverted; the lock names it and its
// author.
func TestBisectFindsTheCulprit(t *testing.T) {
	a := gittest.New(t)
	var badReleases []string
	f := repoFleet(t, a, []string{"www1:www", "www2:www", "www3:www", "www4:www"},
		"bisect: {enabled: true, build: [git, archive, --format=tar.gz, -o, \"{out}\", \"{revision}\"]}\n"+
			"revert: {repo: "+a.Repo.Dir+", remote: origin, branch: main}\n", &badReleases)
	f.c.Revert = NewReverter(f.cfg.Revert, a.Repo)
	built := 0
	f.c.Artifacts = func(path string) (string, error) {
		b, err := os.ReadFile(path)
		built++
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:]), err
	}
	ctx := context.Background()
	live := runGit(t, a.Dev, "rev-parse", "HEAD")
	if p, err := f.c.StartWith(ctx, live, sha, "ann", ""); err != nil || f.wait(t, p.ID).State != StateLive {
		t.Fatalf("first push: %v", err)
	}
	c1 := a.Commit("one.php", "1\n", "search: faster index")
	c2 := a.Commit("two.php", "2\n", "pricing: call the new service")
	c3 := a.Commit("three.php", "3\n", "signup: shorter form")
	c4 := a.Commit("four.php", "4\n", "chat: emoji")
	badReleases = []string{c2, c3, c4} // c2's code is in each of them
	_ = c1
	p, err := f.c.StartWith(ctx, c4, sha, "bo", "")
	if err != nil {
		t.Fatal(err)
	}
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || p.Bisect == nil || p.Bisect.Culprit == nil || p.Bisect.Culprit.SHA != c2 {
		t.Fatalf("push %s, bisect %+v: %s", p.State, p.Bisect, p.Reason)
	}
	if len(p.Bisect.Steps) != 2 || built != 2 {
		t.Errorf("%d steps, %d artifacts built; want 2: %+v", len(p.Bisect.Steps), built, p.Bisect.Steps)
	}
	if !strings.Contains(p.Reason, "culprit: "+c2[:12]+" pricing: call the new service by Ann Dev") {
		t.Errorf("reason %q", p.Reason)
	}
	// Only the culprit is reverted: the others stay.
	runGit(t, a.Repo.Dir, "fetch", "-q", "origin")
	for file, want := range map[string]bool{"one.php": true, "two.php": false, "three.php": true, "four.php": true} {
		_, err := os.Stat(filepath.Join(a.Repo.Dir, file))
		if (err == nil) != want {
			t.Errorf("%s present %v, want %v", file, err == nil, want)
		}
	}
	l, _ := f.c.Store.Locks()
	if l.Commit == nil || len(l.Commit.Range) != 1 || l.Commit.Range[0].SHA != c2 || l.Commit.Range[0].Author != "Ann Dev" {
		t.Errorf("lock %+v", l.Commit)
	}
	for name, ag := range f.agents {
		if ag.current == c4 || ag.current == c2 || ag.current == c3 {
			t.Errorf("%s left on %s after bisect", name, ag.current)
		}
	}
}
