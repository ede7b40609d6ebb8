#!/usr/bin/env bash
# test.sh: every test portvakt has, against real SQLite and a real, throwaway
# PostgreSQL (scripts/pg.sh installs it from Debian's packages when missing,
# and runs it on loopback only). This is what CI runs.
#
#   ./scripts/test.sh            all tests
#   ./scripts/test.sh ./internal/store/...   only those packages
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)

echo "== go vet"
go vet ./...

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [[ -n "$bad" ]]; then
	echo "gofmt would change:" >&2
	echo "$bad" >&2
	exit 1
fi

echo "== import rules"
scripts/imports.sh

echo "== templ (the generated console components match their .templ files)"
go tool templ generate -path internal/console >/dev/null 2>&1
if [[ -n "$(git status --porcelain -- internal/console)" ]]; then
	echo "go tool templ generate changed internal/console: commit what it generates" >&2
	git status --short -- internal/console >&2
	exit 1
fi

echo "== static build (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -ldflags "$(scripts/build.sh --ldflags)" -o /dev/null ./cmd/...

echo "== chromium (the console's browser tests)"
scripts/chromium.sh >/dev/null

echo "== PostgreSQL"
scripts/pg.sh start
trap 'scripts/pg.sh stop' EXIT
eval "$(scripts/pg.sh env)"
export PORTVAKT_TEST_POSTGRES_DSN

echo "== go test"
go test -count=1 -timeout 20m "${pkgs[@]}"

echo "== go test -race (concurrency-critical packages)"
go test -count=1 -race -timeout 15m ./internal/store/... ./internal/rules/... ./internal/tokenendpoint/... ./internal/entcert/... ./internal/events/... ./internal/manage/... ./pkg/dpop/...

scripts/deploy-check.sh
