// Package netlimit bounds what an HTTP server of immune's may hold: read
// and idle timeouts, header size, and the connections open at once, so
// that a flood of idle keep-alive connections cannot take the file
// descriptors an agent needs for its checks, NRPE and state.
package netlimit

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits are a server's bounds.
type Limits struct {
	// MaxConns is how many connections are open at once; more wait in the
	// kernel's backlog until one closes.
	MaxConns int
	// ReadHeader, Read and Idle bound a request's headers, its whole body,
	// and a keep-alive connection's wait for the next request.
	ReadHeader, Read, Idle time.Duration
}

// Default are the limits of the agent's and the coordinator's APIs.
var Default = Limits{MaxConns: 512, ReadHeader: 10 * time.Second, Read: 30 * time.Minute, Idle: 60 * time.Second}

// Apply sets s's timeouts and returns ln bounded to MaxConns.
func (l Limits) Apply(s *http.Server, ln net.Listener) net.Listener {
	s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout = l.ReadHeader, l.Read, l.Idle
	s.MaxHeaderBytes = 64 << 10
	return netutil.LimitListener(ln, l.MaxConns)
}
