package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"

	"github.com/immune-ops/immune/rollback"
)

// orderKinds are the verbs of `immune push VERB ID`: an operator's orders
// to a running push.
var orderKinds = map[string]string{
	rollback.OrderAbort:      "roll the push back now",
	rollback.OrderHold:       "stop advancing the push; verdicts still roll it back",
	rollback.OrderResume:     "let a held push advance again",
	rollback.OrderPromote:    "skip the rest of this phase's observation and take the next phase now",
	rollback.OrderForgetHost: "stop retrying a host that will not come back (immune push forget-host ID HOST)",
}

// runOrder gives the order kind to a push: immune push KIND ID [HOST] --reason "...".
func runOrder(ctx context.Context, kind string, args []string, stdout, stderr io.Writer) int {
	name := "immune push " + kind
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s ID%s [flags]: %s\n", name, map[bool]string{true: " HOST", false: ""}[kind == rollback.OrderForgetHost], orderKinds[kind])
		fs.PrintDefaults()
	}
	f := cmdflags.OrderFlags(fs)
	// The push's ID (and host) come first, flags after, as people type them.
	var positional []string
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		positional, args = append(positional, args[0]), args[1:]
	}
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	positional = append(positional, fs.Args()...)
	want := 1
	if kind == rollback.OrderForgetHost {
		want = 2
	}
	if len(positional) != want {
		fs.Usage()
		return 2
	}
	c, err := newClient(f.Client)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	o := rollback.Order{Kind: kind, Who: who(ctx, *f.Who), Reason: *f.Reason}
	if want == 2 {
		o.Host = positional[1]
	}
	if err := c.Call(ctx, http.MethodPost, "/api/v1/pushes/"+positional[0]+"/orders", o, nil); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, explain(err, f.Client))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s taken by push %s; it acts on it at its next step\n", kind, o.Who, positional[0])
	return 0
}
