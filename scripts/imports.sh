#!/usr/bin/env bash
# imports.sh: the import rules that keep portvakt's packages flowing one way
#
#   cmd -> http layer -> token exchange / self-service core -> access, entcert, rules, signer -> store
#
# checked with `go list` on the packages' own files (.Imports and .Deps, never
# .TestImports: a _test.go file may import what it likes). Prints every broken
# rule with the offending import and exits 1 when there is any.
#
#   ./scripts/imports.sh
#
# Go already forbids import cycles, so there is no rule for them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---------------------------------------------------------------------------
# The rules. Package patterns are written without the module path; a pattern
# ending in /... matches the package and everything below it (as in go list);
# a pattern outside cmd/, internal/, pkg/ and configs/ is a standard package.
#
#   imports  FROM  TO    no package in FROM imports a package in TO
#   depends  FROM  TO    no package in FROM depends on one in TO, directly or
#                        through others (the report names the direct import)
#   only     TO    FROM  a package in TO is imported only by packages in FROM
# ---------------------------------------------------------------------------
http='internal/selfservice internal/api internal/server internal/tokenendpoint internal/console'
core='internal/manage internal/exchange internal/access internal/entcert internal/rules internal/signer internal/records internal/store/...'
testsupport='internal/testpki internal/testserver internal/pgtest internal/interop internal/scaleout internal/store/conformance'

rules() {
	rule imports 'internal/... pkg/... configs' 'cmd/...' \
		"commands sit at the top: nothing imports them"
	rule imports 'pkg/...' 'internal/...' \
		"pkg/ is for other modules, which cannot import internal/"
	rule only 'internal/config' 'cmd/... internal/testserver' \
		"config is a leaf that only the commands (and the test server's set-up) read"
	rule depends 'cmd/portvakt' "$testsupport" \
		"test support stays out of the server binary"
	rule depends "$core" "$http" \
		"the core and the token exchange sit below the HTTP layer"
	rule imports 'internal/console' 'internal/selfservice' \
		"the console is a shell over the core, beside the JSON API, not on top of it"
	rule imports 'internal/manage' 'net/http' \
		"the self-service core has no HTTP in it: the handlers decode, call it and encode"
}

# Known breaks, one per line as "FROM -> TO  # TODO(#issue): when it goes".
# Each is a debt with a date: do not add one without an issue.
exceptions='
'

# ---------------------------------------------------------------------------

mod=$(go list -m)
# One listing, read before any rule: a package that does not load fails the
# check here (set -e) instead of hiding from it.
listing=$(go list -f '{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}' ./...)
declare -A imports deps
pkgs=()
while IFS='|' read -r pkg imp dep; do
	pkgs+=("$pkg")
	imports[$pkg]=$imp
	deps[$pkg]=$dep
done <<<"$listing"

# short drops the module path from a package path.
short() { echo "${1#"$mod"/}"; }

# matches PATH PATTERNS...: is the (full) package path matched by a pattern?
matches() {
	local path=$1 p full
	shift
	for p in "$@"; do
		case $p in
		cmd/* | internal/* | pkg/* | configs*) full="$mod/$p" ;;
		*) full=$p ;;
		esac
		if [[ $full == */... ]]; then
			[[ $path == "${full%/...}" || $path == "${full%/...}"/* ]] && return 0
		elif [[ $path == "$full" ]]; then
			return 0
		fi
	done
	return 1
}

declare -A used
excepted() {
	local edge="$(short "$1") -> $(short "$2")" line
	while IFS= read -r line; do
		line=${line%%#*}
		line=$(echo "$line" | xargs)
		if [[ -n $line && $line == "$edge" ]]; then
			used[$line]=1
			return 0
		fi
	done <<<"$exceptions"
	return 1
}

broken=0
report() {
	echo "imports: $1" >&2
	echo "         rule: $2" >&2
	broken=$((broken + 1))
}

rule() {
	local kind=$1 left=$2 right=$3 why=$4 p i d via
	# shellcheck disable=SC2086 # the pattern lists split on spaces
	case $kind in
	imports)
		for p in "${pkgs[@]}"; do
			matches "$p" $left || continue
			for i in ${imports[$p]}; do
				if matches "$i" $right && ! excepted "$p" "$i"; then
					report "$(short "$p") imports $(short "$i")" "$why"
				fi
			done
		done
		;;
	depends)
		for p in "${pkgs[@]}"; do
			matches "$p" $left || continue
			for d in ${deps[$p]}; do
				matches "$d" $right || continue
				excepted "$p" "$d" && continue
				via=
				for i in ${imports[$p]}; do
					if [[ $i == "$d" || " ${deps[$i]:-} " == *" $d "* ]]; then
						via=$i
						break
					fi
				done
				if [[ $via == "$d" ]]; then
					report "$(short "$p") imports $(short "$d")" "$why"
				else
					report "$(short "$p") depends on $(short "$d") through its import of $(short "$via")" "$why"
				fi
			done
		done
		;;
	only)
		for p in "${pkgs[@]}"; do
			matches "$p" $right $left && continue
			for i in ${imports[$p]}; do
				if matches "$i" $left && ! excepted "$p" "$i"; then
					report "$(short "$p") imports $(short "$i"), which only $right may import" "$why"
				fi
			done
		done
		;;
	*)
		echo "imports.sh: unknown rule kind $kind" >&2
		exit 2
		;;
	esac
}

rules

while IFS= read -r line; do
	line=${line%%#*}
	line=$(echo "$line" | xargs)
	if [[ -n $line && -z ${used[$line]:-} ]]; then
		echo "imports: exception no longer needed, remove it from scripts/imports.sh: $line" >&2
	fi
done <<<"$exceptions"

if ((broken > 0)); then
	echo "imports: $broken broken import rule(s)" >&2
	exit 1
fi
echo "imports: every import rule holds (${#pkgs[@]} packages)"
