package agent

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"
)

// nrpeEvictAfter is how long a connection may hold a slot without having
// sent its query before a newcomer, finding every slot taken, may close it
// and take its slot. A real client (check_nrpe) completes the TLS handshake
// and sends its query within milliseconds of connecting.
const nrpeEvictAfter = time.Second

// nrpeConns hands out the NRPE server's MaxConns connection slots.
//
// A connection holds its slot from accept to hang-up, in two phases: first
// "greeting" (the TLS handshake and reading the query, bounded by
// HandshakeTimeout), then running the command it asked for (bounded by
// Timeout, and queued behind the scheduler's max_concurrent). Clients that
// connect and send nothing must not lock Nagios out, so a newcomer that
// finds every slot taken closes the oldest greeting connection that has had
// nrpeEvictAfter to send its query, and takes its slot. Only a client that
// sits idle loses its place: one that sends its query at once is running
// before anyone could evict it. The newcomer waits at most nrpeEvictAfter
// when idle connections hold the slots, or until a command ends when every
// slot runs one. Connections from hosts not allowed never take a slot (the
// accept loop closes them first), and the accept loop takes one connection
// at a time, so the server holds at most MaxConns+1 connections open.
type nrpeConns struct {
	mu   sync.Mutex
	free int
	// greeting are the connections holding a slot that have not sent their
	// query yet, oldest first.
	greeting []*nrpeConn
	// freed is signalled when a slot comes free, to the one waiter (the
	// accept loop).
	freed chan struct{}
	// evictions logs the connections closed for room.
	evictions *logLimiter
}

// nrpeConn is one connection's slot.
type nrpeConn struct {
	conns *nrpeConns
	raw   net.Conn
	since time.Time
	// Guarded by conns.mu.
	evicted, running bool
}

func newNRPEConns(slots int, evictions *logLimiter) *nrpeConns {
	return &nrpeConns{free: slots, freed: make(chan struct{}, 1), evictions: evictions}
}

// acquire takes a slot for raw, waiting for one to come free or for a
// greeting connection to be old enough to evict; it fails only when ctx ends.
func (c *nrpeConns) acquire(ctx context.Context, raw net.Conn) (*nrpeConn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		now := time.Now()
		if c.free > 0 {
			c.free--
			nc := c.add(raw, now)
			c.mu.Unlock()
			return nc, nil
		}
		var older <-chan time.Time
		if len(c.greeting) > 0 {
			oldest := c.greeting[0]
			age := now.Sub(oldest.since)
			if age >= nrpeEvictAfter {
				// The slot passes from oldest to raw: oldest's release
				// gives nothing back.
				c.greeting = c.greeting[1:]
				oldest.evicted = true
				nc := c.add(raw, now)
				c.mu.Unlock()
				c.evictions.note(oldest.raw.RemoteAddr().String())
				// Cuts its handshake or read short; its goroutine then ends.
				oldest.raw.Close()
				return nc, nil
			}
			if timer == nil {
				timer = time.NewTimer(nrpeEvictAfter - age)
			} else {
				timer.Reset(nrpeEvictAfter - age)
			}
			older = timer.C
		}
		c.mu.Unlock()
		select {
		case <-c.freed:
		case <-older:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// add makes a greeting connection's slot; c.mu is held.
func (c *nrpeConns) add(raw net.Conn, now time.Time) *nrpeConn {
	nc := &nrpeConn{conns: c, raw: raw, since: now}
	c.greeting = append(c.greeting, nc)
	return nc
}

// start moves the connection from greeting to running its command; false
// means it was evicted meanwhile and must hang up.
func (nc *nrpeConn) start() bool {
	c := nc.conns
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc.evicted {
		return false
	}
	c.greeting = slices.DeleteFunc(c.greeting, func(o *nrpeConn) bool { return o == nc })
	nc.running = true
	return true
}

// wasEvicted tells whether the connection was closed to make room.
func (nc *nrpeConn) wasEvicted() bool {
	nc.conns.mu.Lock()
	defer nc.conns.mu.Unlock()
	return nc.evicted
}

// release gives the slot back once the connection is done, unless it was
// handed over already by an eviction.
func (nc *nrpeConn) release() {
	c := nc.conns
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc.evicted {
		return
	}
	if !nc.running {
		c.greeting = slices.DeleteFunc(c.greeting, func(o *nrpeConn) bool { return o == nc })
	}
	c.free++
	select {
	case c.freed <- struct{}{}:
	default:
	}
}
