package rollback

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
)

// fuzzServer is the coordinator's API over a store holding one running
// push and a commit lock (put back after each unlock), and an artifact dir with one good artifact and
// one bad. The coordinator is a standby (Leading is false), so a push
// request that passes every check is answered 409 and no push starts.
type fuzzServer struct {
	fleet       *conf.Fleet
	store       *FileStore
	artifactDir string
	good, bad   string // sha256s
}

const fuzzPushID = "20260102-030405-000-v1"

// errLocked leaves the locks as they are: the commit lock is still set.
var errLocked = errors.New("still locked")

func newFuzzServer(f *testing.F) *fuzzServer {
	dir := f.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	fleet, err := conf.ParseFleet("fleet.yaml", fmt.Appendf(nil,
		"listen: 127.0.0.1:0\ndata_dir: %s\ndeploy_token_file: %s\nagent_token_file: %s\nhosts:\n  - {name: web1, host_type: www, address: \"127.0.0.1:1\"}\n",
		dir, token, token))
	if err != nil {
		f.Fatal(err)
	}
	store, err := OpenFileStore(filepath.Join(dir, "store"))
	if err != nil {
		f.Fatal(err)
	}
	if err := store.SavePush(&Push{ID: fuzzPushID, Revision: "v1", Who: "ann", Created: time.Now().UTC(), State: StateBaseline}); err != nil {
		f.Fatal(err)
	}
	s := &fuzzServer{fleet: fleet, store: store, artifactDir: filepath.Join(dir, "artifacts")}
	if err := os.MkdirAll(s.artifactDir, 0o700); err != nil {
		f.Fatal(err)
	}
	for _, files := range []int{1, 0} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for i := range files {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("x"))
		}
		tw.Close()
		zw.Close()
		sum := fmt.Sprintf("%x", sha256.Sum256(buf.Bytes()))
		if err := os.WriteFile(filepath.Join(s.artifactDir, sum+".tar.gz"), buf.Bytes(), 0o600); err != nil {
			f.Fatal(err)
		}
		if files > 0 {
			s.good = sum
		} else {
			s.bad = sum
		}
	}
	return s
}

// post sends body to path, and checks the answer is JSON with an error
// that says something, or the JSON of what was done.
func (s *fuzzServer) post(t *testing.T, path, body string, allowed ...int) {
	t.Helper()
	if err := s.store.UpdateLocks(func(l *Locks) error {
		if l.Commit != nil {
			return errLocked
		}
		l.Commit = &CommitLock{Push: "older", Revision: "v0", Reason: "rolled back", Since: time.Now().UTC()}
		return nil
	}); err != nil && !errors.Is(err, errLocked) {
		t.Fatal(err)
	}
	c := &Coordinator{
		Fleet: s.fleet, Store: s.store, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Leading: func() bool { return false },
	}
	srv := &Server{C: c, OperatorToken: "op", DeployToken: "secret", ArtifactDir: s.artifactDir}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer op")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if !slices.Contains(allowed, rec.Code) {
		t.Fatalf("%s %q: answered %d %s", path, body, rec.Code, rec.Body)
	}
	var answer map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("%s %q: answer %q is not a JSON object: %v", path, body, rec.Body, err)
	}
	if rec.Code >= 400 {
		if msg, _ := answer["error"].(string); strings.TrimSpace(msg) == "" {
			t.Fatalf("%s %q: answered %d with no error message: %s", path, body, rec.Code, rec.Body)
		}
	}
}

// FuzzPushRequest: any body of POST /api/v1/pushes is refused with a 400
// that says why, or passes every check (409 from a standby).
func FuzzPushRequest(f *testing.F) {
	s := newFuzzServer(f)
	for _, body := range []string{
		`{"revision":"v2","sha256":"` + s.good + `","who":"ann"}`,
		`{"revision":"v2","sha256":"` + s.bad + `","who":"ann"}`,
		`{"revision":"v2","sha256":"` + strings.ToUpper(s.good) + `","who":"ann"}`,
		`{"revision":"v2","sha256":"` + s.good + `","who":" "}`,
		`{"revision":"../v2","sha256":"` + s.good + `","who":"ann"}`,
		`{"revision":"v2","sha256":"` + strings.Repeat("0", 64) + `","who":"ann","force":"why"}`,
		`{"revision":"v2","sha256":"../../etc/passwd","who":"ann"}`,
		`{}`, ``, `[]`, `{"revision":2}`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s.post(t, "/api/v1/pushes", body, http.StatusBadRequest, http.StatusConflict)
	})
}

// FuzzUnlockRequest: any body of POST /api/v1/unlock clears the commit
// lock or is refused with a reason.
func FuzzUnlockRequest(f *testing.F) {
	s := newFuzzServer(f)
	for _, body := range []string{`{"who":"ann","reason":"fixed in v3"}`, `{"who":"ann"}`, `{"who":" ","reason":"x"}`, `{}`, ``, `{"who":1}`, `null`} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s.post(t, "/api/v1/unlock", body, http.StatusOK, http.StatusBadRequest, http.StatusConflict)
	})
}

// FuzzOrder: any body of POST /api/v1/pushes/{id}/orders is taken or
// refused with a reason.
func FuzzOrder(f *testing.F) {
	s := newFuzzServer(f)
	for _, body := range []string{
		`{"kind":"abort","who":"ann","reason":"errors up"}`, `{"kind":"hold","who":"ann"}`, `{"kind":"resume","who":"ann"}`,
		`{"kind":"promote","who":"ann","reason":"fine"}`, `{"kind":"forget-host","who":"ann","reason":"dead","host":"web1"}`,
		`{"kind":"forget-host","who":"ann","reason":"dead","host":"web9"}`, `{"kind":"abort","who":"ann"}`, `{"kind":"explode","who":"ann"}`,
		`{}`, ``, `{"kind":["abort"]}`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s.post(t, "/api/v1/pushes/"+fuzzPushID+"/orders", body, http.StatusAccepted, http.StatusBadRequest)
	})
}
