// cert_store.h: server certificates (an immutable BoringSSL context per certificate) and the
// store that picks one by SNI: exact name, then a one-label wildcard, then a default.
#ifndef P2PROXY_TLS_CERT_STORE_H_
#define P2PROXY_TLS_CERT_STORE_H_

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace p2proxy::tls {

// ClientAuth says whether a server asks the client for a certificate (mutual TLS).
enum class ClientAuth {
  kNone,      // no CertificateRequest: the client sends no certificate
  kOptional,  // asked for; a client may send none, but one it sends must verify
  kRequired,  // asked for; the handshake fails without one that verifies
};

// ServerTlsOptions configures the TLS server side of one certificate.
struct ServerTlsOptions {
  // alpn is the server's ALPN preference, most preferred first. Each name is 1..255 bytes.
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  // client_auth asks for client certificates, verified against client_ca_pem (one or more PEM
  // CA certificates, required unless kNone) with the TLS client purpose (a leaf needs
  // extendedKeyUsage clientAuth, or no EKU at all). A client certificate that does not verify
  // fails the handshake in both modes. kOptional lets a control-channel node enroll before it
  // has a certificate; after the handshake TlsStream::PeerCertificateDer is non-empty only if
  // the client sent a certificate, which then verified.
  ClientAuth client_auth = ClientAuth::kNone;
  std::string client_ca_pem;
  // min_version_tls13 refuses TLS 1.2 (protocol_version alert): the control channel's setting.
  bool min_version_tls13 = false;
};

// SpkiSha256 is SHA-256 over the DER SubjectPublicKeyInfo of |cert|: the key pin of the control
// channel (Enrolled.server_spki_sha256). Empty if |cert| is null or its key cannot be encoded.
std::vector<uint8_t> SpkiSha256(X509* cert);

// UseChainAndKey installs a PEM chain (leaf first, then intermediates) and its PEM private key
// in |ctx|, as a TLS client presents them for mutual TLS. Errors start with |what| and name
// the part ("client certificate: key does not match certificate"); they never hold key bytes.
absl::Status UseChainAndKey(SSL_CTX* ctx, std::string_view chain_pem, std::string_view key_pem,
                            std::string_view what);

// ServerCertificate is a certificate chain, its private key and an SSL_CTX made from them:
// TLS 1.2 and 1.3 only (1.3 only with min_version_tls13), client certificates as
// ServerTlsOptions::client_auth says, ALPN chosen from ServerTlsOptions::alpn in the server's order. It never
// changes once built, so any number of connections share it.
//
// ALPN: a client that offers no ALPN gets none. A client whose list has nothing in common with
// ours also gets none (the handshake goes on without the extension, RFC 7301 3.2 allows it)
// rather than a no_application_protocol alert: the application then speaks its default
// (HTTP/1.1), which is what a client that offered, say, only "spdy/3" can still use.
//
// The private key lives only in this object's memory (BoringSSL's EVP_PKEY); it is never
// written to disk or logged.
class ServerCertificate {
 public:
  // FromPem builds a certificate from a PEM chain (leaf first, then intermediates) and a PEM
  // private key. Errors name the problem: "certificate: no PEM certificate found",
  // "key: no PEM private key found", "key does not match certificate", "alpn: ...",
  // "client_ca_pem: no PEM certificate found".
  static absl::StatusOr<std::shared_ptr<const ServerCertificate>> FromPem(
      std::string_view chain_pem, std::string_view key_pem, const ServerTlsOptions& options = {});

  ServerCertificate(const ServerCertificate&) = delete;
  ServerCertificate& operator=(const ServerCertificate&) = delete;

  // ctx is the server context, for SSL_new. The SSL_CTX is not modified after FromPem
  // (BoringSSL lets many connections use one context). Its ALPN callback points at this object,
  // so an SSL made from ctx() must not outlive it: TlsStream keeps a shared_ptr for that.
  SSL_CTX* ctx() const { return ctx_.get(); }
  // leaf is the leaf certificate (owned by this object).
  X509* leaf() const { return leaf_.get(); }
  // leaf_der is the leaf certificate in DER, e.g. to compare with what a client received.
  const std::vector<uint8_t>& leaf_der() const { return leaf_der_; }
  // dns_names are the leaf's subjectAltName dNSName entries, lower-cased, in certificate order,
  // so callers can log them or check that a name they route here is covered.
  const std::vector<std::string>& dns_names() const { return dns_names_; }
  const std::vector<std::string>& alpn() const { return alpn_; }
  // spki_sha256 is SpkiSha256(leaf()): what a pinning client compares (32 bytes).
  const std::vector<uint8_t>& spki_sha256() const { return spki_sha256_; }
  ClientAuth client_auth() const { return client_auth_; }

 private:
  ServerCertificate() = default;
  static int SelectAlpn(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                        unsigned in_len, void* arg);

  bssl::UniquePtr<SSL_CTX> ctx_;
  bssl::UniquePtr<X509> leaf_;
  std::vector<uint8_t> leaf_der_;
  std::vector<std::string> dns_names_;
  std::vector<std::string> alpn_;
  std::vector<uint8_t> spki_sha256_;
  ClientAuth client_auth_ = ClientAuth::kNone;
};

// CertStore maps server names to certificates. Names are exact ("vault.example.internal") or a
// wildcard "*.example.internal", which matches exactly one more label on the left
// ("a.example.internal", not "example.internal" nor "a.b.example.internal"), as RFC 6125 6.4.3
// reads a wildcard certificate. Lookups ignore ASCII case.
//
// Certificates are held by std::shared_ptr because their lifetime is truly shared: the store
// and every connection that was handed the certificate own it together. Put() swaps the
// store's pointer; connections made earlier keep the certificate they started with until they
// close, and the old certificate is freed when the last one does (hot swap without draining).
//
// Not thread-safe: used from the loop's thread, like everything else.
class CertStore {
 public:
  // Put maps |name| to |cert|, replacing any previous certificate for it. Fails (store
  // unchanged) if |name| is empty, longer than 255 bytes, holds a NUL, has a '*' anywhere but
  // as the whole leftmost label of a name with at least two more labels, or |cert| is null.
  absl::Status Put(std::string name, std::shared_ptr<const ServerCertificate> cert);
  // Remove drops the mapping for |name| (as given to Put); false if there was none.
  bool Remove(std::string_view name);
  // SetDefault sets the certificate for names that match nothing (nullptr: no default).
  void SetDefault(std::shared_ptr<const ServerCertificate> cert) { default_ = std::move(cert); }

  // Find picks the certificate for |sni|: exact match first, then a wildcard, then the default;
  // nullptr if none (the caller then answers with AlertRecord(kAlertUnrecognizedName)). An
  // empty |sni| (a client that sent none) gets the default.
  std::shared_ptr<const ServerCertificate> Find(std::string_view sni) const;

  size_t size() const { return exact_.size() + wildcard_.size(); }

 private:
  // exact_ is keyed by the lower-cased name, wildcard_ by the lower-cased part after "*.".
  std::map<std::string, std::shared_ptr<const ServerCertificate>, std::less<>> exact_;
  std::map<std::string, std::shared_ptr<const ServerCertificate>, std::less<>> wildcard_;
  std::shared_ptr<const ServerCertificate> default_;
};

}  // namespace p2proxy::tls

#endif  // P2PROXY_TLS_CERT_STORE_H_
