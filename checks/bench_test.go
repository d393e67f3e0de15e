package checks

import (
	"context"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// The benchmarks run each check as the agent does: one check object, built
// once, run again and again through Run. Compare their CPU time with
// `go run ./cmd/benchtable`, which also runs the C plugins.

// benchCheck runs the check named name with args, reporting CPU time per
// run beside ns/op.
func benchCheck(b *testing.B, name string, args ...string) {
	b.Helper()
	spec, ok := Lookup(name)
	if !ok {
		b.Fatalf("no check %s", name)
	}
	c, err := spec.New(args)
	if err != nil {
		b.Fatalf("%s %q: %v", name, args, err)
	}
	ctx := context.Background()
	if r := Run(ctx, name, c); r.State == nagios.Unknown {
		b.Fatalf("%s %q: %s", name, args, r)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		Run(ctx, name, c)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time this process has used, user and system: what a
// check costs the host it watches, where ns/op is only the time it took.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkCheckLoad(b *testing.B) {
	benchCheck(b, "check_load", "-w", "5,4,3", "-c", "10,8,6")
}

func BenchmarkCheckDisk(b *testing.B) {
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"path", []string{"-w", "10%", "-c", "5%", "-p", "/"}},
		{"all", []string{"-w", "10%", "-c", "5%"}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchCheck(b, "check_disk", bc.args...) })
	}
}

func BenchmarkCheckProcs(b *testing.B) {
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"all", []string{"-w", "500", "-c", "1000"}},
		{"all by pid", []string{"-w", "500", "-c", "1000", "-T"}},
		{"command", []string{"-w", "500", "-c", "1000", "-C", "bash"}},
		{"args", []string{"-w", "500", "-c", "1000", "-a", "sleep"}},
		{"user", []string{"-w", "500", "-c", "1000", "-u", me.Uid}},
		{"state", []string{"-w", "500", "-c", "1000", "-s", "Z"}},
		{"rss metric", []string{"-m", "RSS", "-w", "1000000", "-C", "bash"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchCheck(b, procsName, bc.args...)
			// The cost grows with the processes there are.
			if pids, err := os.ReadDir("/proc"); err == nil {
				n := 0
				for _, e := range pids {
					if _, err := strconv.Atoi(e.Name()); err == nil {
						n++
					}
				}
				b.ReportMetric(float64(n), "procs")
			}
		})
	}
}
