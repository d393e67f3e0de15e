// Package faults puts immune's real binaries on real networks that fail:
// each agent in a Linux network namespace of its own, joined to a bridge
// in the root namespace, whose link the tests cut, slow down or make lossy
// while a push runs. This file is the small library that makes and removes
// those networks with ip(8) and tc(8); the scenarios are the package's tests.
package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// nsPrefix starts the name of every namespace this package makes, and
// linkPrefix every link: immune-f-<pid>-<n> and imf<pid>..., so that the
// leftovers of a test that died can be told from a running one's.
const (
	nsPrefix   = "immune-f-"
	linkPrefix = "imf"
)

// Net is a bridge in the root namespace with an address in a /24 of its
// own, and the namespaces joined to it.
type Net struct {
	// Bridge is the bridge's name; Gateway its address, which processes in
	// the root namespace listen on to be reached from every namespace.
	Bridge  string
	Gateway string
	prefix  string // the /24's first three octets: "10.213.7"

	mu    sync.Mutex
	hosts []*Host
}

// Host is a namespace joined to the bridge by a veth pair.
type Host struct {
	// NS is the namespace's name; Addr its address on the bridge.
	NS   string
	Addr string
	// link is the veth's end in the root namespace.
	link string
	net  *Net
	slow *slowLink
}

var (
	counterMu sync.Mutex
	counter   int
)

// next numbers the namespaces and links this process makes.
func next() int {
	counterMu.Lock()
	defer counterMu.Unlock()
	counter++
	return counter
}

// run runs ip, tc or another command and returns its error with what it
// printed.
func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Supported reports why network namespaces cannot be made here, or nil:
// it makes one and removes it again.
func Supported(ctx context.Context) error {
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("ip(8) is not installed (iproute2): %w", err)
	}
	name := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	return run(ctx, "ip", "netns", "del", name)
}

// RemoveStale deletes the namespaces and links that processes of this
// package left behind when they died: those whose pid no longer runs.
func RemoveStale(ctx context.Context) error {
	var errs []error
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if pid, ok := stalePID(strings.TrimPrefix(e.Name(), nsPrefix), e.Name()); ok && pid != os.Getpid() {
			if err := run(ctx, "ip", "netns", "del", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, ifc := range ifaces {
		if !strings.HasPrefix(ifc.Name, linkPrefix) {
			continue
		}
		digits := strings.TrimPrefix(ifc.Name, linkPrefix)
		end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		if end <= 0 {
			continue
		}
		if pid, _ := strconv.Atoi(digits[:end]); pid != os.Getpid() && !alive(pid) {
			if err := run(ctx, "ip", "link", "del", ifc.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// stalePID reads the pid of a namespace named immune-f-<pid>-<n> and says
// whether that process is gone.
func stalePID(rest, name string) (int, bool) {
	if !strings.HasPrefix(name, nsPrefix) {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
	if err != nil {
		return 0, false
	}
	return pid, !alive(pid)
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// NewNet makes a bridge with the first free /24 of 10.213.0.0/16 ... 10.254.0.0/16
// that no link of this machine has an address in.
func NewNet(ctx context.Context) (*Net, error) {
	n := &Net{Bridge: fmt.Sprintf("%s%db%d", linkPrefix, os.Getpid(), next())}
	used, err := usedPrefixes()
	if err != nil {
		return nil, err
	}
	for i := 0; i < 42*256 && n.prefix == ""; i++ {
		// Start where this pid points, so that two test processes rarely race for one.
		k := (os.Getpid() + i) % (42 * 256)
		p := fmt.Sprintf("10.%d.%d", 213+k/256, k%256)
		if !used[p] {
			n.prefix = p
		}
	}
	if n.prefix == "" {
		return nil, errors.New("make test network: no free /24 in 10.213.0.0-10.254.255.0")
	}
	n.Gateway = n.prefix + ".1"
	if err := run(ctx, "ip", "link", "add", n.Bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"addr", "add", n.Gateway + "/24", "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// usedPrefixes are the /24s of the IPv4 addresses this machine's links have.
func usedPrefixes() (map[string]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil {
				used[fmt.Sprintf("%d.%d.%d", ip4[0], ip4[1], ip4[2])] = true
			}
		}
	}
	return used, nil
}

// AddHost makes a namespace with a veth whose other end is a port of the
// bridge, the address prefix.(10+i) and loopback up.
func (n *Net) AddHost(ctx context.Context) (*Host, error) {
	n.mu.Lock()
	i := len(n.hosts)
	n.mu.Unlock()
	if i >= 200 {
		return nil, errors.New("add host: a test network holds 200 hosts")
	}
	id := next()
	h := &Host{
		NS:   fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), id),
		Addr: fmt.Sprintf("%s.%d", n.prefix, 10+i),
		link: fmt.Sprintf("%s%dr%d", linkPrefix, os.Getpid(), id),
		net:  n,
	}
	if err := run(ctx, "ip", "netns", "add", h.NS); err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	steps := [][]string{
		{"ip", "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"ip", "link", "set", h.link, "master", n.Bridge},
		{"ip", "link", "set", h.link, "up"},
		{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("add host %s: %w", h.NS, err)
		}
	}
	return h, nil
}

// Command is name run with args inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Partition cuts the host off: its link's end at the bridge goes down, so
// every packet either way is dropped, and no side hears of it.
func (h *Host) Partition(ctx context.Context) error {
	return run(ctx, "ip", "link", "set", h.link, "down")
}

// Heal brings the link back.
func (h *Host) Heal(ctx context.Context) error {
	return run(ctx, "ip", "link", "set", h.link, "up")
}

// Blackhole drops, inside the host, every packet it sends to addr: the
// host is partitioned from that one address and still reaches the rest.
func (h *Host) Blackhole(ctx context.Context, addr string) error {
	return run(ctx, "ip", "-n", h.NS, "route", "add", "blackhole", addr+"/32")
}

// Unblackhole removes what Blackhole added.
func (h *Host) Unblackhole(ctx context.Context, addr string) error {
	return run(ctx, "ip", "-n", h.NS, "route", "del", "blackhole", addr+"/32")
}

// Slow makes the host's link slow and lossy both ways: each packet delayed
// by delay and dropped with probability loss. It uses tc's netem when the
// kernel has it, and says so; else a link in user space (slowlink.go).
func (h *Host) Slow(ctx context.Context, delay time.Duration, loss float64) (string, error) {
	spec := []string{"netem", "delay", fmt.Sprintf("%dms", delay.Milliseconds()), "loss", fmt.Sprintf("%g%%", 100*loss)}
	err := run(ctx, "tc", append([]string{"qdisc", "add", "dev", h.link, "root"}, spec...)...)
	if err == nil {
		if err := run(ctx, "ip", append([]string{"netns", "exec", h.NS, "tc", "qdisc", "add", "dev", "eth0", "root"}, spec...)...); err != nil {
			return "", err
		}
		return "tc netem", nil
	}
	if !strings.Contains(err.Error(), "unknown") {
		return "", err
	}
	// This kernel has no sch_netem: the host's end is taken off the bridge
	// and a second veth pair put in its place, and packets are carried
	// between the two by a process that delays and drops them.
	if h.slow != nil {
		return "", fmt.Errorf("slow %s: it is slow already", h.NS)
	}
	id := next()
	a, b := fmt.Sprintf("%s%ds%d", linkPrefix, os.Getpid(), id), fmt.Sprintf("%s%dt%d", linkPrefix, os.Getpid(), id)
	for _, s := range [][]string{
		{"link", "add", a, "type", "veth", "peer", "name", b},
		{"link", "set", h.link, "nomaster"},
		{"link", "set", a, "master", h.net.Bridge},
		{"link", "set", a, "up"},
		{"link", "set", b, "up"},
		{"link", "set", b, "promisc", "on"},
		{"link", "set", h.link, "promisc", "on"},
	} {
		if err := run(ctx, "ip", s...); err != nil {
			return "", fmt.Errorf("slow %s: %w", h.NS, err)
		}
	}
	sl, err := startSlowLink(h.link, b, delay, loss)
	if err != nil {
		return "", fmt.Errorf("slow %s: %w", h.NS, err)
	}
	h.slow = sl
	sl.links = []string{a}
	return "a link in user space (this kernel has no sch_netem for tc netem)", nil
}

// Close stops the slow links, deletes the namespaces (their veth pairs go
// with them) and the bridge. It may be called more than once.
func (n *Net) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		if h.slow != nil {
			h.slow.stop()
			for _, l := range h.slow.links {
				if err := run(ctx, "ip", "link", "del", l); err != nil {
					errs = append(errs, err)
				}
			}
		}
		// The pair goes now, even while a socket of the namespace's last
		// connections keeps the namespace itself alive for a while.
		if err := run(ctx, "ip", "link", "del", h.link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
		if err := run(ctx, "ip", "netns", "del", h.NS); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Bridge != "" {
		if err := run(ctx, "ip", "link", "del", n.Bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
		n.Bridge = ""
	}
	return errors.Join(errs...)
}
