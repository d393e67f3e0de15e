package checks

import (
	"context"

	"github.com/shirou/gopsutil/v4/common"
)

// WithProcRoot makes the checks run under ctx read /proc from root instead:
// the one seam through which tests point the system checks at fixture trees. Outside tests, gopsutil's HOST_PROC
// environment variable does the same.
func WithProcRoot(ctx context.Context, root string) context.Context {
	return context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: root})
}
