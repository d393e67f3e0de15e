package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
)

// receiver is a local webhook that fails its first failures, then records.
type receiver struct {
	mu       sync.Mutex
	failures int
	hang     bool
	got      []Event
	auth     []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.hang {
		select {
		case <-req.Context().Done():
		case <-time.After(2 * time.Second):
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var e Event
	if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&e) != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.got = append(r.got, e)
	r.auth = append(r.auth, req.Header.Get("Authorization"))
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.got...)
}

func fleet(t *testing.T, n conf.Notify) *conf.Fleet {
	n.Attempts, n.Timeout, n.Backoff, n.Queue = 4, conf.Duration(time.Second), conf.Duration(10*time.Millisecond), 100
	return &conf.Fleet{Notify: n, Contacts: []conf.Contact{{Name: "alice", Email: "alice@example.com",
		Notify: "echo \"$NOTIFICATIONTYPE$ $SERVICEDESC$ $SERVICESTATE$: $SERVICEOUTPUT$ to $CONTACTEMAIL$\" > " + filepath.Join(t.TempDir(), "alice")}}}
}

func TestWebhookRetriesThenDelivers(t *testing.T) {
	r := &receiver{failures: 2}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("hook-secret\n"), 0o600)
	n := New(fleet(t, conf.Notify{Webhooks: []conf.Webhook{{URL: srv.URL, TokenFile: token}}}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.Send(Event{Kind: RolledBack, Push: "p1", Revision: "r2", Reason: "php_errors rose", Commits: []Commit{{SHA: "abc", Author: "Ann", Subject: "pricing"}}, URL: "http://c/pushes/p1"})
	n.Close(5 * time.Second)
	got := r.events()
	if len(got) != 1 || got[0].Kind != RolledBack || got[0].Reason != "php_errors rose" || got[0].Commits[0].Author != "Ann" || got[0].URL != "http://c/pushes/p1" || got[0].Time.IsZero() {
		t.Fatalf("received %+v", got)
	}
	if r.auth[0] != "Bearer hook-secret" || n.Sent.Load() != 1 || n.Failed.Load() != 0 {
		t.Errorf("auth %q, sent %d, failed %d", r.auth[0], n.Sent.Load(), n.Failed.Load())
	}
}

func TestHangingWebhookDoesNotBlock(t *testing.T) {
	r := &receiver{hang: true}
	srv := httptest.NewServer(r)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	f := fleet(t, conf.Notify{Webhooks: []conf.Webhook{{URL: srv.URL}}})
	f.Notify.Queue = 2
	n := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	began := time.Now()
	for i := 0; i < 50; i++ {
		n.Send(Event{Kind: Verdict, Push: "p"})
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("Send blocked for %s", d)
	}
	if n.Dropped.Load() == 0 {
		t.Error("a full queue dropped nothing")
	}
	n.Close(100 * time.Millisecond)
}

func TestCommandAndContact(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "event.json")
	f := fleet(t, conf.Notify{Commands: []conf.NotifyCommand{{Argv: []string{"/bin/sh", "-c", "cat > " + out + "; echo $IMMUNE_EVENT >> " + out}}}, Contacts: []string{"alice"}})
	n := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.Send(Event{Kind: Locked, Push: "p9", Revision: "r9", Reason: `load rose "a lot" & more`})
	n.Close(5 * time.Second)
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `"kind":"locked"`) || !strings.HasSuffix(strings.TrimSpace(string(b)), "locked") {
		t.Errorf("command got %q", b)
	}
	alice := strings.Fields(f.Contacts[0].Notify)
	got, _ := os.ReadFile(alice[len(alice)-1])
	if want := "PROBLEM push r9 locked: load rose a lot  more to alice@example.com\n"; string(got) != want {
		t.Errorf("contact got %q, want %q", got, want)
	}
}
