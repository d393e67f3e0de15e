package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
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
	client, err := artifactClient(cfg.ArtifactCAFile)
	if err != nil {
		return nil, err
	}
	d := &Deployer{cfg: cfg, token: token, client: client, log: log, busy: make(chan struct{}, 1)}
	d.cleanTemps()
	return d, nil
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

// Deploy installs and activates a release; agentapi documents the steps. ctx
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
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("size download file: %w", err)
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
	lim := unpackLimits{MaxBytes: d.cfg.MaxUnpackedBytes, MaxEntries: d.cfg.MaxEntries, MinFree: d.cfg.MinFreeBytes, ArtifactBytes: size}
	if err := unpack(ctx, f, tmp, lim); err != nil {
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

// fetch downloads an artifact into w, at most max_artifact_bytes of it, and
// returns its sha256 in hex.
func (d *Deployer) fetch(ctx context.Context, rawURL string, w io.Writer) (string, error) {
	limit := d.cfg.MaxArtifactBytes
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", failf(http.StatusBadRequest, "fetch artifact %s: %v", rawURL, err)
	}
	// The link carries its own credential: the deploy token, which could
	// install code on this host, never leaves it.
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

// artifactClient fetches artifacts straight from the coordinator, never
// through a proxy named by HTTP_PROXY (which would see every link and
// every release), verifying its certificate with caFile when given, else
// with the system's roots.
func artifactClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if caFile != "" {
		pool, err := conf.CertPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("deploy.artifact_ca_file: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
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
