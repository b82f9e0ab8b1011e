// pki_csr_fuzzer: ParseCsr (a node's enrollment request, from the network) on arbitrary bytes,
// and the same bytes given to InspectCertificate and KeyPair::FromPem, which must not crash.
//
// A request ParseCsr accepts must hold what it promises: an SPKI that parses as a P-256 key and
// re-encodes to the same DER, spki_sha256 = SHA-256 of that DER, a common name that is empty or
// 1 to 64 bytes of UTF-8 without control characters or ','; the same answer with whitespace
// appended, and a refusal with text appended. The CA must issue it a certificate for that key.
//
// A mutated request almost never keeps a valid signature, so the fuzzer also re-signs whatever
// BoringSSL reads as a PEM request with a fixed P-256 key: that reaches the subject and
// common-name checks behind the signature. The re-signed request must be accepted exactly when
// the common name passes an independent model of the rule, and with the fixed key's SPKI.
// Errors must carry a bounded message. A failure aborts.
//
// Mutating base64 text rarely yields a DER change that means something, so an input without a
// "-----BEGIN" is also taken as DER and wrapped as a PEM request, certificate and private key
// (seeds der_*): that lets the fuzzer mutate the ASN.1 itself.
#include <arpa/inet.h>
#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "tls/pki.h"

namespace {

using p2proxy::tls::CertificateAuthority;
using p2proxy::tls::CsrInfo;
using p2proxy::tls::KeyPair;

void Check(bool ok) {
  if (!ok) std::abort();
}

// kMaxErrorLen: an error repeats at most 64 bytes of a bad value (escaped), so a peer cannot
// make a log line as long as its input.
constexpr size_t kMaxErrorLen = 1024;

// The fixed key re-signed requests carry (made for this fuzzer; it protects nothing).
constexpr std::string_view kFuzzKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWjQ18X3pENknsm9N\n"
    "xFHeM/iTaqUdywlKQ77hknVWLd6hRANCAAT3IRVQAh0wrhy7PDRGUb4EryGIUiAJ\n"
    "5eti6VDFRqPc/9SW3gMKmTm96N9ivpgSwFyleZLyZjLkzKsvuB+x1CpD\n"
    "-----END PRIVATE KEY-----\n";

// Fixed clock for issuing, inside the CA's validity.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

struct Fixture {
  KeyPair key;
  CertificateAuthority ca;
};

const Fixture& GetFixture() {
  static const Fixture* fixture = [] {
    auto key = KeyPair::FromPem(kFuzzKeyPem);
    Check(key.ok());
    auto ca = CertificateAuthority::Create("pki_csr_fuzzer CA", kNow);
    Check(ca.ok());
    return new Fixture{*std::move(key), *std::move(ca)};
  }();
  return *fixture;
}

void CheckError(const absl::Status& status) {
  Check(!status.ok() && !status.message().empty() && status.message().size() <= kMaxErrorLen);
}

bool IsSha256Of(const std::vector<uint8_t>& data, const p2proxy::tls::Sha256Digest& digest) {
  uint8_t want[SHA256_DIGEST_LENGTH];
  SHA256(data.data(), data.size(), want);
  return digest.size() == SHA256_DIGEST_LENGTH && std::equal(digest.begin(), digest.end(), want);
}

// ModelValidName is the common-name rule written apart from pki.cc: 1 to 64 bytes; UTF-8 by
// RFC 3629's table of well-formed byte sequences; no C0, DEL or C1 control; no ','.
bool ModelValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  const auto at = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const auto in = [](uint8_t b, uint8_t lo, uint8_t hi) { return b >= lo && b <= hi; };
  for (size_t i = 0; i < s.size();) {
    const uint8_t b0 = at(i);
    if (b0 < 0x80) {
      if (b0 < 0x20 || b0 == 0x7f || b0 == ',') return false;
      i += 1;
      continue;
    }
    size_t n = 0;
    uint8_t lo = 0x80;
    uint8_t hi = 0xbf;
    if (in(b0, 0xc2, 0xdf)) {
      n = 2;
    } else if (b0 == 0xe0) {
      n = 3, lo = 0xa0;
    } else if (in(b0, 0xe1, 0xec) || in(b0, 0xee, 0xef)) {
      n = 3;
    } else if (b0 == 0xed) {
      n = 3, hi = 0x9f;
    } else if (b0 == 0xf0) {
      n = 4, lo = 0x90;
    } else if (in(b0, 0xf1, 0xf3)) {
      n = 4;
    } else if (b0 == 0xf4) {
      n = 4, hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < n) return false;
    if (!in(at(i + 1), lo, hi)) return false;
    for (size_t k = 2; k < n; ++k) {
      if (!in(at(i + k), 0x80, 0xbf)) return false;
    }
    // C1 controls U+0080..U+009F are C2 80..C2 9F.
    if (b0 == 0xc2 && at(i + 1) <= 0x9f) return false;
    i += n;
  }
  return true;
}

// CheckSpki: |der| is one P-256 SubjectPublicKeyInfo in canonical DER and |sha256| its hash.
void CheckSpki(const std::vector<uint8_t>& der, const p2proxy::tls::Sha256Digest& sha256) {
  Check(!der.empty());
  Check(IsSha256Of(der, sha256));
  CBS cbs;
  CBS_init(&cbs, der.data(), der.size());
  bssl::UniquePtr<EVP_PKEY> key(EVP_parse_public_key(&cbs));
  Check(key != nullptr && CBS_len(&cbs) == 0);
  Check(EVP_PKEY_id(key.get()) == EVP_PKEY_EC);
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key.get());
  Check(ec != nullptr && EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_X9_62_prime256v1);
  bssl::ScopedCBB cbb;
  uint8_t* again = nullptr;
  size_t again_len = 0;
  Check(CBB_init(cbb.get(), der.size()) && EVP_marshal_public_key(cbb.get(), key.get()) &&
        CBB_finish(cbb.get(), &again, &again_len));
  bssl::UniquePtr<uint8_t> owned(again);
  Check(std::vector<uint8_t>(again, again + again_len) == der);
}

bool SameInfo(const CsrInfo& a, const CsrInfo& b) {
  return a.common_name == b.common_name && a.spki_der == b.spki_der && a.spki_sha256 == b.spki_sha256;
}

// CheckAccepted: what ParseCsr promises about a request it accepted from |pem|.
void CheckAccepted(std::string_view pem, const CsrInfo& info) {
  CheckSpki(info.spki_der, info.spki_sha256);
  Check(info.common_name.empty() || ModelValidName(info.common_name));
  // Only whitespace may follow the block; trailing whitespace changes nothing.
  if (pem.size() + 4 <= p2proxy::tls::kMaxCsrPemLen) {
    auto spaced = p2proxy::tls::ParseCsr(std::string(pem) + "\r\n \t");
    Check(spaced.ok() && SameInfo(*spaced, info));
    auto trailed = p2proxy::tls::ParseCsr(std::string(pem) + "\nx");
    CheckError(trailed.status());
  }
  // The CA certifies the key the request carries, whatever the request's name.
  auto issued = GetFixture().ca.IssueNodeCertificate(pem, "node-1", kNow, absl::Hours(24));
  Check(issued.ok());
  auto cert = p2proxy::tls::InspectCertificate(issued->certificate_pem);
  Check(cert.ok() && cert->spki_sha256 == info.spki_sha256 && cert->common_name == "node-1" && !cert->is_ca);
}

// Resign copies the subject and attributes of the first PEM request BoringSSL reads from |pem|
// into a new request with the fixed key, signs it (version 1, ECDSA with SHA-256) and returns it
// as PEM; empty if there is none. A new request, because this BoringSSL signs a parsed request's
// cached encoding: X509_REQ_set_pubkey on it leaves the old key in what gets signed.
std::string Resign(std::string_view pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
  if (!bio) return std::string();
  bssl::UniquePtr<X509_REQ> parsed(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!parsed) return std::string();
  EVP_PKEY* key = GetFixture().key.get();
  bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
  bool ok = req && X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) &&
            X509_REQ_set_subject_name(req.get(), X509_REQ_get_subject_name(parsed.get())) &&
            X509_REQ_set_pubkey(req.get(), key);
  for (int i = 0; ok && i < X509_REQ_get_attr_count(parsed.get()); ++i) {
    ok = X509_REQ_add1_attr(req.get(), X509_REQ_get_attr(parsed.get(), i));
  }
  if (!ok || X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    ERR_clear_error();
    return std::string();
  }
  bssl::UniquePtr<BIO> out(BIO_new(BIO_s_mem()));
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!out || !PEM_write_bio_X509_REQ(out.get(), req.get()) || !BIO_mem_contents(out.get(), &data, &len)) {
    ERR_clear_error();
    return std::string();
  }
  return std::string(reinterpret_cast<const char*>(data), len);
}

// CommonNameBytes is the subject's first CN of the request in |pem| as UTF-8; false if the
// request has a CN that is not valid text. |*has_cn| says whether there is one.
bool CommonNameBytes(std::string_view pem, bool* has_cn, std::string* out_cn) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
  bssl::UniquePtr<X509_REQ> req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  Check(req != nullptr);
  const X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  *has_cn = idx >= 0;
  if (idx < 0) return true;
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
  ERR_clear_error();
  if (len < 0) return false;
  out_cn->assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return true;
}

// CheckResigned: a request signed by the fixed key is accepted exactly when its CN is absent
// or passes the model, and then with the fixed key's SPKI and that CN.
void CheckResigned(std::string_view pem) {
  const std::string resigned = Resign(pem);
  if (resigned.empty() || resigned.size() > p2proxy::tls::kMaxCsrPemLen) return;
  bool has_cn = false;
  std::string cn;
  const bool cn_is_text = CommonNameBytes(resigned, &has_cn, &cn);
  // An empty CN is "no name" to ParseCsr; the model refuses it, so leave it out.
  const bool want_ok = cn_is_text && (!has_cn || cn.empty() || ModelValidName(cn));
  auto info = p2proxy::tls::ParseCsr(resigned);
  if (!info.ok()) {
    CheckError(info.status());
    Check(!want_ok);
    return;
  }
  Check(want_ok);
  Check(info->common_name == cn);
  Check(info->spki_der == GetFixture().key.spki_der() && info->spki_sha256 == GetFixture().key.spki_sha256());
  CheckAccepted(resigned, *info);
}

void CheckInspect(std::string_view pem) {
  auto info = p2proxy::tls::InspectCertificate(pem);
  if (!info.ok()) {
    CheckError(info.status());
    return;
  }
  // serial_hex: lowercase hex digits, "-" first if negative.
  std::string_view serial = info->serial_hex;
  if (!serial.empty() && serial[0] == '-') serial.remove_prefix(1);
  Check(!serial.empty());
  for (char c : serial) Check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  // ip_addresses are as inet_ntop prints them, so they read back.
  for (const std::string& ip : info->ip_addresses) {
    uint8_t buf[16];
    Check(inet_pton(AF_INET, ip.c_str(), buf) == 1 || inet_pton(AF_INET6, ip.c_str(), buf) == 1);
  }
}

void CheckKey(std::string_view pem) {
  auto key = KeyPair::FromPem(pem);
  if (!key.ok()) {
    CheckError(key.status());
    return;
  }
  CheckSpki(key->spki_der(), key->spki_sha256());
  // The key round-trips through its PEM.
  auto again_pem = key->ToPem();
  Check(again_pem.ok());
  auto again = KeyPair::FromPem(again_pem->view());
  Check(again.ok() && again->spki_der() == key->spki_der());
}

// WrapPem is |der| as one PEM block labelled |label|, in lines of 64 base64 characters.
std::string WrapPem(std::string_view label, std::string_view der) {
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (size_t pos = 0; pos < der.size(); pos += 48) {
    const size_t n = std::min<size_t>(48, der.size() - pos);
    uint8_t line[65];
    const size_t len = EVP_EncodeBlock(line, reinterpret_cast<const uint8_t*>(der.data() + pos), n);
    out.append(reinterpret_cast<const char*>(line), len);
    out.push_back('\n');
  }
  return out + "-----END " + std::string(label) + "-----\n";
}

void CheckCsr(std::string_view pem) {
  auto csr = p2proxy::tls::ParseCsr(pem);
  if (csr.ok()) {
    CheckAccepted(pem, *csr);
  } else {
    CheckError(csr.status());
  }
  CheckResigned(pem);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  GetFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view pem(reinterpret_cast<const char*>(data), size);
  CheckCsr(pem);
  CheckInspect(pem);
  CheckKey(pem);
  if (pem.find("-----BEGIN") == std::string_view::npos) {
    CheckCsr(WrapPem("CERTIFICATE REQUEST", pem));
    CheckInspect(WrapPem("CERTIFICATE", pem));
    CheckKey(WrapPem("PRIVATE KEY", pem));
  }
  return 0;
}
