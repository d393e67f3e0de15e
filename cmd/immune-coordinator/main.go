// Command immune-coordinator drives pushes; `immune coordinator` runs it.
// It also holds the clients of its API (`immune push`, `pushes`, `locks`,
// `unlock`), which link the push types and the config with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/netlimit"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/dirlock"
	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/gitrepo"
	"github.com/immune-ops/immune/rollback/mysqlstore"
	"github.com/immune-ops/immune/rollback/notify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if client, ok := clientCommands[args[0]]; ok {
			return client(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("immune coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.CoordinatorFlags(fs)
	config, checkOnly := flags.Config, flags.CheckConfig
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
		fmt.Fprintln(stderr, "immune coordinator: --config FILE is required")
		return 2
	}
	fleet, err := conf.LoadFleet(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, fleet, log); err != nil {
		fmt.Fprintf(stderr, "immune coordinator: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the coordinator until ctx ends: it resumes a push that was in
// progress, then serves its API.
func serve(ctx context.Context, fleet *conf.Fleet, log *slog.Logger) error {
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
		Revert:      rollback.NewReverter(fleet.Revert, repo),
		Repo:        repo,
		ArtifactURL: func(sum string) string { return advertised + "/api/v1/artifacts/" + sum },
	}
	c.Metrics = rollback.NewMetrics(c)
	c.PageBase = advertised
	c.Notify = notify.New(fleet, log)
	defer c.Notify.Close(10 * time.Second)
	srv := &rollback.Server{C: c, OperatorToken: operator, DeployToken: agents.DeployToken,
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
	ln = netlimit.Default.Apply(hs, ln)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(shut)
	}()
	warnAgentTLS(fleet, log)
	log.Info("coordinator running", "listen", base, "hosts", len(fleet.Hosts))
	err = hs.Serve(ln)
	c.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
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
		case t == nil && !isLoopback(host):
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

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
