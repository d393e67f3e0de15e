package rollback

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/immune-ops/immune/fixtures/real"
)

// TestMetrics: after a rolled-back push the coordinator's /metrics says so
// in Prometheus's format, and Prometheus's own promtool accepts it.
func TestMetrics(t *testing.T) {
	promtool := real.Command(t, "promtool", "prometheus")
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, badOnWWW)
	f.c.Metrics = NewMetrics(f.c)
	base := serve(t, f)
	p, _ := f.c.Start("bad", sha, "ida")
	f.wait(t, p.ID)
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{
		`immune_pushes_total{outcome="rolled_back"} 1`,
		`immune_pushes_total{outcome="live"} 0`,
		"immune_commit_lock 1",
		"immune_commit_lock_since_timestamp_seconds ",
		"immune_hosts_unreachable 0",
		`immune_agent_call_duration_seconds_count{call="snapshot",result="ok"}`,
		`immune_agent_call_duration_seconds_count{call="rollback",result="ok"} 1`,
		"immune_verdict_duration_seconds_count ",
		"immune_store_up 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
