#!/usr/bin/env bash
# softhsm.sh: a throwaway SoftHSM2 token for portvakt's PKCS#11 tests.
#
#   scripts/softhsm.sh start   make a token store under .softhsm/ with its own SOFTHSM2_CONF and one
#                              initialised token (label portvakt-test, random user and SO PINs).
#                              Installs Debian's softhsm2 package first when softhsm2-util is missing.
#   scripts/softhsm.sh env     print the variables the tests read (eval "$(scripts/softhsm.sh env)"):
#                              SOFTHSM2_CONF, PORTVAKT_TEST_PKCS11_MODULE, PORTVAKT_TEST_PKCS11_TOKEN,
#                              PORTVAKT_TEST_PKCS11_PIN
#   scripts/softhsm.sh stop    remove the token store.
#
# Idempotent and quiet on success. The token is for tests only: its PINs sit in .softhsm/.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$repo/.softhsm"
label=portvakt-test

die() {
	echo "softhsm.sh: $*" >&2
	exit 1
}

# find_module prints the path of SoftHSM2's PKCS#11 library.
find_module() {
	local m
	for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
		if [[ -f "$m" ]]; then
			echo "$m"
			return 0
		fi
	done
	return 1
}

install_softhsm() {
	"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" softhsm2 || die "softhsm2-util not found, and installing it failed"
}

cmd_start() {
	if ! command -v softhsm2-util >/dev/null 2>&1 || ! find_module >/dev/null; then
		install_softhsm
	fi
	local module
	module=$(find_module) || die "softhsm2 installed but libsofthsm2.so not found"
	if [[ -f "$state/env" ]]; then
		return 0
	fi
	cmd_stop
	mkdir -p "$state"
	local dir pin sopin
	dir=$(mktemp -d "$state/tokens.XXXXXX")
	chmod 700 "$dir"
	cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
	mkdir -p "$dir/tokens"
	pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	sopin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	if ! SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$sopin" >"$dir/init.log" 2>&1; then
		cat "$dir/init.log" >&2
		die "softhsm2-util --init-token failed"
	fi
	{
		printf "export SOFTHSM2_CONF='%s'\n" "$dir/softhsm2.conf"
		printf "export PORTVAKT_TEST_PKCS11_MODULE='%s'\n" "$module"
		printf "export PORTVAKT_TEST_PKCS11_TOKEN='%s'\n" "$label"
		printf "export PORTVAKT_TEST_PKCS11_PIN='%s'\n" "$pin"
	} >"$state/env"
	chmod 600 "$state/env"
}

cmd_stop() {
	if [[ -d "$state" ]]; then
		rm -rf "$state"/tokens.* "$state/env"
		rmdir "$state" 2>/dev/null || true
	fi
}

cmd_env() {
	[[ -f "$state/env" ]] || die "no token: run scripts/softhsm.sh start"
	cat "$state/env"
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
