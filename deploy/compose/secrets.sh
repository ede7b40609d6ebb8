#!/bin/sh
# secrets.sh: write the compose stack's secrets, once, with openssl.
#
#   ./secrets.sh [DIR]     (default: ./secrets next to this script)
#
# DIR/signing-key.pem        the token signing key (RSA-2048, PKCS#8), shared by both replicas
# DIR/trust-roots.pem        a throwaway CA certificate, so that trust.roots is not empty;
#                            its private key is thrown away. Replace the file with your
#                            enterprise-certificate CAs' roots.
# DIR/postgres-password      the database password (PostgreSQL reads it at first start)
# DIR/pgpass                 the same password for portvakt, in pgpass format
# DIR/grafana-admin-password Grafana's admin password
#
# An existing file is kept, so running it again changes nothing: delete a file
# to renew it (delete postgres-password and pgpass together, and the pgdata
# volume, since PostgreSQL reads the password only when it creates the
# database). DIR is private (0700); the files in it are 0644 because the
# containers read them as their own non-root users through bind mounts.
set -eu

dir=${1:-$(dirname "$0")/secrets}
command -v openssl >/dev/null 2>&1 || {
	echo "secrets.sh: openssl is needed" >&2
	exit 1
}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

# write NAME: runs the rest of the arguments with the file's path in $out,
# unless the file exists.
write() {
	name=$1
	shift
	out="$dir/$name"
	if [ -s "$out" ]; then
		return 0
	fi
	"$@" || {
		rm -f "$out"
		echo "secrets.sh: cannot write $out" >&2
		exit 1
	}
	chmod 644 "$out"
	echo "secrets.sh: wrote $out"
}

signing_key() {
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out" 2>/dev/null
}

trust_roots() {
	tmp=$(mktemp -d)
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
		-subj "/CN=portvakt compose throwaway CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$tmp/ca.key" -out "$out" 2>/dev/null
	rc=$?
	rm -rf "$tmp"
	return $rc
}

postgres_password() {
	openssl rand -hex 24 >"$out"
}

pgpass() {
	# host:port:database:user:password, as the DSN in docker-compose.yml names them.
	printf 'postgres:5432:portvakt:portvakt:%s\n' "$(cat "$dir/postgres-password")" >"$out"
}

grafana_password() {
	openssl rand -hex 16 >"$out"
}

write signing-key.pem signing_key
write trust-roots.pem trust_roots
write postgres-password postgres_password
write pgpass pgpass
write grafana-admin-password grafana_password
