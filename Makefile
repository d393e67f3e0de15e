# immune: `make demo` runs the local demo fleet, `make test` the whole suite.
# `make test` installs what the tests need from Debian's packages first.

GO        ?= go
BIN       := bin
# --version of every binary: the release, the commit and the build date.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -X github.com/immune-ops/immune/version.Version=$(VERSION) -X github.com/immune-ops/immune/version.Commit=$(COMMIT) -X github.com/immune-ops/immune/version.Date=$(DATE)
# Debian packages the tests run against: the reference plugins for output
# compatibility.
TEST_PKGS := monitoring-plugins nagios-nrpe-plugin memcached mariadb-server nagios4-core icinga2-bin chromium prometheus zsh groff-base
export IMMUNE_REQUIRE_REAL ?= 1

.PHONY: all build demo test deps bench bench-judge bench-deps vet fuzz clean package install faults man

all: build

# A static binary: a plugin run skips the dynamic loader, which is most of
# what separates a Go plugin's start-up from a C plugin's.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/immune ./cmd/immune
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/immune-agent ./cmd/immune-agent
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/immune-coordinator ./cmd/immune-coordinator
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/immune-demo ./cmd/immune-demo
	@for c in $$($(BIN)/immune check --list --names); do ln -sf immune $(BIN)/$$c; done
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/plugins/check_example ./plugins/example/check_example

# demo: a fleet of agents and a coordinator on loopback, a good push and a
# bad one rolled back; it stays up until Ctrl-C (immune demo --exit stops).
demo: build
	$(BIN)/immune demo

# deps installs the Debian packages the tests need, only when one is missing.
deps:
	@missing=""; for p in $(TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

vet:
	$(GO) vet ./...

test: deps build vet
	$(GO) test -count=1 -timeout 8m ./...

# Debian packages the benchmarks compare against: the NRPE daemon.
BENCH_PKGS := nagios-nrpe-server memcached

# bench-deps installs them the way deps installs the tests' packages, after
# deps so that two apt-get runs never contend for dpkg's lock under make -j.
bench-deps: deps
	@$(MAKE) --no-print-directory deps TEST_PKGS="$(BENCH_PKGS)"

bench: bench-deps build
	$(GO) run ./cmd/benchtable

# bench-judge: only the judge's figures over many simulated pushes (a minute or two).
bench-judge:
	$(GO) run ./cmd/benchtable -judge-only

# faults: real agents in network namespaces and real coordinators, a link
# cut, slowed or a leader cut from MySQL mid-push (root or CAP_NET_ADMIN;
# skipped with the reason otherwise); prints the table of what each fault
# did. About a minute.
FAULTS_TABLE ?= $(or $(TMPDIR),/tmp)/immune-faults-table.txt
faults: deps
	@rm -f $(FAULTS_TABLE)
	IMMUNE_FAULTS_TABLE=$(FAULTS_TABLE) $(GO) test ./faults -run TestFaults -v -count=1 -timeout 5m; \
	status=$$?; [ -f $(FAULTS_TABLE) ] && cat $(FAULTS_TABLE); exit $$status

# fuzz: every fuzz target in the module for FUZZTIME each, then a table of
# execs and crashes per target (exit 1 if any crashed).
FUZZTIME ?= 10s
fuzz:
	$(GO) run ./cmd/fuzztable -fuzztime $(FUZZTIME)

# man: the man pages in man/, written by bin/immune from the flags its
# commands parse (immune completion bash|zsh prints the completions; the
# packages ship both).
man: build
	rm -rf man
	$(BIN)/immune man man

# package: .deb and .rpm packages of immune, immune-agent and
# immune-coordinator in dist/ (nfpm, as a Go library: nothing to download).
package: build
	$(GO) run ./cmd/immune-package --bin $(BIN) --out dist --pkg-version "$(VERSION)"

# install: the binaries, the check links and the systemd units under
# $(DESTDIR)$(PREFIX), as the packages lay them out.
PREFIX ?= /usr
install: build man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/immune/plugins $(DESTDIR)/lib/systemd/system $(DESTDIR)/etc/immune
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	install -m 0644 $$(ls man/*.1 | grep -v immune-demo) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	$(BIN)/immune completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/immune
	$(BIN)/immune completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_immune
	install -m 0755 $(BIN)/immune $(BIN)/immune-agent $(BIN)/immune-coordinator $(DESTDIR)$(PREFIX)/bin/
	for c in $$($(BIN)/immune check --list --names); do ln -sf $(PREFIX)/bin/immune $(DESTDIR)$(PREFIX)/lib/immune/plugins/$$c; done
	install -m 0644 packaging/immune-agent.service packaging/immune-coordinator.service $(DESTDIR)/lib/systemd/system/
	[ -e $(DESTDIR)/etc/immune/agent.yaml ] || install -m 0640 packaging/agent.yaml $(DESTDIR)/etc/immune/agent.yaml
	[ -e $(DESTDIR)/etc/immune/fleet.yaml ] || install -m 0640 packaging/fleet.yaml $(DESTDIR)/etc/immune/fleet.yaml

clean:
	rm -rf $(BIN) dist man
