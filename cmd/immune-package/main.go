// Command immune-package builds immune's .deb and .rpm packages with nfpm
// from the binaries `make build` made: immune (the one binary: checks,
// their links under /usr/lib/immune/plugins, the CLI), immune-agent and
// immune-coordinator (each its daemon, a hardened systemd unit and a
// config kept across upgrades).
//
//	go run ./cmd/immune-package --bin bin --out dist --pkg-version 1.2.3
package main

import (
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune-package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	fs.StringVar(&o.bin, "bin", "bin", "`dir` of the built binaries (make build)")
	fs.StringVar(&o.src, "src", ".", "`dir` of immune's source (packaging/, conf/)")
	fs.StringVar(&o.out, "out", "dist", "`dir` to write the packages to")
	fs.StringVar(&o.version, "pkg-version", strings.TrimPrefix(version.Version, "v"), "package `version`")
	fs.StringVar(&o.arch, "arch", "amd64", "`arch`itecture")
	formats := fs.String("formats", "deb,rpm", "package `formats`, comma-separated")
	if code, done := cli.Parse(fs, args, "immune-package", stdout); done {
		return code
	}
	o.formats = strings.Split(*formats, ",")
	written, err := build(o)
	for _, w := range written {
		fmt.Fprintln(stdout, w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "immune-package: %v\n", err)
		return 1
	}
	return 0
}

type options struct {
	bin, src, out, version, arch string
	formats                      []string
	// docs holds the man pages (gzipped) and the completion scripts
	// writeDocs made.
	docs string
}

// build writes every package in every format and returns their paths.
func build(o options) ([]string, error) {
	if o.version == "" || o.version == "dev" || !strings.ContainsAny(o.version[:1], "0123456789") {
		o.version = "0.0.0~" + strings.NewReplacer("-", ".", "+", ".").Replace(o.version)
	}
	checks, err := checkNames(filepath.Join(o.bin, "immune"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", o.out, err)
	}
	docs, err := os.MkdirTemp("", "immune-package-docs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(docs)
	if err := writeDocs(filepath.Join(o.bin, "immune"), docs); err != nil {
		return nil, err
	}
	o.docs = docs
	var written []string
	for _, info := range packages(o, checks) {
		for _, format := range o.formats {
			path, err := write(info, format, o.out)
			if err != nil {
				return written, fmt.Errorf("package %s as %s: %w", info.Name, format, err)
			}
			written = append(written, path)
		}
	}
	return written, nil
}

// checkNames asks the built immune for its checks, one link each.
func checkNames(immune string) ([]string, error) {
	out, err := exec.Command(immune, "check", "--list", "--names").Output()
	if err != nil {
		return nil, fmt.Errorf("list the checks of %s (run make build first): %w", immune, err)
	}
	return strings.Fields(string(out)), nil
}

// writeDocs has the built immune write its man pages and its bash and
// zsh completion scripts into dir, the pages gzipped as man wants them:
// they are made from the flags the binary parses, so they match it.
func writeDocs(immune, dir string) error {
	pages := filepath.Join(dir, "pages")
	if out, err := exec.Command(immune, "man", pages).CombinedOutput(); err != nil {
		return fmt.Errorf("%s man: %w: %s", immune, err, out)
	}
	names, err := os.ReadDir(pages)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := gzipFile(filepath.Join(pages, n.Name()), filepath.Join(dir, n.Name()+".gz")); err != nil {
			return err
		}
	}
	for _, shell := range []string{"bash", "zsh"} {
		out, err := exec.Command(immune, "completion", shell).Output()
		if err != nil {
			return fmt.Errorf("%s completion %s: %w", immune, shell, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "completion."+shell), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile writes src gzipped to dst, with no name or time in the header,
// so that the same page makes the same package.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	_, err = zw.Write(data)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gzip %s: %w", src, err)
	}
	return nil
}

// manPages are the gzipped pages in dir whose names match pattern, as
// package contents under /usr/share/man.
func manPages(dir, pattern string) files.Contents {
	var out files.Contents
	paths, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, p := range paths {
		name := filepath.Base(p)
		// immune-demo is a developer's tool, not packaged: nor is its page.
		if strings.HasPrefix(name, "immune-demo.") {
			continue
		}
		section := strings.TrimPrefix(filepath.Ext(strings.TrimSuffix(name, ".gz")), ".")
		out = append(out, &files.Content{Source: p, Destination: "/usr/share/man/man" + section + "/" + name,
			FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	return out
}

// packages are the three packages' definitions.
func packages(o options, checks []string) []*nfpm.Info {
	base := func(name, description string) *nfpm.Info {
		return &nfpm.Info{
			Name: name, Arch: o.arch, Platform: "linux", Version: o.version, VersionSchema: "none",
			Section: "admin", Priority: "optional", Maintainer: "immune developers <immune@example.com>",
			Description: description, Homepage: "https://github.com/immune-ops/immune", License: "Apache-2.0",
		}
	}
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	config := func(src, dst string) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: files.TypeConfigNoReplace,
			FileInfo: &files.ContentFileInfo{Mode: 0o640}}
	}
	pkg := func(p string) string { return filepath.Join(o.src, "packaging", p) }

	core := base("immune", "Nagios-compatible checks and the immune command line\n"+
		" One binary holds every check (check_load, check_disk, check_http, ...), each\n"+
		" a Nagios plugin linked under /usr/lib/immune/plugins, and the immune command.")
	core.Contents = files.Contents{
		file(filepath.Join(o.bin, "immune"), "/usr/bin/immune", 0o755),
		file(filepath.Join(o.docs, "completion.bash"), "/usr/share/bash-completion/completions/immune", 0o644),
		file(filepath.Join(o.docs, "completion.zsh"), "/usr/share/zsh/vendor-completions/_immune", 0o644),
	}
	core.Contents = append(core.Contents, manPages(o.docs, "immune*.1.gz")...)
	for _, c := range checks {
		core.Contents = append(core.Contents, &files.Content{Source: "/usr/bin/immune", Destination: "/usr/lib/immune/plugins/" + c, Type: files.TypeSymlink})
	}

	scripts := nfpm.Scripts{PostInstall: pkg("postinstall.sh"), PreRemove: pkg("preremove.sh")}
	agent := base("immune-agent", "immune agent: checks, NRPE, passive results and deploys\n"+
		" Schedules checks with Nagios's soft and hard states, answers check_nrpe, submits\n"+
		" passive results, and serves its gauges and deploys to the immune coordinator.")
	agent.Depends = []string{"immune (= " + o.version + ")"}
	agent.Scripts = scripts
	agent.Contents = files.Contents{
		file(filepath.Join(o.bin, "immune-agent"), "/usr/bin/immune-agent", 0o755),
		file(pkg("immune-agent.service"), "/lib/systemd/system/immune-agent.service", 0o644),
		config(pkg("agent.yaml"), "/etc/immune/agent.yaml"),
		file(filepath.Join(o.src, "conf", "agent.yaml"), "/usr/share/doc/immune-agent/agent.yaml", 0o644),
	}
	agent.Contents = append(agent.Contents, manPages(o.docs, "immune-agent.8.gz")...)

	coordinator := base("immune-coordinator", "immune coordinator: pushes releases and rolls back what harms\n"+
		" Pushes a release to a few hosts, then all, judges every gauge against the hosts\n"+
		" not running it yet, and rolls back, reverts and locks when the release harms them.")
	coordinator.Depends = []string{"immune (= " + o.version + ")", "git"}
	coordinator.Scripts = scripts
	coordinator.Contents = files.Contents{
		file(filepath.Join(o.bin, "immune-coordinator"), "/usr/bin/immune-coordinator", 0o755),
		file(pkg("immune-coordinator.service"), "/lib/systemd/system/immune-coordinator.service", 0o644),
		config(pkg("fleet.yaml"), "/etc/immune/fleet.yaml"),
		file(filepath.Join(o.src, "conf", "fleet.yaml"), "/usr/share/doc/immune-coordinator/fleet.yaml", 0o644),
	}
	coordinator.Contents = append(coordinator.Contents, manPages(o.docs, "immune-coordinator.8.gz")...)
	return []*nfpm.Info{core, agent, coordinator}
}

// write packages info as format into dir, under its conventional name.
func write(info *nfpm.Info, format, dir string) (string, error) {
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	cp := *info
	info = nfpm.WithDefaults(&cp)
	if format == "rpm" {
		// rpm writes "name = version" where dpkg writes "name (= version)".
		info.Depends = nil
		for _, d := range cp.Depends {
			info.Depends = append(info.Depends, strings.NewReplacer("(", "", ")", "").Replace(d))
		}
	}
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	path := filepath.Join(dir, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	err = packager.Package(info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(err, os.Remove(path))
	}
	return path, nil
}
