package agent

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/immune-ops/immune/dirlock"
	"github.com/immune-ops/immune/nagios"
)

// Entry is one result waiting in the spool, in the form it is sent in: the
// perfdata is kept as text so it goes out exactly as the check printed it.
type Entry struct {
	// Seq is the entry's place in the spool, given by Append.
	Seq     uint64       `json:"seq"`
	Service string       `json:"service"`
	State   nagios.State `json:"state"`
	// Output is the status line, Long the lines after it, both without perfdata.
	Output string   `json:"output"`
	Long   string   `json:"long,omitempty"`
	Perf   []string `json:"perf,omitempty"`
	// Start and End are when the check ran.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Spool is a bounded on-disk FIFO of results with one cursor per target, so
// a target that is down neither blocks another nor loses its own results.
//
// Entries are JSON lines in segment files named for the sequence number of
// their first entry. Append writes and fsyncs the line before it returns. A
// target's cursor, the first entry it has not accepted, is a small file
// replaced atomically on Ack; a segment is deleted once every target's
// cursor has passed it. Delivery is at least once: entries sent after the
// last Ack before a crash are sent again after it. A line torn by a crash
// is cut off (or, if one is ever found mid-file, skipped) with a log line.
//
// The segments take at most maxBytes on disk. When an Append would pass
// that, whole segments are dropped, oldest first, and each drop is logged
// for every target that had not yet accepted the entries in it: how many
// it lost and the time range of their checks.
//
// When the disk does not take a write (full, read-only, an I/O error),
// entries wait in memory, after those on disk, and are delivered from
// there; each later Append and Ack tries the disk again and moves them to
// it once it takes them. Memory holds at most memMaxBytes of entries: past
// that the oldest there is dropped, counted and logged. A spool opened with
// OpenMemorySpool, for a directory that cannot be used at all, keeps
// everything in memory: it lasts as long as the agent.
type Spool struct {
	dir      string
	maxBytes int64
	// segBytes is where a segment is closed and a new one started: small
	// enough that a drop loses an eighth of the spool, not all of it.
	segBytes    int64
	memMaxBytes int64
	log         *slog.Logger

	mu      sync.Mutex
	segs    []*segment // oldest first; the last one is appended to
	tail    *os.File   // the last segment, open for appending; nil until the first Append
	next    uint64     // Seq of the next Append
	cursors map[string]*cursor
	lock    *dirlock.Lock // holds the spool's flock; nil for a memory spool
	closed  bool

	// mem holds, in Seq order, the entries the disk did not take; every
	// entry on disk comes before them.
	mem      []memEntry
	memBytes int64
	// openErr is why the directory could not be used (a memory spool);
	// writeErr, the last failed write while entries or cursors wait in
	// memory, nil while the disk takes everything.
	openErr, writeErr error
}

// memEntry is an entry waiting in memory, with its line as written to disk.
type memEntry struct {
	e    Entry
	line []byte
}

// SpoolHealth is what a Spool says of its disk.
type SpoolHealth struct {
	Dir string
	// OpenErr is set when the directory could not be used: entries are
	// kept in memory only, and lost when the agent stops.
	OpenErr error
	// WriteErr is set while the disk refuses writes and entries wait in memory.
	WriteErr error
	// InMemory entries, of MemoryBytes, wait in memory for the disk or a target.
	InMemory    int
	MemoryBytes int64
}

type segment struct {
	first uint64 // Seq of its first entry, from the file name
	last  uint64 // Seq of its last entry, first-1 while empty
	size  int64
}

type cursor struct {
	next uint64 // the first Seq the target has not accepted
	// readSeg, readOff and readSeq say where Peek stopped, so the next
	// Peek reads on from there instead of from the segment's start.
	readSeg, readOff, readSeq uint64
	wake                      chan struct{}
	dropped                   uint64
	// dirty is set when the cursor moved but could not be saved.
	dirty bool
}

const (
	segSuffix    = ".jsonl"
	cursorPrefix = "cursor-"
	cursorSuffix = ".json"
	maxSegBytes  = 4 << 20
	// maxMemBytes bounds the entries kept in memory while the disk does
	// not take them, when the spool's own bound is larger.
	maxMemBytes = 16 << 20
	// maxSeq bounds the numbers read back from the files: no spool
	// appends 2^63 results, so a larger one is damage, and taken as it is
	// it would wrap the next number round to 0, past every cursor.
	maxSeq = 1 << 63
)

// OpenSpool opens (creating it when missing) the spool in dir for the given
// targets, and takes a lock on it: two agents on one spool would lose results.
func OpenSpool(dir string, maxBytes int64, targets []string, log *slog.Logger) (_ *Spool, err error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("open spool %s: bound of %d bytes: must be positive", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	s := newSpool(dir, maxBytes, log)
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.loadSegments(); err != nil {
		return nil, err
	}
	if err := s.loadCursors(targets); err != nil {
		return nil, err
	}
	if err := s.collect(); err != nil {
		return nil, err
	}
	for s.total() > s.maxBytes && len(s.segs) > 1 {
		if err := s.dropOldest(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// OpenMemorySpool makes a spool that keeps its entries in memory only, for
// when the spool in dir cannot be opened: why is openErr, which Health
// reports. Its entries are lost when the agent stops.
func OpenMemorySpool(dir string, maxBytes int64, targets []string, openErr error, log *slog.Logger) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("open spool %s: bound of %d bytes: must be positive", dir, maxBytes)
	}
	s := newSpool(dir, maxBytes, log)
	s.openErr = openErr
	for _, t := range targets {
		if err := checkTarget(t); err != nil {
			return nil, err
		}
		s.cursors[t] = &cursor{next: 1, wake: make(chan struct{}, 1)}
	}
	return s, nil
}

func newSpool(dir string, maxBytes int64, log *slog.Logger) *Spool {
	return &Spool{
		dir:         dir,
		maxBytes:    maxBytes,
		segBytes:    min(max(maxBytes/8, 1), maxSegBytes),
		memMaxBytes: min(maxBytes, maxMemBytes),
		log:         log,
		cursors:     map[string]*cursor{},
		next:        1,
	}
}

func checkTarget(t string) error {
	if t == "" || strings.ContainsAny(t, `/\`) {
		return fmt.Errorf("open spool: bad target name %q", t)
	}
	return nil
}

func lockDir(dir string) (*dirlock.Lock, error) {
	return dirlock.Take(dir, "agent's spool")
}

// loadSegments finds the segment files and reads the last one, which may
// end in a line torn by a crash: that is cut off, so appends start clean.
func (s *Spool) loadSegments() error {
	names, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read spool dir: %w", err)
	}
	for _, de := range names {
		name := de.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || first == 0 {
			s.log.Warn("spool: ignoring a file that is not a segment", "file", filepath.Join(s.dir, name))
			continue
		}
		info, err := de.Info()
		if err != nil {
			return fmt.Errorf("read spool segment %s: %w", name, err)
		}
		s.segs = append(s.segs, &segment{first: first, last: first - 1, size: info.Size()})
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmp.Compare(a.first, b.first) })
	// Entries run on from one segment to the next, so only the last one
	// needs reading to know where the spool ends.
	for i := 0; i+1 < len(s.segs); i++ {
		s.segs[i].last = s.segs[i+1].first - 1
	}
	if len(s.segs) == 0 {
		return nil
	}
	tail := s.segs[len(s.segs)-1]
	good, err := s.scanTail(tail)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.segPath(tail.first), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open spool segment: %w", err)
	}
	s.tail = f
	if good < tail.size {
		s.log.Warn("spool: cutting off a torn last line, left by a crash", "file", f.Name(), "bytes", tail.size-good)
		if err := f.Truncate(good); err != nil {
			return fmt.Errorf("cut torn line from spool segment: %w", err)
		}
		tail.size = good
	}
	s.next = tail.last + 1
	return nil
}

// scanTail reads seg's entries to find its last Seq, and returns the length
// of its complete lines.
func (s *Spool) scanTail(seg *segment) (int64, error) {
	f, err := os.Open(s.segPath(seg.first))
	if err != nil {
		return 0, fmt.Errorf("open spool segment: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return off, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read spool segment %s: %w", f.Name(), err)
		}
		off += int64(len(line))
		if e, ok := s.decode(f.Name(), line); ok && e.Seq > seg.last {
			seg.last = e.Seq
		}
	}
}

// decode reads one line, logging one that cannot be read.
func (s *Spool) decode(file string, line []byte) (Entry, bool) {
	var e Entry
	err := json.Unmarshal(line, &e)
	if err == nil && (e.Seq == 0 || e.Seq >= maxSeq) {
		err = fmt.Errorf("seq %d out of range", e.Seq)
	}
	if err != nil {
		s.log.Warn("spool: skipping an entry that cannot be read", "file", file, "error", err, "bytes", len(line))
		return Entry{}, false
	}
	return e, true
}

// loadCursors reads each target's cursor. A target new to the spool starts
// at its end: the entries before were meant for the other targets. Cursors
// of targets no longer configured are removed, so they hold no segments.
func (s *Spool) loadCursors(targets []string) error {
	var fresh []*cursor
	for _, t := range targets {
		if err := checkTarget(t); err != nil {
			return err
		}
		c := &cursor{wake: make(chan struct{}, 1)}
		data, err := os.ReadFile(s.cursorPath(t))
		switch {
		case errors.Is(err, os.ErrNotExist):
			fresh = append(fresh, c)
		case err != nil:
			return fmt.Errorf("read spool cursor: %w", err)
		default:
			var v struct{ Next uint64 }
			err := json.Unmarshal(data, &v)
			if err == nil && v.Next >= maxSeq {
				err = fmt.Errorf("next %d out of range", v.Next)
			}
			if err != nil {
				// Sending again beats losing: start from the oldest entry.
				s.log.Warn("spool: cursor cannot be read, resending every entry kept", "target", t, "error", err)
				v.Next = 0 // a type error may leave a number decoded before it
			}
			c.next = v.Next
			// A cursor past the end would make the next entries invisible.
			s.next = max(s.next, c.next)
		}
		s.cursors[t] = c
	}
	for _, c := range fresh {
		c.next = s.next
	}
	for t, c := range s.cursors {
		if err := s.saveCursor(t, c); err != nil {
			return err
		}
	}
	stale, err := filepath.Glob(filepath.Join(s.dir, cursorPrefix+"*"+cursorSuffix))
	if err != nil {
		return fmt.Errorf("list spool cursors: %w", err)
	}
	for _, p := range stale {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), cursorPrefix), cursorSuffix)
		if _, ok := s.cursors[name]; !ok {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove cursor of a target no longer configured: %w", err)
			}
		}
	}
	return nil
}

func (s *Spool) segPath(first uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", first, segSuffix))
}

func (s *Spool) cursorPath(target string) string {
	return filepath.Join(s.dir, cursorPrefix+target+cursorSuffix)
}

func (s *Spool) saveCursor(target string, c *cursor) error {
	data, err := json.Marshal(struct {
		Next uint64 `json:"next"`
	}{c.next})
	if err != nil {
		return fmt.Errorf("encode spool cursor: %w", err)
	}
	if err := renameio.WriteFile(s.cursorPath(target), data, 0o600); err != nil {
		return fmt.Errorf("save spool cursor of %s: %w", target, err)
	}
	return nil
}

func (s *Spool) total() int64 {
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

// Append adds e at the end of the spool, numbering it: durably, or in
// memory while the disk does not take it. It fails only for an entry
// larger than the whole spool, or a closed spool.
func (s *Spool) Append(e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("append to spool: closed")
	}
	e.Seq = s.next
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode spool entry: %w", err)
	}
	data = append(data, '\n')
	if size := int64(len(data)); size > s.maxBytes {
		return fmt.Errorf("append to spool: a result of %d bytes is larger than the whole spool (%d bytes)", size, s.maxBytes)
	}
	s.next++
	// Behind what waits in memory, so that the order holds.
	s.mem = append(s.mem, memEntry{e: e, line: data})
	s.memBytes += int64(len(data))
	s.diskResult(s.retryDisk())
	s.boundMemory()
	for _, c := range s.cursors {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// retryDisk saves the cursors that could not be saved and moves what waits
// in memory to disk, as far as the disk takes it.
func (s *Spool) retryDisk() error {
	if s.openErr != nil {
		return nil
	}
	for t, c := range s.cursors {
		if c.dirty {
			if err := s.saveCursor(t, c); err != nil {
				return err
			}
			c.dirty = false
		}
	}
	if len(s.mem) == 0 {
		return nil
	}
	list := s.mem
	if s.writeErr != nil {
		// One entry tries the disk: what waits in memory may be megabytes.
		list = list[:1]
	}
	n, err := s.writeDisk(list)
	if err == nil && n < len(s.mem) {
		var more int
		more, err = s.writeDisk(s.mem[n:])
		n += more
	}
	for _, m := range s.mem[:n] {
		s.memBytes -= int64(len(m.line))
	}
	s.mem = slices.Delete(s.mem, 0, n)
	if s.writeErr != nil && n > 0 {
		s.log.Info("spool: results moved from memory to disk", "dir", s.dir, "count", n)
	}
	return err
}

// collectMemory forgets the entries in memory every target has accepted.
func (s *Spool) collectMemory() {
	low := uint64(math.MaxUint64)
	for _, c := range s.cursors {
		low = min(low, c.next)
	}
	n := 0
	for n < len(s.mem) && s.mem[n].e.Seq < low {
		s.memBytes -= int64(len(s.mem[n].line))
		n++
	}
	s.mem = slices.Delete(s.mem, 0, n)
}

// diskResult notes the outcome of a write: a new failure is logged once,
// and so is the recovery.
func (s *Spool) diskResult(err error) {
	switch {
	case err != nil && s.writeErr == nil:
		s.log.Warn("spool: cannot write to disk; results wait in memory until it takes them",
			"dir", s.dir, "error", err, "memory_max_bytes", s.memMaxBytes)
	case err == nil && s.writeErr != nil:
		s.log.Info("spool: writing to disk again", "dir", s.dir)
	}
	s.writeErr = err
}

// boundMemory drops the oldest entries in memory while they pass the
// bound, moving every cursor past them, and logs what each target lost.
func (s *Spool) boundMemory() {
	for s.memBytes > s.memMaxBytes && len(s.mem) > 1 {
		m := s.mem[0]
		s.mem = slices.Delete(s.mem, 0, 1)
		s.memBytes -= int64(len(m.line))
		for name, c := range s.cursors {
			if c.next > m.e.Seq {
				continue
			}
			c.dropped++
			c.next = m.e.Seq + 1
			s.log.Warn("spool: memory bound reached while results cannot go to disk: dropped the oldest result in memory before it was delivered",
				"target", name, "service", m.e.Service, "check_time", m.e.Start, "memory_max_bytes", s.memMaxBytes, "disk_error", s.writeErr)
		}
	}
}

// writeDisk appends list, entries in Seq order that follow those on disk,
// to the segments, with one fsync a segment, and returns how many of them
// are durable. A write that fails is cut off again.
func (s *Spool) writeDisk(list []memEntry) (int, error) {
	done := 0
	for done < len(list) {
		first := list[done].e.Seq
		if err := s.rollFor(first, int64(len(list[done].line))); err != nil {
			return done, err
		}
		seg := s.segs[len(s.segs)-1]
		var buf []byte
		n := 0
		for _, m := range list[done:] {
			size := int64(len(buf) + len(m.line))
			if n > 0 && (seg.size+size > s.segBytes || m.e.Seq != first+uint64(n)) {
				break
			}
			buf = append(buf, m.line...)
			n++
		}
		if _, err := s.tail.Write(buf); err != nil {
			s.undo(seg)
			return done, fmt.Errorf("append to spool: %w", err)
		}
		if err := s.tail.Sync(); err != nil {
			s.undo(seg)
			return done, fmt.Errorf("append to spool: sync: %w", err)
		}
		seg.size += int64(len(buf))
		seg.last = first + uint64(n) - 1
		done += n
		for s.total() > s.maxBytes && len(s.segs) > 1 {
			if err := s.dropOldest(); err != nil {
				// The entries are safe; only the bound could not be kept this time.
				s.log.Error("spool: cannot drop the oldest results to keep the bound", "error", err)
				break
			}
		}
	}
	return done, nil
}

// undo cuts a failed append's partial line off the tail, so that the next
// append does not glue onto it.
func (s *Spool) undo(seg *segment) {
	if err := s.tail.Truncate(seg.size); err != nil {
		s.log.Error("spool: cannot cut a failed append off the tail segment", "file", s.tail.Name(), "error", err)
	}
}

// rollFor starts a new tail segment for the entry seq, of size bytes, when
// it does not belong in the current one: that is full, or seq does not
// follow its last entry (entries were dropped from memory in between),
// since a segment's entries run on without a gap.
func (s *Spool) rollFor(seq uint64, size int64) error {
	if s.tail != nil {
		tail := s.segs[len(s.segs)-1]
		switch {
		case tail.size == 0 && tail.first == seq:
			return nil
		case tail.size == 0:
			// Left empty by a failed write, and named for an entry since dropped.
			if err := os.Remove(s.segPath(tail.first)); err == nil {
				s.tail.Close()
				s.tail = nil
				s.segs = s.segs[:len(s.segs)-1]
			}
		case tail.size+size <= s.segBytes && tail.last+1 == seq:
			return nil
		}
	}
	return s.roll(seq)
}

// roll starts a new tail segment, for entries from seq on.
func (s *Spool) roll(seq uint64) error {
	f, err := os.OpenFile(s.segPath(seq), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("start spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if s.tail != nil {
		s.tail.Close()
	}
	s.tail = f
	s.segs = append(s.segs, &segment{first: seq, last: seq - 1})
	return nil
}

// syncDir makes the names of new files in dir durable, not only their
// content: the spool's new segments, a release renamed into place.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// dropOldest deletes the oldest segment to make room, moving every cursor
// still in it past it, and logs what each target lost.
func (s *Spool) dropOldest() error {
	seg := s.segs[0]
	entries, err := s.readSegment(seg, 0, 0, -1)
	if err != nil {
		s.log.Error("spool: cannot read a dropped segment to log what was lost", "error", err)
	}
	for name, c := range s.cursors {
		if c.next > seg.last {
			continue
		}
		var lost []Entry
		for _, e := range entries.list {
			if e.Seq >= c.next {
				lost = append(lost, e)
			}
		}
		n := seg.last - max(c.next, seg.first) + 1
		c.dropped += n
		attrs := []any{"target", name, "count", n, "spool_max_bytes", s.maxBytes}
		if len(lost) > 0 {
			attrs = append(attrs, "from", lost[0].Start, "to", lost[len(lost)-1].Start)
		}
		s.log.Warn("spool full: dropped the oldest results before they were delivered", attrs...)
		c.next = seg.last + 1
		if err := s.saveCursor(name, c); err != nil {
			return err
		}
	}
	return s.removeOldest()
}

func (s *Spool) removeOldest() error {
	if err := os.Remove(s.segPath(s.segs[0].first)); err != nil {
		return fmt.Errorf("remove spool segment: %w", err)
	}
	s.segs = s.segs[1:]
	return nil
}

// collect deletes the segments every target has accepted, but never the
// tail, which is still appended to.
func (s *Spool) collect() error {
	for len(s.segs) > 1 {
		for _, c := range s.cursors {
			if c.next <= s.segs[0].last {
				return nil
			}
		}
		if err := s.removeOldest(); err != nil {
			return err
		}
	}
	return nil
}

type readResult struct {
	list []Entry
	// end is the offset after the last entry read, and endSeq the Seq after it.
	end, endSeq uint64
}

// readSegment reads up to n entries (all when n < 0) of seg, from byte off,
// with a Seq of at least from.
func (s *Spool) readSegment(seg *segment, off, from uint64, n int) (readResult, error) {
	res := readResult{end: off}
	f, err := os.Open(s.segPath(seg.first))
	if err != nil {
		return res, fmt.Errorf("open spool segment: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(off), io.SeekStart); err != nil {
		return res, fmt.Errorf("read spool segment %s: %w", f.Name(), err)
	}
	r := bufio.NewReader(f)
	for n < 0 || len(res.list) < n {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read spool segment %s: %w", f.Name(), err)
		}
		res.end += uint64(len(line))
		e, ok := s.decode(f.Name(), bytes.TrimSpace(line))
		if !ok || e.Seq < from {
			continue
		}
		res.list = append(res.list, e)
		res.endSeq = e.Seq + 1
	}
	return res, nil
}

// Peek returns up to n entries the target has not accepted yet, oldest first.
func (s *Spool) Peek(target string, n int) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cursors[target]
	if !ok || s.closed {
		return nil, fmt.Errorf("peek spool: no target %q", target)
	}
	var out []Entry
	for _, seg := range s.segs {
		if seg.last < c.next || seg.first > seg.last {
			continue
		}
		var off uint64
		if c.readSeg == seg.first && c.readSeq == c.next {
			off = c.readOff
		}
		res, err := s.readSegment(seg, off, c.next, n-len(out))
		if err != nil {
			return out, err
		}
		out = append(out, res.list...)
		if len(res.list) > 0 {
			c.readSeg, c.readOff, c.readSeq = seg.first, res.end, res.endSeq
		}
		if len(out) >= n {
			return out, nil
		}
	}
	for _, m := range s.mem {
		if len(out) >= n {
			break
		}
		if m.e.Seq >= c.next {
			out = append(out, m.e)
		}
	}
	return out, nil
}

// Ack records that the target accepted every entry up to seq, durably
// when the disk takes it, and deletes the segments and forgets the entries
// in memory that no target needs any more. A cursor the disk does not
// take is kept in memory and saved later: a crash meanwhile only sends
// some results again.
func (s *Spool) Ack(target string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cursors[target]
	if !ok || s.closed {
		return fmt.Errorf("ack spool: no target %q", target)
	}
	// A drop may have moved the cursor past what the target just sent.
	if seq < c.next {
		return nil
	}
	c.next = seq + 1
	c.dirty = true
	s.collectMemory()
	if s.openErr != nil {
		return nil
	}
	err := s.retryDisk()
	if err == nil {
		err = s.collect()
	}
	s.diskResult(err)
	return nil
}

// Pending is how many entries the target has not accepted yet.
func (s *Spool) Pending(target string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cursors[target]
	if !ok {
		return 0
	}
	var n uint64
	for _, seg := range s.segs {
		if from := max(c.next, seg.first); from <= seg.last {
			n += seg.last - from + 1
		}
	}
	for _, m := range s.mem {
		if m.e.Seq >= c.next {
			n++
		}
	}
	return n
}

// Health reports whether the spool is on disk and the disk takes writes.
func (s *Spool) Health() SpoolHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolHealth{Dir: s.dir, OpenErr: s.openErr, WriteErr: s.writeErr, InMemory: len(s.mem), MemoryBytes: s.memBytes}
}

// Dropped is how many entries the target lost to the bound since the spool was opened.
func (s *Spool) Dropped(target string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cursors[target]; ok {
		return c.dropped
	}
	return 0
}

// Wake returns a channel that receives after an Append, to wake the
// target's delivery loop.
func (s *Spool) Wake(target string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cursors[target]; ok {
		return c.wake
	}
	return nil
}

// Close moves what waits in memory to disk if it can, logging what it
// cannot, closes the spool's files and releases its lock.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.collectMemory()
	s.diskResult(s.retryDisk())
	if len(s.mem) > 0 {
		reason := s.openErr
		if reason == nil {
			reason = s.writeErr
		}
		s.log.Error("spool: results held in memory are lost as the spool closes: the disk does not take them",
			"dir", s.dir, "count", len(s.mem), "from", s.mem[0].e.Start, "to", s.mem[len(s.mem)-1].e.Start, "error", reason)
	}
	var errs []error
	if s.tail != nil {
		errs = append(errs, s.tail.Close())
		s.tail = nil
	}
	if s.lock != nil {
		// Closing the file releases the flock.
		errs = append(errs, s.lock.Release())
		s.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}
