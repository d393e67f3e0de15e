package sdk

import (
	"bytes"
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/immune-ops/immune/nagios"
)

// echo reports what it was given, so a test can see the arguments and the
// deadline arrive; "panic" panics.
var echo = CheckFunc(func(ctx context.Context, args []string) nagios.Result {
	if len(args) > 0 && args[0] == "panic" {
		panic("asked to")
	}
	_, hasDeadline := ctx.Deadline()
	return nagios.Result{
		State:  nagios.Warning,
		Output: "ECHO WARNING - " + strings.Join(args, " "),
		Long:   map[bool]string{true: "deadline", false: "no deadline"}[hasDeadline],
		Perf: []nagios.Perf{
			{Label: "args", Value: float64(len(args)), Warn: &nagios.Range{End: 1}, Min: nagios.Float(0)},
			{Label: "time taken", Value: 0.25, UOM: "s", Precision: 3},
			{Label: "free", Unknown: true, Crit: &nagios.Range{Start: 10, End: math.Inf(1)}, Max: nagios.Float(100)},
			{Label: "used", Value: -1.5, UOM: "%", Warn: &nagios.Range{Start: math.Inf(-1), End: 80, Inside: true}},
		},
	}
})

func TestRunOnce(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"result", []string{"a", "b"}, 1, "ECHO WARNING - a b|args=2;1;;0 'time taken'=0.250s free=U;;10:;;100 used=-1.5%;@~:80\nno deadline\n"},
		{"panic", []string{"panic"}, 3, "UNKNOWN - check panicked: asked to\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := runOnce(echo, tt.args, &out); code != tt.code || out.String() != tt.want {
				t.Errorf("got %d %q, want %d %q", code, out.String(), tt.code, tt.want)
			}
		})
	}
}

// TestGRPCRoundTrip serves a check on a loopback port and calls it the way
// the agent does, through Plugin's server and client halves.
func TestGRPCRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if err := (&Plugin{Check: echo}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.Dial(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := (&Plugin{}).GRPCClient(context.Background(), nil, conn)
	if err != nil {
		t.Fatal(err)
	}
	client := raw.(*Client)

	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"result", []string{"x"}, nagios.Warning, "ECHO WARNING - x|args=1;1;;0 'time taken'=0.250s free=U;;10:;;100 used=-1.5%;@~:80\ndeadline\n"},
		{"panic", []string{"panic"}, nagios.Unknown, "UNKNOWN - check panicked: asked to\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := client.Run(ctx, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("got %v %q, want %v %q", r.State, r, tt.state, tt.want)
			}
		})
	}

	srv.Stop()
	if _, err := client.Run(context.Background(), nil); err == nil || !strings.HasPrefix(err.Error(), "call check.Run: ") {
		t.Errorf("call to a stopped server: got %v, want an error that says what failed", err)
	}
}

func TestServeNeedsACheck(t *testing.T) {
	if err := (&Plugin{}).GRPCServer(nil, grpc.NewServer()); err == nil {
		t.Error("GRPCServer without a Check: no error")
	}
}
