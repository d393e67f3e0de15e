package rollback

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
)

// Agents is what the coordinator asks of the agents. AgentClient asks
// them over their HTTP API; a test of the push state machine may answer
// in memory instead.
type Agents interface {
	// Snapshot reads one host's gauges.
	Snapshot(ctx context.Context, h conf.Host) (Sample, error)
	// Release reads which release a host runs.
	Release(ctx context.Context, h conf.Host) (agentapi.Release, error)
	// Deploy has a host fetch, verify and activate a revision's artifact.
	Deploy(ctx context.Context, h conf.Host, revision, artifactURL, sha256 string) (agentapi.Release, error)
	// Rollback switches a host back to a release (the previous one when to is empty).
	Rollback(ctx context.Context, h conf.Host, to string) (agentapi.Release, error)
	// Checks reads every check of one host.
	Checks(ctx context.Context, h conf.Host) (agentapi.Checks, error)
}

var _ Agents = (*AgentClient)(nil)

// AgentClient talks to the agents' HTTP API: the coordinator reads agents
// only through it, as it will across a real network.
type AgentClient struct {
	// ReadToken is a host's read credential; DeployToken is the coordinator's own.
	ReadToken   func(host conf.Host) string
	DeployToken string
	// Endpoint is where a host's API is (http:// or https:// and its
	// address) and the client that reaches it there.
	Endpoint func(host conf.Host) (base string, client *http.Client, err error)
}

// NewAgentClient reads the fleet's credentials and prepares a client whose
// connections are reused across the many calls of a push.
func NewAgentClient(f *conf.Fleet) (*AgentClient, error) {
	deploy, err := conf.ReadToken("deploy_token_file", f.DeployTokenFile)
	if err != nil {
		return nil, err
	}
	tokens := map[string]string{}
	for _, file := range append([]string{f.AgentTokenFile}, hostTokenFiles(f)...) {
		if file == "" || tokens[file] != "" {
			continue
		}
		t, err := conf.ReadToken("agent token_file", file)
		if err != nil {
			return nil, err
		}
		tokens[file] = t
	}
	// One client per TLS setting: hosts that share one share connections.
	// All are made now, so that a bad ca_file stops the start.
	clients := map[conf.AgentTLS]*http.Client{}
	for _, t := range append([]*conf.AgentTLS{{}, f.AgentTLS}, hostTLS(f)...) {
		if t == nil {
			continue
		}
		if _, made := clients[*t]; made {
			continue
		}
		transport, err := newTransport(*t)
		if err != nil {
			return nil, fmt.Errorf("agent_tls: %w", err)
		}
		clients[*t] = &http.Client{Transport: transport}
	}
	return &AgentClient{
		DeployToken: deploy,
		Endpoint: func(h conf.Host) (string, *http.Client, error) {
			t := f.TLS(h)
			if t == nil {
				return "http://" + h.Address, clients[conf.AgentTLS{}], nil
			}
			if c, ok := clients[*t]; ok {
				return "https://" + h.Address, c, nil
			}
			return "", nil, fmt.Errorf("agent_tls %+v of %s was not in the fleet the client was made for", *t, h.Name)
		},
		ReadToken: func(h conf.Host) string {
			if h.TokenFile != "" {
				return tokens[h.TokenFile]
			}
			return tokens[f.AgentTokenFile]
		},
	}, nil
}

// newTransport makes a transport for the agents reached with the TLS
// setting t (the zero value: plain http). Go verifies the certificate
// against the host part of the address, a DNS name or an IP address.
func newTransport(t conf.AgentTLS) (*http.Transport, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 4
	transport.MaxIdleConns = 4096
	if t == (conf.AgentTLS{}) {
		return transport, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure}
	if !t.Insecure {
		pool, err := t.CertPool()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	transport.TLSClientConfig = cfg
	return transport, nil
}

func hostTLS(f *conf.Fleet) []*conf.AgentTLS {
	var out []*conf.AgentTLS
	for _, h := range f.Hosts {
		if h.AgentTLS != nil {
			out = append(out, h.AgentTLS)
		}
	}
	return out
}

func hostTokenFiles(f *conf.Fleet) []string {
	var files []string
	for _, h := range f.Hosts {
		files = append(files, h.TokenFile)
	}
	return files
}

// Each call is bounded by a deadline of its kind: a read is quick, while a
// deploy downloads an artifact and runs the release's hooks, and cutting it
// short would fail a good release and revert a good commit.
const (
	readTimeout   = 30 * time.Second
	deployTimeout = 15 * time.Minute
)

// Snapshot reads one host's gauges.
func (c *AgentClient) Snapshot(ctx context.Context, h conf.Host) (Sample, error) {
	var snap agentapi.Snapshot
	if err := c.call(ctx, h, http.MethodGet, agentapi.SnapshotPath, c.ReadToken(h), nil, &snap); err != nil {
		return Sample{}, err
	}
	s := Sample{At: time.Now(), Gauges: make(map[string]float64, len(snap.Gauges))}
	for name, g := range snap.Gauges {
		s.Gauges[name] = g.Value
	}
	return s, nil
}

// Checks reads every check of one host.
func (c *AgentClient) Checks(ctx context.Context, h conf.Host) (agentapi.Checks, error) {
	var hc agentapi.Checks
	err := c.call(ctx, h, http.MethodGet, agentapi.ChecksPath, c.ReadToken(h), nil, &hc)
	return hc, err
}

// Release reads which release a host runs.
func (c *AgentClient) Release(ctx context.Context, h conf.Host) (agentapi.Release, error) {
	var r agentapi.Release
	err := c.call(ctx, h, http.MethodGet, agentapi.ReleasePath, c.DeployToken, nil, &r)
	return r, err
}

// Deploy has a host fetch, verify and activate a revision's artifact.
func (c *AgentClient) Deploy(ctx context.Context, h conf.Host, revision, artifactURL, sha256 string) (agentapi.Release, error) {
	var r agentapi.Release
	body := agentapi.DeployRequest{Revision: revision, ArtifactURL: artifactURL, SHA256: sha256}
	err := c.call(ctx, h, http.MethodPost, agentapi.DeployPath, c.DeployToken, body, &r)
	return r, err
}

// Rollback switches a host back to a release (the previous one when to is empty).
func (c *AgentClient) Rollback(ctx context.Context, h conf.Host, to string) (agentapi.Release, error) {
	var r agentapi.Release
	err := c.call(ctx, h, http.MethodPost, agentapi.RollbackPath, c.DeployToken, agentapi.RollbackRequest{To: to}, &r)
	return r, err
}

// call makes one API call and decodes its JSON answer; a non-2xx answer is
// an error carrying the agent's message.
func (c *AgentClient) call(ctx context.Context, h conf.Host, method, path, token string, body, out any) error {
	limit := readTimeout
	if method == http.MethodPost {
		limit = deployTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	base, client, err := c.Endpoint(h)
	if err != nil {
		return fmt.Errorf("%s %s: %w", h.Name, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", h.Name, path, err)
	}
	agentapi.SetToken(req, token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	var unverified *tls.CertificateVerificationError
	if errors.As(err, &unverified) {
		return fmt.Errorf("%s %s %s: the agent's certificate does not verify for %s against agent_tls.ca_file: %w", h.Name, method, path, req.URL.Hostname(), err)
	}
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", h.Name, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s %s: read answer: %w", h.Name, method, path, err)
	}
	return decodeAnswer(h.Name, method, path, resp.StatusCode, resp.Status, data, out)
}

// decodeAnswer reads an agent's answer to one call: a non-2xx is a
// *StatusError carrying its message, a 2xx is decoded into out.
func decodeAnswer(host, method, path string, code int, status string, data []byte, out any) error {
	if code/100 != 2 {
		return &StatusError{Host: host, Method: method, Path: path, Code: code, Status: status, Msg: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s %s: decode answer: %w", host, method, path, err)
		}
	}
	return nil
}

// StatusError is an agent's answer other than 2xx, with its message.
type StatusError struct {
	Host, Method, Path string
	Code               int
	Status, Msg        string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s %s: %s: %s", e.Host, e.Method, e.Path, e.Status, e.Msg)
}

// Refused reports whether asking again cannot help: a 4xx other than the
// ones that mean "not now" (a timeout, a deploy running, too many requests).
func (e *StatusError) Refused() bool {
	switch e.Code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return e.Code/100 == 4
}

// forEach runs fn for every host, at most limit at once, and returns the
// errors by host name.
func forEach(ctx context.Context, hosts []conf.Host, limit int, fn func(context.Context, conf.Host) error) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for _, h := range hosts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			errs[h.Name] = ctx.Err()
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, h); err != nil {
				mu.Lock()
				errs[h.Name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
