package checks

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// backwardLines collects what scanBackward passes on, in the order it does.
func backwardLines(t *testing.T, data []byte, from int64, stopAfter int) ([]string, int64) {
	t.Helper()
	var got []string
	end, err := scanBackward(context.Background(), bytes.NewReader(data), from, int64(len(data)), func(line []byte) bool {
		got = append(got, string(line))
		return stopAfter <= 0 || len(got) < stopAfter
	})
	if err != nil {
		t.Fatalf("scanBackward: %v", err)
	}
	return got, end
}

// naiveBackward is what scanBackward must agree with: split, drop the
// unfinished tail, reverse, cut each line to its head.
func naiveBackward(data []byte, from int64) ([]string, int64) {
	part := data[from:]
	last := bytes.LastIndexByte(part, '\n')
	if last < 0 {
		return nil, from
	}
	lines := strings.Split(string(part[:last]), "\n")
	out := make([]string, 0, len(lines))
	for i := len(lines) - 1; i >= 0; i-- {
		out = append(out, lines[i][:min(len(lines[i]), maxLineHead)])
	}
	return out, from + int64(last) + 1
}

func TestScanBackward(t *testing.T) {
	long := strings.Repeat("x", 3*maxLineHead+17)
	tests := []struct {
		name      string
		data      string
		from      int64
		stopAfter int
		want      []string
		wantEnd   int64
	}{
		{"empty", "", 0, 0, nil, 0},
		{"one line", "a\n", 0, 0, []string{"a"}, 2},
		{"unfinished line is left", "a\nb\npartial", 0, 0, []string{"b", "a"}, 4},
		{"only an unfinished line", "partial", 0, 0, nil, 0},
		{"empty lines", "\n\na\n", 0, 0, []string{"a", "", ""}, 4},
		{"from a saved offset", "old\nnew1\nnew2\n", 4, 0, []string{"new2", "new1"}, 14},
		{"nothing new", "old\n", 4, 0, nil, 4},
		{"stops when told", "a\nb\nc\n", 0, 2, []string{"c", "b"}, 6},
		{"long line gives its head", "a\n" + long + "\nb\n", 0, 0, []string{"b", long[:maxLineHead], "a"}, int64(len(long) + 5)},
		{"long first line", long + "\nb\n", 0, 0, []string{"b", long[:maxLineHead]}, int64(len(long) + 3)},
		{"long unfinished line", "a\n" + long, 0, 0, []string{"a"}, 2},
		{"long line then stop", "a\n" + long + "\nb\n", 0, 2, []string{"b", long[:maxLineHead]}, int64(len(long) + 5)},
		{"CRLF lines keep their CR", "a\r\nb\r\n", 0, 0, []string{"b\r", "a\r"}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, end := backwardLines(t, []byte(tt.data), tt.from, tt.stopAfter)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) || end != tt.wantEnd {
				t.Errorf("got %d lines %.80q end %d; want %d lines %.80q end %d", len(got), got, end, len(tt.want), tt.want, tt.wantEnd)
			}
		})
	}
}

// TestScanBackwardAgreesWithSplit checks block and long-line boundaries on
// generated data: lines of every length around the block size.
func TestScanBackwardAgreesWithSplit(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := range 40 {
		var b bytes.Buffer
		var starts []int64
		for b.Len() < 600<<10 {
			starts = append(starts, int64(b.Len()))
			n := rng.Intn(200)
			switch rng.Intn(10) {
			case 0:
				n = maxLineHead - 2 + rng.Intn(5)
			case 1:
				n = rng.Intn(3 * tailBlock)
			}
			b.WriteString(strings.Repeat(string(rune('a'+len(starts)%26)), n))
			b.WriteByte('\n')
		}
		if round%2 == 1 {
			b.WriteString("unfinished")
		}
		data := b.Bytes()
		from := starts[rng.Intn(len(starts))]
		got, end := backwardLines(t, data, from, 0)
		want, wantEnd := naiveBackward(data, from)
		if len(got) != len(want) || end != wantEnd {
			t.Fatalf("round %d from %d: %d lines end %d; want %d lines end %d", round, from, len(got), end, len(want), wantEnd)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("round %d from %d: line %d is %d bytes of %.10q, want %d of %.10q", round, from, i, len(got[i]), got[i], len(want[i]), want[i])
			}
		}
	}
}

func TestScanBackwardStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := scanBackward(ctx, strings.NewReader("a\nb\n"), 0, 4, func([]byte) bool { return true })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestScanBackwardShrunkFile(t *testing.T) {
	// The file was 10 bytes when it was looked at, and is 4 now.
	_, err := scanBackward(context.Background(), strings.NewReader("a\nb\n"), 0, 10, func([]byte) bool { return true })
	if err == nil {
		t.Error("reading past the end: no error")
	}
}

func TestCountNewlines(t *testing.T) {
	data := strings.Repeat("line\n", 300000) + "partial"
	tests := []struct {
		from, to int64
		want     int64
	}{
		{0, 0, 0},
		{0, int64(len(data)), 300000},
		{5, 15, 2},
		{int64(len(data)) - 7, int64(len(data)), 0},
	}
	for _, tt := range tests {
		got, err := countNewlines(context.Background(), strings.NewReader(data), tt.from, tt.to)
		if err != nil || got != tt.want {
			t.Errorf("countNewlines(%d, %d) = %d, %v; want %d", tt.from, tt.to, got, err, tt.want)
		}
	}
}

// logtailOpen opens path and stats it, for logPosition.
func logtailOpen(t *testing.T, path string) (*os.File, os.FileInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, fi
}

func TestLogPositionContinues(t *testing.T) {
	first := strings.Repeat("first generation line\n", 10)
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		want   bool
	}{
		{"unchanged", func(*testing.T, string) {}, true},
		{"grown", func(t *testing.T, path string) { logtailAppend(t, path, "more\n") }, true},
		{"renamed and replaced", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			logtailWrite(t, path, "new\n")
		}, false},
		{"copytruncated", func(t *testing.T, path string) { logtailWrite(t, path, "new\n") }, false},
		{"copytruncated and grown past the offset", func(t *testing.T, path string) {
			logtailWrite(t, path, strings.Repeat("second generation line\n", 20))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			logtailWrite(t, path, first)
			f, fi := logtailOpen(t, path)
			pos, err := positionAt(f, fi, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, path)
			f2, fi2 := logtailOpen(t, path)
			if got := pos.continues(f2, fi2); got != tt.want {
				t.Errorf("continues = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	type st struct{ N int }
	var got st
	if found, err := loadState(path, &got); found || err != nil {
		t.Fatalf("missing state: found %v, err %v", found, err)
	}
	for _, n := range []int{1, 2} {
		if err := saveState(path, st{n}); err != nil {
			t.Fatal(err)
		}
		if found, err := loadState(path, &got); !found || err != nil || got.N != n {
			t.Fatalf("loadState = %v, %v, %+v; want %d", found, err, got, n)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "sub"))
	if err != nil || len(entries) != 1 {
		t.Errorf("state directory holds %v (%v), want only state.json: a temporary file was left", entries, err)
	}

	logtailWrite(t, path, "{not json")
	if _, err := loadState(path, &got); !errors.Is(err, errCorruptState) {
		t.Errorf("corrupt state: err = %v, want errCorruptState", err)
	}
	blocker := filepath.Join(dir, "file")
	logtailWrite(t, blocker, "")
	if err := saveState(filepath.Join(blocker, "state.json"), st{1}); err == nil {
		t.Error("saving under a regular file: no error")
	}
}

func logtailWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func logtailAppend(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func FuzzScanBackward(f *testing.F) {
	f.Add([]byte("a\nb\npartial"), uint16(0))
	f.Add([]byte("\n\n\n"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, from uint16) {
		// from must start a line: move it to the next one.
		start := int64(min(int(from), len(data)))
		if start > 0 {
			if i := bytes.IndexByte(data[start-1:], '\n'); i >= 0 {
				start += int64(i)
			} else {
				start = int64(len(data))
			}
		}
		got, end := backwardLines(t, data, start, 0)
		want, wantEnd := naiveBackward(data, start)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) || end != wantEnd {
			t.Errorf("from %d: got %q end %d, want %q end %d", start, got, end, want, wantEnd)
		}
	})
}
