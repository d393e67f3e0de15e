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
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

// checksAgent adds an agent's /api/v1/checks to a stand-in, for the fleet
// page; silent makes it not answer that route, as a host whose agent is down.
type checksAgent struct {
	*standIn
	checks []CheckStatus
	silent bool
}

func (a *checksAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/checks" {
		a.standIn.ServeHTTP(w, r)
		return
	}
	if a.silent {
		http.Error(w, "agent stopped", http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(HostChecks{Host: a.name, HostType: a.hostType, Checks: a.checks})
}

var pageHosts = []string{"www01:www", "www02:www", "www03:www", "chat1:chat", "chat2:chat", "db1:db", "db2:db"}

// fleetChecks are the checks each host reports: www02 is critical, chat1
// in a soft warning, and db2's agent does not answer.
func fleetChecks(host string, now time.Time) (checks []CheckStatus, silent bool) {
	ok := func(name, out string) CheckStatus {
		return CheckStatus{Name: name, State: nagios.OK, Output: out, StateType: "HARD", Attempt: 1, MaxAttempts: 5,
			LastCheck: now.Add(-20 * time.Second), LastStateChange: now.Add(-26 * time.Hour)}
	}
	checks = []CheckStatus{ok("check_load", "OK - load average: 0.42, 0.40, 0.38"), ok("check_php_fatals", "OK - 0 PHP fatal errors in the last 60s")}
	switch host {
	case "www02":
		checks[1] = CheckStatus{Name: "check_php_fatals", State: nagios.Critical, Output: "CRITICAL - 412 PHP fatal errors in the last 60s",
			StateType: "HARD", Attempt: 5, MaxAttempts: 5, LastCheck: now.Add(-10 * time.Second), LastStateChange: now.Add(-4 * time.Minute)}
	case "chat1":
		checks[0] = CheckStatus{Name: "check_load", State: nagios.Warning, Output: "WARNING - load average: 6.10, 4.00, 3.10",
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
		srv := httptest.NewServer(&checksAgent{standIn: f.agents[h.Name], checks: checks, silent: silent})
		t.Cleanup(srv.Close)
		f.cfg.Hosts[i].Address = strings.TrimPrefix(srv.URL, "http://")
	}
	return f
}

const operatorToken = "op-credential"

// serve starts the coordinator's API and pages over the fleet on loopback.
func serve(t *testing.T, f *testFleet) string {
	t.Helper()
	s := &Server{C: f.c, OperatorToken: operatorToken, DeployToken: "secret", ArtifactDir: t.TempDir()}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// judged is the verdict on the fleet's hosts for the observed php_errors of
// the given hosts (the phase's canaries), one value per sample (NaN:
// missing); the others are the control, calm. The phase's window is three
// samples, judged at each of four looks until a breach.
func judged(f *testFleet, phase string, php map[string][]float64) *Verdict {
	return judgedAfter(f, phase, php, 4, false)
}

// judgedAfter is judged after only the first looks samples: with fewer
// than four the phase is still observed. With watch, the given hosts are
// the held-back ones joining the rest, and the phase is the watch.
func judgedAfter(f *testFleet, phase string, php map[string][]float64, looks int, watch bool) *Verdict {
	h := NewHistory(24 * time.Hour)
	co := Cohort{Anchor: at(0), Switched: map[string]time.Time{}, Pre: map[string]map[string]Summary{}, Window: 3 * step,
		Holdback: watch, Scale: watch}
	onRelease := map[string]time.Time{}
	for _, host := range f.cfg.Hosts {
		var pre []Sample
		for i := -3; i < 0; i++ {
			s := Sample{At: at(i), Gauges: map[string]float64{"php_errors": 0, "loadavg1": 1}}
			pre = append(pre, s)
			h.Add(host.Name, s)
		}
		co.Pre[host.Name] = map[string]Summary{"php_errors": Summarize(pre, "php_errors", ""), "loadavg1": Summarize(pre, "loadavg1", "")}
		if _, canary := php[host.Name]; canary || watch {
			co.Switched[host.Name] = at(0)
			onRelease[host.Name] = at(0)
		}
	}
	var v Verdict
	for i := range looks {
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
			Cohorts: []Cohort{co}, OnRelease: onRelease, History: h, Final: i == 3})
		if v.Outcome == Fail {
			break
		}
	}
	return &v
}

// Every push of the page fleet plans these phases: a host of each type,
// then all but the held-back hosts (chat2, db2, www03), then every host
// (the watch).
var (
	phase1Hosts  = []string{"chat1", "db1", "www01"}
	phase2Hosts  = []string{"chat1", "db1", "www01", "www02"}
	allPageHosts = []string{"chat1", "chat2", "db1", "db2", "www01", "www02", "www03"}
)

// deployed marks every host as running the release.
func deployed(hosts []string) map[string]string {
	m := map[string]string{}
	for _, h := range hosts {
		m[h] = ""
	}
	return m
}

// calmOn is php_errors calm on the given hosts.
func calmOn(hosts ...string) map[string][]float64 {
	m := map[string][]float64{}
	for _, h := range hosts {
		m[h] = []float64{0.2, 0.3, 0.2}
	}
	return m
}

// seedPushes records a good push (three phases, the last the held-back
// hosts, unwatched) and a rolled-back one an hour later, and the commit
// lock the rollback set.
func seedPushes(t *testing.T, f *testFleet, start time.Time) (good, bad *Push) {
	t.Helper()
	good = &Push{ID: start.Format("20060102-150405-000") + "-r100", Revision: "r100", Who: "alice",
		Created: start, Finished: start.Add(3 * time.Minute), State: StateLive, Phase: 2, Looks: 8,
		Phases: []PushPhase{
			{Percent: 5, Hosts: phase1Hosts, Deployed: deployed(phase1Hosts), Verdict: judged(f, "phase 1", calmOn(phase1Hosts...))},
			{Percent: 100, Hosts: phase2Hosts, Deployed: deployed(phase2Hosts),
				Verdict: judged(f, "phase 2", calmOn(phase2Hosts...))},
			{Percent: 100, Hosts: allPageHosts, Holdback: true, Deployed: deployed(allPageHosts)},
		},
		Touched: allPageHosts,
		Events:  []Event{{At: start, Msg: "push of r100 by alice"}},
	}
	at := start.Add(time.Hour)
	php := calmOn("chat1", "db1")
	php["www01"] = []float64{math.NaN(), 41, 41, 41}
	v := judged(f, "phase 1", php)
	bad = &Push{ID: at.Format("20060102-150405-000") + "-r101", Revision: "r101", Who: "bob",
		Created: at, Finished: at.Add(90 * time.Second), State: StateRolledBack, Reason: v.Reason, Looks: 2,
		Phases: []PushPhase{
			{Percent: 5, Hosts: phase1Hosts, Deployed: deployed(phase1Hosts), Verdict: v},
			{Percent: 100, Hosts: phase2Hosts},
			{Percent: 100, Hosts: allPageHosts, Holdback: true},
		},
		Touched: phase1Hosts,
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

// seedObserving records a push whose phase 1 has been looked at twice of
// its four looks, and one live on every host and watched, its watch
// looked at twice; nobody drives them, so they stay as they are.
func seedObserving(t *testing.T, f *testFleet, start time.Time) (observing, watching *Push) {
	t.Helper()
	observing = &Push{ID: start.Format("20060102-150405-000") + "-r102", Revision: "r102", Who: "carol",
		Created: start, State: StateObserving, Looks: 2,
		Phases: []PushPhase{
			{Percent: 5, Hosts: phase1Hosts, Deployed: deployed(phase1Hosts), Started: start,
				Verdict: judgedAfter(f, "phase 1", calmOn(phase1Hosts...), 2, false)},
			{Percent: 100, Hosts: phase2Hosts},
			{Percent: 100, Hosts: allPageHosts, Holdback: true},
		},
		Touched: phase1Hosts,
		Events:  []Event{{At: start, Msg: "push of r102 by carol"}},
	}
	at := start.Add(time.Hour)
	watching = &Push{ID: at.Format("20060102-150405-000") + "-r103", Revision: "r103", Who: "dave",
		Created: at, State: StateWatching, Phase: 2, Looks: 10,
		Phases: []PushPhase{
			{Percent: 5, Hosts: phase1Hosts, Deployed: deployed(phase1Hosts), Verdict: judged(f, "phase 1", calmOn(phase1Hosts...))},
			{Percent: 100, Hosts: phase2Hosts, Deployed: deployed(phase2Hosts),
				Verdict: judged(f, "phase 2", calmOn(phase2Hosts...))},
			{Percent: 100, Hosts: allPageHosts, Holdback: true, Deployed: deployed(allPageHosts),
				Verdict: judgedAfter(f, "watch", calmOn(allPageHosts...), 2, true)},
		},
		Touched: allPageHosts,
		Events:  []Event{{At: at, Msg: "push of r103 by dave"}},
	}
	for _, p := range []*Push{observing, watching} {
		if err := f.c.Store.SavePush(p); err != nil {
			t.Fatal(err)
		}
	}
	return observing, watching
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
	reason := "phase 1: php_errors on www rose by 41 against the hosts still on the old release (41 vs 0 a sample, 99.99% confidence; limit rise +10)"
	if bad.Reason != reason {
		t.Fatalf("the seeded rollback's reason is %q,\nwant %q", bad.Reason, reason)
	}
	for _, tt := range []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"<h1>Pushes</h1>", "Last 30 days", `href="/pushes/` + bad.ID + `">r101`, "bob", "2026-11-20 10:00:00", "1m30s",
			"rolled back", reason, `href="/pushes/` + good.ID + `">r100`, "alice", "3m00s", ">live<"}},
		{"/pushes", 200, []string{"r101", "r100"}},
		// The rollback: its reason once in the banner, the verdict's
		// word, then the breaching gauge's tab open on www: the effect
		// (canaries against the control), why, then the canary and the
		// control hosts.
		{"/pushes/" + bad.ID, 200, []string{"Metrics of phase 1 of revision r101", `class="banner bad"`, "Rolled back.", reason,
			`<b class="word breach">Breach</b>  <small>look 2 of 4 · 2026-11-21 12:00:10 UTC</small>`,
			`href="#g-php_errors" class="breach default">php_errors ✖`, `href="#g-loadavg1"`,
			`id="g-php_errors"`, "<th>Limit</th>", ">Confidence</th><th>Evidence</th><th>Verdict</th>",
			`<tr class="typehead"><td colspan="13"><b>www</b> <span>limit rise +10</span> <span>1 on the release, 2 control</span>`,
			`<tr class="effect breach">`, "<b>www</b> release's effect", "1 on the release vs 2 control", "counts, exact",
			`<td class="num">0</td>`, `<td class="num"><b>41</b></td>`, `<td class="num">0</td>`,
			`<b>+41</b> <span class="ci">(+20.3 to +63.5)</span>`, "<td>rise +10</td>", "99.99%",
			`<rect class="fg" width="33" height="8"/></svg> 33% of the window`, `<span class="word breach">breach</span>`,
			`href="/fleet?type=www"`, `<tr class="whyrow breach"><td colspan="13">php_errors on www rose by 41`,
			`<b>www01</b>`, `<span class="role canary">canary</span>`, "+41", `<path class="line" d="M85.0 1.0 h6"/>`,
			`<b>www02</b>`, `<span class="role control">control</span>`, `<b>www03</b>`, "control",
			`id="g-loadavg1"`, "<b>www</b> <span>limit max 6</span>", "<b>chat1</b>", "canary", "+0.5", "+50%", "<b>chat2</b>", "control"}},
		{"/pushes/" + good.ID, 200, []string{"Metrics of phase 2 of revision r100", `class="banner good"`, "Live",
			"Phase:", `?phase=1"`, `?phase=2" class="on"`, `<b class="word within">Passed</b> phase 2: every gauge held its limits`,
			"2 on the release, 1 control", `<tr class="effect within">`, "100% of the window", `<span class="word within">within</span>`}},
		{"/pushes/" + good.ID + "?phase=1", 200, []string{"Metrics of phase 1 of revision r100"}},
		{"/pushes/" + good.ID + "?phase=3", 404, []string{`phase "3" of push`}},
		{"/pushes/" + good.ID + "?phase=4", 404, []string{`phase "4" of push`}},
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
	if _, page := get(t, base+"/pushes/"+bad.ID); strings.Count(html.UnescapeString(page), reason) != 1 {
		t.Errorf("the rollback's reason is not said once in the banner and the breaching row")
	}

	var pv PushesView
	getJSON(t, base+"/api/pushes", &pv)
	if len(pv.Pushes) != 2 || pv.Pushes[0].Revision != "r101" || pv.Pushes[0].Outcome != "rolled back" || pv.Pushes[1].Outcome != "live" {
		t.Errorf("/api/pushes: %+v", pv.Pushes)
	}
	if len(pv.Days) != 30 {
		t.Errorf("/api/pushes has %d days", len(pv.Days))
	}

	type row struct {
		Host       string     `json:"host"`
		HostType   string     `json:"host_type"`
		Role       Role       `json:"role"`
		Test       string     `json:"test"`
		Post       *float64   `json:"post"`
		Control    *float64   `json:"control"`
		Delta      *float64   `json:"delta"`
		Low        *float64   `json:"low"`
		High       *float64   `json:"high"`
		Confidence *float64   `json:"confidence"`
		Evidence   float64    `json:"evidence"`
		Canaries   int        `json:"canaries"`
		Controls   int        `json:"controls"`
		Breached   bool       `json:"breached"`
		Status     string     `json:"status"`
		Samples    []*float64 `json:"samples"`
	}
	var one struct {
		Phase  int `json:"phase"`
		Gauges []struct {
			Name       string `json:"name"`
			Breached   bool   `json:"breached"`
			Aggregates []row  `json:"aggregates"`
			Hosts      []row  `json:"hosts"`
		} `json:"gauges"`
		Push Push `json:"push"`
	}
	getJSON(t, base+"/api/pushes/"+bad.ID, &one)
	if one.Phase != 1 || len(one.Gauges) != 2 || one.Gauges[0].Name != "php_errors" || !one.Gauges[0].Breached || len(one.Gauges[0].Aggregates) != 1 {
		t.Fatalf("/api/pushes/%s: %+v", bad.ID, one)
	}
	effect := one.Gauges[0].Aggregates[0]
	if effect.Host != "" || effect.HostType != "www" || effect.Test != "counts, exact" || !effect.Breached || effect.Status != "breach" ||
		*effect.Post != 41 || *effect.Control != 0 || *effect.Delta != 41 || effect.Low == nil || effect.High == nil ||
		!(*effect.Low > 10 && *effect.Low < 41 && *effect.High > 41) || *effect.Confidence < 0.999 || effect.Canaries != 1 || effect.Controls != 2 {
		t.Errorf("the effect on www %+v: want 41 against 0, its interval above the limit of 10, 1 host against 2", effect)
	}
	var hosts []string
	for _, h := range one.Gauges[0].Hosts {
		hosts = append(hosts, h.Host+":"+string(h.Role))
	}
	if fmt.Sprint(hosts) != "[www01:canary www02:control www03:control]" {
		t.Errorf("php_errors' hosts %v: want the canary, then the control", hosts)
	}
	www01 := one.Gauges[0].Hosts[0]
	if www01.Breached || www01.Status != "" || len(www01.Samples) != 2 || www01.Samples[0] != nil || *www01.Samples[1] != 41 {
		t.Errorf("www01's reading %+v: want no breach of its own, samples null, 41", www01)
	}
	if one.Push.Reason != bad.Reason {
		t.Errorf("push reason %q", one.Push.Reason)
	}
	if code, body := get(t, base+"/api/pushes/nope"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/api/pushes/nope: %d %s", code, body)
	}
}

// A phase still observed is shown as it is judged, look by look, and the
// page's stamp changes at every look so the live script reloads it; the
// watch of the held-back hosts is named as such, under a live banner.
func TestPagesShowAPhaseObserved(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
	observing, watching := seedObserving(t, f, time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/pushes/" + observing.ID, []string{`data-stamp="observing/0/1/2" data-live="1"`,
			"Metrics of phase 1 of revision r102", `class="banner busy"`, "In progress:",
			`<span id="progress">phase 1 of 2: observing (33% of the window seen), 3 of 7 hosts on the revision</span>`,
			`<b class="word observing">Observing</b> phase 1: observing, 33% of the window seen, nothing crossed its limit <small>look 2 of 4`,
			`<tr class="effect observing">`, "<b>www</b> release's effect", "1 on the release vs 2 control",
			`<b>0</b> <span class="ci">(-4.99 to +6.99)</span>`, "0%", "33% of the window", `<span class="word observing">observing</span>`,
			"<b>www01</b>", "canary", "<b>www02</b>", "control"}},
		{"/pushes/" + watching.ID, []string{`data-stamp="watching/2/3/10" data-live="1"`,
			"Metrics of the watch (held-back hosts) of revision r103", `class="banner good"`, "Live, watching:",
			"watch (held-back hosts): watching (33% of the window seen), 7 of 7 hosts on the revision",
			`Phase: <a href="/pushes/` + watching.ID + `?phase=1">1</a>`, `?phase=3" class="on">watch (held-back hosts)</a>`,
			`<b class="word observing">Observing</b> watch: observing`,
			"<b>www</b> whole type, before/after", "all 3 hosts, each against its own before", "before/after at scale",
			"3 on the release, 0 control"}},
		{"/", []string{"r103", `<span class="outcome watching">live, watching</span>`, "r102", "in progress"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, page := get(t, base+tt.path)
			if code != 200 {
				t.Fatalf("status %d: %s", code, page)
			}
			contains(t, tt.path, page, tt.want...)
			if strings.Contains(page, "No phase has been judged yet") {
				t.Error("a phase observed is shown as not judged")
			}
		})
	}

	// The next look: the stamp changes, the page shows it.
	var before PushView
	getJSON(t, base+"/api/pushes/"+observing.ID, &before)
	observing.Looks = 3
	observing.Phases[0].Verdict = judgedAfter(f, "phase 1", calmOn(phase1Hosts...), 3, false)
	if err := f.c.Store.SavePush(observing); err != nil {
		t.Fatal(err)
	}
	var after PushView
	getJSON(t, base+"/api/pushes/"+observing.ID, &after)
	if before.Stamp == after.Stamp || !after.Observing || after.Verdict == nil || after.Verdict.Look != 3 {
		t.Errorf("after a look: stamp %q -> %q, observing %v, verdict %+v", before.Stamp, after.Stamp, after.Observing, after.Verdict)
	}
	if len(after.Gauges) == 0 || len(after.Gauges[0].Aggregates) != 1 || after.Gauges[0].Aggregates[0].Status != "observing" {
		t.Errorf("after a look, the effects %+v", after.Gauges)
	}
	_, page := get(t, base+"/pushes/"+observing.ID)
	contains(t, "the next look", page, "67% of the window seen", "look 3 of 4", "67% of the window")
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
		{"gap breaks the line", Series{1, math.NaN(), 3, 2}, nil, "M-1.0 17.0 h6 M60.0 1.0 L90.0 9.0", ""},
		{"a reading alone is a dot", Series{math.NaN(), 41}, &pre, "M85.0 1.0 h6", "M0 17.0 L90 17.0"},
		{"flat", Series{2, 2}, nil, "M0.0 9.0 L90.0 9.0", ""},
		{"a hair off the baseline stays flat", Series{0.2, 0.2}, ptr(0.2000001), "M0.0 9.0 L90.0 9.0", "M0 9.0 L90 9.0"},
		{"zero", Series{0}, nil, "M-1.0 9.0 h6", ""},
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

func TestPageStatusWords(t *testing.T) {
	for _, tt := range []struct {
		name       string
		rd         Reading
		observing  bool
		word, want string
	}{
		{"effect breached", Reading{Breached: true}, true, "breach", "breach"},
		{"effect held, window over", Reading{}, false, "within", "within"},
		{"effect held so far", Reading{}, true, "observing", "observing"},
		{"effect too thin", Reading{Inconclusive: true}, false, "inconclusive", "wait"},
		{"dry run", Reading{DryRun: true}, true, "dry run", "dryrun"},
		{"dry run breached", Reading{DryRun: true, Breached: true}, false, "dry run: breach", "dryrun-hit"},
		{"canary past its guard", Reading{Host: "www01", Role: RoleCanary, Breached: true}, true, "breach", "breach"},
		{"canary awaited", Reading{Host: "www01", Role: RoleCanary, Waiting: true}, true, "waiting", "wait"},
		{"canary within its guard", Reading{Host: "www01", Role: RoleCanary}, false, "", ""},
		{"control host", Reading{Host: "www02", Role: RoleControl}, true, "", ""},
	} {
		if word, class := status(tt.rd, tt.observing); word != tt.word || class != tt.want {
			t.Errorf("%s: status = %q, %q; want %q, %q", tt.name, word, class, tt.word, tt.want)
		}
	}
}

func TestPageHeadline(t *testing.T) {
	for _, tt := range []struct {
		outcome         Outcome
		observing, held bool
		word            string
	}{
		{Fail, true, false, "Breach"},
		{Observe, true, false, "Observing"},
		{Wait, true, false, "Waiting for evidence"},
		{Wait, true, true, "Held: promote or abort"},
		{Pass, false, false, "Passed"},
		{Wait, false, false, "Inconclusive"},
		{Observe, false, false, "Cut short"},
	} {
		v := &Verdict{Outcome: tt.outcome, Reason: "phase 1: why", Look: 3, Looks: 9, At: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
		h := headline(v, tt.observing, tt.held)
		if h.Word != tt.word || h.Reason != "phase 1: why" || h.Detail != "look 3 of 9 · 2026-11-20 09:00:00 UTC" {
			t.Errorf("headline(%s, observing %v, held %v) = %+v, want %q", tt.outcome, tt.observing, tt.held, h, tt.word)
		}
	}
}

func TestSignedInterval(t *testing.T) {
	for _, tt := range []struct {
		lo, hi *float64
		want   string
	}{
		{ptr(0.6), ptr(1.2), "(+0.6 to +1.2)"},
		{ptr(20.308343), ptr(63.487864), "(+20.3 to +63.5)"},
		{ptr(-4.992887), ptr(6.990042), "(-4.99 to +6.99)"},
		{ptr(-1234.56), ptr(0), "(-1230 to 0)"},
		{nil, ptr(3), "(-∞ to +3)"},
		{ptr(0.00123456), nil, "(+0.001 to +∞)"},
		{nil, nil, ""},
		{ptr(40.8), ptr(40.8), ""},
	} {
		if got := interval(tt.lo, tt.hi); got != tt.want {
			t.Errorf("interval(%v, %v) = %q, want %q", optNum(tt.lo), optNum(tt.hi), got, tt.want)
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

// judgeLimits adds to phpLimits a limit tried in a dry run, and the judge's
// settings.
const judgeLimits = phpLimits + `  - gauge: signups
    host_types: [www]
    fall: 25%
    kind: count
    warmup: 30s
    dry_run: true
judge: {confidence: 99.5%, inconclusive: hold, holdback: 5%, traffic: requests}
`

func TestPagesShowLimits(t *testing.T) {
	f := newTestFleet(t, pageHosts, judgeLimits, badOnWWW)
	f.cfg.Windows.Warmup = conf.Duration(20 * time.Second)
	f.cfg.Windows.Watch = conf.Duration(10 * time.Minute)
	base := serve(t, f)
	code, page := get(t, base+"/limits")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	contains(t, "/limits", page, "Push limits", "phases <b>5% → 100%</b>", "baseline <b>300ms</b>", "observe <b>800ms</b>",
		"sample every <b>100ms</b>", "wait at most <b>500ms</b>", "warm-up <b>20s</b>", "watch after 100% <b>10m0s</b>", "breach after <b>3</b>",
		"confidence <b>99.5%</b>", "inconclusive after max wait: <b>hold</b>", "held back as the control <b>5% of each type</b>",
		"traffic gauge <b>requests</b>",
		"<th>Kind</th>", "Warm-up</th>", "<th>Dry run</th>",
		"<b>php_errors</b>", "<td>www</td>", "+10", "<td>auto</td>", "20s <small>(fleet)</small>", "fail", "3 <small>(fleet)</small>", "<td></td>\n</tr>",
		"<b>loadavg1</b>", "<td>chat, db, www</td>", "6",
		"<b>signups</b>", "-25%", "<td>count</td>", `<td class="num">30s</td>`, `<span class="word dryrun">dry run</span>`)
	var v LimitsView
	getJSON(t, base+"/api/limits", &v)
	if len(v.Limits) != 3 || v.Limits[0].Rise != "+10" || v.Limits[1].Max != "6" || v.BreachSamples != 3 || fmt.Sprint(v.Phases) != "[5% 100%]" {
		t.Errorf("/api/limits: %+v", v)
	}
	if v.Warmup != "20s" || v.Watch != "10m0s" || v.Confidence != "99.5%" || v.Inconclusive != "hold" || v.Holdback != "5%" || v.Traffic != "requests" {
		t.Errorf("/api/limits' judge settings: %+v", v)
	}
	if l := v.Limits[2]; l.Kind != "count" || l.Warmup != "30s" || !l.OwnWarmup || !l.DryRun || v.Limits[0].DryRun || v.Limits[0].OwnWarmup {
		t.Errorf("/api/limits' limits: %+v", v.Limits)
	}

	// With the defaults: one host of each type held back, no watch, no traffic gauge.
	f = newTestFleet(t, pageHosts, phpLimits, badOnWWW)
	_, page = get(t, serve(t, f)+"/limits")
	contains(t, "/limits by default", page, "warm-up <b>0s</b>", "watch after 100% <b>off</b>", "confidence <b>99%</b>",
		"inconclusive after max wait: <b>pass</b>", "held back as the control <b>1 host of each type</b>", "traffic gauge <b>none</b>")
}

func TestLimitsHoldbackText(t *testing.T) {
	for _, tt := range []struct {
		h            conf.HostShare
		config, text string
	}{
		{conf.HostShare{Value: 1}, "1", "1 host of each type"},
		{conf.HostShare{Value: 2}, "2", "2 hosts of each type"},
		{conf.HostShare{Value: 5, Percent: true}, "5%", "5% of each type"},
		{conf.HostShare{}, "0", "none"},
	} {
		if config, text := holdbackText(tt.h); config != tt.config || text != tt.text {
			t.Errorf("holdbackText(%+v) = %q, %q; want %q, %q", tt.h, config, text, tt.config, tt.text)
		}
	}
}

func TestPagesShowFleet(t *testing.T) {
	f := newPagesFleet(t)
	base := serve(t, f)
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
