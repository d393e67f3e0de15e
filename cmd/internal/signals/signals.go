// Package signals is what a daemon does with the signals operators send:
// SIGTERM and SIGINT end its context (it then drains), SIGHUP reloads its
// config, SIGUSR1 reopens its log file.
package signals

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Daemon is the context a daemon runs under: it ends at SIGTERM or SIGINT.
// stop restores the default handling.
func Daemon() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Handle calls reload at every SIGHUP and reopen at every SIGUSR1 until ctx
// ends, one at a time, in the order they came. From the moment it is
// called, neither signal kills the process.
func Handle(ctx context.Context, reload, reopen func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				switch s {
				case syscall.SIGHUP:
					reload()
				case syscall.SIGUSR1:
					reopen()
				}
			}
		}
	}()
}
