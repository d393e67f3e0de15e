package agent

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
)

// unpack extracts a tar.gz into dir, refusing (422) any entry that could
// reach outside it, and stopping at the limits lim sets (see unpackBudget).
// Every write goes through an os.Root as well, so a mistake in these checks
// still cannot write outside dir. What was unpacked before an error is
// left for the caller to remove.
func unpack(ctx context.Context, r io.Reader, dir string, lim unpackLimits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open unpack dir: %w", err)
	}
	defer root.Close()
	budget, err := newUnpackBudget(dir, lim)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return failf(http.StatusUnprocessableEntity, "artifact is not a tar.gz: %v", err)
	}
	tr := tar.NewReader(zr)
	// seen is the kind of every path made so far, parents included: an
	// entry may be neither made twice nor made inside a non-directory.
	seen := map[string]byte{".": tar.TypeDir}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("unpack artifact: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return failf(http.StatusUnprocessableEntity, "artifact is not a tar.gz: %v", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // metadata only, such as git archive's commit id
		}
		if err := unpackEntry(root, tr, hdr, seen, budget); err != nil {
			return err
		}
	}
}

func unpackEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, seen map[string]byte, budget *unpackBudget) error {
	refuse := func(format string, args ...any) error {
		return failf(http.StatusUnprocessableEntity, "artifact refused, nothing unpacked: entry %q: %s", hdr.Name, fmt.Sprintf(format, args...))
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return refuse("%v", err)
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if k, ok := seen[p]; ok && k != tar.TypeDir {
			return refuse("%s is not a directory", p)
		}
	}
	if k, ok := seen[name]; ok && !(k == tar.TypeDir && hdr.Typeflag == tar.TypeDir) {
		return refuse("it is in the artifact twice")
	}
	parent := path.Dir(name)
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return refuse("%s entries are refused: only files, directories and symlinks", entryKind(hdr.Typeflag))
	}
	// Every directory made counts, named in the artifact or not: deep
	// names must not make more than max_entries of them.
	made := 0
	for p := parent; p != "."; p = path.Dir(p) {
		if _, ok := seen[p]; !ok {
			made++
		}
	}
	if _, ok := seen[name]; !ok && name != "." {
		made++
	}
	size := int64(0)
	if hdr.Typeflag == tar.TypeReg {
		size = hdr.Size
	}
	if err := budget.take(name, made, size); err != nil {
		return err
	}
	if err := root.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	for p := parent; p != "."; p = path.Dir(p) {
		seen[p] = tar.TypeDir
	}
	perm := os.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil // the release dir itself, made already
		}
		if err := root.MkdirAll(name, 0o755); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		// Always writable by the agent, so that pruning can remove it. A
		// shared scratch dir (1777) keeps its sticky bit, so that its users
		// cannot remove each other's files; setuid and setgid are dropped,
		// as they are on files. Chmod, unlike Mkdir, ignores the umask.
		mode := perm | 0o700
		if hdr.Mode&tarSticky != 0 {
			mode |= os.ModeSticky
		}
		if err := root.Chmod(name, mode); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	case tar.TypeSymlink:
		if err := symlinkInside(name, hdr.Linkname); err != nil {
			return refuse("symlink to %q: %v", hdr.Linkname, err)
		}
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil {
			return refuse("hard link to %q: %v", hdr.Linkname, err)
		}
		if seen[target] != tar.TypeReg {
			return refuse("hard link to %q: not a regular file earlier in the artifact", hdr.Linkname)
		}
		if err := root.Link(target, name); err != nil {
			return fmt.Errorf("unpack %s: %w", name, err)
		}
		seen[name] = tar.TypeReg
		return nil
	}
	seen[name] = hdr.Typeflag
	return nil
}

// tarSticky is the sticky bit (c_ISVTX) in a tar header's Mode.
const tarSticky = 0o1000

// entryName is a tar entry's name, cleaned, if it stays inside the release.
func entryName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", errors.New("empty name")
	case strings.HasPrefix(raw, "/"):
		return "", errors.New("absolute name")
	case strings.ContainsRune(raw, 0):
		return "", errors.New("NUL in name")
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", errors.New(`".." in name`)
		}
	}
	return path.Clean(raw), nil
}

// symlinkInside tells whether a symlink at name pointing at target resolves
// inside the release whatever the other symlinks in it are. Targets are
// resolved by the kernel one component at a time, through symlinks, so a
// ".." after a name may climb out of wherever that name leads; only leading
// ".." climb real directories, and those are counted against the depth.
func symlinkInside(name, target string) error {
	switch {
	case target == "":
		return errors.New("empty target")
	case strings.HasPrefix(target, "/"):
		return errors.New("absolute target")
	case strings.ContainsRune(target, 0):
		return errors.New("NUL in target")
	}
	depth := 0
	if dir := path.Dir(name); dir != "." {
		depth = strings.Count(dir, "/") + 1
	}
	ups, named := 0, false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return errors.New(`".." after a name in the target`)
			}
			ups++
		default:
			named = true
		}
	}
	if ups > depth {
		return errors.New("target is outside the release")
	}
	return nil
}

// entryKind names a tar entry type for an error message.
func entryKind(flag byte) string {
	switch flag {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("type %q", flag)
}
