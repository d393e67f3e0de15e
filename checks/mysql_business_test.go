package checks

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/immune-ops/immune/fixtures/mariadb"
	"github.com/immune-ops/immune/nagios"
)

// The presets against rows seeded relative to NOW() (see mysqlServer):
// orders 1, 5, 9 minutes and 2, 3 hours old; users 5 minutes and 2 days
// old; jobs pending 120 s and 30 s, one processed a day ago.
func TestMySQLBusinessPresets(t *testing.T) {
	s := mysqlServer(t)
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string // a regular expression for the whole output
	}{
		{"orders", []string{"--preset", "orders", "--table", "orders", "--minutes", "15"}, nagios.OK,
			"^ORDERS OK - 3 orders in `orders` in the last 15 minutes\\|orders=3;;;0\n$"},
		{"orders in a longer window", []string{"--preset", "orders", "--table", "orders", "--minutes", "240"}, nagios.OK,
			"^ORDERS OK - 5 orders in `orders` in the last 240 minutes\\|orders=5;;;0\n$"},
		{"too few orders", []string{"--preset", "orders", "--table", "orders", "--minutes", "15", "-w", "5:", "-c", "1:"}, nagios.Warning,
			"^ORDERS WARNING - 3 orders in `orders` in the last 15 minutes\\|orders=3;5:;1:;0\n$"},
		{"no orders", []string{"--preset", "orders", "--table", mariadb.Database + ".orders", "--minutes", "15", "--where", "id > 100", "-c", "1:"}, nagios.Critical,
			"^ORDERS CRITICAL - 0 orders in `" + mariadb.Database + "`.`orders` in the last 15 minutes\\|orders=0;;1:;0\n$"},
		{"registrations", []string{"--preset", "registrations", "--table", "users", "--time-column", "signed_up"}, nagios.OK,
			"^REGISTRATIONS OK - 1 registrations in `users` in the last 60 minutes\\|registrations=1;;;0\n$"},
		{"queue age", []string{"--preset", "queue-age", "--table", "jobs", "--time-column", "queued_at", "--where", "processed = 0", "-w", "60", "-c", "300"}, nagios.Warning,
			"^QUEUE WARNING - oldest pending row in `jobs` is 1[12][0-9] s old\\|queue_age=1[12][0-9]s;60;300;0\n$"},
		{"queue age critical", []string{"--preset", "queue-age", "--table", "jobs", "--time-column", "queued_at", "--where", "processed = 0", "-c", "100"}, nagios.Critical,
			"^QUEUE CRITICAL - oldest pending row in `jobs` is 1[12][0-9] s old\\|queue_age=1[12][0-9]s;;100;0\n$"},
		{"empty queue", []string{"--preset", "queue-age", "--table", "jobs", "--time-column", "queued_at", "--where", "processed = 2", "-w", "60"}, nagios.OK,
			"^QUEUE OK - no pending rows in `jobs`\\|queue_age=0s;60;;0\n$"},
		{"missing table", []string{"--preset", "orders", "--table", "nosuch"}, nagios.Critical,
			"^ORDERS CRITICAL - Error with query - Table '" + mariadb.Database + ".nosuch' doesn't exist\n$"},
		{"missing column", []string{"--preset", "orders", "--table", "orders", "--time-column", "nosuch"}, nagios.Critical,
			"^ORDERS CRITICAL - Error with query - Unknown column 'nosuch' in '[^']+'\n$"},
		{"a where clause cannot write", []string{"--preset", "queue-age", "--table", "jobs", "--where", "id IN (SELECT id FROM jobs FOR UPDATE)"}, nagios.Critical,
			"^QUEUE CRITICAL - Error with query - Cannot execute statement in a READ ONLY transaction\n$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runOurs(t, context.Background(), "check_mysql_business", mysqlArgs(s, tt.args...)...)
			if got.Result.State != tt.state || !regexp.MustCompile(tt.want).MatchString(got.Raw) {
				t.Errorf("got %s %q\nwant %s matching %q", got.Result.State, got.Raw, tt.state, tt.want)
			}
			assertNoPassword(t, got.Raw)
		})
	}
}

func TestMySQLBusinessBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--table", "orders"}, `--preset ""`},
		{[]string{"--preset", "refunds", "--table", "orders"}, `--preset "refunds"`},
		{[]string{"--preset", "orders"}, `--table "": a name is required`},
		{[]string{"--preset", "orders", "--table", "orders; DROP TABLE orders"}, `--table "orders; DROP TABLE orders"`},
		{[]string{"--preset", "orders", "--table", "a.b.c"}, `--table "a.b.c": want TABLE or DATABASE.TABLE`},
		{[]string{"--preset", "orders", "--table", "or`ders"}, "--table \"or`ders\""},
		{[]string{"--preset", "orders", "--table", strings.Repeat("x", 65)}, "--table"},
		{[]string{"--preset", "orders", "--table", "orders", "--time-column", "a.b"}, `--time-column "a.b"`},
		{[]string{"--preset", "orders", "--table", "orders", "--minutes", "0"}, `--minutes 0`},
		{[]string{"--preset", "orders", "--table", "orders", "--minutes", "x"}, `minutes`},
		{[]string{"--preset", "orders", "--table", "orders", "--where", " "}, `--where: empty condition`},
		{[]string{"--preset", "orders", "--table", "orders", "--where", "1; DELETE FROM orders"}, `without ';'`},
		{[]string{"--preset", "orders", "--table", "orders", "-w", "x", "-p", mariadb.Password}, `invalid range "x" for -w`},
	} {
		var out strings.Builder
		code := Main(context.Background(), "check_mysql_business", tt.args, &out)
		if code != 3 || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: exit %d\n%s\nwant exit 3 and %q", tt.args, code, out.String(), tt.want)
		}
		assertNoPassword(t, out.String())
	}
}

func TestMySQLBusinessQueries(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "orders", "--table", "shop.orders", "--minutes", "15"},
			"SELECT COUNT(*) FROM `shop`.`orders` WHERE `created_at` >= NOW() - INTERVAL 15 MINUTE"},
		{[]string{"--preset", "registrations", "--table", "users", "--time-column", "signed_up", "--where", "verified = 1"},
			"SELECT COUNT(*) FROM `users` WHERE `signed_up` >= NOW() - INTERVAL 60 MINUTE AND (verified = 1)"},
		{[]string{"--preset", "queue-age", "--table", "jobs", "--where", "processed = 0"},
			"SELECT COALESCE(GREATEST(TIMESTAMPDIFF(SECOND, MIN(`created_at`), NOW()), 0), -1) FROM `jobs` WHERE (processed = 0)"},
		{[]string{"--preset", "queue-age", "--table", "jobs"},
			"SELECT COALESCE(GREATEST(TIMESTAMPDIFF(SECOND, MIN(`created_at`), NOW()), 0), -1) FROM `jobs`"},
	}
	for _, tt := range tests {
		c, err := newMySQLBusiness(append([]string{"-H", "127.0.0.1"}, tt.args...))
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if got := c.(*mysqlBusinessCheck).query; got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.args, got, tt.want)
		}
	}
}
