package rollback

import (
	"testing"
	"time"
)

// noisyModel is noisy as a Model: sample i is at t0 + i*step, counted
// from the first deploy; a host is a canary once it switched.
type noisyModel struct {
	noisy
	start time.Time // the first deploy
}

func (m noisyModel) Gauges(host string, at time.Time, on bool, switched time.Time, _ float64) (map[string]float64, bool) {
	i := int(at.Sub(m.start) / step)
	return m.gen(host, on, i), true
}

// TestSimulatePush: whole pushes on a virtual clock, baseline to watch.
func TestSimulatePush(t *testing.T) {
	fl := fleetOf(t, map[string]int{"www": 24, "db": 4}, demoLimits, "judge: {traffic: requests}\n")
	base := fl.Windows.Baseline.D()
	start := t0.Add(-base)
	t.Run("good", func(t *testing.T) {
		res := SimulatePush(fl, noisyModel{noisy{seed: 11}, t0}, start)
		if res.RolledBack || res.Phase != 2 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("gross harm", func(t *testing.T) {
		m := noisyModel{noisy{seed: 12, effect: func(g string, c bool, i int, x float64) float64 {
			if c && g == "php_errors" {
				return x + 40
			}
			return x
		}}, t0}
		res := SimulatePush(fl, m, start)
		if !res.RolledBack || res.Phase != 0 || res.RolledBackAt.Sub(res.Deployed) > 3*step {
			t.Fatalf("%+v (after %s)", res, res.RolledBackAt.Sub(res.Deployed))
		}
	})
}
