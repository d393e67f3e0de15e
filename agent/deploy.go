package agent

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
)

// Deployer installs the releases the coordinator pushes, and rolls them
// back, as the agentapi package documents: the layout under deploy.root,
// the credentials, the steps of a deploy and a rollback, the hooks and
// which artifacts are refused.
type Deployer struct {
	cfg    conf.Deploy
	token  string
	client *http.Client
	log    *slog.Logger
	// busy holds a value while a deploy or rollback runs.
	busy chan struct{}
}

const (
	releasesDir  = "releases"
	metaDir      = "meta"
	currentLink  = "current"
	previousLink = "previous"
	tempMark     = "~"
	// hookWaitDelay is how long a finished hook's children may hold its
	// output open: a hook may start a daemon, which must not hang the deploy.
	hookWaitDelay = 2 * time.Second
	// hookOutputMax is how much of a hook's output is kept for the error
	// message and the log: its end, where the reason for a failure is.
	hookOutputMax = 4 << 10
	// maxRequestBytes bounds a deploy or rollback request body.
	maxRequestBytes = 64 << 10
)

// releaseMeta is what meta/<revision>.json records of an unpacked release.
type releaseMeta struct {
	Revision string    `json:"revision"`
	SHA256   string    `json:"sha256"`
	Seq      int64     `json:"seq"`
	Unpacked time.Time `json:"unpacked"`
}

// deployError is a failed deploy or rollback with the HTTP status that tells
// the coordinator what kind of failure it was.
type deployError struct {
	code int
	err  error
}

func (e *deployError) Error() string { return e.err.Error() }
func (e *deployError) Unwrap() error { return e.err }

func failf(code int, format string, args ...any) error {
	return &deployError{code: code, err: fmt.Errorf(format, args...)}
}

// errBusy answers a deploy or rollback while another one runs.
var errBusy = failf(http.StatusConflict, "another deploy or rollback is running on this host")

// NewDeployer reads the deploy token and makes the root's directories,
// removing what an interrupted deploy left there.
func NewDeployer(cfg conf.Deploy, log *slog.Logger) (*Deployer, error) {
	token, err := conf.ReadToken("deploy.token_file", cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{releasesDir, metaDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Root, dir), 0o755); err != nil {
			return nil, fmt.Errorf("create deploy dir: %w", err)
		}
	}
	d := &Deployer{cfg: cfg, token: token, client: &http.Client{}, log: log, busy: make(chan struct{}, 1)}
	d.cleanTemps()
	return d, nil
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

// lock takes the deployer for one deploy or rollback, or says it is busy.
func (d *Deployer) lock() (unlock func(), err error) {
	select {
	case d.busy <- struct{}{}:
		return func() { <-d.busy }, nil
	default:
		return nil, errBusy
	}
}

// validateDeploy checks a deploy request, and makes its sha256 lower case.
func validateDeploy(r *agentapi.DeployRequest) error {
	if err := agentapi.ValidRevision(r.Revision); err != nil {
		return failf(http.StatusBadRequest, "%v", err)
	}
	r.SHA256 = strings.ToLower(r.SHA256)
	if b, err := hex.DecodeString(r.SHA256); err != nil || len(b) != sha256.Size {
		return failf(http.StatusBadRequest, "sha256 %q: want 64 hex digits", r.SHA256)
	}
	u, err := url.Parse(r.ArtifactURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return failf(http.StatusBadRequest, "artifact_url %q: want an http or https URL", r.ArtifactURL)
	}
	return nil
}

// Deploy installs and activates a release; see Deployer for the steps. ctx
// bounds the download and unpacking; the hooks and the switch run to their end.
func (d *Deployer) Deploy(ctx context.Context, req agentapi.DeployRequest) (agentapi.Release, error) {
	if err := validateDeploy(&req); err != nil {
		return agentapi.Release{}, err
	}
	unlock, err := d.lock()
	if err != nil {
		return agentapi.Release{}, err
	}
	defer unlock()
	rel, err := d.deploy(ctx, req)
	if err != nil {
		return agentapi.Release{}, fmt.Errorf("deploy %s: %w", req.Revision, err)
	}
	return rel, nil
}

func (d *Deployer) deploy(ctx context.Context, req agentapi.DeployRequest) (agentapi.Release, error) {
	rev := req.Revision
	old, err := d.Release()
	if err != nil {
		return agentapi.Release{}, err
	}
	m, hasMeta := d.readMeta(rev)
	if old.Current == rev {
		if hasMeta && m.SHA256 != req.SHA256 {
			return agentapi.Release{}, failf(http.StatusConflict, "%s is current, unpacked from sha256 %s, not %s", rev, m.SHA256, req.SHA256)
		}
		d.log.Info("deploy: already current", "revision", rev)
		return old, nil
	}
	d.cleanTemps()
	fi, err := os.Lstat(d.releaseDir(rev))
	switch {
	case err == nil && fi.IsDir() && hasMeta && m.SHA256 == req.SHA256:
		d.log.Info("deploy: reusing the release unpacked before", "revision", rev)
	case err == nil:
		d.log.Warn("deploy: unpacking again over a release of another or unknown sha256", "revision", rev, "recorded_sha256", m.SHA256)
		if err := d.remove(rev); err != nil {
			return agentapi.Release{}, err
		}
		fallthrough
	case errors.Is(err, os.ErrNotExist):
		if err := d.install(ctx, req); err != nil {
			return agentapi.Release{}, err
		}
	default:
		return agentapi.Release{}, fmt.Errorf("look for release: %w", err)
	}

	ctx = context.WithoutCancel(ctx)
	if err := d.hook(ctx, "pre_activate", d.cfg.PreActivate, rev, old.Current); err != nil {
		return agentapi.Release{}, fmt.Errorf("%w; current is still %s", err, orNone(old.Current))
	}
	if err := d.setLinks(rev, old.Current); err != nil {
		return agentapi.Release{}, d.undo(err, old)
	}
	if err := d.hook(ctx, "post_activate", d.cfg.PostActivate, rev, old.Current); err != nil {
		return agentapi.Release{}, d.undo(err, old)
	}
	d.prune()
	d.log.Info("deployed", "revision", rev, "previous", old.Current)
	return d.Release()
}

// undo puts current and previous back as they were after a failed switch,
// and says so in the error.
func (d *Deployer) undo(err error, old agentapi.Release) error {
	if uerr := d.setLinks(old.Current, old.Previous); uerr != nil {
		return fmt.Errorf("%w; and switching back to %s failed too: %v", err, orNone(old.Current), uerr)
	}
	return fmt.Errorf("%w; switched back to %s", err, orNone(old.Current))
}

func orNone(rev string) string {
	if rev == "" {
		return "no release"
	}
	return rev
}

// Rollback points current at to, or at the previous release when to is "".
func (d *Deployer) Rollback(ctx context.Context, to string) (agentapi.Release, error) {
	if to != "" {
		if err := agentapi.ValidRevision(to); err != nil {
			return agentapi.Release{}, failf(http.StatusBadRequest, "rollback: %v", err)
		}
	}
	unlock, err := d.lock()
	if err != nil {
		return agentapi.Release{}, fmt.Errorf("rollback: %w", err)
	}
	defer unlock()
	rel, err := d.rollback(ctx, to)
	if err != nil {
		return agentapi.Release{}, fmt.Errorf("rollback to %s: %w", orNone(to), err)
	}
	return rel, nil
}

func (d *Deployer) rollback(ctx context.Context, to string) (agentapi.Release, error) {
	old, err := d.Release()
	if err != nil {
		return agentapi.Release{}, err
	}
	if to == "" {
		if to = old.Previous; to == "" {
			return agentapi.Release{}, failf(http.StatusNotFound, "there is no previous release")
		}
	}
	if to == old.Current {
		d.log.Info("rollback: already current", "revision", to)
		return old, nil
	}
	if !slices.Contains(old.Releases, to) {
		return agentapi.Release{}, failf(http.StatusNotFound, "%s is not unpacked here (releases: %s)", to, strings.Join(old.Releases, " "))
	}
	ctx = context.WithoutCancel(ctx)
	if err := d.setLinks(to, old.Current); err != nil {
		return agentapi.Release{}, d.undo(err, old)
	}
	if err := d.hook(ctx, "post_activate", d.cfg.PostActivate, to, old.Current); err != nil {
		// Unlike a deploy's, this switch is not undone: switching back
		// would put back the release being rolled back from, and the
		// coordinator's retry would then flip the host back and forth.
		return agentapi.Release{}, fmt.Errorf("%w; current is %s all the same, not switched back to %s, the release rolled back from", err, to, orNone(old.Current))
	}
	d.log.Info("rolled back", "revision", to, "previous", old.Current)
	return d.Release()
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

// install fetches, checks and unpacks an artifact into releases/<revision>.
func (d *Deployer) install(ctx context.Context, req agentapi.DeployRequest) error {
	releases := filepath.Join(d.cfg.Root, releasesDir)
	f, err := os.CreateTemp(releases, req.Revision+tempMark+"fetch-*")
	if err != nil {
		return fmt.Errorf("make download file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	sum, err := d.fetch(ctx, req.ArtifactURL, f)
	if err != nil {
		return err
	}
	if sum != req.SHA256 {
		return failf(http.StatusUnprocessableEntity, "artifact %s has sha256 %s, not %s: nothing unpacked", req.ArtifactURL, sum, req.SHA256)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind download file: %w", err)
	}
	tmp, err := os.MkdirTemp(releases, req.Revision+tempMark+"unpack-*")
	if err != nil {
		return fmt.Errorf("make unpack dir: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("make unpack dir: %w", err)
	}
	if err := unpack(ctx, f, tmp); err != nil {
		return err
	}
	seq, err := d.nextSeq()
	if err != nil {
		return err
	}
	// A release dir is renamed into place only when complete and on disk,
	// with its meta file beside it: after a crash, releases/<revision> with
	// a matching meta file is whole and may be reused.
	syscall.Sync()
	meta, err := json.Marshal(releaseMeta{Revision: req.Revision, SHA256: sum, Seq: seq, Unpacked: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("write release meta: %w", err)
	}
	if err := renameio.WriteFile(d.metaFile(req.Revision), meta, 0o644); err != nil {
		return fmt.Errorf("write release meta: %w", err)
	}
	if err := os.Rename(tmp, d.releaseDir(req.Revision)); err != nil {
		return fmt.Errorf("move release into place: %w", err)
	}
	done = true
	return syncDir(releases)
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

// fetch downloads an artifact into w, at most max_artifact_bytes of it, and
// returns its sha256 in hex.
func (d *Deployer) fetch(ctx context.Context, rawURL string, w io.Writer) (string, error) {
	limit := d.cfg.MaxArtifactBytes
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", failf(http.StatusBadRequest, "fetch artifact %s: %v", rawURL, err)
	}
	agentapi.SetToken(req, d.token)
	resp, err := d.client.Do(req)
	if err != nil {
		return "", failf(http.StatusBadGateway, "fetch artifact: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return "", failf(http.StatusBadGateway, "fetch artifact %s: %s: %s", rawURL, resp.Status, strings.TrimSpace(string(body)))
	}
	if resp.ContentLength > limit {
		return "", failf(http.StatusUnprocessableEntity, "artifact %s is %d bytes, over max_artifact_bytes (%d): nothing unpacked", rawURL, resp.ContentLength, limit)
	}
	h := sha256.New()
	dst := &recordingWriter{w: io.MultiWriter(w, h)}
	n, err := io.Copy(dst, io.LimitReader(resp.Body, limit+1))
	switch {
	case dst.err != nil:
		return "", fmt.Errorf("save artifact: %w", dst.err)
	case err != nil:
		return "", failf(http.StatusBadGateway, "fetch artifact %s: read: %v", rawURL, err)
	case n > limit:
		return "", failf(http.StatusUnprocessableEntity, "artifact %s is over max_artifact_bytes (%d): nothing unpacked", rawURL, limit)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// recordingWriter keeps its writer's error, to tell a full disk from a broken download.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil {
		r.err = err
	}
	return n, err
}

// unpack extracts a tar.gz into dir, refusing (422) any entry that could
// reach outside it. Every write goes through an os.Root as well, so a
// mistake in these checks still cannot write outside dir.
func unpack(ctx context.Context, r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open unpack dir: %w", err)
	}
	defer root.Close()
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
		if err := unpackEntry(root, tr, hdr, seen); err != nil {
			return err
		}
	}
}

func unpackEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, seen map[string]byte) error {
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
		// Always writable by the agent, so that pruning can remove it.
		if err := root.Chmod(name, perm|0o700); err != nil {
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

// hook runs a pre_activate or post_activate command for the release rev.
func (d *Deployer) hook(ctx context.Context, which string, argv []string, rev, prev string) error {
	if len(argv) == 0 {
		return nil
	}
	timeout := d.cfg.HookTimeout.D()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir := d.releaseDir(rev)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "IMMUNE_REVISION="+rev, "IMMUNE_RELEASE_DIR="+dir, "IMMUNE_PREVIOUS_REVISION="+prev)
	out := &tailBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own group, so a timeout kills all it started; Pdeathsig, so it
	// does not outlive an agent that dies mid-deploy.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookWaitDelay
	begun := time.Now()
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it succeeded; what it left running holds the output open
	}
	text := strings.TrimSpace(out.String())
	d.log.Info("deploy hook ran", "hook", which, "revision", rev, "took", time.Since(begun).Round(time.Millisecond), "err", err, "output", text)
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if text != "" {
		return fmt.Errorf("%s %s: %v: %s", which, argv[0], err, text)
	}
	return fmt.Errorf("%s %s: %v", which, argv[0], err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

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

// deployRoutes adds the release routes to the API.
func (a *API) deployRoutes(mux *http.ServeMux) {
	d := a.Deployer
	mux.Handle("GET "+agentapi.ReleasePath, a.releaseAuth(http.HandlerFunc(d.serveRelease)))
	mux.Handle("POST "+agentapi.DeployPath, a.deployAuth(http.HandlerFunc(d.serveDeploy)))
	mux.Handle("POST "+agentapi.RollbackPath, a.deployAuth(http.HandlerFunc(d.serveRollback)))
}

// releaseAuth lets the deploy token through, and otherwise the read credential.
func (a *API) releaseAuth(next http.Handler) http.Handler {
	read := a.auth(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if agentapi.HasToken(r, a.Deployer.token) {
			next.ServeHTTP(w, r)
			return
		}
		read.ServeHTTP(w, r)
	})
}

// deployAuth lets only the deploy token through: the read credential is
// known but not allowed (403), anything else is no credential (401).
func (a *API) deployAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case agentapi.HasToken(r, a.Deployer.token):
			next.ServeHTTP(w, r)
		case a.readCredential(r):
			a.Log.Warn("api: deploy refused to the read credential", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "the read credential may not deploy or roll back: use the deploy token", http.StatusForbidden)
		default:
			a.Log.Warn("api: request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "had_token", agentapi.HasBearer(r))
			agentapi.Unauthorized(w, r, "immune-deploy")
		}
	})
}

func (d *Deployer) serveRelease(w http.ResponseWriter, _ *http.Request) {
	rel, err := d.Release()
	d.reply(w, rel, err)
}

func (d *Deployer) serveDeploy(w http.ResponseWriter, r *http.Request) {
	var req agentapi.DeployRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		http.Error(w, fmt.Sprintf("deploy: read request: %v", err), http.StatusBadRequest)
		return
	}
	rel, err := d.Deploy(r.Context(), req)
	d.reply(w, rel, err)
}

func (d *Deployer) serveRollback(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RollbackRequest
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req)
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, fmt.Sprintf("rollback: read request: %v", err), http.StatusBadRequest)
		return
	}
	rel, err := d.Rollback(r.Context(), req.To)
	d.reply(w, rel, err)
}

// reply writes the release JSON, or the error with its status.
func (d *Deployer) reply(w http.ResponseWriter, rel agentapi.Release, err error) {
	if err == nil {
		writeJSON(w, rel)
		return
	}
	code := http.StatusInternalServerError
	var de *deployError
	if errors.As(err, &de) {
		code = de.code
	}
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "5")
	}
	if code >= 500 {
		d.log.Error("deploy", "err", err)
	} else {
		d.log.Warn("deploy", "err", err)
	}
	http.Error(w, err.Error(), code)
}
