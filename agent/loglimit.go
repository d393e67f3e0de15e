package agent

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter writes a log line for an event a client can repeat at will (a
// connection refused, a connection closed for room) at most once per
// interval: the first at once with its remote address, then one line per
// interval saying how many more there were, so that a flood of connections
// cannot flood the log.
type logLimiter struct {
	log   *slog.Logger
	msg   string
	every time.Duration

	mu sync.Mutex
	// last is when a line was last written; held counts the events since
	// then not written, remote is the last of them.
	last    time.Time
	held    int
	remote  string
	timer   *time.Timer // writes the held events once the interval is over
	stopped bool
}

func newLogLimiter(log *slog.Logger, msg string, every time.Duration) *logLimiter {
	return &logLimiter{log: log, msg: msg, every: every}
}

// note records one event from remote.
func (l *logLimiter) note(remote string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.held == 0 && now.Sub(l.last) >= l.every {
		l.last = now
		l.log.Warn(l.msg, "remote", remote)
		return
	}
	l.held++
	l.remote = remote
	if l.timer == nil && !l.stopped {
		l.timer = time.AfterFunc(l.every-now.Sub(l.last), l.flush)
	}
}

func (l *logLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.writeHeld()
}

func (l *logLimiter) writeHeld() {
	if l.held == 0 {
		return
	}
	now := time.Now()
	l.log.Warn(l.msg, "more", l.held, "in", now.Sub(l.last).Round(time.Millisecond).String(), "last_remote", l.remote)
	l.last, l.held = now, 0
}

// stop writes the events held back and stops the timer: nothing is logged
// after it returns.
func (l *logLimiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.writeHeld()
}
