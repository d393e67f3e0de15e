package cmdflags

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestCoordinatorURL(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{in: "127.0.0.1:5680", want: "http://127.0.0.1:5680"},
		{in: "coord.example.com:5680", want: "http://coord.example.com:5680"},
		{in: "[::1]:5680", want: "http://[::1]:5680"},
		{in: "127.0.0.1:5680/", want: "http://127.0.0.1:5680"},
		{in: "proxy:8080/immune", want: "http://proxy:8080/immune"},
		{in: "proxy/immune", err: `"proxy/immune": want host:port`},
		{in: "http://127.0.0.1:5680/", want: "http://127.0.0.1:5680"},
		{in: "https://coord.example.com", want: "https://coord.example.com"},
		{in: "https://proxy.example.com/immune/", want: "https://proxy.example.com/immune"},
		{in: " http://h:1 ", want: "http://h:1"},
		{in: "", err: "empty: want host:port"},
		{in: "coord.example.com", err: `"coord.example.com": want host:port`},
		{in: ":5680", err: `":5680": want host:port`},
		{in: "h:http", err: `port "http" is not a number`},
		{in: "h:70000", err: `port "70000" is not a number`},
		{in: "ftp://h:21", err: `scheme "ftp"`},
		{in: "http://", err: "no host"},
		{in: "http://h:99999", err: `port "99999"`},
		{in: "http://u:p@h:1", err: "a user, query or fragment"},
		{in: "http://h:1/?x=1", err: "a user, query or fragment"},
		{in: "http://h :1", err: "want host:port"},
	} {
		got, err := CoordinatorURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CoordinatorURL(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CoordinatorURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestClientFlags: the flag wins over the environment; a read ignores
// $IMMUNE_TOKEN_FILE; garbage is an error naming where it came from.
func TestClientFlags(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte(" \n"), 0o600)
	for _, tt := range []struct {
		name          string
		write         bool
		env           map[string]string
		args          []string
		url, token    string
		parseErr, err string
	}{
		{name: "defaults", url: DefaultCoordinator},
		{name: "env", env: map[string]string{"IMMUNE_COORDINATOR": "c:1"}, url: "http://c:1"},
		{name: "flag over env", env: map[string]string{"IMMUNE_COORDINATOR": "c:1"}, args: []string{"--coordinator", "https://d"}, url: "https://d"},
		{name: "bad flag", args: []string{"--coordinator", "nowhere"}, parseErr: `invalid value "nowhere" for flag -coordinator: "nowhere": want host:port, http://host:port or https://host:port`},
		{name: "bad env", env: map[string]string{"IMMUNE_COORDINATOR": "ftp://x"}, err: `$IMMUNE_COORDINATOR: "ftp://x": scheme "ftp"`},
		{name: "write reads env token", write: true, env: map[string]string{"IMMUNE_TOKEN_FILE": token}, url: DefaultCoordinator, token: "s3cret"},
		{name: "read ignores env token", env: map[string]string{"IMMUNE_TOKEN_FILE": "/nonexistent/token"}, url: DefaultCoordinator},
		{name: "read sends a given token", args: []string{"--token-file", token}, url: DefaultCoordinator, token: "s3cret"},
		{name: "missing token file", write: true, args: []string{"--token-file", "/nonexistent/token"}, url: DefaultCoordinator, err: "read token: open /nonexistent/token"},
		{name: "empty token file", write: true, args: []string{"--token-file", empty}, url: DefaultCoordinator, err: "read token: " + empty + " is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("IMMUNE_COORDINATOR", tt.env["IMMUNE_COORDINATOR"])
			t.Setenv("IMMUNE_TOKEN_FILE", tt.env["IMMUNE_TOKEN_FILE"])
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c := ClientFlags(fs, tt.write)
			if err := fs.Parse(tt.args); err != nil || tt.parseErr != "" {
				if err == nil || err.Error() != tt.parseErr {
					t.Fatalf("parse: %v, want %q", err, tt.parseErr)
				}
				return
			}
			url, err := c.URL()
			tok, terr := "", error(nil)
			if err == nil {
				tok, terr = c.Token()
				err = terr
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil || url != tt.url || tok != tt.token {
				t.Errorf("URL %q, token %q, %v; want %q, %q", url, tok, err, tt.url, tt.token)
			}
		})
	}
}

func TestWho(t *testing.T) {
	git, gitErr := exec.LookPath("git")
	dir := t.TempDir()
	withName := filepath.Join(dir, "name")
	os.WriteFile(withName, []byte("[user]\n\tname = Ann Operator\n\temail = ann@example.com\n"), 0o600)
	withEmail := filepath.Join(dir, "email")
	os.WriteFile(withEmail, []byte("[user]\n\temail = ann@example.com\n"), 0o600)
	none := filepath.Join(dir, "none")
	os.WriteFile(none, nil, 0o600)
	login := "unknown"
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	// Run outside any repository, so that only the given config counts.
	t.Chdir(dir)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CEILING_DIRECTORIES", dir)
	for _, tt := range []struct {
		name, sudo, gitconfig, want string
		needGit                     bool
	}{
		{name: "sudo", sudo: "ann", gitconfig: withName, want: "ann"},
		{name: "sudo as root", sudo: "root", gitconfig: withName, want: "Ann Operator", needGit: true},
		{name: "git name", gitconfig: withName, want: "Ann Operator", needGit: true},
		{name: "git email", gitconfig: withEmail, want: "ann@example.com", needGit: true},
		{name: "login", gitconfig: none, want: login},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needGit && gitErr != nil {
				t.Skipf("git is not installed (%v): apt-get install git", gitErr)
			}
			t.Setenv("SUDO_USER", tt.sudo)
			t.Setenv("GIT_CONFIG_GLOBAL", tt.gitconfig)
			if got := Who(context.Background()); got != tt.want {
				t.Errorf("Who() = %q, want %q (git %s)", got, tt.want, git)
			}
		})
	}
}

func TestChoice(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := NagiosConfigFlags(fs)
	if *f.Format != NagiosFormat {
		t.Errorf("default format %q", *f.Format)
	}
	if err := fs.Parse([]string{"--format", "icinga2"}); err != nil || *f.Format != Icinga2Format {
		t.Errorf("--format icinga2: %v, %q", err, *f.Format)
	}
	err := fs.Parse([]string{"--format", "xml"})
	if err == nil || err.Error() != `invalid value "xml" for flag -format: want nagios or icinga2` {
		t.Errorf("--format xml: %v", err)
	}
}
