package checks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_memcached",
		Summary: "memcached answers a set/get/delete; connections, evictions per second, hit ratio",
		New:     newMemcached,
	})
}

const defaultMemcachedPort = 11211

type memcachedCheck struct {
	host               string
	port               int
	conns, evict, hits nagios.Thresholds
	stateFile          string
	timeout            *timeoutFlag
	now                func() time.Time // tests set it
}

func newMemcached(args []string) (Check, error) {
	f := newFlags("check_memcached", "[-H HOST] [-p PORT] [-t SECONDS] [--connections-warning RANGE] [--connections-critical RANGE]\n"+
		"  [--evictions-warning RANGE] [--evictions-critical RANGE] [--hit-ratio-warning RANGE] [--hit-ratio-critical RANGE]\n"+
		"  [--state-file PATH | --state-dir DIR]",
		"This plugin sets, gets and deletes a private key in memcached (any failure is CRITICAL), and reads\n"+
			"its stats: current connections, evictions per second and the get hit ratio (get_hits over all\n"+
			"gets, in percent, since memcached started). Evictions per second are measured since the last run,\n"+
			"kept in a state file; on the first run, or after memcached restarted, since memcached started.\n"+
			"memcached down or not answering within -t is CRITICAL.")
	host := f.StringP("hostname", "H", "127.0.0.1", "memcached host name, address or unix socket path")
	port := f.IntP("port", "p", defaultMemcachedPort, "memcached TCP port")
	ranges := map[string]*string{}
	for _, r := range []struct{ name, what string }{
		{"connections", "current connections are"},
		{"evictions", "evictions per second are"},
		{"hit-ratio", "the hit ratio in percent is"},
	} {
		ranges[r.name+"-warning"] = f.String(r.name+"-warning", "", "Exit with WARNING status if "+r.what+" outside RANGE")
		ranges[r.name+"-critical"] = f.String(r.name+"-critical", "", "Exit with CRITICAL status if "+r.what+" outside RANGE")
	}
	stateFile := f.String("state-file", "", "File that keeps the last run's eviction count (default: one per server in --state-dir)")
	stateDir := f.String("state-dir", "", "Directory of the state files (default: the user's cache directory/immune)")
	timeout := f.timeout(10, nagios.Critical)
	if err := f.parseNoArgs(args); err != nil {
		return nil, err
	}
	if err := checkHostPort(*host, *port); err != nil {
		return nil, f.fail(err)
	}
	c := &memcachedCheck{host: *host, port: *port, stateFile: *stateFile, timeout: timeout, now: time.Now}
	for _, th := range []struct {
		name string
		dst  *nagios.Thresholds
	}{{"connections", &c.conns}, {"evictions", &c.evict}, {"hit-ratio", &c.hits}} {
		var err error
		if *th.dst, err = thresholdFlags("--"+th.name, *ranges[th.name+"-warning"], *ranges[th.name+"-critical"]); err != nil {
			return nil, f.fail(err)
		}
	}
	if c.stateFile == "" {
		dir := *stateDir
		if dir == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				return nil, f.failf("no --state-file or --state-dir given, and no cache directory to keep state in: %v", err)
			}
			dir = filepath.Join(cache, "immune")
		}
		c.stateFile = filepath.Join(dir, memcachedStateName(c.host, c.port))
	}
	return c, nil
}

// thresholdFlags reads a pair of --NAME-warning/--NAME-critical ranges.
func thresholdFlags(prefix, warn, crit string) (nagios.Thresholds, error) {
	var t nagios.Thresholds
	for _, r := range []struct {
		flag, text string
		dst        **nagios.Range
	}{{prefix + "-warning", warn, &t.Warn}, {prefix + "-critical", crit, &t.Crit}} {
		if r.text == "" {
			continue
		}
		v, err := nagios.ParseRangeFlag(r.flag, r.text)
		if err != nil {
			return t, err
		}
		*r.dst = &v
	}
	return t, nil
}

// checkHostPort validates -H and -p of the memcached checks.
func checkHostPort(host string, port int) error {
	if strings.TrimSpace(host) == "" {
		return errors.New("-H/--hostname: empty host")
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("-p/--port %d: not a TCP port (1-65535)", port)
	}
	return nil
}

// memcachedStateName names the state file of one server, readable and
// safe as a file name.
func memcachedStateName(host string, port int) string {
	safe := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, host)
	return fmt.Sprintf("memcached-%s-%d.json", safe, port)
}

// Timeout is the -t option.
func (c *memcachedCheck) Timeout() time.Duration { return c.timeout.d }

// memcachedState is what the state file keeps between runs.
type memcachedState struct {
	Server string    `json:"server"`
	PID    int64     `json:"pid"`
	Uptime int64     `json:"uptime"`
	Evicts uint64    `json:"evictions"`
	Time   time.Time `json:"time"`
}

// Run reads the stats, makes the round trip and judges.
func (c *memcachedCheck) Run(ctx context.Context) nagios.Result {
	addr := memcachedAddr(c.host, c.port)
	stats, err := readStats(ctx, c.host, c.port)
	var took time.Duration
	if err == nil {
		took, err = roundTrip(ctx, c.host, c.port, c.timeout.d)
	}
	if err != nil {
		if timedOut(ctx) {
			return nagios.Resultf(c.timeout.state, "MEMCACHED %s - no answer from memcached at %s within %s seconds",
				c.timeout.state, addr, strconv.FormatFloat(c.timeout.d.Seconds(), 'f', -1, 64))
		}
		return nagios.Resultf(nagios.Critical, "MEMCACHED CRITICAL - %v", err)
	}
	now := c.now()
	m, err := measureMemcached(stats)
	if err != nil {
		return nagios.Resultf(nagios.Critical, "MEMCACHED CRITICAL - memcached at %s: %v", addr, err)
	}
	m.roundTrip = took
	note := c.evictionRate(&m, addr, now)
	return c.judge(m, note)
}

// memcachedMeasure is what check_memcached judges.
type memcachedMeasure struct {
	version      string
	pid, uptime  int64
	connections  float64
	evictions    uint64
	evictionRate float64
	rateSince    string // "since the last run" or "since start"
	hitRatio     float64
	gets         uint64 // get_hits + get_misses: no ratio without gets
	roundTrip    time.Duration
}

func measureMemcached(stats map[string]string) (memcachedMeasure, error) {
	var m memcachedMeasure
	var err error
	num := func(name string) uint64 {
		v, perr := strconv.ParseUint(stats[name], 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("stat %s %q is not a count", name, stats[name])
		}
		return v
	}
	m.version = stats["version"]
	m.pid, m.uptime = int64(num("pid")), int64(num("uptime"))
	m.connections = float64(num("curr_connections"))
	m.evictions = num("evictions")
	hits, misses := num("get_hits"), num("get_misses")
	m.gets = hits + misses
	if m.gets > 0 {
		m.hitRatio = 100 * float64(hits) / float64(m.gets)
	}
	return m, err
}

// evictionRate sets m's evictions per second: since the last run when the
// state file describes this same memcached process, else since it started.
// It returns a note for the long output when the state file could not be used.
func (c *memcachedCheck) evictionRate(m *memcachedMeasure, addr string, now time.Time) string {
	var notes []string
	var saved memcachedState
	found, err := loadState(c.stateFile, &saved)
	if err != nil {
		notes = append(notes, err.Error())
	}
	elapsed := now.Sub(saved.Time).Seconds()
	// A restart resets memcached's counters: a new pid, or an uptime or
	// eviction count that went back, is another process.
	sameProcess := found && err == nil && saved.Server == addr && saved.PID == m.pid &&
		saved.Uptime <= m.uptime && saved.Evicts <= m.evictions
	switch {
	case sameProcess && elapsed > 0:
		m.evictionRate = float64(m.evictions-saved.Evicts) / elapsed
		m.rateSince = "since the last run"
	case m.uptime > 0:
		m.evictionRate = float64(m.evictions) / float64(m.uptime)
		m.rateSince = "since start"
	default:
		m.rateSince = "since start"
	}
	next := memcachedState{Server: addr, PID: m.pid, Uptime: m.uptime, Evicts: m.evictions, Time: now}
	if err := saveState(c.stateFile, next); err != nil {
		notes = append(notes, err.Error())
	}
	return strings.Join(notes, "\n")
}

func (c *memcachedCheck) judge(m memcachedMeasure, note string) nagios.Result {
	states := []nagios.State{c.conns.State(m.connections), c.evict.State(m.evictionRate)}
	hitText := "no gets yet"
	hitPerf := nagios.Perf{Label: "hit_ratio", UOM: "%", Warn: c.hits.Warn, Crit: c.hits.Crit,
		Min: nagios.Float(0), Max: nagios.Float(100), Precision: 2}
	if m.gets > 0 {
		states = append(states, c.hits.State(m.hitRatio))
		hitText = fmt.Sprintf("hit ratio %.2f%%", m.hitRatio)
		hitPerf.Value = m.hitRatio
	} else {
		// Without gets there is no ratio to judge, nor to graph.
		hitPerf.Unknown = true
	}
	state := nagios.Worst(states...)
	return nagios.Result{
		State: state,
		Output: fmt.Sprintf("MEMCACHED %s - memcached %s: %.0f %s, %.2f evictions/s %s, %s, set/get/delete in %.3f ms",
			state, m.version, m.connections, connectionsWord(m.connections), m.evictionRate, m.rateSince, hitText,
			float64(m.roundTrip.Microseconds())/1000),
		Long: note,
		Perf: []nagios.Perf{
			{Label: "connections", Value: m.connections, Warn: c.conns.Warn, Crit: c.conns.Crit, Min: nagios.Float(0)},
			{Label: "evictions_per_second", Value: m.evictionRate, Warn: c.evict.Warn, Crit: c.evict.Crit, Min: nagios.Float(0), Precision: 2},
			hitPerf,
			{Label: "time", Value: m.roundTrip.Seconds(), UOM: "s", Min: nagios.Float(0), Precision: 6},
		},
	}
}

func connectionsWord(n float64) string {
	if n == 1 {
		return "connection"
	}
	return "connections"
}

// memcachedAddr is host:port, or the socket path, for messages.
func memcachedAddr(host string, port int) string {
	if isSocket(host) {
		return host
	}
	return net.JoinHostPort(unbracket(host), strconv.Itoa(port))
}

// Limits on what a stats answer may hold: memcached 1.6 sends about 90
// lines of under 100 bytes.
const (
	maxStatLines = 1000
	maxStatLine  = 4096
)

// readStats sends "stats" and reads the answer: gomemcache has no API for it.
func readStats(ctx context.Context, host string, port int) (map[string]string, error) {
	addr := memcachedAddr(host, port)
	raw, err := dialHost(ctx, "tcp", host, port)
	if err != nil {
		return nil, errors.New(connectFailure(host, port, err))
	}
	conn := bindConn(ctx, raw)
	defer conn.Close()
	// No deadline of our own: bindConn turns this into ctx's.
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("stats from memcached at %s: %w", addr, err)
	}
	if _, err := io.WriteString(conn, "stats\r\n"); err != nil {
		return nil, fmt.Errorf("send stats to memcached at %s: %w", addr, err)
	}
	stats, err := parseStats(bufio.NewReaderSize(conn, maxStatLine))
	if err != nil {
		return nil, fmt.Errorf("stats from memcached at %s: %w", addr, err)
	}
	return stats, nil
}

// parseStats reads the answer to "stats": "STAT name value" lines up to
// "END". An error line from the server, a line of another shape or an
// answer cut short is an error.
func parseStats(r *bufio.Reader) (map[string]string, error) {
	stats := map[string]string{}
	for n := 0; ; n++ {
		if n > maxStatLines {
			return nil, fmt.Errorf("more than %d lines of stats", maxStatLines)
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("stats line %d longer than %d bytes", n+1, maxStatLine)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read stats line %d: %w", n+1, err)
		}
		text := string(bytes.TrimRight(line, "\r\n"))
		if text == "END" {
			return stats, nil
		}
		rest, ok := strings.CutPrefix(text, "STAT ")
		if !ok {
			return nil, fmt.Errorf("unexpected stats line %q", truncateText(text, 80))
		}
		name, value, ok := strings.Cut(rest, " ")
		if !ok || name == "" {
			return nil, fmt.Errorf("stats line %q has no value", truncateText(text, 80))
		}
		stats[name] = value
	}
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// roundTrip sets, gets and deletes a key of its own, and returns how long
// the three took.
func roundTrip(ctx context.Context, host string, port int, timeout time.Duration) (time.Duration, error) {
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		return 0, fmt.Errorf("make a private key: %w", err)
	}
	key := "immune:check_memcached:" + hex.EncodeToString(token)
	value := []byte("round trip " + hex.EncodeToString(token))
	addr := memcachedAddr(host, port)
	mc := memcacheClient(ctx, host, port, timeout)
	defer mc.Close()
	start := time.Now()
	// A minute's expiry: a check killed before its delete leaves nothing behind for long.
	if err := mc.Set(&memcache.Item{Key: key, Value: value, Expiration: 60}); err != nil {
		return 0, fmt.Errorf("set %s on memcached at %s: %w", key, addr, err)
	}
	it, err := mc.Get(key)
	if err != nil {
		return 0, fmt.Errorf("get %s from memcached at %s: %w", key, addr, err)
	}
	if !bytes.Equal(it.Value, value) {
		return 0, fmt.Errorf("get %s from memcached at %s: got %q, set %q", key, addr, truncateText(string(it.Value), 40), value)
	}
	if err := mc.Delete(key); err != nil {
		return 0, fmt.Errorf("delete %s from memcached at %s: %w", key, addr, err)
	}
	return time.Since(start), nil
}

// memcacheClient returns a gomemcache client for one check run whose every
// connection ends with ctx. gomemcache takes no context: it sets a
// deadline of its own Timeout for each operation, which bindConn keeps
// within ctx's.
func memcacheClient(ctx context.Context, host string, port int, timeout time.Duration) *memcache.Client {
	server := oneServer{network: "tcp", address: memcachedAddr(host, port)}
	if isSocket(host) {
		server.network = "unix"
	}
	mc := memcache.NewFromSelector(server)
	mc.Timeout = timeout
	mc.DialContext = func(dctx context.Context, network, address string) (net.Conn, error) {
		dctx, cancel := context.WithCancel(dctx)
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		conn, err := dialHost(dctx, "tcp", host, port)
		if err != nil {
			return nil, &memcachedDialError{connectFailure(host, port, err)}
		}
		return bindConn(ctx, conn), nil
	}
	return mc
}

// memcachedDialError is a failure to connect, in the twins' words, so
// that callers can tell it from a failure of memcached itself.
type memcachedDialError struct{ text string }

func (e *memcachedDialError) Error() string { return e.text }

// oneServer is a gomemcache ServerSelector of one server, left unresolved:
// gomemcache's ServerList would look the name up without a context, and
// keep only one of its addresses, where the dialer tries them all.
type oneServer struct{ network, address string }

func (s oneServer) Network() string                     { return s.network }
func (s oneServer) String() string                      { return s.address }
func (s oneServer) PickServer(string) (net.Addr, error) { return s, nil }
func (s oneServer) Each(fn func(net.Addr) error) error  { return fn(s) }

// aLongTimeAgo is a deadline in the past: it makes blocked reads and
// writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// ctxConn is a connection that ends with a context: no deadline set on it
// passes the context's, and when the context ends, reads and writes in
// progress stop.
type ctxConn struct {
	net.Conn
	ctx  context.Context
	mu   sync.Mutex // orders deadline changes against the context ending
	stop func() bool
}

func bindConn(ctx context.Context, conn net.Conn) *ctxConn {
	c := &ctxConn{Conn: conn, ctx: ctx}
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		_ = c.Conn.SetDeadline(aLongTimeAgo)
	})
	return c
}

// bound is t, or ctx's deadline when that comes first (or t is zero: none).
func (c *ctxConn) bound(t time.Time) time.Time {
	if c.ctx.Err() != nil {
		return aLongTimeAgo
	}
	if dl, ok := c.ctx.Deadline(); ok && (t.IsZero() || dl.Before(t)) {
		return dl
	}
	return t
}

func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.bound(t))
}

func (c *ctxConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.bound(t))
}

func (c *ctxConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.bound(t))
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
