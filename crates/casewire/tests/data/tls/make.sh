#!/usr/bin/env bash
# Regenerates the inbox's TLS test certificates (valid for 100 years; committed so tests need no
# openssl at run time). Run from this folder: ./make.sh
set -euo pipefail
days=36500
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
  ec "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days $days -subj "$2" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name subject ca usage san
  ec "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' "$4" "$5" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=casewire test CA"
ca rogue-ca "/CN=someone else's CA"
leaf server "/CN=localhost" ca serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client "/C=US/O=Example Corp, Inc./OU=Integration/CN=sf-client" ca clientAuth ""
leaf other-client "/C=US/O=Example Corp, Inc./CN=intruder" ca clientAuth ""
leaf rogue "/C=US/O=Example Corp, Inc./OU=Integration/CN=sf-client" rogue-ca clientAuth ""
rm -f ./*.srl ca.key rogue-ca.key
for c in client other-client; do openssl x509 -in $c.pem -noout -subject -nameopt RFC2253; done
