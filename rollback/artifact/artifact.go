// Package artifact checks a push's artifact before any host gets it: a
// gzip'd tar within the size limit, with a file in it, that reads whole to
// its end. A truncated upload or a wrong file is refused at the push, with
// what is wrong, rather than by every agent in the first phase.
//
// What the agents refuse in an artifact that reads well (names outside the
// release, devices) is theirs to check: they unpack it.
package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Check reads the artifact at path end to end. Its errors name path and
// say what is wrong with the file.
func Check(path string, maxBytes int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("artifact %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("artifact %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxBytes {
		return fmt.Errorf("%s: is %s, over the limit of %s", path, Size(fi.Size()), Size(maxBytes))
	}
	return CheckReader(path, f, maxBytes)
}

// CheckReader is Check for an artifact being read, an upload say; name is
// what its errors call it.
func CheckReader(name string, r io.Reader, maxBytes int64) error {
	counted := &counter{r: r, max: maxBytes}
	br := bufio.NewReader(counted)
	head, _ := br.Peek(512)
	if len(head) == 0 && counted.err == nil {
		return fmt.Errorf("%s: empty file", name)
	}
	fail := func(what string, err error) error {
		if counted.over {
			return fmt.Errorf("%s: is over the limit of %s", name, Size(maxBytes))
		}
		if counted.err != nil {
			return fmt.Errorf("%s: read: %w", name, counted.err)
		}
		return fmt.Errorf("%s: %s", name, describe(what, err))
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		if errors.Is(err, gzip.ErrHeader) {
			return fmt.Errorf("%s: not gzip data%s", name, guess(head))
		}
		return fail("", err)
	}
	tr := tar.NewReader(zr)
	files, entries := 0, 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if entries == 0 && errors.Is(err, tar.ErrHeader) {
				return fmt.Errorf("%s: gzip data, but not a tar archive inside", name)
			}
			where := "in the first entry's header"
			if entries > 0 {
				where = fmt.Sprintf("in the header after %d entries", entries)
			}
			return fail(where, err)
		}
		entries++
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fail("in entry "+strconv.Quote(hdr.Name), err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files++
		}
	}
	// The tar ends before the gzip stream does: reading that to its end
	// is what checks its checksum and finds it cut short.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fail("after the tar's end", err)
	}
	if files == 0 {
		return fmt.Errorf("%s: holds no file (%d entries, none a regular file)", name, entries)
	}
	return nil
}

// counter counts what is read through it and stops past max, so that an
// artifact without a known size is bounded too.
type counter struct {
	r    io.Reader
	max  int64
	n    int64
	over bool
	err  error
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		c.over = true
		return n, errors.New("over the size limit")
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// describe says what a read error means for the artifact.
func describe(where string, err error) string {
	var corrupt flate.CorruptInputError
	msg := err.Error()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		msg = "truncated: the file ends mid-way"
	case errors.Is(err, gzip.ErrChecksum):
		// Found at the end, whatever part is damaged.
		return "corrupt: the gzip checksum does not match the data"
	case errors.As(err, &corrupt):
		msg = fmt.Sprintf("corrupt gzip data at byte %d of the compressed stream", int64(corrupt))
	case errors.Is(err, gzip.ErrHeader):
		msg = "corrupt: a second gzip member has a bad header"
	case errors.Is(err, tar.ErrHeader):
		msg = "corrupt tar header"
	}
	if where == "" {
		return msg
	}
	return msg + " (" + where + ")"
}

// guess names what a file that is not gzip data seems to be instead.
func guess(head []byte) string {
	switch {
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return " (an uncompressed tar: gzip it)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return " (a zip file)"
	case bytes.HasPrefix(head, []byte("BZh")):
		return " (bzip2 data)"
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return " (xz data)"
	case bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")):
		return " (zstd data)"
	case bytes.HasPrefix(head, []byte("<")):
		return " (text: an HTML or XML page?)"
	}
	return ""
}

// Size writes a number of bytes as people read it: "3.1 GiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	text := strconv.FormatFloat(v, 'f', 1, 64)
	if v == float64(int64(v)) {
		text = strconv.FormatInt(int64(v), 10)
	}
	return text + " " + []string{"KiB", "MiB", "GiB", "TiB"}[i]
}
