// Command immune-coordinator drives pushes; `immune coordinator` runs it.
// It also holds the clients of its API (`immune push`, `pushes`, `locks`,
// `unlock`), which link the push types and the config with it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/cmd/internal/logging"
	"github.com/immune-ops/immune/cmd/internal/signals"
	"github.com/immune-ops/immune/netlimit"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/dirlock"
	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/gitrepo"
	"github.com/immune-ops/immune/rollback/mysqlstore"
	"github.com/immune-ops/immune/rollback/notify"
)

func main() {
	ctx, stop := signals.Daemon()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if client, ok := clientCommands[args[0]]; ok {
			return client(ctx, args[1:], stdout, stderr)
		}
		if args[0] == "init" {
			return runInit(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("immune coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.CoordinatorFlags(fs)
	config, checkOnly, logFlags := flags.Config, flags.CheckConfig, &flags.Log
	if code, done := cli.Parse(fs, args, "immune-coordinator", stdout); done {
		return code
	}
	if *checkOnly != "" {
		if _, err := conf.LoadFleet(*checkOnly); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *checkOnly)
		return 0
	}
	if *config == "" {
		fmt.Fprintln(stderr, "immune coordinator: --config FILE is required (immune coordinator init DIR writes one)")
		return 2
	}
	fleet, err := conf.LoadFleet(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := logFlags.New(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "immune coordinator: %v\n", err)
		return 2
	}
	defer log.Close()
	if err := serve(ctx, *config, fleet, log); err != nil {
		log.Error("stopped", "err", err)
		fmt.Fprintf(stderr, "immune coordinator: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// serve runs the coordinator until ctx ends: it resumes a push that was in
// progress, then serves its API.
func serve(ctx context.Context, path string, fleet *conf.Fleet, logger *logging.Logger) error {
	log := logger.Logger
	// One coordinator a data dir: two would drive the same push and run
	// its revert twice.
	if err := os.MkdirAll(fleet.DataDir, 0o700); err != nil {
		return fmt.Errorf("make data_dir: %w", err)
	}
	held, err := dirlock.Take(fleet.DataDir, "coordinator")
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	defer held.Release()
	// A shared MySQL store when configured, else files in the data dir.
	var store rollback.Store
	var shared *mysqlstore.Store
	if fleet.MySQL != "" {
		if shared, err = mysqlstore.Open(ctx, fleet.MySQL); err != nil {
			return err
		}
		defer shared.Close()
		store = shared
	} else {
		files, err := rollback.OpenFileStore(fleet.DataDir)
		if err != nil {
			return err
		}
		store = files
	}
	agents, err := rollback.NewAgentClient(fleet)
	if err != nil {
		return err
	}
	operator, err := conf.ReadToken("operator_token_file", fleet.OperatorTokenFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fleet.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	var serverTLS *tls.Config
	if t := fleet.ServeTLS; t != nil {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		base = "https://" + ln.Addr().String()
	}
	advertised := strings.TrimRight(fleet.AdvertiseURL, "/")
	if advertised == "" {
		advertised = base
	}
	// The working copy checks pushes and reverts what a rolled-back one
	// brought; a config with its own revert command keeps the old way.
	var repo *gitrepo.Repo
	if fleet.Revert.Repo != "" && len(fleet.Revert.Command) == 0 {
		repo = &gitrepo.Repo{Dir: fleet.Revert.Repo, Remote: fleet.Revert.Remote, Branch: fleet.Revert.Branch}
	}
	c := &rollback.Coordinator{
		Fleet: fleet, Store: store, Agents: agents, Log: log, Context: ctx,
		Revert: rollback.NewReverter(fleet.Revert, repo),
		Repo:   repo,
	}
	links := rollback.NewArtifactLinks(advertised, rollback.DefaultArtifactLinkTTL)
	c.ArtifactURL = links.URL
	c.Metrics = rollback.NewMetrics(c)
	c.PageBase = advertised
	c.Notify = notify.New(fleet, log)
	defer c.Notify.Close(10 * time.Second)
	var reader string
	if fleet.ReadTokenFile != "" {
		if reader, err = conf.ReadToken("read_token_file", fleet.ReadTokenFile); err != nil {
			return err
		}
	}
	srv := &rollback.Server{C: c, OperatorToken: operator, DeployToken: agents.DeployToken,
		ReadToken: reader, OpenReads: fleet.OpenReads, Links: links,
		ArtifactDir: filepath.Join(fleet.DataDir, "artifacts")}
	c.Artifacts = srv.StoreArtifact
	if shared == nil {
		if err := c.Resume(); err != nil {
			return err
		}
	} else {
		c.Leading = shared.Leading
		go lead(ctx, c, shared, log)
	}
	hs := &http.Server{Handler: srv.Handler()}
	// Bounded before TLS, so that a handshake flood holds no more than the cap.
	ln = netlimit.Default.Apply(hs, ln)
	if serverTLS != nil {
		hs.TLSConfig = serverTLS
		ln = tls.NewListener(ln, serverTLS)
	}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		hs.Shutdown(shut)
	}()
	warnAgentTLS(fleet, log)
	signals.Handle(ctx, func() { reload(c, path, log) }, logger.Reopen)
	log.Info("coordinator running", "listen", base, "hosts", len(fleet.Hosts))
	err = hs.Serve(ln)
	c.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// drainTimeout bounds how long a stopping coordinator waits for requests
// in flight (an artifact upload among them); a push being driven stops at
// its next step and resumes at the next start.
const drainTimeout = 30 * time.Second

// startupSettings are the fleet settings bound to what the coordinator
// opened at start: a reload keeps their old values until a restart.
var startupSettings = []string{"listen", "advertise_url", "data_dir", "mysql", "max_artifact_bytes",
	"operator_token_file", "deploy_token_file", "read_token_file", "open_reads", "revert", "bisect", "notify", "contacts", "contact_groups"}

// reload reads the fleet config again at SIGHUP: hosts, phases, windows,
// the judge and the limits change for the next push (a push being driven
// keeps its own); a config with any mistake is refused whole.
func reload(c *rollback.Coordinator, path string, log *slog.Logger) {
	refuse := func(err error) {
		log.Error("SIGHUP: config refused; going on with the one in force", "config", path, "errors", strings.Split(err.Error(), "\n"))
	}
	next, err := conf.LoadFleet(path)
	if err != nil {
		refuse(err)
		return
	}
	restart := conf.KeepSettings(next, c.Config(), startupSettings...)
	agents, err := rollback.NewAgentClient(next)
	if err != nil {
		refuse(err)
		return
	}
	if c.Reload(next, agents) {
		log.Info("SIGHUP: config accepted; in force when the running push ends", "config", path, "hosts", len(next.Hosts), "limits", len(next.Limits))
	} else {
		log.Info("SIGHUP: config reloaded", "config", path, "hosts", len(next.Hosts), "limits", len(next.Limits))
	}
	if len(restart) > 0 {
		log.Warn("SIGHUP: these settings changed but only take effect at a restart", "settings", strings.Join(restart, ","))
	}
}

// lead waits to hold the shared store's leader lock, then drives pushes
// (resuming one in progress) until the lock is lost, and waits again.
func lead(ctx context.Context, c *rollback.Coordinator, store *mysqlstore.Store, log *slog.Logger) {
	for ctx.Err() == nil {
		log.Info("standby: waiting for the leader lock", "lock", mysqlstore.LeaderLock)
		leadCtx, err := store.Lead(ctx)
		if err != nil {
			return
		}
		log.Info("leading: this coordinator drives pushes")
		c.SetContext(leadCtx)
		if err := c.Resume(); err != nil {
			log.Error("resume push", "err", err)
		}
		<-leadCtx.Done()
		c.Wait()
	}
}

// warnAgentTLS says which agents get the deploy token without a verified
// TLS connection: it can install code on every host.
func warnAgentTLS(fleet *conf.Fleet, log *slog.Logger) {
	var plain, unverified []string
	for _, h := range fleet.Hosts {
		host, _, _ := net.SplitHostPort(h.Address)
		switch t := fleet.TLS(h); {
		case t == nil && !conf.IsLoopback(host):
			plain = append(plain, h.Name)
		case t != nil && t.Insecure:
			unverified = append(unverified, h.Name)
		}
	}
	if len(plain) > 0 {
		log.Warn("agents reached over plain http: the deploy token crosses the network in clear text; set agent_tls", "hosts", strings.Join(plain, ","))
	}
	if len(unverified) > 0 {
		log.Warn("agents reached with agent_tls insecure: their certificates are not verified", "hosts", strings.Join(unverified, ","))
	}
}
