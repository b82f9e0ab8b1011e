#!/bin/sh
# pki_csr_seeds.sh: writes the seed corpus of pki_csr_fuzzer (fuzz/corpus/pki_csr/).
#
# Every seed is made by the openssl command line tool (OpenSSL 3), not by the code under test.
# valid_* are requests ParseCsr accepts; the others are each one way a request goes wrong, plus
# keys and certificates for the InspectCertificate and KeyPair::FromPem paths the fuzzer also
# drives. Seeds der_* (and der_not_pem) are DER, which the fuzzer also wraps as PEM. Keys are
# random, so a rerun writes different bytes with the same meaning. Run from the tree's root:
#
#   sh fuzz/tools/pki_csr_seeds.sh
set -eu

OUT=fuzz/corpus/pki_csr
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*

key() {  # key <file> <genpkey args...>
  f=$1
  shift
  openssl genpkey "$@" -out "$TMP/$f" 2>/dev/null
}

csr() {  # csr <seed> <key file> <req args...>: a PEM request for that key
  seed=$1
  k=$2
  shift 2
  openssl req -new -key "$TMP/$k" "$@" -out "$OUT/$seed"
}

pem() {  # pem <label> <der file>: the DER file as one PEM block
  echo "-----BEGIN $1-----"
  openssl base64 -in "$2"
  echo "-----END $1-----"
}

key p256.key -algorithm EC -pkeyopt ec_paramgen_curve:P-256
key p384.key -algorithm EC -pkeyopt ec_paramgen_curve:P-384
key rsa.key -algorithm RSA -pkeyopt rsa_keygen_bits:1024
key ed25519.key -algorithm ED25519
openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$TMP/explicit.key"

# A config whose string_mask picks PrintableString for ASCII and BMPString for the rest.
cat > "$TMP/pkix.cnf" <<'EOF'
[req]
distinguished_name = dn
string_mask = pkix
[dn]
EOF

# Accepted.
csr valid_p256_csr p256.key -sha256 -subj "/CN=node-1"
csr valid_p256_sha384 p256.key -sha384 -subj "/CN=node-1"
csr valid_p256_sha512 p256.key -sha512 -subj "/CN=node-1"
csr valid_no_cn p256.key -sha256 -subj "/O=acme/OU=edge"
csr valid_utf8_cn p256.key -sha256 -utf8 -subj "/CN=nœud-ü-东京"
csr valid_cn_64_bytes p256.key -sha256 -subj "/CN=$(printf '%064d' 7)"
csr valid_printablestring_cn p256.key -sha256 -config "$TMP/pkix.cnf" -subj "/CN=node 1"
csr valid_bmpstring_cn p256.key -sha256 -config "$TMP/pkix.cnf" -utf8 -subj "/CN=nœud"
csr valid_with_extensions p256.key -sha256 -subj "/CN=node-1" \
  -addext "subjectAltName=DNS:node-1.example,IP:10.0.0.1" -addext "keyUsage=digitalSignature"

# Refused: the name.
csr cn_with_comma p256.key -sha256 -subj "/CN=a\,b"
csr cn_control_char p256.key -sha256 -subj "/CN=$(printf 'a\tb')"

# Refused: the key or the signature algorithm.
csr p384_key p384.key -sha256 -subj "/CN=node-1"
csr rsa_key rsa.key -sha256 -subj "/CN=node-1"
csr ed25519_key ed25519.key -subj "/CN=node-1"
csr explicit_curve_key explicit.key -sha256 -subj "/CN=node-1"
csr sha1_signature p256.key -sha1 -subj "/CN=node-1"

# Refused: the signature does not verify (last byte of the DER, inside ECDSA's s, flipped).
openssl req -in "$OUT/valid_p256_csr" -outform DER -out "$TMP/csr.der"
size=$(wc -c < "$TMP/csr.der")
last=$(od -An -tu1 -j $((size - 1)) "$TMP/csr.der" | tr -d ' ')
head -c $((size - 1)) "$TMP/csr.der" > "$TMP/broken.der"
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((last ^ 1)))" >> "$TMP/broken.der"
pem "CERTIFICATE REQUEST" "$TMP/broken.der" > "$OUT/broken_signature"

# Refused: the PEM around it.
cp "$TMP/csr.der" "$OUT/der_not_pem"
head -c 300 "$OUT/valid_p256_csr" > "$OUT/truncated"
cat "$OUT/valid_p256_csr" "$OUT/valid_p256_sha384" > "$OUT/two_blocks"
{ cat "$OUT/valid_p256_csr"; echo "trailing text"; } > "$OUT/trailing_text"
sed 's/A/*/' "$OUT/valid_p256_csr" > "$OUT/bad_base64"
printf 'garbage\000\377 not a request\n-----BEGIN\n' > "$OUT/garbage"
: > "$OUT/empty"

# Accepted: text before the block, CRLF lines, no final newline, the legacy label.
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' "$OUT/valid_p256_csr" > "$OUT/valid_new_csr_label"
{ echo "a node's request:"; cat "$OUT/valid_p256_csr"; } > "$OUT/valid_leading_text"
sed 's/$/\r/' "$OUT/valid_p256_csr" > "$OUT/valid_crlf"
printf '%s' "$(cat "$OUT/valid_p256_csr")" > "$OUT/valid_no_final_newline"

# Certificates (InspectCertificate), including where a request is expected.
openssl req -x509 -new -key "$TMP/p256.key" -sha256 -days 30 -subj "/CN=node-1" \
  -out "$OUT/certificate_not_csr"
openssl req -x509 -new -key "$TMP/p256.key" -sha256 -days 30 -subj "/CN=site.example" \
  -addext "subjectAltName=DNS:site.example,DNS:*.site.example,IP:10.0.0.1,IP:fd00::1" \
  -addext "basicConstraints=critical,CA:TRUE" -out "$TMP/ca.pem"
cp "$TMP/ca.pem" "$OUT/certificate_with_san"
cat "$OUT/certificate_not_csr" "$TMP/ca.pem" > "$OUT/certificate_chain"

# Keys (KeyPair::FromPem), including where a request is expected.
cp "$TMP/p256.key" "$OUT/p256_pkcs8_key"
openssl ec -in "$TMP/p256.key" -out "$OUT/p256_ec_private_key" 2>/dev/null
openssl pkey -in "$TMP/p256.key" -pubout -out "$OUT/p256_public_key"
openssl pkey -in "$TMP/p256.key" -aes128 -passout pass:seed -out "$OUT/p256_encrypted_key"
cp "$TMP/rsa.key" "$OUT/rsa_private_key"
cp "$TMP/p384.key" "$OUT/p384_private_key"

# DER, which the fuzzer also wraps as PEM itself, so that mutations reach the ASN.1.
for seed in valid_utf8_cn valid_bmpstring_cn valid_with_extensions p384_key rsa_key ed25519_key; do
  openssl req -in "$OUT/$seed" -outform DER -out "$OUT/der_$seed"
done
openssl x509 -in "$OUT/certificate_with_san" -outform DER -out "$OUT/der_certificate_with_san"
openssl pkey -in "$TMP/p256.key" -outform DER -out "$OUT/der_p256_pkcs8_key"

chmod 644 "$OUT"/*
ls "$OUT" | wc -l
