package dirlock

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestTake(t *testing.T) {
	dir := t.TempDir()
	l, err := Take(dir, "coordinator")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Take(dir, "coordinator")
	want := fmt.Sprintf("%s is in use by another coordinator (pid %d)", dir, os.Getpid())
	if err == nil || err.Error() != want || !errors.Is(err, ErrHeld) {
		t.Errorf("second lock: %v, want %s (ErrHeld)", err, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = Take(dir, "coordinator")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l.Release()
	if _, err := Take(dir+"/none", "agent"); err == nil || !strings.Contains(err.Error(), "open lock") {
		t.Errorf("missing dir: %v", err)
	}
}
