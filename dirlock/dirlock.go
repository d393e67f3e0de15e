// Package dirlock keeps a directory to one process: an advisory flock on
// a file in it, which the kernel drops when the holder dies, so a crash
// never leaves a stale lock behind.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Lock is a held directory lock.
type Lock struct{ f *os.File }

// ErrHeld is what Take's error is when another process holds the lock:
// the caller may give up, while any other error is about the directory.
var ErrHeld = errors.New("directory lock held by another process")

// heldError names the holder, and is ErrHeld.
type heldError struct{ msg string }

func (e *heldError) Error() string        { return e.msg }
func (e *heldError) Is(target error) bool { return target == ErrHeld }

// Take locks dir, or says which process holds it. what names the holder's
// kind in the error ("coordinator", "agent").
func Take(dir, what string) (*Lock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another " + what
			if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
				holder += " (pid " + strings.TrimSpace(string(b)) + ")"
			}
			return nil, &heldError{fmt.Sprintf("%s is in use by %s", dir, holder)}
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() error { return l.f.Close() }
