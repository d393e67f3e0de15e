package checks

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/immune-ops/immune/nagios"
)

// diskArgs is the parser's state while pflag calls the options' Set in
// command-line order; it is what makes thresholds apply to the paths after them.
type diskArgs struct {
	limits   diskLimits
	group    string
	selected bool
	c        *diskCheck
}

// diskOption is an option whose effect depends on where it stands on the
// command line.
type diskOption struct {
	kind string
	set  func(string) error
}

func (o *diskOption) String() string { return "" }

func (o *diskOption) Type() string { return o.kind }

func (o *diskOption) Set(s string) error { return o.set(s) }

// diskAliases are check_disk's second long names for the same options.
var diskAliases = map[string]string{
	"partition":              "path",
	"eregi-partition":        "eregi-path",
	"ereg-partition":         "ereg-path",
	"ignore-ereg-partition":  "ignore-ereg-path",
	"ignore-eregi-partition": "ignore-eregi-path",
}

func newDisk(args []string) (Check, error) {
	f := newFlags("check_disk",
		"{-w absolute_limit |-w  percentage_limit% | -W inode_percentage_limit } {-c absolute_limit|-c percentage_limit% | -K inode_percentage_limit } {-p path | -x device}\n"+
			"[-C] [-E] [-e] [-f] [-g group ] [-k] [-l] [-M] [-m] [-R path ] [-r path ]\n"+
			"[-t timeout] [-u unit] [-v] [-X type] [-N type]",
		"This plugin checks the amount of used disk space on a mounted file system\n"+
			"and generates an alert if free space is less than one of the threshold values.\n"+
			"Thresholds apply to the paths selected after them; -C clears them.")
	c := &diskCheck{
		mult: 1 << 20, units: "MiB",
		excludeDevices: map[string]bool{},
		// As in check_disk, CD images are left out, unless grouped with -g.
		excludeTypes: map[string]bool{"iso9660": true},
		includeTypes: map[string]bool{},
		env:          diskSystem,
	}
	a := &diskArgs{c: c}
	value := func(long, short, kind, usage string, set func(string) error) {
		f.VarP(&diskOption{kind: kind, set: set}, long, short, usage)
	}
	action := func(long, short, usage string, do func() error) {
		fl := f.VarPF(&diskOption{kind: "bool", set: func(s string) error {
			on, err := strconv.ParseBool(s)
			if err != nil || !on {
				return err
			}
			return do()
		}}, long, short, usage)
		fl.NoOptDefVal = "true"
	}
	value("warning", "w", "FREE", "Exit with WARNING status if less than FREE units (-u) or FREE% of disk space is free", a.threshold(diskWarn))
	value("critical", "c", "FREE", "Exit with CRITICAL status if less than FREE units (-u) or FREE% of disk space is free", a.threshold(diskCrit))
	value("iwarning", "W", "PERCENT%", "Exit with WARNING status if less than PERCENT of inode space is free", a.inodeThreshold(diskWarn))
	value("icritical", "K", "PERCENT%", "Exit with CRITICAL status if less than PERCENT of inode space is free", a.inodeThreshold(diskCrit))
	value("path", "p", "PATH", "Mount point or block device as emitted by the mount(8) command (may be repeated)", a.path)
	value("exclude_device", "x", "PATH", "Ignore device or mount point (may be repeated)", func(s string) error { c.excludeDevices[s] = true; return nil })
	value("exclude-type", "X", "TYPE", "Ignore all filesystems of indicated type (may be repeated)", func(s string) error { c.excludeTypes[s] = true; return nil })
	value("include-type", "N", "TYPE", "Check only filesystems of indicated type (may be repeated)", func(s string) error { c.includeTypes[s] = true; return nil })
	action("clear", "C", "Clear thresholds", a.clear)
	action("exact-match", "E", "For paths or partitions specified with -p, only check for exact paths", a.exactMatch)
	action("errors-only", "e", "Display only devices/mountpoints with errors", func() error { c.errorsOnly = true; return nil })
	action("quiet", "q", "Same as -e", func() error { c.errorsOnly = true; return nil })
	action("freespace-ignore-reserved", "f", "Don't account root-reserved blocks into freespace in perfdata", func() error { c.ignoreReserved = true; return nil })
	action("iperfdata", "P", "Display inode usage in perfdata", func() error { c.inodesInPerf = true; return nil })
	value("group", "g", "NAME", "Group paths. Thresholds apply to (free-)space of all partitions together", a.setGroup)
	action("kilobytes", "k", "Same as '--units kB'", func() error { return a.setUnits("kB") })
	action("megabytes", "m", "Same as '--units MB'", func() error { return a.setUnits("MB") })
	action("local", "l", "Only check local filesystems", func() error { c.local = true; return nil })
	action("stat-remote-fs", "L", "Only check local filesystems against thresholds, yet stat remote ones to see that they answer", func() error {
		c.local, c.statRemote = true, true
		return nil
	})
	action("mountpoint", "M", "Display the (block) device instead of the mount point", func() error { c.showDevice = true; return nil })
	action("all", "A", "Explicitly select all paths. This is equivalent to -R '.*'", func() error { return a.regex(".*", true) })
	value("eregi-path", "R", "REGEX", "Case insensitive regular expression for path/partition (may be repeated)", func(s string) error { return a.regex(s, true) })
	value("ereg-path", "r", "REGEX", "Regular expression for path or partition (may be repeated)", func(s string) error { return a.regex(s, false) })
	value("ignore-eregi-path", "I", "REGEX", "Regular expression to ignore selected path/partition (case insensitive) (may be repeated)", func(s string) error { return a.ignore(s, true) })
	value("ignore-ereg-path", "i", "REGEX", "Regular expression to ignore selected path or partition (may be repeated)", func(s string) error { return a.ignore(s, false) })
	value("units", "u", "UNIT", "Choose bytes, kB, MB, GB, TB, PB (default: MB)", a.setUnits)
	f.CountVarP(&c.verbose, "verbose", "v", "Mark the paths in alert in the status line")
	c.timeout = f.timeout(10, nagios.Critical)
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if canonical, ok := diskAliases[name]; ok {
			return pflag.NormalizedName(canonical)
		}
		return pflag.NormalizedName(name)
	})
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, f.failf("no arguments: give thresholds (-w, -c, -W, -K) and optionally paths (-p)")
	}
	if f.NArg() > 0 {
		return nil, f.failf("unexpected argument %q: the old form check_disk WARN CRIT PATH is not supported, use -w, -c and -p", f.Arg(0))
	}
	if !a.selected {
		c.ops = append(c.ops, diskOp{kind: diskOpAll, limits: a.limits, group: a.group})
	}
	return c, nil
}

type diskSlot int

const (
	diskWarn diskSlot = iota
	diskCrit
)

func diskSlotOf(t *nagios.Thresholds, slot diskSlot) **nagios.Range {
	if slot == diskWarn {
		return &t.Warn
	}
	return &t.Crit
}

// threshold handles -w and -c: a percentage of free space, or free space in
// the -u units.
func (a *diskArgs) threshold(slot diskSlot) func(string) error {
	return func(s string) error {
		r, percent, err := parseDiskLimit(s)
		if err != nil {
			return err
		}
		if percent {
			*diskSlotOf(&a.limits.freePercent, slot) = &r
		} else {
			*diskSlotOf(&a.limits.freeUnits, slot) = &r
		}
		return nil
	}
}

// inodeThreshold handles -W and -K, always a percentage of free inodes.
func (a *diskArgs) inodeThreshold(slot diskSlot) func(string) error {
	return func(s string) error {
		r, _, err := parseDiskLimit(s)
		if err != nil {
			return err
		}
		*diskSlotOf(&a.limits.freeInodes, slot) = &r
		return nil
	}
}

// parseDiskLimit reads a threshold of check_disk: "20%", "100", "10:20%" or
// "@20%". check_disk alerts when the free amount lies inside the range, so a
// leading @ changes nothing. A % after either bound makes it a percentage.
func parseDiskLimit(text string) (r nagios.Range, percent bool, err error) {
	s := strings.TrimPrefix(text, "@")
	if strings.Contains(s, "%") {
		percent = true
		s = strings.Replace(s, "%:", ":", 1)
		s = strings.TrimSuffix(s, "%")
		if strings.Contains(s, "%") {
			return r, false, fmt.Errorf("%q: a %% may only follow a number", text)
		}
	}
	if strings.HasPrefix(s, "@") {
		return r, false, fmt.Errorf("%q: one @ at most", text)
	}
	if r, err = nagios.ParseRange(s); err != nil {
		return r, false, err
	}
	if r.Start < 0 {
		return r, false, fmt.Errorf("%q: free space cannot be negative", text)
	}
	r.Inside = true
	return r, percent, nil
}

func (a *diskArgs) path(name string) error {
	if !a.limits.any() {
		return errors.New("set a threshold (-w, -c, -W or -K) before selecting a path")
	}
	a.c.ops = append(a.c.ops, diskOp{kind: diskOpPath, name: name, limits: a.limits, group: a.group, exact: a.c.exact})
	a.selected = true
	return nil
}

func (a *diskArgs) regex(expr string, fold bool) error {
	if !a.limits.any() {
		return errors.New("set a threshold (-w, -c, -W or -K) before selecting paths by regular expression")
	}
	re, err := compileDiskRegex(expr, fold)
	if err != nil {
		return err
	}
	a.c.ops = append(a.c.ops, diskOp{kind: diskOpRegex, name: expr, re: re, limits: a.limits, group: a.group, exact: a.c.exact})
	a.selected = true
	return nil
}

func (a *diskArgs) ignore(expr string, fold bool) error {
	if !a.selected {
		return errors.New("select paths before ignoring some (-A selects them all)")
	}
	re, err := compileDiskRegex(expr, fold)
	if err != nil {
		return err
	}
	a.c.ops = append(a.c.ops, diskOp{kind: diskOpIgnore, name: expr, re: re})
	return nil
}

func compileDiskRegex(expr string, fold bool) (*regexp.Regexp, error) {
	if fold {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("could not compile regular expression: %w", err)
	}
	return re, nil
}

// clear is -C: the paths selected so far keep their thresholds; if none were,
// every mount gets them first, so a later -p only overrides its own path.
func (a *diskArgs) clear() error {
	if !a.selected {
		a.c.ops = append(a.c.ops, diskOp{kind: diskOpAll, limits: a.limits, group: a.group})
	}
	a.limits, a.group, a.selected = diskLimits{}, "", false
	return nil
}

func (a *diskArgs) exactMatch() error {
	if a.selected {
		return errors.New("-E must come before the paths it applies to")
	}
	a.c.exact = true
	return nil
}

func (a *diskArgs) setGroup(name string) error {
	if a.selected {
		return errors.New("-g must come before the paths of its group")
	}
	if name == "" {
		return errors.New("empty group name")
	}
	a.group = name
	return nil
}

func (a *diskArgs) setUnits(u string) error {
	var shift uint
	switch {
	case strings.EqualFold(u, "bytes"):
		a.c.units = "B"
	case u == "kB" || u == "KiB":
		shift, a.c.units = 10, "kiB"
	case u == "MB" || u == "MiB":
		shift, a.c.units = 20, "MiB"
	case u == "GB" || u == "GiB":
		shift, a.c.units = 30, "GiB"
	case u == "TB" || u == "TiB":
		shift, a.c.units = 40, "TiB"
	case u == "PB" || u == "PiB":
		shift, a.c.units = 50, "PiB"
	default:
		return fmt.Errorf("unit type %s not known (bytes, kB, MB, GB, TB or PB)", u)
	}
	a.c.mult = 1 << shift
	return nil
}
