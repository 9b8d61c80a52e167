#!/usr/bin/env bash
# A local certificate authority and the certificates IoTFlow's TLS needs, made with openssl.
#
#   certs.sh local DIR               the CA, a server certificate for the gateway and the broker
#                                    (localhost, 127.0.0.1 and TLS_HOSTNAMES) and the bridge's client
#                                    certificate; each made only if missing (TLS=1 npm start runs this)
#   certs.sh ca DIR                  the CA alone: DIR/ca.pem, DIR/ca.key
#   certs.sh server DIR NAME [DAYS]  DIR/NAME.pem + DIR/NAME.key for localhost, 127.0.0.1, TLS_HOSTNAMES
#   certs.sh client DIR NAME [DAYS]  a client certificate whose CN is NAME: a device id for mutual TLS
#                                    (the broker takes the CN as the username), or iotflow-bridge
#
# DAYS defaults to 825 (what browsers and most clients accept for a leaf); a negative DAYS makes an
# already expired certificate (for tests). Keys are P-256, readable by their owner only.
set -euo pipefail

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1 dir=$2
mkdir -p "$dir"
umask 077

make_ca() {
  [ -f "$dir/ca.pem" ] && return 0
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=IoTFlow local CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  chmod 644 "$dir/ca.pem"
}

# issue NAME DAYS EXTENSIONS: a key and a certificate signed by the CA.
issue() {
  local name=$1 days=$2 extensions=$3
  local extfile
  extfile=$(mktemp)
  printf '%s\n' "$extensions" >"$extfile"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -extfile "$extfile" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$extfile"
  chmod 644 "$dir/$name.pem"
}

server_names() {
  local names="DNS:localhost,IP:127.0.0.1,IP:::1" host
  for host in ${TLS_HOSTNAMES//,/ }; do
    if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then names+=",IP:$host"; else names+=",DNS:$host"; fi
  done
  printf '%s' "$names"
}

server() {
  make_ca
  issue "$1" "${2:-825}" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$(server_names)"
}

client() {
  make_ca
  issue "$1" "${2:-825}" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}

TLS_HOSTNAMES=${TLS_HOSTNAMES:-}
case "$command" in
  ca) make_ca ;;
  server) [ $# -ge 3 ] || usage; server "$3" "${4:-}" ;;
  client) [ $# -ge 3 ] || usage; client "$3" "${4:-}" ;;
  local)
    make_ca
    [ -f "$dir/server.pem" ] || server server
    [ -f "$dir/iotflow-bridge.pem" ] || client iotflow-bridge
    ;;
  *) usage ;;
esac
