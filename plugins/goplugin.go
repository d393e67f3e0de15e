package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/plugins/sdk"
)

// defaultStartTimeout bounds a plugin's start and handshake when neither
// GoOptions nor the run's context say otherwise.
const defaultStartTimeout = 10 * time.Second

// GoOptions configure a Go plugin. The zero value is usable: no deadline but
// the caller's, the agent's directory and environment, logs discarded.
type GoOptions struct {
	// Timeout bounds every run; zero leaves only the context's deadline.
	Timeout time.Duration
	// TimeoutState is the state a run that times out reports. The zero value
	// is OK, so callers set it: monitoring-plugins' -t gives CRITICAL.
	TimeoutState nagios.State
	// Env holds KEY=value pairs added to the agent's environment; a key set
	// here wins over the agent's.
	Env []string
	// Dir is the plugin process's working directory; empty means the agent's.
	Dir string
	// StartTimeout bounds starting the process and its handshake, within the
	// run's own deadline; zero means 10 seconds.
	StartTimeout time.Duration
	// Log receives go-plugin's warnings and errors, and the plugin's log
	// lines at WARN and above; nil discards them.
	Log io.Writer
}

// GoPlugin is a Go plugin built with plugins/sdk, run as a check. Its process
// is started on the first Run and kept for the next ones; a Run that finds it
// dead starts a new one. Close stops it. It is safe for concurrent use.
type GoPlugin struct {
	path   string
	args   []string
	opts   GoOptions
	logger hclog.Logger

	// lock is held to start, check or stop the process. A channel rather
	// than a mutex, so a Run waiting for it still honours its context.
	lock   chan struct{}
	client *plugin.Client
	rpc    *plugin.GRPCClient
	check  *sdk.Client
	closed bool
	pid    atomic.Int64
}

// errClosed is a Run after Close.
var errClosed = errors.New("closed")

// NewGo checks the options of the Go plugin at path, run with args; the
// process starts on the first Run.
func NewGo(path string, args []string, opts GoOptions) (*GoPlugin, error) {
	if err := checkOptions(path, opts.Timeout, opts.TimeoutState, opts.Env); err != nil {
		return nil, err
	}
	if opts.StartTimeout < 0 {
		return nil, fmt.Errorf("plugin %s: start timeout %v is negative", path, opts.StartTimeout)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	opts.Env = append([]string(nil), opts.Env...)
	logger := hclog.NewNullLogger()
	if opts.Log != nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: opts.Log})
	}
	return &GoPlugin{
		path:   path,
		args:   append([]string(nil), args...),
		opts:   opts,
		logger: logger,
		lock:   make(chan struct{}, 1),
	}, nil
}

// Timeout is the plugin's own deadline, for the scheduler.
func (g *GoPlugin) Timeout() time.Duration { return g.opts.Timeout }

// Pid is the plugin process's id, or 0 when none is running.
func (g *GoPlugin) Pid() int { return int(g.pid.Load()) }

// Run asks the plugin to run once, starting its process first if none is
// alive. The call carries ctx's deadline into the plugin.
func (g *GoPlugin) Run(ctx context.Context) nagios.Result {
	begun := time.Now()
	if g.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.opts.Timeout)
		defer cancel()
	}
	c, err := g.running(ctx)
	if err == nil {
		var r nagios.Result
		if r, err = c.Run(ctx, g.args); err == nil {
			return r
		}
	}
	if ctx.Err() != nil {
		return interrupted(ctx, g.opts.TimeoutState, g.path, begun, "")
	}
	if status.Code(err) == codes.Unavailable {
		// It died under the call; the next Run starts a new one.
		return nagios.Resultf(nagios.Unknown, "UNKNOWN - plugin %s stopped answering: %v", g.path, err)
	}
	return nagios.Resultf(nagios.Unknown, "UNKNOWN - plugin %s: %v", g.path, err)
}

// running returns the live plugin, starting it if there is none or the one
// there was has died.
func (g *GoPlugin) running(ctx context.Context) (*sdk.Client, error) {
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-g.lock }()
	if g.closed {
		return nil, errClosed
	}
	if g.client != nil {
		if !g.client.Exited() && g.healthy(ctx) {
			return g.check, nil
		}
		if ctx.Err() != nil {
			// Out of time is not proof it is dead: keep it for the next Run.
			return nil, ctx.Err()
		}
		g.stop()
	}
	if err := g.start(ctx); err != nil {
		return nil, err
	}
	return g.check, nil
}

// healthy asks go-plugin's health service, under ctx, whether the process
// still answers; Exited alone lags a process killed a moment ago.
func (g *GoPlugin) healthy(ctx context.Context) bool {
	_, err := grpc_health_v1.NewHealthClient(g.rpc.Conn).Check(ctx,
		&grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err == nil
}

// start launches the process and connects to it; the caller holds lock.
func (g *GoPlugin) start(ctx context.Context) error {
	startTimeout := g.opts.StartTimeout
	if deadline, ok := ctx.Deadline(); ok {
		startTimeout = max(min(startTimeout, time.Until(deadline)), time.Millisecond)
	}
	cmd := exec.Command(g.path)
	cmd.Dir = g.opts.Dir
	// go-plugin puts the agent's environment after cmd.Env, where it would
	// win; so it is skipped there and given here, before ours.
	cmd.Env = append(os.Environ(), g.opts.Env...)
	// Pdeathsig: an agent killed without Close takes its plugins with it.
	// Its own group: a Ctrl-C meant for the agent reaches the plugin only
	// through Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: &sdk.Plugin{}},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           g.logger,
		StartTimeout:     startTimeout,
	})
	protocol, err := client.Client()
	if err != nil {
		client.Kill()
		return fmt.Errorf("start: %w", err)
	}
	rpc, ok := protocol.(*plugin.GRPCClient)
	if !ok {
		client.Kill()
		return fmt.Errorf("start: plugin speaks %T, not gRPC", protocol)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		client.Kill()
		return fmt.Errorf("start: dispense %s: %w", sdk.PluginName, err)
	}
	check, ok := raw.(*sdk.Client)
	if !ok {
		client.Kill()
		return fmt.Errorf("start: dispensed %T, not a check", raw)
	}
	g.client, g.rpc, g.check = client, rpc, check
	g.pid.Store(int64(cmd.Process.Pid))
	return nil
}

// stop ends the process, if any, and waits for it; the caller holds lock.
func (g *GoPlugin) stop() {
	if g.client == nil {
		return
	}
	g.client.Kill()
	g.client, g.rpc, g.check = nil, nil, nil
	g.pid.Store(0)
}

// Close stops the plugin process and waits for it to exit; later Runs report
// UNKNOWN. It waits for a start in progress, which StartTimeout bounds.
func (g *GoPlugin) Close() error {
	g.lock <- struct{}{}
	defer func() { <-g.lock }()
	g.closed = true
	g.stop()
	return nil
}
