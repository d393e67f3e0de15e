package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"unsafe"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/disk"
)

var diskSystem = diskEnv{mounts: diskSystemMounts, usage: diskSystemUsage, stat: diskSystemStat}

// diskSystemMounts reads the mount table through gopsutil, from the file
// it reads (pid 1's mountinfo under the proc root), and keeps it while the
// kernel says that file has not changed.
func diskSystemMounts(ctx context.Context) ([]diskMount, error) {
	path := procPath(ctx, "1", "mountinfo")
	if hpm := diskEnvValue(ctx, common.HostProcMountinfo); hpm != "" {
		path = filepath.Join(filepath.Dir(hpm), "mountinfo")
	}
	return diskMountTables.get(path).read(func() ([]diskMount, error) {
		parts, err := disk.PartitionsWithContext(ctx, true)
		if err != nil {
			return nil, fmt.Errorf("read the mount table: %w", err)
		}
		mounts := make([]diskMount, len(parts))
		for i, p := range parts {
			mounts[i] = diskMount{Device: p.Device, Dir: p.Mountpoint, Type: p.Fstype}
		}
		return mounts, nil
	})
}

// diskEnvValue is gopsutil's setting key as it will see it under ctx: from
// the context first, else from the environment.
func diskEnvValue(ctx context.Context, key common.EnvKeyType) string {
	if env, ok := ctx.Value(common.EnvKey).(common.EnvMap); ok && env[key] != "" {
		return env[key]
	}
	return os.Getenv(string(key))
}

// diskMountTables holds one cached mount table per mountinfo file, shared by
// every check_disk of the process: the agent runs them all against the same
// /proc, so one open file and one parse serve them all. Its files stay open
// for the life of the process, one per proc root, so no check has to close
// them.
var diskMountTables diskMountCache

type diskMountCache struct {
	mu     sync.Mutex
	tables map[string]*diskMountTable
}

func (c *diskMountCache) get(path string) *diskMountTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tables[path]
	if !ok {
		t = &diskMountTable{path: path, fd: -1}
		if c.tables == nil {
			c.tables = map[string]*diskMountTable{}
		}
		c.tables[path] = t
	}
	return t
}

// diskMountTable is the last mount table read, and an open descriptor of
// the mountinfo file it came from. proc(5): a mountinfo file polls with
// POLLPRI and POLLERR once after each change to its mount namespace, and
// each poll consumes the change, so a zero-timeout poll per run tells
// whether the table must be read again.
type diskMountTable struct {
	path   string
	mu     sync.Mutex
	fd     int // -1: not open, or not a procfs file, which no poll can watch
	mounts []diskMount
}

// procSuperMagic is the f_type statfs gives for procfs (linux/magic.h).
const procSuperMagic = 0x9fa0

// read returns the table, calling load for a new one unless the file is
// watched and the kernel reports no change since the last load. The table
// returned is shared: callers must not change it. A run that finds another
// one reading loads a table of its own rather than wait behind it, as a
// mount table can be slow to read while a mount hangs.
func (t *diskMountTable) read(load func() ([]diskMount, error)) ([]diskMount, error) {
	if !t.mu.TryLock() {
		return load()
	}
	defer t.mu.Unlock()
	if t.fd >= 0 && t.mounts != nil && !t.changed() {
		return t.mounts, nil
	}
	if t.fd < 0 {
		t.watch()
	}
	mounts, err := load()
	if err != nil || t.fd < 0 {
		t.mounts = nil
		return mounts, err
	}
	t.mounts = mounts
	return mounts, nil
}

// watch opens the file to poll it. It is opened with a raw system call on
// purpose: an os.File would join Go's network poller, whose epoll would
// take the change events before this check could see them. It is opened
// before the table is read, so that a change during the read shows in the
// next poll, at the cost of one more read.
func (t *diskMountTable) watch() {
	fd, err := syscall.Open(t.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var fs syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &fs); err != nil || fs.Type != procSuperMagic {
		// A fixture tree, or something else: read it on every run.
		_ = syscall.Close(fd)
		return
	}
	t.fd = fd
}

// changed polls the file without waiting. A poll that fails or flags the
// descriptor as bad counts as a change, and a bad descriptor is dropped,
// to be opened again on the next read.
func (t *diskMountTable) changed() bool {
	pfd := diskPollFd{fd: int32(t.fd), events: diskPollPri | diskPollErr}
	var now syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&now)), 0, 0, 0)
	switch {
	case errno != 0:
		return true
	case pfd.revents&diskPollNval != 0:
		_ = syscall.Close(t.fd)
		t.fd = -1
		return true
	}
	return n > 0 && pfd.revents&(diskPollPri|diskPollErr) != 0
}

// diskPollFd is struct pollfd of poll(2).
type diskPollFd struct {
	fd              int32
	events, revents int16
}

const (
	diskPollPri  = 0x2
	diskPollErr  = 0x8
	diskPollNval = 0x20
)

// diskStatfsCalls and diskStatCalls hold the file-system calls still running.
var (
	diskStatfsCalls diskCalls[diskUsage]
	diskStatCalls   diskCalls[struct{}]
)

func diskSystemUsage(ctx context.Context, dir string, mayHang bool) (diskUsage, error) {
	if !mayHang {
		if err := ctx.Err(); err != nil {
			return diskUsage{}, err
		}
		return diskStatfs(dir)
	}
	return diskStatfsCalls.do(ctx, dir, func() (diskUsage, error) { return diskStatfs(dir) })
}

// diskStatfs counts as gopsutil's disk.Usage does, in blocks of f_bsize.
func diskStatfs(dir string) (diskUsage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return diskUsage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bsize := uint64(st.Bsize)
	return diskUsage{
		Total: uint64(st.Blocks) * bsize, Free: uint64(st.Bfree) * bsize, Avail: uint64(st.Bavail) * bsize,
		Files: uint64(st.Files), FilesFree: uint64(st.Ffree),
	}, nil
}

func diskSystemStat(ctx context.Context, path string, mayHang bool) error {
	if !mayHang {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := os.Stat(path)
		return err
	}
	_, err := diskStatCalls.do(ctx, path, func() (struct{}, error) {
		_, err := os.Stat(path)
		return struct{}{}, err
	})
	return err
}

// diskCalls runs calls that a dead NFS server can hang for good in their
// own goroutine, so that a check can give up on them when its context ends;
// the goroutine ends when the call returns. At most one call per key runs:
// callers that come while it hangs wait for its answer rather than pinning
// one more OS thread each.
type diskCalls[T any] struct {
	mu    sync.Mutex
	calls map[string]*diskCall[T]
}

type diskCall[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func (b *diskCalls[T]) do(ctx context.Context, key string, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	b.mu.Lock()
	call, running := b.calls[key]
	if !running {
		call = &diskCall[T]{done: make(chan struct{})}
		if b.calls == nil {
			b.calls = map[string]*diskCall[T]{}
		}
		b.calls[key] = call
		go func() {
			defer close(call.done)
			defer func() {
				if p := recover(); p != nil {
					call.err = fmt.Errorf("%s: %v", key, p)
				}
				b.mu.Lock()
				delete(b.calls, key)
				b.mu.Unlock()
			}()
			call.val, call.err = fn()
		}()
	}
	b.mu.Unlock()
	select {
	case <-call.done:
		return call.val, call.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
