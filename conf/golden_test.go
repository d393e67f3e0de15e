package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testGoldenErrors loads every config that glob matches and compares its
// errors with the .golden file beside it (-update rewrites them): each
// mistake is reported with file, line and field.
func testGoldenErrors(t *testing.T, glob string, load func(file string) error) {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no bad configs match %s", glob)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			err := load(file)
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Errorf("error %q does not start with the file's name", line)
				}
			}
		})
	}
}
