package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// rawTar is a tar archive of the entries, not compressed: the fuzzer
// mutates the tar itself, which a gzip checksum would hide from it.
func rawTar(tb testing.TB, entries ...entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatalf("tar header %s: %v", e.name, err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzUnpack: whatever the tar holds, unpack writes nothing outside its
// dir, leaves no symlink in it that resolves outside it, and a refusal is
// a 422 that says what it refused.
func FuzzUnpack(f *testing.F) {
	innocent := fileEntry("innocent", "I was unpacked first")
	for _, entries := range [][]entry{
		{dirEntry("./"), dirEntry("./bin/"), {name: "./bin/app", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755},
			fileEntry("./VERSION", "v1\n"), dirEntry("./lib/"), symlinkEntry("./lib/version", "../VERSION"),
			hardlinkEntry("./app", "./bin/app"), fileEntry("implicit/parent/file", "x")},
		{innocent, fileEntry("../evil", "x")},
		{innocent, fileEntry("/tmp/evil", "x")},
		{innocent, symlinkEntry("a/b/up", "../../../evil")},
		{innocent, symlinkEntry("a/b/up", "../../x")},
		{innocent, symlinkEntry("d", "."), symlinkEntry("e", "d/..")},
		{innocent, dirEntry("sub/"), symlinkEntry("d", "sub"), fileEntry("d/x", "x")},
		{innocent, fileEntry("a/x", "x"), symlinkEntry("a", "x")},
		{innocent, symlinkEntry("l", "innocent"), hardlinkEntry("h", "l")},
		{innocent, hardlinkEntry("h", "../evil")},
		{innocent, entry{name: "pipe", typ: tar.TypeFifo}},
	} {
		f.Add(rawTar(f, entries...))
	}
	f.Add([]byte("not a tar archive"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()

		outside := t.TempDir()
		dir := filepath.Join(outside, "a", "release")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		err := unpack(context.Background(), &gz, dir, unpackLimits{MaxBytes: 64 << 20, MaxEntries: 10000})
		if err != nil && err.Error() == "" {
			t.Fatal("unpack failed with an empty error")
		}
		var de *deployError
		if errors.As(err, &de) && de.code != http.StatusUnprocessableEntity {
			t.Fatalf("unpack refused with %d, not 422: %v", de.code, err)
		}
		// Nothing beside the release: outside holds a/ and a/release only.
		filepath.WalkDir(outside, func(p string, d fs.DirEntry, _ error) error {
			if p == outside || p == filepath.Join(outside, "a") {
				return nil
			}
			if p == dir {
				return filepath.SkipDir
			}
			t.Errorf("unpack wrote %s, outside the release", p)
			return nil
		})
		// Every symlink left resolves inside, whatever the others are.
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, _ error) error {
			if d == nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			if !resolvesInside(dir, filepath.ToSlash(rel)) {
				target, _ := os.Readlink(p)
				t.Errorf("symlink %s -> %s resolves outside the release (unpack: %v)", rel, target, err)
			}
			return nil
		})
	})
}

// resolvesInside follows the symlink at rel (a path inside dir) as the
// kernel would, one component at a time through the symlinks in dir, and
// tells whether it stays inside dir.
func resolvesInside(dir, rel string) bool {
	_, err := resolve(dir, rel, 0)
	return !errors.Is(err, errOutside)
}

var (
	errOutside = errors.New("leads outside")
	errLoop    = errors.New("too many levels of symbolic links")
)

// resolve is where the symlink at rel leads, as components below dir.
// Missing components are taken as named: a file may be made there later.
func resolve(dir, rel string, depth int) ([]string, error) {
	if depth > 40 {
		return nil, errLoop
	}
	target, err := os.Readlink(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(target, "/") {
		return nil, errOutside
	}
	at := strings.Split(path.Dir(rel), "/")
	if at[0] == "." {
		at = nil
	}
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return nil, errOutside
			}
			at = at[:len(at)-1]
			continue
		}
		at = append(at, part)
		p := strings.Join(at, "/")
		if fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if at, err = resolve(dir, p, depth+1); err != nil {
				return nil, err
			}
		}
	}
	return at, nil
}
