package artifact

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one entry of a tar made for a test.
type entry struct {
	name string
	typ  byte
	data []byte
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		switch e.typ {
		case tar.TypeDir:
			hdr.Mode, hdr.Size = 0o755, 0
		case tar.TypeSymlink:
			hdr.Linkname, hdr.Size = string(e.data), 0
		case tar.TypeXGlobalHeader:
			hdr = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": string(e.data)}}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// release is an artifact as a build makes it: git archive's global header,
// a directory, code, and an incompressible file so that the compressed
// stream has a middle to damage.
func release(t *testing.T) []byte {
	noise := make([]byte, 64<<10)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	return gz(t, tarOf(t,
		entry{typ: tar.TypeXGlobalHeader, data: []byte("8f3a1c2e")},
		entry{name: "checkout/", typ: tar.TypeDir},
		entry{name: "index.php", typ: tar.TypeReg, data: []byte("<?php require 'checkout/cart.php';\n")},
		entry{name: "checkout/cart.php", typ: tar.TypeReg, data: bytes.Repeat([]byte("<?php echo 'cart';\n"), 500)},
		entry{name: "static/logo.bin", typ: tar.TypeReg, data: noise},
		entry{name: "current", typ: tar.TypeSymlink, data: []byte("index.php")},
	))
}

func zipOf(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("index.php")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "<?php\n")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCheck: each kind of bad artifact is refused, saying what is wrong.
func TestCheck(t *testing.T) {
	good := release(t)
	for _, c := range []struct {
		name string
		data func(t *testing.T) []byte
		max  int64
		want string // "" for a good artifact, else what the error says
	}{
		{"good.tar.gz", func(*testing.T) []byte { return good }, 1 << 20, ""},
		{"one-file.tar.gz", func(t *testing.T) []byte { return gz(t, tarOf(t, entry{name: "a", typ: tar.TypeReg})) }, 1 << 20, ""},
		{"concatenated.tar.gz", func(t *testing.T) []byte {
			// gzip's multi-member form, as pigz and cat make it.
			data := tarOf(t, entry{name: "a", typ: tar.TypeReg, data: []byte("x")})
			return append(gz(t, data[:512]), gz(t, data[512:])...)
		}, 1 << 20, ""},
		{"notatar.tar.gz", func(*testing.T) []byte { return []byte("hello, this is not an artifact\n") }, 1 << 20, "notatar.tar.gz: not gzip data"},
		{"plain.tar", func(t *testing.T) []byte { return tarOf(t, entry{name: "a", typ: tar.TypeReg}) }, 1 << 20, "plain.tar: not gzip data (an uncompressed tar: gzip it)"},
		{"release.zip", zipOf, 1 << 20, "release.zip: not gzip data (a zip file)"},
		{"error.html", func(*testing.T) []byte { return []byte("<html>502 Bad Gateway</html>") }, 1 << 20, "not gzip data (text: an HTML or XML page?)"},
		{"empty.tar.gz", func(*testing.T) []byte { return nil }, 1 << 20, "empty.tar.gz: empty file"},
		{"gzipped-text.gz", func(t *testing.T) []byte { return gz(t, bytes.Repeat([]byte("not a tar\n"), 100)) }, 1 << 20, "gzip data, but not a tar archive inside"},
		{"no-entries.tar.gz", func(t *testing.T) []byte { return gz(t, tarOf(t)) }, 1 << 20, "holds no file (0 entries, none a regular file)"},
		{"dirs-only.tar.gz", func(t *testing.T) []byte {
			return gz(t, tarOf(t, entry{name: "a/", typ: tar.TypeDir}, entry{name: "l", typ: tar.TypeSymlink, data: []byte("a")}))
		}, 1 << 20, "holds no file (2 entries, none a regular file)"},
		{"half.tar.gz", func(*testing.T) []byte { return good[:len(good)/2] }, 1 << 20, "half.tar.gz: truncated: the file ends mid-way"},
		{"header-only.tar.gz", func(*testing.T) []byte { return good[:10] }, 1 << 20, "truncated"},
		{"no-trailer.tar.gz", func(*testing.T) []byte { return good[:len(good)-4] }, 1 << 20, "truncated: the file ends mid-way (after the tar's end)"},
		{"flipped.tar.gz", func(*testing.T) []byte {
			bad := bytes.Clone(good)
			bad[len(bad)/2] ^= 0xff
			return bad
		}, 1 << 20, "flipped.tar.gz: corrupt"},
		{"big.tar.gz", func(*testing.T) []byte { return good }, 1 << 10, "big.tar.gz: is " + Size(int64(len(good))) + ", over the limit of 1 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.name)
			if err := os.WriteFile(path, c.data(t), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Check(path, c.max)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case c.want != "" && err == nil:
				t.Errorf("Check passed; want %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("Check: %v\nwant it to say %q", err, c.want)
			case err != nil && !strings.HasPrefix(err.Error(), path+": "):
				t.Errorf("the error does not begin with the file: %v", err)
			}
		})
	}
}

// TestCheckReader bounds an artifact whose size is not known beforehand.
func TestCheckReader(t *testing.T) {
	good := release(t)
	if err := CheckReader("upload", bytes.NewReader(good), int64(len(good))); err != nil {
		t.Errorf("an artifact of exactly the limit: %v", err)
	}
	err := CheckReader("upload", bytes.NewReader(good), int64(len(good))-1)
	if err == nil || err.Error() != "upload: is over the limit of "+Size(int64(len(good))-1) {
		t.Errorf("an artifact a byte over the limit: %v", err)
	}
	err = CheckReader("upload", io.MultiReader(bytes.NewReader(good[:100]), resetReader{}), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "upload: read: connection reset") {
		t.Errorf("a read that fails: %v", err)
	}
}

// resetReader fails as a dropped upload does.
type resetReader struct{}

func (resetReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestCheckFile: what is not a readable file says so, with its path.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	if err := Check(dir, 1<<20); err == nil || err.Error() != dir+": not a regular file" {
		t.Errorf("Check(a directory) = %v", err)
	}
	missing := filepath.Join(dir, "missing.tar.gz")
	if err := Check(missing, 1<<20); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Check(a missing file) = %v", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB",
		1 << 30: "1 GiB", 3328599654: "3.1 GiB", 5 << 40: "5 TiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
