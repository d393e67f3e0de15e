package cmdflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// DefaultCoordinator is the coordinator a client calls when neither
// --coordinator nor $IMMUNE_COORDINATOR names another.
const DefaultCoordinator = "http://127.0.0.1:5680"

// DefaultPushesLimit is how many pushes immune pushes lists without --limit.
const DefaultPushesLimit = 20

// Client are the flags every client of the coordinator's API shares.
type Client struct {
	fs          *flag.FlagSet
	coordinator string
	tokenFile   *string
	write       bool
}

// ClientFlags defines --coordinator and --token-file on fs. A command
// that changes something (write) reads its token from --token-file or
// $IMMUNE_TOKEN_FILE. One that only reads sends a token only when
// --token-file is given: the coordinator lets anyone read, and
// $IMMUNE_TOKEN_FILE often names a file only root may read.
func ClientFlags(fs *flag.FlagSet, write bool) *Client {
	c := &Client{fs: fs, coordinator: DefaultCoordinator, write: write}
	fs.Var(coordinatorValue{&c.coordinator}, "coordinator", "the coordinator: `host:port`, http://host:port or https://host:port ($IMMUNE_COORDINATOR)")
	if write {
		c.tokenFile = fs.String("token-file", "", "`file` holding the operator token ($IMMUNE_TOKEN_FILE)")
	} else {
		c.tokenFile = fs.String("token-file", "", "`file` holding a token to send; reading needs none, and $IMMUNE_TOKEN_FILE is not read")
	}
	return c
}

// URL is the coordinator's base URL: --coordinator when given, else
// $IMMUNE_COORDINATOR, else DefaultCoordinator.
func (c *Client) URL() (string, error) {
	if c.given("coordinator") {
		return c.coordinator, nil
	}
	if env := os.Getenv("IMMUNE_COORDINATOR"); env != "" {
		u, err := CoordinatorURL(env)
		if err != nil {
			return "", fmt.Errorf("$IMMUNE_COORDINATOR: %w", err)
		}
		return u, nil
	}
	return c.coordinator, nil
}

// TokenFile is the file the token is read from, "" for none: --token-file
// when given, else, for a command that writes, $IMMUNE_TOKEN_FILE.
func (c *Client) TokenFile() string {
	if c.given("token-file") || !c.write {
		return *c.tokenFile
	}
	return os.Getenv("IMMUNE_TOKEN_FILE")
}

// Token reads the token from TokenFile; "" when there is none to read.
func (c *Client) Token() (string, error) {
	name := c.TokenFile()
	if name == "" {
		return "", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("read token: %s is empty", name)
	}
	return token, nil
}

// Writes tells whether the command changes something, and so needs the
// operator token.
func (c *Client) Writes() bool { return c.write }

// given tells whether the flag name was set on the command line.
func (c *Client) given(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

type coordinatorValue struct{ url *string }

func (v coordinatorValue) String() string {
	if v.url == nil {
		return ""
	}
	return *v.url
}

func (v coordinatorValue) Set(s string) error {
	u, err := CoordinatorURL(s)
	if err != nil {
		return err
	}
	*v.url = u
	return nil
}

// CoordinatorURL makes the coordinator's base URL of what a person
// typed: host:port (taken as http), http://host[:port] or
// https://host[:port], with a path prefix when a proxy puts the API under
// one. The URL has no trailing slash.
func CoordinatorURL(s string) (string, error) {
	const want = "want host:port, http://host:port or https://host:port"
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty: " + want)
	}
	if !strings.Contains(s, "://") {
		hostPort, _, _ := strings.Cut(s, "/")
		host, port, err := net.SplitHostPort(hostPort)
		if err != nil || host == "" {
			return "", fmt.Errorf("%q: %s", s, want)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
		}
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q: %s", s, want)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: scheme %q: %s", s, u.Scheme, want)
	case u.Hostname() == "":
		return "", fmt.Errorf("%q: no host: %s", s, want)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q: a user, query or fragment has no place in it: %s", s, want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// whoUsage is the usage of every --who flag: its default is worked out
// when the command runs, so that help and the man pages stay the same
// for everyone.
const whoUsage = "`name` of who %s (default: $SUDO_USER, else git's user.name or user.email, else the login name)"

// Who is who runs the command when --who was not given: $SUDO_USER (the
// person behind sudo), else git's user.name, else its user.email, else
// the login name.
func Who(ctx context.Context) string {
	if u := os.Getenv("SUDO_USER"); u != "" && u != "root" {
		return u
	}
	for _, key := range []string{"user.name", "user.email"} {
		if v := gitConfig(ctx, key); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// gitConfig is git's setting key, or "" when git or the setting is missing.
func gitConfig(ctx context.Context, key string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "config", "--get", key).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Push are the flags of immune push.
type Push struct {
	*Client
	Revision, Artifact, Who, Force *string
	Wait                           *bool
}

// PushFlags defines immune push's flags on fs.
func PushFlags(fs *flag.FlagSet) *Push {
	return &Push{
		Client:   ClientFlags(fs, true),
		Revision: fs.String("revision", "", "the `revision` to push (required)"),
		Artifact: fs.String("artifact", "", "the release tarball `file` (.tar.gz, required)"),
		Who:      fs.String("who", "", fmt.Sprintf(whoUsage, "pushes")),
		Wait:     fs.Bool("wait", false, "follow the push; exit 0 when live everywhere, 1 when rolled back or failed"),
		Force:    fs.String("force", "", "push a revision that does not descend from the live one; say `why`"),
	}
}

// OrderFlagValues are the flags of immune push abort|hold|resume|promote|forget-host.
type OrderFlagValues struct {
	*Client
	Reason, Who *string
}

// OrderFlags defines the flags of an order to a push on fs.
func OrderFlags(fs *flag.FlagSet) *OrderFlagValues {
	return &OrderFlagValues{
		Client: ClientFlags(fs, true),
		Reason: fs.String("reason", "", "`why` (required for abort, promote and forget-host)"),
		Who:    fs.String("who", "", fmt.Sprintf(whoUsage, "gives the order")),
	}
}

// Pushes are the flags of immune pushes.
type Pushes struct {
	*Client
	JSON  *bool
	Limit *int
}

// PushesFlags defines immune pushes' flags on fs.
func PushesFlags(fs *flag.FlagSet) *Pushes {
	return &Pushes{
		Client: ClientFlags(fs, false),
		JSON:   fs.Bool("json", false, "print the pushes as a JSON array, as the coordinator's API answers them"),
		Limit:  fs.Int("limit", DefaultPushesLimit, "list the `n` most recent pushes (0: all)"),
	}
}

// ReadFlags defines the flags of a command that only reads the
// coordinator (immune locks, immune status) on fs.
func ReadFlags(fs *flag.FlagSet) *Client {
	return ClientFlags(fs, false)
}

// Unlock are the flags of immune unlock.
type Unlock struct {
	*Client
	Reason, Who *string
}

// UnlockFlags defines immune unlock's flags on fs.
func UnlockFlags(fs *flag.FlagSet) *Unlock {
	return &Unlock{
		Client: ClientFlags(fs, true),
		Reason: fs.String("reason", "", "`why` pushes may go on: what was fixed (required)"),
		Who:    fs.String("who", "", fmt.Sprintf(whoUsage, "clears the lock")),
	}
}

// OrderKind is one order an operator gives a running push:
// immune push NAME ID [HOST].
type OrderKind struct {
	Name, Summary string
	// Args are the order's operands: "ID", or "ID HOST".
	Args string
}

// Orders are the orders a push takes, as package rollback names them
// (cmd/immune-coordinator's test says they agree).
var Orders = []OrderKind{
	{"abort", "roll the push back now", "ID"},
	{"hold", "stop advancing the push; verdicts still roll it back", "ID"},
	{"resume", "let a held push advance again", "ID"},
	{"promote", "skip the rest of this phase's observation and take the next phase now", "ID"},
	{"forget-host", "stop retrying a host that will not come back", "ID HOST"},
}

// Order is the order kind named name, if there is one.
func Order(name string) (OrderKind, bool) {
	for _, o := range Orders {
		if o.Name == name {
			return o, true
		}
	}
	return OrderKind{}, false
}
