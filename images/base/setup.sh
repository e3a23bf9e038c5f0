#!/bin/sh
# setup.sh turns a Debian trixie root filesystem into the sandboxd base image.
# It runs as root during `docker build` (see Dockerfile) and is idempotent:
# packages that are already installed are not touched, so on the rootfs that
# images/base/build.sh makes with debootstrap it never calls apt at all (that
# build has no network path to a registry and needs none to the mirror here).
set -eu

# Keep in sync with PACKAGES in build.sh (the debootstrap --include list).
PACKAGES="bash coreutils git curl ca-certificates nodejs npm python3 procps"

SANDBOX_USER=sandbox
SANDBOX_UID=1000
SANDBOX_HOME=/home/sandbox

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=""
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	apt-get install -y -qq --no-install-recommends $missing
else
	echo "setup.sh: all packages present, apt not needed"
fi

# The sandbox user: uid/gid 1000, home /home/sandbox, shell /bin/bash.
# A base image may already own uid/gid 1000 under another name (the node
# images call it "node"): rename it instead of failing, so the uid the
# workspaces are owned by stays 1000.
if ! getent group "$SANDBOX_USER" >/dev/null; then
	if other=$(getent group "$SANDBOX_UID" | cut -d: -f1) && [ -n "$other" ]; then
		groupmod -n "$SANDBOX_USER" "$other"
	else
		groupadd -g "$SANDBOX_UID" "$SANDBOX_USER"
	fi
fi
if ! getent passwd "$SANDBOX_USER" >/dev/null; then
	if other=$(getent passwd "$SANDBOX_UID" | cut -d: -f1) && [ -n "$other" ]; then
		usermod -l "$SANDBOX_USER" "$other"
		# Move the old home over (its dotfiles) unless the new one exists.
		[ -e "$SANDBOX_HOME" ] || usermod -d "$SANDBOX_HOME" -m "$SANDBOX_USER"
	else
		useradd -u "$SANDBOX_UID" -g "$SANDBOX_UID" -M -d "$SANDBOX_HOME" -s /bin/bash "$SANDBOX_USER"
	fi
fi
usermod -u "$SANDBOX_UID" -g "$SANDBOX_UID" -d "$SANDBOX_HOME" -s /bin/bash "$SANDBOX_USER"
mkdir -p "$SANDBOX_HOME/workspace/app"
chown -R "$SANDBOX_UID:$SANDBOX_UID" "$SANDBOX_HOME"
chmod 755 "$SANDBOX_HOME"
# E2B's programs name their home /home/user (sandboxd's E2B API, admin/e2b): let the
# path lead to the sandbox home, unless the base image has a /home/user of its own.
[ -e /home/user ] || ln -s "$SANDBOX_HOME" /home/user

# The agent CLIs and pnpm come next, from agents.sh in their own build step,
# so that step can run again (a registry came back) without this one.

# Leave no package indexes or caches in the image.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/lib/dpkg/*-old
