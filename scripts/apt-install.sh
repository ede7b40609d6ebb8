#!/usr/bin/env bash
# apt-install.sh: installs Debian packages that a test needs and the machine
# lacks (PostgreSQL, SoftHSM2, Chromium, promtool, ...), quietly, with
# apt-get; the apt log is shown only when the install fails. It needs root
# and apt-get, and says what to install by hand otherwise.
#
#   scripts/apt-install.sh PACKAGE...
set -euo pipefail

die() {
	echo "apt-install.sh: $*" >&2
	exit 1
}

[[ $# -gt 0 ]] || die "usage: scripts/apt-install.sh PACKAGE..."
[[ $(id -u) -eq 0 ]] || die "not root: install $* by hand (apt-get install $*)"
command -v apt-get >/dev/null 2>&1 || die "no apt-get: install $* by hand"
echo "apt-install.sh: installing $* with apt-get" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get install $* failed"
fi
