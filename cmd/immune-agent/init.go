package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/template"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/initdir"
)

// agentTemplate is the config `immune agent init` writes: a few system
// checks, NRPE and the API on loopback, and deploys when a root is given.
var agentTemplate = template.Must(template.New("agent.yaml").Parse(`# immune agent config, written by immune agent init. Every setting is
# documented in the example config (/usr/share/doc/immune-agent/agent.yaml
# or conf/agent.yaml in the source). Check it with
#   immune agent --check-config {{.Config}}
# and apply a change with systemctl reload immune-agent (or kill -HUP).
host_type: {{.HostType}}
data_dir: {{.DataDir}}

checks:
  - name: check_load
    builtin: check_load
    args: [-r, -w, "4,3,2", -c, "8,6,4"]
    interval: 30s
  - name: check_disk
    builtin: check_disk
    args: [-w, "10%", -c, "5%", -p, /]
    interval: 5m

nrpe:
  # Nagios's check_nrpe queries this; add its address to allowed_hosts.
  listen: {{.NRPE}}
  allowed_hosts: [127.0.0.1, "::1"]

http:
  # The coordinator reads the gauges here with this token (its
  # agent_token_file holds the same).
  listen: {{.HTTP}}
  token_file: {{.AgentToken}}
{{if .DeployRoot}}
# Releases the coordinator pushes, unpacked under root; only the holder
# of the deploy token (the coordinator) may deploy.
deploy:
  root: {{.DeployRoot}}
  token_file: {{.DeployToken}}
{{else}}
# Releases pushed by the coordinator: copy its deploy.token here, then
# uncomment (or run immune agent init again with --deploy-root and
# --tokens-from).
# deploy:
#   root: /srv/immune/app
#   token_file: {{.DeployToken}}
{{end}}`))

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune agent init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: immune agent init [flags] DIR\n\nwrites DIR/agent.yaml and DIR/agent.token (and DIR/deploy.token with --tokens-from)")
		fs.PrintDefaults()
	}
	hostType := fs.String("host-type", "www", "this host's `type` for push limits (www, chat, db, ...)")
	nrpe := fs.String("nrpe-listen", "127.0.0.1:5666", "NRPE `address`")
	httpAddr := fs.String("http-listen", "127.0.0.1:5667", "the API's `address`, which the coordinator reads")
	deployRoot := fs.String("deploy-root", "", "absolute `dir` releases are unpacked in; empty leaves deploys off")
	tokensFrom := fs.String("tokens-from", "", "the coordinator's config `dir` (its init's DIR): copy its agent.token and deploy.token")
	force := fs.Bool("force", false, "overwrite files that exist")
	if code, done := cli.Parse(fs, args, "immune-agent", stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *deployRoot != "" && !filepath.IsAbs(*deployRoot) {
		fmt.Fprintf(stderr, "immune agent init: --deploy-root %q: give an absolute path\n", *deployRoot)
		return 2
	}
	if *deployRoot != "" && *tokensFrom == "" {
		fmt.Fprintln(stderr, "immune agent init: --deploy-root needs --tokens-from: the deploy token is the coordinator's")
		return 2
	}
	d, err := initdir.Open(fs.Arg(0), *force)
	if err != nil {
		fmt.Fprintf(stderr, "immune agent init: %v\n", err)
		return 1
	}
	v := struct{ Config, HostType, DataDir, NRPE, HTTP, AgentToken, DeployToken, DeployRoot string }{
		Config: d.Join("agent.yaml"), HostType: *hostType, DataDir: initdir.DataDir(d.Path, "immune-agent"),
		NRPE: *nrpe, HTTP: *httpAddr, AgentToken: d.Abs("agent.token"), DeployToken: d.Abs("deploy.token"),
		DeployRoot: *deployRoot,
	}
	var cfg bytes.Buffer
	if err := agentTemplate.Execute(&cfg, v); err != nil {
		fmt.Fprintf(stderr, "immune agent init: %v\n", err)
		return 1
	}
	steps := []func() error{func() error { return d.WriteConfig("agent.yaml", cfg.Bytes()) }}
	if *tokensFrom != "" {
		steps = append(steps,
			func() error { return d.CopyToken("agent.token", filepath.Join(*tokensFrom, "agent.token")) },
			func() error { return d.CopyToken("deploy.token", filepath.Join(*tokensFrom, "deploy.token")) })
	} else {
		steps = append(steps, func() error { return d.WriteToken("agent.token") })
	}
	if err := d.Do(stdout, steps...); err != nil {
		fmt.Fprintf(stderr, "immune agent init: %v\n", err)
		return 1
	}
	if _, err := loader.Load(v.Config); err != nil {
		fmt.Fprintf(stderr, "immune agent init: the config does not pass its check:\n%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\nnext: give the coordinator %s as this host's token_file (or agent_token_file), then start: immune agent --config %s\n",
		v.Config, v.AgentToken, v.Config)
	return 0
}
