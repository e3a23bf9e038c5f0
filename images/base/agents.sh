#!/bin/sh
# agents.sh installs the coding agents' CLIs and pnpm into /usr/local with npm,
# at the versions pinned in agents.env, and records which agents the image has
# in /etc/sandboxd/agents.json. It runs as root during `docker build` (see
# Dockerfile), after setup.sh.
#
# Without an npm registry the image is still built, without the agents: the
# registry is asked once with a short timeout (npm ping, no retries) so the
# build never hangs on it, and agents.json says installed: false. build.sh
# reads that file and labels the image sandboxd.agents / sandboxd.agents.missing.
# When the registry answers, an install that fails fails the build: a pin
# that does not exist must not pass as an image without agents.
# Idempotent: a package already installed at its pinned version is kept.
# NPM_CONFIG_REGISTRY (a build argument) points npm at a mirror.
set -eu

LIB=/usr/local/lib/sandboxd
STATE=/etc/sandboxd/agents.json
# shellcheck source-path=SCRIPTDIR source=agents.env
. "$LIB/agents.env"

# name package version: the agents, in the order of agents.json.
AGENTS="opencode opencode-ai $OPENCODE_VERSION
claude @anthropic-ai/claude-code $CLAUDE_CODE_VERSION"

# An empty build argument is not a registry.
[ -n "${NPM_CONFIG_REGISTRY:-}" ] || unset NPM_CONFIG_REGISTRY
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
cache=$(mktemp -d)
trap 'rm -rf "$cache" /root/.npm' EXIT

# has PACKAGE VERSION: the package is installed globally at that version.
has() {
	grep -q "\"version\": *\"$2\"" "/usr/local/lib/node_modules/$1/package.json" 2>/dev/null
}

reachable=
ping_log="$cache/ping.log"
# A refused or unresolvable registry fails at once; a silent one in 10 s.
if timeout 30 npm ping --fetch-timeout=10000 --fetch-retries=0 --cache="$cache" >"$ping_log" 2>&1; then
	reachable=1
else
	echo "agents.sh: npm registry unreachable ($(grep -m1 -i 'err' "$ping_log" | cut -c1-160)); building without what is missing"
fi

# get PACKAGE VERSION: true when the package is there afterwards.
get() {
	if has "$1" "$2"; then
		echo "agents.sh: $1@$2 already installed"
		return 0
	fi
	[ -n "$reachable" ] || return 1
	echo "agents.sh: npm install -g $1@$2"
	if ! timeout 900 npm install -g --prefix=/usr/local --omit=dev --cache="$cache" \
		--fetch-timeout=60000 --fetch-retries=2 --loglevel=error "$1@$2"; then
		echo "agents.sh: npm install -g $1@$2 failed although the registry answered" >&2
		exit 1
	fi
	has "$1" "$2"
}

mkdir -p "$(dirname "$STATE")"
json="{"
sep=""
while read -r name package version; do
	ok=false
	if get "$package" "$version" && [ -x "/usr/local/bin/$name" ]; then
		ok=true
	fi
	json="$json$sep
  \"$name\": {\"package\": \"$package\", \"version\": \"$version\", \"installed\": $ok}"
	sep=","
done <<AGENTS
$AGENTS
AGENTS
printf '%s\n}\n' "$json" >"$STATE"
chmod 644 "$STATE"

if get pnpm "$PNPM_VERSION"; then
	echo "agents.sh: pnpm $PNPM_VERSION installed"
else
	echo "agents.sh: pnpm $PNPM_VERSION not installed"
fi
echo "agents.sh: $STATE:"
cat "$STATE"
