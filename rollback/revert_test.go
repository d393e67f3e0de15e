package rollback

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/gitrepo/gittest"
)

var runGit = gittest.Git

// repoFleet is a test fleet over a real repository, whose release is bad
// when its revision is in *bad.
func repoFleet(t *testing.T, w *gittest.World, hosts []string, extra string, bad *[]string) *testFleet {
	t.Helper()
	f := newTestFleet(t, hosts, phpLimits+extra, func(h, ht, release string, n int) map[string]float64 {
		if slices.Contains(*bad, release) {
			release = "bad"
		}
		return badOnWWW(h, ht, release, n)
	})
	f.c.Repo = w.Repo
	return f
}

// TestPushRevertsItsRange: a push of three commits whose middle one is bad
// is rolled back and all three are reverted in one commit on the remote;
// the lock lists them. Unknown revisions, revisions that would drop live
// commits, and a revert that conflicts are handled as people need.
func TestPushRevertsItsRange(t *testing.T) {
	a := gittest.New(t)
	var bad []string
	f := repoFleet(t, a, []string{"www1:www", "www2:www", "www3:www"}, "", &bad)
	f.c.Revert = NewReverter(conf.Revert{Repo: a.Repo.Dir, Remote: "origin", Branch: "main",
		Push: []string{"git", "push", "-q", "origin", "main"}, Timeout: conf.Duration(time.Minute)}, a.Repo)
	ctx := context.Background()

	first := runGit(t, a.Dev, "rev-parse", "HEAD")
	live := a.Commit("x.php", "x\n", "checkout: tax on the total")
	p, err := f.c.StartWith(ctx, live, sha, "ann", "")
	if err != nil {
		t.Fatal(err)
	}
	if p = f.wait(t, p.ID); p.State != StateLive || len(p.Range) != 1 || p.Range[0].SHA != live {
		t.Fatalf("first push %s, range %+v", p.State, p.Range)
	}

	if _, err := f.c.StartWith(ctx, "1234567", sha, "ann", ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "revision 1234567 is not in") {
		t.Errorf("unknown revision: %v", err)
	}
	if _, err := f.c.StartWith(ctx, "--exec=id", sha, "ann", ""); !errors.Is(err, ErrRefused) {
		t.Errorf("an option as a revision: %v", err)
	}

	a.Commit("a.php", "a\n", "search: faster index")
	a.Commit("b.php", "b1\nb2\n", "pricing: call the new service")
	c := a.Commit("c.php", "c\n", "signup: shorter form")
	bad = []string{c} // the release that runs b's code is the push of c
	p, err = f.c.StartWith(ctx, c, sha, "bo", "")
	if err != nil {
		t.Fatal(err)
	}
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || len(p.Range) != 3 || p.Range[1].Subject != "pricing: call the new service" {
		t.Fatalf("push %s, range %+v: %s", p.State, p.Range, p.Reason)
	}
	check := a.Clone()
	for _, file := range []string{"a.php", "b.php", "c.php"} {
		if _, err := os.Stat(filepath.Join(check, file)); err == nil {
			t.Errorf("%s survived the revert", file)
		}
	}
	if msg := runGit(t, check, "log", "-1", "--format=%B"); !strings.Contains(msg, "Revert the 3 commits") || !strings.Contains(msg, "pricing: call the new service (Ann Dev)") {
		t.Errorf("revert message:\n%s", msg)
	}
	l, _ := f.c.Store.Locks()
	if l.Commit == nil || len(l.Commit.Range) != 3 || l.Commit.Page != "/pushes/"+p.ID {
		t.Fatalf("lock %+v", l.Commit)
	}
	f.c.Unlock("ann", "fixed the pricing call")

	// A revision that does not descend from the live one would drop live
	// commits: refused, unless forced with a reason.
	runGit(t, a.Dev, "checkout", "-q", "-b", "old", first)
	os.WriteFile(filepath.Join(a.Dev, "old.php"), []byte("x\n"), 0o644)
	runGit(t, a.Dev, "add", "old.php")
	runGit(t, a.Dev, "commit", "-q", "-m", "an old branch")
	runGit(t, a.Dev, "push", "-q", "origin", "old")
	side := runGit(t, a.Dev, "rev-parse", "HEAD")
	if _, err := f.c.StartWith(ctx, side, sha, "cy", ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "does not descend from the live revision") {
		t.Errorf("a side branch: %v", err)
	}
	if p, err = f.c.StartWith(ctx, side, sha, "cy", "cy: the hotfix branch, on purpose"); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if p = f.wait(t, p.ID); p.Forced == "" || !strings.Contains(p.Events[0].Msg, "forced over the live revision") {
		t.Errorf("forced push: %+v", p.Events[0])
	}
}

// TestRevertConflictSaysSo: when the commits cannot be reverted cleanly
// (the branch moved on over the same lines), the revert aborts, the
// working copy is left clean, and the lock says what to do.
func TestRevertConflictSaysSo(t *testing.T) {
	a := gittest.New(t)
	var bad []string
	f := repoFleet(t, a, []string{"www1:www", "www2:www", "www3:www"}, "", &bad)
	f.c.Revert = NewReverter(conf.Revert{Repo: a.Repo.Dir, Remote: "origin", Branch: "main", Timeout: conf.Duration(time.Minute)}, a.Repo)
	bad = []string{a.Commit("b.php", "b1\nb2\n", "pricing: call the new service")}
	p, err := f.c.StartWith(context.Background(), bad[0], sha, "di", "")
	if err != nil {
		t.Fatal(err)
	}
	a.Commit("b.php", "b1 changed\nb2\n", "pricing: fix the rounding") // lands while the push runs
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || p.Revert == nil || !strings.Contains(p.Revert.Error, "conflict reverting") {
		t.Fatalf("push %s, revert %+v", p.State, p.Revert)
	}
	if st := runGit(t, a.Repo.Dir, "status", "--porcelain"); st != "" {
		t.Errorf("working copy left dirty: %q", st)
	}
	if l, _ := f.c.Store.Locks(); l.Commit == nil || !strings.Contains(l.Commit.RevertError, "conflict reverting") {
		t.Errorf("lock %+v", l.Commit)
	}
}

// TestPushRefusedBeforeAnythingChanges: a file that is not a tar.gz, or a
// revision the repository does not have, is refused with a clear message:
// no push, no baseline, no lock.
func TestPushRefusedBeforeAnythingChanges(t *testing.T) {
	a := gittest.New(t)
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, phpLimits, calm)
	f.c.Repo = a.Repo
	base := serve(t, f)
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	upload := func(body string) string {
		code, out := call("PUT", "/api/v1/artifacts", body)
		var up struct{ SHA256 string }
		if code != 201 || json.Unmarshal([]byte(out), &up) != nil {
			t.Fatalf("upload: %d %s", code, out)
		}
		return up.SHA256
	}
	notTar := upload("this is a typo'd path, not a release\n")
	good := runGit(t, a.Dev, "rev-parse", "HEAD")
	for _, tt := range []struct{ body, want string }{
		{`{"revision":"` + good + `","sha256":"` + notTar + `","who":"ed"}`, "not gzip data"},
		{`{"revision":"1234567","sha256":"` + notTar + `","who":"ed"}`, "not gzip data"},
		{`{"revision":"-rf","sha256":"` + notTar + `","who":"ed"}`, "no '-' first"},
	} {
		if code, out := call("POST", "/api/v1/pushes", tt.body); code != 400 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: %d %s, want 400 %q", tt.body, code, out, tt.want)
		}
	}
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "index.php", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("ok"))
	tw.Close()
	gz.Close()
	release := upload(tgz.String())
	if code, out := call("POST", "/api/v1/pushes", `{"revision":"1234567","sha256":"`+release+`","who":"ed"}`); code != 400 ||
		!strings.Contains(out, "revision 1234567 is not in") || !strings.Contains(out, "nothing was pushed") {
		t.Errorf("unknown revision: %d %s", code, out)
	}
	if ps, _ := f.c.Store.Pushes(0); len(ps) != 0 {
		t.Errorf("refused pushes were recorded: %d", len(ps))
	}
	if l, _ := f.c.Store.Locks(); l.Commit != nil || l.Push != "" {
		t.Errorf("locks %+v", l)
	}
}
