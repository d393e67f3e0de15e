package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback"
)

// TestPushOrders drives `immune push abort|hold|resume|promote|forget-host`
// against a real coordinator API whose store holds a running push.
func TestPushOrders(t *testing.T) {
	dir := t.TempDir()
	store, err := rollback.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SavePush(&rollback.Push{ID: "p1", Revision: "r1", State: rollback.StateObserving}); err != nil {
		t.Fatal(err)
	}
	fleet, err := conf.ParseFleet("fleet.yaml", []byte("listen: 127.0.0.1:1\nagent_token_file: t\nhosts: [{name: www1, address: '127.0.0.1:9', host_type: www}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &rollback.Coordinator{Fleet: fleet, Store: store}
	srv := httptest.NewServer((&rollback.Server{C: c, OperatorToken: "tok"}).Handler())
	t.Cleanup(srv.Close)
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("tok\n"), 0o600)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"hold", "p1"}, 0, "hold: ann taken by push p1"},
		{[]string{"abort", "p1", "--reason", "wrong branch"}, 0, "abort: ann taken by push p1"},
		{[]string{"promote", "p1"}, 1, "promote needs a reason"},
		{[]string{"forget-host", "p1", "www1", "--reason", "disk died"}, 0, "forget-host: ann taken"},
		{[]string{"forget-host", "p1"}, 2, "usage: immune push forget-host ID HOST"},
		{[]string{"resume", "p2"}, 1, `no such push in progress: "p2"`},
	} {
		var out, errs bytes.Buffer
		args := append(append([]string{}, tt.args...), "--coordinator", srv.URL, "--token-file", token, "--who", "ann")
		code := runPush(context.Background(), args, &out, &errs)
		if code != tt.code || !strings.Contains(out.String()+errs.String(), tt.want) {
			t.Errorf("immune push %s: exit %d, %q %q; want %d %q", strings.Join(tt.args, " "), code, out.String(), errs.String(), tt.code, tt.want)
		}
	}
}

// TestOrderKinds: bin/immune completes and documents the orders from
// cmdflags, which must name the coordinator's own.
func TestOrderKinds(t *testing.T) {
	var names []string
	for _, o := range cmdflags.Orders {
		names = append(names, o.Name)
	}
	want := []string{rollback.OrderAbort, rollback.OrderHold, rollback.OrderResume, rollback.OrderPromote, rollback.OrderForgetHost}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("cmdflags.Orders %v, rollback's %v", names, want)
	}
}
