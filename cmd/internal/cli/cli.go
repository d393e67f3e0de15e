// Package cli is what every immune command does with its flags: --help
// prints the usage and exits 0, --version prints the build, a bad flag
// exits 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/immune-ops/immune/version"
)

// Parse parses args into fs with a --version flag added. done says the
// command should exit with code at once: after --help (0), --version (0)
// or a flag error (2, the message already printed).
func Parse(fs *flag.FlagSet, args []string, program string, stdout io.Writer) (code int, done bool) {
	showVersion := VersionFlag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String(program))
		return 0, true
	}
	return 0, false
}

// VersionFlag defines the --version flag Parse adds; the man pages list it
// from here.
func VersionFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the version, commit and build date, and exit")
}
