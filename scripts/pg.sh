#!/usr/bin/env bash
# pg.sh: a throwaway PostgreSQL server for portvakt's tests.
#
#   scripts/pg.sh start   initdb a cluster under .pgtest/, start it on 127.0.0.1 (a free port from
#                         55432), create the database portvakt_test and write its DSN to .pgtest/dsn.
#                         Installs Debian's postgresql package first when initdb/pg_ctl are missing.
#   scripts/pg.sh env     print: export PORTVAKT_TEST_POSTGRES_DSN=...   (eval "$(scripts/pg.sh env)")
#   scripts/pg.sh stop    stop the server and remove its directory.
#
# Idempotent and quiet on success. The cluster trusts every local connection, does not fsync and
# listens on loopback only: it is for tests, never for data you want to keep.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$repo/.pgtest"
dbname=portvakt_test

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

# find_bindir prints the directory holding initdb, pg_ctl, postgres and psql.
find_bindir() {
	local c
	if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		# /usr/local/bin may hold symlinks: the real directory has psql too.
		dirname "$(readlink -f "$(command -v pg_ctl)")"
		return 0
	fi
	for c in /usr/local/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [[ -x "$c/pg_ctl" && -x "$c/initdb" ]]; then
			dirname "$(readlink -f "$c/pg_ctl")"
			return 0
		fi
	done
	return 1
}

install_postgres() {
	"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" postgresql || die "initdb/pg_ctl not found, and installing PostgreSQL failed"
}

# as_owner runs a command as the cluster's owner: postgres refuses to run as root.
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

ensure_user() {
	[[ $(id -u) -eq 0 ]] || return 0
	id postgres >/dev/null 2>&1 && return 0
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres ||
		die "cannot create the postgres system user"
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
	local p
	for p in $(seq 55432 55531); do
		if port_free "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port in 55432-55531"
}

# running succeeds when the recorded cluster answers.
running() {
	[[ -f "$state/dir" ]] || return 1
	local dir
	dir=$(cat "$state/dir")
	[[ -d "$dir/data" ]] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

psql_cmd() {
	local port
	port=$(cat "$state/port")
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

ensure_database() {
	local port
	port=$(cat "$state/port")
	if [[ -z $(psql_cmd -tAc "SELECT 1 FROM pg_database WHERE datname = '$dbname'") ]]; then
		psql_cmd -c "CREATE DATABASE $dbname" >/dev/null || die "cannot create database $dbname"
	fi
	echo "postgres://postgres@127.0.0.1:$port/$dbname?sslmode=disable" >"$state/dsn"
}

cmd_start() {
	bindir=$(find_bindir) || {
		install_postgres
		bindir=$(find_bindir) || die "postgresql installed but initdb/pg_ctl still not found"
	}
	[[ -x "$bindir/psql" ]] || die "psql not found next to $bindir/pg_ctl"
	if running; then
		ensure_database
		return 0
	fi
	# A leftover from a crash or a reboot: start over.
	cmd_stop
	ensure_user
	mkdir -p "$state"
	local dir port log
	dir=$(mktemp -d "$state/cluster.XXXXXX")
	port=$(free_port)
	log="$dir/server.log"
	echo "$dir" >"$state/dir"
	echo "$port" >"$state/port"
	mkdir -p "$dir/sock"
	[[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
	chmod 700 "$dir"
	if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi
	local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off"
	opts+=" -c full_page_writes=off -c max_connections=300"
	if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$log" -o "$opts" -w -t 60 start >/dev/null 2>&1; then
		cat "$log" >&2 2>/dev/null || true
		die "the server did not start (log above)"
	fi
	ensure_database
}

cmd_stop() {
	[[ -n ${bindir:-} ]] || bindir=$(find_bindir) || true
	if [[ -f "$state/dir" ]]; then
		local dir
		dir=$(cat "$state/dir")
		if [[ -d "$dir/data" && -n ${bindir:-} ]]; then
			as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
		fi
		case "$dir" in
		"$state"/cluster.*) rm -rf "$dir" ;;
		esac
	fi
	rm -f "$state/dir" "$state/port" "$state/dsn"
	rmdir "$state" 2>/dev/null || true
}

cmd_env() {
	[[ -f "$state/dsn" ]] || die "no server: run scripts/pg.sh start"
	printf "export PORTVAKT_TEST_POSTGRES_DSN='%s'\n" "$(cat "$state/dsn")"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
