package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cli"

	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/client"
)

// clientCommands are the small clients of the coordinator's API that
// `immune push`, `immune pushes`, `immune locks` and `immune unlock` run.
var clientCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"push":   runPush,
	"pushes": runPushes,
	"locks":  runLocks,
	"unlock": runUnlock,
}

// clientFlags adds the flags every push command shares.
func clientFlags(fs *flag.FlagSet) func() (*client.Client, error) {
	url := fs.String("coordinator", envOr("IMMUNE_COORDINATOR", "http://127.0.0.1:5680"), "the coordinator's `URL` ($IMMUNE_COORDINATOR)")
	tokenFile := fs.String("token-file", os.Getenv("IMMUNE_TOKEN_FILE"), "`file` holding the operator token ($IMMUNE_TOKEN_FILE)")
	return func() (*client.Client, error) {
		var token string
		if *tokenFile != "" {
			b, err := os.ReadFile(*tokenFile)
			if err != nil {
				return nil, fmt.Errorf("read token: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		return client.New(*url, token, &http.Client{Timeout: time.Minute}), nil
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func whoami() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if _, ok := orderKinds[args[0]]; ok {
			return runOrder(ctx, args[0], args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("immune push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	newClient := clientFlags(fs)
	revision := fs.String("revision", "", "the `revision` to push (required)")
	artifact := fs.String("artifact", "", "the release tarball `file` (.tar.gz, required)")
	who := fs.String("who", whoami(), "who is pushing")
	wait := fs.Bool("wait", false, "follow the push; exit 0 when live everywhere, 1 when rolled back or failed")
	force := fs.String("force", "", "push a revision that does not descend from the live one; say `why`")
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	if *revision == "" || *artifact == "" {
		fmt.Fprintln(stderr, "immune push: --revision and --artifact are required")
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", err)
		return 2
	}
	f, err := os.Open(*artifact)
	if err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", err)
		return 2
	}
	defer f.Close()
	up, err := c.Upload(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "immune push: upload %s: %v\n", *artifact, err)
		return 2
	}
	var p rollback.Push
	if err := c.Call(ctx, http.MethodPost, "/api/v1/pushes", rollback.PushRequest{Revision: *revision, SHA256: up.SHA256, Who: *who, Force: *force}, &p); err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "push %s: %s (%d bytes, sha256 %s)\n", p.ID, p.Revision, up.Bytes, up.SHA256[:12])
	if !*wait {
		return 0
	}
	return follow(ctx, c, p.ID, stdout, stderr)
}

// follow prints a push's progress until it ends.
func follow(ctx context.Context, c *client.Client, id string, stdout, stderr io.Writer) int {
	progress := rollback.Progress(stdout)
	for {
		p, err := c.Push(ctx, id)
		if err != nil {
			fmt.Fprintf(stderr, "immune push: %v\n", err)
			return 2
		}
		progress(p)
		switch p.State {
		case rollback.StateLive:
			return 0
		case rollback.StateRolledBack:
			fmt.Fprintf(stdout, "ROLLED BACK: %s\n", p.Reason)
			return 1
		case rollback.StateFailed:
			fmt.Fprintf(stdout, "FAILED: %s\n", p.Reason)
			return 1
		}
		select {
		case <-ctx.Done():
			return 2
		case <-time.After(time.Second):
		}
	}
}

// getCommand parses the shared flags of a command that only reads the
// coordinator, and reads with get. done says to exit with code at once
// (after --help or --version, or an error); base is the coordinator's URL.
func getCommand(name string, args []string, stdout, stderr io.Writer, get func(*client.Client) error) (base string, code int, done bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	newClient := clientFlags(fs)
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return "", code, true
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return "", 2, true
	}
	if err := get(c); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return "", 2, true
	}
	return c.URL, 0, false
}

func runPushes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var ps []rollback.Push
	if _, code, done := getCommand("immune pushes", args, stdout, stderr, func(c *client.Client) (err error) {
		ps, err = c.Pushes(ctx)
		return err
	}); done {
		return code
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREVISION\tWHO\tSTARTED\tDURATION\tOUTCOME\tREASON")
	for _, p := range ps {
		end := p.Finished
		if end.IsZero() {
			end = time.Now()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Revision, p.Who, p.Created.Local().Format("2006-01-02 15:04"),
			end.Sub(p.Created).Round(time.Second), p.Outcome(), p.Reason)
	}
	tw.Flush()
	return 0
}

func runLocks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var l rollback.Locks
	base, code, done := getCommand("immune locks", args, stdout, stderr, func(c *client.Client) (err error) {
		l, err = c.Locks(ctx)
		return err
	})
	if done {
		return code
	}
	printLocks(stdout, l, base)
	return 0
}

func printLocks(w io.Writer, l rollback.Locks, base string) {
	if l.Push != "" {
		fmt.Fprintf(w, "push lock:   held by push %s\n", l.Push)
	} else {
		fmt.Fprintln(w, "push lock:   free")
	}
	if cl := l.Commit; cl != nil {
		fmt.Fprintf(w, "commit lock: ON since %s, after push %s of %s: %s\n", cl.Since.Local().Format(time.RFC3339), cl.Push, cl.Revision, cl.Reason)
		if len(cl.Range) > 0 {
			fmt.Fprintf(w, "  reverted, to fix before pushing again:\n")
			for _, cm := range cl.Range {
				fmt.Fprintf(w, "    %s %s (%s)\n", cm.Short(), cm.Subject, cm.Author)
			}
		}
		if cl.RevertError != "" {
			fmt.Fprintf(w, "  the revert FAILED: %s: revert by hand\n", cl.RevertError)
		}
		if cl.Page != "" {
			fmt.Fprintf(w, "  the push: %s%s\n", base, cl.Page)
		}
	} else {
		fmt.Fprintln(w, "commit lock: off")
	}
	if n := len(l.Cleared); n > 0 {
		last := l.Cleared[n-1]
		fmt.Fprintf(w, "last cleared by %s at %s: %s\n", last.ClearedBy, last.ClearedAt.Local().Format(time.RFC3339), last.ClearReason)
	}
}

func runUnlock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune unlock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	newClient := clientFlags(fs)
	reason := fs.String("reason", "", "why pushes may go on (required)")
	who := fs.String("who", whoami(), "who clears the lock")
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	if strings.TrimSpace(*reason) == "" {
		fmt.Fprintln(stderr, "immune unlock: --reason is required: say what was fixed")
		return 2
	}
	c, err := newClient()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	l, err := c.Unlock(ctx, *who, *reason)
	if err != nil {
		fmt.Fprintf(stderr, "immune unlock: %v\n", err)
		return 1
	}
	printLocks(stdout, l, c.URL)
	return 0
}
