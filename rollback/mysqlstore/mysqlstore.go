// Package mysqlstore keeps the coordinator's pushes and locks in MySQL (or
// MariaDB), so that several coordinators can share them. Only the one that
// holds MySQL's GET_LOCK drives pushes; the others serve reads and wait to
// take over.
package mysqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/immune-ops/immune/rollback"
)

// LeaderLock is the name of the MySQL lock the driving coordinator holds.
const LeaderLock = "immune-coordinator-leader"

// queryTimeout bounds every statement.
const queryTimeout = 10 * time.Second

// lockIdleTimeout is the leader lock connection's wait_timeout: how long
// MySQL keeps the lock of a leader it no longer hears from. A leader cut
// off by a silent partition cannot release it, and without this MySQL
// would hold it for its wait_timeout (8 hours by default), the standby
// unable to take over. It must outlast the leader's own notice that it is
// cut off (a keepalive every holdInterval, each up to queryTimeout) and a
// store write it had in flight then (queryTimeout), so that the old leader
// has stopped before a new one starts.
const lockIdleTimeout = 3 * queryTimeout

// holdInterval is how often the leader checks that it still holds the lock.
const holdInterval = 2 * time.Second

// Store is a rollback.Store in MySQL.
type Store struct {
	db      *sql.DB
	leading atomic.Bool
}

var _ rollback.Store = (*Store)(nil)

// Open connects with dsn (go-sql-driver's form, user:pass@tcp(host:port)/db)
// and creates the tables when they are missing.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message would repeat the DSN, password included.
		return nil, errors.New("mysql: the DSN is not user:password@tcp(host:port)/database")
	}
	cfg.ParseTime = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(connector)
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS immune_pushes (
			id VARCHAR(96) NOT NULL PRIMARY KEY,
			created DATETIME(6) NOT NULL,
			doc LONGTEXT NOT NULL,
			KEY by_created (created)
		) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS immune_locks (
			id TINYINT NOT NULL PRIMARY KEY,
			doc LONGTEXT NOT NULL
		) ENGINE=InnoDB`,
		`INSERT IGNORE INTO immune_locks (id, doc) VALUES (1, '{}')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("mysql: create the store's tables: %w", err)
		}
	}
	return &Store{db: db}, nil
}

// Close closes the connections, releasing the leader lock if held.
func (s *Store) Close() error { return s.db.Close() }

// SavePush records a push.
func (s *Store) SavePush(p *rollback.Push) error {
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode push %s: %w", p.ID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	_, err = s.db.ExecContext(ctx, `INSERT INTO immune_pushes (id, created, doc) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE doc = VALUES(doc)`, p.ID, p.Created, doc)
	if err != nil {
		return fmt.Errorf("save push %s: %w", p.ID, err)
	}
	return nil
}

// Push reads one push.
func (s *Store) Push(id string) (*rollback.Push, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	var doc []byte
	err := s.db.QueryRowContext(ctx, `SELECT doc FROM immune_pushes WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("push %q: %w", id, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read push %s: %w", id, err)
	}
	var p rollback.Push
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("read push %s: %w", id, err)
	}
	return &p, nil
}

// Pushes reads the newest pushes first.
func (s *Store) Pushes(limit int) ([]*rollback.Push, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	q := `SELECT doc FROM immune_pushes ORDER BY created DESC, id DESC`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read pushes: %w", err)
	}
	defer rows.Close()
	var out []*rollback.Push
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("read pushes: %w", err)
		}
		var p rollback.Push
		if err := json.Unmarshal(doc, &p); err != nil {
			return nil, fmt.Errorf("read pushes: %w", err)
		}
		out = append(out, &p)
	}
	return out, rows.Err()
}

// Locks reads the locks.
func (s *Store) Locks() (rollback.Locks, error) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	var doc []byte
	var l rollback.Locks
	if err := s.db.QueryRowContext(ctx, `SELECT doc FROM immune_locks WHERE id = 1`).Scan(&doc); err != nil {
		return l, fmt.Errorf("read locks: %w", err)
	}
	if err := json.Unmarshal(doc, &l); err != nil {
		return l, fmt.Errorf("read locks: %w", err)
	}
	return l, nil
}

// UpdateLocks changes the locks in a transaction that holds their row, so
// two coordinators cannot both take the push lock.
func (s *Store) UpdateLocks(fn func(*rollback.Locks) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update locks: %w", err)
	}
	defer tx.Rollback()
	var doc []byte
	if err := tx.QueryRowContext(ctx, `SELECT doc FROM immune_locks WHERE id = 1 FOR UPDATE`).Scan(&doc); err != nil {
		return fmt.Errorf("update locks: %w", err)
	}
	var l rollback.Locks
	if err := json.Unmarshal(doc, &l); err != nil {
		return fmt.Errorf("update locks: %w", err)
	}
	if err := fn(&l); err != nil {
		return err
	}
	if doc, err = json.Marshal(l); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE immune_locks SET doc = ? WHERE id = 1`, doc); err != nil {
		return fmt.Errorf("update locks: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update locks: %w", err)
	}
	return nil
}

// discard releases the leader lock and closes its connection for good: a
// connection back in the pool would keep a lock MySQL still counts as held.
func discard(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	conn.ExecContext(ctx, `SELECT RELEASE_LOCK(?)`, LeaderLock)
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// Leading reports whether this coordinator holds the leader lock.
func (s *Store) Leading() bool { return s.leading.Load() }

// Lead waits until this coordinator holds MySQL's leader lock (GET_LOCK on
// a connection of its own), then returns a context that ends when the lock
// is lost: the connection dropped, or ctx ended. The lock is MySQL's own,
// so it goes with the connection if this process dies.
func (s *Store) Lead(ctx context.Context) (context.Context, error) {
	for {
		conn, err := s.db.Conn(ctx)
		if err == nil {
			var got sql.NullInt64
			_, err = conn.ExecContext(ctx, fmt.Sprintf(`SET SESSION wait_timeout = %d`, int(lockIdleTimeout.Seconds())))
			if err == nil {
				err = conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 1)`, LeaderLock).Scan(&got)
			}
			if err == nil && got.Valid && got.Int64 == 1 {
				return s.hold(ctx, conn), nil
			}
			discard(conn)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// hold keeps the lock's connection alive and ends the returned context
// when it cannot.
func (s *Store) hold(ctx context.Context, conn *sql.Conn) context.Context {
	leadCtx, cancel := context.WithCancel(ctx)
	s.leading.Store(true)
	go func() {
		defer cancel()
		defer s.leading.Store(false)
		defer discard(conn)
		t := time.NewTicker(holdInterval)
		defer t.Stop()
		for {
			select {
			case <-leadCtx.Done():
				return
			case <-t.C:
				var held sql.NullInt64
				pctx, done := context.WithTimeout(leadCtx, queryTimeout)
				err := conn.QueryRowContext(pctx, `SELECT IS_USED_LOCK(?) = CONNECTION_ID()`, LeaderLock).Scan(&held)
				done()
				if err != nil || !held.Valid || held.Int64 != 1 {
					return
				}
			}
		}
	}()
	return leadCtx
}
