#!/usr/bin/env bash
# build.sh builds sandboxd/testkit:latest, the tiny sandbox image the tests use.
# It needs no registry: the image is FROM scratch and holds static busybox and
# bash from this host's Debian packages plus static Go programs built from this
# repository. Runnable from any directory; quiet on success but for one line.
# The image is labelled sandboxd.image=testkit and sandboxd.agents=opencode,claude
# (the fake agent CLIs) by its Dockerfile.
#
# Usage: images/testkit/build.sh
# Needs: docker, go, busybox-static, bash-static (images/prereqs.sh testkit installs
# the packages as root, or names them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$HERE/../prereqs.sh" testkit
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=sandboxd/testkit:latest

# name=package dir, built into /usr/local/bin/<name>. devserver is required;
# each of the others is built once its folder has Go files.
PROGRAMS=(
	devserver=images/testkit/devserver
	sandbox-init=cmd/sandbox-init
	opencode=images/testkit/fakeagent/opencode
	claude=images/testkit/fakeagent/claude
	fetch=images/testkit/fetch
)

die() { printf 'images/testkit/build.sh: %s\n' "$*" >&2; exit 1; }

# static_bin prints the first of its arguments that is a statically linked
# executable. ldd exits non-zero on a static binary ("not a dynamic executable").
static_bin() {
	local f
	for f in "$@"; do
		if [ -x "$f" ] && ! ldd "$f" >/dev/null 2>&1; then
			echo "$f"
			return 0
		fi
	done
	return 1
}

# has_go_files DIR: DIR holds a Go file that is not a test.
has_go_files() {
	local f
	for f in "$1"/*.go; do
		case $f in *_test.go) continue ;; esac
		[ -f "$f" ] && return 0
	done
	return 1
}

command -v docker >/dev/null 2>&1 || die "docker not found; install it with: apt-get install -y docker.io"
command -v go >/dev/null 2>&1 || die "go not found; install the Go version go.mod names and put it on PATH"
command -v ldd >/dev/null 2>&1 || die "ldd not found; install it with: apt-get install -y libc-bin"
busybox=$(static_bin /bin/busybox /usr/bin/busybox "$(command -v busybox || true)") ||
	die "no static busybox; install it with: apt-get install -y busybox-static"
bash_static=$(static_bin /usr/bin/bash-static /bin/bash-static "$(command -v bash-static || true)") ||
	die "no static bash; install it with: apt-get install -y bash-static"

ctx=$(mktemp -d "${TMPDIR:-/tmp}/sandboxd-testkit.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
rootfs="$ctx/rootfs"
mkdir -p "$rootfs"/{bin,etc,root,tmp,usr/bin,usr/local/bin,home/sandbox}
ln -s sandbox "$rootfs/home/user" # E2B's home (admin/e2b), as in the base image
cp "$busybox" "$rootfs/bin/busybox"
cp "$bash_static" "$rootfs/bin/bash"
cat >"$rootfs/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/bash
	sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/bash
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<-'EOF'
	root:x:0:
	sandbox:x:1000:
	nogroup:x:65534:
EOF

pkgs=() names=()
for p in "${PROGRAMS[@]}"; do
	name=${p%%=*} dir=${p#*=}
	if has_go_files "$ROOT/$dir"; then
		pkgs+=("./$dir") names+=("$name")
	elif [ "$name" = devserver ]; then
		die "$dir has no Go files"
	fi
done
# The binaries run in the daemon's architecture, whatever this host's is.
arch=$(docker version -f '{{.Server.Arch}}' 2>/dev/null) || die "cannot reach the Docker daemon"
for i in "${!pkgs[@]}"; do
	(cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH="$arch" \
		go build -trimpath -ldflags '-s -w' -o "$rootfs/usr/local/bin/${names[$i]}" "${pkgs[$i]}") ||
		die "go build ${pkgs[$i]} failed"
done

cp "$HERE/Dockerfile" "$ctx/Dockerfile"
old=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if ! docker build -q -t "$IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
	cat "$ctx/build.log" >&2
	die "docker build failed"
fi
# Remove the image this build replaced (that id only; it stays while in use).
if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
	docker rmi "$old" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "built $IMAGE ($((size / 1000000)) MB): busybox, bash, ${names[*]}"
