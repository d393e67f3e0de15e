package checks

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/go-sql-driver/mysql"

	"github.com/immune-ops/immune/nagios"
)

// The connection options of the MySQL checks, spelt as monitoring-plugins'
// check_mysql and check_mysql_query spell them. Values come from the option
// files first, as the C client library reads them, then from the flags.

// defaultMySQLSocket is where Debian's MariaDB and MySQL clients look when
// neither -H nor -s nor an option file names a server.
const defaultMySQLSocket = "/run/mysqld/mysqld.sock"

// defaultOptionFiles are read, in order, when -f names no file: the ones the
// C client library reads on Debian.
var defaultOptionFiles = []string{"/etc/my.cnf", "/etc/mysql/my.cnf", "~/.my.cnf"}

// mysqlFlags holds the connection options as given.
type mysqlFlags struct {
	f                                                  *flagSet
	host, port, socket, user, password, database, file string
	group                                              string
}

// addMySQLFlags registers the connection options on f.
func addMySQLFlags(f *flagSet) *mysqlFlags {
	m := &mysqlFlags{f: f}
	f.StringVarP(&m.host, "hostname", "H", "", "Host name or IP address of the server; an absolute path is a Unix socket (default: the local server's socket)")
	f.StringVarP(&m.port, "port", "P", "", "TCP port of the server (default: 3306)")
	f.StringVarP(&m.socket, "socket", "s", "", "Unix socket of the server (has no effect if -H names a host other than localhost)")
	f.StringVarP(&m.user, "username", "u", "", "User to log in as")
	f.StringVarP(&m.password, "password", "p", "", "Password to log in with; an empty -p '' overrides the option files.\n"+
		"Prefer an option file (-f) readable by this user only: a password on the command line is visible to other users")
	f.StringVarP(&m.database, "database", "d", "", "Database to use")
	f.StringVarP(&m.file, "file", "f", "", "Read the client options (user, password, host, port, socket, database) from this file only\n"+
		"(default: /etc/my.cnf, /etc/mysql/my.cnf, ~/.my.cnf)")
	f.StringVarP(&m.group, "group", "g", "", "Also read this group of the option files, after [client], [client-server] and [client-mariadb]")
	return m
}

// config resolves the options into the driver's configuration. Errors are
// usage errors that name the flag or the option file.
func (m *mysqlFlags) config() (*mysql.Config, error) {
	opts := map[string]string{}
	groups := []string{"client", "client-server", "client-mariadb"}
	if m.group != "" {
		groups = append(groups, m.group)
	}
	if m.file != "" {
		if err := readOptionFile(m.file, groups, opts, 0); err != nil {
			return nil, m.f.failf("-f/--file: %v", err)
		}
	} else {
		home, _ := os.UserHomeDir()
		for _, p := range defaultOptionFiles {
			if strings.HasPrefix(p, "~/") {
				if home == "" {
					continue
				}
				p = filepath.Join(home, p[2:])
			}
			// The defaults are read when they exist, as the C library does.
			if err := readOptionFile(p, groups, opts, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, m.f.failf("option file: %v", err)
			}
		}
	}
	set := func(flag, value, key string) string {
		if m.f.Changed(flag) {
			return value
		}
		return opts[key]
	}
	host := set("hostname", m.host, "host")
	socket := set("socket", m.socket, "socket")
	portText := set("port", m.port, "port")

	cfg := mysql.NewConfig()
	cfg.User = set("username", m.user, "user")
	cfg.Passwd = set("password", m.password, "password")
	cfg.DBName = set("database", m.database, "database")
	cfg.Logger = &mysql.NopLogger{}
	// Old servers and users with mysql_native_password stay reachable; the
	// driver refuses cleartext passwords unless told, and so do we.
	cfg.AllowNativePasswords = true

	port := 3306
	if portText != "" {
		n, err := strconv.Atoi(portText)
		if err != nil || n < 1 || n > 65535 {
			return nil, m.f.failf("-P/--port %q: not a port number (1-65535)", portText)
		}
		port = n
	}
	switch {
	case strings.HasPrefix(host, "/"):
		cfg.Net, cfg.Addr = "unix", host
	case host == "" || host == "localhost":
		// "localhost" means the socket to the C client library too.
		cfg.Net, cfg.Addr = "unix", socket
		if socket == "" {
			cfg.Net, cfg.Addr = "unix", defaultMySQLSocket
		}
	default:
		if strings.ContainsAny(host, " \t\r\n/") {
			return nil, m.f.failf("-H/--hostname %q: not a host name or address", host)
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	}
	return cfg, nil
}

// maxIncludeDepth stops include loops in option files.
const maxIncludeDepth = 10

// readOptionFile reads the client options of a my.cnf file into opts: the
// keys of the groups named, later values winning, with the !include and
// !includedir directives the server's files use.
func readOptionFile(path string, groups []string, opts map[string]string, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: includes nested more than %d deep", path, maxIncludeDepth)
	}
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read option file: %w", err)
	}
	defer fh.Close()
	want := map[string]bool{}
	for _, g := range groups {
		want[strings.ToLower(g)] = true
	}
	in := false
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "!includedir"):
			dir := strings.TrimSpace(strings.TrimPrefix(line, "!includedir"))
			files, _ := filepath.Glob(filepath.Join(dir, "*.cnf"))
			sort.Strings(files)
			for _, inc := range files {
				if err := readOptionFile(inc, groups, opts, depth+1); err != nil {
					return err
				}
			}
		case strings.HasPrefix(line, "!include"):
			inc := strings.TrimSpace(strings.TrimPrefix(line, "!include"))
			if err := readOptionFile(inc, groups, opts, depth+1); err != nil {
				return fmt.Errorf("%s:%d: %w", path, n, err)
			}
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fmt.Errorf("%s:%d: group header %q has no ']'", path, n, line)
			}
			in = want[strings.ToLower(strings.TrimSpace(line[1:end]))]
		case in:
			key, value, _ := strings.Cut(line, "=")
			key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "-", "_")
			opts[key] = optionValue(value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read option file %s: %w", path, err)
	}
	return nil
}

// optionValue unquotes a my.cnf value. A '#' after the value is kept, as
// MariaDB's client library keeps it: it may be part of a password.
func optionValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// mysqlSession is one connection to the server, closed with its pool.
type mysqlSession struct {
	*sql.Conn
	db *sql.DB
}

// openMySQL connects as cfg says, within ctx.
func openMySQL(ctx context.Context, cfg *mysql.Config) (*mysqlSession, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure the connection: %w", err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &mysqlSession{Conn: conn, db: db}, nil
}

func (s *mysqlSession) Close() {
	s.Conn.Close()
	s.db.Close()
}

// readOnly makes every later statement of the session run in a read-only
// transaction, so a monitoring query cannot write (DDL included), and asks
// the server to abandon a statement that runs past ctx's deadline, which
// closing the connection on the client side alone would leave running.
func (s *mysqlSession) readOnly(ctx context.Context) error {
	if _, err := s.ExecContext(ctx, "SET SESSION TRANSACTION READ ONLY"); err != nil {
		return fmt.Errorf("make the session read only: %w", err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	// MariaDB counts seconds for every statement, MySQL milliseconds for
	// SELECTs; a server that knows neither is still bounded by ctx.
	_, err := s.ExecContext(ctx, fmt.Sprintf("SET SESSION max_statement_time = %.3f", max(left.Seconds(), 0.001)))
	if mysqlErrorNumber(err) == errUnknownSystemVariable {
		_, err = s.ExecContext(ctx, fmt.Sprintf("SET SESSION max_execution_time = %d", max(left.Milliseconds(), 1)))
		if mysqlErrorNumber(err) == errUnknownSystemVariable {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("limit the statement time: %w", err)
	}
	return nil
}

// Server error numbers the checks tell apart.
const (
	errAccessDenied          = 1045
	errParse                 = 1064
	errUnknownSystemVariable = 1193
	errStatementTimeMariaDB  = 1969 // max_statement_time exceeded
	errStatementTimeMySQL    = 3024 // max_execution_time exceeded
)

// mysqlTimedOut reports whether err is the deadline: ctx's own, or the
// server's statement time limit that readOnly set from it, which the
// server may enforce a moment before ctx expires.
func mysqlTimedOut(ctx context.Context, err error) bool {
	n := mysqlErrorNumber(err)
	return timedOut(ctx) || n == errStatementTimeMariaDB || n == errStatementTimeMySQL
}

func mysqlErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// mysqlProblem says what went wrong talking to the server in the words the
// C client library uses, which monitoring-plugins prints, and the state it
// gives: WARNING where the server could not be looked up or the local
// socket could not be made, CRITICAL otherwise. The server's messages carry
// no password, and neither does anything added here.
func mysqlProblem(err error, cfg *mysql.Config) (nagios.State, string) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return nagios.Critical, me.Message
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		return nagios.Warning, fmt.Sprintf("Unknown server host '%s' (%s)", host, dnsErr.Err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nagios.Critical, err.Error()
	}
	why := fmt.Sprintf("(%d \"%s\")", int(errno), capitalize(errno.Error()))
	if cfg.Net == "unix" {
		return nagios.Critical, fmt.Sprintf("Can't connect to local server through socket '%s' %s", cfg.Addr, why)
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	return nagios.Critical, fmt.Sprintf("Can't connect to server on '%s' %s", host, why)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// mysqlGreeting reads the server's handshake, which it sends before any
// login: the protocol version and the server's version. MariaDB prefixes
// its version with "5.5.5-" for old replicas' sake; that is cut, as the C
// client library cuts it.
func mysqlGreeting(ctx context.Context, cfg *mysql.Config) (version string, protocol int, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, cfg.Net, cfg.Addr)
	if err != nil {
		return "", 0, fmt.Errorf("connect for the greeting: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return readMySQLGreeting(conn)
}

// readMySQLGreeting reads the handshake packet from r: the first 1024
// bytes of its payload are plenty for the two fields wanted.
func readMySQLGreeting(r io.Reader) (version string, protocol int, err error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return "", 0, fmt.Errorf("read the greeting: %w", err)
	}
	n := int(binary.LittleEndian.Uint32(append(header[:3:3], 0)))
	payload := make([]byte, min(n, 1024))
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", 0, fmt.Errorf("read the greeting: %w", err)
	}
	if len(payload) < 2 || payload[0] == 0xff {
		return "", 0, errors.New("the server refused the connection before the greeting")
	}
	v, _, ok := strings.Cut(string(payload[1:]), "\x00")
	if !ok {
		return "", 0, errors.New("the greeting has no version")
	}
	return strings.TrimPrefix(v, "5.5.5-"), int(payload[0]), nil
}
