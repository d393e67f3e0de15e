package rollback

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// checkArtifact reads an uploaded artifact to its end before a push is
// accepted: a gzip'd tar with at least one regular file, every entry
// whole. A typo'd path or a truncated upload is refused here, not found
// out by every agent.
func checkArtifact(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("not gzip data (%v): want a .tar.gz", err)
	}
	tr := tar.NewReader(gz)
	files := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not a readable tar after %d files: %v", files, err)
		}
		if h.Typeflag == tar.TypeReg {
			files++
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("entry %q is cut short: %v", h.Name, err)
		}
	}
	if files == 0 {
		return errors.New("the tar holds no file")
	}
	return nil
}
