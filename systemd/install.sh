#!/bin/sh
# systemd/install.sh: `make install` (which builds bin/ first). Lays out
#   $PREFIX/bin/sandboxd, $PREFIX/bin/sandbox-init          the binaries (0755)
#   /etc/systemd/system/sandboxd.service                      the unit, ExecStart in $PREFIX
#   /etc/sandboxd/sandboxd.env                                from the example, only when absent
#   $PREFIX/share/sandboxd/sandboxd.env.example               this version's example
# then, on this machine's root only, builds the sandboxd/base image when it is missing and
# (re)starts the service: a restart keeps sandboxes running.
#
# DESTDIR=<dir> stages the files under <dir> and touches nothing else: a staged tree has
# no Docker engine or systemd of its own, so the image and systemctl steps are skipped
# (and said so). PREFIX defaults to /usr/local.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
bindir=$PREFIX/bin
unitdir=/etc/systemd/system
confdir=/etc/sandboxd
sharedir=$PREFIX/share/sandboxd
image=sandboxd/base:latest

say() { printf 'install: %s\n' "$*"; }

for b in sandboxd sandbox-init; do
	if [ ! -x "$root/bin/$b" ]; then
		echo "install: bin/$b is missing: run make install (it builds first) or make build" >&2
		exit 1
	fi
done

# put MODE SRC DST writes DST through a temporary file and a rename, so a running
# sandboxd's binary is replaced rather than written over.
put() {
	mkdir -p "$(dirname "$3")"
	cp "$2" "$3.tmp.$$"
	chmod "$1" "$3.tmp.$$"
	mv -f "$3.tmp.$$" "$3"
	say "$3"
}

put 0755 "$root/bin/sandboxd" "$DESTDIR$bindir/sandboxd"
put 0755 "$root/bin/sandbox-init" "$DESTDIR$bindir/sandbox-init"

unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed "s|^ExecStart=/usr/local/bin/|ExecStart=$bindir/|" "$root/systemd/sandboxd.service" >"$unit"
put 0644 "$unit" "$DESTDIR$unitdir/sandboxd.service"
put 0644 "$root/systemd/sandboxd.env.example" "$DESTDIR$sharedir/sandboxd.env.example"

mkdir -p "$DESTDIR$confdir"
chmod 0750 "$DESTDIR$confdir"
if [ -e "$DESTDIR$confdir/sandboxd.env" ]; then
	say "kept $DESTDIR$confdir/sandboxd.env (yours); new variables, if any, are in $sharedir/sandboxd.env.example"
else
	(umask 077 && cp "$root/systemd/sandboxd.env.example" "$DESTDIR$confdir/sandboxd.env")
	chmod 0600 "$DESTDIR$confdir/sandboxd.env"
	say "$DESTDIR$confdir/sandboxd.env (from the example; every variable at its default)"
fi

if [ -n "$DESTDIR" ]; then
	say "skipped (DESTDIR is set, a staged tree): building $image, systemctl daemon-reload, enable and restart"
	exit 0
fi

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
	say "WARNING: no Docker engine answers, so $image is not built; run 'make image' once Docker runs"
elif docker image inspect "$image" >/dev/null 2>&1; then
	say "$image is present"
else
	say "building $image (images/base/build.sh; a few minutes the first time)"
	"$root/images/base/build.sh"
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable sandboxd.service
	# restart, not start: an upgrade must run the new binary. Sandboxes keep running.
	if ! systemctl restart sandboxd.service; then
		echo "install: sandboxd did not start; see: journalctl -u sandboxd -n 50" >&2
		exit 1
	fi
	say "sandboxd is enabled and running: systemctl status sandboxd; journalctl -u sandboxd -f"
	say "configure it in $confdir/sandboxd.env, then: systemctl restart sandboxd (or reload, for API tokens)"
else
	say "systemd is not running here (PID 1 is $(cat /proc/1/comm 2>/dev/null || echo unknown)): the unit is installed but nothing was started."
	say "run sandboxd some other way, e.g.: set -a; . $confdir/sandboxd.env; set +a; $bindir/sandboxd serve"
fi
