package rollback

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/nagios"
)

// checksAgent adds an agent's /api/v1/checks to a stand-in, for the fleet
// page; silent makes it not answer that route, as a host whose agent is down.
type checksAgent struct {
	*standIn
	checks []agentapi.CheckStatus
	silent bool
	asked  atomic.Int32
}

func (a *checksAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != agentapi.ChecksPath {
		a.standIn.ServeHTTP(w, r)
		return
	}
	a.asked.Add(1)
	if a.silent {
		http.Error(w, "agent stopped", http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(agentapi.Checks{Host: a.name, HostType: a.hostType, Checks: a.checks})
}

var pageHosts = []string{"www01:www", "www02:www", "www03:www", "chat1:chat", "chat2:chat", "db1:db", "db2:db"}

// fleetChecks are the checks each host reports: www02 is critical, chat1
// in a soft warning, and db2's agent does not answer.
func fleetChecks(host string, now time.Time) (checks []agentapi.CheckStatus, silent bool) {
	ok := func(name, out string) agentapi.CheckStatus {
		return agentapi.CheckStatus{Name: name, Result: nagios.Result{State: nagios.OK, Output: out}, StateType: "HARD", Attempt: 1, MaxAttempts: 5,
			LastCheck: now.Add(-20 * time.Second), LastStateChange: now.Add(-26 * time.Hour)}
	}
	checks = []agentapi.CheckStatus{ok("check_load", "OK - load average: 0.42, 0.40, 0.38"), ok("check_php_fatals", "OK - 0 PHP fatal errors in the last 60s")}
	switch host {
	case "www02":
		checks[1] = agentapi.CheckStatus{Name: "check_php_fatals", Result: nagios.Result{State: nagios.Critical, Output: "CRITICAL - 412 PHP fatal errors in the last 60s"},
			StateType: "HARD", Attempt: 5, MaxAttempts: 5, LastCheck: now.Add(-10 * time.Second), LastStateChange: now.Add(-4 * time.Minute)}
	case "chat1":
		checks[0] = agentapi.CheckStatus{Name: "check_load", Result: nagios.Result{State: nagios.Warning, Output: "WARNING - load average: 6.10, 4.00, 3.10"},
			StateType: "SOFT", Attempt: 2, MaxAttempts: 5, LastCheck: now.Add(-5 * time.Second), LastStateChange: now.Add(-90 * time.Second)}
	case "db2":
		return nil, true
	}
	return checks, false
}

// newPagesFleet is newTestFleet whose agents also answer /api/v1/checks.
func newPagesFleet(t *testing.T) *testFleet {
	t.Helper()
	f := newTestFleet(t, pageHosts, phpLimits, badOnWWW)
	now := time.Now().UTC()
	for i, h := range f.cfg.Hosts {
		checks, silent := fleetChecks(h.Name, now)
		ca := &checksAgent{standIn: f.agents[h.Name], checks: checks, silent: silent}
		f.checksAgents = append(f.checksAgents, ca)
		srv := httptest.NewServer(ca)
		t.Cleanup(srv.Close)
		f.cfg.Hosts[i].Address = strings.TrimPrefix(srv.URL, "http://")
	}
	return f
}

const (
	operatorToken = "op-credential"
	readToken     = "read-credential"
)

// withRead is base with the read token as HTTP Basic credentials, as a
// browser sends them after asking.
func withRead(base string) string {
	return strings.Replace(base, "http://", "http://viewer:"+readToken+"@", 1)
}

// serve starts the coordinator's API and pages over the fleet on loopback.
func serve(t *testing.T, f *testFleet) string {
	t.Helper()
	s := &Server{C: f.c, OperatorToken: operatorToken, ReadToken: readToken, DeployToken: "secret", ArtifactDir: t.TempDir()}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// judged is the verdict on the fleet's hosts for the observed php_errors of
// the given hosts (the phase's canaries), one value per sample (NaN:
// missing); the others are the control, calm.
func judged(f *testFleet, phase string, php map[string][]float64) *Verdict {
	h := NewHistory(24 * time.Hour)
	co := Cohort{Anchor: at(0), Switched: map[string]time.Time{}, Pre: map[string]map[string]Summary{}, Window: 4 * step}
	onRelease := map[string]time.Time{}
	for _, host := range f.cfg.Hosts {
		var pre []Sample
		for i := -3; i < 0; i++ {
			s := Sample{At: at(i), Gauges: map[string]float64{"php_errors": 0, "loadavg1": 1}}
			pre = append(pre, s)
			h.Add(host.Name, s)
		}
		co.Pre[host.Name] = map[string]Summary{"php_errors": Summarize(pre, "php_errors", ""), "loadavg1": Summarize(pre, "loadavg1", "")}
		if _, canary := php[host.Name]; canary {
			co.Switched[host.Name] = at(0)
			onRelease[host.Name] = at(0)
		}
	}
	var v Verdict
	for i := range 4 {
		for _, host := range f.cfg.Hosts {
			g := map[string]float64{"loadavg1": 1.5, "php_errors": 0}
			if obs, ok := php[host.Name]; ok && i < len(obs) {
				delete(g, "php_errors")
				if !math.IsNaN(obs[i]) {
					g["php_errors"] = obs[i]
				}
			}
			h.Add(host.Name, Sample{At: at(i), Gauges: g})
		}
		v = Judge(JudgeInput{Label: phase, Fleet: f.cfg, Now: at(i), Look: i + 1, Looks: 4, Family: 2,
			Cohorts: []Cohort{co}, OnRelease: onRelease, History: h, Final: i == 3, Closing: i == 3})
		if v.Outcome == Fail {
			break
		}
	}
	return &v
}

// seedPushes records a good push (two phases) and a rolled-back one an
// hour later, and the commit lock the rollback set.
func seedPushes(t *testing.T, f *testFleet, start time.Time) (good, bad *Push) {
	t.Helper()
	calm := []float64{0.2, 0.3, 0.2}
	good = &Push{ID: start.Format("20060102-150405-000") + "-r100", Revision: "r100", Who: "alice",
		Created: start, Finished: start.Add(3 * time.Minute), State: StateLive, Phase: 1,
		Phases: []PushPhase{
			{Percent: 5, Hosts: []string{"chat1", "db1", "www01"}, Deployed: map[string]string{"chat1": "", "db1": "", "www01": ""},
				Verdict: judged(f, "phase 1", map[string][]float64{"www01": calm, "chat1": calm, "db1": calm})},
			{Percent: 100, Hosts: []string{"chat1", "chat2", "db1", "db2", "www01", "www02", "www03"},
				Deployed: map[string]string{"chat1": "", "chat2": "", "db1": "", "db2": "", "www01": "", "www02": "", "www03": ""},
				Verdict:  judged(f, "phase 2", map[string][]float64{"www01": calm, "www02": calm, "www03": calm, "chat1": calm})},
		},
		Touched: []string{"chat1", "db1", "www01", "chat2", "db2", "www02", "www03"},
		Events:  []Event{{At: start, Msg: "push of r100 by alice"}},
	}
	at := start.Add(time.Hour)
	v := judged(f, "phase 1", map[string][]float64{"www01": {math.NaN(), 41, 41, 41}, "chat1": calm, "db1": calm})
	bad = &Push{ID: at.Format("20060102-150405-000") + "-r101", Revision: "r101", Who: "bob",
		Created: at, Finished: at.Add(90 * time.Second), State: StateRolledBack, Reason: v.Reason,
		Phases: []PushPhase{
			{Percent: 5, Hosts: []string{"chat1", "db1", "www01"}, Deployed: map[string]string{"chat1": "", "db1": "", "www01": ""}, Verdict: v},
			{Percent: 100},
		},
		Touched: []string{"chat1", "db1", "www01"},
		Events:  []Event{{At: at, Msg: "push of r101 by bob"}},
	}
	for _, p := range []*Push{good, bad} {
		if err := f.c.Store.SavePush(p); err != nil {
			t.Fatal(err)
		}
	}
	err := f.c.Store.UpdateLocks(func(l *Locks) error {
		l.Commit = &CommitLock{Push: bad.ID, Revision: bad.Revision, Reason: bad.Reason, Since: bad.Finished}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return good, bad
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	code, body := get(t, u)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

// contains checks that the page has each of want, in that order.
func contains(t *testing.T, what, page string, want ...string) {
	t.Helper()
	page = html.UnescapeString(page)
	at := 0
	for _, w := range want {
		i := strings.Index(page[at:], w)
		if i < 0 {
			t.Errorf("%s: %q missing (or out of order)", what, w)
			return
		}
		at += i + len(w)
	}
}

func TestPagesShowPushes(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
	good, bad := seedPushes(t, f, time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"<h1>Pushes</h1>", "Last 30 days", `href="/pushes/` + bad.ID + `">r101`, "bob", "2026-11-20 10:00:00", "1m30s",
			"rolled back", bad.Reason,
			`href="/pushes/` + good.ID + `">r100`, "alice", "3m00s", ">live<"}},
		{"/pushes", 200, []string{"r101", "r100"}},
		{"/pushes/" + bad.ID, 200, []string{"Metrics of phase 1 of revision r101", `class="banner bad"`, "Rolled back.",
			bad.Reason,
			`href="#g-php_errors" class="breach default">php_errors ✖`, `href="#g-loadavg1"`,
			`id="g-php_errors"`, `<tr class="breach"`, "<b>www</b>", "counts, exact", "41", "99.99%", "breach",
			"<b>www01</b>", "the release", `<path class="line" d="M90.0 `, `href="/fleet?host=www01"`, "old release",
			`id="g-loadavg1"`, "<b>chat1</b>", "max 6"}},
		{"/pushes/" + good.ID, 200, []string{"Metrics of phase 2 of revision r100", `class="banner good"`, "Live",
			"Phase:", `?phase=1"`, `?phase=2" class="on"`}},
		{"/pushes/" + good.ID + "?phase=1", 200, []string{"Metrics of phase 1 of revision r100"}},
		{"/pushes/" + good.ID + "?phase=3", 404, []string{`phase "3" of push`}},
		{"/pushes/" + bad.ID + "?phase=2", 404, []string{"has no verdict"}},
		{"/pushes/nope", 404, []string{`no push "nope"`}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, page := get(t, base+tt.path)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, page)
			}
			contains(t, tt.path, page, tt.want...)
			if strings.Contains(page, "ZgotmplZ") {
				t.Errorf("the template refused a value: %s", page)
			}
		})
	}

	var pv PushesView
	getJSON(t, base+"/api/pushes", &pv)
	if len(pv.Pushes) != 2 || pv.Pushes[0].Revision != "r101" || pv.Pushes[0].Outcome != "rolled back" || pv.Pushes[1].Outcome != "live" {
		t.Errorf("/api/pushes: %+v", pv.Pushes)
	}
	if len(pv.Days) != 30 {
		t.Errorf("/api/pushes has %d days", len(pv.Days))
	}

	var one struct {
		Phase  int `json:"phase"`
		Gauges []struct {
			Name     string `json:"name"`
			Breached bool   `json:"breached"`
			Effects  []struct {
				HostType string `json:"host_type"`
				Breached bool   `json:"breached"`
			} `json:"effects"`
			Hosts []struct {
				Host     string     `json:"host"`
				Breached bool       `json:"breached"`
				Samples  []*float64 `json:"samples"`
			} `json:"hosts"`
		} `json:"gauges"`
		Push Push `json:"push"`
	}
	getJSON(t, base+"/api/pushes/"+bad.ID, &one)
	if one.Phase != 1 || len(one.Gauges) == 0 || one.Gauges[0].Name != "php_errors" || !one.Gauges[0].Breached {
		t.Fatalf("/api/pushes/%s: %+v", bad.ID, one)
	}
	if e := one.Gauges[0].Effects; len(e) == 0 || e[0].HostType != "www" || !e[0].Breached {
		t.Errorf("effects %+v: want www's breached", e)
	}
	www01 := one.Gauges[0].Hosts[0]
	if www01.Host != "www01" || len(www01.Samples) != 2 || www01.Samples[0] != nil || *www01.Samples[1] != 41 {
		t.Errorf("www01's reading %+v: want samples null, 41", www01)
	}
	if one.Push.Reason != bad.Reason {
		t.Errorf("push reason %q", one.Push.Reason)
	}
	if code, body := get(t, base+"/api/pushes/nope"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/api/pushes/nope: %d %s", code, body)
	}
}

func TestDayBars(t *testing.T) {
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	at := func(day, hour int) time.Time { return time.Date(2026, 11, day, hour, 0, 0, 0, time.UTC) }
	ps := []*Push{
		{Created: at(22, 7), State: StateBaseline},
		// Started before midnight, rolled back after: the rollback is on its own day.
		{Created: at(21, 23), Finished: at(22, 0).Add(5 * time.Minute), State: StateRolledBack},
		{Created: at(21, 9), Finished: at(21, 9), State: StateLive},
		{Created: at(21, 10), Finished: at(21, 10), State: StateLive},
		{Created: at(20, 10), Finished: at(20, 11), State: StateRolledBack},
		{Created: at(1, 10), State: StateLive}, // over 30 days ago
	}
	bars, top := dayBars(ps, now)
	if len(bars) != 30 || top != 3 {
		t.Fatalf("%d bars, top %d", len(bars), top)
	}
	for _, tt := range []struct {
		i                 int
		day               string
		pushes, rollbacks int
		today             bool
	}{
		{29, "2026-11-22", 1, 1, true},
		{28, "2026-11-21", 3, 0, false},
		{27, "2026-11-20", 1, 1, false},
		{0, "2026-10-24", 0, 0, false},
	} {
		b := bars[tt.i]
		if b.Day != tt.day || b.Pushes != tt.pushes || b.Rollbacks != tt.rollbacks || b.Today != tt.today {
			t.Errorf("bar %d = %+v, want %s %d pushes %d rollbacks", tt.i, b, tt.day, tt.pushes, tt.rollbacks)
		}
		if b.PushY+b.PushH != graphBottom || b.RollY+b.RollH != graphBottom {
			t.Errorf("bar %d does not stand on the axis: %+v", tt.i, b)
		}
	}
	if bars[28].PushH != graphBottom-graphTop {
		t.Errorf("the highest bar is %v high, want the full %v", bars[28].PushH, graphBottom-graphTop)
	}
}

func TestSparkline(t *testing.T) {
	pre := 1.0
	for _, tt := range []struct {
		name       string
		samples    Series
		pre        *float64
		line, base string
	}{
		{"rise", Series{1, 3}, &pre, "M0.0 17.0 L90.0 1.0", "M0 17.0 L90 17.0"},
		{"gap breaks the line", Series{1, math.NaN(), 3}, nil, "M0.0 17.0 M90.0 1.0", ""},
		{"flat", Series{2, 2}, nil, "M0.0 9.0 L90.0 9.0", ""},
		{"a hair off the baseline stays flat", Series{0.2, 0.2}, ptr(0.2000001), "M0.0 9.0 L90.0 9.0", "M0 9.0 L90 9.0"},
		{"zero", Series{0}, nil, "M0.0 9.0", ""},
		{"nothing", Series{math.NaN()}, nil, "", ""},
		{"none", nil, nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			line, base := sparkline(tt.samples, tt.pre)
			if line != tt.line || base != tt.base {
				t.Errorf("sparkline = %q, %q; want %q, %q", line, base, tt.line, tt.base)
			}
		})
	}
}

func TestSignedDelta(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		want string
	}{{40.8, "+40.8"}, {-2.5, "-2.5"}, {-0.0000001, "0"}, {0, "0"}, {0.0004, "0"}, {-1234.56789, "-1234.568"}} {
		if got := signed(tt.x); got != tt.want {
			t.Errorf("signed(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
}

func TestSeriesJSON(t *testing.T) {
	for _, tt := range []struct {
		s    Series
		json string
	}{
		{Series{1, math.NaN(), 2.5}, "[1,null,2.5]"},
		{Series{}, "[]"},
		{Series{math.Inf(1)}, "[null]"},
	} {
		b, err := json.Marshal(tt.s)
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.s, b, err, tt.json)
		}
		var back Series
		if err := json.Unmarshal(b, &back); err != nil || len(back) != len(tt.s) {
			t.Errorf("Unmarshal(%s) = %v, %v", b, back, err)
		}
	}
	var s Series
	if err := json.Unmarshal([]byte(`[1,"x"]`), &s); err == nil {
		t.Error("a string in a series was accepted")
	}
}

func TestPagesShowLimits(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
	code, page := get(t, base+"/limits")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	contains(t, "/limits", page, "Push limits", "phases <b>5% → 100%</b>", "baseline <b>300ms</b>", "observe <b>800ms</b>",
		"sample every <b>100ms</b>", "wait at most <b>500ms</b>", "breach after <b>3</b>",
		"<b>php_errors</b>", "<td>www</td>", "+10", "fail", "3 <small>(fleet)</small>",
		"<b>loadavg1</b>", "<td>chat, db, www</td>", "6")
	var v LimitsView
	getJSON(t, base+"/api/limits", &v)
	if len(v.Limits) != 2 || v.Limits[0].Rise != "+10" || v.Limits[1].Max != "6" || v.BreachSamples != 3 || fmt.Sprint(v.Phases) != "[5% 100%]" {
		t.Errorf("/api/limits: %+v", v)
	}
}

func TestPagesShowFleet(t *testing.T) {
	f := newPagesFleet(t)
	base := withRead(serve(t, f))
	rowRE := regexp.MustCompile(`<tr class="s-(\w+)">\s*<td><a href="/fleet\?host=\w+"><b>(\w+)</b>`)
	for _, tt := range []struct {
		query string
		code  int
		// rows are state:host in order.
		rows []string
		want []string
	}{
		{"", 200, []string{"critical:www02", "noanswer:db2", "warning:chat1", "ok:chat1", "ok:chat2", "ok:chat2", "ok:db1", "ok:db1",
			"ok:www01", "ok:www01", "ok:www02", "ok:www03", "ok:www03"},
			[]string{"check_php_fatals", "CRITICAL", "4m00s", "5/5", "CRITICAL - 412 PHP fatal errors in the last 60s",
				"NO ANSWER", "the agent did not answer", "503", "WARNING <small>soft</small>", "1m30s", "2/5",
				"OK", "1d02h", "1/5"}},
		{"?state=problems", 200, []string{"critical:www02", "noanswer:db2", "warning:chat1"}, []string{`class="f on">problems <small>3</small>`}},
		{"?state=critical", 200, []string{"critical:www02"}, []string{`class="f on">CRITICAL <small>1</small>`}},
		{"?type=chat", 200, []string{"warning:chat1", "ok:chat1", "ok:chat2", "ok:chat2"}, []string{`class="f on">chat <small>2</small>`}},
		{"?host=www01", 200, []string{"ok:www01", "ok:www01"}, []string{"Checks of www01", "all hosts"}},
		{"?state=sideways", 400, nil, []string{`state "sideways"`}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			code, page := get(t, base+"/fleet"+tt.query)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, page)
			}
			var rows []string
			for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
				rows = append(rows, m[1]+":"+m[2])
			}
			if fmt.Sprint(rows) != fmt.Sprint(tt.rows) && tt.code == 200 {
				t.Errorf("rows %v\nwant %v", rows, tt.rows)
			}
			contains(t, tt.query, page, tt.want...)
		})
	}
	var v FleetView
	getJSON(t, base+"/api/fleet?state=problems", &v)
	if len(v.Rows) != 3 || v.Rows[0].State != "CRITICAL" || !v.Rows[1].NoAnswer || v.Rows[2].Attempt != "2/5" || v.Hosts != 7 {
		t.Errorf("/api/fleet: %+v", v)
	}
}

func TestUnlockForm(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
	_, bad := seedPushes(t, f, time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	code, page := get(t, base+"/locks")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	contains(t, "/locks", page, "pushes locked since", "commit lock", "on", "r101", bad.Reason,
		`<form class="card unlock" method="post" action="/locks/unlock">`, `name="token"`, `name="who"`, `name="reason"`, "None yet.")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		name    string
		form    url.Values
		header  map[string]string
		code    int
		want    string
		cleared bool
	}{
		{"no credential", url.Values{"who": {"dave"}, "reason": {"fixed"}}, nil, 401, "not the operator credential", false},
		{"wrong credential", url.Values{"token": {"guess"}, "who": {"dave"}, "reason": {"fixed"}}, nil, 401, "not the operator credential", false},
		{"no reason", url.Values{"token": {operatorToken}, "who": {"dave"}, "reason": {"  "}}, nil, 400, "a reason is required", false},
		{"no who", url.Values{"token": {operatorToken}, "reason": {"fixed"}}, nil, 400, "say who you are", false},
		{"from another site", url.Values{"token": {operatorToken}, "who": {"dave"}, "reason": {"fixed"}},
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403, "", false},
		{"right credential and a reason", url.Values{"token": {operatorToken}, "who": {"dave"}, "reason": {"fixed the avatar bug in r102"}}, nil, 303, "", true},
		{"nothing left to clear", url.Values{"token": {operatorToken}, "who": {"dave"}, "reason": {"again"}}, nil, 409, "no commit lock to clear", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", base+"/locks/unlock", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(string(body), tt.want) {
				t.Errorf("status %d, want %d with %q: %s", resp.StatusCode, tt.code, tt.want, body)
			}
			if tt.code == 303 && resp.Header.Get("Location") != "/locks?cleared=1" {
				t.Errorf("redirect to %q", resp.Header.Get("Location"))
			}
			l, err := f.c.Store.Locks()
			if err != nil {
				t.Fatal(err)
			}
			if (l.Commit == nil) != tt.cleared {
				t.Errorf("commit lock %+v, want cleared %v", l.Commit, tt.cleared)
			}
		})
	}
	code, page = get(t, base+"/locks?cleared=1")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	contains(t, "/locks after", page, "pushes open", "The commit lock is cleared", "Cleared locks", "r101", "dave", "fixed the avatar bug in r102")
	if strings.Contains(page, `action="/locks/unlock"`) {
		t.Error("the unlock form is shown with no lock to clear")
	}
	var v LocksView
	getJSON(t, base+"/api/locks", &v)
	if v.Commit != nil || len(v.Cleared) != 1 || v.Cleared[0].ClearedBy != "dave" || v.Cleared[0].ClearReason != "fixed the avatar bug in r102" {
		t.Errorf("/api/locks: %+v", v)
	}
}

func TestSpan(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {42 * time.Second, "42s"}, {192 * time.Second, "3m12s"},
		{5*time.Hour + 4*time.Minute, "5h04m"}, {51 * time.Hour, "2d03h"},
	} {
		if got := span(tt.d); got != tt.want {
			t.Errorf("span(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestFleetNeedsReadCredential: the fleet grid shows the check output the
// agents protect, so it needs the read or the operator token; and however
// many views come, the agents are asked once per refresh.
func TestFleetNeedsReadCredential(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
	for _, tt := range []struct {
		name, user, pass, bearer string
		code                     int
		want                     string
	}{
		{name: "none", code: 401, want: "read token required"},
		{name: "wrong", user: "x", pass: "guess", code: 401, want: "invalid token"},
		{name: "deploy token", bearer: "secret", code: 401, want: "invalid token"},
		{name: "read token in the browser", user: "viewer", pass: readToken, code: 200, want: "check_php_fatals"},
		{name: "operator token", bearer: operatorToken, code: 200, want: "check_php_fatals"},
	} {
		req, _ := http.NewRequest("GET", base+"/fleet", nil)
		if tt.pass != "" {
			req.SetBasicAuth(tt.user, tt.pass)
		}
		if tt.bearer != "" {
			agentapi.SetToken(req, tt.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %q, want %d with %q", tt.name, resp.StatusCode, b, tt.code, tt.want)
		}
		if tt.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: challenge %q does not make a browser ask", tt.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	for range 50 {
		if code, page := get(t, withRead(base)+"/api/fleet"); code != 200 {
			t.Fatalf("%d %s", code, page)
		}
	}
	for _, a := range f.checksAgents {
		if n := a.asked.Load(); n != 1 {
			t.Errorf("%s asked %d times for 52 views in one refresh interval, want 1", a.name, n)
		}
	}
}

// TestRevertOutputNeedsReadCredential: the API shows a push's verdict to
// anyone, the output of its revert only with the read or operator token.
func TestRevertOutputNeedsReadCredential(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, phpLimits, badOnWWW)
	s := &Server{C: f.c, OperatorToken: operatorToken, ReadToken: readToken, DeployToken: "secret", ArtifactDir: t.TempDir()}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	p, err := f.c.Start("bad", sha, "ivy")
	if err != nil {
		t.Fatal(err)
	}
	f.wait(t, p.ID)
	for _, tt := range []struct {
		base, path, want, not string
	}{
		{srv.URL, "/api/v1/pushes/" + p.ID, hiddenOutput, `Revert \"bad\"`},
		{srv.URL, "/api/v1/pushes", hiddenOutput, `Revert \"bad\"`},
		{withRead(srv.URL), "/api/v1/pushes/" + p.ID, `Revert \"bad\"`, hiddenOutput},
		{withRead(srv.URL), "/api/v1/pushes", `Revert \"bad\"`, hiddenOutput},
	} {
		code, body := get(t, tt.base+tt.path)
		if code != 200 || !strings.Contains(body, tt.want) || strings.Contains(body, tt.not) || !strings.Contains(body, "rolled_back") {
			t.Errorf("%s (credential: %v): %d, want %q and not %q in %s", tt.path, tt.base != srv.URL, code, tt.want, tt.not, body)
		}
	}
}
