package agent

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
)

const deployToken = "deploy-token-of-the-coordinator"

// releaseArtifact is a good release of rev: files, dirs, an in-tree
// symlink and a hard link; extra entries go after them.
func releaseArtifact(t *testing.T, rev string, extra ...entry) []byte {
	return tarGz(t, append([]entry{
		dirEntry("./"),
		dirEntry("./bin/"),
		{name: "./bin/app", typ: tar.TypeReg, body: "#!/bin/sh\necho " + rev + "\n", mode: 0o4755},
		fileEntry("./VERSION", rev+"\n"),
		dirEntry("./lib/"),
		symlinkEntry("./lib/version", "../VERSION"),
		hardlinkEntry("./app", "./bin/app"),
		{name: "./secrets/", typ: tar.TypeDir, mode: 0o500},
		{name: "./tmp/", typ: tar.TypeDir, mode: 0o1777},
		fileEntry("implicit/parent/file", "x"),
	}, extra...)...)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// coordinator stands in for the coordinator's artifact endpoint: it serves
// artifacts by sha256 to the deploy token only, and counts downloads.
type coordinator struct {
	srv *httptest.Server

	mu      sync.Mutex
	token   string
	files   map[string][]byte
	chunked map[string]bool
	gates   map[string]chan struct{}
	hits    map[string]int
	started chan string
}

// linkCredential stands for the signature of a coordinator's artifact link.
const linkCredential = "link-signature"

func newCoordinator(t *testing.T) *coordinator {
	c := &coordinator{token: deployToken, files: map[string][]byte{}, chunked: map[string]bool{}, gates: map[string]chan struct{}{}, hits: map[string]int{}, started: make(chan string, 16)}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *coordinator) serve(w http.ResponseWriter, r *http.Request) {
	sum := strings.TrimPrefix(r.URL.Path, "/api/v1/artifacts/")
	c.mu.Lock()
	// The link is the credential; the deploy token must never be sent.
	if r.Header.Get("Authorization") != "" {
		c.mu.Unlock()
		http.Error(w, "a credential was sent with the link: "+r.Header.Get("Authorization"), http.StatusBadRequest)
		return
	}
	if r.URL.Query().Get("sig") != linkCredential || c.token != deployToken {
		c.mu.Unlock()
		http.Error(w, "the artifact link expired", http.StatusForbidden)
		return
	}
	data, ok := c.files[sum]
	chunked, gate := c.chunked[sum], c.gates[sum]
	c.hits[sum]++
	c.mu.Unlock()
	if !ok {
		http.Error(w, "no such artifact", http.StatusNotFound)
		return
	}
	if gate != nil {
		c.started <- sum
		<-gate
	}
	if chunked {
		for chunk := range slices.Chunk(data, 1024) {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

// publish serves data and returns its URL and sha256.
func (c *coordinator) publish(data []byte) (url, sum string) {
	sum = sha(data)
	c.mu.Lock()
	c.files[sum] = data
	c.mu.Unlock()
	return c.srv.URL + "/api/v1/artifacts/" + sum + "?push=p1&sig=" + linkCredential, sum
}

func (c *coordinator) hitsOf(sum string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[sum]
}

// deployEnv is an agent with deploys on, and the coordinator it deploys from.
type deployEnv struct {
	t         *testing.T
	a         *Agent
	base      string
	root      string
	hookLog   string
	readToken string
	coord     *coordinator
}

// hookScript is both hooks: it logs what it was given, and fails, or hangs,
// when the release holds a file saying so.
const hookScript = `echo "$0 $IMMUNE_REVISION $IMMUNE_PREVIOUS_REVISION $IMMUNE_RELEASE_DIR $(pwd -P)" >> %s; test ! -e fail-$0 || exit 1; if [ -e hang-$0 ]; then sleep 30; fi`

func newDeployEnv(t *testing.T, keep int) *deployEnv {
	t.Helper()
	dir := t.TempDir()
	e := &deployEnv{t: t, root: filepath.Join(dir, "root"), hookLog: filepath.Join(dir, "hooks.log"), coord: newCoordinator(t)}
	tokenFile := filepath.Join(dir, "deploy.token")
	if err := os.WriteFile(tokenFile, []byte(deployToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf(hookScript, e.hookLog)
	text := fmt.Sprintf(`
host: test1
host_type: www
data_dir: %s
http:
  listen: 127.0.0.1:0
deploy:
  root: %s
  keep: %d
  pre_activate: [/bin/sh, -c, %q, pre]
  post_activate: [/bin/sh, -c, %q, post]
  hook_timeout: 2s
  token_file: %s
  max_artifact_bytes: 65536
  max_unpacked_bytes: 1048576
  max_entries: 1000
`, filepath.Join(dir, "data"), e.root, keep, hook, hook, tokenFile)
	cfg, err := conf.ParseAgent("deploy.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	e.a = startAgent(t, cfg)
	e.base = "http://" + e.a.HTTPAddr().String()
	token, err := os.ReadFile(filepath.Join(dir, "data", "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	e.readToken = strings.TrimSpace(string(token))
	return e
}

// call makes one API request; token "" sends no credential.
func (e *deployEnv) call(method, path, token, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// deploy publishes an artifact and deploys it as rev.
func (e *deployEnv) deploy(rev string, artifact []byte) (int, string) {
	e.t.Helper()
	url, sum := e.coord.publish(artifact)
	return e.call("POST", "/api/v1/deploy", deployToken, deployBody(rev, url, sum))
}

func deployBody(rev, url, sum string) string {
	b, _ := json.Marshal(agentapi.DeployRequest{Revision: rev, ArtifactURL: url, SHA256: sum})
	return string(b)
}

// mustRelease reads a 200 answer's release JSON.
func (e *deployEnv) mustRelease(what string, code int, body string) agentapi.Release {
	e.t.Helper()
	if code != http.StatusOK {
		e.t.Fatalf("%s: %d %s", what, code, body)
	}
	var rel agentapi.Release
	if err := json.Unmarshal([]byte(body), &rel); err != nil {
		e.t.Fatalf("%s: %v in %q", what, err, body)
	}
	return rel
}

func (e *deployEnv) wantRelease(what string, code int, body string, current, previous string, releases ...string) {
	e.t.Helper()
	rel := e.mustRelease(what, code, body)
	if rel.Current != current || rel.Previous != previous || !slices.Equal(rel.Releases, releases) {
		e.t.Errorf("%s: %+v, want current %q previous %q releases %q", what, rel, current, previous, releases)
	}
	e.wantOnDisk(what, current, previous, releases...)
}

// wantOnDisk checks the root itself: the links, the release dirs and their
// meta files, and that no temporary is left.
func (e *deployEnv) wantOnDisk(what, current, previous string, releases ...string) {
	e.t.Helper()
	for name, rev := range map[string]string{"current": current, "previous": previous} {
		target, err := os.Readlink(filepath.Join(e.root, name))
		want := "releases/" + rev
		if rev == "" {
			want = ""
		}
		if target != want || (rev != "" && err != nil) {
			e.t.Errorf("%s: %s -> %q (%v), want %q", what, name, target, err, want)
		}
	}
	if current != "" {
		if v, err := os.ReadFile(filepath.Join(e.root, "current", "lib", "version")); err != nil || string(v) != current+"\n" {
			e.t.Errorf("%s: current/lib/version is %q, %v", what, v, err)
		}
	}
	var dirs, metas []string
	for _, sub := range []string{"releases", "meta"} {
		entries, err := os.ReadDir(filepath.Join(e.root, sub))
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ent := range entries {
			if sub == "releases" {
				dirs = append(dirs, ent.Name())
			} else {
				metas = append(metas, strings.TrimSuffix(ent.Name(), ".json"))
			}
		}
	}
	sorted := slices.Sorted(slices.Values(releases))
	if !slices.Equal(dirs, sorted) || !slices.Equal(metas, sorted) {
		e.t.Errorf("%s: releases/ holds %q and meta/ %q, want %q", what, dirs, metas, sorted)
	}
	entries, _ := os.ReadDir(e.root)
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), "current~") || strings.HasPrefix(ent.Name(), "previous~") {
			e.t.Errorf("%s: temporary %s left in the root", what, ent.Name())
		}
	}
}

func (e *deployEnv) hookLines() []string {
	b, _ := os.ReadFile(e.hookLog)
	os.Remove(e.hookLog)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestDeployAndRollback(t *testing.T) {
	e := newDeployEnv(t, 5)
	code, body := e.call("GET", "/api/v1/release", e.readToken, "")
	if want := "{\n  \"current\": \"\",\n  \"previous\": \"\",\n  \"releases\": []\n}\n"; code != 200 || body != want {
		t.Errorf("release before any deploy: %d %q, want %q", code, body, want)
	}

	r1 := releaseArtifact(t, "R1")
	code, body = e.deploy("R1", r1)
	e.wantRelease("deploy R1", code, body, "R1", "", "R1")
	dir1 := filepath.Join(e.root, "releases", "R1")
	want := []string{"pre R1  " + dir1 + " " + dir1, "post R1  " + dir1 + " " + dir1}
	if got := e.hookLines(); !slices.Equal(got, want) {
		t.Errorf("hooks of the first deploy:\n%q\nwant\n%q", got, want)
	}
	for name, mode := range map[string]os.FileMode{"bin/app": 0o755, "VERSION": 0o644, "secrets": 0o700 | os.ModeDir, "implicit/parent": 0o755 | os.ModeDir} {
		fi, err := os.Stat(filepath.Join(dir1, name))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v, want mode %v", name, fi.Mode(), err, mode)
		}
	}
	a, errA := os.Stat(filepath.Join(dir1, "app"))
	b, errB := os.Stat(filepath.Join(dir1, "bin", "app"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("app is not a hard link of bin/app: %v %v", errA, errB)
	}

	code, body = e.deploy("R2", releaseArtifact(t, "R2"))
	e.wantRelease("deploy R2", code, body, "R2", "R1", "R1", "R2")
	dir2 := filepath.Join(e.root, "releases", "R2")
	if got := e.hookLines(); len(got) != 2 || got[1] != "post R2 R1 "+dir2+" "+dir2 {
		t.Errorf("hooks of the second deploy: %q", got)
	}

	// A repeat is a no-op: nothing fetched, no hook run.
	url, sum := e.coord.publish(releaseArtifact(t, "R2"))
	hits := e.coord.hitsOf(sum)
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R2", url, sum))
	e.wantRelease("deploy R2 again", code, body, "R2", "R1", "R1", "R2")
	if e.coord.hitsOf(sum) != hits || e.hookLines()[0] != "" {
		t.Error("deploying the current revision again fetched it or ran hooks")
	}
	code, body = e.call("GET", "/api/v1/release", deployToken, "")
	e.wantRelease("GET with the deploy token", code, body, "R2", "R1", "R1", "R2")

	for _, step := range []struct {
		body, current, previous string
		hook                    bool
	}{
		{"", "R1", "R2", true},                    // to the previous, no body
		{"{}", "R2", "R1", true},                  // and back: previous is where we came from
		{`{"to":"R1"}`, "R1", "R2", true},         // to a named release
		{`{"to":"R1"}`, "R1", "R2", false},        // already there: a no-op
		{`{"to":"R2"}`, "R2", "R1", true},         // named, the previous one
		{`{"to":"R2"}`, "R2", "R1", false},        // no-op again
		{`{"to": "R1"}` + "\n", "R1", "R2", true}, // trailing newline is fine
	} {
		code, body := e.call("POST", "/api/v1/rollback", deployToken, step.body)
		e.wantRelease("rollback "+step.body, code, body, step.current, step.previous, "R1", "R2")
		dir := filepath.Join(e.root, "releases", step.current)
		lines := e.hookLines()
		if step.hook && (len(lines) != 1 || lines[0] != "post "+step.current+" "+step.previous+" "+dir+" "+dir) {
			t.Errorf("rollback %s ran %q", step.body, lines)
		}
		if !step.hook && lines[0] != "" {
			t.Errorf("no-op rollback %s ran %q", step.body, lines)
		}
	}
	for body, want := range map[string]int{`{"to":"R9"}`: 404, `{"to":"../R1"}`: 400, `{"to":".."}`: 400, `{"to":`: 400} {
		if code, text := e.call("POST", "/api/v1/rollback", deployToken, body); code != want {
			t.Errorf("rollback %s: %d %s, want %d", body, code, text, want)
		}
	}
	code, body = e.call("GET", "/api/v1/release", e.readToken, "")
	e.wantRelease("after the refused rollbacks", code, body, "R1", "R2", "R1", "R2")
}

func TestDeployRollbackWithoutPrevious(t *testing.T) {
	e := newDeployEnv(t, 5)
	if code, body := e.call("POST", "/api/v1/rollback", deployToken, ""); code != 404 || !strings.Contains(body, "no previous release") {
		t.Errorf("rollback with no release: %d %s", code, body)
	}
	code, body := e.deploy("R1", releaseArtifact(t, "R1"))
	e.wantRelease("deploy R1", code, body, "R1", "", "R1")
	if code, body := e.call("POST", "/api/v1/rollback", deployToken, "{}"); code != 404 || !strings.Contains(body, "no previous release") {
		t.Errorf("rollback with one release: %d %s", code, body)
	}
}

func TestDeployPrunes(t *testing.T) {
	e := newDeployEnv(t, 2)
	for _, rev := range []string{"R1", "R2", "R3"} {
		code, body := e.deploy(rev, releaseArtifact(t, rev))
		e.mustRelease("deploy "+rev, code, body)
	}
	code, body := e.call("GET", "/api/v1/release", deployToken, "")
	e.wantRelease("three deploys, keep 2", code, body, "R3", "R2", "R2", "R3")

	// The previous release is kept however old it is.
	code, body = e.call("POST", "/api/v1/rollback", deployToken, "")
	e.wantRelease("rollback", code, body, "R2", "R3", "R2", "R3")
	code, body = e.deploy("R4", releaseArtifact(t, "R4"))
	e.wantRelease("deploy R4 after a rollback", code, body, "R4", "R2", "R2", "R3", "R4")
	code, body = e.deploy("R5", releaseArtifact(t, "R5"))
	e.wantRelease("deploy R5", code, body, "R5", "R4", "R4", "R5")
}

func TestDeployRefusesArtifacts(t *testing.T) {
	e := newDeployEnv(t, 5)
	code, body := e.deploy("R0", releaseArtifact(t, "R0"))
	e.wantRelease("deploy R0", code, body, "R0", "", "R0")
	e.hookLines()

	big := make([]byte, 100<<10)
	rand.Read(big)
	oversize := tarGz(t, fileEntry("big", string(big)))
	cases := append([]refusal{
		{name: "oversize", artifact: oversize, want: fmt.Sprintf("is %d bytes, over max_artifact_bytes (65536)", len(oversize))},
		{name: "oversize chunked", artifact: oversize, chunked: true, want: "is over max_artifact_bytes (65536)"},
		{name: "unpacks past max_unpacked_bytes", artifact: zeros(t, 1, 16<<20), want: "unpacks to more than max_unpacked_bytes (1048576)"},
		{name: "more than max_entries", artifact: manyFiles(t, 1001, 0), want: "more than max_entries (1000) entries"},
	}, refusedArtifacts(t)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, sum := e.coord.publish(tc.artifact)
			e.coord.mu.Lock()
			e.coord.chunked[sum] = tc.chunked
			e.coord.mu.Unlock()
			code, body := e.call("POST", "/api/v1/deploy", deployToken, deployBody("BAD", url, sum))
			if code != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) || !strings.HasPrefix(body, "deploy BAD: ") {
				t.Errorf("%d %q, want 422 with %q", code, body, tc.want)
			}
			e.wantOnDisk(tc.name, "R0", "", "R0")
			if _, err := os.Lstat(filepath.Join(filepath.Dir(e.root), "evil")); err == nil {
				t.Error("evil was written outside the root")
			}
			if lines := e.hookLines(); lines[0] != "" {
				t.Errorf("hooks ran for a refused artifact: %q", lines)
			}
		})
	}

	// A sha256 other than the one asked for is refused before unpacking.
	url, sum := e.coord.publish(releaseArtifact(t, "R1"))
	wrong := sha([]byte("something else"))
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R1", url, wrong))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "has sha256 "+sum+", not "+wrong+": nothing unpacked") {
		t.Errorf("wrong sha256: %d %q", code, body)
	}
	e.wantOnDisk("wrong sha256", "R0", "", "R0")
}

func TestDeployBadRequests(t *testing.T) {
	e := newDeployEnv(t, 5)
	url, sum := e.coord.publish(releaseArtifact(t, "R1"))
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String() + "/api/v1/artifacts/" + sum
	closed.Close()
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"not JSON", "revision=R1", 400, "read request"},
		{"no revision", deployBody("", url, sum), 400, `revision ""`},
		{"dot", deployBody(".", url, sum), 400, `revision "."`},
		{"dotdot", deployBody("..", url, sum), 400, `revision ".."`},
		{"slash", deployBody("a/b", url, sum), 400, `revision "a/b"`},
		{"space", deployBody("a b", url, sum), 400, `revision "a b"`},
		{"tilde", deployBody("a~b", url, sum), 400, `revision "a~b"`},
		{"too long", deployBody(strings.Repeat("r", 65), url, sum), 400, "1 to 64"},
		{"short sha", deployBody("R1", url, sum[:63]), 400, "64 hex digits"},
		{"not hex", deployBody("R1", url, strings.Repeat("g", 64)), 400, "64 hex digits"},
		{"ftp", deployBody("R1", "ftp://127.0.0.1/x", sum), 400, "want an http or https URL"},
		{"no URL", deployBody("R1", "", sum), 400, "artifact_url"},
		{"unknown artifact", deployBody("R1", strings.Replace(url, sum, strings.Repeat("0", 64), 1), sum), 502, "404 Not Found: no such artifact"},
		{"coordinator down", deployBody("R1", deadURL, sum), 502, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call("POST", "/api/v1/deploy", deployToken, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %q, want %d with %q", code, body, tc.code, tc.want)
			}
			e.wantOnDisk(tc.name, "", "")
		})
	}
	// The longest name is fine, and upper-case hex too.
	long := strings.Repeat("r", 64)
	code, body := e.call("POST", "/api/v1/deploy", deployToken, deployBody(long, url, strings.ToUpper(sum)))
	if rel := e.mustRelease("64-character revision", code, body); rel.Current != long {
		t.Errorf("64-character revision: %+v", rel)
	}
}

func TestDeployCredentials(t *testing.T) {
	e := newDeployEnv(t, 5)
	url, sum := e.coord.publish(releaseArtifact(t, "R1"))
	deploy := deployBody("R1", url, sum)
	for _, tc := range []struct {
		method, path, token, body string
		code                      int
	}{
		{"GET", "/api/v1/release", "", "", 401},
		{"GET", "/api/v1/release", "wrong", "", 401},
		{"GET", "/api/v1/release", e.readToken, "", 200},
		{"GET", "/api/v1/release", deployToken, "", 200},
		{"POST", "/api/v1/deploy", "", deploy, 401},
		{"POST", "/api/v1/deploy", "wrong", deploy, 401},
		{"POST", "/api/v1/deploy", e.readToken, deploy, 403},
		{"POST", "/api/v1/rollback", "", "", 401},
		{"POST", "/api/v1/rollback", e.readToken, `{"to":"R1"}`, 403},
		{"GET", "/api/v1/deploy", deployToken, "", 405},
		// The deploy token reads nothing else.
		{"GET", "/api/v1/checks", deployToken, "", 401},
	} {
		if code, body := e.call(tc.method, tc.path, tc.token, tc.body); code != tc.code {
			t.Errorf("%s %s with token %q: %d %s, want %d", tc.method, tc.path, tc.token, code, body, tc.code)
		}
	}
	if e.coord.hitsOf(sum) != 0 {
		t.Error("a refused deploy fetched the artifact")
	}
	e.wantOnDisk("after refused requests", "", "")

	// The agent fetches with the link alone (the stand-in refuses any
	// Authorization header), and a link the coordinator refuses, as when
	// it expired, fetches nothing.
	e.coord.mu.Lock()
	e.coord.token = "links of another coordinator"
	e.coord.mu.Unlock()
	code, body := e.call("POST", "/api/v1/deploy", deployToken, deploy)
	if code != http.StatusBadGateway || !strings.Contains(body, "403 Forbidden: the artifact link expired") {
		t.Errorf("artifact fetched with a refused link: %d %s", code, body)
	}
	e.wantOnDisk("after a refused download", "", "")
}

func TestDeployTokenMustDifferFromAPIToken(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("same\n"), 0o600)
	cfg, err := conf.ParseAgent("t.yaml", fmt.Appendf(nil, "host_type: www\ndata_dir: %s\nhttp: {listen: \"127.0.0.1:0\", token_file: %s}\ndeploy: {root: %s, token_file: %s}\n", dir, token, filepath.Join(dir, "root"), token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "deploy.token_file holds the HTTP API's token") {
		t.Errorf("New with one token for both: %v", err)
	}
}

func TestDeployHooks(t *testing.T) {
	e := newDeployEnv(t, 5)
	code, body := e.deploy("R1", releaseArtifact(t, "R1"))
	e.wantRelease("deploy R1", code, body, "R1", "", "R1")
	e.hookLines()

	// A failing pre_activate: current is untouched; the release stays
	// unpacked, for a retry or for a look at what failed.
	code, body = e.deploy("R2", releaseArtifact(t, "R2", fileEntry("fail-pre", "")))
	if code != 500 || body != "deploy R2: pre_activate /bin/sh: exit status 1; current is still R1\n" {
		t.Errorf("failing pre_activate: %d %q", code, body)
	}
	e.wantOnDisk("after failing pre_activate", "R1", "", "R1", "R2")
	if lines := e.hookLines(); len(lines) != 1 || !strings.HasPrefix(lines[0], "pre R2 R1 ") {
		t.Errorf("hooks: %q", lines)
	}

	// A failing post_activate: current is switched back.
	code, body = e.deploy("R3", releaseArtifact(t, "R3", fileEntry("fail-post", "")))
	if code != 500 || body != "deploy R3: post_activate /bin/sh: exit status 1; switched back to R1\n" {
		t.Errorf("failing post_activate: %d %q", code, body)
	}
	e.wantOnDisk("after failing post_activate", "R1", "", "R1", "R2", "R3")
	if lines := e.hookLines(); len(lines) != 2 || !strings.HasPrefix(lines[1], "post R3 R1 ") {
		t.Errorf("hooks: %q", lines)
	}

	// A hook past hook_timeout is killed, and fails.
	code, body = e.deploy("R4", releaseArtifact(t, "R4", fileEntry("hang-post", "")))
	if code != 500 || body != "deploy R4: post_activate /bin/sh: timed out after 2s; switched back to R1\n" {
		t.Errorf("hanging post_activate: %d %q", code, body)
	}
	e.wantOnDisk("after hanging post_activate", "R1", "", "R1", "R2", "R3", "R4")

	// A rollback whose post_activate fails is not undone: switching back
	// would put the bad release back, so the target stays current and the
	// coordinator's retry is a no-op.
	code, body = e.deploy("R5", releaseArtifact(t, "R5"))
	e.wantRelease("deploy R5", code, body, "R5", "R1", "R1", "R2", "R3", "R4", "R5")
	code, body = e.call("POST", "/api/v1/rollback", deployToken, `{"to":"R3"}`)
	if code != 500 || body != "rollback to R3: post_activate /bin/sh: exit status 1; current is R3 all the same, not switched back to R5, the release rolled back from\n" {
		t.Errorf("rollback with failing post_activate: %d %q", code, body)
	}
	code, body = e.call("GET", "/api/v1/release", deployToken, "")
	e.wantRelease("after the failed rollback", code, body, "R3", "R5", "R1", "R2", "R3", "R4", "R5")
	e.hookLines()
	code, body = e.call("POST", "/api/v1/rollback", deployToken, `{"to":"R3"}`)
	e.wantRelease("the coordinator's retry", code, body, "R3", "R5", "R1", "R2", "R3", "R4", "R5")
	if lines := e.hookLines(); len(lines) != 1 || lines[0] != "" {
		t.Errorf("the retry ran hooks %q, want it a no-op", lines)
	}

	// The first deploy has nothing to switch back to.
	f := newDeployEnv(t, 5)
	code, body = f.deploy("R1", releaseArtifact(t, "R1", fileEntry("fail-post", "")))
	if code != 500 || !strings.HasSuffix(body, "; switched back to no release\n") {
		t.Errorf("failing first post_activate: %d %q", code, body)
	}
	f.wantOnDisk("after failing first deploy", "", "", "R1")
}

func TestDeployConcurrent(t *testing.T) {
	e := newDeployEnv(t, 5)
	slow := releaseArtifact(t, "SLOW")
	url, sum := e.coord.publish(slow)
	gate := make(chan struct{})
	e.coord.mu.Lock()
	e.coord.gates[sum] = gate
	e.coord.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)

	type answer struct {
		code int
		body string
	}
	first := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.base+"/api/v1/deploy", strings.NewReader(deployBody("SLOW", url, sum)))
		req.Header.Set("Authorization", "Bearer "+deployToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		first <- answer{resp.StatusCode, string(b)}
	}()
	<-e.coord.started // the first deploy holds the lock and is downloading

	url2, sum2 := e.coord.publish(releaseArtifact(t, "R2"))
	for _, req := range []struct{ path, body string }{
		{"/api/v1/deploy", deployBody("R2", url2, sum2)},
		{"/api/v1/deploy", deployBody("SLOW", url, sum)},
		{"/api/v1/rollback", `{"to":"SLOW"}`},
	} {
		code, body := e.call("POST", req.path, deployToken, req.body)
		if code != http.StatusConflict || !strings.Contains(body, "another deploy or rollback is running") {
			t.Errorf("POST %s during a deploy: %d %q, want 409", req.path, code, body)
		}
	}
	code, body := e.call("GET", "/api/v1/release", e.readToken, "")
	if rel := e.mustRelease("GET during a deploy", code, body); rel.Current != "" || len(rel.Releases) != 0 {
		t.Errorf("GET during a deploy: %+v", rel)
	}

	release()
	got := <-first
	e.wantRelease("the first deploy", got.code, got.body, "SLOW", "", "SLOW")
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R2", url2, sum2))
	e.wantRelease("the second deploy, after", code, body, "R2", "SLOW", "SLOW", "R2")
}

func TestDeployAfterCrash(t *testing.T) {
	e := newDeployEnv(t, 5)
	ctx := context.Background()
	r1 := releaseArtifact(t, "R1")
	url1, sum1 := e.coord.publish(r1)

	// A crash mid-unpack leaves temporaries; a crash mid-switch a half-made link.
	releases := filepath.Join(e.root, "releases")
	os.MkdirAll(filepath.Join(releases, "R1~unpack-123", "bin"), 0o755)
	os.WriteFile(filepath.Join(releases, "R1~fetch-456"), []byte("half an artifact"), 0o644)
	os.Symlink("releases/R1", filepath.Join(e.root, "current~XYZ"))
	// A release dir with no meta file is not trusted: unpacked again.
	os.MkdirAll(filepath.Join(releases, "R1", "bin"), 0o755)
	os.WriteFile(filepath.Join(releases, "R1", "junk"), []byte("x"), 0o644)
	// Files of the operator's in the root are left alone.
	os.WriteFile(filepath.Join(e.root, "notes~"), []byte("mine"), 0o644)

	code, body := e.call("POST", "/api/v1/deploy", deployToken, deployBody("R1", url1, sum1))
	e.wantRelease("deploy over leftovers", code, body, "R1", "", "R1")
	if _, err := os.Stat(filepath.Join(releases, "R1", "junk")); err == nil || e.coord.hitsOf(sum1) != 1 {
		t.Errorf("the half release was reused (%d downloads)", e.coord.hitsOf(sum1))
	}
	if _, err := os.Stat(filepath.Join(e.root, "notes~")); err != nil {
		t.Errorf("an operator's file was removed: %v", err)
	}

	// A crash after unpacking and before the switch: the retry reuses the
	// release without downloading it again.
	url2, sum2 := e.coord.publish(releaseArtifact(t, "R2"))
	if err := e.a.deployer.install(ctx, agentapi.DeployRequest{Revision: "R2", ArtifactURL: url2, SHA256: sum2}); err != nil {
		t.Fatal(err)
	}
	e.wantOnDisk("crashed before the switch", "R1", "", "R1", "R2")
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R2", url2, sum2))
	e.wantRelease("retry", code, body, "R2", "R1", "R1", "R2")
	if n := e.coord.hitsOf(sum2); n != 1 {
		t.Errorf("the retry downloaded the artifact again: %d downloads", n)
	}

	// A release unpacked from another artifact is unpacked again.
	url3, sum3 := e.coord.publish(releaseArtifact(t, "R3"))
	if err := e.a.deployer.install(ctx, agentapi.DeployRequest{Revision: "R3", ArtifactURL: url3, SHA256: sum3}); err != nil {
		t.Fatal(err)
	}
	url3b, sum3b := e.coord.publish(releaseArtifact(t, "R3", fileEntry("rebuilt", "")))
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R3", url3b, sum3b))
	e.wantRelease("deploy R3 of another sha256", code, body, "R3", "R2", "R1", "R2", "R3")
	if _, err := os.Stat(filepath.Join(e.root, "current", "rebuilt")); err != nil || e.coord.hitsOf(sum3b) != 1 {
		t.Errorf("R3 was not unpacked again from its new artifact: %v", err)
	}

	// But the current release is not replaced under the running code.
	code, body = e.call("POST", "/api/v1/deploy", deployToken, deployBody("R3", url3, sum3))
	if code != http.StatusConflict || !strings.Contains(body, "R3 is current, unpacked from sha256 "+sum3b+", not "+sum3) {
		t.Errorf("redeploy of the current revision from another artifact: %d %q", code, body)
	}
}

// TestArtifactFetchSkipsProxy: HTTP_PROXY would see every artifact link
// and release; the fetch goes straight to the coordinator. The transport
// has no proxy function at all: net/http reads the proxy variables once a
// process, so setting them here could not show a client that uses them.
func TestArtifactFetchSkipsProxy(t *testing.T) {
	c, err := artifactClient("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport.(*http.Transport).Proxy != nil {
		t.Error("the artifact client asks the environment for a proxy")
	}
}
