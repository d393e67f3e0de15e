package checks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func TestParseDiskLimit(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		in      string
		want    nagios.Range
		percent bool
		wantErr bool
	}{
		{"20%", nagios.Range{Start: 0, End: 20, Inside: true}, true, false},
		{"100", nagios.Range{Start: 0, End: 100, Inside: true}, false, false},
		{"@20%", nagios.Range{Start: 0, End: 20, Inside: true}, true, false},
		{"10.5%", nagios.Range{Start: 0, End: 10.5, Inside: true}, true, false},
		{"80:90%", nagios.Range{Start: 80, End: 90, Inside: true}, true, false},
		{"80%:90%", nagios.Range{Start: 80, End: 90, Inside: true}, true, false},
		{"20:", nagios.Range{Start: 20, End: inf, Inside: true}, false, false},
		{"20%:", nagios.Range{Start: 20, End: inf, Inside: true}, true, false},
		{"0", nagios.Range{Start: 0, End: 0, Inside: true}, false, false},
		{"", nagios.Range{}, false, true},
		{"abc", nagios.Range{}, false, true},
		{"2%0", nagios.Range{}, false, true},
		{"10:5%", nagios.Range{}, false, true},
		{"-10%", nagios.Range{}, false, true},
		{"@@20", nagios.Range{}, false, true},
		{"~:20", nagios.Range{}, false, true},
	}
	for _, tt := range tests {
		got, percent, err := parseDiskLimit(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && (got != tt.want || percent != tt.percent) {
			t.Errorf("parseDiskLimit(%q) = %+v, %v, %v; want %+v, %v, err %v", tt.in, got, percent, err, tt.want, tt.percent, tt.wantErr)
		}
	}
}

func TestDiskPercent(t *testing.T) {
	tests := []struct {
		value, total uint64
		want         float64
	}{
		{0, 100, 0},
		{60, 95, 64}, // rounded up, as df does
		{90, 100, 90},
		{1, 1 << 40, 1},
		{5, 0, -1},
		{math.MaxUint64 / 2, math.MaxUint64, 50},
		{math.MaxUint64, math.MaxUint64, 100},
		{math.MaxUint64, 1, 1844674407370955161600}, // never happens; must not panic
	}
	for _, tt := range tests {
		if got := diskPercent(tt.value, tt.total); got != tt.want {
			t.Errorf("diskPercent(%d, %d) = %v, want %v", tt.value, tt.total, got, tt.want)
		}
	}
}

const gib = 1 << 30

// fakeDisks is a machine with fixed mounts and usage, and the paths that
// stat finds; gone are more mounts that stat cannot reach, locked more
// mounts (with a directory "sub") whose statfs fails.
func fakeDisks(gone, locked []diskMount) diskEnv {
	mounts := []diskMount{
		{"/dev/sda1", "/", "ext4"},
		{"proc", "/proc", "proc"},
		{"tmpfs", "/run", "tmpfs"},
		{"/dev/sdb1", "/var", "xfs"},
		{"fileserver:/export", "/mnt/nfs", "nfs"},
		{"/dev/sdc1", "/data", "btrfs"},
		{"/dev/sr0", "/media/cdrom", "iso9660"},
	}
	usage := map[string]diskUsage{
		"/":            {Total: 100 * gib, Free: 40 * gib, Avail: 35 * gib, Files: 1000, FilesFree: 900},
		"/proc":        {},
		"/run":         {Total: gib, Free: gib - 10<<20, Avail: gib - 10<<20, Files: 500, FilesFree: 499},
		"/var":         {Total: 50 * gib, Free: 5 * gib, Avail: 5 * gib, Files: 100, FilesFree: 1},
		"/mnt/nfs":     {Total: 10 * gib, Free: 9 * gib, Avail: 9 * gib, Files: 1000, FilesFree: 1000},
		"/data":        {Total: 20 * gib, Free: 10 * gib, Avail: 10 * gib},
		"/media/cdrom": {Total: gib, Files: 10},
	}
	exists := map[string]bool{"/var/log": true, "/varx": true, "/usr": true}
	for _, m := range mounts {
		exists[m.Dir], exists[m.Device] = true, true
	}
	for _, m := range locked {
		exists[m.Dir], exists[m.Dir+"/sub"] = true, true
	}
	mounts = append(append(mounts, gone...), locked...)
	return diskEnv{
		mounts: func(context.Context) ([]diskMount, error) { return append([]diskMount(nil), mounts...), nil },
		usage: func(_ context.Context, dir string, _ bool) (diskUsage, error) {
			u, ok := usage[dir]
			if !ok {
				return u, fmt.Errorf("statfs %s: %w", dir, syscall.EACCES)
			}
			return u, nil
		},
		stat: func(_ context.Context, path string, _ bool) error {
			if !exists[path] {
				return &os.PathError{Op: "stat", Path: path, Err: syscall.ENOENT}
			}
			return nil
		},
	}
}

func runFakeDisk(t *testing.T, ctx context.Context, env diskEnv, args ...string) nagios.Result {
	t.Helper()
	c, err := newDisk(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	c.(*diskCheck).env = env
	return Run(ctx, "check_disk", c)
}

func TestDiskFixed(t *testing.T) {
	const (
		root   = "/=64424509440B;85899345920;96636764160;0;107374182400"
		rootOK = " / 35840MiB (36% inode=90%);"
		run    = " /run 1014MiB (99% inode=99%);"
		varOut = " /var 5120MiB (10% inode=1%);"
		nfs    = " /mnt/nfs 9216MiB (90% inode=100%);"
		data   = " /data 10240MiB (50% inode=-);"
	)
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"one path", []string{"-w", "20%", "-c", "10%", "-p", "/"}, nagios.OK,
			"DISK OK - free space:" + rootOK + "|" + root + "\n"},
		{"all mounts, skipping empty and iso9660 ones", []string{"-w", "20%", "-c", "10%"}, nagios.Critical,
			"DISK CRITICAL - free space:" + rootOK + run + varOut + nfs + data + "|" + root +
				" /run=10485760B;858993459;966367641;0;1073741824" +
				" /var=48318382080B;42949672960;48318382080;0;53687091200" +
				" /mnt/nfs=1073741824B;8589934592;9663676416;0;10737418240" +
				" /data=10737418240B;17179869184;19327352832;0;21474836480\n"},
		{"thresholds apply to the paths after them", []string{"-w", "50%", "-c", "40%", "-p", "/", "-w", "10%", "-c", "5%", "-p", "/var"}, nagios.Critical,
			"DISK CRITICAL - free space:" + rootOK + varOut +
				"|/=64424509440B;53687091200;64424509440;0;107374182400 /var=48318382080B;48318382080;51002736640;0;53687091200\n"},
		{"free units", []string{"-w", "40000", "-c", "30000", "-p", "/"}, nagios.Warning,
			"DISK WARNING - free space:" + rootOK + "|/=64424509440B;65431142400;75916902400;0;107374182400\n"},
		{"units and percent together: the lower used-space line", []string{"-w", "40000", "-w", "20%", "-c", "10%", "-p", "/"}, nagios.Warning,
			"DISK WARNING - free space:" + rootOK + "|/=64424509440B;65431142400;96636764160;0;107374182400\n"},
		{"inodes", []string{"-W", "20%", "-K", "5%", "-p", "/var"}, nagios.Critical,
			"DISK CRITICAL - free space:" + varOut + "|/var=48318382080B;;;0;53687091200\n"},
		{"inode perfdata", []string{"-w", "20%", "-c", "10%", "-W", "20%", "-K", "5", "-P", "-p", "/"}, nagios.OK,
			"DISK OK - free space:" + rootOK + "|" + root + " '/ (inodes)'=100;800;950;0;1000\n"},
		{"errors only", []string{"-w", "20%", "-c", "10%", "-e", "-p", "/", "-p", "/var"}, nagios.Critical,
			"DISK CRITICAL - free space:" + varOut + "|" + root + " /var=48318382080B;42949672960;48318382080;0;53687091200\n"},
		{"errors only, all fine", []string{"-w", "20%", "-c", "10%", "-e", "-p", "/"}, nagios.OK,
			"DISK OK|" + root + "\n"},
		{"verbose marks the paths in alert", []string{"-w", "40%", "-c", "10%", "-v", "-p", "/", "-p", "/run", "-p", "/data"}, nagios.Warning,
			"DISK WARNING - free space: WARNING [ / 35840MiB (36% inode=90%)];" + run + data +
				"|/=64424509440B;64424509440;96636764160;0;107374182400 /run=10485760B;644245094;966367641;0;1073741824 /data=10737418240B;12884901888;19327352832;0;21474836480\n"},
		{"no inode count closes a bracket it never opened", []string{"-w", "60%", "-c", "10%", "-p", "/data"}, nagios.Warning,
			"DISK WARNING - free space: /data 10240MiB (50% inode=-)];|/data=10737418240B;8589934592;19327352832;0;21474836480\n"},
		{"device instead of mount point", []string{"-w", "20%", "-c", "10%", "-M", "-p", "/"}, nagios.OK,
			"DISK OK - free space: /dev/sda1 35840MiB (36% inode=90%);|/dev/sda1" + strings.TrimPrefix(root, "/") + "\n"},
		{"path by device, and a directory inside a mount", []string{"-w", "20%", "-c", "10%", "-p", "/dev/sdb1", "-p", "/var/log", "-p", "/usr"}, nagios.Critical,
			"DISK CRITICAL - free space:" + varOut + rootOK + "|/var=48318382080B;42949672960;48318382080;0;53687091200 " + root + "\n"},
		{"mount points match as byte prefixes, as in check_disk", []string{"-w", "20%", "-c", "10%", "-p", "/varx"}, nagios.Critical,
			"DISK CRITICAL - free space:" + varOut + "|/var=48318382080B;42949672960;48318382080;0;53687091200\n"},
		{"exact match", []string{"-w", "20%", "-c", "10%", "-E", "-p", "/var/log"}, nagios.Critical,
			"DISK CRITICAL: /var/log not found\n"},
		{"not accessible", []string{"-w", "20%", "-c", "10%", "-p", "/nonexistent"}, nagios.Critical,
			"DISK CRITICAL - /nonexistent is not accessible: No such file or directory\n"},
		{"group", []string{"-w", "20%", "-c", "10%", "-g", "sys", "-p", "/", "-p", "/var"}, nagios.OK,
			"DISK OK - free space: sys 40960MiB (27% inode=81%);|sys=112742891520B;128849018880;144955146240;0;161061273600\n"},
		{"clear: the rest keep the first thresholds", []string{"-w", "20%", "-c", "10%", "-C", "-w", "5%", "-c", "1%", "-p", "/var", "-X", "nfs", "-x", "/dev/sdc1"}, nagios.OK,
			"DISK OK - free space:" + rootOK + run + varOut +
				"|" + root + " /run=10485760B;858993459;966367641;0;1073741824 /var=48318382080B;51002736640;53150220288;0;53687091200\n"},
		// With no path selected after -C, every mount is, with no thresholds:
		// the path selected before loses its own, as in check_disk.
		{"clear after a path", []string{"-w", "50%", "-c", "40%", "-p", "/", "-C", "-N", "ext4", "-N", "xfs"}, nagios.OK,
			"DISK OK - free space:" + rootOK + varOut + "|/=64424509440B;;;0;107374182400 /var=48318382080B;;;0;53687091200\n"},
		{"local only", []string{"-w", "20%", "-c", "10%", "-l", "-r", "^/mnt/nfs$", "-p", "/run"}, nagios.OK,
			"DISK OK - free space:" + run + "|/run=10485760B;858993459;966367641;0;1073741824\n"},
		{"local only, but stat remote mounts", []string{"-w", "20%", "-c", "10%", "-L", "-p", "/mnt/nfs"}, nagios.Unknown,
			"DISK UNKNOWN - free space:\n"},
		{"regex on device and directory, case folded, then ignored", []string{"-w", "20%", "-c", "10%", "-R", "^/DEV/SD[AB]", "-i", "var"}, nagios.OK,
			"DISK OK - free space:" + rootOK + "|" + root + "\n"},
		{"all, ignoring some", []string{"-w", "20%", "-c", "10%", "-A", "-I", "^/(VAR|DATA|MNT|MEDIA)"}, nagios.OK,
			"DISK OK - free space:" + rootOK + run + "|" + root + " /run=10485760B;858993459;966367641;0;1073741824\n"},
		{"regex matching nothing", []string{"-w", "20%", "-c", "10%", "-r", "^/srv"}, nagios.Unknown,
			"DISK UNKNOWN: Regular expression did not match any path or disk - ^/srv\n"},
		{"everything filtered out", []string{"-w", "20%", "-c", "10%", "-p", "/", "-X", "ext4"}, nagios.Unknown,
			"DISK UNKNOWN - free space:\n"},
		{"gigabytes", []string{"-w", "20%", "-c", "10%", "-u", "GB", "-p", "/run", "-p", "/"}, nagios.OK,
			"DISK OK - free space: /run 0GiB (99% inode=99%); / 35GiB (36% inode=90%);|/run=0B;858993459;966367641;0;1073741824 " + root + "\n"},
		{"kilobytes", []string{"-w", "20%", "-c", "10%", "-k", "-p", "/run"}, nagios.OK,
			"DISK OK - free space: /run 1038336kiB (99% inode=99%);|/run=10485760B;858993459;966367641;0;1073741824\n"},
		{"bytes", []string{"-w", "1000", "-c", "10%", "--units=bytes", "-p", "/run"}, nagios.OK,
			"DISK OK - free space: /run 1063256064B (99% inode=99%);|/run=10485760B;1073740824;966367641;0;1073741824\n"},
		{"ignore reserved blocks", []string{"-w", "20%", "-c", "10%", "-f", "-p", "/"}, nagios.OK,
			"DISK OK - free space:" + rootOK + "|/=64424509440B;81604378624;91804925952;0;102005473280\n"},
		{"a threshold above the size", []string{"-w", "200000", "-c", "150%", "-p", "/"}, nagios.Critical,
			"DISK CRITICAL - free space:" + rootOK + "|/=64424509440B;0;0;0;107374182400\n"},
		{"open range", []string{"-w", "20:", "-c", "10", "-p", "/"}, nagios.Warning,
			"DISK WARNING - free space:" + rootOK + "|/=64424509440B;107374182400;107363696640;0;107374182400\n"},
		{"long option aliases", []string{"--warning=20%", "--critical=10%", "--partition=/", "--ereg-partition=^/run$"}, nagios.OK,
			"DISK OK - free space:" + rootOK + run + "|" + root + " /run=10485760B;858993459;966367641;0;1073741824\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runFakeDisk(t, context.Background(), fakeDisks(nil, nil), tt.args...)
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("%v:\n got %s %q\nwant %s %q", tt.args, r.State, r.String(), tt.state, tt.want)
			}
		})
	}
}

// TestDiskUnreachable covers mounts that stat or statfs cannot reach.
func TestDiskUnreachable(t *testing.T) {
	gone := []diskMount{{"/dev/sdd1", "/mnt/gone", "ext4"}}
	locked := []diskMount{{"/dev/sde1", "/mnt/locked", "ext4"}}
	for _, tt := range []struct {
		name         string
		gone, locked []diskMount
		args         []string
		state        nagios.State
		want         string
	}{
		{"a selected mount that stat cannot reach", gone, nil, []string{"-w", "20%", "-c", "10%"}, nagios.Critical,
			"DISK CRITICAL - /mnt/gone is not accessible: No such file or directory\n"},
		{"a mount whose statfs fails is no match", nil, locked, []string{"-w", "20%", "-c", "10%", "-p", "/mnt/locked/sub"}, nagios.OK,
			"DISK OK - free space: / 35840MiB (36% inode=90%);|/=64424509440B;85899345920;96636764160;0;107374182400\n"},
		{"a mount whose statfs fails falls back to the one below", nil, locked, []string{"-w", "20%", "-c", "10%", "-r", "locked"}, nagios.OK,
			"DISK OK - free space: / 35840MiB (36% inode=90%);|/=64424509440B;85899345920;96636764160;0;107374182400\n"},
	} {
		r := runFakeDisk(t, context.Background(), fakeDisks(tt.gone, tt.locked), tt.args...)
		if r.State != tt.state || r.String() != tt.want {
			t.Errorf("%s:\n got %s %q\nwant %s %q", tt.name, r.State, r.String(), tt.state, tt.want)
		}
	}
}

func TestDiskTimeout(t *testing.T) {
	env := fakeDisks(nil, nil)
	env.usage = func(ctx context.Context, dir string, _ bool) (diskUsage, error) {
		<-ctx.Done()
		return diskUsage{}, fmt.Errorf("statfs %s: %w", dir, ctx.Err())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-w", "20%", "-c", "10%", "-p", "/"}, "DISK CRITICAL - statfs /: context canceled\n"},
		{[]string{"-w", "20%", "-c", "10%", "-t", "5:UNKNOWN"}, "DISK UNKNOWN - statfs /: context canceled\n"},
	} {
		if got := runFakeDisk(t, ctx, env, tt.args...).String(); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestDiskCallsGiveUpAndShare(t *testing.T) {
	var calls diskCalls[int]
	var started atomic.Int32
	release := make(chan struct{})
	hang := func() (int, error) {
		started.Add(1)
		<-release
		return 42, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := calls.do(ctx, "/mnt/nfs", hang)
			errs <- err
		})
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("a caller whose context ended got %v, want context.Canceled", err)
		}
	}
	close(release)
	v, err := calls.do(context.Background(), "/mnt/nfs", func() (int, error) { return 7, nil })
	if err != nil || (v != 42 && v != 7) {
		t.Errorf("after the hung call returned: %d, %v", v, err)
	}
	if n := started.Load(); n > 1 {
		t.Errorf("the hung call was started %d times, want at most once", n)
	}
	v, err = calls.do(context.Background(), "/boom", func() (int, error) { panic("statfs exploded") })
	if err == nil || !strings.Contains(err.Error(), "statfs exploded") {
		t.Errorf("a panicking call gave %d, %v; want its error", v, err)
	}
}

func TestDiskBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in the message, naming the flag or the fault
	}{
		{[]string{}, "no arguments"},
		{[]string{"-p", "/"}, `"-p, --path"`},
		{[]string{"-w", "abc", "-c", "10%", "-p", "/"}, `"abc"`},
		{[]string{"-w", "10:5%", "-c", "1%", "-p", "/"}, `"10:5%"`},
		{[]string{"-w", "10%", "-c", "5%", "-u", "XB", "-p", "/"}, "unit type XB not known"},
		{[]string{"-w", "10%", "-c", "5%", "-p", "/", "-E"}, "-E must come before"},
		{[]string{"-w", "10%", "-c", "5%", "-p", "/", "-g", "data"}, "-g must come before"},
		{[]string{"-w", "10%", "-c", "5%", "-g", "", "-p", "/"}, "empty group"},
		{[]string{"-w", "10%", "-c", "5%", "-i", "/dev"}, "select paths before ignoring"},
		{[]string{"-w", "10%", "-c", "5%", "-r", "["}, "could not compile regular expression"},
		{[]string{"-w", "10%", "-c", "5%", "-t", "abc"}, `"abc"`},
		{[]string{"-w", "10%", "-c", "5%", "/", "80", "90"}, "not supported"},
		{[]string{"--extra-opts=disk@/etc/nagios/plugins.ini"}, "extra-opts"},
	} {
		var out strings.Builder
		code := Main(context.Background(), "check_disk", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_disk: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, want 3 and a message with %q\n%s", tt.args, code, tt.want, out.String())
		}
	}
}

// TestDiskProcRoot reads the mount table through WithProcRoot, so a fixture
// decides the devices and types while "/" is measured for real.
func TestDiskProcRoot(t *testing.T) {
	ctx := WithProcRoot(context.Background(), "testdata/disk/proc")
	for _, tt := range []struct {
		args   []string
		state  nagios.State
		prefix string
	}{
		{[]string{"-w", "0%", "-c", "0%", "-e", "-M", "-l"}, nagios.OK, "DISK OK|/dev/fixture-root="},
		{[]string{"-w", "0%", "-c", "0%", "-e", "-N", "ext4"}, nagios.OK, "DISK OK|/="},
		{[]string{"-w", "0%", "-c", "0%", "-L"}, nagios.Critical, "DISK CRITICAL - /nonexistent-immune-nfs is not accessible: No such file or directory\n"},
		{[]string{"-w", "0%", "-c", "0%", "-r", "fileserver"}, nagios.Critical, "DISK CRITICAL - /nonexistent-immune-nfs is not accessible"},
	} {
		c, err := newDisk(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		r := c.Run(ctx)
		if r.State != tt.state || !strings.HasPrefix(r.String(), tt.prefix) {
			t.Errorf("%v: got %s %q, want %s %q...", tt.args, r.State, r.String(), tt.state, tt.prefix)
		}
	}
}

// realMounts lists the mount points of this machine that have blocks, the
// ones the twin reports, from /proc/self/mountinfo, with their types.
func realMounts(t *testing.T) (dirs []string, types map[string]string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no mount table: %v", err)
	}
	defer f.Close()
	types = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		before, after, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(before), strings.Fields(after)
		if !ok || len(fields) < 5 || len(tail) < 1 || strings.Contains(fields[4], `\`) {
			continue
		}
		dir := fields[4]
		if _, dup := types[dir]; !dup {
			if u, err := diskSystemUsage(context.Background(), dir, true); err == nil && u.Total >= 64<<20 {
				dirs = append(dirs, dir)
			}
		}
		types[dir] = tail[0]
	}
	return dirs, types
}

// sameMountTables says whether ours (gopsutil reads /proc/1) and the twin
// (/proc/self) see the same mounts, which the tests over all mounts need.
func sameMountTables() bool {
	a, errA := os.ReadFile("/proc/1/mountinfo")
	b, errB := os.ReadFile("/proc/self/mountinfo")
	return errA == nil && errB == nil && string(a) == string(b)
}

func TestDiskTwin(t *testing.T) {
	referencePlugin(t, "check_disk")
	dirs, types := realMounts(t)
	if !slices.Contains(dirs, "/") {
		t.Skip("/ is not a measurable mount here")
	}
	c := &diskCheck{mult: 1 << 20}
	u, err := diskSystemUsage(context.Background(), "/", true)
	if err != nil {
		t.Fatal(err)
	}
	s := c.pathStats(u)
	s.percents()
	pct, freeMiB, inodePct := int(s.freePct), int(s.freeUnits), int(s.freeInodePct)
	other := "/"
	for _, d := range dirs {
		if d != "/" {
			other = d
			break
		}
	}
	cases := [][]string{
		{"-w", "1%", "-c", "1%", "-p", "/"},
		{"-w", "20%", "-c", "10%", "-p", "/", "-p", other},
		{"-w", "1%", "-c", "1%", "-p", "/", "-C", "-w", "100%", "-c", "100%", "-p", other},
		{"-w", "100%", "-c", "100%", "-p", "/"},
		{"-w", "100", "-c", "50", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-u", "GB", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-k", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-u", "bytes", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-u", "TB", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-M", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-f", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-e", "-p", "/"},
		{"-w", "100%", "-c", "0%", "-e", "-p", "/", "-p", other},
		{"-w", "100%", "-c", "0%", "-v", "-p", "/", "-p", other},
		{"-w", "20%", "-c", "10%", "-P", "-W", "20%", "-K", "10%", "-p", "/"},
		{"-W", "100%", "-K", "0%", "-p", "/"},
		{"-w", "1%", "-c", "1%", "-g", "both", "-p", "/", "-p", other},
		{"-w", "1%", "-c", "1%", "-p", "/nonexistent-immune-path"},
		{"-w", "1%", "-c", "1%", "-E", "-p", "/proc/self"},
		{"-w", "1%", "-c", "1%", "-p", "/proc/self"},
		{"-w", "1%", "-c", "1%", "-p", "/", "-X", types["/"]},
		{"-w", "1%", "-c", "1%", "-p", "/", "-x", "/"},
		{"-w", "1%", "-c", "1%", "-r", "^/$"},
		{"-w", "1%", "-c", "1%", "-r", "nomatch-immune"},
		{"-w", "20:", "-c", "10", "-p", "/"},
		{"-w", "10.5%", "-c", "5.5%", "-p", "/"},
	}
	// Thresholds chosen from this disk's usage, with a margin, force each state.
	type forced struct {
		args  []string
		state nagios.State
	}
	var states []forced
	if pct >= 12 {
		states = append(states,
			forced{[]string{"-w", fmt.Sprintf("%d%%", pct/3), "-c", fmt.Sprintf("%d%%", pct/4), "-p", "/"}, nagios.OK},
			forced{[]string{"-w", fmt.Sprintf("%d%%", min(pct+5, 100)), "-c", fmt.Sprintf("%d%%", pct/2), "-p", "/"}, nagios.Warning},
			forced{[]string{"-w", "100%", "-c", fmt.Sprintf("%d%%", min(pct+5, 100)), "-p", "/"}, nagios.Critical},
			forced{[]string{"-w", fmt.Sprintf("%d%%", min(pct+5, 100)), "-c", fmt.Sprintf("%d%%", pct/2), "-e", "-p", "/"}, nagios.Warning},
			forced{[]string{"-w", "1%", "-c", "1%", "-p", "/", "-w", "100%", "-c", "0%", "-p", other}, nagios.Warning},
		)
	}
	if freeMiB >= 1000 {
		states = append(states,
			forced{[]string{"-w", fmt.Sprint(freeMiB + freeMiB/10 + 100), "-c", fmt.Sprint(freeMiB / 2), "-p", "/"}, nagios.Warning},
			forced{[]string{"-w", fmt.Sprint(freeMiB * 3), "-c", fmt.Sprint(freeMiB + freeMiB/10 + 100), "-p", "/"}, nagios.Critical},
		)
	}
	if inodePct >= 5 {
		states = append(states,
			forced{[]string{"-W", fmt.Sprintf("%d%%", min(inodePct+2, 100)), "-K", "1%", "-p", "/"}, nagios.Warning},
			forced{[]string{"-W", "100%", "-K", fmt.Sprintf("%d", min(inodePct+2, 100)), "-p", "/"}, nagios.Critical},
		)
	}
	for _, f := range states {
		ours := runOurs(t, context.Background(), "check_disk", f.args...)
		if ours.Result.State != f.state {
			t.Errorf("%v: %s, want %s: %s", f.args, ours.Result.State, f.state, ours.Raw)
		}
		cases = append(cases, f.args)
	}
	if sameMountTables() {
		cases = append(cases,
			[]string{"-w", "20%", "-c", "10%"},
			[]string{"-w", "20%", "-c", "10%", "-A", "-i", "^/dev"},
			[]string{"-w", "20%", "-c", "10%", "-C", "-w", "100%", "-c", "0%", "-p", other},
			[]string{"-w", "20%", "-c", "10%", "-X", "tmpfs", "-l"},
		)
	}
	// Both read the same disks a moment apart; other processes write meanwhile.
	tol := tolerance{Abs: 1, Rel: 0.01}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			theirs := runTheirs(t, "check_disk", args...)
			ours := runOurs(t, context.Background(), "check_disk", args...)
			assertTwins(t, ours, theirs, tol)
		})
	}
	for _, args := range [][]string{
		{},
		{"-p", "/"},
		{"-w", "10:5%", "-c", "1%", "-p", "/"},
		{"-w", "10%", "-c", "5%", "-u", "XB", "-p", "/"},
		{"-w", "10%", "-c", "5%", "-p", "/", "-E"},
		{"-w", "10%", "-c", "5%", "-p", "/", "-g", "data"},
		{"-w", "10%", "-c", "5%", "-i", "/dev"},
		{"-w", "10%", "-c", "5%", "-r", "["},
		{"-w", "10%", "-c", "5%", "-t", "abc", "-p", "/"},
		{"--bogus"},
	} {
		// The usage text holds a '|', so only the exit codes are compared.
		theirs, err := exec.Command(referencePlugin(t, "check_disk"), args...).Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("%v: the twin did not fail: %v\n%s", args, err, theirs)
		}
		var ours strings.Builder
		if code := Main(context.Background(), "check_disk", args, &ours); code != exit.ExitCode() {
			t.Errorf("%v: exit ours %d, theirs %d\nours:   %s\ntheirs: %s", args, code, exit.ExitCode(), ours.String(), theirs)
		}
	}
}

// TestDiskMayHang checks which stat and statfs calls are made at once and
// which in a goroutine that a run can give up on.
func TestDiskMayHang(t *testing.T) {
	dr := &diskRun{mounts: []diskMount{
		{"/dev/sda1", "/", "ext4"},
		{"tmpfs", "/run", "tmpfs"},
		{"fileserver:/export", "/mnt/nfs", "nfs4"},
		{"/dev/sdb1", "/mnt/nfs/local", "ext4"},
		{"systemd-1", "/auto", "autofs"},
		{"/dev/sdc1", "/auto", "ext4"},
		{"sshfs", "/home/u/remote", "fuse.sshfs"},
		{"//server/share", "/mnt/smb", "cifs"},
		{"/dev/sdd1", "/mnt/odd", "ext4:"},
	}}
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/", false},
		{"/run", false},
		{"/mnt/nfs", true},
		{"/mnt/nfs/local", true}, // reached through the NFS mount
		{"/auto", true},          // an automount point, whatever is mounted on it
		{"/home/u/remote", true},
		{"/mnt/smb", true},
		{"/mnt/odd", true}, // a type not known to be local
		{"/var/log", true}, // not a mount point: it may be a link to anywhere
		{"/runx", true},
		{"/mnt", true},
	} {
		if got := dr.mayHang(tt.path); got != tt.want {
			t.Errorf("mayHang(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}

	// The check passes the answer on, and stats a path once a run.
	env := fakeDisks(nil, nil)
	type call struct {
		op, path string
		mayHang  bool
	}
	var calls []call
	usage, stat := env.usage, env.stat
	env.usage = func(ctx context.Context, dir string, mayHang bool) (diskUsage, error) {
		calls = append(calls, call{"statfs", dir, mayHang})
		return usage(ctx, dir, mayHang)
	}
	env.stat = func(ctx context.Context, path string, mayHang bool) error {
		calls = append(calls, call{"stat", path, mayHang})
		return stat(ctx, path, mayHang)
	}
	c, err := newDisk([]string{"-w", "20%", "-c", "10%", "-p", "/", "-p", "/mnt/nfs", "-p", "/var/log"})
	if err != nil {
		t.Fatal(err)
	}
	c.(*diskCheck).env = env
	if r := c.Run(context.Background()); r.State != nagios.Critical {
		t.Fatalf("got %s", r)
	}
	want := []call{
		{"stat", "/", false}, {"statfs", "/", false},
		{"stat", "/mnt/nfs", true}, {"statfs", "/mnt/nfs", true},
		{"stat", "/var/log", true}, {"statfs", "/var", false},
	}
	if !slices.Equal(calls, want) {
		t.Errorf("calls:\n got %v\nwant %v", calls, want)
	}
}

// TestDiskMountTableCache checks when the mount table is read again: on
// every run from a file outside procfs, and from procfs only after the
// kernel reports a change.
func TestDiskMountTableCache(t *testing.T) {
	loads := 0
	load := func(path string) func() ([]diskMount, error) {
		return func() ([]diskMount, error) {
			loads++
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			var mounts []diskMount
			for line := range strings.Lines(string(b)) {
				if fields := strings.Fields(line); len(fields) > 4 {
					mounts = append(mounts, diskMount{Dir: fields[4]})
				}
			}
			return mounts, nil
		}
	}
	watch := func(t *testing.T, path string) *diskMountTable {
		table := diskMountTables.get(path)
		t.Cleanup(func() {
			if table.fd >= 0 {
				_ = syscall.Close(table.fd)
			}
			diskMountTables.mu.Lock()
			delete(diskMountTables.tables, path)
			diskMountTables.mu.Unlock()
		})
		return table
	}

	t.Run("fixture", func(t *testing.T) {
		loads = 0
		const path = "testdata/disk/proc/1/mountinfo"
		table := watch(t, path)
		for range 3 {
			if m, err := table.read(load(path)); err != nil || len(m) != 3 {
				t.Fatalf("read: %d mounts, %v", len(m), err)
			}
		}
		if loads != 3 || table.fd != -1 {
			t.Errorf("%d loads and descriptor %d, want 3 and none kept", loads, table.fd)
		}
	})

	t.Run("failed load", func(t *testing.T) {
		loads = 0
		table := watch(t, "/proc/self/mountinfo")
		failing := func() ([]diskMount, error) { loads++; return nil, errors.New("boom") }
		for range 2 {
			if _, err := table.read(failing); err == nil {
				t.Fatal("no error")
			}
		}
		if loads != 2 {
			t.Errorf("%d loads, want 2: a failure is not kept", loads)
		}
	})

	// A mount namespace of its own keeps this test's view still while
	// the host mounts and unmounts what it likes.
	t.Run("private namespace", func(t *testing.T) {
		unshare, err := exec.LookPath("unshare")
		if os.Geteuid() != 0 || err != nil {
			t.Skip("needs root and unshare(1) to make a mount namespace")
		}
		loads = 0
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, unshare, "--mount", "--propagation", "private", "sh", "-c",
			`echo ready; read a; mount -t tmpfs immune-test "$1" && echo mounted; read b`, "sh", dir)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = in.Close()
			_ = cmd.Wait()
		})
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "ready" {
			t.Skipf("unshare could not make a mount namespace: %q", lines.Text())
		}
		path := fmt.Sprintf("/proc/%d/mountinfo", cmd.Process.Pid)
		table := watch(t, path)
		read := func(wantLoads int, wantDir bool) {
			t.Helper()
			m, err := table.read(load(path))
			if err != nil {
				t.Fatal(err)
			}
			has := slices.ContainsFunc(m, func(m diskMount) bool { return m.Dir == dir })
			if loads != wantLoads || has != wantDir {
				t.Errorf("%d loads, %s mounted %v; want %d, %v", loads, dir, has, wantLoads, wantDir)
			}
		}
		read(1, false)
		read(1, false)
		if _, err := fmt.Fprintln(in, "mount"); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() || lines.Text() != "mounted" {
			t.Fatalf("mount in the namespace failed: %q", lines.Text())
		}
		read(2, true)
		read(2, true)
	})
}
