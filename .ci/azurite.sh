#!/usr/bin/env bash
# azurite.sh — run a local Azurite blob service for ccmirror's transport/blob tests.
#
#   .ci/azurite.sh start DIR   install Azurite (once) into .tools/azurite, start azurite-blob
#                              on a free loopback port with its data under DIR, wait until it
#                              answers, write DIR/port and DIR/pid, and print
#                              AZURITE_BLOB_URL=http://127.0.0.1:PORT/devstoreaccount1
#                              (when one is already running for DIR, it only prints its URL)
#   .ci/azurite.sh stop DIR    stop the Azurite started with that DIR
#   .ci/azurite.sh install     only install Azurite
#
# Exit status 3 means Azurite cannot be installed here (no node/npm or no registry).
# Azurite's log goes to DIR/azurite.log. Account devstoreaccount1, key
# Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
set -euo pipefail

AZURITE_VERSION=3.37.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${CCMIRROR_AZURITE_PREFIX:-$ROOT/.tools/azurite}
BIN=$PREFIX/node_modules/.bin/azurite-blob

die() { echo "azurite.sh: $*" >&2; exit 1; }
# cannot_install exits 3: Azurite cannot be installed here (no node/npm, no registry).
# Tests skip on that status and fail on any other.
cannot_install() { echo "azurite.sh: $*" >&2; exit 3; }

installed_version() {
	local pj=$PREFIX/node_modules/azurite/package.json
	[ -x "$BIN" ] && [ -f "$pj" ] || return 1
	node -e 'process.stdout.write(require(process.argv[1]).version)' "$pj" 2>/dev/null
}

install() {
	command -v node >/dev/null 2>&1 || cannot_install "node is not installed (needed to run Azurite)"
	command -v npm >/dev/null 2>&1 || cannot_install "npm is not installed (needed to install Azurite)"
	mkdir -p "$PREFIX"
	# Serialise concurrent installs (parallel test binaries, make -j).
	exec 9>"$PREFIX/.install.lock"
	if command -v flock >/dev/null 2>&1; then
		flock 9
	fi
	if [ "$(installed_version || true)" = "$AZURITE_VERSION" ]; then
		exec 9>&-
		return 0
	fi
	echo "azurite.sh: installing azurite@$AZURITE_VERSION into $PREFIX" >&2
	if ! npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
		"azurite@$AZURITE_VERSION" >"$PREFIX/npm-install.log" 2>&1; then
		tail -n 20 "$PREFIX/npm-install.log" >&2 || true
		cannot_install "npm install azurite@$AZURITE_VERSION failed (log: $PREFIX/npm-install.log)"
	fi
	[ -x "$BIN" ] || cannot_install "azurite-blob missing after install in $PREFIX"
	# Release the install lock: a server started later must not inherit it,
	# or every other start would wait on it for as long as that server runs.
	exec 9>&-
}

free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
	else
		node -e 'const s=require("net").createServer(); s.listen(0,"127.0.0.1",()=>{console.log(s.address().port); s.close()})'
	fi
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	local dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/pid" ] && [ -f "$dir/port" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null &&
		port_open "$(cat "$dir/port")"; then
		# Already running for this DIR: report it again.
		echo "AZURITE_BLOB_URL=http://127.0.0.1:$(cat "$dir/port")/devstoreaccount1"
		return 0
	fi
	install
	local attempt port pid
	for attempt in 1 2 3; do
		port=$(free_port)
		# setsid + all descriptors redirected: the server outlives this script and holds
		# no pipe of whoever ran it (make's $(shell), go test's exec).
		setsid "$BIN" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir" \
			--skipApiVersionCheck --disableTelemetry --loose \
			</dev/null >>"$dir/azurite.log" 2>&1 &
		pid=$!
		local i
		for i in $(seq 1 150); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if port_open "$port"; then
				echo "$port" >"$dir/port"
				echo "$pid" >"$dir/pid"
				echo "AZURITE_BLOB_URL=http://127.0.0.1:$port/devstoreaccount1"
				return 0
			fi
			sleep 0.2
		done
		kill "$pid" 2>/dev/null || true
		echo "azurite.sh: Azurite did not come up on port $port (attempt $attempt)" >&2
	done
	tail -n 20 "$dir/azurite.log" >&2 || true
	die "could not start Azurite (log: $dir/azurite.log)"
}

stop() {
	local dir=$1
	[ -f "$dir/pid" ] || return 0
	local pid
	pid=$(cat "$dir/pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		local i
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid" "$dir/port"
}

case "${1:-}" in
start)
	[ $# -eq 2 ] || die "usage: $0 start DIR"
	start "$2"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop DIR"
	stop "$2"
	;;
install)
	install
	;;
*)
	die "usage: $0 start DIR | stop DIR | install"
	;;
esac
