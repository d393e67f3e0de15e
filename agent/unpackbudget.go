package agent

import (
	"fmt"
	"net/http"
	"syscall"
)

// unpackLimits bound what one artifact may unpack to; a zero field sets no
// bound. An artifact of a few MB can expand to gigabytes of zeros or to
// hundreds of thousands of files, which would fill the disk or its inodes
// that the host's services need.
type unpackLimits struct {
	// MaxBytes bounds the summed size of the files (deploy.max_unpacked_bytes).
	MaxBytes int64
	// MaxEntries bounds the files, dirs and links made, dirs implied by
	// the entries' names included (deploy.max_entries).
	MaxEntries int
	// MinFree is the space unpacking must leave free on the filesystem
	// (deploy.min_free_bytes).
	MinFree int64
	// ArtifactBytes is the size of the tar.gz. Before anything is
	// unpacked, the free space must hold at least that much above MinFree:
	// a release takes at least the room of its compressed artifact, so
	// this never refuses one that would fit, and it refuses a disk that
	// is full already before anything is written. How much more room the
	// release needs only its entries tell; they are checked as they come.
	ArtifactBytes int64
}

const (
	// unpackEntryBytes is what every entry is taken to cost on disk beyond
	// its contents: an inode and a block.
	unpackEntryBytes = 4096
	// unpackRestatBytes is how much may be unpacked between two readings of
	// the free space, which others use too.
	unpackRestatBytes = 64 << 20
)

// unpackBudget counts what an unpack has made against its limits, and
// reads the free space of the filesystem before the first entry, whenever
// the next entry might cross min_free_bytes, and every unpackRestatBytes.
// Entries are taken before they are written, on their header's word (the
// tar reader gives no more than a header's size), so the entry that
// crosses a limit is never written.
type unpackBudget struct {
	lim     unpackLimits
	dir     string
	bytes   int64
	entries int
	// avail is the free space at the last reading, less what was taken
	// since; sinceStat is what was taken since.
	avail, sinceStat int64
}

func newUnpackBudget(dir string, lim unpackLimits) (*unpackBudget, error) {
	b := &unpackBudget{lim: lim, dir: dir}
	if err := b.restat(); err != nil {
		return nil, err
	}
	if b.avail-lim.ArtifactBytes < lim.MinFree {
		return nil, failf(http.StatusInsufficientStorage, "unpacking the artifact (%d bytes) would leave less than min_free_bytes (%d) free on %s: %d bytes free; nothing unpacked",
			lim.ArtifactBytes, lim.MinFree, dir, b.avail)
	}
	return b, nil
}

// take counts an entry called name that makes made new files or dirs and
// writes size bytes, or says which limit it would cross.
func (b *unpackBudget) take(name string, made int, size int64) error {
	b.entries += made
	if b.lim.MaxEntries > 0 && b.entries > b.lim.MaxEntries {
		return failf(http.StatusUnprocessableEntity, "artifact refused: it has more than max_entries (%d) entries at entry %q", b.lim.MaxEntries, name)
	}
	b.bytes += size
	if b.lim.MaxBytes > 0 && b.bytes > b.lim.MaxBytes {
		return failf(http.StatusUnprocessableEntity, "artifact refused: it unpacks to more than max_unpacked_bytes (%d) at entry %q", b.lim.MaxBytes, name)
	}
	cost := size + int64(made)*unpackEntryBytes
	if b.avail-cost < b.lim.MinFree || b.sinceStat+cost > unpackRestatBytes {
		if err := b.restat(); err != nil {
			return err
		}
		if b.avail-cost < b.lim.MinFree {
			return failf(http.StatusInsufficientStorage, "unpacking entry %q would leave less than min_free_bytes (%d) free on %s: %d bytes free, %d needed",
				name, b.lim.MinFree, b.dir, b.avail, cost)
		}
	}
	b.avail -= cost
	b.sinceStat += cost
	return nil
}

// restat reads the space free to unprivileged users: the agent, even as
// root, leaves the root-reserved blocks alone.
func (b *unpackBudget) restat() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dir, &st); err != nil {
		return fmt.Errorf("read free space of %s: %w", b.dir, err)
	}
	b.avail = int64(st.Bavail) * st.Bsize
	b.sinceStat = 0
	return nil
}
