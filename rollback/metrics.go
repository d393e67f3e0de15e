package rollback

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is what the coordinator serves at /metrics for Prometheus: the
// pushes by outcome and the one running, the locks, the hosts that did not
// answer the last sample, and how long verdicts and agent calls take. The
// push counts are read from the store at each scrape, so they survive
// restarts and agree between coordinators sharing a store.
type Metrics struct {
	registry    *prometheus.Registry
	verdict     prometheus.Histogram
	agentCalls  *prometheus.HistogramVec
	unreachable atomic.Int64

	// ended counts pushes by final state: read from the store once, then
	// counted as pushes end here.
	endedOnce sync.Once
	mu        sync.Mutex
	ended     map[State]int
}

// NewMetrics registers the coordinator's metrics, reading pushes and locks
// from c's store when scraped.
func NewMetrics(c *Coordinator) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		verdict: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "immune_verdict_duration_seconds",
			Help:    "Time the judge takes for one look at a push's gauges.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		agentCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "immune_agent_call_duration_seconds",
			Help:    "Time of the coordinator's calls to agents, by call and result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"call", "result"}),
	}
	// Pushes that ended before this start are counted now, once; those
	// that end from now on as they do.
	m.loadEnded(c)
	m.registry.MustRegister(m.verdict, m.agentCalls, &storeCollector{c: c, m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// observeCall records an agent call that began at start; nil-safe.
func (m *Metrics) observeCall(call string, start time.Time, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.agentCalls.WithLabelValues(call, result).Observe(time.Since(start).Seconds())
}

// observeVerdict records how long a look took; nil-safe.
func (m *Metrics) observeVerdict(d time.Duration) {
	if m != nil {
		m.verdict.Observe(d.Seconds())
	}
}

// pushEnded counts a push that ended in state s; nil-safe.
func (m *Metrics) pushEnded(c *Coordinator, s State) {
	if m == nil {
		return
	}
	m.loadEnded(c)
	m.mu.Lock()
	m.ended[s]++
	m.mu.Unlock()
}

// loadEnded counts the pushes the store holds, once.
func (m *Metrics) loadEnded(c *Coordinator) {
	m.endedOnce.Do(func() {
		counts := map[State]int{StateLive: 0, StateRolledBack: 0, StateFailed: 0}
		if pushes, err := c.Store.Pushes(0); err == nil {
			for _, p := range pushes {
				if p.State.Done() {
					counts[p.State]++
				}
			}
		}
		m.mu.Lock()
		m.ended = counts
		m.mu.Unlock()
	})
}

// setUnreachable records how many hosts did not answer the last sample.
func (m *Metrics) setUnreachable(n int) {
	if m != nil {
		m.unreachable.Store(int64(n))
	}
}

var (
	pushesDesc = prometheus.NewDesc("immune_pushes_total",
		"Pushes that ended, by outcome (live, rolled_back, failed).", []string{"outcome"}, nil)
	runningDesc = prometheus.NewDesc("immune_push_running",
		"1 while a push runs, with its state and phase (from 1).", []string{"state", "phase"}, nil)
	commitLockDesc = prometheus.NewDesc("immune_commit_lock",
		"1 while pushes are blocked after a rollback, until someone runs immune unlock.", nil, nil)
	commitLockSinceDesc = prometheus.NewDesc("immune_commit_lock_since_timestamp_seconds",
		"When the commit lock was set (absent without one).", nil, nil)
	unreachableDesc = prometheus.NewDesc("immune_hosts_unreachable",
		"Hosts whose agent did not answer the last sample of a push.", nil, nil)
	storeUpDesc = prometheus.NewDesc("immune_store_up",
		"1 when the push store could be read for this scrape.", nil, nil)
)

// storeCollector reads pushes and locks from the store at each scrape.
type storeCollector struct {
	c *Coordinator
	m *Metrics
}

func (s *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pushesDesc, runningDesc, commitLockDesc, commitLockSinceDesc, unreachableDesc, storeUpDesc} {
		ch <- d
	}
}

func (s *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(unreachableDesc, prometheus.GaugeValue, float64(s.m.unreachable.Load()))
	s.m.loadEnded(s.c)
	s.m.mu.Lock()
	for state, n := range s.m.ended {
		ch <- prometheus.MustNewConstMetric(pushesDesc, prometheus.CounterValue, float64(n), string(state))
	}
	s.m.mu.Unlock()
	locks, err := s.c.Store.Locks()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	if locks.Push != "" {
		if p, err := s.c.Store.Push(locks.Push); err == nil && !p.State.Done() {
			ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, 1, string(p.State), strconv.Itoa(p.Phase+1))
		}
	}
	lock := 0.0
	if locks.Commit != nil {
		lock = 1
		ch <- prometheus.MustNewConstMetric(commitLockSinceDesc, prometheus.GaugeValue, float64(locks.Commit.Since.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(commitLockDesc, prometheus.GaugeValue, lock)
}
