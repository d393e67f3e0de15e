// Package sdk is what a check written in Go imports to become an immune
// plugin: implement Check and call Serve from main. The agent starts the
// binary once, keeps it running and calls it over gRPC for every run; run by
// hand or by Nagios, the same binary is an ordinary plugin that checks once,
// prints its result and exits with the state's code.
package sdk

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/plugins/proto"
)

// Handshake is what the agent and a plugin agree on before they talk; a
// plugin built against another protocol version is refused at start.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "IMMUNE_CHECK_PLUGIN",
	MagicCookieValue: "immune-check-v1",
}

// PluginName is the name the check is served and dispensed under.
const PluginName = "check"

// Check is a check plugin. Run parses args (the plugin's command-line
// arguments, without the program name) and measures once; it returns when
// ctx is done at the latest. A bad argument is an UNKNOWN result that names it.
type Check interface {
	Run(ctx context.Context, args []string) nagios.Result
}

// CheckFunc lets a plain function be a Check.
type CheckFunc func(ctx context.Context, args []string) nagios.Result

// Run calls f.
func (f CheckFunc) Run(ctx context.Context, args []string) nagios.Result { return f(ctx, args) }

// Serve runs c as a plugin and does not return. Started by the agent it
// serves c over gRPC until the agent stops it; started any other way it runs
// c once with the command-line arguments, as a Nagios plugin.
func Serve(c Check) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		os.Exit(runOnce(c, os.Args[1:], os.Stdout))
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{Check: c}},
		GRPCServer:      plugin.DefaultGRPCServer,
		// The agent shows a plugin's log lines at WARN and above only, so
		// the go-plugin server's debug chatter is not worth writing.
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr, JSONFormat: true}),
	})
	os.Exit(0)
}

// runOnce is Serve outside the agent: one run, printed as a plugin prints it.
func runOnce(c Check, args []string, w io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := safeRun(ctx, c, args)
	if err := r.Write(w); err != nil {
		return nagios.Unknown.ExitCode()
	}
	return r.State.ExitCode()
}

// safeRun turns a panic in c into an UNKNOWN result, so one bad input does
// not take down a plugin the agent keeps running.
func safeRun(ctx context.Context, c Check, args []string) (r nagios.Result) {
	defer func() {
		if p := recover(); p != nil {
			r = nagios.Resultf(nagios.Unknown, "UNKNOWN - check panicked: %v", p)
		}
	}()
	return c.Run(ctx, args)
}

// Plugin joins Check to go-plugin. A plugin's Serve uses it to serve Check;
// the agent uses it, with Check nil, to dispense a *Client.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Check Check
}

// GRPCServer registers the check's service on the plugin's gRPC server.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Check == nil {
		return fmt.Errorf("serve %s: no Check to serve", PluginName)
	}
	proto.RegisterCheckServer(s, &server{check: p.Check})
	return nil
}

// GRPCClient returns a *Client for the agent's side of conn.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &Client{check: proto.NewCheckClient(conn)}, nil
}

type server struct {
	proto.UnimplementedCheckServer
	check Check
}

func (s *server) Run(ctx context.Context, req *proto.RunRequest) (*proto.RunResponse, error) {
	r := safeRun(ctx, s.check, req.GetArgs())
	return &proto.RunResponse{
		State:  int32(r.State.ExitCode()),
		Output: r.Output,
		Long:   r.Long,
		Perf:   perfToProto(r.Perf),
	}, nil
}

// Client is the agent's end of a running plugin.
type Client struct {
	check proto.CheckClient
}

// Run asks the plugin to run once with args. The error is the call's: the
// plugin's own failures come back as UNKNOWN results.
func (c *Client) Run(ctx context.Context, args []string) (nagios.Result, error) {
	resp, err := c.check.Run(ctx, &proto.RunRequest{Args: args})
	if err != nil {
		return nagios.Result{}, fmt.Errorf("call %s.Run: %w", PluginName, err)
	}
	return nagios.Result{
		State:  nagios.StateFromExit(int(resp.GetState())),
		Output: resp.GetOutput(),
		Long:   resp.GetLong(),
		Perf:   perfFromProto(resp.GetPerf()),
	}, nil
}

func perfToProto(items []nagios.Perf) []*proto.Perf {
	out := make([]*proto.Perf, len(items))
	for i, p := range items {
		out[i] = &proto.Perf{
			Label: p.Label, Value: p.Value, Unknown: p.Unknown, Uom: p.UOM,
			Warn: rangeToProto(p.Warn), Crit: rangeToProto(p.Crit),
			Min: p.Min, Max: p.Max, Precision: int32(p.Precision),
		}
	}
	return out
}

func rangeToProto(r *nagios.Range) *proto.Range {
	if r == nil {
		return nil
	}
	return &proto.Range{Start: r.Start, End: r.End, Inside: r.Inside}
}

func perfFromProto(items []*proto.Perf) []nagios.Perf {
	if len(items) == 0 {
		return nil
	}
	out := make([]nagios.Perf, len(items))
	for i, p := range items {
		out[i] = nagios.Perf{
			Label: p.GetLabel(), Value: p.GetValue(), Unknown: p.GetUnknown(), UOM: p.GetUom(),
			Warn: rangeFromProto(p.GetWarn()), Crit: rangeFromProto(p.GetCrit()),
			Min: p.Min, Max: p.Max, Precision: int(p.GetPrecision()),
		}
	}
	return out
}

func rangeFromProto(r *proto.Range) *nagios.Range {
	if r == nil {
		return nil
	}
	return &nagios.Range{Start: r.GetStart(), End: r.GetEnd(), Inside: r.GetInside()}
}
