package agentapi

import (
	"fmt"
	"regexp"
	"strings"
)

var revisionRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidRevision says why name cannot be a revision, or nil when it can. A
// revision names a directory on every host (releases/<revision>), so it is
// not "." or "..", and it is handed to git as an argument, so it does not
// start with '-'.
func ValidRevision(name string) error {
	if !revisionRE.MatchString(name) || name == "." || name == ".." || strings.HasPrefix(name, "-") {
		return fmt.Errorf(`revision %q: use 1 to 64 letters, digits, '.', '_' and '-', not "." or "..", and no '-' first`, name)
	}
	return nil
}
