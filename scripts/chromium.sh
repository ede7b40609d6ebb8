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

"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" chromium fonts-dejavu-core || die "chromium not found, and installing it failed"
command -v chromium
