#!/usr/bin/env bash
# build.sh: build portvakt stamped with its version, commit and build date,
# which `portvakt version` prints.
#
#   scripts/build.sh              static binary in ./bin/portvakt
#   scripts/build.sh -o PATH      static binary at PATH
#   scripts/build.sh --docker     the container image portvakt:VERSION (and :latest)
#   scripts/build.sh --ldflags    print only the -ldflags value (bench.sh and scale.sh use it)
#
# VERSION is the nearest v* tag (git describe, "-dirty" with uncommitted
# changes), or "devel" without one; PORTVAKT_VERSION overrides it. The build
# date honours SOURCE_DATE_EPOCH for reproducible builds.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

version=${PORTVAKT_VERSION:-$(git -C "$repo" describe --tags --match 'v*' --dirty 2>/dev/null || echo devel)}
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)
if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
	date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
else
	date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
fi
ldflags="-X main.version=$version -X main.commit=$commit -X main.date=$date"

case ${1:-} in
--ldflags)
	echo "$ldflags"
	;;
--docker)
	docker build --build-arg "VERSION=$version" --build-arg "COMMIT=$commit" --build-arg "DATE=$date" \
		-t "portvakt:$version" -t portvakt:latest "$repo"
	;;
-o | "")
	out=${2:-$repo/bin/portvakt}
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out" ./cmd/portvakt)
	echo "$out: $("$out" version)"
	;;
*)
	echo "usage: scripts/build.sh [-o PATH | --docker | --ldflags]" >&2
	exit 2
	;;
esac
