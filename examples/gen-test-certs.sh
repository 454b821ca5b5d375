#!/usr/bin/env bash
# gen-test-certs.sh: throwaway certificates for trying and testing TLS.
#
# Usage: examples/gen-test-certs.sh [--ecdsa] [--days N] [DIR]
#
# Writes into DIR (default target/test-certs/, created if needed):
#
#   ca.pem, ca-key.pem                   a test root CA (RSA 2048)
#   server.pem, server-key.pem           RSA server certificate signed by the CA,
#                                        for localhost, 127.0.0.1 and ::1
#   server-ecdsa.pem, server-ecdsa-key.pem
#                                        the same with an ECDSA P-256 key (--ecdsa)
#   intermediate.pem, intermediate-key.pem
#                                        an intermediate CA signed by the root
#   chain.pem, chain-key.pem             a server certificate signed by the
#                                        intermediate, followed by the intermediate
#                                        (leaf first: what ssl_cert_filepath takes)
#   client.pem, client-key.pem           a client certificate (CN test-client)
#                                        signed by the CA, for
#                                        LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT
#   selfsigned.pem, selfsigned-key.pem   a self-signed server certificate for
#                                        localhost/127.0.0.1 that no CA vouches for
#   rogue-client.pem, rogue-client-key.pem
#                                        a self-signed client certificate (not
#                                        signed by the CA: must be refused)
#
# The files are for tests on one machine only: the keys are unencrypted and
# the CA signs whatever this script asks. Never commit them, never trust ca.pem
# system-wide. Only the `openssl` command-line tool is used; the library itself
# does not use OpenSSL.
#
# To try the demo server with them:
#   examples/gen-test-certs.sh
#   cp target/test-certs/server.pem examples/test-cert.pem
#   cp target/test-certs/server-key.pem examples/test-key.pem
#   (or pass --cert/--key) and open https://localhost:7681/ after trusting ca.pem
#   in the browser, or: curl --cacert target/test-certs/ca.pem https://localhost:7681/
set -euo pipefail

usage() {
	sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
}

ECDSA=0
DAYS=30
DIR=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--ecdsa) ECDSA=1; shift ;;
	--days)
		[[ $# -ge 2 ]] || { usage; exit 2; }
		DAYS="$2"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "gen-test-certs: unknown option $1" >&2; usage; exit 2 ;;
	*)
		[[ -z "$DIR" ]] || { usage; exit 2; }
		DIR="$1"; shift ;;
	esac
done

command -v openssl >/dev/null || {
	echo "gen-test-certs: the openssl command-line tool is needed (apt-get install openssl)" >&2
	exit 1
}

if [[ -z "$DIR" ]]; then
	ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	DIR="$ROOT/target/test-certs"
fi
mkdir -p "$DIR"
cd "$DIR"
umask 077

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gen-test-certs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Extension sections for each kind of certificate (X.509 v3: rustls/webpki need them).
cat >"$WORK/ext.cnf" <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
EOF

rsa_key() { # FILE
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
}

ec_key() { # FILE
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# sign NAME SUBJECT SECTION ISSUER_CERT ISSUER_KEY: NAME-key.pem must exist
sign() {
	local name="$1" subj="$2" section="$3" issuer="$4" issuer_key="$5"
	openssl req -new -key "$name-key.pem" -subj "$subj" -out "$WORK/$name.csr"
	openssl x509 -req -in "$WORK/$name.csr" -CA "$issuer" -CAkey "$issuer_key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
		-extfile "$WORK/ext.cnf" -extensions "$section" -out "$name.pem" 2>/dev/null
}

# self_sign NAME SUBJECT SECTION: NAME-key.pem must exist
self_sign() {
	local name="$1" subj="$2" section="$3"
	openssl req -new -x509 -key "$name-key.pem" -subj "$subj" -days "$DAYS" -sha256 \
		-set_serial "0x$(openssl rand -hex 16)" \
		-config "$WORK/ext.cnf" -extensions "$section" -out "$name.pem" 2>/dev/null
}

# `openssl req -x509 -config` wants a [req] section with a distinguished name.
cat >>"$WORK/ext.cnf" <<'EOF'

[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused
EOF

rsa_key ca-key.pem
self_sign ca "/O=libwebsockets-rs test/CN=libwebsockets-rs test CA" ca

rsa_key server-key.pem
sign server "/O=libwebsockets-rs test/CN=localhost" server ca.pem ca-key.pem

if [[ $ECDSA -eq 1 ]]; then
	ec_key server-ecdsa-key.pem
	sign server-ecdsa "/O=libwebsockets-rs test/CN=localhost" server ca.pem ca-key.pem
fi

rsa_key intermediate-key.pem
sign intermediate "/O=libwebsockets-rs test/CN=libwebsockets-rs test intermediate" \
	intermediate ca.pem ca-key.pem
rsa_key chain-key.pem
sign chain "/O=libwebsockets-rs test/CN=localhost" server intermediate.pem intermediate-key.pem
cat intermediate.pem >>chain.pem

rsa_key client-key.pem
sign client "/O=libwebsockets-rs test/CN=test-client" client ca.pem ca-key.pem

rsa_key selfsigned-key.pem
self_sign selfsigned "/O=libwebsockets-rs test/CN=localhost" selfsigned

rsa_key rogue-client-key.pem
self_sign rogue-client "/O=libwebsockets-rs test/CN=rogue-client" selfsigned

rm -f ./*.srl
# certificates are public; keys stay readable by the owner only
chmod 644 ./*.pem
chmod 600 ./*-key.pem

openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
openssl verify -CAfile ca.pem -untrusted intermediate.pem chain.pem >/dev/null
if [[ $ECDSA -eq 1 ]]; then
	openssl verify -CAfile ca.pem server-ecdsa.pem >/dev/null
fi
echo "gen-test-certs: certificates written to $(pwd)"
