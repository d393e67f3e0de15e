package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entry is one entry of a test artifact.
type entry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func dirEntry(name string) entry { return entry{name: name, typ: tar.TypeDir} }
func fileEntry(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body}
}
func symlinkEntry(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target}
}
func hardlinkEntry(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target}
}

// tarGz builds an artifact; archive/tar writes whatever it is given, so
// the malicious kinds are made as easily as the good ones.
func tarGz(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = map[byte]int64{tar.TypeDir: 0o755, tar.TypeSymlink: 0o777}[e.typ]
		}
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if hdr.Size > 0 {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func gzipOf(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, s)
	zw.Close()
	return buf.Bytes()
}

// refusal is an artifact the agent must refuse, and what its answer says.
type refusal struct {
	name     string
	artifact []byte
	// chunked serves it without a Content-Length, for the deploy tests.
	chunked bool
	want    string
}

// refusedArtifacts are artifacts unpack refuses: not a tar.gz, or an
// entry that could reach outside the release. Each has a harmless file
// first, so that the refusal comes mid-unpack.
func refusedArtifacts(t *testing.T) []refusal {
	innocent := fileEntry("innocent", "I was unpacked first")
	return []refusal{
		{name: "not gzip", artifact: []byte("PK\x03\x04 a zip file"), want: "not a tar.gz"},
		{name: "gzip of no tar", artifact: gzipOf("not a tar archive"), want: "not a tar.gz"},
		{name: "absolute", artifact: tarGz(t, innocent, fileEntry("/tmp/evil", "x")), want: `"/tmp/evil": absolute name`},
		{name: "dotdot", artifact: tarGz(t, innocent, fileEntry("../evil", "x")), want: `"../evil": ".." in name`},
		{name: "inner dotdot", artifact: tarGz(t, innocent, fileEntry("a/../../evil", "x")), want: `".." in name`},
		{name: "harmless dotdot", artifact: tarGz(t, innocent, dirEntry("a/"), fileEntry("a/../b", "x")), want: `".." in name`},
		{name: "absolute symlink", artifact: tarGz(t, innocent, symlinkEntry("passwd", "/etc/passwd")), want: "absolute target"},
		{name: "escaping symlink", artifact: tarGz(t, innocent, symlinkEntry("a/b/up", "../../../evil")), want: "outside the release"},
		{name: "symlink through a symlink", artifact: tarGz(t, innocent, symlinkEntry("d", "."), symlinkEntry("e", "d/..")), want: `".." after a name`},
		{name: "write through a symlink", artifact: tarGz(t, innocent, dirEntry("sub/"), symlinkEntry("d", "sub"), fileEntry("d/x", "x")), want: "d is not a directory"},
		{name: "file under a file", artifact: tarGz(t, innocent, fileEntry("innocent/x", "x")), want: "innocent is not a directory"},
		{name: "file over a dir", artifact: tarGz(t, innocent, fileEntry("f/x", "x"), fileEntry("f", "y")), want: "in the artifact twice"},
		{name: "symlink over a dir", artifact: tarGz(t, innocent, fileEntry("a/x", "x"), symlinkEntry("a", "x")), want: "in the artifact twice"},
		{name: "symlink replacing a file", artifact: tarGz(t, innocent, symlinkEntry("innocent", "x")), want: "in the artifact twice"},
		{name: "hard link outside", artifact: tarGz(t, innocent, hardlinkEntry("h", "../evil")), want: `".." in name`},
		{name: "hard link absolute", artifact: tarGz(t, innocent, hardlinkEntry("h", "/etc/passwd")), want: "absolute name"},
		{name: "hard link to a symlink", artifact: tarGz(t, innocent, symlinkEntry("l", "innocent"), hardlinkEntry("h", "l")), want: "not a regular file earlier"},
		{name: "hard link forward", artifact: tarGz(t, hardlinkEntry("h", "innocent"), innocent), want: "not a regular file earlier"},
		{name: "char device", artifact: tarGz(t, innocent, entry{name: "null", typ: tar.TypeChar}), want: "character device entries are refused"},
		{name: "block device", artifact: tarGz(t, innocent, entry{name: "sda", typ: tar.TypeBlock}), want: "block device entries are refused"},
		{name: "fifo", artifact: tarGz(t, innocent, entry{name: "pipe", typ: tar.TypeFifo}), want: "fifo entries are refused"},
	}
}

func TestUnpackRefuses(t *testing.T) {
	for _, tc := range refusedArtifacts(t) {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			dir := filepath.Join(outside, "a", "b", "release")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := unpack(context.Background(), bytes.NewReader(tc.artifact), dir, unpackLimits{})
			var de *deployError
			if !errors.As(err, &de) || de.code != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("unpack: %v, want a 422 with %q", err, tc.want)
			}
			for _, p := range []string{"evil", "a/evil", "a/b/evil", "tmp"} {
				if _, err := os.Lstat(filepath.Join(outside, p)); err == nil {
					t.Errorf("%s was written outside the release", p)
				}
			}
		})
	}
}

// TestUnpack unpacks a good artifact of every kind of entry allowed.
func TestUnpack(t *testing.T) {
	dir := t.TempDir()
	if err := unpack(context.Background(), bytes.NewReader(releaseArtifact(t, "R1")), dir, unpackLimits{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		mode os.FileMode
		body string
	}{
		{"bin", os.ModeDir | 0o755, ""},
		// The setuid bit is dropped; only permission bits are kept.
		{"bin/app", 0o755, "#!/bin/sh\necho R1\n"},
		{"app", 0o755, "#!/bin/sh\necho R1\n"},
		{"VERSION", 0o644, "R1\n"},
		{"lib/version", os.ModeSymlink | 0o777, "R1\n"},
		// Always writable by the agent, so that pruning can remove it.
		{"secrets", os.ModeDir | 0o700, ""},
		// A shared scratch dir keeps its sticky bit, as tar -x does.
		{"tmp", os.ModeDir | os.ModeSticky | 0o777, ""},
		{"implicit/parent", os.ModeDir | 0o755, ""},
		{"implicit/parent/file", 0o644, "x"},
	} {
		fi, err := os.Lstat(filepath.Join(dir, tc.path))
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if fi.Mode() != tc.mode {
			t.Errorf("%s: mode %v, want %v", tc.path, fi.Mode(), tc.mode)
		}
		if tc.body != "" {
			if b, err := os.ReadFile(filepath.Join(dir, tc.path)); err != nil || string(b) != tc.body {
				t.Errorf("%s holds %q, %v; want %q", tc.path, b, err, tc.body)
			}
		}
	}
	app, _ := os.Stat(filepath.Join(dir, "app"))
	bin, _ := os.Stat(filepath.Join(dir, "bin", "app"))
	if !os.SameFile(app, bin) {
		t.Error("app is not a hard link to bin/app")
	}
}

func TestSymlinkInside(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		ok           bool
	}{
		{"l", "x", true},
		{"l", "./x/y", true},
		{"a/l", "../x", true},
		{"a/b/l", "../../x", true},
		{"a/b/l", "../..", true},
		{"a/b/l", "../../..", false},
		{"l", "..", false},
		{"l", "../x", false},
		{"a/l", "x/../y", false},
		{"a/l", "x/..", false},
		{"l", "/x", false},
		{"l", "", false},
	} {
		if err := symlinkInside(tc.name, tc.target); (err == nil) != tc.ok {
			t.Errorf("symlinkInside(%q, %q) = %v, want ok %v", tc.name, tc.target, err, tc.ok)
		}
	}
}

// zeroFileHeader is an artifact whose only entry claims size bytes of
// zeros, cut off after the header: unpack must refuse it on the header
// alone, without writing (or even reading) its contents.
func zeroFileHeader(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// zeros is a tar.gz of n files of size bytes of zeros each: a few KB
// that unpack to n*size.
func zeros(t *testing.T, n int, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("zeros/%d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// manyFiles is a tar.gz of n empty files, in dirs nested depth deep.
func manyFiles(t *testing.T, n, depth int) []byte {
	var entries []entry
	dir := strings.Repeat("d/", depth)
	for i := range n {
		entries = append(entries, fileEntry(fmt.Sprintf("%sf%d", dir, i), ""))
	}
	return tarGz(t, entries...)
}

// freeBytes is what unpack reads as the free space of dir's filesystem.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestUnpackLimits: an artifact that unpacks past max_unpacked_bytes or
// max_entries, or would leave less than min_free_bytes free, is refused
// with an error naming the limit, before the entry that crosses it is
// written; one that fits exactly is unpacked.
func TestUnpackLimits(t *testing.T) {
	free := freeBytes(t, t.TempDir())
	const mib = 1 << 20
	tests := []struct {
		name     string
		artifact []byte
		limits   unpackLimits
		code     int
		want     string
		// written is the entry that must not be on disk afterwards.
		notWritten string
	}{
		{name: "bomb: 3 KB to 64 MiB", artifact: zeros(t, 1, 64*mib), limits: unpackLimits{MaxBytes: mib},
			code: 422, want: `unpacks to more than max_unpacked_bytes (1048576) at entry "zeros/0"`, notWritten: "zeros/0"},
		{name: "header only, 1 TiB claimed", artifact: zeroFileHeader(t, "huge", 1<<40), limits: unpackLimits{MaxBytes: 2 << 30},
			code: 422, want: `unpacks to more than max_unpacked_bytes (2147483648) at entry "huge"`, notWritten: "huge"},
		{name: "many small files add up", artifact: zeros(t, 3, mib/2), limits: unpackLimits{MaxBytes: mib},
			code: 422, want: `more than max_unpacked_bytes (1048576) at entry "zeros/2"`, notWritten: "zeros/2"},
		{name: "bytes exactly at the limit", artifact: zeros(t, 2, mib/2), limits: unpackLimits{MaxBytes: mib}},
		{name: "too many files", artifact: manyFiles(t, 101, 0), limits: unpackLimits{MaxEntries: 100},
			code: 422, want: `more than max_entries (100) entries at entry "f100"`, notWritten: "f100"},
		{name: "entries exactly at the limit", artifact: manyFiles(t, 100, 0), limits: unpackLimits{MaxEntries: 100}},
		// Every directory made counts, named in the artifact or not.
		{name: "implicit directories count", artifact: manyFiles(t, 1, 100), limits: unpackLimits{MaxEntries: 100},
			code: 422, want: "more than max_entries (100) entries", notWritten: "d"},
		{name: "disk would fill while unpacking", artifact: zeroFileHeader(t, "huge", 512*mib), limits: unpackLimits{MinFree: free - 64*mib},
			code: 507, want: `unpacking entry "huge" would leave less than min_free_bytes`, notWritten: "huge"},
		{name: "disk too full to start", artifact: manyFiles(t, 1, 0), limits: unpackLimits{MinFree: free - 64*mib, ArtifactBytes: 512 * mib},
			code: 507, want: "the artifact (536870912 bytes) would leave less than min_free_bytes", notWritten: "f0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := unpack(context.Background(), bytes.NewReader(tc.artifact), dir, tc.limits)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("unpack: %v", err)
				}
				return
			}
			var de *deployError
			if !errors.As(err, &de) || de.code != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("unpack: %v, want a %d with %q", err, tc.code, tc.want)
			}
			if _, err := os.Lstat(filepath.Join(dir, tc.notWritten)); err == nil {
				t.Errorf("%s was written", tc.notWritten)
			}
		})
	}
}
