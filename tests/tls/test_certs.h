// test_certs.h: a throwaway PKI made at test time with BoringSSL: an EC P-256 CA and leaves it
// signs, with subjectAltName dNSName entries, as PEM. Header-only so any test binary can
// include it as "tls/test_certs.h". Keys exist only in the test's memory.
#ifndef P2PROXY_TESTS_TLS_TEST_CERTS_H_
#define P2PROXY_TESTS_TLS_TEST_CERTS_H_

#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace p2proxy::tls::testing {

// TestCertsCheck aborts on a failed BoringSSL call: a broken helper must not look like a pass.
inline void TestCertsCheck(bool ok) {
  if (!ok) std::abort();
}

inline bssl::UniquePtr<EVP_PKEY> NewP256Key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  TestCertsCheck(ec && EC_KEY_generate_key(ec.get()));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  TestCertsCheck(key && EVP_PKEY_assign_EC_KEY(key.get(), ec.release()));
  return key;
}

inline std::string BioText(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  TestCertsCheck(BIO_mem_contents(bio, &data, &len));
  return std::string(reinterpret_cast<const char*>(data), len);
}

inline std::string CertPem(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  TestCertsCheck(PEM_write_bio_X509(bio.get(), cert));
  return BioText(bio.get());
}

inline std::string KeyPem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  TestCertsCheck(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr));
  return BioText(bio.get());
}

inline void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  TestCertsCheck(ext && X509_add_ext(cert, ext.get(), -1));
}

// MakeCert makes a certificate for |key| named |cn|, signed by |issuer|/|issuer_key| (or self-
// signed when |issuer| is null), valid from an hour ago for 30 days.
inline bssl::UniquePtr<X509> MakeCert(const std::string& cn, EVP_PKEY* key, X509* issuer,
                                      EVP_PKEY* issuer_key, bool is_ca,
                                      const std::vector<std::string>& dns_names, long serial) {
  bssl::UniquePtr<X509> cert(X509_new());
  TestCertsCheck(cert && X509_set_version(cert.get(), X509_VERSION_3));
  TestCertsCheck(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial));
  TestCertsCheck(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600));
  TestCertsCheck(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 86400));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  TestCertsCheck(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                            reinterpret_cast<const uint8_t*>(cn.c_str()), -1, -1, 0));
  TestCertsCheck(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject));
  TestCertsCheck(X509_set_pubkey(cert.get(), key));
  X509* signer = issuer ? issuer : cert.get();
  if (is_ca) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  if (!dns_names.empty()) {
    std::string san;
    for (const std::string& name : dns_names) {
      if (!san.empty()) san += ",";
      san += "DNS:" + name;
    }
    AddExtension(cert.get(), signer, NID_subject_alt_name, san);
  }
  TestCertsCheck(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()));
  return cert;
}

// TestLeaf is a server certificate as ServerCertificate::FromPem takes it.
struct TestLeaf {
  std::string chain_pem;  // the leaf only (the CA is the trust anchor)
  std::string key_pem;
};

// TestCa is a self-signed CA that issues leaves.
class TestCa {
 public:
  explicit TestCa(const std::string& cn = "p2proxy test CA")
      : key_(NewP256Key()), cert_(MakeCert(cn, key_.get(), nullptr, nullptr, true, {}, 1)) {}

  // cert_pem is the CA certificate, for ClientTlsOptions::ca_pem.
  std::string cert_pem() const { return CertPem(cert_.get()); }

  // Issue makes a leaf for |dns_names| (the first is also the CN) with a fresh P-256 key.
  TestLeaf Issue(const std::vector<std::string>& dns_names) {
    bssl::UniquePtr<EVP_PKEY> key = NewP256Key();
    bssl::UniquePtr<X509> leaf =
        MakeCert(dns_names.empty() ? "leaf" : dns_names[0], key.get(), cert_.get(), key_.get(), false,
                 dns_names, ++serial_);
    return TestLeaf{CertPem(leaf.get()), KeyPem(key.get())};
  }

 private:
  bssl::UniquePtr<EVP_PKEY> key_;
  bssl::UniquePtr<X509> cert_;
  long serial_ = 1;
};

}  // namespace p2proxy::tls::testing

#endif  // P2PROXY_TESTS_TLS_TEST_CERTS_H_
