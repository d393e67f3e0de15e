package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. The kernel
// reports them in USER_HZ, fixed at 100 in Linux's ABI whatever the kernel's
// own tick rate, and reading it via sysconf would need cgo.
const userHZ = 100

// server is a daemon under measurement, started in its own process group
// so that stop reaches whatever it forked as well.
type server struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startServer starts path with args, its output going to logPath, which
// is shown when the server fails.
func startServer(name, logPath, path string, args ...string) (*server, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	defer out.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig covers this program dying without running its defers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	s := &server{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// exited reports why the server is gone, with the end of its log, or nil
// while it runs.
func (s *server) exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v): %s", s.name, s.err, tail(s.log))
	default:
		return nil
	}
}

// stop ends the server: SIGTERM first so it can clean up, then SIGKILL to
// its whole process group if it lingers.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// waitListening waits until addr accepts connections, failing early if
// the server exits.
func (s *server) waitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		if err := s.exited(); err != nil {
			return err
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to listen on %s: %w: %s", s.name, addr, ctx.Err(), tail(s.log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(empty log)"
}

// procStat is the part of /proc/<pid>/stat this program reads.
type procStat struct {
	ppid int
	// self is utime+stime; children is cutime+cstime, the CPU of the
	// children the process has waited for.
	self, children time.Duration
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat reads a stat line. The command name in parentheses may hold
// spaces and parentheses itself, so fields are counted from the last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat %.40q: no ')'", line)
	}
	// After ')': state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime ...
	f := strings.Fields(line[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("parse /proc stat %.40q: %d fields", line, len(f))
	}
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("parse /proc stat field %d: %w", k+3, err)
		}
		n[j] = v
	}
	tick := time.Second / userHZ
	return procStat{
		ppid:     int(n[0]),
		self:     time.Duration(n[1]+n[2]) * tick,
		children: time.Duration(n[3]+n[4]) * tick,
	}, nil
}

// cpu is a process's CPU time including the children it reaped.
func cpu(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.self + st.children, nil
}

// rssBytes is the process's resident set (VmRSS) now.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("parse VmRSS of pid %d: %q", pid, line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS of pid %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// childrenOf lists the live and zombie processes whose parent is one of pids.
func childrenOf(pids ...int) ([]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var kids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone since the listing
		}
		for _, p := range pids {
			if st.ppid == p {
				kids = append(kids, pid)
			}
		}
	}
	return kids, nil
}

// freeAddr finds a free loopback port. It is closed again before the
// server binds it: a small race, acceptable for a benchmark on a quiet
// machine.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// subreaperMode is the first argument that makes benchtable a subreaper
// wrapper: runSubreaper instead of the tables.
const subreaperMode = "-subreaper"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// runSubreaper runs args[0] with args[1:] as a child subreaper: Debian's
// nrpe forks twice per connection so that the grandchild serving it is
// orphaned, and an orphan's CPU would otherwise go to init's account, not
// to any process this program can read. Here orphans land on this wrapper,
// which reaps them, so its cutime+cstime hold the whole work of the queries.
// It forwards SIGTERM and SIGINT to the child and returns its exit code once
// it exits.
func runSubreaper(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable -subreaper: no command")
		return 2
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "benchtable -subreaper: prctl(PR_SET_CHILD_SUBREAPER):", errno)
		return 1
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable -subreaper:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable -subreaper:", err)
		return 1
	}
	pid := p.Pid
	stopForwarding := make(chan struct{})
	defer close(stopForwarding)
	go func() {
		for {
			select {
			case s := <-sigs:
				syscall.Kill(pid, s.(syscall.Signal))
			case <-stopForwarding:
				return
			}
		}
	}()
	// Reap everything: p itself is reaped here too rather than by p.Wait,
	// since a wait for any child cannot skip one.
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			fmt.Fprintln(os.Stderr, "benchtable -subreaper: wait:", err)
			return 1
		case wpid == pid:
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}
