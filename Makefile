# sandboxd — see README.md. Every target runs from a fresh checkout.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PREFIX ?= /usr/local
DESTDIR ?=

# `make run` serves with the defaults; override any of them on the command line, e.g.
# make run SANDBOXD_HTTP_BIND=:8080
export SANDBOXD_DATA_DIR ?= /var/lib/sandboxd

.PHONY: all build run test test-go testkit image bench fuzz vet clean install uninstall

all: build

# prereqs-<purpose> installs the Debian packages a target needs when run as root, or prints
# the sudo command and stops (images/prereqs.sh, which lists them). With everything present
# it calls no apt and takes milliseconds.
PREREQS := $(addprefix prereqs-,build testkit image run test bench)
.PHONY: $(PREREQS)
$(PREREQS):
	@GO='$(GO)' images/prereqs.sh $(@:prereqs-%=%)

build: bin/sandboxd bin/sandbox-init

# The binaries are rebuilt only when what goes into them changes: a Go file (tests aside),
# an embedded file, go.mod or go.sum, a package directory's entries (a file removed), or
# bin/.stamp (the version, the Go toolchain, the link flags). Add an embedded file's
# extension here.
SOURCES := $(shell find . \( -name .git -o -name bin -o -name testdata \) -prune -o \
	\( -name '*.go' ! -name '*_test.go' -o -name '*.sql' \) -print)
SOURCES += $(sort $(dir $(SOURCES))) go.mod go.sum bin/.stamp

# The stamp is rewritten only when its line changes, so an unchanged one triggers nothing.
bin/.stamp: FORCE | prereqs-build
	@mkdir -p bin
	@line="$(VERSION) $$($(GO) env GOVERSION 2>/dev/null) $(LDFLAGS)"; \
	[ "$$(cat $@ 2>/dev/null)" = "$$line" ] || echo "$$line" >$@

bin/sandboxd: $(SOURCES) | prereqs-build
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/sandboxd

# sandbox-init is bind-mounted into containers of any image: static, no cgo.
bin/sandbox-init: $(SOURCES) | prereqs-build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/sandbox-init

FORCE:

# run builds what is missing (the default image included) and serves in the foreground.
run: prereqs-run build
	@docker image inspect sandboxd/base:latest >/dev/null 2>&1 || $(MAKE) image
	./bin/sandboxd serve

testkit: prereqs-testkit
	images/testkit/build.sh

image: prereqs-image
	images/base/build.sh

vet: prereqs-build
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# test runs everything, the real Docker engine included. With CI=true a missing engine
# fails the run; elsewhere Docker tests skip with one loud line each.
test: prereqs-test vet testkit test-go

# Tests that wait on containers run side by side (each has its own data dir, network and
# containers), and so do packages: -p 4 -parallel 4 keeps two cores busy while most of
# them wait on the engine.
test-go: prereqs-test
	$(GO) test -race -count=1 -p 4 -parallel 4 -timeout 30m ./...

# bench prints the benchmark figures the issues ask for; compare ratios within one run.
bench: prereqs-bench testkit
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./edge ./edge/egress ./wake ./store
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./lifecycle ./lifecycle/snapshot ./cmd/sandboxd

# fuzz runs the fuzzers (the Host parser, agent output, body errors) beyond their corpus
# (make test runs the corpus).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseHost -fuzztime 60s ./edge
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./lifecycle/agent
	$(GO) test -run '^$$' -fuzz FuzzDecodeMessage -fuzztime 60s ./admin

# install deploys sandboxd under systemd (systemd/install.sh): the binaries in $(PREFIX)/bin,
# the unit in /etc/systemd/system, /etc/sandboxd/sandboxd.env from the example when absent,
# the base image when missing, then enables and (re)starts the service. DESTDIR=<dir> only
# stages the files under <dir>.
install: build
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' systemd/install.sh

# uninstall removes the service, its files, and this installation's containers and network;
# workspaces and state stay unless PURGE=1 (asks first; YES=1 answers), images unless
# IMAGES=1. With DESTDIR=<dir> it works on that staged tree only (systemd/uninstall.sh).
uninstall:
	DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' PURGE='$(PURGE)' YES='$(YES)' IMAGES='$(IMAGES)' systemd/uninstall.sh

clean:
	rm -rf bin
