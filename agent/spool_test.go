package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// spoolLog is a logger whose lines the test can read.
type spoolLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *spoolLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *spoolLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *spoolLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// spoolEntry is a result numbered n, checked n minutes after a fixed time.
func spoolEntry(n int) Entry {
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
	return Entry{
		Service: "svc",
		State:   nagios.State(n % 4),
		Output:  fmt.Sprintf("result %d", n),
		Perf:    []string{fmt.Sprintf("n=%d;5;10", n)},
		Start:   at,
		End:     at.Add(time.Second),
	}
}

func openTestSpool(t *testing.T, dir string, maxBytes int64, log *slog.Logger, targets ...string) *Spool {
	t.Helper()
	s, err := OpenSpool(dir, maxBytes, targets, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for n := from; n <= to; n++ {
		if err := s.Append(spoolEntry(n)); err != nil {
			t.Fatalf("append %d: %v", n, err)
		}
	}
}

// outputs peeks everything the target has not accepted.
func outputs(t *testing.T, s *Spool, target string) []string {
	t.Helper()
	entries, err := s.Peek(target, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Output)
	}
	return out
}

func results(from, to int) []string {
	var out []string
	for n := from; n <= to; n++ {
		out = append(out, fmt.Sprintf("result %d", n))
	}
	return out
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestSpoolOrderAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	var log spoolLog
	// Small segments, so the entries span several files.
	s := openTestSpool(t, dir, 4000, log.logger(), "a")
	appendN(t, s, 1, 10)
	if got := outputs(t, s, "a"); !slices.Equal(got, results(1, 10)) {
		t.Fatalf("peek = %q", got)
	}
	if len(segmentFiles(t, dir)) < 2 {
		t.Fatalf("want entries in several segments, have %q", segmentFiles(t, dir))
	}
	batch, err := s.Peek("a", 4)
	if err != nil || len(batch) != 4 {
		t.Fatalf("peek 4 = %d entries, %v", len(batch), err)
	}
	if !reflect.DeepEqual(batch[0], withSeq(spoolEntry(1), 1)) {
		t.Errorf("entry read back = %+v, want %+v", batch[0], withSeq(spoolEntry(1), 1))
	}
	if err := s.Ack("a", batch[3].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestSpool(t, dir, 4000, log.logger(), "a")
	if got := s.Pending("a"); got != 6 {
		t.Errorf("pending after restart = %d, want 6", got)
	}
	appendN(t, s, 11, 12)
	if got := outputs(t, s, "a"); !slices.Equal(got, results(5, 12)) {
		t.Fatalf("peek after restart = %q, want results 5..12", got)
	}
	// Reading on from where the last peek stopped.
	if err := s.Ack("a", 8); err != nil {
		t.Fatal(err)
	}
	if got := outputs(t, s, "a"); !slices.Equal(got, results(9, 12)) {
		t.Fatalf("peek after ack 8 = %q", got)
	}
	if err := s.Ack("a", 12); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending("a"); got != 0 {
		t.Errorf("pending after all acked = %d", got)
	}
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Errorf("segments left after every entry was accepted: %q, want only the tail", files)
	}
	if strings.Contains(log.String(), "level=WARN") {
		t.Errorf("warnings in a clean run:\n%s", log.String())
	}
}

func withSeq(e Entry, seq uint64) Entry {
	e.Seq = seq
	return e
}

func TestSpoolBoundDropsOldest(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		appends  int
	}{
		{"a few segments", 2000, 60},
		{"many segments", 10000, 200},
		{"one entry per segment", 400, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var log spoolLog
			s := openTestSpool(t, dir, tt.maxBytes, log.logger(), "down", "up")
			for n := 1; n <= tt.appends; n++ {
				appendN(t, s, n, n)
				if err := s.Ack("up", uint64(n)); err != nil {
					t.Fatal(err)
				}
				var total int64
				for _, f := range segmentFiles(t, dir) {
					info, err := os.Stat(f)
					if err != nil {
						t.Fatal(err)
					}
					total += info.Size()
				}
				if total > tt.maxBytes {
					t.Fatalf("after %d appends the segments hold %d bytes, over the %d bound", n, total, tt.maxBytes)
				}
			}
			got := outputs(t, s, "down")
			if len(got) == 0 || len(got) == tt.appends {
				t.Fatalf("kept %d of %d entries: want the oldest dropped, the newest kept", len(got), tt.appends)
			}
			first := tt.appends - len(got) + 1
			if !slices.Equal(got, results(first, tt.appends)) {
				t.Fatalf("kept %q, want results %d..%d in order", got, first, tt.appends)
			}
			if d := s.Dropped("down"); d != uint64(first-1) {
				t.Errorf("Dropped = %d, want %d", d, first-1)
			}
			if d := s.Dropped("up"); d != 0 {
				t.Errorf("a target that accepted everything lost %d", d)
			}
			// Every drop is logged with its count and the time range of its checks.
			var dropped int
			for line := range strings.Lines(log.String()) {
				if !strings.Contains(line, "dropped the oldest") {
					continue
				}
				if !strings.Contains(line, "target=down") || !strings.Contains(line, "from=2026-01-02T") || !strings.Contains(line, "to=2026-01-02T") {
					t.Errorf("drop log line lacks target or time range: %s", line)
				}
				var n int
				if _, err := fmt.Sscanf(line[strings.Index(line, "count="):], "count=%d", &n); err != nil {
					t.Fatalf("no count in %s", line)
				}
				dropped += n
			}
			if dropped != first-1 {
				t.Errorf("logged %d dropped, want %d:\n%s", dropped, first-1, log.String())
			}
			if strings.Contains(log.String(), "target=up") {
				t.Errorf("drops logged for the target that had accepted them:\n%s", log.String())
			}
		})
	}
}

func TestSpoolRefusesEntryLargerThanBound(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), 300, slog.New(slog.DiscardHandler), "a")
	e := spoolEntry(1)
	e.Long = strings.Repeat("x", 400)
	if err := s.Append(e); err == nil || !strings.Contains(err.Error(), "larger than the whole spool") {
		t.Fatalf("append of an entry over the bound: %v", err)
	}
	appendN(t, s, 2, 2)
	if got := outputs(t, s, "a"); !slices.Equal(got, results(2, 2)) {
		t.Errorf("after a refused append: %q", got)
	}
}

func TestSpoolDamagedFiles(t *testing.T) {
	tests := []struct {
		name string
		// damage is written at the end of the newest segment, as a crash or a disk error would leave it.
		damage  string
		wantLog string
	}{
		{"torn last line", `{"seq":4,"service":"svc","sta`, "torn last line"},
		{"torn after a newline", "\n" + `{"seq":4,`, "torn last line"},
		{"garbage line", "not json at all\n", "cannot be read"},
		{"binary zeroes", "\x00\x00\x00\x00", "torn last line"},
		{"empty line", "\n", "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var log spoolLog
			s := openTestSpool(t, dir, 1<<20, log.logger(), "a")
			appendN(t, s, 1, 3)
			s.Close()
			files := segmentFiles(t, dir)
			f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tt.damage)
			f.Close()

			s = openTestSpool(t, dir, 1<<20, log.logger(), "a")
			appendN(t, s, 4, 5)
			if got := outputs(t, s, "a"); !slices.Equal(got, results(1, 5)) {
				t.Fatalf("after damage: %q, want results 1..5", got)
			}
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, log.String())
			}
			s.Close()
			// And once more: the repaired spool opens clean.
			s = openTestSpool(t, dir, 1<<20, log.logger(), "a")
			if got := outputs(t, s, "a"); !slices.Equal(got, results(1, 5)) {
				t.Fatalf("after reopening: %q", got)
			}
		})
	}
}

func TestSpoolTargetsIndependent(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s := openTestSpool(t, dir, 1<<20, log, "nagios", "icinga")
	appendN(t, s, 1, 5)
	if err := s.Ack("icinga", 5); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Wake("nagios"):
	default:
		t.Error("an append did not wake the other target")
	}
	if p := s.Pending("icinga"); p != 0 {
		t.Errorf("icinga pending = %d", p)
	}
	if got := outputs(t, s, "nagios"); !slices.Equal(got, results(1, 5)) {
		t.Errorf("nagios, which is down, has %q", got)
	}
	s.Close()

	// After a restart, each target's cursor is its own; a target dropped
	// from the config loses its cursor, and a new one starts at the end.
	s = openTestSpool(t, dir, 1<<20, log, "nagios", "other")
	appendN(t, s, 6, 6)
	if got := outputs(t, s, "nagios"); !slices.Equal(got, results(1, 6)) {
		t.Errorf("nagios after restart: %q", got)
	}
	if got := outputs(t, s, "other"); !slices.Equal(got, results(6, 6)) {
		t.Errorf("a new target: %q, want only what came after it", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "cursor-icinga.json")); !os.IsNotExist(err) {
		t.Errorf("the cursor of a target no longer configured is still there: %v", err)
	}
}

func TestSpoolLockedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s := openTestSpool(t, dir, 1<<20, log, "a")
	if _, err := OpenSpool(dir, 1<<20, []string{"a"}, log); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a spool in use: %v", err)
	}
	s.Close()
	if err := s.Append(spoolEntry(1)); err == nil {
		t.Error("append to a closed spool succeeded")
	}
	s2 := openTestSpool(t, dir, 1<<20, log, "a")
	appendN(t, s2, 1, 1)
}

func TestSpoolBadArguments(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name     string
		maxBytes int64
		targets  []string
		want     string
	}{
		{"zero bound", 0, []string{"a"}, "must be positive"},
		{"negative bound", -1, []string{"a"}, "must be positive"},
		{"empty target", 100, []string{""}, "bad target name"},
		{"target with a slash", 100, []string{"../x"}, "bad target name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenSpool(t.TempDir(), tt.maxBytes, tt.targets, log)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

// smallDisk mounts a tmpfs of size bytes on a directory of the test's, so
// that the test can fill it; without the right to mount the test is skipped.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("a full disk is a small tmpfs, and mounting one failed (the test needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the test's tmpfs: %v", err)
		}
	})
	return dir
}

// fillDisk writes a file in dir until the disk is full, and returns a
// function that removes it.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for {
		if _, err := f.Write(page); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolDiskFull fills the spool's disk: results wait in memory, are
// peeked from there in order, and go to disk once it has room again, so
// that none is lost, across a restart either.
func TestSpoolDiskFull(t *testing.T) {
	dir := smallDisk(t, 64<<10)
	var log spoolLog
	s := openTestSpool(t, dir, 1<<20, log.logger(), "a", "b")
	appendN(t, s, 1, 5)
	free := fillDisk(t, dir)
	appendN(t, s, 6, 60)
	h := s.Health()
	if !errors.Is(h.WriteErr, syscall.ENOSPC) || h.InMemory == 0 || h.OpenErr != nil {
		t.Fatalf("health of a full spool: %+v", h)
	}
	if !strings.Contains(log.String(), "cannot write to disk") || !strings.Contains(log.String(), "no space left on device") {
		t.Errorf("the full disk was not logged:\n%s", log.String())
	}
	if got := outputs(t, s, "a"); !slices.Equal(got, results(1, 60)) {
		t.Fatalf("peek with the disk full = %q", got)
	}
	// b takes everything, from disk and memory, while the disk is full:
	// its cursor waits in memory to be saved.
	if err := s.Ack("b", 60); err != nil {
		t.Fatal(err)
	}
	if got := s.Pending("b"); got != 0 {
		t.Errorf("b pending %d after taking everything", got)
	}
	if got := s.Pending("a"); got != 60 {
		t.Errorf("a pending %d, want 60", got)
	}

	free()
	appendN(t, s, 61, 61)
	if h := s.Health(); h.WriteErr != nil || h.InMemory != 0 {
		t.Errorf("health once the disk has room: %+v", h)
	}
	if !strings.Contains(log.String(), "writing to disk again") {
		t.Errorf("the recovery was not logged:\n%s", log.String())
	}
	s.Close()
	s = openTestSpool(t, dir, 1<<20, log.logger(), "a", "b")
	if got := outputs(t, s, "a"); !slices.Equal(got, results(1, 61)) {
		t.Errorf("a after a restart = %q", got)
	}
	if got := outputs(t, s, "b"); !slices.Equal(got, results(61, 61)) {
		t.Errorf("b after a restart = %q, want only what it had not taken", got)
	}
}

// TestSpoolMemoryBound keeps the disk full past the memory's bound: the
// oldest results in memory are dropped, counted and logged, and the rest
// go to disk, after the gap, once it has room.
func TestSpoolMemoryBound(t *testing.T) {
	dir := smallDisk(t, 64<<10)
	var log spoolLog
	s := openTestSpool(t, dir, 1<<20, log.logger(), "a")
	line, err := json.Marshal(withSeq(spoolEntry(1), 1))
	if err != nil {
		t.Fatal(err)
	}
	s.memMaxBytes = int64(3*(len(line)+1) + 2) // three results, with room for longer numbers
	free := fillDisk(t, dir)
	appendN(t, s, 1, 10)
	if got := outputs(t, s, "a"); !slices.Equal(got, results(8, 10)) {
		t.Fatalf("peek = %q, want the newest three", got)
	}
	if got, want := s.Dropped("a"), uint64(7); got != want {
		t.Errorf("dropped %d, want %d", got, want)
	}
	if n := strings.Count(log.String(), "memory bound reached"); n != 7 {
		t.Errorf("%d drops logged, want 7:\n%s", n, log.String())
	}
	free()
	appendN(t, s, 11, 11)
	if got := s.Pending("a"); got != 4 {
		t.Errorf("pending %d, want 4", got)
	}
	s.Close()
	s = openTestSpool(t, dir, 1<<20, log.logger(), "a")
	if got := outputs(t, s, "a"); !slices.Equal(got, results(8, 11)) {
		t.Errorf("after a restart = %q", got)
	}
	if got := s.Pending("a"); got != 4 {
		t.Errorf("pending after a restart %d, want 4", got)
	}
}
