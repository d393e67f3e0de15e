package rollback

import (
	"math"
	"sync"
	"time"
)

// History is every host's samples during a push, in memory: the judge
// reads each host's recent readings from it at every look. It keeps what
// the judge can still use and forgets the rest.
type History struct {
	mu    sync.Mutex
	keep  time.Duration
	hosts map[string][]Sample
}

// NewHistory keeps samples for keep (at least the baseline, observe and
// max_wait windows, so that every window the judge reads is whole).
func NewHistory(keep time.Duration) *History {
	return &History{keep: keep, hosts: map[string][]Sample{}}
}

// Add records a sample of a host, and forgets what is older than keep.
func (h *History) Add(host string, s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := append(h.hosts[host], s)
	cut := 0
	for cut < len(ss) && s.At.Sub(ss[cut].At) > h.keep {
		cut++
	}
	if cut > 0 {
		ss = append(ss[:0:0], ss[cut:]...)
	}
	h.hosts[host] = ss
}

// Window is a host's samples taken in [from, to).
func (h *History) Window(host string, from, to time.Time) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Sample
	for _, s := range h.hosts[host] {
		if !s.At.Before(from) && s.At.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// Summary is what the judge keeps of one gauge on one host over a window:
// enough for means, counts and whether the gauge was already moving.
type Summary struct {
	// N is how many samples had the gauge.
	N int `json:"n"`
	// Sum is their sum; Traffic the sum of the traffic gauge over the same
	// samples (0 when none is configured or read).
	Sum     float64 `json:"sum"`
	SumSq   float64 `json:"sum_sq"`
	Traffic float64 `json:"traffic,omitempty"`
	// Early and Late are the means of the window's first and second half,
	// NaN-free: equal to the mean when a half is empty.
	Early float64 `json:"early"`
	Late  float64 `json:"late"`
	// Whole is false when a reading was not a whole number.
	Whole bool `json:"whole"`
}

// Mean is the mean reading over the window.
func (s Summary) Mean() float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return s.Sum / float64(s.N)
}

// Var is the sample variance of the readings, NaN under two.
func (s Summary) Var() float64 {
	if s.N < 2 {
		return math.NaN()
	}
	m := s.Mean()
	return math.Max(0, (s.SumSq-float64(s.N)*m*m)/float64(s.N-1))
}

// Summarize sums gauge over samples; traffic names the traffic gauge, or "".
func Summarize(samples []Sample, gauge, traffic string) Summary {
	s := Summary{Whole: true}
	var xs []float64
	for _, smp := range samples {
		x, ok := smp.Gauges[gauge]
		if !ok || math.IsNaN(x) {
			continue
		}
		xs = append(xs, x)
		s.N++
		s.Sum += x
		s.SumSq += x * x
		if x != math.Trunc(x) || x < 0 {
			s.Whole = false
		}
		if traffic != "" {
			s.Traffic += smp.Gauges[traffic]
		}
	}
	if s.N == 0 {
		return s
	}
	half := len(xs) / 2
	s.Early, s.Late = s.Mean(), s.Mean()
	if half > 0 {
		s.Early = meanOf(xs[:half])
		s.Late = meanOf(xs[half:])
	}
	return s
}

func meanOf(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
