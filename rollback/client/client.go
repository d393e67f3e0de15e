// Package client calls immune's HTTP APIs as JSON: the coordinator's, for
// immune push, pushes, locks and unlock and for the demo fleet, and through
// Call any route that answers JSON, an agent's among them.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/rollback"
)

// Client calls one API with one bearer token.
type Client struct {
	// URL is the API's base: scheme, address and no trailing slash.
	URL string
	// Token is sent as the bearer credential with every call; "" sends none.
	Token string
	HTTP  *http.Client
}

// New is a client of the API at url; a trailing slash is dropped.
func New(url, token string, hc *http.Client) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), Token: token, HTTP: hc}
}

// WithToken is a copy of c that sends token instead.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.Token = token
	return &d
}

// Error is an answer other than 2xx. It reads as the coordinator's own
// message when the answer had one ({"error": "..."}), since that is
// written for the person who made the call, and as the method, path,
// status and body otherwise.
type Error struct {
	Method, Path string
	Code         int
	Status       string
	// Msg is the answer's "error", or its body when it had none.
	Msg     string
	hadJSON bool
}

func (e *Error) Error() string {
	if e.hadJSON {
		return e.Msg
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.Status, e.Msg)
}

// StatusCode is the HTTP status of an Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Call makes one call. body is sent as it is when it is an io.Reader, as
// JSON otherwise, and nothing when nil; out, when not nil, receives the
// JSON answer.
func (c *Client) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd, isJSON = bytes.NewReader(data), true
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return err
	}
	if c.Token != "" {
		agentapi.SetToken(req, c.Token)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return decodeAnswer(method, path, resp.StatusCode, resp.Status, data, out)
}

// decodeAnswer reads the coordinator's answer to one call: a non-2xx is an
// *Error, a 2xx is decoded into out.
func decodeAnswer(method, path string, code int, status string, data []byte, out any) error {
	if code/100 != 2 {
		e := &Error{Method: method, Path: path, Code: code, Status: status, Msg: strings.TrimSpace(string(data))}
		var answer struct{ Error string }
		if json.Unmarshal(data, &answer) == nil && answer.Error != "" {
			e.Msg, e.hadJSON = answer.Error, true
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// Upload puts an artifact on the coordinator, which stores it by its sha256.
func (c *Client) Upload(ctx context.Context, artifact io.Reader) (rollback.Upload, error) {
	var up rollback.Upload
	err := c.Call(ctx, http.MethodPut, "/api/v1/artifacts", artifact, &up)
	return up, err
}

// ArtifactLink asks for a link to an uploaded artifact, for a deploy by
// hand: agents fetch with it, never with the deploy token.
func (c *Client) ArtifactLink(ctx context.Context, sha256 string) (rollback.ArtifactLink, error) {
	var l rollback.ArtifactLink
	err := c.Call(ctx, http.MethodPost, "/api/v1/artifacts/"+sha256+"/link", nil, &l)
	return l, err
}

// StartPush starts the push of an uploaded artifact as revision.
func (c *Client) StartPush(ctx context.Context, revision, sha256, who string) (*rollback.Push, error) {
	var p rollback.Push
	if err := c.Call(ctx, http.MethodPost, "/api/v1/pushes", rollback.PushRequest{Revision: revision, SHA256: sha256, Who: who}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Push reads one push.
func (c *Client) Push(ctx context.Context, id string) (*rollback.Push, error) {
	var p rollback.Push
	if err := c.Call(ctx, http.MethodGet, "/api/v1/pushes/"+id, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Pushes reads every push, newest first.
func (c *Client) Pushes(ctx context.Context) ([]rollback.Push, error) {
	var ps []rollback.Push
	err := c.Call(ctx, http.MethodGet, "/api/v1/pushes", nil, &ps)
	return ps, err
}

// RecentPushes reads the n newest pushes, newest first (0: all). A
// coordinator older than ?limit answers them all, so the list is cut
// here too.
func (c *Client) RecentPushes(ctx context.Context, n int) ([]rollback.Push, error) {
	path := "/api/v1/pushes"
	if n > 0 {
		path += "?limit=" + strconv.Itoa(n)
	}
	var ps []rollback.Push
	if err := c.Call(ctx, http.MethodGet, path, nil, &ps); err != nil {
		return nil, err
	}
	if n > 0 && len(ps) > n {
		ps = ps[:n]
	}
	return ps, nil
}

// Version says which build of the coordinator answers.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v rollback.Version
	err := c.Call(ctx, http.MethodGet, "/api/v1/version", nil, &v)
	return v.Version, err
}

// Locks reads the push lock and the commit lock.
func (c *Client) Locks(ctx context.Context) (rollback.Locks, error) {
	var l rollback.Locks
	err := c.Call(ctx, http.MethodGet, "/api/v1/locks", nil, &l)
	return l, err
}

// Unlock clears the commit lock, saying who does and why.
func (c *Client) Unlock(ctx context.Context, who, reason string) (rollback.Locks, error) {
	var l rollback.Locks
	err := c.Call(ctx, http.MethodPost, "/api/v1/unlock", rollback.UnlockRequest{Who: who, Reason: reason}, &l)
	return l, err
}
