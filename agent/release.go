package agent

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/immune-ops/immune/agentapi"
)

// The layout of deploy.root, described in agentapi's documentation.
const (
	releasesDir  = "releases"
	metaDir      = "meta"
	currentLink  = "current"
	previousLink = "previous"
	// tempMark is in the name of every temporary: no revision can contain it.
	tempMark = "~"
)

// releaseMeta is what meta/<revision>.json records of an unpacked release.
type releaseMeta struct {
	Revision string    `json:"revision"`
	SHA256   string    `json:"sha256"`
	Seq      int64     `json:"seq"`
	Unpacked time.Time `json:"unpacked"`
}

func (d *Deployer) releaseDir(rev string) string {
	return filepath.Join(d.cfg.Root, releasesDir, rev)
}

func (d *Deployer) metaFile(rev string) string {
	return filepath.Join(d.cfg.Root, metaDir, rev+".json")
}

// Release reads the current state from the root.
func (d *Deployer) Release() (agentapi.Release, error) {
	cur, err := d.readLink(currentLink)
	if err != nil {
		return agentapi.Release{}, err
	}
	prev, err := d.readLink(previousLink)
	if err != nil {
		return agentapi.Release{}, err
	}
	if prev == cur {
		// Left by a crash between the two renames of a switch: previous
		// was written first, so the release before is not known any more.
		prev = ""
	}
	list, err := d.list()
	if err != nil {
		return agentapi.Release{}, err
	}
	rel := agentapi.Release{Current: cur, Previous: prev, Releases: make([]string, len(list))}
	for i, m := range list {
		rel.Releases[i] = m.Revision
	}
	return rel, nil
}

// readLink is the revision a symlink in the root points at, "" when it is missing.
func (d *Deployer) readLink(name string) (string, error) {
	target, err := os.Readlink(filepath.Join(d.cfg.Root, name))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read release link: %w", err)
	}
	rev := filepath.Base(target)
	if agentapi.ValidRevision(rev) != nil {
		return "", fmt.Errorf("read release link: %s points at %q, not at a release", name, target)
	}
	return rev, nil
}

// list is the unpacked releases, oldest first. A release without a readable
// meta file (unpacked by hand) sorts before the others, by name.
func (d *Deployer) list() ([]releaseMeta, error) {
	entries, err := os.ReadDir(filepath.Join(d.cfg.Root, releasesDir))
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var list []releaseMeta
	for _, e := range entries {
		if !e.IsDir() || agentapi.ValidRevision(e.Name()) != nil {
			continue
		}
		m, _ := d.readMeta(e.Name())
		m.Revision = e.Name()
		list = append(list, m)
	}
	slices.SortFunc(list, func(a, b releaseMeta) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Revision, b.Revision))
	})
	return list, nil
}

// readMeta reads a release's meta file; false when there is none or it cannot be read.
func (d *Deployer) readMeta(rev string) (releaseMeta, bool) {
	b, err := os.ReadFile(d.metaFile(rev))
	if err != nil {
		return releaseMeta{}, false
	}
	var m releaseMeta
	if json.Unmarshal(b, &m) != nil || m.Revision != rev {
		return releaseMeta{}, false
	}
	return m, true
}

// setLinks points current at cur and previous at prev ("" removes a link).
// previous goes first: a crash between the two leaves previous equal to
// current, which Release reads as unknown rather than as a wrong release.
func (d *Deployer) setLinks(cur, prev string) error {
	if err := d.setLink(previousLink, prev); err != nil {
		return err
	}
	if err := d.setLink(currentLink, cur); err != nil {
		return err
	}
	return syncDir(d.cfg.Root)
}

// setLink replaces a symlink in the root in one rename(2), so that nothing
// ever sees it missing or half written.
func (d *Deployer) setLink(name, rev string) error {
	link := filepath.Join(d.cfg.Root, name)
	if rev == "" {
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s link: %w", name, err)
		}
		return nil
	}
	tmp := link + tempMark + rand.Text()
	if err := os.Symlink(filepath.Join(releasesDir, rev), tmp); err != nil {
		return fmt.Errorf("point %s at %s: %w", name, rev, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("point %s at %s: %w", name, rev, err)
	}
	return nil
}

// nextSeq is the order number of the next release: one past the highest recorded.
func (d *Deployer) nextSeq() (int64, error) {
	entries, err := os.ReadDir(filepath.Join(d.cfg.Root, metaDir))
	if err != nil {
		return 0, fmt.Errorf("read release metas: %w", err)
	}
	var top int64
	for _, e := range entries {
		if rev, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if m, ok := d.readMeta(rev); ok {
				top = max(top, m.Seq)
			}
		}
	}
	return top + 1, nil
}

// prune removes all but the newest keep releases, never current or
// previous, and the meta files of releases that are gone. Failures are
// logged: the deploy they follow has succeeded.
func (d *Deployer) prune() {
	rel, err := d.Release()
	if err != nil {
		d.log.Warn("deploy: prune", "err", err)
		return
	}
	for i, rev := range rel.Releases {
		if i >= len(rel.Releases)-d.cfg.Keep || rev == rel.Current || rev == rel.Previous {
			continue
		}
		if err := d.remove(rev); err != nil {
			d.log.Warn("deploy: prune", "revision", rev, "err", err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(d.cfg.Root, metaDir))
	if err != nil {
		d.log.Warn("deploy: prune", "err", err)
		return
	}
	for _, e := range entries {
		rev, ok := strings.CutSuffix(e.Name(), ".json")
		if _, err := os.Lstat(d.releaseDir(rev)); ok && errors.Is(err, os.ErrNotExist) {
			os.Remove(filepath.Join(d.cfg.Root, metaDir, e.Name()))
		}
	}
}

// remove deletes a release: renamed out of the list first, so that a
// removal cut short leaves a temporary, never half a release.
func (d *Deployer) remove(rev string) error {
	trash := d.releaseDir(rev) + tempMark + "trash-" + rand.Text()
	if err := os.Rename(d.releaseDir(rev), trash); err != nil {
		return fmt.Errorf("remove release %s: %w", rev, err)
	}
	if err := os.Remove(d.metaFile(rev)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("deploy: remove release meta", "revision", rev, "err", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove release %s: %w", rev, err)
	}
	return nil
}

// cleanTemps removes what interrupted deploys left: temporaries in releases/
// and half-made links in the root, whose other files are not ours to judge.
// Only called with no deploy running.
func (d *Deployer) cleanTemps() {
	for _, dir := range []string{filepath.Join(d.cfg.Root, releasesDir), d.cfg.Root} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			d.log.Warn("deploy: clean temporaries", "err", err)
			continue
		}
		for _, e := range entries {
			name := e.Name()
			ours := strings.Contains(name, tempMark)
			if dir == d.cfg.Root {
				ours = strings.HasPrefix(name, currentLink+tempMark) || strings.HasPrefix(name, previousLink+tempMark)
			}
			if !ours {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				d.log.Warn("deploy: clean temporaries", "err", err)
			}
		}
	}
}
