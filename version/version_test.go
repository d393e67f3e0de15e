package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "1.2.3", "0123456789abcdef", "2026-12-05T06:00:00Z"
	want := "immune-agent 1.2.3 (commit 0123456789ab, built 2026-12-05T06:00:00Z, " + runtime.Version() + ")"
	if got := String("immune-agent"); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	Version, Commit, Date = "dev", "", ""
	if got := String("immune"); !strings.HasPrefix(got, "immune dev (commit ") {
		t.Errorf("unstamped: %q", got)
	}
}
