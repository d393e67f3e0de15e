package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/template"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/initdir"
	"github.com/immune-ops/immune/conf"
)

// fleetTemplate is the config `immune coordinator init` writes: the hosts
// given, two phases and the limits every web fleet wants.
var fleetTemplate = template.Must(template.New("fleet.yaml").Parse(`# immune coordinator config, written by immune coordinator init. Every
# setting is documented in the example config
# (/usr/share/doc/immune-coordinator/fleet.yaml or conf/fleet.yaml in the
# source). Check it with
#   immune coordinator --check-config {{.Config}}
# and apply a change with systemctl reload immune-coordinator (kill -HUP):
# hosts and limits take effect for the next push.
listen: {{.Listen}}
data_dir: {{.DataDir}}
# People clear locks and order pushes with this token (immune unlock
# --token-file ...); the agents accept deploys with the deploy token only
# (copy it to each agent: immune agent init --tokens-from {{.Dir}}), and
# the coordinator reads the agents with theirs.
operator_token_file: {{.OperatorToken}}
deploy_token_file: {{.DeployToken}}
agent_token_file: {{.AgentToken}}

hosts:
{{- range .Hosts}}
  - {name: {{.Name}}, address: "{{.Address}}", host_type: {{.Type}}}
{{- end}}

# The first push phase takes 5% of the hosts (at least one of each type),
# judged against the hosts not running it yet; then all.
phases: [5%, 100%]

limits:
  - gauge: loadavg1
    rise: 50%
    max: 8
  - gauge: cpu_idle
    fall: 30%
`))

// hostFlag collects --host name=host:port[/type] flags.
type hostFlag []struct{ Name, Address, Type string }

func (h *hostFlag) String() string { return fmt.Sprint(len(*h), " hosts") }

func (h *hostFlag) Set(v string) error {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want name=host:port or name=host:port/type", v)
	}
	addr, typ, _ := strings.Cut(rest, "/")
	if typ == "" {
		typ = "www"
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q: %s is not host:port", v, addr)
	}
	*h = append(*h, struct{ Name, Address, Type string }{name, addr, typ})
	return nil
}

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune coordinator init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: immune coordinator init [flags] DIR\n\nwrites DIR/fleet.yaml and fresh DIR/operator.token, deploy.token and agent.token")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:5680", "the coordinator's API and pages `address`")
	var hosts hostFlag
	fs.Var(&hosts, "host", "an agent: `name=host:port[/type]` (its API; repeat for each; default localhost=127.0.0.1:5667/www)")
	force := fs.Bool("force", false, "overwrite files that exist")
	if code, done := cli.Parse(fs, args, "immune-coordinator", stdout); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		fmt.Fprintf(stderr, "immune coordinator init: --listen %q is not host:port\n", *listen)
		return 2
	}
	if len(hosts) == 0 {
		hosts.Set("localhost=127.0.0.1:5667/www")
	}
	d, err := initdir.Open(fs.Arg(0), *force)
	if err != nil {
		fmt.Fprintf(stderr, "immune coordinator init: %v\n", err)
		return 1
	}
	v := struct {
		Dir, Config, Listen, DataDir, OperatorToken, DeployToken, AgentToken string
		Hosts                                                                hostFlag
	}{
		Dir: d.Path, Config: d.Join("fleet.yaml"), Listen: *listen, DataDir: initdir.DataDir(d.Path, "immune-coordinator"),
		OperatorToken: d.Abs("operator.token"), DeployToken: d.Abs("deploy.token"), AgentToken: d.Abs("agent.token"), Hosts: hosts,
	}
	var cfg bytes.Buffer
	if err := fleetTemplate.Execute(&cfg, v); err != nil {
		fmt.Fprintf(stderr, "immune coordinator init: %v\n", err)
		return 1
	}
	err = d.Do(stdout,
		func() error { return d.WriteConfig("fleet.yaml", cfg.Bytes()) },
		func() error { return d.WriteToken("operator.token") },
		func() error { return d.WriteToken("deploy.token") },
		func() error { return d.WriteToken("agent.token") })
	if err != nil {
		fmt.Fprintf(stderr, "immune coordinator init: %v\n", err)
		return 1
	}
	if _, err := conf.LoadFleet(v.Config); err != nil {
		fmt.Fprintf(stderr, "immune coordinator init: the config does not pass its check:\n%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\nnext: on each agent host, copy %s and %s, run immune agent init --tokens-from DIR --deploy-root /srv/app /etc/immune;\nthen start: immune coordinator --config %s\n",
		v.Config, v.AgentToken, v.DeployToken, v.Config)
	return 0
}
