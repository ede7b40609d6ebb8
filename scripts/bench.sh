#!/usr/bin/env bash
# bench.sh: measure the token endpoint over real HTTP on this machine.
#
# Builds portvakt and portvakt-bench, starts `portvakt serve --dev` (SQLite) in a temporary data
# directory on a free loopback port, runs portvakt-bench against it for BENCH_DURATION, and, when
# PostgreSQL is available (scripts/pg.sh), does the same with the dev server on PostgreSQL, then
# runs the same load against the reference token endpoint (portvakt-bench --reference), without and
# with a store. Prints one `summary:` line per run at the end. Everything it starts is stopped on exit.
#
#   BENCH_DURATION     load per run, split into rounds of about 3 s (default 20s, at most 100s)
#   BENCH_CONCURRENCY  concurrent keep-alive connections (default 16: under load the store holds
#                      each batch of issued-token rows up to 4 ms while their requests sign, so
#                      8 connections on 2 cores left the cores idle part of the time)
#   BENCH_PG           0 skips the PostgreSQL run (default: run it when scripts/pg.sh exists)
#   BENCH_REFERENCE    0 skips the reference runs (default: run them): portvakt-bench --reference, a
#                      token endpoint that does only the grant's crypto over net/http, the most an
#                      HTTP server reaches here with this tool; then the same endpoint with the
#                      replay check, the store's atomic issued-token insert, on SQLite and (when
#                      the PostgreSQL run ran) on PostgreSQL (--reference-store): the most a token
#                      endpoint that keeps its assertions single-use reaches here with that store
#   BENCH_ARGS         extra portvakt-bench flags
#
# The server and the load tool share this machine's cores; see `go doc ./cmd/portvakt-bench` for
# how the crypto bound and the ratio are made fair (the bound is sampled between the rounds, so the
# machine's drift hits both alike). Run it on a quiet machine: the tool warns when other processes
# took CPU during the load or the bound's samples spread by more than 15 %.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
duration=${BENCH_DURATION:-20s}
concurrency=${BENCH_CONCURRENCY:-16}
work=$(mktemp -d "${TMPDIR:-/tmp}/portvakt-bench.XXXXXX")
server_pid=""
pg_started=0
summaries=()

cleanup() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	if [[ $pg_started == 1 ]]; then
		"$repo/scripts/pg.sh" stop || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

# seconds turns a Go duration like 20s, 1m or 90 into seconds (for the timeout).
seconds() {
	local d=$1
	case $d in
	*ms) echo 1 ;;
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" | cut -d. -f1 ;;
	*) echo "$d" ;;
	esac
}

echo "bench.sh: building portvakt and portvakt-bench" >&2
(cd "$repo" && CGO_ENABLED=0 go build -ldflags "$(scripts/build.sh --ldflags)" -o "$work/portvakt" ./cmd/portvakt && CGO_ENABLED=0 go build -o "$work/portvakt-bench" ./cmd/portvakt-bench)

# run_one LABEL [ENV=value ...]: a fresh --dev server with the given environment, one bench run.
run_one() {
	local label=$1
	shift
	local port ops dir log
	port=$(free_port)
	ops=$(free_port)
	dir="$work/$label"
	mkdir -p "$dir"
	log="$dir/server.log"
	(cd "$dir" && exec env "$@" PORTVAKT_LISTEN="127.0.0.1:$port" PORTVAKT_OPS_LISTEN="127.0.0.1:$ops" \
		PORTVAKT_DATA_DIR="$dir/dev" PORTVAKT_LOG_FORMAT=json "$work/portvakt" serve --dev >"$log" 2>&1) &
	server_pid=$!
	echo "bench.sh: $label: server pid $server_pid on 127.0.0.1:$port" >&2
	local limit out rc=0
	limit=$(($(seconds "$duration") * 3 + 120))
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
	out=$(timeout "$limit" "$work/portvakt-bench" --issuer "http://127.0.0.1:$port/" --dev-dir "$dir/dev" \
		--wait 60s --duration "$duration" --concurrency "$concurrency" --server-pid "$server_pid" \
		--driver "$label" ${BENCH_ARGS:-}) || rc=$?
	echo "$out"
	if [[ $rc != 0 ]]; then
		echo "bench.sh: $label: portvakt-bench failed ($rc); server log:" >&2
		tail -n 30 "$log" >&2
	fi
	summaries+=("$(grep '^summary:' <<<"$out" || echo "summary: driver=$label failed rc=$rc")")
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
	return 0
}

run_one sqlite

if [[ ${BENCH_PG:-1} != 0 && -x "$repo/scripts/pg.sh" ]]; then
	[[ -f "$repo/.pgtest/dsn" ]] || pg_started=1
	if "$repo/scripts/pg.sh" start; then
		dsn=$(cat "$repo/.pgtest/dsn")
		run_one postgres PORTVAKT_DATABASE_DRIVER=postgres PORTVAKT_DATABASE_DSN="$dsn"
	else
		echo "bench.sh: PostgreSQL not available; skipping that run" >&2
		pg_started=0
	fi
fi

# run_reference LABEL [STORE [ENV=value ...]]: one bench run against the reference endpoint.
run_reference() {
	local label=$1 store=${2:-} out rc=0
	shift $(($# < 2 ? $# : 2))
	echo "bench.sh: $label: portvakt-bench --reference${store:+ --reference-store $store}" >&2
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
	out=$(env "$@" timeout $(($(seconds "$duration") * 3 + 120)) "$work/portvakt-bench" --reference \
		${store:+--reference-store "$store"} --duration "$duration" --concurrency "$concurrency" ${BENCH_ARGS:-}) || rc=$?
	echo "$out"
	summaries+=("$(grep '^summary:' <<<"$out" || echo "summary: driver=$label failed rc=$rc")")
}

if [[ ${BENCH_REFERENCE:-1} != 0 ]]; then
	run_reference reference
	run_reference reference+sqlite sqlite
	if [[ -n ${dsn:-} ]]; then
		run_reference reference+postgres postgres PORTVAKT_DATABASE_DSN="$dsn"
	fi
fi

echo
printf '%s\n' "${summaries[@]}"
