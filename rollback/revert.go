package rollback

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback/gitrepo"
)

// NewReverter is the revert the config asks for: every commit the push
// brought, through the working copy, or the configured command.
func NewReverter(r conf.Revert, repo *gitrepo.Repo) Reverter {
	if len(r.Command) > 0 || repo == nil {
		return CommandReverter(r)
	}
	return func(ctx context.Context, p *Push) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, r.Timeout.D())
		defer cancel()
		commits := p.Reverted()
		if len(commits) == 0 {
			commits = []gitrepo.Commit{{SHA: p.Revision, Subject: p.Revision}}
		}
		o := gitrepo.RevertOptions{EachCommit: r.EachCommit, Reason: p.Reason, Push: r.Push}
		out, err := repo.RevertRange(ctx, commits, o)
		if err != nil && len(commits) < len(p.Range) {
			// The culprit alone does not revert cleanly over the commits
			// after it: when in doubt, the whole range goes.
			more, err := repo.RevertRange(ctx, p.Range, o)
			return out + "\nThe culprit alone did not revert cleanly; reverting every commit the push brought:\n" + more, err
		}
		return out, err
	}
}

// CommandReverter runs the configured revert and push commands in the
// repository, {revision} replaced, and returns what they printed.
func CommandReverter(r conf.Revert) Reverter {
	return func(ctx context.Context, p *Push) (string, error) {
		revision := p.Revision
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
