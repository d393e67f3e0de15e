package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/agentapi"
)

// Issue 3's footprint targets for an agent running 50 checks.
const (
	footprintChecks   = 50
	footprintInterval = 10 * time.Second
	targetRSS         = 30_000_000 // 30 MB, read strictly: decimal megabytes
	targetCPUPercent  = 1.0
)

// footprintCheck is one entry of the agent config the footprint run uses.
type footprintCheck struct {
	name, builtin, plugin string
	args                  []string
}

// agentFootprint is issue 3's second table: the memory and CPU of an agent
// running 50 checks every 10 s, after a warm-up, over window.
func agentFootprint(ctx context.Context, w io.Writer, bin, ref string, warmup, window time.Duration) error {
	dir, err := os.MkdirTemp("", "benchtable-agent-")
	if err != nil {
		return fmt.Errorf("footprint bench: %w", err)
	}
	defer os.RemoveAll(dir)

	tcpAddr, stopTCP, err := serveTCP()
	if err != nil {
		return err
	}
	defer stopTCP()
	list, err := footprintMix(dir, ref, tcpAddr)
	if err != nil {
		return err
	}
	nrpeAddr, err := freeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(footprintConfig(dir, list, nrpeAddr, httpAddr)), 0o644); err != nil {
		return fmt.Errorf("write agent config: %w", err)
	}
	srv, err := startServer("immune agent", filepath.Join(dir, "agent.log"), filepath.Join(bin, "immune"), "agent", "--config", path)
	if err != nil {
		return fmt.Errorf("%w (make build first)", err)
	}
	defer srv.stop()
	if err := srv.waitListening(ctx, httpAddr); err != nil {
		return err
	}
	pid := srv.cmd.Process.Pid

	if err := sleep(ctx, warmup); err != nil {
		return err
	}
	cpu0, err := cpu(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	var maxRSS, endRSS int64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < window {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := srv.exited(); err != nil {
			return err
		}
		if endRSS, err = rssBytes(pid); err != nil {
			return err
		}
		maxRSS = max(maxRSS, endRSS)
	}
	cpu1, err := cpu(pid)
	if err != nil {
		return err
	}
	wall := time.Since(start)
	pct := 100 * float64(cpu1-cpu0) / float64(wall)
	states, err := agentStates(ctx, httpAddr, filepath.Join(dir, "data", "api.token"))
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\nAgent footprint: %d checks every %s (%s), %s warm-up, measured over %s\n\n",
		len(list), footprintInterval, mixSummary(list), warmup, wall.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tmeasured\ttarget\tmet?\t")
	fmt.Fprintf(tw, "RSS, max\t%s\t< %s\t%s\t\n", mb(maxRSS), mb(targetRSS), yesNo(maxRSS < targetRSS))
	fmt.Fprintf(tw, "RSS, at end\t%s\t< %s\t%s\t\n", mb(endRSS), mb(targetRSS), yesNo(endRSS < targetRSS))
	fmt.Fprintf(tw, "CPU, %% of one core (with plugins)\t%.2f%%\t< %.0f%%\t%s\t\n", pct, targetCPUPercent, yesNo(pct < targetCPUPercent))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "check states at the end: %s\n", states)
	return nil
}

// footprintMix is a web host's mix of 50 checks: immune's built-in checks
// with the arguments a host would give them, and external plugins forked
// per run. Thresholds are loose so every check stays OK: a problem would
// put it on the shorter retry interval and change what is measured.
func footprintMix(dir, ref, tcpAddr string) ([]footprintCheck, error) {
	phpLog := filepath.Join(dir, "php_error.log")
	if err := writePHPLog(phpLog, time.Now()); err != nil {
		return nil, err
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	for i := range 20 {
		name := filepath.Join(logDir, fmt.Sprintf("app%02d.log", i))
		if err := os.WriteFile(name, []byte(strings.Repeat("GET /index.php 200\n", 50*(i+1))), 0o644); err != nil {
			return nil, fmt.Errorf("write log: %w", err)
		}
	}
	host, port, err := net.SplitHostPort(tcpAddr)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", tcpAddr, err)
	}
	var list []footprintCheck
	add := func(n int, prefix, builtin, plugin string, args func(i int) []string) {
		for i := range n {
			list = append(list, footprintCheck{fmt.Sprintf("%s_%d", prefix, i+1), builtin, plugin, args(i)})
		}
	}
	add(2, "load", "check_load", "", func(i int) []string {
		return []string{"-w", fmt.Sprintf("%d,%d,%d", 50+i, 40+i, 30+i), "-c", "100,90,80"}
	})
	add(4, "disk", "check_disk", "", func(i int) []string {
		return []string{"-w", "2%", "-c", "1%", "-W", fmt.Sprintf("%d%%", 2+i), "-K", "1%", "-p", "/"}
	})
	add(6, "procs", "check_procs", "", func(i int) []string {
		return [][]string{
			{"-w", "5000", "-c", "10000"},
			{"-s", "Z", "-w", "100000", "-c", "200000"},
			{"-C", "nginx", "-w", "0:500", "-c", "0:1000"},
			{"-m", "RSS", "-w", "4000000", "-c", "8000000"},
			{"-u", "root", "-w", "5000", "-c", "10000"},
			{"-k", "-w", "5000", "-c", "10000"},
		}[i]
	})
	add(8, "tcp", "check_tcp", "", func(i int) []string {
		return []string{"-H", host, "-p", port, "-w", "2", "-c", "5", "-t", "5"}
	})
	add(5, "php_fatals", "check_php_fatals", "", func(i int) []string {
		return []string{"-l", phpLog, "-i", fmt.Sprint(600 * (i + 1)), "-w", "1000", "-c", "2000"}
	})
	add(5, "log_size", "check_log_size", "", func(i int) []string {
		return []string{"-d", logDir, "--glob", "*.log", "-w", fmt.Sprintf("%dM", 10+i), "-c", "100M"}
	})
	add(footprintChecks-len(list), "dummy", "", filepath.Join(ref, "check_dummy"), func(i int) []string {
		return []string{"0", fmt.Sprintf("service %d is fine", i+1)}
	})
	return list, nil
}

// writePHPLog makes a PHP error log with an hour of entries up to now,
// one fatal error in ten, with the stack traces PHP writes after them.
func writePHPLog(path string, now time.Time) error {
	var b strings.Builder
	for i := 360; i > 0; i-- {
		at := now.Add(-time.Duration(i) * 10 * time.Second).UTC().Format("02-Jan-2006 15:04:05 MST")
		if i%10 == 0 {
			fmt.Fprintf(&b, "[%s] PHP Fatal error:  Uncaught Error: Call to undefined function f%d() in /var/www/html/x.php:12\nStack trace:\n#0 {main}\n  thrown in /var/www/html/x.php on line 12\n", at, i)
			continue
		}
		fmt.Fprintf(&b, "[%s] PHP Warning:  Undefined variable $user in /var/www/html/profile.php on line %d\n", at, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write php log: %w", err)
	}
	return nil
}

func footprintConfig(dir string, list []footprintCheck, nrpeAddr, httpAddr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host: bench\nhost_type: www\ndata_dir: %q\nchecks:\n", filepath.Join(dir, "data"))
	for _, c := range list {
		fmt.Fprintf(&b, "  - name: %s\n", c.name)
		if c.builtin != "" {
			fmt.Fprintf(&b, "    builtin: %s\n", c.builtin)
		} else {
			fmt.Fprintf(&b, "    plugin: %q\n", c.plugin)
		}
		fmt.Fprintf(&b, "    args: [%s]\n    interval: %s\n", quoteList(c.args), footprintInterval)
	}
	fmt.Fprintf(&b, "nrpe:\n  listen: %q\n  allowed_hosts: [127.0.0.1]\nhttp:\n  listen: %q\n", nrpeAddr, httpAddr)
	return b.String()
}

// serveTCP accepts and closes connections on a loopback port for the
// check_tcp checks, until the returned stop is called.
func serveTCP() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for check_tcp: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by stop
			}
			c.Close()
		}
	}()
	return l.Addr().String(), func() { l.Close(); <-done }, nil
}

// agentStates asks the agent's API how its checks stand, so a run whose
// checks failed to run is seen for what it is.
func agentStates(ctx context.Context, addr, tokenFile string) (string, error) {
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("read agent API token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+agentapi.ChecksPath, nil)
	if err != nil {
		return "", fmt.Errorf("ask agent for its checks: %w", err)
	}
	agentapi.SetToken(req, strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask agent for its checks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ask agent for its checks: %s", resp.Status)
	}
	var reply agentapi.Checks
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return "", fmt.Errorf("read agent's checks: %w", err)
	}
	count := map[string]int{}
	var problems []string
	for _, st := range reply.Checks {
		if !st.Checked() {
			count["never run"]++
			continue
		}
		count[st.State.String()]++
		if st.State.String() != "OK" {
			problems = append(problems, fmt.Sprintf("%s: %s", st.Name, st.Output))
		}
	}
	var parts []string
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	out := strings.Join(parts, ", ")
	if len(problems) > 0 {
		out += "\n  " + strings.Join(problems, "\n  ")
	}
	return out, nil
}

func mixSummary(list []footprintCheck) string {
	var order []string
	count := map[string]int{}
	for _, c := range list {
		k := c.builtin
		if k == "" {
			k = filepath.Base(c.plugin) + " (external)"
		}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	return strings.Join(parts, ", ")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}
