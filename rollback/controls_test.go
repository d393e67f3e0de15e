package rollback

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// calm is a release that changes nothing.
func calm(_, _, _ string, _ int) map[string]float64 {
	return map[string]float64{"php_errors": 0, "loadavg1": 1}
}

// until waits for the stored push to satisfy ok.
func (f *testFleet) until(t *testing.T, id string, what string, ok func(*Push) bool) *Push {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := f.c.Store.Push(id)
		if p != nil && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("push never got %s: %+v", what, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func observing(p *Push) bool { return p.State == StateObserving }

func TestOrders(t *testing.T) {
	hosts := []string{"www1:www", "www2:www", "www3:www", "www4:www"}
	t.Run("hold, then resume", func(t *testing.T) {
		f := newTestFleet(t, hosts, phpLimits, calm)
		p, _ := f.c.Start("good", sha, "ann")
		f.until(t, p.ID, "observing", observing)
		if err := f.c.Command(p.ID, Order{Kind: OrderHold, Who: "ann"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // past the 800ms window
		if held, _ := f.c.Store.Push(p.ID); held.State != StateObserving || held.Phase != 0 || held.Held != "ann" {
			t.Fatalf("held push moved on: %s phase %d held %q", held.State, held.Phase+1, held.Held)
		}
		if err := f.c.Command(p.ID, Order{Kind: OrderResume, Who: "ann"}); err != nil {
			t.Fatal(err)
		}
		if p = f.wait(t, p.ID); p.State != StateLive || !strings.Contains(fmt.Sprint(p.Events), "hold by ann") {
			t.Fatalf("push %s: %v", p.State, p.Events)
		}
	})
	t.Run("promote", func(t *testing.T) {
		f := newTestFleet(t, hosts, phpLimits, calm)
		p, _ := f.c.Start("good", sha, "bo")
		f.until(t, p.ID, "observing", observing)
		if err := f.c.Command(p.ID, Order{Kind: OrderPromote, Who: "bo", Reason: "hotfix for the outage"}); err != nil {
			t.Fatal(err)
		}
		p = f.until(t, p.ID, "phase 2", func(p *Push) bool { return p.Phase >= 1 })
		if v := p.Phases[0].Verdict; v == nil || v.Reason != "phase 1: promoted by bo: hotfix for the outage" {
			t.Errorf("phase 1 verdict %+v", v)
		}
		f.wait(t, p.ID)
	})
	t.Run("abort", func(t *testing.T) {
		f := newTestFleet(t, hosts, phpLimits, calm)
		p, _ := f.c.Start("good", sha, "cy")
		f.until(t, p.ID, "observing", observing)
		if err := f.c.Command(p.ID, Order{Kind: OrderAbort, Who: "cy"}); err == nil {
			t.Error("an abort without a reason was taken")
		}
		if err := f.c.Command(p.ID, Order{Kind: OrderAbort, Who: "cy", Reason: "wrong branch"}); err != nil {
			t.Fatal(err)
		}
		p = f.wait(t, p.ID)
		if p.State != StateRolledBack || p.Reason != "phase 1: aborted by cy: wrong branch" {
			t.Fatalf("push %s: %q", p.State, p.Reason)
		}
		for name, a := range f.agents {
			if a.current != "v1" {
				t.Errorf("%s left on %q", name, a.current)
			}
		}
		if err := f.c.Command(p.ID, Order{Kind: OrderHold, Who: "cy"}); !errors.Is(err, ErrNoPush) {
			t.Errorf("order to an ended push: %v", err)
		}
	})
	t.Run("forget a host that will not come back", func(t *testing.T) {
		f := newTestFleet(t, hosts, phpLimits+"rollback: {timeout: 1h}\n", badOnWWW)
		f.agents["www1"].diesOnRelease = true
		p, _ := f.c.Start("bad", sha, "di")
		f.until(t, p.ID, "rolling back", func(p *Push) bool { return p.State == StateRollingBack })
		if err := f.c.Command(p.ID, Order{Kind: OrderForgetHost, Who: "di", Host: "www1", Reason: "disk died"}); err != nil {
			t.Fatal(err)
		}
		p = f.wait(t, p.ID)
		if p.State != StateRolledBack || !strings.Contains(p.Reason, "rollback FAILED on www1: forgotten by di: disk died") {
			t.Fatalf("push %s: %q", p.State, p.Reason)
		}
	})
}

// TestRollbackGivesUpInTime: an agent that answers the rollback with 503
// for ever is left on the release after rollback.timeout; the revert and
// the lock go ahead, and the push records it once, not once a retry.
func TestRollbackGivesUpInTime(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits+"rollback: {timeout: 2s}\n", badOnWWW)
	f.agents["www1"].diesOnRelease = true
	p, _ := f.c.Start("bad", sha, "ed")
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || !strings.Contains(p.Reason, "rollback FAILED on www1") || p.Revert == nil {
		t.Fatalf("push %s: %q", p.State, p.Reason)
	}
	if l, _ := f.c.Store.Locks(); l.Commit == nil {
		t.Error("no commit lock")
	}
	retries := strings.Count(fmt.Sprint(p.Events), "rollback attempt")
	if retries > 2 {
		t.Errorf("%d retry events, want them collapsed: %v", retries, p.Events)
	}
}

// TestDeployNowhereFails: when no host switched, the push fails: nothing
// to roll back, no revert, no commit lock.
func TestDeployNowhereFails(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, phpLimits, calm)
	for _, a := range f.agents {
		a.down = true
	}
	p, _ := f.c.Start("good", sha, "flo")
	p = f.wait(t, p.ID)
	if p.State != StateFailed || p.Revert != nil || !strings.Contains(p.Reason, "no host answered to take the release") {
		t.Fatalf("push %s: %q %+v", p.State, p.Reason, p.Revert)
	}
	if l, _ := f.c.Store.Locks(); l.Commit != nil || l.Push != "" {
		t.Errorf("locks %+v", l)
	}
}

func TestOrdersAPI(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, calm)
	base := serve(t, f)
	p, _ := f.c.Start("good", sha, "gil")
	f.until(t, p.ID, "observing", observing)
	post := func(id, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/api/v1/pushes/"+id+"/orders", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		id, token, body string
		code            int
		want            string
	}{
		{p.ID, "wrong", `{"kind":"hold","who":"gil"}`, 401, ""},
		{"nope", operatorToken, `{"kind":"hold","who":"gil"}`, 404, "no such push in progress"},
		{p.ID, operatorToken, `{"kind":"explode","who":"gil"}`, 400, `unknown order \"explode\"`},
		{p.ID, operatorToken, `{"kind":"forget-host","who":"gil","host":"www9","reason":"x"}`, 400, `no host \"www9\"`},
		{p.ID, operatorToken, `{"kind":"abort","who":"gil","reason":"not today"}`, 202, `"kind": "abort"`},
	} {
		if code, body := post(tt.id, tt.token, tt.body); code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want %d %s", tt.body, code, body, tt.code, tt.want)
		}
	}
	if p = f.wait(t, p.ID); p.State != StateRolledBack || !strings.Contains(p.Reason, "aborted by gil: not today") {
		t.Errorf("push %s: %q", p.State, p.Reason)
	}
}

// TestBusyAgentIsWaitedFor: an agent still running the deploy a killed
// coordinator sent answers 409; the restarted coordinator waits and asks
// again, and the good release goes live rather than being rolled back.
func TestBusyAgentIsWaitedFor(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, calm)
	f.agents["www1"].busy = 2
	p, _ := f.c.Start("good", sha, "hal")
	if p = f.wait(t, p.ID); p.State != StateLive {
		t.Fatalf("push %s: %s", p.State, p.Reason)
	}
	if a := f.agents["www1"]; a.current != "good" || a.busy != 0 {
		t.Errorf("www1 on %q, %d busy answers left", a.current, a.busy)
	}
}

// TestOrdersFromThePage: the push page's form takes orders with the
// operator credential, and refuses them without it.
func TestOrdersFromThePage(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, calm)
	base := serve(t, f)
	p, _ := f.c.Start("good", sha, "kai")
	f.until(t, p.ID, "observing", observing)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values) (int, string, string) {
		resp, err := noRedirect.PostForm(base+"/pushes/"+p.ID+"/orders", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(b)
	}
	if code, _, page := post(url.Values{"token": {"nope"}, "who": {"kai"}, "kind": {"hold"}}); code != 401 || !strings.Contains(page, "not the operator credential") {
		t.Errorf("wrong credential: %d", code)
	}
	if code, _, page := post(url.Values{"token": {operatorToken}, "who": {"kai"}, "kind": {"abort"}}); code != 400 || !strings.Contains(page, "abort needs a reason") {
		t.Errorf("abort without a reason: %d", code)
	}
	code, where, _ := post(url.Values{"token": {operatorToken}, "who": {"kai"}, "kind": {"abort"}, "reason": {"the demo is on"}})
	if code != http.StatusSeeOther || where != "/pushes/"+p.ID+"?ordered=abort" {
		t.Fatalf("abort: %d %s", code, where)
	}
	if _, page := get(t, base+where); !strings.Contains(page, "abort taken") {
		t.Error("the page does not say the order was taken")
	}
	if p = f.wait(t, p.ID); p.State != StateRolledBack || !strings.Contains(p.Reason, "aborted by kai: the demo is on") {
		t.Errorf("push %s: %s", p.State, p.Reason)
	}
}
