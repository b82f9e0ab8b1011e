// pki.h: the server's internal certificate authority (DESIGN.md §6) and the PKI pieces around
// it: ECDSA P-256 keys, PKCS#10 requests, issuing node/server/resource certificates, inspecting
// and verifying certificates. Everything is ECDSA P-256 with SHA-256.
//
// Untrusted input (a CSR from a node, PEM from a file) is bounded in size before BoringSSL
// parses it. Errors name the field or value at fault; private keys never appear in an error
// or a log line.
#ifndef P2PROXY_TLS_PKI_H_
#define P2PROXY_TLS_PKI_H_

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crypto/secret.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace p2proxy::tls {

// kMaxKeyPemLen bounds a PEM private key, kMaxCsrPemLen a PEM certificate request and
// kMaxCertificatePemLen one PEM certificate (a P-256 key is ~250 bytes of PEM, a CSR ~500, a
// certificate ~700-1,000; the room above that is for long name lists).
inline constexpr size_t kMaxKeyPemLen = 16 * 1024;
inline constexpr size_t kMaxCsrPemLen = 16 * 1024;
inline constexpr size_t kMaxCertificatePemLen = 16 * 1024;
// kMaxChainPemLen bounds a PEM chain (control.proto's limit for certificate_chain_pem).
inline constexpr size_t kMaxChainPemLen = 64 * 1024;
// kMaxSubjectAltNames bounds the names of one certificate.
inline constexpr size_t kMaxSubjectAltNames = 100;

// kDefaultCaValidity is the life of a new CA certificate (10 years of 365 days).
inline constexpr absl::Duration kDefaultCaValidity = absl::Hours(24 * 3650);
// kDefaultResourceValidity is the life of an https resource's certificate; the server renews
// it well before the end.
inline constexpr absl::Duration kDefaultResourceValidity = absl::Hours(24 * 90);
// kMaxLeafValidity is the longest leaf certificate this CA issues: 397 days, the CA/Browser
// Forum limit that Chromium enforces for server certificates.
inline constexpr absl::Duration kMaxLeafValidity = absl::Hours(24 * 397);
// kClockSkewAllowance: every certificate's notBefore is this much before the `now` it was
// issued at, so a peer whose clock runs a little behind still accepts it.
inline constexpr absl::Duration kClockSkewAllowance = absl::Minutes(5);

using Sha256Digest = std::array<uint8_t, 32>;

// SecretString (crypto/secret.h) holds the PEM private keys this file hands out: wiped when
// destroyed, cleared or moved from. A caller that copies the text out owns wiping that copy.
using SecretString = crypto::SecretString;

// KeyPair is an ECDSA P-256 private key (and so its public key). Move-only; the key lives in
// BoringSSL's memory, which BoringSSL wipes when it is freed.
class KeyPair {
 public:
  // GenerateP256 makes a new random key. Fails only if BoringSSL does (out of memory).
  static absl::StatusOr<KeyPair> GenerateP256();
  // FromPem reads one PEM private key: "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY" (RFC 5915),
  // unencrypted, at most kMaxKeyPemLen bytes. Any other key type or curve is refused with an
  // error saying what it is ("key: an RSA key; only ECDSA P-256 keys are supported").
  static absl::StatusOr<KeyPair> FromPem(std::string_view pem);
  // FromEvpPkey takes a BoringSSL key; refused unless it is a P-256 private key.
  static absl::StatusOr<KeyPair> FromEvpPkey(bssl::UniquePtr<EVP_PKEY> key);

  KeyPair(KeyPair&&) noexcept;
  KeyPair& operator=(KeyPair&&) noexcept;
  ~KeyPair();

  // ToPem is the key as PKCS#8 PEM ("PRIVATE KEY"). A secret: keep it in the SecretString.
  // Fails only if BoringSSL does (out of memory).
  absl::StatusOr<SecretString> ToPem() const;
  // spki_der is the DER SubjectPublicKeyInfo of the public key.
  const std::vector<uint8_t>& spki_der() const { return spki_der_; }
  // spki_sha256 is SHA-256 of spki_der: the pin a node keeps of the server's key.
  const Sha256Digest& spki_sha256() const { return spki_sha256_; }
  // get is the BoringSSL key, owned by this object.
  EVP_PKEY* get() const { return key_.get(); }

 private:
  KeyPair() = default;

  bssl::UniquePtr<EVP_PKEY> key_;
  std::vector<uint8_t> spki_der_;
  Sha256Digest spki_sha256_{};
};

// MakeCsrPem makes a PKCS#10 request ("CERTIFICATE REQUEST" PEM) for |key|, signed with it
// (ECDSA with SHA-256), with subject CN = |common_name| (1 to 64 bytes of UTF-8 without control
// characters or ','; the node's requested name). The CA decides the identity it certifies; the
// CN is only a hint.
absl::StatusOr<std::string> MakeCsrPem(const KeyPair& key, std::string_view common_name);

// CsrInfo is what ParseCsr found in a request whose signature it checked.
struct CsrInfo {
  std::string common_name;  // the subject's CN, UTF-8; empty if the request has none
  std::vector<uint8_t> spki_der;
  Sha256Digest spki_sha256{};
};

// ParseCsr reads one PEM "CERTIFICATE REQUEST" (at most kMaxCsrPemLen bytes, nothing but
// whitespace after it), checks that it is self-signed by its own key with ECDSA and SHA-2, that
// the key is P-256, and that a CN, if there is one, is a name as MakeCsrPem allows (so it is
// safe to log). Errors say which rule failed ("csr: signature does not verify").
absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem);

// IssuedCertificate is one certificate a CA signed.
struct IssuedCertificate {
  std::string certificate_pem;  // the leaf only; the CA certificate is the trust anchor
  std::string serial_hex;       // lowercase hex, 32 digits: what the server records and revokes
  absl::Time not_before;
  absl::Time not_after;
};

// ResourceCertificate is an https resource's certificate with its newly made key.
struct ResourceCertificate {
  std::string chain_pem;  // the leaf (the CA is the trust anchor the user installed)
  SecretString key_pem;   // PKCS#8 PEM: a secret
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
};

// CertificateAuthority is the server's CA: a P-256 key and its self-signed CA certificate.
// Move-only. Issuing is const and does not change the CA; serials are 128 random bits.
//
// Every leaf's notBefore is `now - kClockSkewAllowance`; its notAfter is `now + validity`, cut
// to the CA's own notAfter (a leaf cannot outlive its issuer usefully), and the returned times
// say what was written. Issuing fails if `now` lies outside the CA's validity, if validity is
// not positive or above kMaxLeafValidity.
class CertificateAuthority {
 public:
  // Create makes a new key and a self-signed CA certificate: subject CN = |common_name| (1 to
  // 64 bytes of UTF-8 without control characters), basicConstraints CA:TRUE pathlen:0 and
  // keyUsage keyCertSign+cRLSign (both critical), subjectKeyIdentifier, valid from
  // `now - kClockSkewAllowance` to `now + validity`.
  static absl::StatusOr<CertificateAuthority> Create(std::string_view common_name, absl::Time now,
                                                     absl::Duration validity = kDefaultCaValidity);
  // Load takes a CA certificate and its key as PEM (as certificate_pem() and key_pem() wrote
  // them). Refused: bad PEM, a key that is not P-256, a key that does not match the
  // certificate, a certificate that is not a CA (basicConstraints CA:TRUE, and keyCertSign if
  // it has a keyUsage).
  static absl::StatusOr<CertificateAuthority> Load(std::string_view cert_pem, std::string_view key_pem);

  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

  // certificate_pem is the CA certificate (what users and nodes trust).
  const std::string& certificate_pem() const { return cert_pem_; }
  // key_pem is the CA's private key as PKCS#8 PEM: a secret.
  absl::StatusOr<SecretString> key_pem() const { return key_.ToPem(); }
  // spki_sha256 is SHA-256 of the CA key's SubjectPublicKeyInfo.
  const Sha256Digest& spki_sha256() const { return key_.spki_sha256(); }
  absl::Time not_before() const { return not_before_; }
  absl::Time not_after() const { return not_after_; }
  // certificate is the CA certificate, owned by this object.
  X509* certificate() const { return cert_.get(); }

  // IssueNodeCertificate signs the key of |csr_pem| (checked as ParseCsr does) into a TLS
  // client certificate for node |node_id| (1 to 64 bytes of [A-Za-z0-9._-]): subject CN =
  // node_id (the CSR's subject is ignored: the CA decides who the node is), keyUsage
  // digitalSignature (critical), extendedKeyUsage clientAuth, basicConstraints CA:FALSE
  // (critical), authority and subject key identifiers.
  absl::StatusOr<IssuedCertificate> IssueNodeCertificate(std::string_view csr_pem,
                                                         std::string_view node_id, absl::Time now,
                                                         absl::Duration validity) const;

  // IssueServerCertificate certifies |key| as a TLS server (the control listener) for
  // |names|: each a DNS name (ValidateDnsName, no wildcard) or an IP literal, 1 to
  // kMaxSubjectAltNames of them, no duplicates. subjectAltName carries them as dNSName /
  // iPAddress; CN is the first name; extendedKeyUsage serverAuth; keyUsage digitalSignature.
  absl::StatusOr<IssuedCertificate> IssueServerCertificate(const KeyPair& key,
                                                           absl::Span<const std::string> names,
                                                           absl::Time now,
                                                           absl::Duration validity) const;

  // IssueResourceCertificate makes a fresh P-256 key and a serverAuth certificate for an https
  // resource whose subjectAltName lists |dns_names| (1 to kMaxSubjectAltNames, wildcards
  // allowed as ValidateDnsName says, no duplicates); CN is the first name when it fits (64
  // bytes), otherwise the subject is empty and the subjectAltName critical. Made to be
  // accepted by browsers once the user trusts the CA: SAN, serverAuth, ECDSA with SHA-256,
  // validity at most kMaxLeafValidity.
  absl::StatusOr<ResourceCertificate> IssueResourceCertificate(
      absl::Span<const std::string> dns_names, absl::Time now,
      absl::Duration validity = kDefaultResourceValidity) const;

 private:
  explicit CertificateAuthority(KeyPair key) : key_(std::move(key)) {}
  // Finish completes Create and Load: the PEM text, key identifier and validity of |cert|.
  static absl::StatusOr<CertificateAuthority> Finish(KeyPair key, bssl::UniquePtr<X509> cert);
  // Sign fills in the issuer fields of |leaf| (already holding its subject, key and
  // extensions of its own), validity and serial, and signs it.
  absl::StatusOr<IssuedCertificate> Sign(X509* leaf, absl::Time now, absl::Duration validity) const;

  KeyPair key_;
  bssl::UniquePtr<X509> cert_;
  std::string cert_pem_;
  std::vector<uint8_t> key_id_;  // the CA's subject key identifier, for authorityKeyIdentifier
  absl::Time not_before_;
  absl::Time not_after_;
};

// CertificateInfo is what InspectCertificate reads from a certificate.
struct CertificateInfo {
  std::string common_name;               // subject CN (UTF-8), empty if none
  std::vector<std::string> dns_names;    // subjectAltName dNSName, in certificate order
  std::vector<std::string> ip_addresses; // subjectAltName iPAddress, as inet_ntop prints them
  absl::Time not_before;
  absl::Time not_after;
  std::string serial_hex;  // lowercase hex of the serial's magnitude ("-" first if negative)
  bool is_ca = false;      // basicConstraints CA:TRUE
  Sha256Digest spki_sha256{};
};

// InspectCertificate reads the first PEM certificate of |pem| (a chain of at most
// kMaxChainPemLen bytes).
absl::StatusOr<CertificateInfo> InspectCertificate(std::string_view pem);

enum class CertificatePurpose { kClient, kServer };

// VerifyCertificate checks |leaf_pem| (the leaf, then any intermediates) against the trust
// anchors in |ca_pem| as of |now|, for TLS |purpose| (extendedKeyUsage clientAuth or
// serverAuth), with BoringSSL's X509_verify_cert. If |host| is not empty the leaf must also
// name it (a DNS name, wildcards matched as RFC 6125 says, or an IP literal). Input that does
// not parse is InvalidArgument; a chain that does not verify is PermissionDenied with
// BoringSSL's reason and the depth ("verify: certificate has expired (depth 0) as a TLS
// client").
absl::Status VerifyCertificate(std::string_view leaf_pem, std::string_view ca_pem, absl::Time now,
                               CertificatePurpose purpose, std::string_view host = {});

// ValidateDnsName checks a DNS name for a certificate: lower case, no trailing dot, at most 253
// bytes, labels of 1 to 63 bytes of [a-z0-9-] not starting or ending with '-', a last label
// that is not all digits (that would be an IP address). With |allow_wildcard|, "*" may be the
// whole leftmost label if at least two labels follow ("*.example.internal", not "*.internal").
// The error quotes the name (cut and escaped) and says which rule it breaks.
absl::Status ValidateDnsName(std::string_view name, bool allow_wildcard);

}  // namespace p2proxy::tls

#endif  // P2PROXY_TLS_PKI_H_
