#!/bin/sh
# systemd/uninstall.sh: `make uninstall`. Removes what `make install` and sandboxd created:
#   the service (stopped and disabled), its unit, the binaries and the example;
#   the containers of this installation (labels sandboxd.managed=true and the
#   sandboxd.instance of its data dir; other sandboxd instances on the host are left
#   alone) and its networks, when nothing else is attached to them.
# Kept unless asked: the data dir (workspaces, SQLite, certificates) and /etc/sandboxd,
# removed with PURGE=1 after a typed confirmation (YES=1 confirms ahead, for scripts);
# the sandboxd/* images, removed with IMAGES=1. A later `make install` finds the kept
# state and recreates the sandboxes' containers as they are needed.
#
# DESTDIR=<dir> works on a staged tree only: the service, containers, network and images
# are the real host's, so those steps are skipped (and said so).
set -eu

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
PURGE=${PURGE:-}
YES=${YES:-}
IMAGES=${IMAGES:-}
bindir=$PREFIX/bin
unitdir=/etc/systemd/system
confdir=/etc/sandboxd
sharedir=$PREFIX/share/sandboxd
envfile=$DESTDIR$confdir/sandboxd.env

say() { printf 'uninstall: %s\n' "$*"; }

# setting NAME DEFAULT: NAME's value in the env file (the last assignment, quotes
# removed), or DEFAULT.
setting() {
	v=
	if [ -r "$envfile" ]; then
		v=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$envfile" | tail -n 1 |
			sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/")
	fi
	printf '%s' "${v:-$2}"
}
datadir=$(setting SANDBOXD_DATA_DIR /var/lib/sandboxd)
# Cleaned as lifecycle.InstanceOf cleans it (filepath.Abs: no //, . or .., no trailing
# /, symlinks kept), so the instance hash below names the same containers.
case $datadir in /*) datadir=$(realpath -m -s -- "$datadir") ;; esac
case $datadir in
/?*) ;;
*)
	echo "uninstall: SANDBOXD_DATA_DIR=\"$datadir\" in $envfile is not an absolute path below /; fix it first" >&2
	exit 1
	;;
esac
network=$(setting SANDBOXD_NETWORK sandboxd)

staged=
if [ -n "$DESTDIR" ]; then
	staged=1
	say "skipped (DESTDIR is set, a staged tree): systemctl stop and disable, and the host's containers, network and images"
fi

systemd=
if [ -z "$staged" ] && [ -d /run/systemd/system ]; then
	systemd=1
	if systemctl cat sandboxd.service >/dev/null 2>&1; then
		# sandboxd drains and exits; the sandboxes keep running until removed below.
		systemctl disable --now sandboxd.service
		say "stopped and disabled sandboxd.service"
	fi
fi

for f in "$DESTDIR$unitdir/sandboxd.service" "$DESTDIR$bindir/sandboxd" "$DESTDIR$bindir/sandbox-init" \
	"$DESTDIR$sharedir/sandboxd.env.example"; do
	if [ -e "$f" ]; then
		rm -f "$f"
		say "removed $f"
	fi
done
rmdir "$DESTDIR$sharedir" 2>/dev/null || true
if [ -n "$systemd" ]; then
	systemctl daemon-reload
fi

if [ -z "$staged" ]; then
	if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
		say "WARNING: no Docker engine answers: containers labelled sandboxd.managed=true and the network $network are left"
	else
		# lifecycle.InstanceOf: the first 12 hex digits of the data dir's SHA-256.
		instance=$(printf '%s' "$datadir" | sha256sum | cut -c1-12)
		ids=$(docker ps -aq --filter label=sandboxd.managed=true --filter "label=sandboxd.instance=$instance")
		if [ -n "$ids" ]; then
			# shellcheck disable=SC2086 # one id a word
			docker rm -f $ids >/dev/null
			say "removed $(echo "$ids" | wc -l) sandbox containers (instance $instance, data dir $datadir)"
		fi
		# The network and, since issue 15, its internal sibling (lifecycle: <network>-internal).
		for net in "$network" "$network-internal"; do
			if [ "$(docker network inspect -f '{{index .Labels "sandboxd.managed"}}' "$net" 2>/dev/null)" = true ]; then
				if docker network rm "$net" >/dev/null 2>&1; then
					say "removed the network $net"
				else
					say "kept the network $net: containers of another sandboxd instance use it"
				fi
			fi
		done
	fi
fi

if [ "$PURGE" = 1 ]; then
	if [ "$YES" != 1 ]; then
		if [ ! -t 0 ]; then
			echo "uninstall: PURGE=1 deletes every workspace and the state in $DESTDIR$datadir, and $DESTDIR$confdir; no terminal to confirm on: add YES=1" >&2
			exit 1
		fi
		n=$(find "$DESTDIR$datadir/workspaces" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		printf 'uninstall: delete %s (%s workspaces, the database, certificates), %s and any drop-ins? Type yes: ' \
			"$DESTDIR$datadir" "$n" "$DESTDIR$confdir"
		read -r answer
		if [ "$answer" != yes ]; then
			echo "uninstall: nothing deleted" >&2
			exit 1
		fi
	fi
	for d in "$DESTDIR$datadir" "$DESTDIR$confdir" "$DESTDIR$unitdir/sandboxd.service.d"; do
		if [ -e "$d" ]; then
			rm -rf "$d"
			say "deleted $d"
		fi
	done
else
	say "kept $DESTDIR$datadir (workspaces and state) and $DESTDIR$confdir; PURGE=1 deletes them"
fi

if [ "$IMAGES" = 1 ]; then
	if [ -n "$staged" ]; then
		say "skipped IMAGES=1 (DESTDIR is set)"
	elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		imgs=$(docker image ls --format '{{.Repository}}:{{.Tag}}' 'sandboxd/*' | grep -v ':<none>$' || true)
		if [ -n "$imgs" ]; then
			# shellcheck disable=SC2086
			if docker image rm $imgs >/dev/null; then
				say "removed the images:" $imgs
			else
				say "WARNING: some sandboxd/* images are in use (by another instance's containers) and stay"
			fi
		fi
	fi
else
	say "kept the sandboxd/* images; IMAGES=1 removes them"
fi
