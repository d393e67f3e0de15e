package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/immune-ops/immune/rollback"
)

// coordinator answers as the coordinator's API does: JSON, errors as
// {"error": ...}, and a text answer from a proxy in front of it on /proxy.
func coordinator(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/proxy" {
			http.Error(w, "bad gateway, says the proxy", http.StatusBadGateway)
			return
		}
		if r.Header.Get("Authorization") != "Bearer op" {
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "PUT /api/v1/artifacts":
			b, _ := io.ReadAll(r.Body)
			json.NewEncoder(w).Encode(rollback.Upload{SHA256: string(b), Bytes: int64(len(b))})
		case "POST /api/v1/pushes":
			var req rollback.PushRequest
			if json.NewDecoder(r.Body).Decode(&req) != nil || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if req.Revision == "locked" {
				w.WriteHeader(http.StatusConflict)
				io.WriteString(w, `{"error": "pushes are blocked by the commit lock"}`)
				return
			}
			json.NewEncoder(w).Encode(rollback.Push{ID: "p1", Revision: req.Revision, Who: req.Who})
		case "POST /api/v1/unlock":
			var req rollback.UnlockRequest
			json.NewDecoder(r.Body).Decode(&req)
			json.NewEncoder(w).Encode(rollback.Locks{Cleared: []rollback.CommitLock{{ClearedBy: req.Who, ClearReason: req.Reason}}})
		case "GET /api/v1/pushes/bad":
			io.WriteString(w, "{not json")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClient(t *testing.T) {
	srv := coordinator(t)
	c := New(srv.URL+"/", "op", srv.Client())
	ctx := context.Background()

	up, err := c.Upload(ctx, strings.NewReader("tarball"))
	if err != nil || up.SHA256 != "tarball" || up.Bytes != 7 {
		t.Errorf("upload: %+v, %v", up, err)
	}
	p, err := c.StartPush(ctx, "r1", "sum", "ann")
	if err != nil || p.ID != "p1" || p.Revision != "r1" || p.Who != "ann" {
		t.Errorf("start push: %+v, %v", p, err)
	}
	l, err := c.Unlock(ctx, "bob", "fixed")
	if err != nil || len(l.Cleared) != 1 || l.Cleared[0].ClearedBy != "bob" || l.Cleared[0].ClearReason != "fixed" {
		t.Errorf("unlock: %+v, %v", l, err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code int
		want string
	}{
		{"the coordinator's message", func() error { _, err := c.StartPush(ctx, "locked", "sum", "ann"); return err },
			409, "pushes are blocked by the commit lock"},
		{"a text answer", func() error { return c.Call(ctx, http.MethodGet, "/proxy", nil, nil) },
			502, "GET /proxy: 502 Bad Gateway: bad gateway, says the proxy"},
		{"another token", func() error { _, err := c.WithToken("deploy").Locks(ctx); return err },
			401, "GET /api/v1/locks: 401 Unauthorized: token required"},
		{"no such push", func() error { _, err := c.Push(ctx, "none"); return err },
			404, "GET /api/v1/pushes/none: 404 Not Found: 404 page not found"},
		{"an answer that is not JSON", func() error { _, err := c.Push(ctx, "bad"); return err },
			0, "GET /api/v1/pushes/bad: decode answer: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || StatusCode(err) != tc.code {
				t.Errorf("got %v (status %d), want %q (status %d)", err, StatusCode(err), tc.want, tc.code)
			}
		})
	}
	if wrapped := errors.Join(errors.New("push r1"), &Error{Code: 409}); StatusCode(wrapped) != 409 {
		t.Errorf("StatusCode does not look down the chain")
	}
}
