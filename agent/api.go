package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/nagios"
)

// API serves the agent's readings over HTTP: /healthz for anyone, and with
// a credential (the bearer token, or a client certificate the TLS listener
// verified) the checks as JSON, one check, the Prometheus exposition at
// /metrics, and the snapshot of gauges the coordinator compares.
type API struct {
	Host, HostType string
	Store          *Store
	Gauges         *Gauges
	// Token is the bearer token; empty accepts only client certificates.
	Token string
	Log   *slog.Logger
	// Deployer, when set, serves the release routes (see agentapi).
	Deployer *Deployer
	// Passive, when set, reports its targets' queues at /api/v1/passive.
	Passive *Passive
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+agentapi.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET "+agentapi.ChecksPath, a.auth(http.HandlerFunc(a.checks)))
	mux.Handle("GET "+agentapi.CheckPath("{name}"), a.auth(http.HandlerFunc(a.check)))
	mux.Handle("GET "+agentapi.SnapshotPath, a.auth(http.HandlerFunc(a.snapshot)))
	mux.Handle("GET "+agentapi.MetricsPath, a.auth(http.HandlerFunc(a.metrics)))
	mux.Handle("GET "+agentapi.PassivePath, a.auth(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.Passive.Targets())
	})))
	if a.Deployer != nil {
		mux.Handle("GET "+agentapi.ReleasePath, a.releaseAuth(http.HandlerFunc(a.release)))
		mux.Handle("POST "+agentapi.DeployPath, a.deployAuth(http.HandlerFunc(a.deploy)))
		mux.Handle("POST "+agentapi.RollbackPath, a.deployAuth(http.HandlerFunc(a.rollback)))
	}
	return mux
}

// auth lets a request through with the right bearer token or a verified
// client certificate. The token itself is never logged.
func (a *API) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.readCredential(r) {
			next.ServeHTTP(w, r)
			return
		}
		a.Log.Warn("api: request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "had_token", agentapi.HasBearer(r))
		agentapi.Unauthorized(w, r, "immune")
	})
}

// readCredential tells whether a request carries the API's bearer token or
// a client certificate the TLS listener verified.
func (a *API) readCredential(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	return agentapi.HasToken(r, a.Token)
}

func (a *API) checks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, agentapi.Checks{Host: a.Host, HostType: a.HostType, Checks: a.Store.All()})
}

func (a *API) check(w http.ResponseWriter, r *http.Request) {
	st, ok := a.Store.Get(r.PathValue("name"))
	if !ok {
		http.Error(w, fmt.Sprintf("no check named %q", r.PathValue("name")), http.StatusNotFound)
		return
	}
	writeJSON(w, st)
}

func (a *API) snapshot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, a.Gauges.Snapshot(r.Context()))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// metrics writes the Prometheus text exposition: each check's state, and each
// perfdata value as a gauge labelled with its check and label.
func (a *API) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	all := a.Store.All()
	var b strings.Builder
	b.WriteString("# HELP immune_check_state Check state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n# TYPE immune_check_state gauge\n")
	for _, st := range all {
		fmt.Fprintf(&b, "immune_check_state{check=%s,state_type=%s} %d\n", quoteLabel(st.Name), quoteLabel(st.StateType), st.State.ExitCode())
	}
	b.WriteString("# HELP immune_check_attempt Check attempt of max_check_attempts.\n# TYPE immune_check_attempt gauge\n")
	for _, st := range all {
		fmt.Fprintf(&b, "immune_check_attempt{check=%s} %d\n", quoteLabel(st.Name), st.Attempt)
	}
	b.WriteString("# HELP immune_check_last_run_timestamp_seconds When the check last ran.\n# TYPE immune_check_last_run_timestamp_seconds gauge\n")
	for _, st := range all {
		fmt.Fprintf(&b, "immune_check_last_run_timestamp_seconds{check=%s} %d\n", quoteLabel(st.Name), st.LastCheck.Unix())
	}
	b.WriteString("# HELP immune_check_perfdata A perfdata value of a check, in the check's own unit.\n# TYPE immune_check_perfdata gauge\n")
	for _, st := range all {
		perf := append([]nagios.Perf(nil), st.Perf...)
		sort.SliceStable(perf, func(i, j int) bool { return perf[i].Label < perf[j].Label })
		for _, p := range perf {
			if p.Unknown {
				continue
			}
			fmt.Fprintf(&b, "immune_check_perfdata{check=%s,label=%s,uom=%s} %s\n",
				quoteLabel(st.Name), quoteLabel(p.Label), quoteLabel(p.UOM), strconv.FormatFloat(p.Value, 'g', -1, 64))
		}
	}
	io.WriteString(w, b.String())
}

// quoteLabel writes a Prometheus label value: quoted, with \, " and newline escaped.
func quoteLabel(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// maxRequestBytes bounds a deploy or rollback request body.
const maxRequestBytes = 64 << 10

// releaseAuth lets the deploy token through, and otherwise the read credential.
func (a *API) releaseAuth(next http.Handler) http.Handler {
	read := a.auth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if agentapi.HasToken(r, a.Deployer.token) {
			next.ServeHTTP(w, r)
			return
		}
		read.ServeHTTP(w, r)
	})
}

// deployAuth lets only the deploy token through: the read credential is
// known but not allowed (403), anything else is no credential (401).
func (a *API) deployAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case agentapi.HasToken(r, a.Deployer.token):
			next.ServeHTTP(w, r)
		case a.readCredential(r):
			a.Log.Warn("api: deploy refused to the read credential", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "the read credential may not deploy or roll back: use the deploy token", http.StatusForbidden)
		default:
			a.Log.Warn("api: request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "had_token", agentapi.HasBearer(r))
			agentapi.Unauthorized(w, r, "immune-deploy")
		}
	})
}

func (a *API) release(w http.ResponseWriter, _ *http.Request) {
	rel, err := a.Deployer.Release()
	a.deployReply(w, rel, err)
}

func (a *API) deploy(w http.ResponseWriter, r *http.Request) {
	var req agentapi.DeployRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		http.Error(w, fmt.Sprintf("deploy: read request: %v", err), http.StatusBadRequest)
		return
	}
	rel, err := a.Deployer.Deploy(r.Context(), req)
	a.deployReply(w, rel, err)
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RollbackRequest
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req)
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, fmt.Sprintf("rollback: read request: %v", err), http.StatusBadRequest)
		return
	}
	rel, err := a.Deployer.Rollback(r.Context(), req.To)
	a.deployReply(w, rel, err)
}

// deployReply writes the release JSON, or the error with the status it carries.
func (a *API) deployReply(w http.ResponseWriter, rel agentapi.Release, err error) {
	if err == nil {
		writeJSON(w, rel)
		return
	}
	code := http.StatusInternalServerError
	var de *deployError
	if errors.As(err, &de) {
		code = de.code
	}
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "5")
	}
	if code >= 500 {
		a.Log.Error("deploy", "err", err)
	} else {
		a.Log.Warn("deploy", "err", err)
	}
	http.Error(w, err.Error(), code)
}
