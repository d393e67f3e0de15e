package rollback

import (
	"fmt"
	"io"
	"time"
)

// Progress returns a function that, handed a push each time it is read,
// writes its progress to w as it comes: each event with the phase and the
// hosts that run the revision, and, after the event that follows a phase's
// verdict, the gauges that breached. It reports whether the push is done.
// immune push --wait, the demo and the end-to-end tests print with it.
func Progress(w io.Writer) func(*Push) bool {
	seen := 0
	judged := map[int]bool{}
	breaches := func(p *Push, upTo time.Time) {
		for i, ph := range p.Phases {
			if ph.Verdict == nil || judged[i] || ph.Observed.After(upTo) {
				continue
			}
			judged[i] = true
			for _, r := range ph.Verdict.Readings {
				if r.Breached {
					fmt.Fprintf(w, "          breaching: %s\n", r.Why)
				}
			}
		}
	}
	return func(p *Push) bool {
		total := 0
		if n := len(p.Phases); n > 0 {
			total = len(p.Phases[n-1].Hosts)
		}
		for _, e := range p.Events[min(seen, len(p.Events)):] {
			fmt.Fprintf(w, "%s  [phase %d/%d, %d/%d hosts] %s\n", e.At.Local().Format("15:04:05"),
				p.Phase+1, len(p.Phases), p.HostsDone(), total, e.Msg)
			breaches(p, e.At)
		}
		seen = len(p.Events)
		breaches(p, time.Now())
		return p.State.Done()
	}
}
