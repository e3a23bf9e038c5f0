#!/usr/bin/env bash
# prereqs.sh makes sure this host has the tools a make target needs, so that
# `make run` and `make test` work on a fresh Debian or Ubuntu machine with
# nothing installed by hand but Docker Engine and Go.
#
# As root it installs the Debian packages that are missing (apt-get update,
# then apt-get install), saying which and what for. Otherwise it prints the
# exact sudo command and exits 1. When nothing is missing it calls no apt and
# takes a few milliseconds, so every make target can run it.
#
# Usage: images/prereqs.sh PURPOSE...
#   build    make build: compile bin/sandboxd (cgo) and bin/sandbox-init
#   testkit  make testkit: the sandboxd/testkit image
#   image    make image: the sandboxd/base image, debootstrapped without a registry
#   run      make run: build and image
#   test     make test: build, testkit and what the tests run on the host
#   bench    make bench: test and what the benchmarks run
# Environment:
#   GO                    the go command (default go), as the Makefile's GO
#   SANDBOXD_PREREQS_SBIN where else to look for commands, since a user's PATH
#                         lacks the sbin directories that hold debootstrap
#                         (default /usr/local/sbin:/usr/sbin:/sbin)
set -euo pipefail

# One line per need: PURPOSE COMMAND PACKAGE WHAT-FOR. Adding a package is
# adding a line. COMMAND is found on PATH (or in the sbin directories);
# static:NAME also wants it statically linked (it is copied into a FROM
# scratch image). PACKAGE - means apt cannot provide it: a missing one is
# named, with where to get it, and the run stops.
read -r -d '' NEEDS <<'EOF' || true
build   go                 -              Go, the version go.mod names (https://go.dev/dl)
build   gcc                gcc            cgo, which SQLite in bin/sandboxd needs
build   git                git            the version stamped into the binaries
build   make               make           the Makefile
testkit docker             -              Docker Engine (https://docs.docker.com/engine/install/)
testkit static:busybox     busybox-static the shell and tools of the testkit image
testkit static:bash-static bash-static    the bash of the testkit image
image   docker             -              Docker Engine (https://docs.docker.com/engine/install/)
image   debootstrap        debootstrap    the base image when no registry answers
image   gpgv               gpgv           checking the signatures of the Debian mirror
image   curl               curl           fetching the release file of the Debian mirror
test    curl               curl           the walkthrough tests
test    systemd-analyze    systemd        verifying the systemd unit in the deploy tests
test    mkfs.btrfs         btrfs-progs    the loop-mounted btrfs of the disk quota and snapshot tests
test    mkfs.xfs           xfsprogs       the loop-mounted XFS (reflink=1) of the snapshot tests (issue 18)
bench   nginx              nginx          the edge's throughput beside nginx (BenchmarkProxy)
bench   caddy              caddy          the edge's throughput beside Caddy (BenchmarkProxy)
EOF

# Packages whose install starts a web server on port 80, the edge's own: the benchmarks
# run their binaries with configurations of their own, so on a host run by systemd the
# service the package enabled is stopped and disabled right after the install.
QUIET_SERVICES=" nginx caddy "

# Purposes made of others.
declare -A INCLUDES=(
	[run]="build image"
	[test]="build testkit"
	[bench]="test"
)

die() { printf 'prereqs: %s\n' "$*" >&2; exit 1; }

[ $# -gt 0 ] || die "usage: images/prereqs.sh PURPOSE... (build testkit image run test bench)"

# expand PURPOSE appends PURPOSE and those it includes to $purposes.
purposes=" "
expand() {
	case $purposes in *" $1 "*) return ;; esac
	purposes+="$1 "
	local p
	for p in ${INCLUDES[$1]:-}; do expand "$p"; done
}
for arg in "$@"; do
	case $arg in
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
	esac
	known=${INCLUDES[$arg]:+1}
	while read -r purpose _; do
		if [ "$purpose" = "$arg" ]; then known=1; fi
	done <<<"$NEEDS"
	[ -n "$known" ] || die "unknown purpose $arg (one of build testkit image run test bench)"
	expand "$arg"
done

# found CMD prints where CMD is, looking on PATH and then in the sbin directories.
found() {
	local sbin=${SANDBOXD_PREREQS_SBIN-/usr/local/sbin:/usr/sbin:/sbin}
	PATH="$PATH${sbin:+:$sbin}" command -v "$1" 2>/dev/null
}

# have CHECK: the command CHECK names is there (and static, for static:NAME).
# ldd fails on a static binary ("not a dynamic executable").
have() {
	local name=${1#static:} path
	if [ "$name" = go ]; then name=${GO:-go}; fi
	path=$(found "$name") || return 1
	case $1 in static:*) ! ldd "$path" >/dev/null 2>&1 ;; esac
}

# missing lists the needs of the purposes that are not met, one
# "PACKAGE PURPOSE COMMAND WHAT-FOR" a line, each command once.
missing() {
	local purpose check pkg why seen=" "
	while read -r purpose check pkg why; do
		[ -n "$purpose" ] || continue
		case $purposes in *" $purpose "*) ;; *) continue ;; esac
		case $seen in *" $check "*) continue ;; esac
		seen+="$check "
		have "$check" || printf '%s %s %s %s\n' "$pkg" "$purpose" "${check#static:}" "$why"
	done <<<"$NEEDS"
}

lack=$(missing)
[ -n "$lack" ] || exit 0

manual=() pkgs=() whys=()
while read -r pkg purpose cmd why; do
	if [ "$pkg" = - ]; then
		manual+=("$cmd: $why")
		continue
	fi
	case " ${pkgs[*]} " in *" $pkg "*) ;; *) pkgs+=("$pkg") ;; esac
	whys+=("$pkg for make $purpose ($cmd: $why)")
done <<<"$lack"

# say_manual names what apt cannot provide, and exits.
say_manual() {
	printf 'prereqs: missing, and not installed by this script:\n' >&2
	printf '    %s\n' "${manual[@]}" >&2
	exit 1
}

if [ ${#pkgs[@]} -gt 0 ]; then
	install="apt-get install -y --no-install-recommends ${pkgs[*]}"
	if [ "$(id -u)" != 0 ]; then
		printf 'prereqs: missing %s\n' "${whys[@]}" >&2
		printf 'prereqs: installing packages needs root; run this, then make again:\n\n    sudo apt-get update && sudo %s\n\n' "$install" >&2
		[ ${#manual[@]} -eq 0 ] || say_manual
		exit 1
	fi
	found apt-get >/dev/null ||
		die "missing ${pkgs[*]}, and there is no apt-get to install them: install them with this system's package manager"

	printf 'prereqs: installing %s\n' "${whys[@]}" >&2
	log=$(mktemp "${TMPDIR:-/tmp}/sandboxd-prereqs.XXXXXX")
	trap 'rm -f "$log"' EXIT
	export DEBIAN_FRONTEND=noninteractive
	# Wait for another apt (a parallel make, unattended-upgrades) instead of failing.
	apt=(apt-get -q -o DPkg::Lock::Timeout=300)
	if ! "${apt[@]}" update >"$log" 2>&1 || ! "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}" >>"$log" 2>&1; then
		while read -r line; do printf '    %s\n' "$line"; done < <(tail -n 20 "$log") >&2
		die "apt-get failed; it ran: apt-get update && $install"
	fi

	# A package that installed without the command it was for is a wrong line in NEEDS.
	while read -r pkg purpose cmd why; do
		[ "$pkg" = - ] || die "installed $pkg, yet $cmd is still missing"
	done < <(missing)
	printf 'prereqs: installed %s\n' "${pkgs[*]}" >&2

	if [ -d /run/systemd/system ] && systemctl=$(found systemctl); then
		for pkg in "${pkgs[@]}"; do
			case $QUIET_SERVICES in *" $pkg "*) ;; *) continue ;; esac
			"$systemctl" disable --now "$pkg.service" >/dev/null 2>&1 &&
				printf 'prereqs: stopped and disabled the %s service its package started (the benchmarks run %s themselves; port 80 is the edge'"'"'s)\n' "$pkg" "$pkg" >&2
		done
	fi
fi
[ ${#manual[@]} -eq 0 ] || say_manual
