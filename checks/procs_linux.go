package checks

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// procSelfExe is the executable of this process, to recognise other
// check_procs runs of it; nil when it cannot be read. It is what the process
// was started from, so it is read once.
var procSelfExe = sync.OnceValue(func() os.FileInfo {
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return nil
	}
	return fi
})

// userHZ is the unit of the times in /proc/<pid>/stat. Linux fixes USER_HZ
// at 100 in the user-space ABI of every architecture.
const userHZ = 100

// procReader reads processes' files under one /proc root, each at most once
// a run and only when asked. It reads the files itself: gopsutil's getters
// would read stat once per field, take the nice value from the live system
// rather than the tree, lengthen comm from the command line, and fold state
// letters together, so ps's view of -C and -s could not be rebuilt; and
// they allocate for every file, where this reads into one buffer.
type procReader struct {
	root   string
	procfs bool      // root is procfs, not a fixture tree
	dir    int       // descriptor of root
	tree   *procTree // the files kept open across runs; nil: none
	buf    []byte
	// uptime is the seconds since boot, once readUptime has run.
	uptime float64
}

// procTree is a procfs root that runs read again and again: its directory
// stays open, and so do the comm and cmdline files of its processes. Reading
// an open file again costs one system call where opening it costs three and
// a path walk, and the kernel writes it afresh on each read: after its
// process ends the file answers ESRCH, even if its PID is someone else's
// by then, so an open file never shows another process.
type procTree struct {
	mu    sync.Mutex // held by the one run using the tree
	dir   int
	kept  map[int32]*procKept
	nKept int
	// procs is the last run's slab of processes, for the next to reuse.
	procs []proc
	// maxKept is the share of the process's descriptor limit the tree may
	// keep, so that the agent it runs in can still accept connections.
	maxKept int
	buf     []byte
}

// procKept are the files of one process kept open; -1 is not open.
type procKept struct {
	fds [procKeptFiles]int
	// comm is the name last read, given again while the file reads the
	// same, so that a run allocates nothing for most processes.
	comm string
}

// The files kept open, by index in procKept.fds.
const (
	procKeptComm = iota
	procKeptCmdline
	procKeptFiles
)

var procKeptNames = [procKeptFiles]string{"comm", "cmdline"}

// procKeptLimit caps the descriptors a tree keeps, against a host with
// very many processes: each holds a page of kernel memory for a comm file.
// Files past it, or past a quarter of RLIMIT_NOFILE, are opened and closed
// on each read.
var procKeptLimit = 2048

// procTrees are the procfs roots read so far, shared by every check_procs of
// the process. They stay open for its life. Other roots, the fixture trees
// of tests, are opened afresh on each run.
var procTrees struct {
	mu    sync.Mutex
	trees map[string]*procTree
}

// A read buffer starts at procBufSize; a tree keeps one that a long file
// made grow up to procBufKeepMax.
const (
	procBufSize    = 8 << 10
	procBufKeepMax = 64 << 10
)

// openProcReader opens the /proc root of ctx for one run. The first run on
// a procfs root makes it a tree that later runs share; a run that finds the
// tree in use by another reads without it rather than wait.
func openProcReader(ctx context.Context) (*procReader, error) {
	rd := &procReader{root: procPath(ctx), dir: -1}
	procTrees.mu.Lock()
	t := procTrees.trees[rd.root]
	procTrees.mu.Unlock()
	if t != nil && t.mu.TryLock() {
		rd.tree, rd.dir, rd.buf, rd.procfs = t, t.dir, t.buf, true
		return rd, nil
	}
	fd, err := syscall.Open(rd.root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rd.root, Err: err}
	}
	rd.dir, rd.buf = fd, make([]byte, procBufSize)
	var fs syscall.Statfs_t
	rd.procfs = syscall.Fstatfs(fd, &fs) == nil && fs.Type == procSuperMagic
	if t != nil || !rd.procfs {
		return rd, nil
	}
	t = &procTree{dir: fd, kept: map[int32]*procKept{}, maxKept: procKeptLimit, buf: rd.buf}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		t.maxKept = int(min(lim.Cur/4, uint64(t.maxKept)))
	}
	t.mu.Lock()
	procTrees.mu.Lock()
	defer procTrees.mu.Unlock()
	if procTrees.trees[rd.root] != nil {
		return rd, nil // another run made it first; this one closes its own
	}
	if procTrees.trees == nil {
		procTrees.trees = map[string]*procTree{}
	}
	procTrees.trees[rd.root] = t
	rd.tree = t
	return rd, nil
}

// procs returns n zeroed processes to fill, on a tree from its slab.
func (rd *procReader) procs(n int) []proc {
	if rd.tree == nil {
		return make([]proc, n)
	}
	t := rd.tree
	if cap(t.procs) < n {
		t.procs = make([]proc, n+n/8)
	}
	t.procs = t.procs[:n]
	clear(t.procs)
	return t.procs
}

// close ends the run: the tree is free for the next, or this run's own
// directory is closed.
func (rd *procReader) close() {
	if rd.tree == nil {
		_ = syscall.Close(rd.dir)
		return
	}
	if cap(rd.buf) <= procBufKeepMax {
		rd.tree.buf = rd.buf
	}
	rd.tree.mu.Unlock()
}

// pids lists the processes, in PID order as ps shows them. On a tree it
// then closes the kept files of processes no longer listed.
func (rd *procReader) pids() ([]int32, error) {
	if _, err := syscall.Seek(rd.dir, 0, io.SeekStart); err != nil {
		return nil, &os.PathError{Op: "seek", Path: rd.root, Err: err}
	}
	pids := make([]int32, 0, 256)
	for {
		n, err := syscall.ReadDirent(rd.dir, rd.buf)
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: rd.root, Err: err}
		}
		if n <= 0 {
			break
		}
		pids = appendDirentPIDs(pids, rd.buf[:n])
	}
	slices.Sort(pids)
	if rd.tree != nil {
		for pid, k := range rd.tree.kept {
			if _, listed := slices.BinarySearch(pids, pid); !listed {
				rd.tree.drop(pid, k)
			}
		}
	}
	return pids, nil
}

// appendDirentPIDs appends the names of buf's linux_dirent64 records that
// are whole numbers, as gopsutil lists PIDs.
func appendDirentPIDs(pids []int32, buf []byte) []int32 {
	const nameOff = 19 // d_ino, d_off, d_reclen, d_type
	for len(buf) > nameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen <= nameOff || reclen > len(buf) {
			break
		}
		name := buf[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if pid, ok := parsePID(name); ok {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parsePID reads a directory name of only decimal digits that fits a PID.
func parsePID(name []byte) (int32, bool) {
	if len(name) == 0 || len(name) > 10 {
		return 0, false
	}
	var v int64
	for _, c := range name {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

// drop closes the kept files of a process that is no longer listed.
func (t *procTree) drop(pid int32, k *procKept) {
	for i, fd := range k.fds {
		if fd >= 0 {
			_ = syscall.Close(fd)
			k.fds[i] = -1
			t.nKept--
		}
	}
	delete(t.kept, pid)
}

// read returns a file of the root ("uptime") or, with a PID, of a
// process. The bytes are the reader's buffer, good until the next read.
func (rd *procReader) read(pid int32, name string) ([]byte, error) {
	fd, err := rd.open(pid, name)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	return rd.readFd(fd, pid, name)
}

// readKept is read for the files a tree keeps open. It also returns
// what the tree keeps for the process, nil without a tree.
func (rd *procReader) readKept(pid int32, file int) ([]byte, *procKept, error) {
	t := rd.tree
	if t == nil {
		b, err := rd.read(pid, procKeptNames[file])
		return b, nil, err
	}
	k := t.kept[pid]
	if k == nil {
		k = &procKept{fds: [procKeptFiles]int{-1, -1}}
		t.kept[pid] = k
	}
	if fd := k.fds[file]; fd >= 0 {
		b, err := rd.readFd(fd, pid, procKeptNames[file])
		if !errors.Is(err, syscall.ESRCH) {
			return b, k, err
		}
		// That process ended: its PID may be another's by now, which
		// only a fresh open can tell.
		_ = syscall.Close(fd)
		k.fds[file] = -1
		t.nKept--
	}
	if t.nKept >= min(t.maxKept, procKeptLimit) {
		b, err := rd.read(pid, procKeptNames[file])
		return b, k, err
	}
	fd, err := rd.open(pid, procKeptNames[file])
	if err != nil {
		return nil, k, err
	}
	k.fds[file] = fd
	t.nKept++
	b, err := rd.readFd(fd, pid, procKeptNames[file])
	return b, k, err
}

// open opens a file of the root or, with a PID, of a process.
func (rd *procReader) open(pid int32, name string) (int, error) {
	rel := name
	if pid != 0 {
		rel = strconv.Itoa(int(pid)) + "/" + name
	}
	fd, err := syscall.Openat(rd.dir, rel, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: rd.filePath(pid, name), Err: err}
	}
	return fd, nil
}

// readFd reads a whole file from its start into the reader's buffer,
// growing it for a long one. A proc file gives all it has left, up to the
// space offered, to each read, so one that leaves space is the last: that
// saves the second read to see the end, half the cost of a kept file.
func (rd *procReader) readFd(fd int, pid int32, name string) ([]byte, error) {
	n := 0
	for {
		if n == len(rd.buf) {
			rd.buf = append(rd.buf, make([]byte, len(rd.buf))...)
		}
		m, err := syscall.Pread(fd, rd.buf[n:], int64(n))
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: rd.filePath(pid, name), Err: err}
		}
		n += max(m, 0)
		if m <= 0 || n < len(rd.buf) {
			return rd.buf[:n], nil
		}
	}
}

// filePath is the path of a file read, for messages: that of the root
// with no PID.
func (rd *procReader) filePath(pid int32, name string) string {
	if pid == 0 {
		return filepath.Join(rd.root, name)
	}
	return filepath.Join(rd.root, strconv.Itoa(int(pid)), name)
}

// stat reads the stat file of p, which also gives its comm.
func (rd *procReader) stat(p *proc) error {
	if p.statRead {
		return nil
	}
	b, err := rd.read(p.pid, "stat")
	if err == nil {
		err = parseProcStat(b, p)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", rd.filePath(p.pid, "stat"), err)
	}
	p.statRead, p.commRead = true, true
	return nil
}

// comm is the kernel's name of p, from its stat file when that was read,
// else from the cheaper comm file.
func (rd *procReader) comm(p *proc) (string, error) {
	if p.commRead {
		return p.comm, nil
	}
	b, k, err := rd.readKept(p.pid, procKeptComm)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", rd.filePath(p.pid, "comm"), err)
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	switch {
	case k == nil:
		p.comm = string(b)
	case k.comm != string(b):
		k.comm = string(b)
		fallthrough
	default:
		p.comm = k.comm
	}
	p.commRead = true
	return p.comm, nil
}

// parseProcStat reads the fields of /proc/<pid>/stat that ps shows into p.
// The command name is in parentheses and may itself hold spaces and ')'.
func parseProcStat(b []byte, p *proc) error {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return errors.New("no command name in parentheses")
	}
	// The fields after the name, from the state (field 3 of proc(5)) on.
	var f [21][]byte
	n := 0
	blank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }
	for rest, i := b[end+1:], 0; n < len(f); n++ {
		for i < len(rest) && blank(rest[i]) {
			i++
		}
		if i == len(rest) {
			break
		}
		j := i
		for j < len(rest) && !blank(rest[j]) {
			j++
		}
		f[n], i = rest[i:j], j
	}
	if n < len(f) {
		return fmt.Errorf("%d fields after the command name, want at least %d", n, len(f))
	}
	if len(f[0]) != 1 {
		return fmt.Errorf("state %q is not one letter", f[0])
	}
	var errs []error
	num := func(text []byte, bits int) int64 {
		v, err := strconv.ParseInt(string(text), 10, bits)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	unum := func(text []byte) uint64 {
		v, err := strconv.ParseUint(string(text), 10, 64)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	pid := int32(num(bytes.TrimSpace(b[:open]), 32))
	ppid, pgrp, session, tpgid := int32(num(f[1], 32)), int32(num(f[2], 32)), int32(num(f[3], 32)), int32(num(f[5], 32))
	ticks := unum(f[11]) + unum(f[12])
	nice, threads := num(f[16], 64), num(f[17], 64)
	start, vsz := unum(f[19]), unum(f[20])
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p.pid, p.comm, p.state = pid, string(b[open+1:end]), f[0][0]
	p.ppid, p.pgrp, p.session, p.tpgid = ppid, pgrp, session, tpgid
	p.ticks, p.nice, p.threads, p.start, p.vszKiB = ticks, nice, threads, start, int64(vsz/1024)
	return nil
}

// status reads the effective UID (ps's uid) and VmLck from the status file.
func (rd *procReader) status(p *proc) error {
	if p.statusRead {
		return nil
	}
	b, err := rd.read(p.pid, "status")
	if err == nil {
		p.euid, p.locked, err = parseProcStatus(b)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", rd.filePath(p.pid, "status"), err)
	}
	p.statusRead = true
	return nil
}

func parseProcStatus(b []byte) (euid uint32, locked bool, err error) {
	haveUID := false
	for line := range bytes.Lines(b) {
		key, value, _ := bytes.Cut(line, []byte{':'})
		switch string(key) {
		case "Uid":
			fields := bytes.Fields(value)
			if len(fields) < 2 {
				return 0, false, fmt.Errorf("line %q has no effective UID", bytes.TrimSpace(line))
			}
			v, err := strconv.ParseUint(string(fields[1]), 10, 32)
			if err != nil {
				return 0, false, fmt.Errorf("line %q: %w", bytes.TrimSpace(line), err)
			}
			euid, haveUID = uint32(v), true
		case "VmLck":
			fields := bytes.Fields(value)
			locked = len(fields) > 0 && string(fields[0]) != "0"
		}
	}
	if !haveUID {
		return 0, false, errors.New("no Uid line")
	}
	return euid, locked, nil
}

// euid is the effective UID, ps's uid column. On procfs it is the owner
// of the process's directory: the kernel keeps that the effective UID even
// for a process that is not dumpable, whose files it gives to root, so
// that a stat can answer what takes the much costlier status file else.
// A fixture tree has only its status file to tell.
func (rd *procReader) euid(p *proc) (uint32, error) {
	if p.statusRead || !rd.procfs {
		err := rd.status(p)
		return p.euid, err
	}
	var st syscall.Stat_t
	dir := rd.root + "/" + strconv.Itoa(int(p.pid))
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return st.Uid, nil
}

// statHas is -s: whether ps's STAT column holds text. Of its letters only
// the 'L' of locked memory comes from the status file, read only when the
// answer turns on it.
func (rd *procReader) statHas(p *proc, text string) (bool, error) {
	if !p.statusRead {
		without, with := strings.Contains(p.psStat(false), text), strings.Contains(p.psStat(true), text)
		if without == with {
			return without, nil
		}
		if err := rd.status(p); err != nil {
			return false, err
		}
	}
	return strings.Contains(p.psStat(p.locked), text), nil
}

// rss is the resident set in KiB, from statm as ps reads it.
func (rd *procReader) rss(p *proc) (int64, error) {
	if p.rssRead {
		return p.rssKiB, nil
	}
	b, err := rd.read(p.pid, "statm")
	var pages uint64
	if err == nil {
		pages, err = parseProcStatm(b)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", rd.filePath(p.pid, "statm"), err)
	}
	p.rssKiB, p.rssRead = int64(pages*uint64(os.Getpagesize())/1024), true
	return p.rssKiB, nil
}

// parseProcStatm reads the resident pages of a statm file, which gopsutil
// reads only when its first six fields are numbers.
func parseProcStatm(b []byte) (uint64, error) {
	fields := bytes.Split(bytes.TrimRight(b, "\n"), []byte{' '})
	if len(fields) < 6 {
		return 0, fmt.Errorf("%d fields, want at least 6", len(fields))
	}
	var rss uint64
	for i, f := range fields[:6] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, err
		}
		if i == 1 {
			rss = v
		}
	}
	return rss, nil
}

// readCmdline reads p's command line as ps's args column shows it: its
// NULs and newlines as spaces and other control bytes as '?'.
func (rd *procReader) readCmdline(p *proc) error {
	if p.cmdlineRead {
		return nil
	}
	b, _, err := rd.readKept(p.pid, procKeptCmdline)
	if err != nil {
		return fmt.Errorf("read %s: %w", rd.filePath(p.pid, "cmdline"), err)
	}
	p.cmdline, p.cmdlineRead = psArgs(b), true
	return nil
}

// args is ps's args column: the command line, or "[comm]" when it is empty,
// as for kernel threads, with " <defunct>" for a zombie.
func (rd *procReader) args(p *proc) (string, error) {
	if err := rd.readCmdline(p); err != nil || p.cmdline != "" {
		return p.cmdline, err
	}
	if err := rd.stat(p); err != nil {
		return "", err
	}
	return noArgs(p.comm, p.state == 'Z'), nil
}

// argsMatch applies match to ps's args column. Whether a process without a
// command line is a zombie takes its stat file; that is read only when
// match tells "[comm]" and "[comm] <defunct>" apart.
func (rd *procReader) argsMatch(p *proc, match func(string) bool) (bool, error) {
	if err := rd.readCmdline(p); err != nil {
		return false, err
	}
	if p.cmdline == "" && !p.statRead {
		comm, err := rd.comm(p)
		if err != nil {
			return false, err
		}
		if live, zombie := match(noArgs(comm, false)), match(noArgs(comm, true)); live == zombie {
			return live, nil
		}
	}
	args, err := rd.args(p)
	return err == nil && match(args), err
}

// readUptime reads the seconds since boot, which ps measures ages from.
func (rd *procReader) readUptime() error {
	b, err := rd.read(0, "uptime")
	if err != nil {
		return fmt.Errorf("read %s: %w", rd.filePath(0, "uptime"), err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return fmt.Errorf("read %s: empty", rd.filePath(0, "uptime"))
	}
	up, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || up < 0 || math.IsInf(up, 0) {
		return fmt.Errorf("read %s: uptime %q is not a number of seconds", rd.filePath(0, "uptime"), fields[0])
	}
	rd.uptime = up
	return nil
}

// elapsed is the process's age in whole seconds, ps's etime.
func (rd *procReader) elapsed(p *proc) int64 {
	return max(0, int64(rd.uptime-float64(p.start)/userHZ))
}

// pcpu is ps's %CPU: CPU time over the process's whole life, truncated to
// tenths of a percent, and to whole percents from 100% up, as procps does.
func (rd *procReader) pcpu(p *proc) float64 {
	secs := rd.elapsed(p)
	if secs == 0 {
		return 0
	}
	tenths := p.ticks * 1000 / userHZ / uint64(secs)
	if tenths > 999 {
		return float64(tenths / 10)
	}
	return float64(tenths) / 10
}

// describe is the twin's -vv line for a matching process.
func (rd *procReader) describe(p *proc) (string, error) {
	err := rd.status(p)
	rss, rssErr := rd.rss(p)
	args, argsErr := rd.args(p)
	return fmt.Sprintf("Matched: uid=%d vsz=%d rss=%d pid=%d ppid=%d pcpu=%.2f stat=%s etime=%s prog=%s args=%s",
		p.euid, p.vszKiB, rss, p.pid, p.ppid, rd.pcpu(p), p.psStat(p.locked), psEtime(rd.elapsed(p)), psProg(p.comm), args), errors.Join(err, rssErr, argsErr)
}

// gone reports whether err says the process exited while it was being read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}
