package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"

	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/client"
)

// clientCommands are the small clients of the coordinator's API that
// `immune push`, `pushes`, `status`, `locks` and `unlock` run.
var clientCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"push":   runPush,
	"pushes": runPushes,
	"status": runStatus,
	"locks":  runLocks,
	"unlock": runUnlock,
}

// newClient is a client of the coordinator the flags name, with the token
// they name, if any.
func newClient(f *cmdflags.Client) (*client.Client, error) {
	url, err := f.URL()
	if err != nil {
		return nil, err
	}
	token, err := f.Token()
	if err != nil {
		return nil, err
	}
	return client.New(url, token, &http.Client{Timeout: time.Minute}), nil
}

// explain adds to a refusal of the coordinator what the person can do
// about it: the coordinator says "token required" when no token came and
// "invalid token" when another came.
func explain(err error, f *cmdflags.Client) error {
	if client.StatusCode(err) != http.StatusUnauthorized {
		return err
	}
	msg := err.Error()
	var e *client.Error
	if errors.As(err, &e) {
		msg = e.Msg
	}
	switch file := f.TokenFile(); {
	case strings.Contains(msg, "invalid token"):
		return fmt.Errorf("invalid token: the coordinator refused the token in %s", file)
	case file == "" && f.Writes():
		return errors.New("token required: give the operator token with --token-file FILE or $IMMUNE_TOKEN_FILE")
	case file == "":
		return errors.New("token required: this coordinator wants a token even to read: give it with --token-file FILE")
	}
	return err
}

// who is --who, or who runs the command when it was not given.
func who(ctx context.Context, given string) string {
	if given != "" {
		return given
	}
	return cmdflags.Who(ctx)
}

func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if _, ok := cmdflags.Order(args[0]); ok {
			return runOrder(ctx, args[0], args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("immune push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := cmdflags.PushFlags(fs)
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	if *f.Revision == "" || *f.Artifact == "" {
		fmt.Fprintln(stderr, "immune push: --revision and --artifact are required")
		return 2
	}
	c, err := newClient(f.Client)
	if err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", err)
		return 2
	}
	file, err := os.Open(*f.Artifact)
	if err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", err)
		return 2
	}
	defer file.Close()
	up, err := c.Upload(ctx, file)
	if err != nil {
		fmt.Fprintf(stderr, "immune push: upload %s: %v\n", *f.Artifact, explain(err, f.Client))
		return 2
	}
	var p rollback.Push
	req := rollback.PushRequest{Revision: *f.Revision, SHA256: up.SHA256, Who: who(ctx, *f.Who), Force: *f.Force}
	if err := c.Call(ctx, http.MethodPost, "/api/v1/pushes", req, &p); err != nil {
		fmt.Fprintf(stderr, "immune push: %v\n", explain(err, f.Client))
		return 2
	}
	fmt.Fprintf(stdout, "push %s: %s (%d bytes, sha256 %s)\n", p.ID, p.Revision, up.Bytes, up.SHA256[:12])
	if !*f.Wait {
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

// read parses the flags of a command that only reads the coordinator,
// then reads with get. done says to exit with code at once (after --help
// or --version, or an error); base is the coordinator's URL.
func read(name string, fs *flag.FlagSet, f *cmdflags.Client, args []string, stdout, stderr io.Writer, get func(*client.Client) error) (base string, code int, done bool) {
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return "", code, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		return "", 2, true
	}
	c, err := newClient(f)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return "", 2, true
	}
	if err := get(c); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, explain(err, f))
		return "", 2, true
	}
	return c.URL, 0, false
}

func runPushes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune pushes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := cmdflags.PushesFlags(fs)
	var ps []rollback.Push
	if _, code, done := read(fs.Name(), fs, f.Client, args, stdout, stderr, func(c *client.Client) (err error) {
		if *f.Limit < 0 {
			return fmt.Errorf("--limit %d: want 0 (all) or more", *f.Limit)
		}
		ps, err = c.RecentPushes(ctx, *f.Limit)
		return err
	}); done {
		return code
	}
	if *f.JSON {
		if ps == nil {
			ps = []rollback.Push{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ps); err != nil {
			fmt.Fprintf(stderr, "immune pushes: %v\n", err)
			return 1
		}
		return 0
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
	fs := flag.NewFlagSet("immune locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := cmdflags.ReadFlags(fs)
	var l rollback.Locks
	base, code, done := read(fs.Name(), fs, f, args, stdout, stderr, func(c *client.Client) (err error) {
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
	f := cmdflags.UnlockFlags(fs)
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	if strings.TrimSpace(*f.Reason) == "" {
		fmt.Fprintln(stderr, "immune unlock: --reason is required: say what was fixed")
		return 2
	}
	c, err := newClient(f.Client)
	if err != nil {
		fmt.Fprintf(stderr, "immune unlock: %v\n", err)
		return 2
	}
	l, err := c.Unlock(ctx, who(ctx, *f.Who), *f.Reason)
	if err != nil {
		fmt.Fprintf(stderr, "immune unlock: %v\n", explain(err, f.Client))
		return 1
	}
	printLocks(stdout, l, c.URL)
	return 0
}
