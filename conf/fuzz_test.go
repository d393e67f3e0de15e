package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addFiles seeds f with the documented example and every file of the
// golden tests.
func addFiles(f *testing.F, globs ...string) {
	for _, glob := range globs {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seed files %s: %v", glob, err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// checkLoadError: a config is either loaded or refused with errors that
// each name the file, say what is wrong, and point at a line of it.
func checkLoadError(t *testing.T, data []byte, loaded bool, err error) {
	t.Helper()
	if loaded == (err != nil) {
		t.Fatalf("loaded %v with error %v", loaded, err)
	}
	if err == nil {
		return
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %T %q is not a list of FieldErrors", err, err)
	}
	lines := yamlLines(data)
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %T %q has no position", e, e)
		}
		if fe.File != "fuzz.yaml" || fe.Msg == "" || fe.Line < 0 || fe.Line > lines {
			t.Fatalf("error %+v: want the file, a message and a line of its %d", fe, lines)
		}
	}
}

// yamlLines counts lines as yaml.v3 does: a CR, an LF, a CR LF, a NEL, or
// a Unicode line or paragraph separator ends one.
func yamlLines(data []byte) int {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	n := 1
	for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += bytes.Count(data, []byte(br))
	}
	return n
}

func FuzzParseAgent(f *testing.F) {
	addFiles(f, "agent.yaml", "testdata/bad/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := builtins.Parse("fuzz.yaml", data)
		checkLoadError(t, data, a != nil, err)
	})
}

func FuzzParseFleet(f *testing.F) {
	addFiles(f, "fleet.yaml", "testdata/fleet/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := ParseFleet("fuzz.yaml", data)
		checkLoadError(t, data, fl != nil, err)
	})
}
