package rollback

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/immune-ops/immune/conf"
)

// CommandReverter runs the configured revert and push commands in the
// repository, {revision} replaced, and returns what they printed.
func CommandReverter(r conf.Revert) Reverter {
	return func(ctx context.Context, revision string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, r.Timeout.D())
		defer cancel()
		var out bytes.Buffer
		for _, argv := range [][]string{r.Command, r.Push} {
			if len(argv) == 0 {
				continue
			}
			args := make([]string, len(argv))
			for i, a := range argv {
				args[i] = strings.ReplaceAll(a, "{revision}", revision)
			}
			fmt.Fprintf(&out, "$ %s\n", strings.Join(args, " "))
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Dir = r.Repo
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return out.String(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
			}
		}
		return out.String(), nil
	}
}
