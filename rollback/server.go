package rollback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/version"
)

// Server is the coordinator's HTTP API: artifacts for the agents, pushes,
// locks. Reading needs no credential; starting a push, uploading an
// artifact and clearing the commit lock need the operator token, and
// fetching an artifact needs the deploy token the agents hold.
type Server struct {
	C             *Coordinator
	OperatorToken string
	DeployToken   string
	// ArtifactDir holds uploaded artifacts by sha256.
	ArtifactDir string
	// ReadToken reads what the agents protect (the fleet's check output,
	// the revert's output), as the operator token does; OpenReads lets
	// anyone read them.
	ReadToken string
	OpenReads bool
	// Links makes and checks the artifact links agents fetch with.
	Links *ArtifactLinks

	fleet fleetCache
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Handler returns the API's routes and the status pages (pages.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("PUT /api/v1/artifacts", s.need(s.OperatorToken, s.upload))
	mux.HandleFunc("GET /api/v1/artifacts/{sha256}", s.artifact)
	mux.Handle("POST /api/v1/artifacts/{sha256}/link", s.need(s.OperatorToken, s.artifactLink))
	mux.Handle("POST /api/v1/pushes", s.need(s.OperatorToken, s.startPush))
	mux.HandleFunc("GET /api/v1/pushes", s.pushes)
	mux.HandleFunc("GET /api/v1/pushes/{id}", s.push)
	mux.HandleFunc("GET /api/v1/locks", s.locks)
	mux.HandleFunc("GET /api/v1/version", s.version)
	mux.Handle("POST /api/v1/unlock", s.need(s.OperatorToken, s.unlock))
	mux.Handle("POST /api/v1/pushes/{id}/orders", s.need(s.OperatorToken, s.order))
	if s.C.Metrics != nil {
		mux.Handle("GET /metrics", s.C.Metrics.Handler())
	}
	s.pageRoutes(mux)
	return mux
}

// need lets a request through with the given bearer token only.
func (s *Server) need(token string, h http.HandlerFunc) http.Handler {
	return agentapi.RequireToken(token, "immune-coordinator", h)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// upload stores an artifact under its sha256, which it answers.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if err := os.MkdirAll(s.ArtifactDir, 0o700); err != nil {
		fail(w, 500, "store artifact: %v", err)
		return
	}
	tmp, err := os.CreateTemp(s.ArtifactDir, ".upload-*")
	if err != nil {
		fail(w, 500, "store artifact: %v", err)
		return
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), http.MaxBytesReader(w, r.Body, s.C.fleet().MaxArtifactBytes))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fail(w, 400, "read artifact: %v", err)
		return
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(s.ArtifactDir, sum+".tar.gz")); err != nil {
		fail(w, 500, "store artifact: %v", err)
		return
	}
	writeJSON(w, 201, Upload{SHA256: sum, Bytes: n})
}

// artifact serves an artifact to the holder of a link to it (an agent
// deploying it) or of the operator token.
func (s *Server) artifact(w http.ResponseWriter, r *http.Request) {
	sum := r.PathValue("sha256")
	if !sha256RE.MatchString(sum) {
		fail(w, 400, "%q is not a sha256", sum)
		return
	}
	if !agentapi.HasToken(r, s.OperatorToken) {
		if s.Links == nil {
			fail(w, 403, "artifact links are off on this coordinator")
			return
		}
		if err := s.Links.Check(sum, r.URL.Query()); err != nil {
			fail(w, 403, "%v", err)
			return
		}
	}
	http.ServeFile(w, r, filepath.Join(s.ArtifactDir, sum+".tar.gz"))
}

// ArtifactLink is the answer of POST /api/v1/artifacts/{sha256}/link: a
// link to deploy an artifact by hand with.
type ArtifactLink struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

func (s *Server) artifactLink(w http.ResponseWriter, r *http.Request) {
	sum := r.PathValue("sha256")
	if !sha256RE.MatchString(sum) {
		fail(w, 400, "%q is not a sha256", sum)
		return
	}
	if _, err := os.Stat(filepath.Join(s.ArtifactDir, sum+".tar.gz")); err != nil {
		fail(w, 404, "no artifact %s: upload it first", sum)
		return
	}
	if s.Links == nil {
		fail(w, 403, "artifact links are off on this coordinator")
		return
	}
	writeJSON(w, 200, ArtifactLink{URL: s.Links.URL("by-hand", sum), Expires: time.Now().Add(s.Links.TTL).UTC()})
}

// Upload is the answer of PUT /api/v1/artifacts: the stored artifact.
type Upload struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// PushRequest is the body of POST /api/v1/pushes, which starts a push.
type PushRequest struct {
	Revision string `json:"revision"`
	SHA256   string `json:"sha256"`
	Who      string `json:"who"`
	// Force, with a reason, pushes a revision that does not descend from
	// the live one.
	Force string `json:"force,omitempty"`
}

func (s *Server) startPush(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		fail(w, 400, "read push request: %v", err)
		return
	}
	if err := agentapi.ValidRevision(req.Revision); err != nil {
		fail(w, 400, "%v", err)
		return
	}
	switch {
	case !sha256RE.MatchString(req.SHA256):
		fail(w, 400, "sha256 %q is not a sha256 (upload the artifact first)", req.SHA256)
		return
	case strings.TrimSpace(req.Who) == "":
		fail(w, 400, "who is required: the person or job pushing")
		return
	}
	path := filepath.Join(s.ArtifactDir, req.SHA256+".tar.gz")
	if _, err := os.Stat(path); err != nil {
		fail(w, 400, "no artifact %s uploaded", req.SHA256)
		return
	}
	if err := checkArtifact(path); err != nil {
		fail(w, 400, "artifact %s: %v: nothing was pushed", req.SHA256[:12], err)
		return
	}
	p, err := s.C.StartWith(r.Context(), req.Revision, req.SHA256, req.Who, req.Force)
	if errors.Is(err, ErrLocked) {
		fail(w, 409, "%v", err)
		return
	}
	if errors.Is(err, ErrRefused) {
		fail(w, 400, "%v: nothing was pushed", err)
		return
	}
	if err != nil {
		fail(w, 500, "start push: %v", err)
		return
	}
	writeJSON(w, 201, p)
}

// pushes answers the newest pushes first: all of them, or ?limit=N.
func (s *Server) pushes(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			fail(w, 400, "limit %q: want a whole number of pushes, 0 for all", q)
			return
		}
		limit = n
	}
	ps, err := s.C.Store.Pushes(limit)
	if err != nil {
		fail(w, 500, "%v", err)
		return
	}
	can := s.canRead(r)
	for i, p := range ps {
		ps[i] = readable(can, p)
	}
	writeJSON(w, 200, ps)
}

func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	p, err := s.C.Store.Push(r.PathValue("id"))
	if errors.Is(err, os.ErrNotExist) {
		fail(w, 404, "no push %q", r.PathValue("id"))
		return
	}
	if err != nil {
		fail(w, 500, "%v", err)
		return
	}
	writeJSON(w, 200, readable(s.canRead(r), p))
}

func (s *Server) locks(w http.ResponseWriter, _ *http.Request) {
	l, err := s.C.Store.Locks()
	if err != nil {
		fail(w, 500, "%v", err)
		return
	}
	writeJSON(w, 200, l)
}

// Version is the answer of GET /api/v1/version: which build of the
// coordinator answers.
type Version struct {
	// Version is one line: "immune-coordinator 0.3.0 (commit 1a2b3c4, built ..., go1.26.8)".
	Version string `json:"version"`
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, Version{Version: version.String("immune-coordinator")})
}

// UnlockRequest is the body of POST /api/v1/unlock, which clears the commit lock.
type UnlockRequest struct {
	Who    string `json:"who"`
	Reason string `json:"reason"`
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	var req UnlockRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		fail(w, 400, "read unlock request: %v", err)
		return
	}
	if strings.TrimSpace(req.Who) == "" {
		fail(w, 400, "who is required")
		return
	}
	if err := s.C.Unlock(req.Who, req.Reason); err != nil {
		fail(w, 409, "%v", err)
		return
	}
	l, _ := s.C.Store.Locks()
	writeJSON(w, 200, l)
}

// StoreArtifact copies an artifact the coordinator built into the
// artifact dir, under its sha256, for the agents to fetch.
func (s *Server) StoreArtifact(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.ArtifactDir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(s.ArtifactDir, ".built-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, f); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return sum, os.Rename(tmp.Name(), filepath.Join(s.ArtifactDir, sum+".tar.gz"))
}
