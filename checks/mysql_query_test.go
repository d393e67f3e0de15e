package checks

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/immune-ops/immune/fixtures/mariadb"
	"github.com/immune-ops/immune/nagios"
)

// The MySQL checks' tests share one MariaDB, started on first use.
func TestMain(m *testing.M) { os.Exit(mariadb.RunTests(m)) }

var seedMySQL sync.Once

// mysqlServer returns the shared server, seeded once with the tables the
// tests read.
func mysqlServer(t *testing.T) *mariadb.Server {
	t.Helper()
	s := mariadb.Shared(t)
	var err error
	seedMySQL.Do(func() {
		err = s.Exec(context.Background(),
			"USE "+mariadb.Database,
			"CREATE TABLE t (id INT PRIMARY KEY, n INT, s VARCHAR(20))",
			"INSERT INTO t VALUES (1, 5, 'five'), (2, 7, NULL), (3, -2, ' 12')",
			"CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, created_at DATETIME NOT NULL)",
			"INSERT INTO orders (created_at) VALUES (NOW() - INTERVAL 1 MINUTE), (NOW() - INTERVAL 5 MINUTE),"+
				" (NOW() - INTERVAL 9 MINUTE), (NOW() - INTERVAL 2 HOUR), (NOW() - INTERVAL 3 HOUR)",
			"CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, signed_up TIMESTAMP NOT NULL)",
			"INSERT INTO users (signed_up) VALUES (NOW() - INTERVAL 5 MINUTE), (NOW() - INTERVAL 2 DAY)",
			"CREATE TABLE jobs (id INT AUTO_INCREMENT PRIMARY KEY, queued_at DATETIME NOT NULL, processed TINYINT NOT NULL)",
			"INSERT INTO jobs (queued_at, processed) VALUES (NOW() - INTERVAL 120 SECOND, 0),"+
				" (NOW() - INTERVAL 30 SECOND, 0), (NOW() - INTERVAL 1 DAY, 1)",
		)
	})
	if err != nil {
		t.Fatalf("seed the test tables: %v", err)
	}
	return s
}

// mysqlArgs are the options that log in as the test user over TCP.
func mysqlArgs(s *mariadb.Server, more ...string) []string {
	return append([]string{"-H", s.Host, "-P", s.PortString(), "-u", mariadb.User, "-p", mariadb.Password, "-d", mariadb.Database}, more...)
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(port)
}

// assertNoPassword fails when a check's output shows the test password.
func assertNoPassword(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, mariadb.Password) {
		t.Errorf("output shows the password:\n%s", out)
	}
}

func TestMySQLQueryTwin(t *testing.T) {
	s := mysqlServer(t)
	dir := t.TempDir()
	optFile := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(optFile, []byte("[client]\nuser = "+mariadb.User+"\npassword = wrong\n"+
		"[monitoring]\npassword = \""+mariadb.Password+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := s.PortString()
	cases := []twinCase{
		{"number", mysqlArgs(s, "-q", "SELECT 5")},
		{"ok", mysqlArgs(s, "-q", "SELECT 5", "-w", "10", "-c", "20")},
		{"warning", mysqlArgs(s, "-q", "SELECT 15", "-w", "10", "-c", "20")},
		{"critical", mysqlArgs(s, "-q", "SELECT 25", "-w", "10", "-c", "20")},
		{"below a lower bound", mysqlArgs(s, "-q", "SELECT 2.5", "-w", "10:")},
		{"inside range", mysqlArgs(s, "-q", "SELECT 1.5", "-w", "@1:2", "-c", "10:20")},
		{"first row of a table", mysqlArgs(s, "-q", "SELECT n FROM t ORDER BY id")},
		{"first column", mysqlArgs(s, "-q", "SELECT 1, 2", "-w", "5", "-c", "10")},
		{"negative", mysqlArgs(s, "-q", "SELECT -3")},
		{"large", mysqlArgs(s, "-q", "SELECT 1e20")},
		{"leading space", mysqlArgs(s, "-q", "SELECT s FROM t WHERE id = 3")},
		{"text", mysqlArgs(s, "-q", "SELECT s FROM t ORDER BY id")},
		{"null", mysqlArgs(s, "-q", "SELECT s FROM t WHERE id = 2")},
		{"number then text", mysqlArgs(s, "-q", "SELECT '12abc'")},
		{"empty string", mysqlArgs(s, "-q", "SELECT ''")},
		{"no rows", mysqlArgs(s, "-q", "SELECT n FROM t WHERE id = 99")},
		{"missing table", mysqlArgs(s, "-q", "SELECT n FROM nosuch")},
		{"syntax error", mysqlArgs(s, "-q", "SELEC 1")},
		{"wrong password", []string{"-H", s.Host, "-P", port, "-u", mariadb.User, "-p", "wrong", "-q", "SELECT 1"}},
		{"unknown user", []string{"-H", s.Host, "-P", port, "-u", "nobody", "-p", "x", "-q", "SELECT 1"}},
		{"database not granted", []string{"-H", s.Host, "-P", port, "-u", mariadb.User, "-p", mariadb.Password, "-d", "mysql", "-q", "SELECT 1"}},
		{"socket", []string{"-s", s.Socket, "-u", mariadb.User, "-p", mariadb.Password, "-q", "SELECT 3"}},
		{"option file and group", []string{"-H", s.Host, "-P", port, "-f", optFile, "-g", "monitoring", "-q", "SELECT 4"}},
		{"option file", []string{"-H", s.Host, "-P", port, "-f", optFile, "-q", "SELECT 4"}},
		{"long options", []string{"--hostname=" + s.Host, "--port=" + port, "--username=" + mariadb.User,
			"--password=" + mariadb.Password, "--query=SELECT 7", "--warning=5", "--critical=10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			theirs := runTheirs(t, "check_mysql_query", tc.args...)
			ours := runOurs(t, context.Background(), "check_mysql_query", tc.args...)
			t.Logf("ours:   %stheirs: %s", ours.Raw, theirs.Raw)
			assertTwins(t, ours, theirs, tolerance{})
			assertNoPassword(t, ours.Raw)
		})
	}
}

// A server that is down gives CRITICAL in both, in the same words up to the
// reason: the C library reports EINPROGRESS (115) where the refusal is 111.
func TestMySQLQueryServerDown(t *testing.T) {
	mysqlServer(t)
	args := []string{"-H", "127.0.0.1", "-P", closedPort(t), "-u", mariadb.User, "-p", mariadb.Password, "-q", "SELECT 1"}
	theirs := runTheirs(t, "check_mysql_query", args...)
	ours := runOurs(t, context.Background(), "check_mysql_query", args...)
	const prefix = "QUERY CRITICAL: Can't connect to server on '127.0.0.1' ("
	if ours.Code != 2 || theirs.Code != 2 || !strings.HasPrefix(ours.Raw, prefix) || !strings.HasPrefix(theirs.Raw, prefix) {
		t.Errorf("ours %d %q, theirs %d %q; want 2 and %q", ours.Code, ours.Raw, theirs.Code, theirs.Raw, prefix)
	}
	if want := prefix + `111 "Connection refused")` + "\n"; ours.Raw != want {
		t.Errorf("ours %q, want %q", ours.Raw, want)
	}
	assertNoPassword(t, ours.Raw)
}

// Our own answers where the twin has none or differs on purpose.
func TestMySQLQueryOurs(t *testing.T) {
	s := mysqlServer(t)
	missing := filepath.Join(t.TempDir(), "nosuch.sock")
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"update is refused", mysqlArgs(s, "-q", "UPDATE t SET n = n + 1"), nagios.Critical,
			"QUERY CRITICAL: Error with query - Cannot execute statement in a READ ONLY transaction\n"},
		{"insert is refused", mysqlArgs(s, "-q", "INSERT INTO t VALUES (9, 9, 'x')"), nagios.Critical,
			"QUERY CRITICAL: Error with query - Cannot execute statement in a READ ONLY transaction\n"},
		{"ddl is refused", mysqlArgs(s, "-q", "DROP TABLE t"), nagios.Critical,
			"QUERY CRITICAL: Error with query - Cannot execute statement in a READ ONLY transaction\n"},
		{"two statements are refused", mysqlArgs(s, "-q", "SELECT 1; DELETE FROM t"), nagios.Critical,
			"QUERY CRITICAL: Error with query - You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'DELETE FROM t' at line 1\n"},
		{"no result set", mysqlArgs(s, "-q", "DO 1"), nagios.Critical,
			"QUERY CRITICAL: Error with store_result - the statement returned no result set\n"},
		{"nan is no number", mysqlArgs(s, "-q", "SELECT 'nan'"), nagios.Critical,
			"QUERY CRITICAL: Is not a numeric - 'nan'\n"},
		{"timeout", mysqlArgs(s, "-q", "SELECT SLEEP(5)", "-t", "0.5"), nagios.Critical,
			"QUERY CRITICAL: timed out after 500ms running the query\n"},
		{"timeout state", mysqlArgs(s, "-q", "SELECT SLEEP(5)", "-t", "0.5:UNKNOWN"), nagios.Unknown,
			"QUERY UNKNOWN: timed out after 500ms running the query\n"},
		{"missing socket", []string{"-s", missing, "-u", mariadb.User, "-p", mariadb.Password, "-q", "SELECT 1"}, nagios.Critical,
			"QUERY CRITICAL: Can't connect to local server through socket '" + missing + "' (2 \"No such file or directory\")\n"},
		{"socket as -H", []string{"-H", s.Socket, "-u", mariadb.User, "-p", mariadb.Password, "-q", "SELECT 3"}, nagios.OK,
			"QUERY OK: 'SELECT 3' returned 3.000000|result=3.000000\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runOurs(t, context.Background(), "check_mysql_query", tt.args...)
			if got.Result.State != tt.state || got.Raw != tt.want {
				t.Errorf("got %s %q\nwant %s %q", got.Result.State, got.Raw, tt.state, tt.want)
			}
			assertNoPassword(t, got.Raw)
		})
	}
	var sum int
	if err := s.Root().QueryRow("SELECT SUM(n) FROM " + mariadb.Database + ".t").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 10 {
		t.Errorf("SUM(n) = %d after the refused writes, want 10: a write went through", sum)
	}
}

func TestMySQLQueryBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-u", "x", "-p", mariadb.Password}, "-q/--query"},
		{[]string{"-q", "SELECT 1", "-w", "abc", "-p", mariadb.Password}, `invalid range "abc" for -w`},
		{[]string{"-q", "SELECT 1", "-c", "5:1"}, `invalid range "5:1" for -c`},
		{[]string{"-q", "SELECT 1", "-P", "abc", "-p", mariadb.Password}, `-P/--port "abc"`},
		{[]string{"-q", "SELECT 1", "-P", "70000"}, `-P/--port "70000"`},
		{[]string{"-q", "SELECT 1", "-H", "a b"}, `-H/--hostname "a b"`},
		{[]string{"-q", "SELECT 1", "-f", "/nonexistent/my.cnf", "-p", mariadb.Password}, "-f/--file"},
		{[]string{"-q", "SELECT 1", "-t", "0"}, "timeout"},
		{[]string{"-q", "SELECT 1", "extra"}, `unexpected argument "extra"`},
		{[]string{"-q", "SELECT 1", "--bogus"}, "bogus"},
	} {
		var out strings.Builder
		code := Main(context.Background(), "check_mysql_query", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_mysql_query: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: exit %d\n%s\nwant exit 3 and a message naming %q", tt.args, code, out.String(), tt.want)
		}
		assertNoPassword(t, out.String())
	}
}

func TestReadOptionFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("conf.d/a.cnf", "[client]\nport=3307\n[mysqld]\nport=1\n")
	write("conf.d/b.txt", "[client]\nport=9\n")
	inc := write("inc.cnf", "[mon]\nuser = 'inc user'\n")
	main := write("my.cnf", "# comment\n; comment\n[client]\nuser=a\npassword = \"p#w\"\nhost = db1 # kept\n"+
		"socket-path=/x\n!includedir "+filepath.Join(dir, "conf.d")+"\n!include "+inc+"\n[Mon]\npassword=b\n[other]\nuser=z\n")
	tests := []struct {
		groups []string
		want   map[string]string
	}{
		{[]string{"client"}, map[string]string{"user": "a", "password": "p#w", "host": "db1 # kept", "socket_path": "/x", "port": "3307"}},
		{[]string{"client", "mon"}, map[string]string{"user": "inc user", "password": "b", "host": "db1 # kept", "socket_path": "/x", "port": "3307"}},
	}
	for _, tt := range tests {
		got := map[string]string{}
		if err := readOptionFile(main, tt.groups, got, 0); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Errorf("%v: got %v, want %v", tt.groups, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%v: %s = %q, want %q", tt.groups, k, got[k], v)
			}
		}
	}
	loop := write("loop.cnf", "!include "+filepath.Join(dir, "loop.cnf")+"\n")
	if err := readOptionFile(loop, []string{"client"}, map[string]string{}, 0); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("include loop: %v, want an error about nesting", err)
	}
	bad := write("bad.cnf", "[client\n")
	if err := readOptionFile(bad, []string{"client"}, map[string]string{}, 0); err == nil || !strings.Contains(err.Error(), "bad.cnf:1") {
		t.Errorf("bad header: %v, want an error with file and line", err)
	}
}
