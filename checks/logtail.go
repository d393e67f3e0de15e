package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
)

// Helpers shared by the checks that read logs: walking a file's lines
// backwards from its end, counting appended lines, knowing whether a log is
// still the file a state file described, and writing that state atomically.

const (
	// tailBlock is how much a log is read at a time.
	tailBlock = 64 << 10
	// maxLineHead is how much of one line a check looks at: a log can hold a
	// single line of gigabytes (a dumped request body), and matching its
	// head is enough to recognise it without holding it in memory.
	maxLineHead = 64 << 10
	// fingerprintLen is how many bytes at the start of a log and before a
	// saved offset are kept to recognise the same log.
	fingerprintLen = 64
)

// scanBackward passes the complete lines of r that lie in [from, to) to fn,
// last line first, without their newline and cut to their first maxLineHead
// bytes; fn must not keep the slice. It stops early when fn returns false.
// from must be the start of a line. The text after the last newline is a
// line still being written, so it is left for a later run; the offset just
// past that last newline (from, when there is none) is returned, as the
// place a later run starts from.
func scanBackward(ctx context.Context, r io.ReaderAt, from, to int64, fn func(line []byte) bool) (int64, error) {
	lo := to       // buf holds the bytes [lo, lo+len(buf))
	var buf []byte // unsent lines; the last ends just before a newline, or at to
	complete := false
	end := from
	for {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			if !complete {
				end, complete = lo+int64(i)+1, true
			} else if !fn(lineHead(buf[i+1:])) {
				return end, nil
			}
			buf = buf[:i]
			continue
		}
		if lo <= from {
			if complete {
				fn(lineHead(buf))
			}
			return end, nil
		}
		if err := ctx.Err(); err != nil {
			return end, err
		}
		if len(buf) >= maxLineHead {
			start, before, err := skipLongLine(ctx, r, from, lo)
			if err != nil {
				return end, err
			}
			if !complete {
				end, complete = start, true
			} else {
				head := make([]byte, min(maxLineHead, lo+int64(len(buf))-start))
				if err := readFullAt(r, head, start); err != nil {
					return end, err
				}
				if !fn(head) {
					return end, nil
				}
			}
			if start <= from {
				return end, nil
			}
			lo, buf = start-1-int64(len(before)), before
			continue
		}
		n := min(tailBlock, lo-from)
		block := make([]byte, int(n), int(n)+len(buf))
		if err := readFullAt(r, block, lo-n); err != nil {
			return end, err
		}
		buf = append(block, buf...)
		lo -= n
	}
}

// lineHead is the part of a line the checks look at.
func lineHead(line []byte) []byte { return line[:min(len(line), maxLineHead)] }

// skipLongLine finds the start of the line that reaches back past lo,
// reading backwards without keeping the line. It returns the line's start
// and the bytes of the block where the line starts that come before its
// newline, so the caller can go on from there without reading them again.
func skipLongLine(ctx context.Context, r io.ReaderAt, from, lo int64) (int64, []byte, error) {
	block := make([]byte, tailBlock)
	for lo > from {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		n := min(tailBlock, lo-from)
		b := block[:n]
		if err := readFullAt(r, b, lo-n); err != nil {
			return 0, nil, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return lo - n + int64(i) + 1, bytes.Clone(b[:i]), nil
		}
		lo -= n
	}
	return from, nil, nil
}

// readFullAt reads len(b) bytes at off; a file that shrank while it was
// read is an error rather than a short line.
func readFullAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(b), off, err)
}

// countNewlines counts the newlines in [from, to) of r.
func countNewlines(ctx context.Context, r io.ReaderAt, from, to int64) (int64, error) {
	buf := make([]byte, 1<<20)
	var lines int64
	for off := from; off < to; {
		if err := ctx.Err(); err != nil {
			return lines, err
		}
		b := buf[:min(int64(len(buf)), to-off)]
		if err := readFullAt(r, b, off); err != nil {
			return lines, err
		}
		lines += int64(bytes.Count(b, []byte{'\n'}))
		off += int64(len(b))
	}
	return lines, nil
}

// logPosition is where a check stopped reading a log, and how to tell that
// the log there is still the same file.
type logPosition struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	// Offset is the first byte not read yet.
	Offset int64 `json:"offset"`
	// Head and Tail are the first bytes of the log and the bytes just
	// before Offset. A copytruncate keeps the inode, and the new log may
	// have grown back past Offset before the next run: other bytes there
	// tell it apart from the same log grown.
	Head []byte `json:"head,omitempty"`
	Tail []byte `json:"tail,omitempty"`
}

// fileID returns the device and inode of a file; zeros where the system
// does not say, which leaves the size and fingerprint to tell rotations.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// positionAt describes offset in the open log f.
func positionAt(f io.ReaderAt, fi fs.FileInfo, offset int64) (logPosition, error) {
	p := logPosition{Offset: offset}
	p.Dev, p.Inode = fileID(fi)
	n := min(offset, fingerprintLen)
	p.Head, p.Tail = make([]byte, n), make([]byte, n)
	if err := readFullAt(f, p.Head, 0); err != nil {
		return p, err
	}
	if err := readFullAt(f, p.Tail, offset-n); err != nil {
		return p, err
	}
	return p, nil
}

// continues reports whether the open log f is the file p was taken from, no
// shorter than p.Offset: then reading may go on from there. Otherwise the log
// was rotated (renamed, truncated or replaced) and the new file is read from
// its start.
func (p logPosition) continues(f io.ReaderAt, fi fs.FileInfo) bool {
	dev, ino := fileID(fi)
	if dev != p.Dev || ino != p.Inode || fi.Size() < p.Offset ||
		int64(len(p.Head)) > p.Offset || int64(len(p.Tail)) > p.Offset {
		return false
	}
	return bytesAt(f, 0, p.Head) && bytesAt(f, p.Offset-int64(len(p.Tail)), p.Tail)
}

// bytesAt reports whether f holds want at off.
func bytesAt(f io.ReaderAt, off int64, want []byte) bool {
	got := make([]byte, len(want))
	if err := readFullAt(f, got, off); err != nil {
		return false
	}
	return bytes.Equal(got, want)
}

// errCorruptState marks a state file that cannot be read back: the check
// starts afresh and overwrites it, rather than failing until someone
// deletes it.
var errCorruptState = errors.New("corrupt state file")

// loadState reads a state file into v. A missing file gives found false and
// no error; one that does not decode gives errCorruptState.
func loadState(path string, v any) (found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%w %s: %v", errCorruptState, path, err)
	}
	return true, nil
}

// saveState writes v to path through a temporary file and a rename, so a
// reader (or the next run, after a crash) sees the old state or the new
// one, never half of one.
func saveState(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := renameio.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state file %s: %w", path, err)
	}
	return nil
}

// pathError drops the operation and path that os errors repeat, for
// messages that name the path themselves.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
