package mysqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/mariadb"
	"github.com/immune-ops/immune/rollback"
)

func TestMain(m *testing.M) { os.Exit(mariadb.RunTests(m)) }

// open returns a store in a database of its own on the shared test server.
func open(t *testing.T) (*Store, string) {
	t.Helper()
	srv := mariadb.Shared(t)
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s", mariadb.User, mariadb.Password, srv.Addr(), mariadb.Database)
	ctx := context.Background()
	if err := srv.Exec(ctx, "DROP TABLE IF EXISTS "+mariadb.Database+".immune_pushes", "DROP TABLE IF EXISTS "+mariadb.Database+".immune_locks"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
}

func TestPushesAndLocks(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i, rev := range []string{"r1", "r2", "r3"} {
		p := &rollback.Push{ID: fmt.Sprintf("push-%d", i), Revision: rev, Created: t0.Add(time.Duration(i) * time.Minute), State: rollback.StateBaseline}
		if err := s.SavePush(p); err != nil {
			t.Fatal(err)
		}
		p.State = rollback.StateLive
		if err := s.SavePush(p); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := s.Pushes(2)
	if err != nil || len(ps) != 2 || ps[0].Revision != "r3" || ps[1].Revision != "r2" || ps[0].State != rollback.StateLive {
		t.Fatalf("pushes: %v %v", ps, err)
	}
	if _, err := s.Push("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing push: %v", err)
	}
	err = s.UpdateLocks(func(l *rollback.Locks) error {
		l.Commit = &rollback.CommitLock{Push: "push-2", Revision: "r3", Reason: "php errors"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Locks()
	if err != nil || l.Commit == nil || l.Commit.Reason != "php errors" {
		t.Fatalf("locks %+v %v", l, err)
	}
}

// TestPushLockIsExclusive: coordinators racing for the push lock through
// the shared store: exactly one wins.
func TestPushLockIsExclusive(t *testing.T) {
	s, dsn := open(t)
	other, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wins sync.Map
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		store := s
		if i%2 == 1 {
			store = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := store.UpdateLocks(func(l *rollback.Locks) error {
				if l.Push != "" {
					return rollback.ErrLocked
				}
				l.Push = fmt.Sprint("push-", i)
				return nil
			})
			if err == nil {
				wins.Store(i, true)
			}
		}()
	}
	wg.Wait()
	n := 0
	wins.Range(func(_, _ any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d coordinators took the push lock", n)
	}
}

func TestOnlyOneLeads(t *testing.T) {
	a, dsn := open(t)
	b, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctxA, cancelA := context.WithCancel(context.Background())
	leadA, err := a.Lead(ctxA)
	if err != nil || !a.Leading() {
		t.Fatalf("a does not lead: %v", err)
	}
	took := make(chan context.Context)
	go func() {
		ctx, _ := b.Lead(context.Background())
		took <- ctx
	}()
	select {
	case <-took:
		t.Fatal("b leads while a does")
	case <-time.After(2 * time.Second):
	}
	// a steps down (or dies: the lock goes with its connection); b takes over.
	cancelA()
	<-leadA.Done()
	select {
	case ctx := <-took:
		if ctx == nil || !b.Leading() {
			t.Fatal("b did not take over")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b never took the lead")
	}
}
