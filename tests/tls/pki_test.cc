// The internal CA and PKI helpers: keys, CSRs, issuing, inspection, verification (BoringSSL's
// verifier and the openssl command line tool as an independent one), and a TLS handshake with
// an issued certificate. Time is a fixed `now`; openssl gets it through -attime.
#include "tls/pki.h"

#include <openssl/cipher.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tls/cert_store.h"

using p2proxy::tls::CertificateAuthority;
using p2proxy::tls::CertificateInfo;
using p2proxy::tls::CertificatePurpose;
using p2proxy::tls::CsrInfo;
using p2proxy::tls::InspectCertificate;
using p2proxy::tls::IssuedCertificate;
using p2proxy::tls::KeyPair;
using p2proxy::tls::MakeCsrPem;
using p2proxy::tls::ParseCsr;
using p2proxy::tls::ResourceCertificate;
using p2proxy::tls::SecretString;
using p2proxy::tls::ServerCertificate;
using p2proxy::tls::Sha256Digest;
using p2proxy::tls::ValidateDnsName;
using p2proxy::tls::VerifyCertificate;

namespace {

// kNow is a fixed "now" (2026-01-01T00:00:00Z) for every certificate the tests issue.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);
const absl::Duration kDay = absl::Hours(24);

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Message(const absl::Status& st) { return std::string(st.message()); }

CertificateAuthority NewCa(const std::string& cn = "p2proxy test CA", absl::Duration validity = 3650 * kDay) {
  auto ca = CertificateAuthority::Create(cn, kNow, validity);
  REQUIRE(ca.ok());
  return std::move(ca).value();
}

KeyPair NewKey() {
  auto key = KeyPair::GenerateP256();
  REQUIRE(key.ok());
  return std::move(key).value();
}

std::string NewCsr(const KeyPair& key, const std::string& cn = "laptop") {
  auto csr = MakeCsrPem(key, cn);
  REQUIRE(csr.ok());
  return *csr;
}

CertificateInfo Inspect(const std::string& pem) {
  auto info = InspectCertificate(pem);
  REQUIRE(info.ok());
  return *info;
}

// --- BoringSSL helpers for inputs the library must refuse ---

bssl::UniquePtr<EVP_PKEY> EcKey(int curve_nid) {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(curve_nid));
  REQUIRE((ec && EC_KEY_generate_key(ec.get())));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  REQUIRE((key && EVP_PKEY_assign_EC_KEY(key.get(), ec.release())));
  return key;
}

bssl::UniquePtr<EVP_PKEY> RsaKey() {
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  REQUIRE((rsa && e && BN_set_word(e.get(), RSA_F4) && RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr)));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  REQUIRE((key && EVP_PKEY_assign_RSA(key.get(), rsa.release())));
  return key;
}

std::string BioText(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  REQUIRE(BIO_mem_contents(bio, &data, &len));
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string PrivateKeyPem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr));
  return BioText(bio.get());
}

// RawCsr is a CSR made directly with BoringSSL: any key, any digest.
std::string RawCsr(EVP_PKEY* key, const EVP_MD* md, const std::string& cn) {
  bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
  REQUIRE(req);
  REQUIRE(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, MBSTRING_UTF8,
                                     reinterpret_cast<const uint8_t*>(cn.data()), static_cast<int>(cn.size()), -1,
                                     0));
  REQUIRE(X509_REQ_set_pubkey(req.get(), key));
  REQUIRE(X509_REQ_sign(req.get(), key, md) > 0);
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_X509_REQ(bio.get(), req.get()));
  return BioText(bio.get());
}

// PemToDer / DerToPem let a test change bytes under a signature.
std::vector<uint8_t> PemToDer(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
  char* name = nullptr;
  char* header = nullptr;
  uint8_t* data = nullptr;
  long len = 0;
  REQUIRE(PEM_read_bio(bio.get(), &name, &header, &data, &len));
  std::vector<uint8_t> der(data, data + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return der;
}

std::string DerToPem(const char* type, const std::vector<uint8_t>& der) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio(bio.get(), type, "", der.data(), static_cast<long>(der.size())));
  return BioText(bio.get());
}

bssl::UniquePtr<X509> ParseCert(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  return cert;
}

// ExtensionCritical: -1 if |cert| lacks the extension, else whether it is critical.
int ExtensionCritical(X509* cert, int nid) {
  const int idx = X509_get_ext_by_NID(cert, nid, -1);
  if (idx < 0) return -1;
  return X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

// --- the openssl command line tool ---

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "p2proxy_pki_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, std::string_view text) const {
    const std::string p = (path_ / name).string();
    std::ofstream out(p, std::ios::binary);
    out << text;
    out.close();
    REQUIRE(out.good());
    return p;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(path_ / name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Openssl runs `openssl ARGS` (paths come from TempDir, so nothing needs quoting).
RunResult Openssl(const TempDir& dir, const std::string& args) {
  const std::string out = dir.path("openssl.out");
  const int rc = std::system(("/usr/bin/openssl " + args + " >" + out + " 2>&1").c_str());
  RunResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.output = dir.Read("openssl.out");
  INFO("openssl " << args << "\n" << r.output);
  return r;
}

std::string AtTime(absl::Time t) { return " -attime " + std::to_string(absl::ToUnixSeconds(t)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Keys

TEST_CASE("KeyPair: a P-256 key round trips through PKCS#8 PEM with the same public key") {
  KeyPair key = NewKey();
  auto pem = key.ToPem();
  REQUIRE(pem.ok());
  CHECK(pem->view().rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  auto again = KeyPair::FromPem(pem->view());
  REQUIRE(again.ok());
  CHECK(again->spki_der() == key.spki_der());
  CHECK(again->spki_sha256() == key.spki_sha256());
  // A different key has a different pin.
  CHECK(NewKey().spki_sha256() != key.spki_sha256());
}

TEST_CASE("KeyPair: spki_sha256 is SHA-256 of the DER SubjectPublicKeyInfo") {
  KeyPair key = NewKey();
  // P-256 SPKI: SEQUENCE { AlgorithmIdentifier, BIT STRING of an uncompressed point } = 91 bytes.
  REQUIRE(key.spki_der().size() == 91);
  Sha256Digest expected{};
  SHA256(key.spki_der().data(), key.spki_der().size(), expected.data());
  CHECK(key.spki_sha256() == expected);
}

TEST_CASE("KeyPair: an \"EC PRIVATE KEY\" (RFC 5915) PEM is accepted") {
  bssl::UniquePtr<EVP_PKEY> evp = EcKey(NID_X9_62_prime256v1);
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_ECPrivateKey(bio.get(), EVP_PKEY_get0_EC_KEY(evp.get()), nullptr, nullptr, 0, nullptr,
                                     nullptr));
  const std::string pem = BioText(bio.get());
  REQUIRE(Contains(pem, "BEGIN EC PRIVATE KEY"));
  auto key = KeyPair::FromPem(pem);
  REQUIRE(key.ok());
  auto from_pkcs8 = KeyPair::FromPem(PrivateKeyPem(evp.get()));
  REQUIRE(from_pkcs8.ok());
  CHECK(key->spki_sha256() == from_pkcs8->spki_sha256());
}

TEST_CASE("KeyPair: other key types and curves, garbage, oversized and encrypted PEM are refused") {
  SECTION("RSA") {
    auto key = KeyPair::FromPem(PrivateKeyPem(RsaKey().get()));
    REQUIRE_FALSE(key.ok());
    CHECK(Message(key.status()) == "key: rsaEncryption key; only ECDSA P-256 keys are supported");
  }
  SECTION("P-384") {
    auto key = KeyPair::FromPem(PrivateKeyPem(EcKey(NID_secp384r1).get()));
    REQUIRE_FALSE(key.ok());
    CHECK(Message(key.status()) == "key: EC key on curve secp384r1; only P-256 (prime256v1) is supported");
  }
  SECTION("not PEM") {
    auto key = KeyPair::FromPem("hello");
    REQUIRE_FALSE(key.ok());
    CHECK(Contains(Message(key.status()), "key: no PEM private key found"));
  }
  SECTION("PEM of garbage") {
    auto key = KeyPair::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    REQUIRE_FALSE(key.ok());
    CHECK(Contains(Message(key.status()), "key: bad PEM private key"));
  }
  SECTION("empty and oversized") {
    CHECK(Message(KeyPair::FromPem("").status()) == "key: empty");
    auto key = KeyPair::FromPem(std::string(p2proxy::tls::kMaxKeyPemLen + 1, 'A'));
    REQUIRE_FALSE(key.ok());
    CHECK(Message(key.status()) == "key: 16385 bytes; at most 16384 are accepted");
  }
  SECTION("encrypted") {
    auto key =
        KeyPair::FromPem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
    REQUIRE_FALSE(key.ok());
    CHECK(Message(key.status()) ==
          "key: the PEM key is encrypted; give it unencrypted (and protect the file instead)");
    // A real legacy encrypted key, as `openssl ec -aes128` writes one.
    bssl::UniquePtr<EVP_PKEY> evp = EcKey(NID_X9_62_prime256v1);
    bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
    static char password[] = "secret";
    REQUIRE(PEM_write_bio_ECPrivateKey(bio.get(), EVP_PKEY_get0_EC_KEY(evp.get()), EVP_aes_128_cbc(),
                                       reinterpret_cast<uint8_t*>(password), 6, nullptr, nullptr));
    const std::string pem = BioText(bio.get());
    REQUIRE(Contains(pem, "Proc-Type: 4,ENCRYPTED"));
    key = KeyPair::FromPem(pem);
    REQUIRE_FALSE(key.ok());
    CHECK(Contains(Message(key.status()), "encrypted"));
  }
}

TEST_CASE("SecretString: moves leave nothing behind, Clear empties") {
  SecretString a(std::string(100, 'k'));
  SecretString b(std::move(a));
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  CHECK(b.size() == 100);
  SecretString c;
  c = std::move(b);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(c.view() == std::string(100, 'k'));
  c.Clear();
  CHECK(c.empty());
}

// ---------------------------------------------------------------------------------------------
// CSRs

TEST_CASE("CSR: made and parsed, with the common name and the key's SPKI") {
  KeyPair key = NewKey();
  const std::string csr = NewCsr(key, "laptop of ana");
  CHECK(csr.rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0) == 0);
  auto info = ParseCsr(csr);
  REQUIRE(info.ok());
  CHECK(info->common_name == "laptop of ana");
  CHECK(info->spki_der == key.spki_der());
  CHECK(info->spki_sha256 == key.spki_sha256());
}

TEST_CASE("CSR: MakeCsrPem refuses a common name that is not a name") {
  KeyPair key = NewKey();
  CHECK(Message(MakeCsrPem(key, "").status()) == "csr: common name: empty");
  CHECK(Contains(Message(MakeCsrPem(key, std::string(65, 'a')).status()), "65 bytes; at most 64"));
  CHECK(Contains(Message(MakeCsrPem(key, "a\nb").status()), "control character"));
  CHECK(Contains(Message(MakeCsrPem(key, "a,b").status()), "','"));
  CHECK(Contains(Message(MakeCsrPem(key, "\xff").status()), "not UTF-8"));
}

TEST_CASE("CSR: a broken signature is refused") {
  KeyPair key = NewKey();
  std::vector<uint8_t> der = PemToDer(NewCsr(key, "node-a"));
  SECTION("the subject changed under the signature") {
    const std::string cn = "node-a";
    auto it = std::search(der.begin(), der.end(), cn.begin(), cn.end());
    REQUIRE(it != der.end());
    *(it + 5) = 'b';
  }
  SECTION("the signature's last byte flipped") {
    der.back() ^= 0x01;
  }
  auto info = ParseCsr(DerToPem("CERTIFICATE REQUEST", der));
  REQUIRE_FALSE(info.ok());
  CHECK(Contains(Message(info.status()), "csr: signature does not verify"));
}

TEST_CASE("CSR: RSA and P-384 keys and SHA-1 signatures are refused") {
  SECTION("RSA") {
    bssl::UniquePtr<EVP_PKEY> rsa = RsaKey();
    auto info = ParseCsr(RawCsr(rsa.get(), EVP_sha256(), "rsa"));
    REQUIRE_FALSE(info.ok());
    CHECK(Message(info.status()) == "csr: rsaEncryption key; only ECDSA P-256 keys are supported");
  }
  SECTION("P-384") {
    bssl::UniquePtr<EVP_PKEY> p384 = EcKey(NID_secp384r1);
    auto info = ParseCsr(RawCsr(p384.get(), EVP_sha384(), "p384"));
    REQUIRE_FALSE(info.ok());
    CHECK(Message(info.status()) == "csr: EC key on curve secp384r1; only P-256 (prime256v1) is supported");
  }
  SECTION("SHA-1") {
    bssl::UniquePtr<EVP_PKEY> p256 = EcKey(NID_X9_62_prime256v1);
    auto info = ParseCsr(RawCsr(p256.get(), EVP_sha1(), "sha1"));
    REQUIRE_FALSE(info.ok());
    CHECK(Message(info.status()) == "csr: signed with ecdsa-with-SHA1; ECDSA with SHA-256 is required");
  }
  SECTION("P-256 with SHA-384 is fine") {
    bssl::UniquePtr<EVP_PKEY> p256 = EcKey(NID_X9_62_prime256v1);
    CHECK(ParseCsr(RawCsr(p256.get(), EVP_sha384(), "ok")).ok());
  }
}

TEST_CASE("CSR: garbage, oversized, trailing text and a wrong PEM type are refused") {
  KeyPair key = NewKey();
  const std::string csr = NewCsr(key);
  CHECK(Message(ParseCsr("").status()) == "csr: empty");
  CHECK(Message(ParseCsr("garbage").status()) == "csr: no PEM \"CERTIFICATE REQUEST\" block found");
  CHECK(Contains(Message(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n")
                             .status()),
                 "csr: not a valid PKCS#10 request"));
  // Oversized: refused on length before parsing, even if the start is a valid request.
  CHECK(Message(ParseCsr(csr + std::string(p2proxy::tls::kMaxCsrPemLen, '\n')).status()) ==
        absl::StrCat("csr: ", csr.size() + p2proxy::tls::kMaxCsrPemLen, " bytes; at most 16384 are accepted"));
  CHECK(Contains(Message(ParseCsr(csr + "more\n").status()), "text follows the PEM block"));
  CHECK(ParseCsr(csr + "\n\n").ok());
  // A certificate is not a request.
  CertificateAuthority ca = NewCa();
  CHECK(Message(ParseCsr(ca.certificate_pem()).status()) == "csr: no PEM \"CERTIFICATE REQUEST\" block found");
}

// ---------------------------------------------------------------------------------------------
// The CA

TEST_CASE("CA: Create makes a self-signed P-256 CA certificate with the required extensions") {
  CertificateAuthority ca = NewCa("Example Corp p2proxy CA", 3650 * kDay);
  const CertificateInfo info = Inspect(ca.certificate_pem());
  CHECK(info.common_name == "Example Corp p2proxy CA");
  CHECK(info.is_ca);
  CHECK(info.not_before == kNow - absl::Minutes(5));
  CHECK(info.not_after == kNow + 3650 * kDay);
  CHECK(ca.not_before() == info.not_before);
  CHECK(ca.not_after() == info.not_after);
  CHECK(info.spki_sha256 == ca.spki_sha256());
  CHECK(info.serial_hex.size() == 32);
  CHECK(info.dns_names.empty());

  bssl::UniquePtr<X509> cert = ParseCert(ca.certificate_pem());
  CHECK(ExtensionCritical(cert.get(), NID_basic_constraints) == 1);
  CHECK(ExtensionCritical(cert.get(), NID_key_usage) == 1);
  CHECK(ExtensionCritical(cert.get(), NID_subject_key_identifier) == 0);
  CHECK(X509_get_key_usage(cert.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
  // The CA's self-signature holds.
  bssl::UniquePtr<EVP_PKEY> pub(X509_get_pubkey(cert.get()));
  CHECK(X509_verify(cert.get(), pub.get()) == 1);

  // An independent reading of the same certificate.
  TempDir dir;
  const std::string ca_path = dir.Write("ca.pem", ca.certificate_pem());
  RunResult text = Openssl(dir, "x509 -noout -text -in " + ca_path);
  REQUIRE(text.exit_code == 0);
  CHECK(Contains(text.output, "CA:TRUE, pathlen:0"));
  CHECK(Contains(text.output, "Certificate Sign, CRL Sign"));
  CHECK(Contains(text.output, "NIST CURVE: P-256"));
  CHECK(Contains(text.output, "X509v3 Subject Key Identifier"));
}

TEST_CASE("CA: two CAs have different keys and serials") {
  CertificateAuthority a = NewCa();
  CertificateAuthority b = NewCa();
  CHECK(a.spki_sha256() != b.spki_sha256());
  CHECK(Inspect(a.certificate_pem()).serial_hex != Inspect(b.certificate_pem()).serial_hex);
}

TEST_CASE("CA: reloaded from its PEM, it signs certificates the original CA certificate verifies") {
  CertificateAuthority ca = NewCa();
  auto key_pem = ca.key_pem();
  REQUIRE(key_pem.ok());
  auto loaded = CertificateAuthority::Load(ca.certificate_pem(), key_pem->view());
  REQUIRE(loaded.ok());
  CHECK(loaded->certificate_pem() == ca.certificate_pem());
  CHECK(loaded->spki_sha256() == ca.spki_sha256());
  CHECK(loaded->not_after() == ca.not_after());

  KeyPair node_key = NewKey();
  auto node = loaded->IssueNodeCertificate(NewCsr(node_key), "n1", kNow, 30 * kDay);
  REQUIRE(node.ok());
  CHECK(VerifyCertificate(node->certificate_pem, ca.certificate_pem(), kNow, CertificatePurpose::kClient).ok());
  // The authorityKeyIdentifier of the reloaded CA's leaf is the original CA's subjectKeyIdentifier.
  bssl::UniquePtr<X509> ca_cert = ParseCert(ca.certificate_pem());
  bssl::UniquePtr<X509> leaf = ParseCert(node->certificate_pem);
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(ca_cert.get());
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(leaf.get());
  REQUIRE(skid != nullptr);
  REQUIRE(akid != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(skid, akid) == 0);
}

TEST_CASE("CA: Load refuses a key that does not match, a certificate that is no CA, bad input") {
  CertificateAuthority ca = NewCa();
  CertificateAuthority other = NewCa();
  auto other_key = other.key_pem();
  REQUIRE(other_key.ok());
  SECTION("the other CA's key") {
    auto loaded = CertificateAuthority::Load(ca.certificate_pem(), other_key->view());
    REQUIRE_FALSE(loaded.ok());
    CHECK(Message(loaded.status()) == "ca key: does not match the CA certificate");
  }
  SECTION("a leaf certificate with its own key") {
    auto leaf = ca.IssueResourceCertificate({"vault.example.internal"}, kNow);
    REQUIRE(leaf.ok());
    auto loaded = CertificateAuthority::Load(leaf->chain_pem, leaf->key_pem.view());
    REQUIRE_FALSE(loaded.ok());
    CHECK(Contains(Message(loaded.status()), "ca certificate: not a CA certificate"));
  }
  SECTION("a P-384 key") {
    auto loaded = CertificateAuthority::Load(ca.certificate_pem(), PrivateKeyPem(EcKey(NID_secp384r1).get()));
    REQUIRE_FALSE(loaded.ok());
    CHECK(Contains(Message(loaded.status()), "ca key: EC key on curve secp384r1"));
  }
  SECTION("garbage and two certificates") {
    CHECK(Message(CertificateAuthority::Load("nope", other_key->view()).status()) ==
          "ca certificate: no PEM \"CERTIFICATE\" block found");
    CHECK(Contains(
        Message(CertificateAuthority::Load(ca.certificate_pem() + other.certificate_pem(), other_key->view()).status()),
        "2 certificates"));
  }
}

TEST_CASE("CA: Create refuses a bad common name or validity") {
  CHECK(Message(CertificateAuthority::Create("", kNow).status()) == "ca: common name: empty");
  CHECK(Message(CertificateAuthority::Create("ca", kNow, absl::ZeroDuration()).status()) ==
        "ca: validity: must be positive");
}

// ---------------------------------------------------------------------------------------------
// Node certificates

TEST_CASE("Node certificate: from a CSR, named by the CA, verifies for clientAuth and not serverAuth") {
  CertificateAuthority ca = NewCa();
  KeyPair node_key = NewKey();
  auto issued = ca.IssueNodeCertificate(NewCsr(node_key, "whatever the node asked"), "n-42", kNow, 7 * kDay);
  REQUIRE(issued.ok());
  const CertificateInfo info = Inspect(issued->certificate_pem);
  CHECK(info.common_name == "n-42");  // the CA decides, not the CSR
  CHECK_FALSE(info.is_ca);
  CHECK(info.spki_sha256 == node_key.spki_sha256());
  CHECK(info.serial_hex == issued->serial_hex);
  CHECK(issued->serial_hex.size() == 32);
  CHECK(info.not_before == kNow - absl::Minutes(5));
  CHECK(info.not_after == kNow + 7 * kDay);
  CHECK(issued->not_before == info.not_before);
  CHECK(issued->not_after == info.not_after);

  bssl::UniquePtr<X509> cert = ParseCert(issued->certificate_pem);
  CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(ExtensionCritical(cert.get(), NID_key_usage) == 1);
  CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_CLIENT);
  CHECK(ExtensionCritical(cert.get(), NID_basic_constraints) == 1);
  CHECK(ExtensionCritical(cert.get(), NID_subject_key_identifier) == 0);
  CHECK(ExtensionCritical(cert.get(), NID_authority_key_identifier) == 0);
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);

  CHECK(VerifyCertificate(issued->certificate_pem, ca.certificate_pem(), kNow, CertificatePurpose::kClient).ok());
  const absl::Status as_server =
      VerifyCertificate(issued->certificate_pem, ca.certificate_pem(), kNow, CertificatePurpose::kServer);
  REQUIRE_FALSE(as_server.ok());
  CHECK(Contains(Message(as_server), "unsupported certificate purpose"));
}

TEST_CASE("Node certificate: serials are random and differ for each issue") {
  CertificateAuthority ca = NewCa();
  KeyPair node_key = NewKey();
  const std::string csr = NewCsr(node_key);
  auto a = ca.IssueNodeCertificate(csr, "n1", kNow, kDay);
  auto b = ca.IssueNodeCertificate(csr, "n1", kNow, kDay);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->serial_hex != b->serial_hex);
}

TEST_CASE("Node certificate: a wrong CA, an expired or not yet valid certificate fail verification") {
  CertificateAuthority ca = NewCa();
  CertificateAuthority other = NewCa();
  KeyPair node_key = NewKey();
  auto issued = ca.IssueNodeCertificate(NewCsr(node_key), "n1", kNow, absl::Hours(1));
  REQUIRE(issued.ok());
  const std::string& pem = issued->certificate_pem;

  const absl::Status wrong_ca = VerifyCertificate(pem, other.certificate_pem(), kNow, CertificatePurpose::kClient);
  REQUIRE_FALSE(wrong_ca.ok());
  CHECK(Contains(Message(wrong_ca), "unable to get local issuer certificate"));

  CHECK(VerifyCertificate(pem, ca.certificate_pem(), kNow + absl::Minutes(59), CertificatePurpose::kClient).ok());
  const absl::Status expired =
      VerifyCertificate(pem, ca.certificate_pem(), kNow + absl::Hours(2), CertificatePurpose::kClient);
  REQUIRE_FALSE(expired.ok());
  CHECK(Contains(Message(expired), "certificate has expired (depth 0)"));

  // 4 minutes of skew are tolerated, 6 are not.
  CHECK(VerifyCertificate(pem, ca.certificate_pem(), kNow - absl::Minutes(4), CertificatePurpose::kClient).ok());
  const absl::Status early =
      VerifyCertificate(pem, ca.certificate_pem(), kNow - absl::Minutes(6), CertificatePurpose::kClient);
  REQUIRE_FALSE(early.ok());
  CHECK(Contains(Message(early), "not yet valid"));
}

TEST_CASE("Node certificate: bad node ids, CSRs and validities are refused") {
  CertificateAuthority ca = NewCa("short-lived CA", 30 * kDay);
  KeyPair node_key = NewKey();
  const std::string csr = NewCsr(node_key);
  CHECK(Message(ca.IssueNodeCertificate(csr, "", kNow, kDay).status()) == "node_id: empty");
  CHECK(Contains(Message(ca.IssueNodeCertificate(csr, "a/b", kNow, kDay).status()),
                 "node_id: 'a/b': only letters, digits"));
  CHECK(Contains(Message(ca.IssueNodeCertificate(csr, std::string(65, 'n'), kNow, kDay).status()),
                 "node_id: 'nnnn"));
  CHECK(Message(ca.IssueNodeCertificate("junk", "n1", kNow, kDay).status()) ==
        "csr: no PEM \"CERTIFICATE REQUEST\" block found");
  CHECK(Message(ca.IssueNodeCertificate(csr, "n1", kNow, absl::ZeroDuration()).status()) ==
        "validity: must be positive");
  CHECK(Message(ca.IssueNodeCertificate(csr, "n1", kNow, 398 * kDay).status()) ==
        "validity: 398 days is above the limit of 397 days");
  // The CA expired: nothing more is issued.
  const absl::Status expired = ca.IssueNodeCertificate(csr, "n1", kNow + 31 * kDay, kDay).status();
  CHECK(expired.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Message(expired) == "ca: the CA certificate expired at 2026-01-31T00:00:00Z; rotate the CA");
  // A leaf does not outlive its CA: the end is cut to the CA's.
  auto cut = ca.IssueNodeCertificate(csr, "n1", kNow + 20 * kDay, 90 * kDay);
  REQUIRE(cut.ok());
  CHECK(cut->not_after == ca.not_after());
  CHECK(Inspect(cut->certificate_pem).not_after == ca.not_after());
}

// ---------------------------------------------------------------------------------------------
// Server and resource certificates

TEST_CASE("Server certificate: DNS names and IP literals in subjectAltName, serverAuth") {
  CertificateAuthority ca = NewCa();
  KeyPair key = NewKey();
  auto issued = ca.IssueServerCertificate(key, {"ctl.example.com", "192.0.2.7", "2001:db8::1"}, kNow, 90 * kDay);
  REQUIRE(issued.ok());
  const CertificateInfo info = Inspect(issued->certificate_pem);
  CHECK(info.common_name == "ctl.example.com");
  CHECK(info.dns_names == std::vector<std::string>{"ctl.example.com"});
  CHECK(info.ip_addresses == std::vector<std::string>{"192.0.2.7", "2001:db8::1"});
  CHECK(info.spki_sha256 == key.spki_sha256());  // the pin a node keeps

  const std::string& pem = issued->certificate_pem;
  const std::string ca_pem = ca.certificate_pem();
  CHECK(VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kServer, "ctl.example.com").ok());
  CHECK(VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kServer, "192.0.2.7").ok());
  CHECK(VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kServer, "2001:db8::1").ok());
  const absl::Status other_name =
      VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kServer, "other.example.com");
  REQUIRE_FALSE(other_name.ok());
  CHECK(Contains(Message(other_name), "mismatch"));
  CHECK_FALSE(VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kServer, "192.0.2.8").ok());
  CHECK_FALSE(VerifyCertificate(pem, ca_pem, kNow, CertificatePurpose::kClient).ok());
}

TEST_CASE("Server certificate: wildcards, duplicates, no names and bad names are refused") {
  CertificateAuthority ca = NewCa();
  KeyPair key = NewKey();
  using Names = std::vector<std::string>;
  const auto issue = [&](const Names& names) {
    return Message(ca.IssueServerCertificate(key, names, kNow, kDay).status());
  };
  CHECK(issue({}) == "names: no names; at least one is required");
  CHECK(issue({"*.example.com"}) ==
        "names[0]: not an IP address, and DNS name '*.example.com': wildcards are not allowed here");
  CHECK(issue({"a.example.com", "10.0.0.1", "a.example.com"}) == "names[2]: 'a.example.com' is listed twice");
  CHECK(issue({"::1", "0::1"}) == "names[1]: '0::1' is listed twice");
  CHECK(Contains(issue({"fe80::1%eth0"}), "names[0]: not an IP address, and DNS name 'fe80::1%eth0': character ':'"));
  // inet_pton would stop at the NUL and read "1.2.3.4"; the name is refused instead, escaped.
  CHECK(issue({std::string("1.2.3.4\0x", 9)}) ==
        "names[0]: not an IP address, and DNS name '1.2.3.4\\x00x': character '\\x00' is not allowed (labels are "
        "letters, digits and '-')");
  CHECK(Contains(issue(Names(101, "a.example.com")), "names: 101 names; at most 100"));
}

TEST_CASE("Resource certificate: a new key and a serverAuth leaf for its names, wildcards included") {
  CertificateAuthority ca = NewCa();
  auto rc = ca.IssueResourceCertificate({"vault.example.internal", "*.apps.example.internal"}, kNow);
  REQUIRE(rc.ok());
  const CertificateInfo info = Inspect(rc->chain_pem);
  CHECK(info.common_name == "vault.example.internal");
  CHECK(info.dns_names == std::vector<std::string>{"vault.example.internal", "*.apps.example.internal"});
  CHECK(info.ip_addresses.empty());
  CHECK(info.serial_hex == rc->serial_hex);
  // 90 days by default, well inside Chromium's 398-day limit.
  CHECK(rc->not_after == kNow + 90 * kDay);
  CHECK(info.not_after - info.not_before <= 397 * kDay);
  // The key is the certificate's.
  auto key = KeyPair::FromPem(rc->key_pem.view());
  REQUIRE(key.ok());
  CHECK(key->spki_sha256() == info.spki_sha256);

  const std::string ca_pem = ca.certificate_pem();
  const auto verify = [&](const std::string& host) {
    return VerifyCertificate(rc->chain_pem, ca_pem, kNow, CertificatePurpose::kServer, host);
  };
  CHECK(verify("vault.example.internal").ok());
  CHECK(verify("grafana.apps.example.internal").ok());
  CHECK_FALSE(verify("apps.example.internal").ok());
  CHECK_FALSE(verify("a.b.apps.example.internal").ok());
  CHECK_FALSE(verify("vault.example.com").ok());
  CHECK_FALSE(VerifyCertificate(rc->chain_pem, ca_pem, kNow, CertificatePurpose::kClient).ok());
  CHECK_FALSE(VerifyCertificate(rc->chain_pem, ca_pem, kNow + 91 * kDay, CertificatePurpose::kServer).ok());

  // What Chromium insists on: SAN, serverAuth, ECDSA with SHA-256, no CA bit.
  bssl::UniquePtr<X509> cert = ParseCert(rc->chain_pem);
  CHECK(ExtensionCritical(cert.get(), NID_subject_alt_name) == 0);
  CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_SERVER);
  CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
  CHECK_FALSE(info.is_ca);
}

TEST_CASE("Resource certificate: a first name too long for the CN leaves the subject empty, SAN critical") {
  CertificateAuthority ca = NewCa();
  const std::string long_name = std::string(60, 'a') + ".example.internal";  // 77 bytes
  auto rc = ca.IssueResourceCertificate({long_name}, kNow);
  REQUIRE(rc.ok());
  CHECK(Inspect(rc->chain_pem).common_name.empty());
  bssl::UniquePtr<X509> cert = ParseCert(rc->chain_pem);
  CHECK(ExtensionCritical(cert.get(), NID_subject_alt_name) == 1);
  CHECK(VerifyCertificate(rc->chain_pem, ca.certificate_pem(), kNow, CertificatePurpose::kServer, long_name).ok());
}

TEST_CASE("Resource certificate: bad names and validities are refused, naming the entry") {
  CertificateAuthority ca = NewCa();
  const auto issue = [&](const std::vector<std::string>& names, absl::Duration validity = 90 * kDay) {
    return Message(ca.IssueResourceCertificate(names, kNow, validity).status());
  };
  CHECK(issue({"ok.example.internal", "Vault.example.internal"}) ==
        "dns_names[1]: DNS name 'Vault.example.internal': upper case; write DNS names in lower case");
  CHECK(issue({"10.0.0.1"}) ==
        "dns_names[0]: DNS name '10.0.0.1': the last label is all digits; an IP address is not a DNS name");
  CHECK(issue({"*.internal"}) ==
        "dns_names[0]: DNS name '*.internal': a wildcard needs at least two labels after it ('*.example.internal')");
  CHECK(issue({"a.example.internal"}, 398 * kDay) == "validity: 398 days is above the limit of 397 days");
  CHECK(issue({}) == "dns_names: no names; at least one is required");
}

TEST_CASE("ValidateDnsName: the rules, each broken once") {
  CHECK(ValidateDnsName("vault.example.internal", false).ok());
  CHECK(ValidateDnsName("xn--bcher-kva.example", false).ok());
  CHECK(ValidateDnsName("a-1.b2", false).ok());
  CHECK(ValidateDnsName("localhost", false).ok());
  CHECK(ValidateDnsName("*.apps.example.internal", true).ok());

  const auto why = [](std::string_view name, bool wildcard = true) { return Message(ValidateDnsName(name, wildcard)); };
  CHECK(why("") == "DNS name '': empty");
  CHECK(why("a.example.") == "DNS name 'a.example.': ends with '.'; write it without the trailing dot");
  CHECK(why("a..example") == "DNS name 'a..example': empty label");
  CHECK(why(".example") == "DNS name '.example': empty label");
  CHECK(why("-a.example") == "DNS name '-a.example': a label starts or ends with '-'");
  CHECK(why("a-.example") == "DNS name 'a-.example': a label starts or ends with '-'");
  CHECK(why("under_score.example") ==
        "DNS name 'under_score.example': character '_' is not allowed (labels are letters, digits and '-')");
  CHECK(why("A.example") == "DNS name 'A.example': upper case; write DNS names in lower case");
  CHECK(why("a.*.example.internal") ==
        "DNS name 'a.*.example.internal': '*' is allowed only as the whole leftmost label");
  CHECK(why("f*.example.internal") ==
        "DNS name 'f*.example.internal': '*' is allowed only as the whole leftmost label");
  CHECK(why("*") == "DNS name '*': a wildcard needs at least two labels after it ('*.example.internal')");
  CHECK(why("*.example.internal", false) == "DNS name '*.example.internal': wildcards are not allowed here");
  CHECK(why("1.2.3.4") == "DNS name '1.2.3.4': the last label is all digits; an IP address is not a DNS name");
  CHECK(why(std::string(64, 'a') + ".example") == absl::StrCat("DNS name '", std::string(64, 'a'),
                                                              "...': a label is longer than 63 bytes"));
  CHECK(ValidateDnsName(std::string(63, 'a') + ".example", false).ok());
  std::string long_name;
  for (int i = 0; i < 4; ++i) long_name += std::string(63, 'a') + ".";
  long_name.resize(254);  // 254 bytes, ends in a label char
  long_name.back() = 'a';
  CHECK(Contains(why(long_name), "longer than 253 bytes"));
  // Non-printable bytes are escaped in the message.
  CHECK(why(std::string("a\nb.example")) ==
        "DNS name 'a\\nb.example': character '\\n' is not allowed (labels are letters, digits and '-')");
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the openssl command line tool

TEST_CASE("openssl: verifies resource, server and node certificates against the CA, for the right purpose") {
  CertificateAuthority ca = NewCa();
  KeyPair node_key = NewKey();
  auto node = ca.IssueNodeCertificate(NewCsr(node_key), "n-7", kNow, 30 * kDay);
  auto resource = ca.IssueResourceCertificate({"*.apps.example.internal", "vault.example.internal"}, kNow);
  KeyPair server_key = NewKey();
  auto server = ca.IssueServerCertificate(server_key, {"ctl.example.com", "127.0.0.1"}, kNow, 90 * kDay);
  REQUIRE(node.ok());
  REQUIRE(resource.ok());
  REQUIRE(server.ok());

  TempDir dir;
  const std::string ca_path = dir.Write("ca.pem", ca.certificate_pem());
  const std::string node_path = dir.Write("node.pem", node->certificate_pem);
  const std::string resource_path = dir.Write("resource.pem", resource->chain_pem);
  const std::string server_path = dir.Write("server.pem", server->certificate_pem);
  // -x509_strict adds RFC 5280 checks (key identifiers, critical basicConstraints on the CA).
  const std::string verify = "verify -x509_strict -CAfile " + ca_path + AtTime(kNow + kDay);

  RunResult r = Openssl(dir, verify + " -purpose sslserver " + resource_path);
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.output, "OK"));
  CHECK(Openssl(dir, verify + " -purpose sslserver -verify_hostname grafana.apps.example.internal " + resource_path)
            .exit_code == 0);
  CHECK(Openssl(dir, verify + " -purpose sslserver -verify_hostname vault.example.com " + resource_path)
            .exit_code != 0);
  CHECK(Openssl(dir, verify + " -purpose sslserver -verify_ip 127.0.0.1 " + server_path).exit_code == 0);
  CHECK(Openssl(dir, verify + " -purpose sslclient " + node_path).exit_code == 0);
  // The refusals, so a passing run means something.
  r = Openssl(dir, verify + " -purpose sslserver " + node_path);
  CHECK(r.exit_code != 0);
  CHECK(Contains(r.output, "certificate purpose"));  // "unsuitable ..." in OpenSSL 3
  CHECK(Openssl(dir, verify + " -purpose sslclient " + resource_path).exit_code != 0);
  r = Openssl(dir, "verify -CAfile " + ca_path + AtTime(kNow + 31 * kDay) + " -purpose sslclient " + node_path);
  CHECK(r.exit_code != 0);
  CHECK(Contains(r.output, "certificate has expired"));
  CertificateAuthority other = NewCa();
  const std::string other_path = dir.Write("other.pem", other.certificate_pem());
  CHECK(Openssl(dir, "verify -CAfile " + other_path + AtTime(kNow) + " " + resource_path).exit_code != 0);

  // The resource key as openssl reads it: its public key is the certificate's.
  const std::string key_path = dir.Write("resource.key", resource->key_pem.view());
  CHECK(Openssl(dir, "pkey -in " + key_path + " -pubout -out " + dir.path("k.pub")).exit_code == 0);
  CHECK(Openssl(dir, "x509 -in " + resource_path + " -pubkey -noout -out " + dir.path("c.pub")).exit_code == 0);
  CHECK(dir.Read("k.pub") == dir.Read("c.pub"));
  CHECK(!dir.Read("k.pub").empty());
}

TEST_CASE("openssl: accepts our CSR, and we accept openssl's (and refuse its P-384 one)") {
  TempDir dir;
  KeyPair key = NewKey();
  const std::string ours = dir.Write("ours.csr", NewCsr(key, "laptop"));
  RunResult r = Openssl(dir, "req -verify -noout -in " + ours);
  CHECK(r.exit_code == 0);
  CHECK(Contains(r.output, "verify OK"));
  r = Openssl(dir, "req -noout -subject -in " + ours);
  CHECK(Contains(r.output, "CN = laptop"));

  r = Openssl(dir, "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + dir.path("p256.key") +
                       " -subj /CN=from-openssl -out " + dir.path("p256.csr"));
  REQUIRE(r.exit_code == 0);
  auto info = ParseCsr(dir.Read("p256.csr"));
  REQUIRE(info.ok());
  CHECK(info->common_name == "from-openssl");
  auto openssl_key = KeyPair::FromPem(dir.Read("p256.key"));
  REQUIRE(openssl_key.ok());
  CHECK(info->spki_sha256 == openssl_key->spki_sha256());

  r = Openssl(dir, "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout " + dir.path("p384.key") +
                       " -subj /CN=p384 -out " + dir.path("p384.csr"));
  REQUIRE(r.exit_code == 0);
  CHECK(Message(ParseCsr(dir.Read("p384.csr")).status()) ==
        "csr: EC key on curve secp384r1; only P-256 (prime256v1) is supported");
}

// ---------------------------------------------------------------------------------------------
// A TLS handshake with an issued certificate

namespace {

// Handshake runs a BoringSSL client that trusts |ca_pem| and checks |host| against a server
// made from |server| over a memory BIO pair. Returns the client's verify result, or -1 if the
// handshake failed for another reason.
long Handshake(const ServerCertificate& server, const std::string& ca_pem, const std::string& host, absl::Time now,
               bool* completed) {
  *completed = false;
  bssl::UniquePtr<SSL_CTX> client_ctx(SSL_CTX_new(TLS_method()));
  REQUIRE(client_ctx);
  bssl::UniquePtr<BIO> ca_bio(BIO_new_mem_buf(ca_pem.data(), static_cast<ptrdiff_t>(ca_pem.size())));
  bssl::UniquePtr<X509> ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(ca);
  REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx.get()), ca.get()));
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);

  bssl::UniquePtr<SSL> client(SSL_new(client_ctx.get()));
  bssl::UniquePtr<SSL> srv(SSL_new(server.ctx()));
  REQUIRE(client);
  REQUIRE(srv);
  REQUIRE(SSL_set_tlsext_host_name(client.get(), host.c_str()));
  X509_VERIFY_PARAM* param = SSL_get0_param(client.get());
  REQUIRE(X509_VERIFY_PARAM_set1_host(param, host.data(), host.size()));
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(srv.get());

  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  REQUIRE(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0));
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(srv.get(), server_bio, server_bio);

  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    for (auto [ssl, done] : {std::pair{client.get(), &client_done}, std::pair{srv.get(), &server_done}}) {
      if (*done) continue;
      const int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
        continue;
      }
      const int err = SSL_get_error(ssl, rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return ssl == client.get() ? SSL_get_verify_result(client.get()) : -1;
      }
    }
  }
  *completed = client_done && server_done;
  return SSL_get_verify_result(client.get());
}

}  // namespace

TEST_CASE("TLS: a resource certificate served through ServerCertificate passes a verifying client") {
  CertificateAuthority ca = NewCa();
  auto rc = ca.IssueResourceCertificate({"vault.example.internal", "*.apps.example.internal"}, kNow);
  REQUIRE(rc.ok());
  auto server = ServerCertificate::FromPem(rc->chain_pem, rc->key_pem.view());
  REQUIRE(server.ok());

  bool completed = false;
  CHECK(Handshake(**server, ca.certificate_pem(), "vault.example.internal", kNow, &completed) == X509_V_OK);
  CHECK(completed);
  CHECK(Handshake(**server, ca.certificate_pem(), "grafana.apps.example.internal", kNow + 30 * kDay, &completed) ==
        X509_V_OK);
  CHECK(completed);

  // Refusals: a client trusting another CA, a name the certificate lacks, a time past its end.
  CertificateAuthority other = NewCa();
  CHECK(Handshake(**server, other.certificate_pem(), "vault.example.internal", kNow, &completed) ==
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK_FALSE(completed);
  CHECK(Handshake(**server, ca.certificate_pem(), "vault.example.com", kNow, &completed) ==
        X509_V_ERR_HOSTNAME_MISMATCH);
  CHECK_FALSE(completed);
  CHECK(Handshake(**server, ca.certificate_pem(), "vault.example.internal", kNow + 91 * kDay, &completed) ==
        X509_V_ERR_CERT_HAS_EXPIRED);
  CHECK_FALSE(completed);
}
