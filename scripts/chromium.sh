#!/usr/bin/env bash
# chromium.sh: Debian's chromium for the web console's browser tests
# (cmd/portvakt, chromedp). Installs the chromium package with apt-get when no
# chromium is on the PATH, as scripts/pg.sh does for PostgreSQL; prints the
# browser's path. Quiet on success.
#
#   scripts/chromium.sh
set -euo pipefail

die() {
	echo "chromium.sh: $*" >&2
	exit 1
}

for name in chromium chromium-browser; do
	if command -v "$name" >/dev/null 2>&1; then
		command -v "$name"
		exit 0
	fi
done

[[ $(id -u) -eq 0 ]] || die "chromium not found and not root: install it (apt-get install chromium)"
command -v apt-get >/dev/null 2>&1 || die "chromium not found and no apt-get: install chromium"
echo "chromium.sh: installing chromium with apt-get" >&2
log=$(mktemp)
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	die "apt-get install chromium failed"
fi
rm -f "$log"
command -v chromium
