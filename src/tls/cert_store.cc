// cert_store.cc: ServerCertificate (PEM to SSL_CTX, ALPN selection) and CertStore lookups.
#include "tls/cert_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/bytes.h"

namespace p2proxy::tls {
namespace {

constexpr size_t kMaxNameLen = 255;  // a DNS name, RFC 1035 2.3.4

// NoPassword refuses to decrypt an encrypted PEM key (BoringSSL would otherwise have nothing to
// ask: there is no terminal on a daemon).
int NoPassword(char*, int, int, void*) { return 0; }

// LastErrorText is the reason of BoringSSL's most recent error, and clears the queue.
std::string LastErrorText() {
  const uint32_t e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : absl::StrCat("error ", e);
}

bssl::UniquePtr<BIO> ReadOnlyBio(std::string_view pem) {
  return bssl::UniquePtr<BIO>(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
}

// IsEndOfPem: the error a PEM read leaves when it finds no further PEM block.
bool IsEndOfPem() {
  const uint32_t e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string> DnsNames(X509* leaf) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type != GEN_DNS) continue;
    const ASN1_STRING* s = gn->d.dNSName;
    out.push_back(Lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s)))));
  }
  GENERAL_NAMES_free(names);
  return out;
}

// ValidName checks a name given to CertStore::Put (already lower-cased) and returns the map
// it belongs in, with its key.
absl::Status ValidName(const std::string& name, bool* wildcard, std::string_view* key) {
  if (name.empty()) return absl::InvalidArgumentError("cert store: empty name");
  if (name.size() > kMaxNameLen) return absl::InvalidArgumentError("cert store: name longer than 255 bytes");
  if (name.find('\0') != std::string::npos) return absl::InvalidArgumentError("cert store: NUL in name");
  *wildcard = name.size() > 2 && name[0] == '*' && name[1] == '.';
  *key = *wildcard ? std::string_view(name).substr(2) : std::string_view(name);
  if (key->find('*') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("cert store: '", name, "': '*' is allowed only as the whole leftmost label"));
  }
  if (key->front() == '.' || key->back() == '.' || key->find("..") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("cert store: '", name, "': empty label"));
  }
  // "*.internal" would cover a whole top-level domain.
  if (*wildcard && key->find('.') == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("cert store: '", name, "': a wildcard needs at least two labels after it"));
  }
  return absl::OkStatus();
}

// AddCaCertificates adds every PEM certificate of |pem| to |store|; errors name |field|.
absl::Status AddCaCertificates(std::string_view pem, X509_STORE* store, std::string_view field_view) {
  const std::string field(field_view);
  auto bio = ReadOnlyBio(pem);
  if (!bio) return absl::ResourceExhaustedError(absl::StrCat(field, ": out of memory"));
  size_t num_certs = 0;
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
    if (!x) break;
    if (!X509_STORE_add_cert(store, x.get())) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": certificate ", num_certs, ": ", LastErrorText()));
    }
    ++num_certs;
  }
  if (!IsEndOfPem()) return absl::InvalidArgumentError(absl::StrCat(field, ": bad PEM: ", LastErrorText()));
  ERR_clear_error();
  if (num_certs == 0) return absl::InvalidArgumentError(absl::StrCat(field, ": no PEM certificate found"));
  return absl::OkStatus();
}

}  // namespace

std::vector<uint8_t> SpkiSha256(X509* cert) {
  if (!cert) return {};
  uint8_t* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) {
    ERR_clear_error();
    return {};
  }
  std::vector<uint8_t> out(SHA256_DIGEST_LENGTH);
  SHA256(der, static_cast<size_t>(len), out.data());
  OPENSSL_free(der);
  return out;
}

absl::Status UseChainAndKey(SSL_CTX* ctx, std::string_view chain_pem, std::string_view key_pem,
                            std::string_view what_view) {
  const std::string what(what_view);
  ERR_clear_error();
  auto chain_bio = ReadOnlyBio(chain_pem);
  auto key_bio = ReadOnlyBio(key_pem);
  if (!chain_bio || !key_bio) return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  std::vector<bssl::UniquePtr<X509>> chain;
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(chain_bio.get(), nullptr, NoPassword, nullptr));
    if (!x) break;
    chain.push_back(std::move(x));
  }
  if (!IsEndOfPem()) return absl::InvalidArgumentError(absl::StrCat(what, ": certificate: bad PEM: ", LastErrorText()));
  ERR_clear_error();
  if (chain.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no PEM certificate found"));
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    const bool none = IsEndOfPem();
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(what, none ? ": no PEM private key found" : ": key: bad PEM"));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, ": key does not match certificate"));
  }
  if (!SSL_CTX_use_certificate(ctx, chain[0].get())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", LastErrorText()));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!SSL_CTX_add1_chain_cert(ctx, chain[i].get())) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": chain[", i, "]: ", LastErrorText()));
    }
  }
  if (!SSL_CTX_use_PrivateKey(ctx, key.get()) || !SSL_CTX_check_private_key(ctx)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": key: ", LastErrorText()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ServerCertificate>> ServerCertificate::FromPem(
    std::string_view chain_pem, std::string_view key_pem, const ServerTlsOptions& options) {
  ERR_clear_error();
  std::shared_ptr<ServerCertificate> cert(new ServerCertificate());
  for (const std::string& p : options.alpn) {
    if (p.empty() || p.size() > 255) {
      return absl::InvalidArgumentError(absl::StrCat("alpn: protocol name '", p, "' is not 1..255 bytes"));
    }
  }
  cert->alpn_ = options.alpn;

  // The chain: leaf first, then intermediates, until the PEM runs out.
  auto chain_bio = ReadOnlyBio(chain_pem);
  if (!chain_bio) return absl::ResourceExhaustedError("certificate: out of memory");
  std::vector<bssl::UniquePtr<X509>> chain;
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(chain_bio.get(), nullptr, NoPassword, nullptr));
    if (!x) break;
    chain.push_back(std::move(x));
  }
  if (!IsEndOfPem()) return absl::InvalidArgumentError(absl::StrCat("certificate: bad PEM: ", LastErrorText()));
  ERR_clear_error();
  if (chain.empty()) return absl::InvalidArgumentError("certificate: no PEM certificate found");

  auto key_bio = ReadOnlyBio(key_pem);
  if (!key_bio) return absl::ResourceExhaustedError("key: out of memory");
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    if (IsEndOfPem()) {
      ERR_clear_error();
      return absl::InvalidArgumentError("key: no PEM private key found");
    }
    return absl::InvalidArgumentError(absl::StrCat("key: bad PEM: ", LastErrorText()));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("key does not match certificate");
  }

  cert->ctx_.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX* ctx = cert->ctx_.get();
  const uint16_t min_version = options.min_version_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, min_version) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
    return absl::InternalError(absl::StrCat("tls: server context: ", LastErrorText()));
  }
  cert->client_auth_ = options.client_auth;
  if (options.client_auth != ClientAuth::kNone) {
    // The context's own store holds the client CAs; BoringSSL verifies with the "ssl_client"
    // purpose, so a server-only leaf (EKU serverAuth alone) is refused as a client.
    if (absl::Status st = AddCaCertificates(options.client_ca_pem, SSL_CTX_get_cert_store(ctx), "client_ca_pem");
        !st.ok()) {
      return st;
    }
    int mode = SSL_VERIFY_PEER;
    if (options.client_auth == ClientAuth::kRequired) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  } else if (!options.client_ca_pem.empty()) {
    return absl::InvalidArgumentError("client_ca_pem: given, but client_auth is none");
  }
  if (!SSL_CTX_use_certificate(ctx, chain[0].get())) {
    return absl::InvalidArgumentError(absl::StrCat("certificate: ", LastErrorText()));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!SSL_CTX_add1_chain_cert(ctx, chain[i].get())) {
      return absl::InvalidArgumentError(absl::StrCat("certificate: chain[", i, "]: ", LastErrorText()));
    }
  }
  if (!SSL_CTX_use_PrivateKey(ctx, key.get()) || !SSL_CTX_check_private_key(ctx)) {
    return absl::InvalidArgumentError(absl::StrCat("key: ", LastErrorText()));
  }
  if (!cert->alpn_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &ServerCertificate::SelectAlpn, cert.get());

  uint8_t* der = nullptr;
  const int der_len = i2d_X509(chain[0].get(), &der);
  if (der_len <= 0) return absl::InternalError(absl::StrCat("certificate: ", LastErrorText()));
  cert->leaf_der_.assign(der, der + der_len);
  OPENSSL_free(der);
  cert->dns_names_ = DnsNames(chain[0].get());
  cert->spki_sha256_ = SpkiSha256(chain[0].get());
  cert->leaf_ = std::move(chain[0]);
  return std::shared_ptr<const ServerCertificate>(std::move(cert));
}

// SelectAlpn walks our list in preference order and takes the first name the client offered.
// BoringSSL has already checked that |in| is a well-formed, non-empty list.
int ServerCertificate::SelectAlpn(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                                  unsigned in_len, void* arg) {
  const auto* self = static_cast<const ServerCertificate*>(arg);
  for (const std::string& want : self->alpn_) {
    base::ByteReader offered(base::ByteSpan(in, in_len));
    while (!offered.empty()) {
      base::ByteReader name(base::ByteSpan{});
      if (!offered.ReadU8LengthPrefixed(&name)) break;
      const base::ByteSpan n = name.rest();
      if (n.size() == want.size() && std::equal(n.begin(), n.end(), want.begin())) {
        *out = n.data();
        *out_len = static_cast<uint8_t>(n.size());
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no overlap: go on without ALPN (see the class comment)
}

absl::Status CertStore::Put(std::string name, std::shared_ptr<const ServerCertificate> cert) {
  if (!cert) return absl::InvalidArgumentError("cert store: null certificate");
  name = Lower(name);
  bool wildcard = false;
  std::string_view key;
  if (absl::Status st = ValidName(name, &wildcard, &key); !st.ok()) return st;
  auto& map = wildcard ? wildcard_ : exact_;
  map.insert_or_assign(std::string(key), std::move(cert));
  return absl::OkStatus();
}

bool CertStore::Remove(std::string_view name) {
  const std::string lower = Lower(name);
  if (lower.size() > 2 && lower[0] == '*' && lower[1] == '.') {
    auto it = wildcard_.find(std::string_view(lower).substr(2));
    if (it == wildcard_.end()) return false;
    wildcard_.erase(it);
    return true;
  }
  return exact_.erase(lower) > 0;
}

std::shared_ptr<const ServerCertificate> CertStore::Find(std::string_view sni) const {
  if (sni.empty() || sni.size() > kMaxNameLen) return default_;
  const std::string lower = Lower(sni);
  if (auto it = exact_.find(lower); it != exact_.end()) return it->second;
  // One label and its dot come off the left; what is left must be a wildcard's base.
  const size_t dot = lower.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(std::string_view(lower).substr(dot + 1)); it != wildcard_.end()) {
      return it->second;
    }
  }
  return default_;
}

}  // namespace p2proxy::tls
