package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is when the fixtures' pushes began.
var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

func f(x float64) *float64 { return &x }

// fixturePushes are three pushes: one rolled back, one live, and one
// observing its second phase, whose judge sees a breach and waits on a gauge.
func fixturePushes() []*rollback.Push {
	return []*rollback.Push{
		{ID: "20260302-140000-a", Revision: "r1", Who: "ann", Created: t0, Finished: t0.Add(9 * time.Minute), State: rollback.StateRolledBack, Reason: "http_5xx rose 40% on www"},
		{ID: "20260302-150000-b", Revision: "r2", Who: "bob", Created: t0.Add(time.Hour), Finished: t0.Add(70 * time.Minute), State: rollback.StateLive},
		{ID: "20260302-160000-c", Revision: "r3", Who: "cat", Created: t0.Add(2 * time.Hour), State: rollback.StateObserving, Phase: 1,
			Phases: []rollback.PushPhase{
				{Hosts: []string{"www1"}, Deployed: map[string]string{"www1": ""}, Started: t0.Add(2 * time.Hour)},
				{Hosts: []string{"www1", "www2", "www3"}, Deployed: map[string]string{"www2": ""}, Started: t0.Add(2*time.Hour + 5*time.Minute),
					Verdict: &rollback.Verdict{Outcome: rollback.Observe, Look: 3, Evidence: 0.4, Readings: []rollback.Reading{
						{HostType: "www", Gauge: "http_5xx", Phase: 2, Delta: f(0.4), DeltaPct: f(12.25), Threshold: "rise +10%", Breached: true, Why: "http_5xx rose 12.3% on www"},
						{HostType: "www", Gauge: "load", Phase: 2, Delta: f(0.01), DeltaPct: f(1), Threshold: "rise +50%"},
						{Host: "www2", HostType: "www", Gauge: "php_errors", Threshold: "max 5", Waiting: true, Why: "no reading yet"},
						{HostType: "www", Gauge: "latency", Phase: 2, Delta: f(30), Threshold: "rise +20%", Breached: true, DryRun: true},
					}}},
			},
			Events: []rollback.Event{{At: t0.Add(2*time.Hour + 6*time.Minute), Msg: "phase 2: www2 runs r3"}}},
	}
}

// coordinatorAPI serves the real coordinator API over a file store holding
// pushes; running names the push holding the push lock.
func coordinatorAPI(t *testing.T, pushes []*rollback.Push, running string) (url, tokenFile string) {
	t.Helper()
	dir := t.TempDir()
	store, err := rollback.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pushes {
		if err := store.SavePush(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.UpdateLocks(func(l *rollback.Locks) error { l.Push = running; return nil }); err != nil {
		t.Fatal(err)
	}
	fleet, err := conf.ParseFleet("fleet.yaml", []byte("listen: 127.0.0.1:1\nagent_token_file: t\nhosts: [{name: www1, address: '127.0.0.1:9', host_type: www}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&rollback.Server{C: &rollback.Coordinator{Fleet: fleet, Store: store}, OperatorToken: "tok"}).Handler())
	t.Cleanup(srv.Close)
	tokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, tokenFile
}

// TestReadCommands: immune pushes, locks and status read without a token
// file, even with $IMMUNE_TOKEN_FILE naming one they cannot read, and
// take the coordinator as a bare host:port.
func TestReadCommands(t *testing.T) {
	url, _ := coordinatorAPI(t, fixturePushes(), "20260302-160000-c")
	bare := strings.TrimPrefix(url, "http://")
	t.Setenv("IMMUNE_TOKEN_FILE", "/nonexistent/operator.token")
	t.Setenv("IMMUNE_COORDINATOR", "")
	for _, tt := range []struct {
		name string
		run  func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int
		args []string
		code int
		want []string
	}{
		{"pushes", wrap(runPushes), []string{"--coordinator", bare}, 0, []string{"20260302-160000-c  r3", "20260302-140000-a  r1"}},
		{"pushes limit", wrap(runPushes), []string{"--coordinator", bare, "--limit", "1"}, 0, []string{"ID ", "20260302-160000-c"}},
		{"locks", wrap(runLocks), []string{"--coordinator", url}, 0, []string{"push lock:   held by push 20260302-160000-c"}},
		{"status", wrap(runStatus), []string{"--coordinator", bare + "/"}, 0, []string{"push         20260302-160000-c: r3 by cat", "BREACH  http_5xx"}},
		{"garbage coordinator", wrap(runPushes), []string{"--coordinator", "nowhere"}, 2, []string{`invalid value "nowhere" for flag -coordinator`}},
		{"negative limit", wrap(runPushes), []string{"--coordinator", url, "--limit", "-1"}, 2, []string{"--limit -1: want 0 (all) or more"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := tt.run(context.Background(), tt.args, &out, &errs)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tt.code, out.String(), errs.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String()+errs.String(), w) {
					t.Errorf("output lacks %q:\n%s%s", w, out.String(), errs.String())
				}
			}
			if tt.name == "pushes limit" && strings.Count(out.String(), "\n") != 2 {
				t.Errorf("--limit 1 printed more than the header and a push:\n%s", out.String())
			}
		})
	}
}

func wrap(run func(context.Context, []string, io.Writer, io.Writer) int) func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int {
	return func(ctx context.Context, args []string, out, errs *bytes.Buffer) int {
		return run(ctx, args, out, errs)
	}
}

// TestPushesJSON: --json prints the --limit newest pushes as the API has them.
func TestPushesJSON(t *testing.T) {
	url, _ := coordinatorAPI(t, fixturePushes(), "")
	for _, tt := range []struct {
		args []string
		ids  []string
	}{
		{[]string{"--json", "--limit", "2"}, []string{"20260302-160000-c", "20260302-150000-b"}},
		{[]string{"--json", "--limit", "0"}, []string{"20260302-160000-c", "20260302-150000-b", "20260302-140000-a"}},
		{[]string{"--json"}, []string{"20260302-160000-c", "20260302-150000-b", "20260302-140000-a"}},
	} {
		var out, errs bytes.Buffer
		if code := runPushes(context.Background(), append(tt.args, "--coordinator", url), &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errs.String())
		}
		var ps []rollback.Push
		if err := json.Unmarshal(out.Bytes(), &ps); err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, out.String())
		}
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		if strings.Join(ids, " ") != strings.Join(tt.ids, " ") {
			t.Errorf("%v: pushes %v, want %v", tt.args, ids, tt.ids)
		}
	}
	resp, err := http.Get(url + "/api/v1/pushes?limit=x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `limit \"x\": want a whole number`) {
		t.Errorf("?limit=x: %s %s, want 400", resp.Status, body)
	}
	var out, errs bytes.Buffer
	empty, _ := coordinatorAPI(t, nil, "")
	if code := runPushes(context.Background(), []string{"--json", "--coordinator", empty}, &out, &errs); code != 0 || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("no pushes: exit %d, %q %q; want []", code, out.String(), errs.String())
	}
}

// TestTokenErrors: a command that writes says "token required" when it
// has no token and "invalid token" when the coordinator refuses the one
// it sent, naming the file.
func TestTokenErrors(t *testing.T) {
	url, good := coordinatorAPI(t, fixturePushes(), "")
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not-the-token\n"), 0o600)
	t.Setenv("IMMUNE_TOKEN_FILE", "")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", nil, 1, "immune unlock: token required: give the operator token with --token-file FILE or $IMMUNE_TOKEN_FILE"},
		{"wrong token", []string{"--token-file", wrong}, 1, "immune unlock: invalid token: the coordinator refused the token in " + wrong},
		{"good token", []string{"--token-file", good}, 1, "immune unlock: there is no commit lock to clear"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"--coordinator", url, "--reason", "fixed", "--who", "ann"}, tt.args...)
			code := runUnlock(context.Background(), args, &out, &errs)
			if code != tt.code || !strings.Contains(errs.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs.String(), tt.code, tt.want)
			}
		})
	}
}

// TestStatus compares immune status's screen with golden files.
func TestStatus(t *testing.T) {
	pushes := fixturePushes()
	now := t0.Add(2*time.Hour + 8*time.Minute)
	for _, tt := range []struct {
		name string
		st   status
	}{
		{"running", status{URL: "http://coord:5680", Version: "immune-coordinator 1.2.3 (commit abc, built x, go1.26)", Push: pushes[2],
			Locks: rollback.Locks{Push: pushes[2].ID}}},
		{"idle-locked", status{URL: "http://coord:5680", Version: "immune-coordinator 1.2.3", Last: pushes[0],
			Locks: rollback.Locks{Commit: &rollback.CommitLock{Push: pushes[0].ID, Revision: "r1", Reason: "http_5xx rose 40% on www", Since: t0.Add(9 * time.Minute)}}}},
		{"fresh", status{URL: "http://coord:5680", Version: "unknown (a coordinator older than /api/v1/version)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printStatus(&out, tt.st, now, time.UTC)
			golden := filepath.Join("testdata", "status-"+tt.name+".golden")
			if *update {
				os.MkdirAll("testdata", 0o755)
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("immune status:\n%s\nwant (%s):\n%s", out.String(), golden, want)
			}
		})
	}
}
