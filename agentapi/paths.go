package agentapi

// The agent's routes; see the package documentation for what each takes
// and answers.
const (
	HealthPath   = "/healthz"
	ChecksPath   = "/api/v1/checks"
	SnapshotPath = "/api/v1/snapshot"
	MetricsPath  = "/metrics"
	PassivePath  = "/api/v1/passive"
	ReleasePath  = "/api/v1/release"
	DeployPath   = "/api/v1/deploy"
	RollbackPath = "/api/v1/rollback"
)

// CheckPath is the route of one check.
func CheckPath(name string) string { return ChecksPath + "/" + name }
