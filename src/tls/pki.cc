// pki.cc: P-256 keys, PKCS#10 requests, the internal CA's issuing, inspection and verification.
#include "tls/pki.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/encoding.h"
#include "base/status_macros.h"

namespace p2proxy::tls {
namespace {

constexpr size_t kMaxNameLen = 64;      // X.520 ub-common-name; control.proto's names and ids
constexpr size_t kMaxDnsNameLen = 253;  // RFC 1035 2.3.4, without the trailing dot
constexpr size_t kMaxLabelLen = 63;     // RFC 1035 2.3.4
constexpr size_t kSerialLen = 16;       // 128 random bits; the CA/B Forum asks for at least 64
constexpr size_t kMaxShownLen = 64;     // how much of a bad value an error repeats

// KeyUsage bit numbers (RFC 5280 4.2.1.3).
constexpr int kDigitalSignature = 0;
constexpr int kKeyCertSign = 5;
constexpr int kCrlSign = 6;

// Av views a std::string_view as an absl::string_view (this Abseil has its own type).
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Quote is |value| for an error message: cut to kMaxShownLen bytes, escaped, in quotes.
std::string Quote(std::string_view value) {
  const bool cut = value.size() > kMaxShownLen;
  return absl::StrCat("'", absl::CHexEscape(Av(value.substr(0, kMaxShownLen))), cut ? "...'" : "'");
}

absl::Status Invalid(std::string_view what, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Av(what), ": ", Av(why)));
}

// LastErrorText is the reason of BoringSSL's most recent error, and clears the queue.
std::string LastErrorText() {
  const uint32_t e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(e);
  return reason ? reason : absl::StrCat("error ", e);
}

absl::Status BoringError(std::string_view what) {
  return absl::InternalError(absl::StrCat(Av(what), ": ", LastErrorText()));
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// NoPassword refuses to decrypt an encrypted PEM block: a daemon has nobody to ask.
int NoPassword(char*, int, int, void*) { return 0; }

bssl::UniquePtr<BIO> ReadOnlyBio(std::string_view pem) {
  return bssl::UniquePtr<BIO>(BIO_new_mem_buf(pem.data(), static_cast<ptrdiff_t>(pem.size())));
}

// IsEndOfPem: the error a PEM read leaves when it finds no further PEM block.
bool IsEndOfPem() {
  const uint32_t e = ERR_peek_last_error();
  return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

// OnlyWhitespaceLeft: nothing but whitespace remains unread in the memory BIO |bio|.
bool OnlyWhitespaceLeft(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(bio, &data, &len)) return false;
  return std::all_of(data, data + len, [](uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

std::string BioText(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(bio, &data, &len)) return std::string();
  return std::string(reinterpret_cast<const char*>(data), len);
}

absl::Status CheckPemSize(std::string_view what, std::string_view pem, size_t max_len) {
  if (pem.empty()) return Invalid(what, "empty");
  if (pem.size() > max_len) {
    return Invalid(what, absl::StrCat(pem.size(), " bytes; at most ", max_len, " are accepted"));
  }
  return absl::OkStatus();
}

Sha256Digest Sha256Of(const std::vector<uint8_t>& data) {
  Sha256Digest out{};
  SHA256(data.data(), data.size(), out.data());
  return out;
}

// SpkiOf is the DER SubjectPublicKeyInfo of |key|.
absl::StatusOr<std::vector<uint8_t>> SpkiOf(const EVP_PKEY* key) {
  uint8_t* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return BoringError("key: encoding the public key");
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

// CheckP256 refuses any key but ECDSA on P-256, saying what the key is.
absl::Status CheckP256(const EVP_PKEY* key, std::string_view what) {
  const int type = EVP_PKEY_id(key);
  if (type != EVP_PKEY_EC) {
    const char* name = OBJ_nid2sn(type);
    return Invalid(what, absl::StrCat(name ? name : "unknown", " key; only ECDSA P-256 keys are supported"));
  }
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
  const EC_GROUP* group = ec ? EC_KEY_get0_group(ec) : nullptr;
  const int curve = group ? EC_GROUP_get_curve_name(group) : NID_undef;
  if (curve != NID_X9_62_prime256v1) {
    const char* name = curve == NID_undef ? nullptr : OBJ_nid2sn(curve);
    return Invalid(what, absl::StrCat("EC key on curve ", name ? name : "(explicit or unknown)",
                                      "; only P-256 (prime256v1) is supported"));
  }
  return absl::OkStatus();
}

// DecodeUtf8 reads one well-formed UTF-8 character (no overlong forms, no surrogates) at
// |*pos| and advances past it; false if there is none.
bool DecodeUtf8(std::string_view s, size_t* pos, uint32_t* out) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(*pos);
  size_t more = 0;
  uint32_t cp = 0;
  uint32_t min = 0;
  if (lead < 0x80) {
    *out = lead;
    ++*pos;
    return true;
  } else if ((lead & 0xe0) == 0xc0) {
    more = 1, cp = lead & 0x1f, min = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    more = 2, cp = lead & 0x0f, min = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    more = 3, cp = lead & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (s.size() - *pos <= more) return false;
  for (size_t i = 1; i <= more; ++i) {
    const uint8_t c = byte(*pos + i);
    if ((c & 0xc0) != 0x80) return false;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  *out = cp;
  *pos += more + 1;
  return true;
}

// ValidName checks a name as control.proto defines one: 1 to 64 bytes of UTF-8 with no
// control character (C0, DEL, C1) and no ','.
absl::Status ValidName(std::string_view what, std::string_view value) {
  if (value.empty()) return Invalid(what, "empty");
  if (value.size() > kMaxNameLen) {
    return Invalid(what, absl::StrCat(Quote(value), " is ", value.size(), " bytes; at most ", kMaxNameLen));
  }
  for (size_t pos = 0; pos < value.size();) {
    uint32_t cp = 0;
    if (!DecodeUtf8(value, &pos, &cp)) return Invalid(what, absl::StrCat(Quote(value), " is not UTF-8"));
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
      return Invalid(what, absl::StrCat(Quote(value), " holds a control character"));
    }
    if (cp == ',') return Invalid(what, absl::StrCat(Quote(value), " holds a ','"));
  }
  return absl::OkStatus();
}

// ValidId checks an id as control.proto defines one: 1 to 64 bytes of [A-Za-z0-9._-].
absl::Status ValidId(std::string_view what, std::string_view value) {
  if (value.empty()) return Invalid(what, "empty");
  if (value.size() > kMaxNameLen) {
    return Invalid(what, absl::StrCat(Quote(value), " is ", value.size(), " bytes; at most ", kMaxNameLen));
  }
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return Invalid(what, absl::StrCat(Quote(value), ": only letters, digits, '.', '_' and '-' are allowed"));
  }
  return absl::OkStatus();
}

// Asn1Time is |t| as an ASN1_TIME (UTCTime until 2049, GeneralizedTime after, as RFC 5280
// 4.1.2.5 says).
absl::StatusOr<bssl::UniquePtr<ASN1_TIME>> Asn1Time(absl::Time t, std::string_view what) {
  bssl::UniquePtr<ASN1_TIME> out(ASN1_TIME_set(nullptr, absl::ToTimeT(t)));
  if (!out) return Invalid(what, absl::StrCat(TimeText(t), " cannot be written in a certificate"));
  return out;
}

absl::StatusOr<absl::Time> TimeOf(const ASN1_TIME* t, std::string_view what) {
  bssl::UniquePtr<ASN1_TIME> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int seconds = 0;
  if (!epoch || !t || !ASN1_TIME_diff(&days, &seconds, epoch.get(), t)) {
    ERR_clear_error();
    return Invalid(what, "not a valid time");
  }
  return absl::FromUnixSeconds(int64_t{days} * 86400 + seconds);
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  bssl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return std::string();
  std::vector<uint8_t> bytes(BN_num_bytes(bn.get()));
  BN_bn2bin(bn.get(), bytes.data());
  if (bytes.empty()) return "00";
  return absl::StrCat(BN_is_negative(bn.get()) ? "-" : "", base::HexEncode(bytes));
}

// RandomSerial is a positive serial of kSerialLen random bytes whose first byte is not zero,
// so it always prints as 32 hex digits.
absl::StatusOr<bssl::UniquePtr<ASN1_INTEGER>> RandomSerial() {
  uint8_t bytes[kSerialLen];
  do {
    RAND_bytes(bytes, sizeof(bytes));
  } while (bytes[0] == 0);
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  bssl::UniquePtr<ASN1_INTEGER> serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial) return BoringError("certificate: serial number");
  return serial;
}

absl::StatusOr<std::string> CommonNameOf(const X509_NAME* name, std::string_view what) {
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return std::string();
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int len = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
  if (len < 0) {
    ERR_clear_error();
    return Invalid(what, "the common name is not valid text");
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

absl::Status SetCommonName(X509_NAME* name, std::string_view cn) {
  if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(cn.data()), static_cast<int>(cn.size()),
                                  -1, 0)) {
    return BoringError("certificate: common name");
  }
  return absl::OkStatus();
}

// ReadCertificates reads the PEM certificates of |pem| in order (at least one).
absl::StatusOr<std::vector<bssl::UniquePtr<X509>>> ReadCertificates(std::string_view pem,
                                                                    std::string_view what,
                                                                    size_t max_len) {
  P2P_RETURN_IF_ERROR(CheckPemSize(what, pem, max_len));
  ERR_clear_error();
  auto bio = ReadOnlyBio(pem);
  if (!bio) return BoringError(what);
  std::vector<bssl::UniquePtr<X509>> out;
  for (;;) {
    bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
    if (!x) break;
    out.push_back(std::move(x));
  }
  if (!IsEndOfPem()) return Invalid(what, absl::StrCat("bad PEM certificate: ", LastErrorText()));
  ERR_clear_error();
  if (out.empty()) return Invalid(what, "no PEM \"CERTIFICATE\" block found");
  return out;
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return BoringError("certificate: PEM");
  return BioText(bio.get());
}

// KeyIdentifier is SHA-1 of the subjectPublicKey BIT STRING, RFC 5280 4.2.1.2 method (1).
std::vector<uint8_t> KeyIdentifier(const X509* cert) {
  const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert);
  std::vector<uint8_t> out(SHA_DIGEST_LENGTH);
  SHA1(ASN1_STRING_get0_data(bits), static_cast<size_t>(ASN1_STRING_length(bits)), out.data());
  return out;
}

absl::Status AddExtension(X509* cert, int nid, void* value, bool critical) {
  if (!X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT)) {
    return BoringError(absl::StrCat("certificate: extension ", OBJ_nid2sn(nid)));
  }
  return absl::OkStatus();
}

absl::Status AddBasicConstraints(X509* cert, bool ca) {
  bssl::UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (!bc) return BoringError("certificate: basicConstraints");
  if (ca) {
    bc->ca = 0xff;  // DER TRUE
    bc->pathlen = ASN1_INTEGER_new();
    if (!bc->pathlen || !ASN1_INTEGER_set(bc->pathlen, 0)) return BoringError("certificate: basicConstraints");
  }
  return AddExtension(cert, NID_basic_constraints, bc.get(), /*critical=*/true);
}

absl::Status AddKeyUsage(X509* cert, std::initializer_list<int> bits) {
  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!usage) return BoringError("certificate: keyUsage");
  for (int bit : bits) {
    if (!ASN1_BIT_STRING_set_bit(usage.get(), bit, 1)) return BoringError("certificate: keyUsage");
  }
  return AddExtension(cert, NID_key_usage, usage.get(), /*critical=*/true);
}

absl::Status AddExtendedKeyUsage(X509* cert, int purpose_nid) {
  struct Free {
    void operator()(STACK_OF(ASN1_OBJECT) * s) const { sk_ASN1_OBJECT_free(s); }  // static OIDs
  };
  std::unique_ptr<STACK_OF(ASN1_OBJECT), Free> eku(sk_ASN1_OBJECT_new_null());
  if (!eku || !sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(purpose_nid))) {
    return BoringError("certificate: extendedKeyUsage");
  }
  return AddExtension(cert, NID_ext_key_usage, eku.get(), /*critical=*/false);
}

absl::Status AddSubjectKeyId(X509* cert) {
  const std::vector<uint8_t> id = KeyIdentifier(cert);
  bssl::UniquePtr<ASN1_OCTET_STRING> skid(ASN1_OCTET_STRING_new());
  if (!skid || !ASN1_OCTET_STRING_set(skid.get(), id.data(), static_cast<int>(id.size()))) {
    return BoringError("certificate: subjectKeyIdentifier");
  }
  return AddExtension(cert, NID_subject_key_identifier, skid.get(), /*critical=*/false);
}

absl::Status AddAuthorityKeyId(X509* cert, const std::vector<uint8_t>& issuer_key_id) {
  bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  if (!akid) return BoringError("certificate: authorityKeyIdentifier");
  akid->keyid = ASN1_OCTET_STRING_new();
  if (!akid->keyid ||
      !ASN1_OCTET_STRING_set(akid->keyid, issuer_key_id.data(), static_cast<int>(issuer_key_id.size()))) {
    return BoringError("certificate: authorityKeyIdentifier");
  }
  return AddExtension(cert, NID_authority_key_identifier, akid.get(), /*critical=*/false);
}

// SanEntry is one subjectAltName: a DNS name, or an IP address as 4 or 16 raw bytes.
struct SanEntry {
  bool is_ip = false;
  std::string value;
  std::string text;  // as given, for the CN
};

// ParseNames checks the names for a certificate's subjectAltName. Errors name the entry
// ("dns_names[2]: ...").
absl::StatusOr<std::vector<SanEntry>> ParseNames(absl::Span<const std::string> names,
                                                 std::string_view field, bool allow_ip,
                                                 bool allow_wildcard) {
  if (names.empty()) return Invalid(field, "no names; at least one is required");
  if (names.size() > kMaxSubjectAltNames) {
    return Invalid(field, absl::StrCat(names.size(), " names; at most ", kMaxSubjectAltNames));
  }
  std::vector<SanEntry> out;
  std::set<std::pair<bool, std::string>> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const std::string where = absl::StrCat(Av(field), "[", i, "]");
    SanEntry entry;
    entry.text = name;
    in6_addr ip6{};
    in_addr ip4{};
    // inet_pton reads up to a NUL, so a NUL inside would let "1.2.3.4\0junk" through.
    const bool has_nul = name.find('\0') != std::string::npos;
    if (allow_ip && !has_nul && inet_pton(AF_INET, name.c_str(), &ip4) == 1) {
      entry.is_ip = true;
      entry.value.assign(reinterpret_cast<const char*>(&ip4), sizeof(ip4));
    } else if (allow_ip && !has_nul && inet_pton(AF_INET6, name.c_str(), &ip6) == 1) {
      entry.is_ip = true;
      entry.value.assign(reinterpret_cast<const char*>(&ip6), sizeof(ip6));
    } else if (absl::Status st = ValidateDnsName(name, allow_wildcard); !st.ok()) {
      return Invalid(where, absl::StrCat(allow_ip ? "not an IP address, and " : "", st.message()));
    } else {
      entry.value = name;
    }
    if (!seen.emplace(entry.is_ip, entry.value).second) {
      return Invalid(where, absl::StrCat(Quote(name), " is listed twice"));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

absl::Status AddSubjectAltNames(X509* cert, const std::vector<SanEntry>& entries, bool critical) {
  struct Free {
    void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
  };
  std::unique_ptr<GENERAL_NAMES, Free> names(GENERAL_NAMES_new());
  if (!names) return BoringError("certificate: subjectAltName");
  for (const SanEntry& e : entries) {
    bssl::UniquePtr<GENERAL_NAME> gn(GENERAL_NAME_new());
    bssl::UniquePtr<ASN1_STRING> value(e.is_ip ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new());
    if (!gn || !value || !ASN1_STRING_set(value.get(), e.value.data(), static_cast<int>(e.value.size()))) {
      return BoringError("certificate: subjectAltName");
    }
    GENERAL_NAME_set0_value(gn.get(), e.is_ip ? GEN_IPADD : GEN_DNS, value.release());
    if (!sk_GENERAL_NAME_push(names.get(), gn.get())) return BoringError("certificate: subjectAltName");
    gn.release();  // owned by |names| now
  }
  return AddExtension(cert, NID_subject_alt_name, names.get(), critical);
}

// NewCertificate starts a certificate for |public_key| named |cn| (none if empty): the subject,
// the key and its subjectKeyIdentifier. The issuer fills in the rest.
absl::StatusOr<bssl::UniquePtr<X509>> NewCertificate(EVP_PKEY* public_key, std::string_view cn) {
  bssl::UniquePtr<X509> cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) || !X509_set_pubkey(cert.get(), public_key)) {
    return BoringError("certificate");
  }
  if (!cn.empty()) P2P_RETURN_IF_ERROR(SetCommonName(X509_get_subject_name(cert.get()), cn));
  P2P_RETURN_IF_ERROR(AddSubjectKeyId(cert.get()));
  return cert;
}

// NewServerLeaf starts a TLS server certificate for |public_key| and |names|: CN is the first
// name if it fits, else the subject is empty and the subjectAltName critical (RFC 5280
// 4.2.1.6).
absl::StatusOr<bssl::UniquePtr<X509>> NewServerLeaf(EVP_PKEY* public_key, const std::vector<SanEntry>& names) {
  const std::string& first = names.front().text;
  const bool cn_fits = first.size() <= kMaxNameLen;
  P2P_ASSIGN_OR_RETURN(bssl::UniquePtr<X509> leaf, NewCertificate(public_key, cn_fits ? first : ""));
  P2P_RETURN_IF_ERROR(AddBasicConstraints(leaf.get(), /*ca=*/false));
  P2P_RETURN_IF_ERROR(AddKeyUsage(leaf.get(), {kDigitalSignature}));
  P2P_RETURN_IF_ERROR(AddExtendedKeyUsage(leaf.get(), NID_server_auth));
  P2P_RETURN_IF_ERROR(AddSubjectAltNames(leaf.get(), names, /*critical=*/!cn_fits));
  return leaf;
}

// ParsedCsr is a checked CSR and its public key.
struct ParsedCsr {
  CsrInfo info;
  bssl::UniquePtr<EVP_PKEY> key;
};

absl::StatusOr<ParsedCsr> ParseCsrInternal(std::string_view pem) {
  P2P_RETURN_IF_ERROR(CheckPemSize("csr", pem, kMaxCsrPemLen));
  ERR_clear_error();
  auto bio = ReadOnlyBio(pem);
  if (!bio) return BoringError("csr");
  bssl::UniquePtr<X509_REQ> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassword, nullptr));
  if (!req) {
    if (IsEndOfPem()) {
      ERR_clear_error();
      return Invalid("csr", "no PEM \"CERTIFICATE REQUEST\" block found");
    }
    return Invalid("csr", absl::StrCat("not a valid PKCS#10 request: ", LastErrorText()));
  }
  if (!OnlyWhitespaceLeft(bio.get())) return Invalid("csr", "text follows the PEM block; send one request alone");
  if (X509_REQ_get_version(req.get()) != X509_REQ_VERSION_1) {
    return Invalid("csr", absl::StrCat("version ", X509_REQ_get_version(req.get()) + 1, "; only version 1 exists"));
  }
  ParsedCsr out;
  out.key.reset(X509_REQ_get_pubkey(req.get()));
  if (!out.key) {
    ERR_clear_error();
    return Invalid("csr", "the public key cannot be read");
  }
  P2P_RETURN_IF_ERROR(CheckP256(out.key.get(), "csr"));
  // SHA-1 (and anything weaker) is refused even though the signature would verify.
  const int sig_nid = X509_REQ_get_signature_nid(req.get());
  if (sig_nid != NID_ecdsa_with_SHA256 && sig_nid != NID_ecdsa_with_SHA384 && sig_nid != NID_ecdsa_with_SHA512) {
    const char* name = sig_nid == NID_undef ? nullptr : OBJ_nid2sn(sig_nid);
    return Invalid("csr", absl::StrCat("signed with ", name ? name : "an unknown algorithm",
                                       "; ECDSA with SHA-256 is required"));
  }
  if (X509_REQ_verify(req.get(), out.key.get()) != 1) {
    ERR_clear_error();
    return Invalid("csr", "signature does not verify (the request was altered, or not signed by its own key)");
  }
  P2P_ASSIGN_OR_RETURN(out.info.common_name, CommonNameOf(X509_REQ_get_subject_name(req.get()), "csr"));
  if (!out.info.common_name.empty()) P2P_RETURN_IF_ERROR(ValidName("csr: common name", out.info.common_name));
  P2P_ASSIGN_OR_RETURN(out.info.spki_der, SpkiOf(out.key.get()));
  out.info.spki_sha256 = Sha256Of(out.info.spki_der);
  return out;
}

}  // namespace

// --- KeyPair ---

KeyPair::KeyPair(KeyPair&&) noexcept = default;
KeyPair& KeyPair::operator=(KeyPair&&) noexcept = default;
KeyPair::~KeyPair() = default;

absl::StatusOr<KeyPair> KeyPair::GenerateP256() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!ec || !key || !EC_KEY_generate_key(ec.get()) || !EVP_PKEY_assign_EC_KEY(key.get(), ec.get())) {
    return BoringError("key: generating a P-256 key");
  }
  ec.release();  // owned by |key| now
  return FromEvpPkey(std::move(key));
}

absl::StatusOr<KeyPair> KeyPair::FromPem(std::string_view pem) {
  P2P_RETURN_IF_ERROR(CheckPemSize("key", pem, kMaxKeyPemLen));
  // PKCS#8 "ENCRYPTED PRIVATE KEY", or a legacy PEM header "Proc-Type: 4,ENCRYPTED".
  if (pem.find("-----BEGIN ENCRYPTED") != std::string_view::npos ||
      pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos) {
    return Invalid("key", "the PEM key is encrypted; give it unencrypted (and protect the file instead)");
  }
  ERR_clear_error();
  auto bio = ReadOnlyBio(pem);
  if (!bio) return BoringError("key");
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr));
  if (!key) {
    if (IsEndOfPem()) {
      ERR_clear_error();
      return Invalid("key", "no PEM private key found (expected \"PRIVATE KEY\" or \"EC PRIVATE KEY\")");
    }
    return Invalid("key", absl::StrCat("bad PEM private key: ", LastErrorText()));
  }
  return FromEvpPkey(std::move(key));
}

absl::StatusOr<KeyPair> KeyPair::FromEvpPkey(bssl::UniquePtr<EVP_PKEY> key) {
  if (!key) return Invalid("key", "missing");
  P2P_RETURN_IF_ERROR(CheckP256(key.get(), "key"));
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key.get());
  if (EC_KEY_get0_private_key(ec) == nullptr) return Invalid("key", "a public key only; the private key is needed");
  if (!EC_KEY_check_key(ec)) {
    ERR_clear_error();
    return Invalid("key", "not a valid P-256 key pair");
  }
  KeyPair out;
  out.key_ = std::move(key);
  P2P_ASSIGN_OR_RETURN(out.spki_der_, SpkiOf(out.key_.get()));
  out.spki_sha256_ = Sha256Of(out.spki_der_);
  return out;
}

absl::StatusOr<SecretString> KeyPair::ToPem() const {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
    return BoringError("key: PEM");
  }
  // BoringSSL wipes the BIO's buffer when it frees it.
  return SecretString(BioText(bio.get()));
}

// --- CSR ---

absl::StatusOr<std::string> MakeCsrPem(const KeyPair& key, std::string_view common_name) {
  P2P_RETURN_IF_ERROR(ValidName("csr: common name", common_name));
  bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), X509_REQ_VERSION_1)) return BoringError("csr");
  P2P_RETURN_IF_ERROR(SetCommonName(X509_REQ_get_subject_name(req.get()), common_name));
  if (!X509_REQ_set_pubkey(req.get(), key.get()) || X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return BoringError("csr: signing");
  }
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509_REQ(bio.get(), req.get())) return BoringError("csr: PEM");
  return BioText(bio.get());
}

absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem) {
  P2P_ASSIGN_OR_RETURN(ParsedCsr csr, ParseCsrInternal(pem));
  return std::move(csr.info);
}

// --- CertificateAuthority ---

CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

absl::StatusOr<CertificateAuthority> CertificateAuthority::Create(std::string_view common_name, absl::Time now,
                                                                  absl::Duration validity) {
  P2P_RETURN_IF_ERROR(ValidName("ca: common name", common_name));
  if (validity <= absl::ZeroDuration()) return Invalid("ca: validity", "must be positive");
  P2P_ASSIGN_OR_RETURN(KeyPair key, KeyPair::GenerateP256());
  P2P_ASSIGN_OR_RETURN(bssl::UniquePtr<X509> cert, NewCertificate(key.get(), common_name));
  P2P_ASSIGN_OR_RETURN(auto serial, RandomSerial());
  P2P_ASSIGN_OR_RETURN(auto not_before, Asn1Time(now - kClockSkewAllowance, "ca: notBefore"));
  P2P_ASSIGN_OR_RETURN(auto not_after, Asn1Time(now + validity, "ca: notAfter"));
  if (!X509_set_serialNumber(cert.get(), serial.get()) ||
      !X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) ||
      !X509_set1_notBefore(cert.get(), not_before.get()) || !X509_set1_notAfter(cert.get(), not_after.get())) {
    return BoringError("ca: certificate");
  }
  P2P_RETURN_IF_ERROR(AddBasicConstraints(cert.get(), /*ca=*/true));
  P2P_RETURN_IF_ERROR(AddKeyUsage(cert.get(), {kKeyCertSign, kCrlSign}));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return BoringError("ca: signing");
  return Finish(std::move(key), std::move(cert));
}

absl::StatusOr<CertificateAuthority> CertificateAuthority::Load(std::string_view cert_pem,
                                                                std::string_view key_pem) {
  P2P_ASSIGN_OR_RETURN(auto certs, ReadCertificates(cert_pem, "ca certificate", kMaxCertificatePemLen));
  if (certs.size() != 1) {
    return Invalid("ca certificate", absl::StrCat(certs.size(), " certificates; expected the CA's alone"));
  }
  absl::StatusOr<KeyPair> key = KeyPair::FromPem(key_pem);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("ca ", key.status().message()));
  if (X509_check_private_key(certs[0].get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("ca key: does not match the CA certificate");
  }
  // 1: basicConstraints CA:TRUE, and keyCertSign if there is a keyUsage.
  if (X509_check_ca(certs[0].get()) != 1) {
    return absl::InvalidArgumentError(
        "ca certificate: not a CA certificate (it needs basicConstraints CA:TRUE and keyUsage keyCertSign)");
  }
  return Finish(std::move(key).value(), std::move(certs[0]));
}

absl::StatusOr<CertificateAuthority> CertificateAuthority::Finish(KeyPair key, bssl::UniquePtr<X509> cert) {
  CertificateAuthority ca(std::move(key));
  P2P_ASSIGN_OR_RETURN(ca.cert_pem_, CertificatePem(cert.get()));
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(cert.get())) {
    ca.key_id_.assign(ASN1_STRING_get0_data(skid), ASN1_STRING_get0_data(skid) + ASN1_STRING_length(skid));
  } else {
    ca.key_id_ = KeyIdentifier(cert.get());
  }
  P2P_ASSIGN_OR_RETURN(ca.not_before_, TimeOf(X509_get0_notBefore(cert.get()), "ca certificate: notBefore"));
  P2P_ASSIGN_OR_RETURN(ca.not_after_, TimeOf(X509_get0_notAfter(cert.get()), "ca certificate: notAfter"));
  ca.cert_ = std::move(cert);
  return ca;
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::Sign(X509* leaf, absl::Time now,
                                                             absl::Duration validity) const {
  if (validity <= absl::ZeroDuration()) return Invalid("validity", "must be positive");
  if (validity > kMaxLeafValidity) {
    return Invalid("validity", absl::StrCat(absl::ToDoubleHours(validity) / 24, " days is above the limit of ",
                                            absl::ToInt64Hours(kMaxLeafValidity) / 24, " days"));
  }
  if (now < not_before_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ca: the CA certificate is not valid until ", TimeText(not_before_), "; check the clock"));
  }
  if (now >= not_after_) {
    return absl::FailedPreconditionError(
        absl::StrCat("ca: the CA certificate expired at ", TimeText(not_after_), "; rotate the CA"));
  }
  IssuedCertificate out;
  // Whole seconds: what the certificate can say.
  out.not_before = absl::FromTimeT(absl::ToTimeT(now - kClockSkewAllowance));
  out.not_after = absl::FromTimeT(absl::ToTimeT(std::min(now + validity, not_after_)));
  P2P_ASSIGN_OR_RETURN(auto not_before, Asn1Time(out.not_before, "notBefore"));
  P2P_ASSIGN_OR_RETURN(auto not_after, Asn1Time(out.not_after, "notAfter"));
  P2P_ASSIGN_OR_RETURN(auto serial, RandomSerial());
  if (!X509_set_serialNumber(leaf, serial.get()) ||
      !X509_set_issuer_name(leaf, X509_get_subject_name(cert_.get())) ||
      !X509_set1_notBefore(leaf, not_before.get()) || !X509_set1_notAfter(leaf, not_after.get())) {
    return BoringError("certificate");
  }
  P2P_RETURN_IF_ERROR(AddAuthorityKeyId(leaf, key_id_));
  if (X509_sign(leaf, key_.get(), EVP_sha256()) <= 0) return BoringError("certificate: signing");
  out.serial_hex = SerialHex(serial.get());
  P2P_ASSIGN_OR_RETURN(out.certificate_pem, CertificatePem(leaf));
  return out;
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::IssueNodeCertificate(std::string_view csr_pem,
                                                                             std::string_view node_id,
                                                                             absl::Time now,
                                                                             absl::Duration validity) const {
  P2P_RETURN_IF_ERROR(ValidId("node_id", node_id));
  P2P_ASSIGN_OR_RETURN(ParsedCsr csr, ParseCsrInternal(csr_pem));
  P2P_ASSIGN_OR_RETURN(bssl::UniquePtr<X509> leaf, NewCertificate(csr.key.get(), node_id));
  P2P_RETURN_IF_ERROR(AddBasicConstraints(leaf.get(), /*ca=*/false));
  P2P_RETURN_IF_ERROR(AddKeyUsage(leaf.get(), {kDigitalSignature}));
  P2P_RETURN_IF_ERROR(AddExtendedKeyUsage(leaf.get(), NID_client_auth));
  return Sign(leaf.get(), now, validity);
}

absl::StatusOr<IssuedCertificate> CertificateAuthority::IssueServerCertificate(
    const KeyPair& key, absl::Span<const std::string> names, absl::Time now, absl::Duration validity) const {
  P2P_ASSIGN_OR_RETURN(auto entries, ParseNames(names, "names", /*allow_ip=*/true, /*allow_wildcard=*/false));
  P2P_ASSIGN_OR_RETURN(bssl::UniquePtr<X509> leaf, NewServerLeaf(key.get(), entries));
  return Sign(leaf.get(), now, validity);
}

absl::StatusOr<ResourceCertificate> CertificateAuthority::IssueResourceCertificate(
    absl::Span<const std::string> dns_names, absl::Time now, absl::Duration validity) const {
  P2P_ASSIGN_OR_RETURN(auto entries, ParseNames(dns_names, "dns_names", /*allow_ip=*/false, /*allow_wildcard=*/true));
  P2P_ASSIGN_OR_RETURN(KeyPair key, KeyPair::GenerateP256());
  P2P_ASSIGN_OR_RETURN(bssl::UniquePtr<X509> leaf, NewServerLeaf(key.get(), entries));
  P2P_ASSIGN_OR_RETURN(IssuedCertificate issued, Sign(leaf.get(), now, validity));
  ResourceCertificate out;
  P2P_ASSIGN_OR_RETURN(out.key_pem, key.ToPem());
  out.chain_pem = std::move(issued.certificate_pem);
  out.serial_hex = std::move(issued.serial_hex);
  out.not_before = issued.not_before;
  out.not_after = issued.not_after;
  return out;
}

// --- Inspection and verification ---

absl::StatusOr<CertificateInfo> InspectCertificate(std::string_view pem) {
  P2P_ASSIGN_OR_RETURN(auto certs, ReadCertificates(pem, "certificate", kMaxChainPemLen));
  X509* cert = certs[0].get();
  CertificateInfo info;
  P2P_ASSIGN_OR_RETURN(info.common_name, CommonNameOf(X509_get_subject_name(cert), "certificate"));
  int crit = 0;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr));
  if (!names && crit == -2) {  // -2: the extension is there more than once
    return Invalid("certificate", "subjectAltName appears more than once");
  }
  if (!names && crit >= 0) {
    ERR_clear_error();
    return Invalid("certificate", "subjectAltName does not parse");
  }
  absl::Status san_status = absl::OkStatus();
  for (size_t i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_STRING* s = gn->d.iPAddress;
      const int len = ASN1_STRING_length(s);
      char text[INET6_ADDRSTRLEN] = {};
      if ((len != 4 && len != 16) ||
          !inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text, sizeof(text))) {
        san_status = Invalid("certificate", absl::StrCat("subjectAltName iPAddress of ", len, " bytes"));
        break;
      }
      info.ip_addresses.emplace_back(text);
    }
  }
  GENERAL_NAMES_free(names);
  P2P_RETURN_IF_ERROR(san_status);
  P2P_ASSIGN_OR_RETURN(info.not_before, TimeOf(X509_get0_notBefore(cert), "certificate: notBefore"));
  P2P_ASSIGN_OR_RETURN(info.not_after, TimeOf(X509_get0_notAfter(cert), "certificate: notAfter"));
  info.serial_hex = SerialHex(X509_get0_serialNumber(cert));
  info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  // Not X509_pubkey_digest: despite its comment, it hashes only the key's BIT STRING.
  uint8_t* spki = nullptr;
  const int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
  if (spki_len <= 0) return BoringError("certificate: public key");
  SHA256(spki, static_cast<size_t>(spki_len), info.spki_sha256.data());
  OPENSSL_free(spki);
  return info;
}

absl::Status VerifyCertificate(std::string_view leaf_pem, std::string_view ca_pem, absl::Time now,
                               CertificatePurpose purpose, std::string_view host) {
  P2P_ASSIGN_OR_RETURN(auto chain, ReadCertificates(leaf_pem, "certificate", kMaxChainPemLen));
  P2P_ASSIGN_OR_RETURN(auto anchors, ReadCertificates(ca_pem, "ca certificate", kMaxChainPemLen));
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  if (!store) return BoringError("verify");
  for (auto& anchor : anchors) {
    if (!X509_STORE_add_cert(store.get(), anchor.get())) return BoringError("verify: ca certificate");
  }
  // The stack only borrows the certificates |chain| owns (bssl::UniquePtr would free them).
  struct Free {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
  };
  std::unique_ptr<STACK_OF(X509), Free> untrusted(sk_X509_new_null());
  if (!untrusted) return BoringError("verify");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (!sk_X509_push(untrusted.get(), chain[i].get())) return BoringError("verify");
  }
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!ctx || !X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) ||
      !X509_STORE_CTX_set_purpose(ctx.get(), purpose == CertificatePurpose::kClient ? X509_PURPOSE_SSL_CLIENT
                                                                                   : X509_PURPOSE_SSL_SERVER)) {
    return BoringError("verify");
  }
  X509_STORE_CTX_set_time(ctx.get(), /*flags=*/0, absl::ToTimeT(now));
  if (!host.empty()) {
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    const std::string host_str(host);
    in6_addr ip{};
    const bool is_ip = host_str.find('\0') == std::string::npos &&
                       (inet_pton(AF_INET, host_str.c_str(), &ip) == 1 ||
                        inet_pton(AF_INET6, host_str.c_str(), &ip) == 1);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_str.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, host_str.data(), host_str.size());
    if (!ok) {
      ERR_clear_error();
      return Invalid("verify: host", absl::StrCat(Quote(host), " is not a usable name"));
    }
  }
  const int verified = X509_verify_cert(ctx.get());
  if (verified == 1) return absl::OkStatus();
  ERR_clear_error();
  const int err = X509_STORE_CTX_get_error(ctx.get());
  return absl::PermissionDeniedError(absl::StrCat(
      "verify: ", X509_verify_cert_error_string(err), " (depth ", X509_STORE_CTX_get_error_depth(ctx.get()), ")",
      host.empty() ? "" : absl::StrCat(" for ", Quote(host)),
      purpose == CertificatePurpose::kClient ? " as a TLS client" : " as a TLS server"));
}

// --- Names ---

absl::Status ValidateDnsName(std::string_view name, bool allow_wildcard) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("DNS name ", Quote(name), ": ", Av(why)));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > kMaxDnsNameLen) return bad(absl::StrCat("longer than ", kMaxDnsNameLen, " bytes"));
  if (name.back() == '.') return bad("ends with '.'; write it without the trailing dot");
  std::string_view rest = name;
  if (name == "*" || name.substr(0, 2) == "*.") {
    if (!allow_wildcard) return bad("wildcards are not allowed here");
    rest.remove_prefix(std::min<size_t>(2, rest.size()));
    // "*.internal" would cover a whole top-level domain.
    if (rest.find('.') == std::string_view::npos) {
      return bad("a wildcard needs at least two labels after it ('*.example.internal')");
    }
  }
  std::string_view label;
  while (true) {
    const size_t dot = rest.find('.');
    label = rest.substr(0, dot);
    if (label.empty()) return bad("empty label");
    if (label.size() > kMaxLabelLen) return bad(absl::StrCat("a label is longer than ", kMaxLabelLen, " bytes"));
    for (char c : label) {
      if (c == '*') return bad("'*' is allowed only as the whole leftmost label");
      if (c >= 'A' && c <= 'Z') return bad("upper case; write DNS names in lower case");
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return bad(absl::StrCat("character ", Quote(std::string_view(&c, 1)),
                                " is not allowed (labels are letters, digits and '-')"));
      }
    }
    if (label.front() == '-' || label.back() == '-') return bad("a label starts or ends with '-'");
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  // RFC 1123 2.1: a top-level label is never all digits, or the name would read as an address.
  if (std::all_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("the last label is all digits; an IP address is not a DNS name");
  }
  return absl::OkStatus();
}

}  // namespace p2proxy::tls
