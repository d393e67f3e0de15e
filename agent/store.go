package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/google/renameio/v2"
)

// Store keeps the latest status of every check, and writes them to a small
// state file so that soft/hard states and attempt counts survive a restart.
type Store struct {
	path string

	mu       sync.Mutex
	statuses map[string]Status
	dirty    bool
	watchers []func(Status)
}

// stateFileVersion changes when the file's layout does; an older file is ignored.
const stateFileVersion = 1

type stateFile struct {
	Version  int               `json:"version"`
	Statuses map[string]Status `json:"statuses"`
}

// OpenStore loads the state file at path, if there is one. A file that
// cannot be read is an error, so state is never silently lost; a file of
// another version is set aside.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path, statuses: map[string]Status{}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("read state file %s: %w (move it away to start afresh)", path, err)
	}
	if f.Version == stateFileVersion && f.Statuses != nil {
		s.statuses = f.Statuses
	}
	return s, nil
}

// Get returns the status of one check.
func (s *Store) Get(name string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.statuses[name]
	return st, ok
}

// All returns every status, sorted by name.
func (s *Store) All() []Status {
	s.mu.Lock()
	all := make([]Status, 0, len(s.statuses))
	for _, st := range s.statuses {
		all = append(all, st)
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// Put records a new status and tells the watchers.
func (s *Store) Put(st Status) {
	s.mu.Lock()
	s.statuses[st.Name] = st
	s.dirty = true
	watchers := s.watchers
	s.mu.Unlock()
	for _, w := range watchers {
		w(st)
	}
}

// Watch calls fn with every status put from now on. fn must not block.
func (s *Store) Watch(fn func(Status)) {
	s.mu.Lock()
	s.watchers = append(s.watchers, fn)
	s.mu.Unlock()
}

// Keep drops the statuses of checks that are no longer configured.
func (s *Store) Keep(names map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.statuses {
		if !names[n] {
			delete(s.statuses, n)
			s.dirty = true
		}
	}
}

// Save writes the state file when something changed, atomically: a crash
// leaves the old file or the new one, never half of one.
func (s *Store) Save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	data, err := json.Marshal(stateFile{Version: stateFileVersion, Statuses: s.statuses})
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := renameio.WriteFile(s.path, data, 0o600); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}
