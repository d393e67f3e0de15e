package checks

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_disk",
		Summary: "free space and inodes of mounted file systems",
		New:     newDisk,
	})
}

// diskLimits are the thresholds in force when a path is selected: check_disk
// gives each path the -w, -c, -W and -K values seen before it on the command
// line. Every range alerts inside, on free space or free inodes.
type diskLimits struct {
	freeUnits, freePercent, freeInodes nagios.Thresholds
}

func (l diskLimits) any() bool {
	for _, t := range []nagios.Thresholds{l.freeUnits, l.freePercent, l.freeInodes} {
		if t.Warn != nil || t.Crit != nil {
			return true
		}
	}
	return false
}

type diskOpKind int

const (
	diskOpPath   diskOpKind = iota // -p: one path or device
	diskOpRegex                    // -r, -R, -A: every mount whose device or directory matches
	diskOpIgnore                   // -i, -I: drop the selected paths that match
	diskOpAll                      // no selection (or -C before one): every mount
)

// diskOp is one path selection, replayed in command-line order against the
// mount table of each run, as check_disk applies them against its own.
type diskOp struct {
	kind   diskOpKind
	name   string // diskOpPath: the path; diskOpRegex: the expression as given
	re     *regexp.Regexp
	limits diskLimits
	group  string
	exact  bool
}

// diskCheck is check_disk: the path selections to replay on each run, and
// the options that apply to all paths.
type diskCheck struct {
	ops            []diskOp
	exact          bool
	mult           uint64
	units          string
	excludeDevices map[string]bool
	excludeTypes   map[string]bool
	includeTypes   map[string]bool
	local          bool
	statRemote     bool
	errorsOnly     bool
	showDevice     bool
	ignoreReserved bool
	inodesInPerf   bool
	verbose        int
	timeout        *timeoutFlag
	env            diskEnv
}

// Timeout is -t: statfs on a dead NFS server never returns.
func (c *diskCheck) Timeout() time.Duration { return c.timeout.d }

// diskMount is one line of the mount table.
type diskMount struct {
	Device, Dir, Type string
}

// diskLocalTypes are the file systems whose stat and statfs answer from
// memory or a local disk, never waiting on a server or an automounter:
// the kernel's own, and local disks'. Types not listed (nfs, cifs, fuse.*,
// autofs, ceph and the rest) get a goroutine that a run can give up on.
var diskLocalTypes = map[string]bool{
	"proc": true, "sysfs": true, "devtmpfs": true, "devpts": true, "tmpfs": true, "ramfs": true,
	"cgroup": true, "cgroup2": true, "securityfs": true, "debugfs": true, "tracefs": true,
	"pstore": true, "bpf": true, "mqueue": true, "hugetlbfs": true, "configfs": true,
	"efivarfs": true, "fusectl": true, "nsfs": true, "binfmt_misc": true,
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "zfs": true,
	"f2fs": true, "jfs": true, "vfat": true, "exfat": true, "ntfs3": true, "iso9660": true,
	"udf": true, "squashfs": true, "erofs": true, "overlay": true, "bcachefs": true, "nilfs2": true,
}

// local reports whether the mount is a local file system of a known type.
func (m *diskMount) local() bool { return diskLocalTypes[m.Type] && !m.remote() }

// remote is gnulib's ME_REMOTE, which check_disk's -l uses.
func (m *diskMount) remote() bool {
	return strings.Contains(m.Device, ":") ||
		strings.HasPrefix(m.Device, "//") && (m.Type == "smbfs" || m.Type == "cifs")
}

// diskUsage is what statfs says of one file system, in bytes and inodes.
type diskUsage struct {
	Total, Free, Avail uint64 // Free counts the blocks reserved for root, Avail does not
	Files, FilesFree   uint64
}

// diskEnv is how the check sees the machine; tests give it fixed numbers.
// usage and stat are told whether the call may hang (diskRun.mayHang): one
// that cannot is made at once, without a goroutine to give up on it.
type diskEnv struct {
	mounts func(ctx context.Context) ([]diskMount, error)
	usage  func(ctx context.Context, dir string, mayHang bool) (diskUsage, error)
	stat   func(ctx context.Context, path string, mayHang bool) error
}

// diskAbort ends a run early with one line, as check_disk's die() does.
type diskAbort struct{ r nagios.Result }

func (e *diskAbort) Error() string { return e.r.Output }

func diskAbortf(state nagios.State, format string, args ...any) error {
	return &diskAbort{nagios.Resultf(state, format, args...)}
}

// diskEntry is one selected path, as check_disk's parameter_list.
type diskEntry struct {
	name   string
	limits diskLimits
	group  string
	mount  *diskMount // the best match; nil until found
}

// diskRun is the state of one run: the mount table read once, statfs
// answers cached, and the selected paths.
type diskRun struct {
	c       *diskCheck
	ctx     context.Context
	mounts  []diskMount       // shared with other runs: read only
	usages  []diskUsageAnswer // statfs answers by directory, few enough to search
	entries []*diskEntry
	// found are the paths stat found in this run: check_disk stats a path
	// when it is selected and again when it is measured, a moment apart.
	found []string
}

type diskUsageAnswer struct {
	dir string
	u   diskUsage
	err error
}

// Run replays the path selections on the current mount table and judges
// each selected file system; a dead mount costs at most the context's time.
func (c *diskCheck) Run(ctx context.Context) nagios.Result {
	r, err := c.run(ctx)
	if err == nil {
		return r
	}
	var abort *diskAbort
	switch {
	case errors.As(err, &abort):
		return abort.r
	case ctx.Err() != nil:
		return nagios.Resultf(c.timeout.state, "DISK %s - %v", c.timeout.state, err)
	}
	return nagios.Resultf(nagios.Unknown, "DISK UNKNOWN - %v", err)
}

func (c *diskCheck) run(ctx context.Context) (nagios.Result, error) {
	mounts, err := c.env.mounts(ctx)
	if err != nil {
		return nagios.Result{}, err
	}
	dr := &diskRun{c: c, ctx: ctx, mounts: mounts}
	for _, op := range c.ops {
		if err := dr.apply(op); err != nil {
			return nagios.Result{}, err
		}
	}
	if err := dr.matchAll(c.exact); err != nil {
		return nagios.Result{}, err
	}
	for _, e := range dr.entries {
		if e.mount == nil {
			return nagios.Result{}, diskAbortf(nagios.Critical, "DISK CRITICAL: %s not found", e.name)
		}
	}
	rows, err := dr.measure()
	if err != nil {
		return nagios.Result{}, err
	}
	return c.report(rows), nil
}

func (dr *diskRun) usage(dir string) (diskUsage, error) {
	for _, a := range dr.usages {
		if a.dir == dir {
			return a.u, a.err
		}
	}
	u, err := dr.c.env.usage(dr.ctx, dir, dr.mayHang(dir))
	if dr.ctx.Err() != nil {
		return u, err
	}
	dr.usages = append(dr.usages, diskUsageAnswer{dir, u, err})
	return u, err
}

// stat checks that a path answers, as check_disk does before it trusts a
// mount: a failure ends the run CRITICAL.
func (dr *diskRun) stat(path string) error {
	if slices.Contains(dr.found, path) {
		return nil
	}
	err := dr.c.env.stat(dr.ctx, path, dr.mayHang(path))
	if err == nil {
		dr.found = append(dr.found, path)
		return nil
	}
	if dr.ctx.Err() != nil {
		return err
	}
	return diskAbortf(nagios.Critical, "DISK CRITICAL - %s is not accessible: %s", path, strerror(err))
}

// mayHang reports whether a stat or statfs of path could wait for good, as
// on a dead NFS server. One of a mount point of the table cannot when that
// mount and every mount above it are local: the table holds each mount's
// real path, and the kernel resolves it through those mounts alone. Any
// other path may lead anywhere through a symbolic link.
func (dr *diskRun) mayHang(path string) bool {
	isMount := false
	for i := range dr.mounts {
		m := &dr.mounts[i]
		if m.Dir != "/" && m.Dir != path && !(strings.HasPrefix(path, m.Dir) && path[len(m.Dir)] == '/') {
			continue
		}
		if !m.local() {
			return true
		}
		isMount = isMount || m.Dir == path
	}
	return !isMount
}

func (dr *diskRun) find(name string) *diskEntry {
	for _, e := range dr.entries {
		if e.name == name {
			return e
		}
	}
	e := &diskEntry{name: name}
	dr.entries = append(dr.entries, e)
	return e
}

func (dr *diskRun) apply(op diskOp) error {
	switch op.kind {
	case diskOpPath:
		e := dr.find(op.name)
		e.limits, e.group = op.limits, op.group
		if err := dr.stat(op.name); err != nil {
			return err
		}
		return dr.matchAll(op.exact)
	case diskOpRegex:
		found := false
		for i := range dr.mounts {
			m := &dr.mounts[i]
			if op.re.MatchString(m.Device) || op.re.MatchString(m.Dir) {
				found = true
				e := dr.find(m.Dir)
				e.limits, e.group = op.limits, op.group
			}
		}
		if !found {
			return diskAbortf(nagios.Unknown, "DISK UNKNOWN: Regular expression did not match any path or disk - %s", op.name)
		}
		return dr.matchAll(op.exact)
	case diskOpIgnore:
		kept := dr.entries[:0]
		for _, e := range dr.entries {
			if e.mount == nil || !(op.re.MatchString(e.mount.Device) || op.re.MatchString(e.mount.Dir)) {
				kept = append(kept, e)
			}
		}
		clear(dr.entries[len(kept):])
		dr.entries = kept
	case diskOpAll:
		for i := range dr.mounts {
			e := dr.find(dr.mounts[i].Dir)
			e.mount, e.limits, e.group = &dr.mounts[i], op.limits, op.group
		}
	}
	return nil
}

// matchAll finds the mount of every path that has none yet.
func (dr *diskRun) matchAll(exact bool) error {
	for _, e := range dr.entries {
		if e.mount != nil {
			continue
		}
		m, err := dr.bestMatch(e.name, exact)
		if err != nil {
			return err
		}
		e.mount = m
	}
	return nil
}

// bestMatch is check_disk's np_set_best_match: the last mount whose device
// is name, else the mount with the longest directory that is a prefix of
// name (byte-wise, not by path components, as check_disk does), skipping
// mounts whose statfs fails.
func (dr *diskRun) bestMatch(name string, exact bool) (*diskMount, error) {
	var best *diskMount
	usable := func(m *diskMount) (bool, error) {
		_, err := dr.usage(m.Dir)
		if err != nil && dr.ctx.Err() != nil {
			return false, err
		}
		return err == nil, nil
	}
	for i := range dr.mounts {
		m := &dr.mounts[i]
		if m.Device != name {
			continue
		}
		ok, err := usable(m)
		if err != nil {
			return nil, err
		}
		if ok {
			best = m
		}
	}
	if best != nil {
		return best, nil
	}
	bestLen := 0
	for i := range dr.mounts {
		m := &dr.mounts[i]
		n := len(m.Dir)
		if exact && m.Dir != name ||
			!exact && !(bestLen <= n && n <= len(name) && (n == 1 || strings.HasPrefix(name, m.Dir))) {
			continue
		}
		ok, err := usable(m)
		if err != nil {
			return nil, err
		}
		if ok {
			best, bestLen = m, n
		}
	}
	return best, nil
}

// diskRow is one line of the report: a file system, or a group's sum.
type diskRow struct {
	label  string
	limits diskLimits
	stats  diskStats
}

// measure walks the selected paths as check_disk's main loop does: each
// mount once, filters first, groups summed on their first member.
func (dr *diskRun) measure() ([]diskRow, error) {
	c := dr.c
	seen := map[string]bool{}
	var rows []diskRow
	for _, e := range dr.entries {
		m := e.mount
		if seen[m.Dir] {
			continue
		}
		seen[m.Dir] = true
		if e.group == "" {
			if c.local && m.remote() {
				if c.statRemote {
					if err := dr.stat(e.name); err != nil {
						return nil, err
					}
				}
				continue
			}
			if c.excludeTypes[m.Type] || c.excludeDevices[m.Device] || c.excludeDevices[m.Dir] ||
				len(c.includeTypes) > 0 && !c.includeTypes[m.Type] {
				continue
			}
		}
		if err := dr.stat(e.name); err != nil {
			return nil, err
		}
		u, err := dr.usage(m.Dir)
		if err != nil {
			if dr.ctx.Err() != nil {
				return nil, err
			}
			return nil, diskAbortf(nagios.Critical, "DISK CRITICAL - %s is not accessible: %s", m.Dir, strerror(err))
		}
		if u.Total == 0 || m.Dir == "none" {
			continue
		}
		row := diskRow{label: m.Dir, limits: e.limits}
		if c.showDevice {
			row.label = m.Device
		}
		if e.group == "" {
			row.stats = c.pathStats(u)
		} else {
			row.label = e.group
			if row.stats, err = dr.groupStats(e.group, seen); err != nil {
				return nil, err
			}
		}
		row.stats.percents()
		rows = append(rows, row)
	}
	return rows, nil
}

// groupStats sums the file systems of every path in the group, a path
// counted as often as it was selected, as check_disk does.
func (dr *diskRun) groupStats(group string, seen map[string]bool) (diskStats, error) {
	var sum diskStats
	for _, e := range dr.entries {
		if e.group != group {
			continue
		}
		if err := dr.stat(e.name); err != nil {
			return sum, err
		}
		u, err := dr.usage(e.mount.Dir)
		if err != nil {
			if dr.ctx.Err() != nil {
				return sum, err
			}
			return sum, diskAbortf(nagios.Critical, "DISK CRITICAL - %s is not accessible: %s", e.mount.Dir, strerror(err))
		}
		sum.add(dr.c.pathStats(u))
		seen[e.mount.Dir] = true
	}
	return sum, nil
}

// diskStats is check_disk's arithmetic on one statfs, or on a group's sum:
// bytes for the percentages, whole units (rounded down) for the rest.
type diskStats struct {
	used, avail                        uint64 // bytes
	usedUnits, freeUnits, totalUnits   uint64
	inodesTotal, inodesFree, inodesUse uint64
	usedPct, freePct                   float64
	usedInodePct, freeInodePct         float64
}

func (c *diskCheck) pathStats(u diskUsage) diskStats {
	s := diskStats{
		used:  diskSub(u.Total, u.Free),
		avail: u.Avail,
	}
	total := u.Total
	if c.ignoreReserved {
		total = diskSub(u.Total, u.Free) + u.Avail
	}
	s.usedUnits, s.freeUnits, s.totalUnits = s.used/c.mult, s.avail/c.mult, total/c.mult
	s.inodesTotal, s.inodesFree, s.inodesUse = u.Files, u.FilesFree, diskSub(u.Files, u.FilesFree)
	return s
}

func (s *diskStats) add(o diskStats) {
	s.used += o.used
	s.avail += o.avail
	s.usedUnits += o.usedUnits
	s.freeUnits += o.freeUnits
	s.totalUnits += o.totalUnits
	s.inodesTotal += o.inodesTotal
	s.inodesFree += o.inodesFree
	s.inodesUse += o.inodesUse
}

func (s *diskStats) percents() {
	s.usedPct = diskPercent(s.used, s.used+s.avail)
	s.freePct = 100 - s.usedPct
	s.usedInodePct = diskPercent(diskSub(s.inodesTotal, s.inodesFree), s.inodesTotal)
	s.freeInodePct = 100 - s.usedInodePct
}

func diskSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// diskPercent is coreutils df's percentage, which check_disk uses: rounded
// up to a whole number, -1 when there is no total.
func diskPercent(value, total uint64) float64 {
	if total == 0 {
		return -1
	}
	hi, lo := bits.Mul64(value, 100)
	if hi < total {
		q, r := bits.Div64(hi, lo, total)
		if r != 0 {
			q++
		}
		return float64(q)
	}
	return math.Ceil(float64(value) * 100 / float64(total))
}

// state judges one row on free units, free percent and free inodes.
func (c *diskCheck) state(r diskRow) nagios.State {
	return nagios.Worst(
		r.limits.freeUnits.State(float64(r.stats.freeUnits)),
		r.limits.freePercent.State(r.stats.freePct),
		r.limits.freeInodes.State(r.stats.freeInodePct),
	)
}

// report writes the rows as check_disk does: free space in the status line,
// used bytes in the perfdata, with the thresholds turned into used bytes.
func (c *diskCheck) report(rows []diskRow) nagios.Result {
	result := nagios.Unknown
	// The line is built with strconv rather than fmt: in the agent this
	// runs every interval, and fmt's formatting was a good part of a run.
	text := make([]byte, 0, 64*len(rows))
	perf := make([]nagios.Perf, 0, len(rows))
	for i, r := range rows {
		st := c.state(r)
		if i == 0 {
			result = st
		} else {
			result = nagios.Worst(result, st)
		}
		perf = append(perf, c.spacePerf(r))
		if c.inodesInPerf {
			perf = append(perf, diskInodePerf(r))
		}
		if st == nagios.OK && c.errorsOnly && c.verbose == 0 {
			continue
		}
		marked := st != nagios.OK && c.verbose >= 1
		if marked {
			text = append(append(append(text, ' '), st.String()...), " ["...)
		}
		// " / 35840MiB (36% inode=90%);"
		text = append(append(append(text, ' '), r.label...), ' ')
		text = append(strconv.AppendUint(text, r.stats.freeUnits, 10), c.units...)
		text = append(strconv.AppendFloat(append(text, " ("...), r.stats.freePct, 'f', 0, 64), '%')
		switch {
		case r.stats.usedInodePct < 0:
			// check_disk closes the bracket here whether it opened one or not.
			text = append(text, " inode=-)"...)
			if st != nagios.OK {
				text = append(text, ']')
			}
		default:
			text = append(strconv.AppendFloat(append(text, " inode="...), r.stats.freeInodePct, 'f', 0, 64), "%)"...)
			if marked {
				text = append(text, ']')
			}
		}
		text = append(text, ';')
	}
	preamble := " - free space:"
	if c.errorsOnly && result == nagios.OK {
		preamble = ""
	}
	return nagios.Result{State: result, Output: "DISK " + result.String() + preamble + string(text), Perf: perf}
}

func (c *diskCheck) spacePerf(r diskRow) nagios.Perf {
	s := r.stats
	total := s.totalUnits * c.mult
	tide := func(units, percent *nagios.Range) *nagios.Range {
		if units == nil && percent == nil {
			return nil
		}
		t := uint64(math.MaxUint64)
		if units != nil {
			t = diskUsedBytes((float64(s.totalUnits) - diskRangeEnd(units)) * float64(c.mult))
		}
		if percent != nil {
			t = min(t, diskUsedBytes((1-diskRangeEnd(percent)/100)*float64(total)))
		}
		return &nagios.Range{End: float64(t)}
	}
	return nagios.Perf{
		Label: r.label, Value: float64(s.usedUnits * c.mult), UOM: "B",
		Warn: tide(r.limits.freeUnits.Warn, r.limits.freePercent.Warn),
		Crit: tide(r.limits.freeUnits.Crit, r.limits.freePercent.Crit),
		Min:  nagios.Float(0), Max: nagios.Float(float64(total)),
	}
}

func diskInodePerf(r diskRow) nagios.Perf {
	s := r.stats
	tide := func(free *nagios.Range) *nagios.Range {
		if free == nil {
			return nil
		}
		t := math.Abs(math.Min(math.MaxUint64, (1-diskRangeEnd(free)/100)*float64(s.inodesTotal)))
		return &nagios.Range{End: math.Trunc(t)}
	}
	return nagios.Perf{
		Label: r.label + " (inodes)", Value: float64(s.inodesUse),
		Warn: tide(r.limits.freeInodes.Warn), Crit: tide(r.limits.freeInodes.Crit),
		Min: nagios.Float(0), Max: nagios.Float(float64(s.inodesTotal)),
	}
}

// diskRangeEnd is the upper bound check_disk reads from a range: 0 when open,
// as its range parser leaves it.
func diskRangeEnd(r *nagios.Range) float64 {
	if math.IsInf(r.End, 1) {
		return 0
	}
	return r.End
}

// diskUsedBytes turns a used-space threshold into whole bytes. A threshold
// above the size of the file system would be negative; check_disk prints
// that wrapped around 2^64, we print 0, which alerts just the same.
func diskUsedBytes(v float64) uint64 {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(v)
}
