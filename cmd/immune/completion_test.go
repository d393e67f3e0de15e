package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// script writes immune's completion script for shell to a file.
func script(t *testing.T, shell string) string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := runCompletion(context.Background(), []string{shell}, &out, &errs); code != 0 {
		t.Fatalf("immune completion %s: exit %d: %s", shell, code, errs.String())
	}
	path := filepath.Join(t.TempDir(), "_immune")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBashCompletion sources the script in a real bash and calls its
// function as bash does on TAB, with COMP_WORDS set.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	path := script(t, "bash")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fleet.yaml"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "objects"), 0o755)
	for _, tt := range []struct {
		words []string
		want  string
	}{
		{[]string{"immune", "pu"}, "push pushes"},
		{[]string{"immune", "st"}, "status"},
		{[]string{"immune", "push", ""}, "abort hold resume promote forget-host"},
		{[]string{"immune", "push", "--ar"}, "--artifact"},
		{[]string{"immune", "push", "abort", "p1", "--re"}, "--reason"},
		{[]string{"immune", "pushes", "--"}, "--coordinator --json --limit --token-file --version"},
		{[]string{"immune", "push", "--revision", ""}, ""},
		{[]string{"immune", "nagios-config", "--format", ""}, "nagios icinga2"},
		{[]string{"immune", "nagios-config", "--format", "=", "ic"}, "icinga2"},
		{[]string{"immune", "nagios-config", "--fleet", dir + "/f"}, dir + "/fleet.yaml"},
		{[]string{"immune", "nagios-config", "--out", dir + "/"}, dir + "/objects"},
		{[]string{"immune", "check", "check_lo"}, "check_load check_log_growth check_log_size"},
		{[]string{"immune", "check", "--l"}, "--list"},
		{[]string{"immune", "completion", ""}, "bash zsh"},
		{[]string{"immune", "agent", "--c"}, "--check-config --config"},
	} {
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _immune; echo "${COMPREPLY[*]}"`, "bash", path)
		cmd.Args = append(cmd.Args, tt.words...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", tt.words, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%s<TAB>: %q, want %q", strings.Join(tt.words, " "), got, tt.want)
		}
	}
}

// ansi matches the terminal's escapes and the line editor's control characters.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0d]`)

// TestZshCompletion types into a real interactive zsh (through zpty) and
// presses TAB: completion goes through compinit and _arguments as it
// does for a person.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed (apt-get install zsh): the zsh completion is untested")
	}
	path := script(t, "zsh")
	if out, err := exec.Command(zsh, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v: %s", err, out)
	}
	// One interactive zsh takes each line in turn: compinit is the slow part.
	driver := `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1="> "; autoload -U compinit; compinit -u -D; source ` + path + `; zstyle ":completion:*" list-prompt ""; print -r R${(U):-eady}'
zpty -r z line '*READY*'
for typed in "$@"; do
  zpty -w -n z "${typed%$'\t'*}"$'\t'
  [[ $typed == *$'\t' ]] && { sleep 0.2; zpty -w -n z $'\t' }
  # Read until the screen has been still for 0.3 s (5 s at most).
  local all= chunk quiet=0
  for i in {1..100}; do
    if zpty -r -t z chunk; then all+=$chunk; quiet=0; continue; fi
    (( ++quiet >= 6 )) && [[ -n $all ]] && break
    sleep 0.05
  done
  print -r -- "=== $typed"$'\n'"$all"
  zpty -w -n z $'\x03'
  zpty -r z line '*> '
done
zpty -d z
`
	tests := []struct {
		line string
		want []string
	}{
		// A tab at the end: press TAB twice, for the list.
		{"immune pu\t", []string{"push    -- push a revision", "pushes  -- list pushes, newest first"}},
		{"immune push a", []string{"immune push abort "}},
		{"immune push abort p1 --re", []string{"immune push abort p1 --reason="}},
		{"immune pushes --li", []string{"immune pushes --limit="}},
		{"immune nagios-config --format=ic", []string{"--format=icinga2 "}},
		{"immune check check_lo\t", []string{"check_load", "check_log_growth"}},
	}
	args := []string{"-f", "-c", driver, "zsh"}
	for _, tt := range tests {
		args = append(args, tt.line)
	}
	out, err := exec.Command(zsh, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	screens := strings.Split(ansi.ReplaceAllString(string(out), ""), "=== ")[1:]
	if len(screens) != len(tests) {
		t.Fatalf("%d screens for %d lines:\n%s", len(screens), len(tests), out)
	}
	for i, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(screens[i], w) {
				t.Errorf("%q<TAB>: the screen lacks %q:\n%s", tt.line, w, screens[i])
			}
		}
	}
}
