package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
)

// fuzzDeployEnv is an agent's API with deploys on, in process, whose
// downloads all go to one loopback artifact server whatever host the
// request names: a fuzzed artifact_url never leaves the machine.
type fuzzDeployEnv struct {
	handler http.Handler
	base    string // the dir holding the root and the token file
	url     string // of the good artifact
	sum     string
}

func newFuzzDeployEnv(f *testing.F) *fuzzDeployEnv {
	base := f.TempDir()
	tokenFile := filepath.Join(base, "deploy.token")
	if err := os.WriteFile(tokenFile, []byte(deployToken+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	artifact := gzipOf(string(rawTar(f, fileEntry("VERSION", "fuzz\n"))))
	e := &fuzzDeployEnv{base: base, sum: sha(artifact)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a/"+e.sum {
			http.NotFound(w, r)
			return
		}
		w.Write(artifact)
	}))
	f.Cleanup(srv.Close)
	e.url = srv.URL + "/a/" + e.sum
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := NewDeployer(conf.Deploy{Root: filepath.Join(base, "root"), Keep: 3, TokenFile: tokenFile, MaxArtifactBytes: 1 << 20}, log)
	if err != nil {
		f.Fatal(err)
	}
	var dialer net.Dialer
	d.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", srv.Listener.Addr().String())
		},
	}}
	e.handler = (&API{Host: "fuzz", HostType: "www", Token: "read-token", Log: log, Deployer: d}).Handler()
	// Two releases, so that a rollback has somewhere to go.
	for _, rev := range []string{"v1", "v2"} {
		if code, body := e.post(agentapi.DeployPath, deployBody(rev, e.url, e.sum)); code != http.StatusOK {
			f.Fatalf("deploy %s: %d %s", rev, code, body)
		}
	}
	return e
}

func (e *fuzzDeployEnv) post(path, body string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+deployToken)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// check holds after any request: an answer a coordinator can act on, and
// nothing in the root but releases, their metas and the two links.
func (e *fuzzDeployEnv) check(t *testing.T, what, body string, code int, answer string, allowed ...int) {
	t.Helper()
	if !slices.Contains(allowed, code) {
		t.Fatalf("%s %q: answered %d %s", what, body, code, answer)
	}
	if code == http.StatusOK {
		var rel agentapi.Release
		if err := json.Unmarshal([]byte(answer), &rel); err != nil || rel.Current == "" || !slices.Contains(rel.Releases, rel.Current) {
			t.Fatalf("%s %q: answered 200 with %q (%v)", what, body, answer, err)
		}
	} else if strings.TrimSpace(answer) == "" {
		t.Fatalf("%s %q: answered %d with no reason", what, body, code)
	}
	names, err := os.ReadDir(e.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() != "root" && n.Name() != "deploy.token" {
			t.Fatalf("%s %q: wrote %s beside the root", what, body, n.Name())
		}
	}
	names, err = os.ReadDir(filepath.Join(e.base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		switch n.Name() {
		case releasesDir, metaDir, currentLink, previousLink:
		default:
			t.Fatalf("%s %q: left %s in the root", what, body, n.Name())
		}
	}
}

// FuzzDeployRequest: any body of POST /api/v1/deploy is deployed or
// refused with a 4xx (or a 502 for an artifact the server does not have)
// that says why, and never writes outside the root.
func FuzzDeployRequest(f *testing.F) {
	e := newFuzzDeployEnv(f)
	for _, body := range []string{
		deployBody("v3", e.url, e.sum),
		deployBody("v1", e.url, e.sum),
		deployBody("v3", e.url, strings.ToUpper(e.sum)),
		deployBody("v4", "http://elsewhere.invalid/a/"+e.sum, e.sum),
		deployBody("v4", e.url+"x", e.sum),
		deployBody("../../etc", e.url, e.sum),
		deployBody("-rf", e.url, e.sum),
		deployBody("v4", "file:///etc/passwd", e.sum),
		deployBody("v4", e.url, "00"),
		`{"revision":"v5"}`, `{}`, ``, `[]`, `{"revision":1}`, `{"revision":"v6","artifact_url":"http://x/","sha256":"` + e.sum + `"}{}`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		code, answer := e.post(agentapi.DeployPath, body)
		e.check(t, "deploy", body, code, answer, http.StatusOK, http.StatusBadRequest, http.StatusConflict,
			http.StatusUnprocessableEntity, http.StatusBadGateway)
	})
}

// FuzzRollbackRequest: any body of POST /api/v1/rollback rolls back or is
// refused with a 4xx that says why.
func FuzzRollbackRequest(f *testing.F) {
	e := newFuzzDeployEnv(f)
	for _, body := range []string{`{"to":"v1"}`, `{"to":"v2"}`, `{"to":""}`, `{}`, ``, `{"to":"../v1"}`, `{"to":"v9"}`, `{"to":null}`, `"v1"`, `{"to":"v1"}x`} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		code, answer := e.post(agentapi.RollbackPath, body)
		e.check(t, "rollback", body, code, answer, http.StatusOK, http.StatusBadRequest, http.StatusNotFound)
	})
}
