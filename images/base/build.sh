#!/usr/bin/env bash
# build.sh builds sandboxd/base:latest, the default sandbox image.
#
# With a registry it is an ordinary `docker build` on debian:trixie-slim. Without
# one (docker pull fails), it makes a Debian trixie root filesystem from
# Debian's own packages: debootstrap --variant=minbase with the packages its
# resolver handles, then the rootfs's own apt for npm and security updates,
# trimmed like the slim image. The mirror's signatures are checked with a
# keyring shown to verify trixie, never skipped. The rootfs is imported as
# sandboxd/debian:trixie (reused on later runs) and the image is built on it;
# it already holds every package setup.sh wants, so that build needs no network.
# The image is labelled sandboxd.image=base by its Dockerfile.
#
# The agent CLIs and pnpm come from npm (agents.sh, versions in agents.env).
# Without an npm registry the image is built without them. Either way this
# script then reads /etc/sandboxd/agents.json from the image and labels it
# sandboxd.agents=<installed agents> and sandboxd.agents.missing=<the others>.
# While an agent is missing, every run tries npm again (the step is not taken
# from the build cache), so a run with registry access completes the image.
#
# What it needs from Debian (debootstrap, gpgv, curl) images/prereqs.sh image
# installs as root, or names.
#
# Usage: images/base/build.sh [--rebuild]
#   --rebuild   make sandboxd/debian:trixie again even when it exists
# Environment:
#   SANDBOXD_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   SANDBOXD_PULL_TIMEOUT   seconds allowed for `docker pull` (default 60)
#   SANDBOXD_DEBIAN_KEYRING keyring to try first for the mirror's signatures
#   NPM_CONFIG_REGISTRY     npm registry (or mirror) for the agents and pnpm
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=sandboxd/base:latest
UPSTREAM=debian:trixie-slim
ROOTFS_IMAGE=sandboxd/debian:trixie
SUITE=trixie
MIRROR=${SANDBOXD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT=${SANDBOXD_PULL_TIMEOUT:-60}
# Keep in sync with PACKAGES in setup.sh.
PACKAGES=(bash coreutils git curl ca-certificates nodejs npm python3 procps)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'images/base/build.sh: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; install it with: apt-get install -y $2"; }

rebuild=0
for arg in "$@"; do
	case $arg in
	--rebuild) rebuild=1 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) die "unknown argument $arg (try --help)" ;;
	esac
done

"$HERE/../prereqs.sh" image
need docker docker.io
need timeout coreutils

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/sandboxd-base.XXXXXX")
cleanup() {
	# debootstrap mounts proc and sys (and may bind /dev) inside its target; an
	# interrupted run leaves them mounted, and rm -rf through a bound /dev would
	# delete the host's device nodes. Unmount deepest first, then stay on this
	# filesystem while removing.
	awk -v p="$tmp/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# verifies KEYRING FILE: true when FILE (an InRelease) carries at least one
# good signature from KEYRING and no bad one, which is the rule debootstrap
# and apt apply. gpgv alone exits 2 whenever one of several signatures has an
# unknown key, which every Release file signed by old and new keys has.
verifies() {
	local status
	status=$(gpgv --status-fd 1 --keyring "$1" "$2" 2>/dev/null || true)
	grep -q '^\[GNUPG:\] VALIDSIG ' <<<"$status" && ! grep -q '^\[GNUPG:\] BADSIG ' <<<"$status"
}

# pick_keyring prints a keyring file that verifies $SUITE's InRelease on $MIRROR.
# Signature checks are never turned off: when the host keyring lacks trixie's
# keys, the keyring package comes from the host's own apt, which verified it
# against the keys the host already trusts.
pick_keyring() {
	local inrelease="$tmp/InRelease" k
	curl -fsSL --retry 3 -o "$inrelease" "$MIRROR/dists/$SUITE/InRelease" ||
		die "cannot fetch $MIRROR/dists/$SUITE/InRelease"
	for k in "${SANDBOXD_DEBIAN_KEYRING:-}" /usr/share/keyrings/debian-archive-keyring.gpg; do
		if [ -n "$k" ] && [ -f "$k" ] && verifies "$k" "$inrelease"; then
			echo "$k"
			return 0
		fi
	done
	say "host keyring does not verify $SUITE; taking debian-archive-keyring from the host's apt"
	need apt-get apt
	need dpkg-deb dpkg
	mkdir -p "$tmp/keyring"
	if (cd "$tmp/keyring" && apt-get download -qq debian-archive-keyring >/dev/null 2>&1); then
		dpkg-deb -x "$tmp"/keyring/debian-archive-keyring_*.deb "$tmp/keyring/root"
		k="$tmp/keyring/root/usr/share/keyrings/debian-archive-keyring.gpg"
		if [ -f "$k" ] && verifies "$k" "$inrelease"; then
			echo "$k"
			return 0
		fi
	fi
	die "no keyring verifies $MIRROR/dists/$SUITE/InRelease; run: apt-get update && apt-get install -y debian-archive-keyring (2023.3+deb12u2 or later knows trixie's keys), or set SANDBOXD_DEBIAN_KEYRING"
}

# build_rootfs makes a trixie rootfs holding PACKAGES and imports it as
# ROOTFS_IMAGE. debootstrap's own resolver ignores alternatives and virtual
# packages: given npm it leaves half of npm's node-* tree out and fails to
# configure it. So debootstrap lays the base with the packages it resolves,
# and the rootfs's own apt (same mirror, signatures checked with the keyring
# debootstrap installed) adds the rest and the security updates.
build_rootfs() {
	need debootstrap debootstrap
	need gpgv gpgv
	need curl curl
	need chroot coreutils
	[ "$(id -u)" = 0 ] || die "debootstrap needs root; run as root or with sudo"

	local keyring rootfs="$tmp/rootfs" log="$tmp/rootfs.log" rc started=$SECONDS p include=()
	for p in "${PACKAGES[@]}"; do
		[ "$p" = npm ] || include+=("$p")
	done
	keyring=$(pick_keyring)
	say "keyring: $keyring verifies $SUITE"
	say "debootstrap --variant=minbase $SUITE with ${include[*]} from $MIRROR"
	set +e
	debootstrap --variant=minbase --keyring="$keyring" \
		--include="$(IFS=,; echo "${include[*]}")" \
		"$SUITE" "$rootfs" "$MIRROR" 2>&1 | tee "$log" |
		grep --line-buffered -E '^I: (Valid Release signature|Resolving dependencies|Unpacking the base|Configuring the base|Base system installed)' |
		sed -u 's/^I: /    /' >&2
	rc=${PIPESTATUS[0]}
	set -e
	if [ "$rc" != 0 ]; then
		tail -n 30 "$rootfs/debootstrap/debootstrap.log" "$log" >&2 2>/dev/null || true
		die "debootstrap failed (exit $rc)"
	fi

	# Apt sources as the official image has them (deb822, with updates and security).
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $MIRROR
		Suites: $SUITE $SUITE-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: http://deb.debian.org/debian-security
		Suites: $SUITE-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	# The "slim" rule: no docs, man pages or translations, now or on later installs.
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/lintian/*
		path-exclude /usr/share/linda/*
		path-exclude /usr/share/locale/*
	EOF

	say "apt in the rootfs: security updates and ${PACKAGES[*]}"
	mount -t proc proc "$rootfs/proc"
	if ! chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		sh -c 'apt-get update -qq && apt-get upgrade -y -qq && apt-get install -y -qq --no-install-recommends "$@"' \
		apt "${PACKAGES[@]}" >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "apt-get in the rootfs failed"
	fi
	umount "$rootfs/proc"
	say "rootfs ready in $((SECONDS - started))s; trimming like debian:trixie-slim"

	find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/*
	# Docker supplies hostname and resolv.conf at run time; debootstrap copied the host's.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
		"$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/* "$rootfs"/debootstrap \
		"$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

	say "docker import $ROOTFS_IMAGE"
	# /dev, /proc and /sys are the runtime's to fill; ship them empty.
	tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
		docker import --change 'CMD ["bash"]' \
			--message "debootstrap --variant=minbase $SUITE $MIRROR" - "$ROOTFS_IMAGE" >/dev/null
}

# image_id prints the id of an image, or nothing when there is none.
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# agents_attempt prints the value of the SANDBOXD_AGENTS_ATTEMPT build
# argument: 0 when the current image has every agent (the npm step may come
# from the build cache), else a new one, so that the step runs again.
agents_attempt() {
	if [ "$rebuild" = 0 ] && docker image inspect -f '{{json .Config.Labels}}' "$IMAGE" 2>/dev/null |
		grep -q '"sandboxd.agents.missing":""'; then
		echo 0
	else
		date +%s
	fi
}

# label_agents labels IMAGE with the agents its /etc/sandboxd/agents.json
# lists: sandboxd.agents (installed) and sandboxd.agents.missing, each a
# comma-separated list of names. Labels cannot be computed in the Dockerfile
# (they depend on a RUN's outcome), so they go on a child image that adds
# only metadata; the unlabelled image it replaces is removed.
label_agents() {
	local unlabelled cid json name state installed=() missing=()
	unlabelled=$(image_id "$IMAGE")
	cid=$(docker create "$IMAGE")
	json=$(docker cp "$cid:/etc/sandboxd/agents.json" - | tar -xO) || json=
	docker rm "$cid" >/dev/null
	while read -r name state; do
		if [ "$state" = true ]; then installed+=("$name"); else missing+=("$name"); fi
	done < <(sed -n 's/^ *"\([a-z0-9_-]*\)": {.*"installed": \(true\|false\)}.*$/\1 \2/p' <<<"$json")
	[ $((${#installed[@]} + ${#missing[@]})) -gt 0 ] || die "no agents listed in /etc/sandboxd/agents.json of $IMAGE"
	AGENTS=$(IFS=,; echo "${installed[*]}")
	AGENTS_MISSING=$(IFS=,; echo "${missing[*]}")
	if ! printf 'FROM %s\nLABEL sandboxd.agents="%s" sandboxd.agents.missing="%s"\n' "$unlabelled" "$AGENTS" "$AGENTS_MISSING" |
		docker build -q -t "$IMAGE" - >"$tmp/label.log" 2>&1; then
		cat "$tmp/label.log" >&2
		die "labelling $IMAGE failed"
	fi
	# BuildKit leaves the unlabelled image dangling; the legacy builder keeps
	# it as the labelled one's parent, and then this removal fails, harmlessly.
	drop_old "$unlabelled" "$IMAGE"
}

# drop_old removes an image a rebuild replaced, unless it is still in use
# (a container, or a child image such as a sandbox's commit): only that id,
# never a prune, which would take other people's dangling images too.
drop_old() {
	if [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ]; then
		docker rmi "$1" >/dev/null 2>&1 || true
	fi
}

old_image=$(image_id "$IMAGE") old_rootfs=$(image_id "$ROOTFS_IMAGE")
started=$SECONDS
say "docker pull $UPSTREAM (timeout ${PULL_TIMEOUT}s)"
if timeout "$PULL_TIMEOUT" docker pull -q "$UPSTREAM" >"$tmp/pull.log" 2>&1; then
	base=$UPSTREAM
else
	say "pull failed: $(tail -n 1 "$tmp/pull.log"); using Debian's packages instead"
	if [ "$rebuild" = 0 ] && docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
		say "reusing $ROOTFS_IMAGE (pass --rebuild to make it again)"
	else
		build_rootfs
	fi
	base=$ROOTFS_IMAGE
fi

say "docker build $IMAGE on $base"
build_args=(--build-arg BASE="$base" --build-arg SANDBOXD_AGENTS_ATTEMPT="$(agents_attempt)")
[ -z "${NPM_CONFIG_REGISTRY:-}" ] || build_args+=(--build-arg NPM_CONFIG_REGISTRY)
if ! docker build "${build_args[@]}" -t "$IMAGE" "$HERE" >"$tmp/build.log" 2>&1; then
	tail -n 40 "$tmp/build.log" >&2
	die "docker build failed"
fi
grep -o 'agents.sh: npm registry unreachable.*' "$tmp/build.log" | head -n 1 | sed 's/^/==> /' >&2 || true
label_agents
drop_old "$old_image" "$IMAGE"
drop_old "$old_rootfs" "$ROOTFS_IMAGE"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "built $IMAGE on $base: $((size / 1000000)) MB in $((SECONDS - started))s; agents: ${AGENTS:-none}${AGENTS_MISSING:+ (missing: $AGENTS_MISSING; see images/README.md)}"
