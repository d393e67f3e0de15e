package rollback

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/notify"
)

// TestPushNotifies: a rolled-back push tells a local webhook each step,
// with the JSON on-call tooling reads, and unlocking tells it too.
func TestPushNotifies(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	var last notify.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		json.NewDecoder(r.Body).Decode(&e)
		mu.Lock()
		kinds = append(kinds, e.Kind)
		if e.Kind == notify.Locked {
			last = e
		}
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, badOnWWW)
	withHook := *f.cfg
	withHook.Notify = conf.Notify{Webhooks: []conf.Webhook{{URL: hook.URL}}, Attempts: 3,
		Timeout: conf.Duration(time.Second), Backoff: conf.Duration(10 * time.Millisecond), Queue: 100}
	f.c.Notify = notify.New(&withHook, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.c.PageBase = "http://coordinator.example"
	p, _ := f.c.Start("bad", sha, "joy")
	p = f.wait(t, p.ID)
	f.c.Unlock("joy", "fixed")
	f.c.Notify.Close(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	want := []string{notify.PushStarted, notify.RolledBack, notify.Reverted, notify.Locked, notify.Unlocked}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	if last.Push != p.ID || last.Reason != p.Reason || last.URL != "http://coordinator.example/pushes/"+p.ID {
		t.Errorf("locked event %+v", last)
	}
}
