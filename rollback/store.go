package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	"github.com/immune-ops/immune/rollback/gitrepo"
)

// Locks are the two locks of the immune system: the push lock (one push at
// a time) and the commit lock (set by a rollback, cleared by a person).
type Locks struct {
	// Push is the ID of the push in progress, or empty.
	Push string `json:"push,omitempty"`
	// Commit is set after a rollback until someone clears it with a reason.
	Commit *CommitLock `json:"commit,omitempty"`
	// Cleared are the commit locks cleared so far, newest last.
	Cleared []CommitLock `json:"cleared,omitempty"`
}

// CommitLock records why pushes are blocked, and who cleared it.
type CommitLock struct {
	Push     string    `json:"push"`
	Revision string    `json:"revision"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	// Range is what the push brought and the revert took out, newest
	// first: the commits to fix; Page is the push's page on the coordinator.
	Range []gitrepo.Commit `json:"range,omitempty"`
	Page  string           `json:"page,omitempty"`
	// RevertError is why the revert failed, when it did: fix it by hand.
	RevertError string `json:"revert_error,omitempty"`
	// ClearedBy, ClearedAt and ClearReason are set when a person cleared it.
	ClearedBy   string    `json:"cleared_by,omitempty"`
	ClearedAt   time.Time `json:"cleared_at,omitempty"`
	ClearReason string    `json:"clear_reason,omitempty"`
}

// ErrLocked is a push refused by a lock.
var ErrLocked = errors.New("locked")

// Store keeps pushes and locks durably. FileStore keeps them in the data
// dir; rollback/mysqlstore in MySQL, shared by several coordinators.
type Store interface {
	// SavePush records a push's state; it is called before each step is acted on.
	SavePush(p *Push) error
	// Push reads one push; a missing one is an error wrapping os.ErrNotExist.
	Push(id string) (*Push, error)
	// Pushes reads the newest pushes first, at most limit (0: all).
	Pushes(limit int) ([]*Push, error)
	Locks() (Locks, error)
	// UpdateLocks changes the locks atomically: fn sees the current locks
	// and returns an error to leave them as they were.
	UpdateLocks(fn func(*Locks) error) error
}

// FileStore keeps pushes and locks as files in a directory: one JSON file
// per push and one for the locks, each replaced atomically, so a coordinator
// killed at any moment finds every step it had recorded.
type FileStore struct {
	dir string
	mu  sync.Mutex
}

// OpenFileStore opens (and creates) a store in dir.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "pushes"), 0o700); err != nil {
		return nil, fmt.Errorf("open push store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) pushPath(id string) string {
	return filepath.Join(s.dir, "pushes", id+".json")
}

// SavePush records a push's state; the coordinator calls it before acting
// on each step.
func (s *FileStore) SavePush(p *Push) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode push %s: %w", p.ID, err)
	}
	if err := renameio.WriteFile(s.pushPath(p.ID), data, 0o600); err != nil {
		return fmt.Errorf("save push %s: %w", p.ID, err)
	}
	return nil
}

// Push reads one push.
func (s *FileStore) Push(id string) (*Push, error) {
	if strings.ContainsAny(id, `/\`) || id == "" || id[0] == '.' {
		return nil, fmt.Errorf("push %q: %w", id, os.ErrNotExist)
	}
	data, err := os.ReadFile(s.pushPath(id))
	if err != nil {
		return nil, fmt.Errorf("read push %s: %w", id, err)
	}
	var p Push
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("read push %s: %w", id, err)
	}
	return &p, nil
}

// Pushes reads the newest pushes first, at most limit (0: all).
func (s *FileStore) Pushes(limit int) ([]*Push, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "pushes", "*.json"))
	if err != nil {
		return nil, err
	}
	// IDs start with their creation time, so names sort by age.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	if limit > 0 && len(names) > limit {
		names = names[:limit]
	}
	pushes := make([]*Push, 0, len(names))
	for _, n := range names {
		p, err := s.Push(strings.TrimSuffix(filepath.Base(n), ".json"))
		if err != nil {
			return nil, err
		}
		pushes = append(pushes, p)
	}
	return pushes, nil
}

// Locks reads the locks.
func (s *FileStore) Locks() (Locks, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locks()
}

func (s *FileStore) locks() (Locks, error) {
	var l Locks
	data, err := os.ReadFile(filepath.Join(s.dir, "locks.json"))
	if os.IsNotExist(err) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("read locks: %w", err)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("read locks: %w", err)
	}
	return l, nil
}

func (s *FileStore) saveLocks(l Locks) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.dir, "locks.json"), data, 0o600); err != nil {
		return fmt.Errorf("save locks: %w", err)
	}
	return nil
}

// UpdateLocks changes the locks under the store's mutex: fn sees the
// current locks and returns an error to leave them as they were.
func (s *FileStore) UpdateLocks(fn func(*Locks) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.locks()
	if err != nil {
		return err
	}
	if err := fn(&l); err != nil {
		return err
	}
	return s.saveLocks(l)
}
