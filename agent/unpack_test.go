package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
			err := unpack(context.Background(), bytes.NewReader(tc.artifact), dir)
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
	if err := unpack(context.Background(), bytes.NewReader(releaseArtifact(t, "R1")), dir); err != nil {
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
