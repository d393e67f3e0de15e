package checks

import (
	"context"
	"os"
	"path/filepath"

	"github.com/shirou/gopsutil/v4/common"
)

// WithProcRoot makes the checks run under ctx read /proc from root instead:
// the one seam through which tests point the system checks at fixture trees. Outside tests, gopsutil's HOST_PROC
// environment variable does the same.
func WithProcRoot(ctx context.Context, root string) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: root})
}

// procPath is where an entry of /proc is for checks run under ctx: below the
// root WithProcRoot set, else gopsutil's HOST_PROC, else /proc, so a check
// reading a file itself reads the same tree as gopsutil does.
func procPath(ctx context.Context, elem ...string) string {
	root := ""
	if env, ok := ctx.Value(common.EnvKey).(common.EnvMap); ok {
		root = env[common.HostProcEnvKey]
	}
	if root == "" {
		root = os.Getenv(string(common.HostProcEnvKey))
	}
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}
