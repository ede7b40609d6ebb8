#!/usr/bin/env bash
# scale.sh: does the cost of a token stay flat as the platform grows and its admins work?
#
# For each store (SQLite, and PostgreSQL through scripts/pg.sh) and each size (S: 100 orgs, 300 scopes,
# 1,000 access rows, 300 clients; L: 20,000 orgs, 5,000 scopes, 200,000 access rows, 20,000
# delegations, 30,000 clients, one org with 5,000 of them), it seeds a fresh store with
# `portvakt-bench seed` (through the store's own code, plus SCALE_TOKENS issued-token rows), starts
# `portvakt serve --dev` on it, and measures:
#   - start-up (to /readyz) and resident memory when idle;
#   - tokens/s with nobody changing anything, and with one self-service change a second
#     (portvakt-bench --churn 1s: a provider grants or removes one org's access), the p99, and the
#     first token after each change; resident memory at the peak of the load;
#   - GET /api/v1/scopes/all, GET /api/v1/clients of the org with the most clients, and
#     GET /api/v1/audit of an org with 17 of the tokens: bytes and time;
#   - at L: tokens/s while the purge clears a backlog of SCALE_PURGE_BACKLOG expired rows, against
#     tokens/s without one.
# Tokens/s are printed with their ratio to the crypto bound sampled between the rounds of the same
# run (see portvakt-bench): a shared machine's speed drifts by a fifth within seconds, so compare
# runs by their ratios. It prints one table at the end. Everything it starts is stopped on exit; it
# talks to loopback only.
#
#   SCALE_SIZES          sizes to run (default "S L")
#   SCALE_DRIVERS        stores (default "sqlite postgres"; postgres needs scripts/pg.sh)
#   SCALE_DURATION       load per bench run (default 15s)
#   SCALE_TOKENS         issued-token rows seeded at L (default 1000000; S gets 20000)
#   SCALE_PURGE_BACKLOG  expired rows for the purge run at L (default 1000000; 0 skips it)
#   SCALE_CONCURRENCY    connections (default 16)
#   SCALE_KEEP           1 keeps the work folder (bench outputs, server logs) and prints its path
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sizes=${SCALE_SIZES:-S L}
drivers=${SCALE_DRIVERS:-sqlite postgres}
duration=${SCALE_DURATION:-15s}
ltokens=${SCALE_TOKENS:-1000000}
backlog=${SCALE_PURGE_BACKLOG:-1000000}
concurrency=${SCALE_CONCURRENCY:-16}
work=$(mktemp -d "${TMPDIR:-/tmp}/portvakt-scale.XXXXXX")
server_pid=""
pg_started=0
rows=()

cleanup() {
	stop_server
	if [[ $pg_started == 1 ]]; then "$repo/scripts/pg.sh" stop || true; fi
	if [[ ${SCALE_KEEP:-0} == 1 ]]; then
		echo "scale.sh: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "scale.sh: $*" >&2; }

# shellcheck source=scripts/ports.sh
source "$repo/scripts/ports.sh"

now_ms() { date +%s%3N; }

rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

# field NAME SUMMARY: the value of NAME=... in a portvakt-bench summary line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

stop_server() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	server_pid=""
}

# start_server DIR [ENV=value ...]: a --dev server on DIR's store; sets port, ops, startup_ms.
start_server() {
	local dir=$1
	shift
	port=$(free_port)
	ops=$(free_port)
	local t0
	t0=$(now_ms)
	(cd "$dir" && exec env "$@" PORTVAKT_LISTEN="127.0.0.1:$port" PORTVAKT_OPS_LISTEN="127.0.0.1:$ops" \
		PORTVAKT_DATA_DIR="$dir/dev" PORTVAKT_LOG_FORMAT=json "$work/portvakt" serve --dev >>"$dir/server.log" 2>&1) &
	server_pid=$!
	for _ in $(seq 1200); do
		if curl -fsS -o /dev/null "http://127.0.0.1:$ops/readyz" 2>/dev/null; then
			startup_ms=$(($(now_ms) - t0))
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	say "the server did not become ready; its log:"
	tail -n 20 "$dir/server.log" >&2
	return 1
}

# bench LABEL DIR [FLAGS...]: one portvakt-bench run against the running server; prints its summary.
bench() {
	local label=$1 dir=$2 out rc=0
	shift 2
	out=$("$work/portvakt-bench" --issuer "http://127.0.0.1:$port/" --dev-dir "$dir/dev" --wait 60s \
		--duration "$duration" --concurrency "$concurrency" --server-pid "$server_pid" --driver "$label" "$@" 2>&1) || rc=$?
	echo "$out" >"$dir/bench-$label.txt"
	if [[ $rc != 0 ]]; then
		say "$label: portvakt-bench failed ($rc):"
		tail -n 5 <<<"$out" >&2
	fi
	grep '^summary:' <<<"$out" || echo "summary: driver=$label failed=1"
}

# token CLIENT SCOPE: an access token of a seeded admin client.
token() {
	local a
	a=$("$work/portvakt" token --issuer "http://127.0.0.1:$port/" --client-id "$1" --key "$dir/seed-admin.key.pem" \
		--kid seed-admin --scope "$2" --assertion)
	curl -fsS "http://127.0.0.1:$port/token" -d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer -d "assertion=$a" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# timed URL [TOKEN]: "BYTES B, MS ms, HTTP CODE" of one GET.
timed() {
	local auth=()
	[[ -n ${2:-} ]] && auth=(-H "Authorization: Bearer $2")
	curl -sS -o /dev/null "${auth[@]}" -w '%{size_download} %{time_total} %{http_code}' "$1" |
		awk '{printf "%d B, %.0f ms, HTTP %s", $1, $2*1000, $3}'
}

say "building portvakt and portvakt-bench"
(cd "$repo" && CGO_ENABLED=0 go build -ldflags "$(scripts/build.sh --ldflags)" -o "$work/portvakt" ./cmd/portvakt && CGO_ENABLED=0 go build -o "$work/portvakt-bench" ./cmd/portvakt-bench)

pg_dsn=""
if [[ " $drivers " == *" postgres "* ]]; then
	[[ -f "$repo/.pgtest/dsn" ]] || pg_started=1
	"$repo/scripts/pg.sh" start
	pg_dsn=$(cat "$repo/.pgtest/dsn")
fi

# dsn_for DRIVER NAME DIR: a fresh store for one run.
dsn_for() {
	case $1 in
	sqlite) echo "$3/dev/portvakt.db" ;;
	postgres)
		psql -q "$pg_dsn" -c "DROP DATABASE IF EXISTS scale_$2" -c "CREATE DATABASE scale_$2" >/dev/null
		sed "s#/portvakt_test?#/scale_$2?#" <<<"$pg_dsn"
		;;
	esac
}

for driver in $drivers; do
	for size in $sizes; do
		label="$driver-$size"
		dir="$work/$label"
		mkdir -p "$dir/dev"
		dsn=$(dsn_for "$driver" "$(tr 'A-Z' 'a-z' <<<"$size")" "$dir")
		env=(PORTVAKT_DATABASE_DRIVER="$driver" PORTVAKT_DATABASE_DSN="$dsn")
		tokens=20000
		[[ $size == L ]] && tokens=$ltokens
		# A first start on the empty store makes the dev PKI and the schema,
		# so that the measured start-up is the store's alone.
		start_server "$dir" "${env[@]}"
		stop_server
		say "$label: seeding ($tokens issued tokens)"
		"$work/portvakt-bench" seed --size "$size" --driver "$driver" --dsn "$dsn" --tokens "$tokens" --key-dir "$dir" | tee "$dir/seed.txt" >&2
		big=$(sed -n 's/^admin client of [0-9]*: \([^ ]*\).*/\1/p' "$dir/seed.txt" | sed -n 1p)
		few=$(sed -n 's/^admin client of [0-9]*: \([^ ]*\).*/\1/p' "$dir/seed.txt" | sed -n 2p)

		# After a bulk load an operator vacuums and analyzes; so do we, so
		# that PostgreSQL's autovacuum does not run during the measurement.
		[[ $driver == postgres ]] && psql -q "$dsn" -c "VACUUM ANALYZE" >/dev/null
		# The purge has a run of its own below: keep it out of these.
		start_server "$dir" "${env[@]}" PORTVAKT_AUDIT_PURGE_INTERVAL=24h
		sleep 1
		idle=$(rss_mib "$server_pid")
		say "$label: ready in ${startup_ms} ms, RSS ${idle} MiB; load without changes"
		quiet=$(bench "$label" "$dir")
		say "$label: load with one change a second"
		churned=$(bench "$label+churn" "$dir" --churn 1s)
		all=$(timed "http://127.0.0.1:$port/api/v1/scopes/all")
		clients=$(timed "http://127.0.0.1:$port/api/v1/clients" "$(token "$big" portvakt:clients.read)")
		audit=$(timed "http://127.0.0.1:$port/api/v1/audit" "$(token "$few" portvakt:audit.read)")
		stop_server

		rows+=("$label|$(field tokens_per_s "$quiet") (ratio $(field ratio "$quiet"), p99 $(field p99_ms "$quiet") ms)|$(field tokens_per_s "$churned") (ratio $(field ratio "$churned"), p99 $(field p99_ms "$churned") ms)|$(field first_token_p50_ms "$churned") ms (p99 $(field first_token_p99_ms "$churned") ms; all tokens p50 $(field p50_ms "$churned") ms)|$idle / $(field rss_mib "$churned") MiB|${startup_ms} ms|$all|$clients|$audit")

		if [[ $size == L && $backlog != 0 ]]; then
			say "$label: seeding a purge backlog of $backlog expired rows"
			"$work/portvakt-bench" seed --size "$size" --driver "$driver" --dsn "$dsn" --only-tokens --expired "$backlog" >&2
			start_server "$dir" "${env[@]}" PORTVAKT_AUDIT_PURGE_INTERVAL=1s
			say "$label: load while the purge runs"
			purging=$(bench "$label+purge" "$dir")
			stop_server
			rows+=("$label purge of $backlog rows|$(field tokens_per_s "$purging") (ratio $(field ratio "$purging"), p99 $(field p99_ms "$purging") ms): $(awk -v a="$(field ratio "$purging")" -v b="$(field ratio "$quiet")" 'BEGIN {printf "%.0f%%", 100*a/b}') of the run without, by ratio||||||||")
		fi
	done
done

echo
echo "| run | tokens/s, nobody changing anything | tokens/s, one change a second | first token after a change (p50) | RSS idle / under load with changes | start-up | GET /scopes/all | GET /clients (the org with most clients) | GET /audit (an org with 17 tokens) |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
	echo "| ${r//|/ | } |"
done
