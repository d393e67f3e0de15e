// Package sibling finds immune's other binaries: beside the running one,
// where make build puts them all (bin/), or else on PATH.
package sibling

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Path is where the binary name is: in the running binary's own directory
// first, so that bin/immune runs bin/immune-agent and not another
// version's, then on PATH.
func Path(name string) (string, error) {
	self, err := os.Executable()
	if err == nil {
		path := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			return path, nil
		}
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	me := "immune"
	if self != "" {
		me = filepath.Base(self)
	}
	return "", fmt.Errorf("%s is not beside %s nor on PATH (make build puts it in bin/)", name, me)
}
