package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"

	"github.com/immune-ops/immune/rollback"
)

// runOrder gives the order kind to a push: immune push KIND ID [HOST] --reason "...".
func runOrder(ctx context.Context, kind string, args []string, stdout, stderr io.Writer) int {
	name := "immune push " + kind
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	order, _ := cmdflags.Order(kind)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s %s [flags]: %s\n", name, order.Args, order.Summary)
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
	want := len(strings.Fields(order.Args))
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
