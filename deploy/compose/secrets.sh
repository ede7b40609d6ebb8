#!/bin/sh
# secrets.sh: write the compose stack's secrets, once, with openssl.
#
#   ./secrets.sh [DIR]     (default: ./secrets next to this script)
#
# DIR/signing-key.pem        the first token signing key (RSA-2048, PKCS#8), imported into the
#                            database at the first start
# DIR/signing-kek            the key-encryption key (32 random bytes, base64) under which both
#                            replicas keep the signing keys in the database, rotating them
# DIR/trust-roots.pem        a throwaway CA certificate (its private key is thrown away once
#                            it has issued the admin certificate below). Replace the file
#                            with your enterprise-certificate CAs' roots.
# DIR/admin-cert.pem         an enterprise certificate of the platform admin's organisation
# DIR/admin-key.pem          (310000019) from that CA, and its key: portvakt.yaml declares a
#                            client for it, so `portvakt token` and `portvakt admin` work
#                            against the stack at once (docs/deploy.md). Not mounted.
# DIR/postgres-password      the database password (PostgreSQL reads it at first start)
# DIR/pgpass                 the same password for portvakt, in pgpass format
# DIR/grafana-admin-password Grafana's admin password
#
# An existing file is kept, so running it again changes nothing: delete a file
# to renew it (delete postgres-password and pgpass together, and the pgdata
# volume, since PostgreSQL reads the password only when it creates the
# database; delete trust-roots.pem to renew the CA and the admin certificate).
# DIR is private (0700); the files the containers read are 0644 because they
# read them as their own non-root users through bind mounts.
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

# ca_and_admin writes the throwaway CA and the admin certificate issued by
# it; the CA's key exists only for the moment it signs.
ca_and_admin() {
	tmp=$(mktemp -d)
	cat >"$tmp/leaf.ext" <<-EXT
		basicConstraints=critical,CA:FALSE
		keyUsage=critical,digitalSignature
		authorityKeyIdentifier=keyid
	EXT
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
		-subj "/CN=portvakt compose throwaway CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null &&
		openssl req -new -newkey rsa:2048 -nodes \
			-subj "/C=NO/O=portvakt compose platform admin/serialNumber=310000019/CN=portvakt compose platform admin" \
			-keyout "$tmp/admin-key.pem" -out "$tmp/admin.csr" 2>/dev/null &&
		openssl x509 -req -in "$tmp/admin.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
			-extfile "$tmp/leaf.ext" -days 825 -sha256 -out "$tmp/admin-cert.pem" 2>/dev/null &&
		cp "$tmp/admin-key.pem" "$dir/admin-key.pem" &&
		cp "$tmp/admin-cert.pem" "$dir/admin-cert.pem" &&
		cp "$tmp/ca.pem" "$out"
	rc=$?
	rm -rf "$tmp"
	return $rc
}

signing_kek() {
	openssl rand -base64 32 >"$out"
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
write signing-kek signing_kek
write trust-roots.pem ca_and_admin
chmod 600 "$dir/admin-key.pem" 2>/dev/null || true
write postgres-password postgres_password
write pgpass pgpass
write grafana-admin-password grafana_password
