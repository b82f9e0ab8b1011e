// validate.cc: ValidateFrame, one function per message, each rule of control.proto in order.
#include "control/validate.h"

#include <openssl/mem.h>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "base/status_macros.h"

namespace p2proxy::control {
// QuoteForError (validate.h) repeats |value| in single quotes, cut to kMaxQuotedLen bytes,
// with bytes outside printable ASCII, quotes and backslashes escaped.
std::string QuoteForError(absl::string_view value) {
  std::string out = "'";
  const absl::string_view shown = value.substr(0, kMaxQuotedLen);
  for (char c : shown) {
    const auto b = static_cast<uint8_t>(c);
    if (b == '\'' || b == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (b < 0x20 || b >= 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", b);
    } else {
      out.push_back(c);
    }
  }
  out += shown.size() < value.size() ? "'..." : "'";
  return out;
}


namespace {

using absl::StrCat;
using google::protobuf::RepeatedPtrField;
using wire::Frame;

constexpr size_t kKeyLen = 32;  // X25519 public key
constexpr size_t kSha256Len = 32;
constexpr size_t kMaxAddressTextLen = 64;  // "[ffff:...:ffff]:65535" is 47

// ---- Paths and messages ------------------------------------------------------------------

absl::Status Bad(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(StrCat("control: ", path, ": ", what));
}

std::string At(absl::string_view path, size_t index) { return StrCat(path, "[", index, "]"); }

// ---- Strings -----------------------------------------------------------------------------

// FindControl returns the offset of the first control character in |s| (C0, DEL, or a C1
// character U+0080..U+009F, which UTF-8 writes as C2 80..C2 9F), or npos. Protobuf has already
// checked that a string field is UTF-8.
size_t FindControl(absl::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x20 || b == 0x7F) return i;
    if (b == 0xC2 && i + 1 < s.size()) {
      const auto next = static_cast<uint8_t>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9F) return i;
    }
  }
  return absl::string_view::npos;
}

bool IsPrintableAscii(absl::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

absl::Status CheckLen(absl::string_view value, absl::string_view path, size_t max) {
  if (value.size() > max) {
    return Bad(path, StrCat(value.size(), " bytes; at most ", max));
  }
  return absl::OkStatus();
}

// CheckText: at most |max| bytes, no control character. Empty is fine unless |required|.
absl::Status CheckText(absl::string_view value, absl::string_view path, size_t max, bool required) {
  if (value.empty()) return required ? Bad(path, "missing") : absl::OkStatus();
  P2P_RETURN_IF_ERROR(CheckLen(value, path, max));
  if (const size_t at = FindControl(value); at != absl::string_view::npos) {
    return Bad(path, StrCat("control character at byte ", at));
  }
  return absl::OkStatus();
}

// CheckPrintable: at most |max| bytes of printable ASCII without space. Empty is fine unless
// |required|.
absl::Status CheckPrintable(absl::string_view value, absl::string_view path, size_t max,
                            bool required) {
  if (value.empty()) return required ? Bad(path, "missing") : absl::OkStatus();
  P2P_RETURN_IF_ERROR(CheckLen(value, path, max));
  if (!IsPrintableAscii(value)) {
    return Bad(path, StrCat(QuoteForError(value), " holds a byte that is not printable ASCII"));
  }
  return absl::OkStatus();
}

// CheckName: a name as control.proto defines it. ',' is refused because roles travel
// comma-separated in the headers the site sets for targets (X-P2proxy-Roles).
absl::Status CheckName(absl::string_view value, absl::string_view path, bool required) {
  P2P_RETURN_IF_ERROR(CheckText(value, path, kMaxNameLen, required));
  if (absl::StrContains(value, ',')) return Bad(path, StrCat(QuoteForError(value), " holds a ','"));
  return absl::OkStatus();
}

// CheckId: an id as control.proto defines it. Ids end up in file names, log lines and SQL
// keys, so they keep to a small alphabet.
absl::Status CheckId(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  P2P_RETURN_IF_ERROR(CheckLen(value, path, kMaxIdLen));
  for (char c : value) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return Bad(path, StrCat(QuoteForError(value), " is not an id (letters, digits, '.', '_', '-')"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKey(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() != kKeyLen) {
    return Bad(path, StrCat(value.size(), " bytes; a WireGuard key is ", kKeyLen));
  }
  return absl::OkStatus();
}

absl::Status CheckSha256(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() != kSha256Len) {
    return Bad(path, StrCat(value.size(), " bytes; a SHA-256 digest is ", kSha256Len));
  }
  return absl::OkStatus();
}

// CheckPem: one or more PEM blocks, each with one of |labels|; printable ASCII and line breaks
// only. The contents are checked where they are used (the tls module); here only the shape, so
// that nothing else can hide in the field. The value is never repeated: it may be a key.
absl::Status CheckPem(absl::string_view value, absl::string_view path, size_t max,
                      std::initializer_list<absl::string_view> labels) {
  if (value.empty()) return Bad(path, "missing");
  P2P_RETURN_IF_ERROR(CheckLen(value, path, max));
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if ((c < 0x20 || c > 0x7E) && c != '\n' && c != '\r') {
      return Bad(path, StrCat("byte ", i, " is neither printable ASCII nor a line break"));
    }
  }
  absl::string_view rest = value;
  size_t blocks = 0;
  while (true) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (rest.empty()) break;
    bool matched = false;
    for (absl::string_view label : labels) {
      const std::string begin = StrCat("-----BEGIN ", label, "-----");
      const std::string end = StrCat("-----END ", label, "-----");
      if (!absl::StartsWith(rest, begin)) continue;
      const size_t end_at = rest.find(end, begin.size());
      if (end_at == absl::string_view::npos) {
        return Bad(path, StrCat("PEM block ", blocks, " (", label, ") has no END line"));
      }
      rest.remove_prefix(end_at + end.size());
      matched = true;
      break;
    }
    if (!matched) {
      return Bad(path, StrCat("PEM block ", blocks, " is not a ", *labels.begin(),
                              " block (or text outside a block)"));
    }
    ++blocks;
  }
  if (blocks == 0) return Bad(path, "no PEM block");
  return absl::OkStatus();
}

// ---- Counts and uniqueness ---------------------------------------------------------------

template <typename List>
absl::Status CheckCount(const List& list, absl::string_view path, size_t max) {
  if (static_cast<size_t>(list.size()) > max) {
    return Bad(path, StrCat(list.size(), " entries; at most ", max));
  }
  return absl::OkStatus();
}

// CheckNames checks a list of names: at most |max|, each a name, no two equal.
absl::Status CheckNames(const RepeatedPtrField<std::string>& names, absl::string_view path,
                        size_t max) {
  P2P_RETURN_IF_ERROR(CheckCount(names, path, max));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < names.size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckName(names[i], At(path, i), /*required=*/true));
    if (!seen.insert(names[i]).second) {
      return Bad(At(path, i), StrCat(QuoteForError(names[i]), " is listed twice"));
    }
  }
  return absl::OkStatus();
}

// ---- Addresses and names -----------------------------------------------------------------

// CheckIpv4: an IPv4 address in canonical text form.
absl::Status CheckIpv4(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() > kMaxAddressTextLen || !IsPrintableAscii(value)) {
    return Bad(path, StrCat(QuoteForError(value), " is not an IPv4 address"));
  }
  auto ip = base::IpAddress::Parse(value);
  if (!ip.ok() || ip->family != base::IpAddress::kV4) {
    return Bad(path, StrCat(QuoteForError(value), " is not an IPv4 address"));
  }
  if (ip->ToString() != value) {
    return Bad(path, StrCat(QuoteForError(value), " is not in canonical form ('", ip->ToString(), "')"));
  }
  return absl::OkStatus();
}

// CheckEndpoint: "IPv4:port" or "[IPv6]:port", canonical, port 1 to 65535.
absl::Status CheckEndpoint(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() > kMaxAddressTextLen || !IsPrintableAscii(value)) {
    return Bad(path, StrCat(QuoteForError(value), " is not an endpoint (IPv4:port or [IPv6]:port)"));
  }
  auto addr = base::SocketAddress::Parse(value);
  if (!addr.ok()) {
    return Bad(path, StrCat(QuoteForError(value), " is not an endpoint (IPv4:port or [IPv6]:port)"));
  }
  if (addr->port() == 0) return Bad(path, StrCat(QuoteForError(value), ": port 0"));
  if (addr->ToString() != value) {
    return Bad(path, StrCat(QuoteForError(value), " is not in canonical form ('", addr->ToString(), "')"));
  }
  return absl::OkStatus();
}

// CheckPrefix: "ADDRESS/LEN", canonical, host bits zero.
absl::Status CheckPrefix(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() > kMaxAddressTextLen || !IsPrintableAscii(value) ||
      !absl::StrContains(value, '/')) {
    return Bad(path, StrCat(QuoteForError(value), " is not a prefix (ADDRESS/LENGTH)"));
  }
  auto prefix = base::IpPrefix::Parse(value);
  if (!prefix.ok()) return Bad(path, StrCat(QuoteForError(value), " is not a prefix (ADDRESS/LENGTH)"));
  if (prefix->ToString() != value) {
    return Bad(path, StrCat(QuoteForError(value), " is not in canonical form ('", prefix->ToString(),
                            "'; host bits zero)"));
  }
  return absl::OkStatus();
}

// CheckDomain: a DNS name as control.proto defines it. Lower case only, so that names compare
// as bytes; the last label may not be all digits, so that no domain reads as an IPv4 address.
absl::Status CheckDomain(absl::string_view value, absl::string_view path, bool wildcard_ok) {
  if (value.empty()) return Bad(path, "missing");
  if (value.size() > kMaxDomainLen) {
    return Bad(path, StrCat(value.size(), " bytes; a domain is at most ", kMaxDomainLen));
  }
  absl::string_view rest = value;
  if (absl::StartsWith(rest, "*.")) {
    if (!wildcard_ok) return Bad(path, StrCat(QuoteForError(value), ": no wildcard allowed here"));
    rest.remove_prefix(2);
  }
  if (absl::EndsWith(rest, ".")) {
    return Bad(path, StrCat(QuoteForError(value), ": write it without the trailing dot"));
  }
  absl::string_view last;
  while (true) {
    const size_t dot = rest.find('.');
    const absl::string_view label = rest.substr(0, dot);
    if (label.empty()) return Bad(path, StrCat(QuoteForError(value), " has an empty label"));
    if (label.size() > kMaxLabelLen) {
      return Bad(path, StrCat(QuoteForError(value), " has a label of ", label.size(), " bytes; at most ",
                              kMaxLabelLen));
    }
    for (char c : label) {
      if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
        return Bad(path, StrCat(QuoteForError(value), " is not in lower case"));
      }
      if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
          !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
        return Bad(path, StrCat(QuoteForError(value), " is not a domain (letters, digits, '-', '.')"));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return Bad(path, StrCat(QuoteForError(value), ": a label starts or ends with '-'"));
    }
    last = label;
    if (dot == absl::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (last.find_first_not_of("0123456789") == absl::string_view::npos) {
    return Bad(path, StrCat(QuoteForError(value), ": the last label is all digits"));
  }
  return absl::OkStatus();
}

// CheckHostPort: an endpoint, or "DOMAIN:PORT" (no wildcard), port 1 to 65535.
absl::Status CheckHostPort(absl::string_view value, absl::string_view path) {
  if (value.empty()) return Bad(path, "missing");
  if (absl::StartsWith(value, "[")) return CheckEndpoint(value, path);
  const size_t colon = value.rfind(':');
  if (colon == absl::string_view::npos ||
      value.substr(0, colon).find(':') != absl::string_view::npos) {
    return Bad(path, StrCat(QuoteForError(value), " is not HOST:PORT (IPv6 goes in brackets)"));
  }
  const absl::string_view host = value.substr(0, colon);
  const absl::string_view port_text = value.substr(colon + 1);
  if (base::IpAddress::Parse(host).ok() ||
      host.find_first_not_of("0123456789.") == absl::string_view::npos) {
    return CheckEndpoint(value, path);
  }
  P2P_RETURN_IF_ERROR(CheckDomain(host, path, /*wildcard_ok=*/false));
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != absl::string_view::npos ||
      (port_text.size() > 1 && port_text.front() == '0') || !absl::SimpleAtoi(port_text, &port) ||
      port == 0 || port > 65535) {
    return Bad(path, StrCat(QuoteForError(value), ": ", QuoteForError(port_text), " is not a port (1-65535)"));
  }
  return absl::OkStatus();
}

absl::Status CheckNonZero(uint64_t value, absl::string_view path) {
  if (value == 0) return Bad(path, "0; it starts at 1");
  return absl::OkStatus();
}

// ---- Messages ----------------------------------------------------------------------------

absl::Status CheckEnroll(const wire::Enroll& m, absl::string_view p) {
  // The token is a secret: its length and alphabet are checked, its value never repeated.
  const std::string token_path = StrCat(p, ".token");
  if (m.token().empty()) return Bad(token_path, "missing");
  P2P_RETURN_IF_ERROR(CheckLen(m.token(), token_path, kMaxTokenLen));
  if (!IsPrintableAscii(m.token())) return Bad(token_path, "not printable ASCII");
  P2P_RETURN_IF_ERROR(CheckKey(m.wireguard_public_key(), StrCat(p, ".wireguard_public_key")));
  if (m.kind() != wire::NODE_KIND_SITE && m.kind() != wire::NODE_KIND_CLIENT) {
    return Bad(StrCat(p, ".kind"),
               m.kind() == wire::NODE_KIND_UNSPECIFIED
                   ? std::string("missing")
                   : StrCat(static_cast<int>(m.kind()), " is not SITE or CLIENT"));
  }
  P2P_RETURN_IF_ERROR(CheckName(m.requested_name(), StrCat(p, ".requested_name"), false));
  return CheckPem(m.csr_pem(), StrCat(p, ".csr_pem"), kMaxPemLen,
                  {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"});
}

// CheckRange: empty, or an IPv4 prefix in canonical form of /8 to /30 (a deployment's range).
absl::Status CheckRange(const std::string& value, const std::string& path) {
  if (value.empty()) return absl::OkStatus();
  P2P_RETURN_IF_ERROR(CheckPrefix(value, path));
  auto prefix = base::IpPrefix::Parse(value);
  if (!prefix.ok() || prefix->address.family != base::IpAddress::kV4 || prefix->length < 8 || prefix->length > 30) {
    return Bad(path, StrCat(QuoteForError(value), " is not an IPv4 range of /8 to /30"));
  }
  return absl::OkStatus();
}

absl::Status CheckEnrolled(const wire::Enrolled& m, absl::string_view p) {
  P2P_RETURN_IF_ERROR(CheckId(m.node_id(), StrCat(p, ".node_id")));
  P2P_RETURN_IF_ERROR(CheckName(m.name(), StrCat(p, ".name"), /*required=*/true));
  P2P_RETURN_IF_ERROR(CheckIpv4(m.node_address(), StrCat(p, ".node_address")));
  P2P_RETURN_IF_ERROR(CheckPem(m.certificate_chain_pem(), StrCat(p, ".certificate_chain_pem"),
                               kMaxChainPemLen, {"CERTIFICATE"}));
  P2P_RETURN_IF_ERROR(CheckPem(m.ca_certificate_pem(), StrCat(p, ".ca_certificate_pem"), kMaxPemLen,
                               {"CERTIFICATE"}));
  P2P_RETURN_IF_ERROR(CheckSha256(m.server_spki_sha256(), StrCat(p, ".server_spki_sha256")));
  P2P_RETURN_IF_ERROR(
      CheckKey(m.server_wireguard_public_key(), StrCat(p, ".server_wireguard_public_key")));
  P2P_RETURN_IF_ERROR(
      CheckHostPort(m.server_wireguard_endpoint(), StrCat(p, ".server_wireguard_endpoint")));
  P2P_RETURN_IF_ERROR(CheckRange(m.node_range(), StrCat(p, ".node_range")));
  P2P_RETURN_IF_ERROR(CheckRange(m.resource_range(), StrCat(p, ".resource_range")));
  return CheckIpv4(m.server_node_address(), StrCat(p, ".server_node_address"));
}

absl::Status CheckHello(const wire::Hello& m, absl::string_view p) {
  return CheckId(m.node_id(), StrCat(p, ".node_id"));
}

absl::Status CheckPeer(const wire::Peer& m, const std::string& p) {
  P2P_RETURN_IF_ERROR(CheckKey(m.public_key(), StrCat(p, ".public_key")));
  const std::string ips_path = StrCat(p, ".allowed_ips");
  P2P_RETURN_IF_ERROR(CheckCount(m.allowed_ips(), ips_path, kMaxAllowedIps));
  absl::flat_hash_set<absl::string_view> ips;
  for (int i = 0; i < m.allowed_ips_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckPrefix(m.allowed_ips(i), At(ips_path, i)));
    if (!ips.insert(m.allowed_ips(i)).second) {
      return Bad(At(ips_path, i), StrCat(QuoteForError(m.allowed_ips(i)), " is listed twice"));
    }
  }
  if (!m.endpoint().empty())
    P2P_RETURN_IF_ERROR(CheckEndpoint(m.endpoint(), StrCat(p, ".endpoint")));
  if (m.persistent_keepalive_seconds() > 65535) {
    return Bad(StrCat(p, ".persistent_keepalive_seconds"),
               StrCat(m.persistent_keepalive_seconds(), " is above 65535"));
  }
  P2P_RETURN_IF_ERROR(CheckId(m.node_id(), StrCat(p, ".node_id")));
  if (m.kind() == wire::NODE_KIND_UNSPECIFIED || !wire::NodeKind_IsValid(m.kind())) {
    return Bad(StrCat(p, ".kind"), m.kind() == wire::NODE_KIND_UNSPECIFIED
                                       ? std::string("missing")
                                       : StrCat(static_cast<int>(m.kind()), " is not a node kind"));
  }
  P2P_RETURN_IF_ERROR(CheckName(m.name(), StrCat(p, ".name"), /*required=*/false));
  P2P_RETURN_IF_ERROR(CheckName(m.user(), StrCat(p, ".user"), /*required=*/false));
  P2P_RETURN_IF_ERROR(CheckNames(m.roles(), StrCat(p, ".roles"), kMaxRoles));
  if (m.user().empty() && m.roles_size() > 0) {
    return Bad(StrCat(p, ".roles"), "roles without a user");
  }
  return absl::OkStatus();
}

absl::Status CheckAccess(const wire::Access& m, const std::string& p, bool https) {
  P2P_RETURN_IF_ERROR(CheckNames(m.users(), StrCat(p, ".users"), kMaxGrants));
  P2P_RETURN_IF_ERROR(CheckNames(m.roles(), StrCat(p, ".roles"), kMaxGrants));
  const std::string paths = StrCat(p, ".paths");
  if (!https && m.paths_size() > 0) return Bad(paths, "path rules are for https resources only");
  if (!https && m.case_insensitive_paths()) {
    return Bad(StrCat(p, ".case_insensitive_paths"), "for https resources only");
  }
  P2P_RETURN_IF_ERROR(CheckCount(m.paths(), paths, kMaxPathRules));
  absl::flat_hash_set<absl::string_view> prefixes;
  for (int i = 0; i < m.paths_size(); ++i) {
    const wire::PathRule& rule = m.paths(i);
    const std::string rp = At(paths, i);
    const std::string prefix_path = StrCat(rp, ".prefix");
    P2P_RETURN_IF_ERROR(CheckPrintable(rule.prefix(), prefix_path, kMaxPathPrefixLen, true));
    if (rule.prefix().front() != '/') {
      return Bad(prefix_path, StrCat(QuoteForError(rule.prefix()), " does not start with '/'"));
    }
    if (rule.prefix().find_first_of("?#%\\") != std::string::npos) {
      return Bad(prefix_path, StrCat(QuoteForError(rule.prefix()), " holds '?', '#', '%' or '\\'"));
    }
    if (!prefixes.insert(rule.prefix()).second) {
      return Bad(prefix_path, StrCat(QuoteForError(rule.prefix()), " is listed twice"));
    }
    P2P_RETURN_IF_ERROR(CheckNames(rule.users(), StrCat(rp, ".users"), kMaxGrants));
    P2P_RETURN_IF_ERROR(CheckNames(rule.roles(), StrCat(rp, ".roles"), kMaxGrants));
  }
  return absl::OkStatus();
}

absl::Status CheckResource(const wire::Resource& m, const std::string& p) {
  P2P_RETURN_IF_ERROR(CheckName(m.name(), StrCat(p, ".name"), /*required=*/true));
  if (m.kind() == wire::RESOURCE_KIND_UNSPECIFIED || !wire::ResourceKind_IsValid(m.kind())) {
    return Bad(StrCat(p, ".kind"),
               m.kind() == wire::RESOURCE_KIND_UNSPECIFIED
                   ? std::string("missing")
                   : StrCat(static_cast<int>(m.kind()), " is not HTTPS, TCP or UDP"));
  }
  const bool https = m.kind() == wire::RESOURCE_KIND_HTTPS;
  const std::string domains = StrCat(p, ".domains");
  P2P_RETURN_IF_ERROR(CheckCount(m.domains(), domains, kMaxDomains));
  if (https && m.domains_size() == 0) return Bad(domains, "an https resource needs a domain");
  absl::flat_hash_set<absl::string_view> seen_domains;
  for (int i = 0; i < m.domains_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckDomain(m.domains(i), At(domains, i), /*wildcard_ok=*/true));
    if (!seen_domains.insert(m.domains(i)).second) {
      return Bad(At(domains, i), StrCat(QuoteForError(m.domains(i)), " is listed twice"));
    }
  }
  P2P_RETURN_IF_ERROR(CheckIpv4(m.address(), StrCat(p, ".address")));
  if (m.port() == 0 || m.port() > 65535) {
    return Bad(StrCat(p, ".port"),
               m.port() == 0 ? std::string("missing") : StrCat(m.port(), " is not a port"));
  }
  const std::string targets = StrCat(p, ".targets");
  if (m.targets_size() == 0) return Bad(targets, "no site serves the resource");
  P2P_RETURN_IF_ERROR(CheckCount(m.targets(), targets, kMaxTargets));
  absl::flat_hash_set<absl::string_view> sites;
  for (int i = 0; i < m.targets_size(); ++i) {
    const wire::Target& t = m.targets(i);
    const std::string tp = At(targets, i);
    P2P_RETURN_IF_ERROR(CheckId(t.site_id(), StrCat(tp, ".site_id")));
    if (!sites.insert(t.site_id()).second) {
      return Bad(StrCat(tp, ".site_id"), StrCat(QuoteForError(t.site_id()), " is listed twice"));
    }
    if (t.address() == kInProcessTarget) {
      if (m.kind() == wire::RESOURCE_KIND_UDP) {
        return Bad(StrCat(tp, ".address"), "\"in-process\" serves tcp and https resources only");
      }
    } else if (!t.address().empty()) {
      P2P_RETURN_IF_ERROR(CheckHostPort(t.address(), StrCat(tp, ".address")));
    }
  }
  return CheckAccess(m.access(), StrCat(p, ".access"), https);
}

absl::Status CheckSite(const wire::SiteSection& m, const std::string& p,
                       const absl::flat_hash_map<absl::string_view, bool>& resource_is_https) {
  const std::string certs = StrCat(p, ".certificates");
  P2P_RETURN_IF_ERROR(CheckCount(m.certificates(), certs, kMaxCertificates));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < m.certificates_size(); ++i) {
    const wire::Certificate& c = m.certificates(i);
    const std::string cp = At(certs, i);
    const std::string rp = StrCat(cp, ".resource");
    P2P_RETURN_IF_ERROR(CheckName(c.resource(), rp, /*required=*/true));
    const auto it = resource_is_https.find(c.resource());
    if (it == resource_is_https.end()) {
      return Bad(rp, StrCat(QuoteForError(c.resource()), " is not a resource of this snapshot"));
    }
    if (!it->second) return Bad(rp, StrCat(QuoteForError(c.resource()), " is not an https resource"));
    if (!seen.insert(c.resource()).second) {
      return Bad(rp, StrCat(QuoteForError(c.resource()), " has a certificate already"));
    }
    P2P_RETURN_IF_ERROR(CheckPem(c.certificate_chain_pem(), StrCat(cp, ".certificate_chain_pem"),
                                 kMaxChainPemLen, {"CERTIFICATE"}));
    P2P_RETURN_IF_ERROR(CheckPem(c.private_key_pem(), StrCat(cp, ".private_key_pem"), kMaxPemLen,
                                 {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"}));
  }
  return absl::OkStatus();
}

absl::Status CheckClient(const wire::ClientSection& m, const std::string& p) {
  const std::string zones_path = StrCat(p, ".zones");
  P2P_RETURN_IF_ERROR(CheckCount(m.zones(), zones_path, kMaxZones));
  absl::flat_hash_set<absl::string_view> zones;
  for (int i = 0; i < m.zones_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckDomain(m.zones(i), At(zones_path, i), /*wildcard_ok=*/false));
    if (!zones.insert(m.zones(i)).second) {
      return Bad(At(zones_path, i), StrCat(QuoteForError(m.zones(i)), " is listed twice"));
    }
  }
  const std::string records = StrCat(p, ".records");
  P2P_RETURN_IF_ERROR(CheckCount(m.records(), records, kMaxDnsRecords));
  absl::flat_hash_set<absl::string_view> names;
  for (int i = 0; i < m.records_size(); ++i) {
    const wire::DnsRecord& r = m.records(i);
    const std::string rp = At(records, i);
    const std::string np = StrCat(rp, ".name");
    P2P_RETURN_IF_ERROR(CheckDomain(r.name(), np, /*wildcard_ok=*/true));
    if (!names.insert(r.name()).second) {
      return Bad(np, StrCat(QuoteForError(r.name()), " is listed twice"));
    }
    // A record outside every zone would be answered by nobody (or leak to the upstream
    // resolvers, against invariant I2): the name must be a zone or under one.
    bool in_zone = false;
    for (absl::string_view suffix = r.name();;) {
      if (zones.contains(suffix)) {
        in_zone = true;
        break;
      }
      const size_t dot = suffix.find('.');
      if (dot == absl::string_view::npos) break;
      suffix.remove_prefix(dot + 1);
    }
    if (!in_zone) return Bad(np, StrCat(QuoteForError(r.name()), " is in none of the zones"));
    P2P_RETURN_IF_ERROR(CheckIpv4(r.address(), StrCat(rp, ".address")));
  }
  P2P_RETURN_IF_ERROR(CheckRange(m.node_range(), StrCat(p, ".node_range")));
  return CheckRange(m.resource_range(), StrCat(p, ".resource_range"));
}

absl::Status CheckSnapshot(const wire::Snapshot& m, const std::string& p) {
  P2P_RETURN_IF_ERROR(CheckNonZero(m.version(), StrCat(p, ".version")));
  const std::string peers = StrCat(p, ".peers");
  P2P_RETURN_IF_ERROR(CheckCount(m.peers(), peers, kMaxPeers));
  absl::flat_hash_set<absl::string_view> keys, node_ids;
  for (int i = 0; i < m.peers_size(); ++i) {
    const wire::Peer& peer = m.peers(i);
    const std::string pp = At(peers, i);
    P2P_RETURN_IF_ERROR(CheckPeer(peer, pp));
    if (!keys.insert(peer.public_key()).second) {
      return Bad(StrCat(pp, ".public_key"), "the same key as an earlier peer");
    }
    if (!node_ids.insert(peer.node_id()).second) {
      return Bad(StrCat(pp, ".node_id"), StrCat(QuoteForError(peer.node_id()), " is listed twice"));
    }
  }
  const std::string resources = StrCat(p, ".resources");
  P2P_RETURN_IF_ERROR(CheckCount(m.resources(), resources, kMaxResources));
  absl::flat_hash_map<absl::string_view, bool> is_https;
  absl::flat_hash_set<std::string> sockets;  // "address port transport"
  for (int i = 0; i < m.resources_size(); ++i) {
    const wire::Resource& r = m.resources(i);
    const std::string rp = At(resources, i);
    P2P_RETURN_IF_ERROR(CheckResource(r, rp));
    if (!is_https.emplace(r.name(), r.kind() == wire::RESOURCE_KIND_HTTPS).second) {
      return Bad(StrCat(rp, ".name"), StrCat(QuoteForError(r.name()), " is listed twice"));
    }
    // https and tcp are both TCP: they cannot share an address and port.
    const bool udp = r.kind() == wire::RESOURCE_KIND_UDP;
    if (!sockets.insert(StrCat(r.address(), " ", r.port(), udp ? " udp" : " tcp")).second) {
      return Bad(StrCat(rp, ".port"),
                 StrCat(r.address(), " port ", r.port(), "/", udp ? "udp" : "tcp",
                        " is served by an earlier resource"));
    }
  }
  switch (m.role_case()) {
    case wire::Snapshot::kSite:
      return CheckSite(m.site(), StrCat(p, ".site"), is_https);
    case wire::Snapshot::kClient:
      return CheckClient(m.client(), StrCat(p, ".client"));
    case wire::Snapshot::ROLE_NOT_SET:
      break;
  }
  return Bad(p, "neither site nor client is set");
}

absl::Status CheckAck(const wire::Ack& m, absl::string_view p) {
  switch (m.what_case()) {
    case wire::Ack::kSnapshotVersion:
      if (m.snapshot_version() == 0) return CheckNonZero(0, StrCat(p, ".snapshot_version"));
      return CheckText(m.error(), StrCat(p, ".error"), kMaxMessageLen, /*required=*/false);
    case wire::Ack::kAuditBatch:
      if (m.audit_batch() == 0) return CheckNonZero(0, StrCat(p, ".audit_batch"));
      if (!m.error().empty()) return Bad(StrCat(p, ".error"), "only with snapshot_version");
      return absl::OkStatus();
    case wire::Ack::WHAT_NOT_SET:
      break;
  }
  return Bad(p, "neither snapshot_version nor audit_batch is set");
}

absl::Status CheckEndpointReport(const wire::EndpointReport& m, absl::string_view p) {
  const std::string ep = StrCat(p, ".endpoints");
  P2P_RETURN_IF_ERROR(CheckCount(m.endpoints(), ep, kMaxEndpoints));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < m.endpoints_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckEndpoint(m.endpoints(i), At(ep, i)));
    if (!seen.insert(m.endpoints(i)).second) {
      return Bad(At(ep, i), StrCat(QuoteForError(m.endpoints(i)), " is listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckHealth(const wire::Health& m, absl::string_view p) {
  const std::string sp = StrCat(p, ".sites");
  P2P_RETURN_IF_ERROR(CheckCount(m.sites(), sp, kMaxHealthSites));
  absl::flat_hash_set<absl::string_view> seen;
  for (int i = 0; i < m.sites_size(); ++i) {
    const wire::SiteHealth& s = m.sites(i);
    const std::string ip = At(sp, i);
    P2P_RETURN_IF_ERROR(CheckId(s.site_id(), StrCat(ip, ".site_id")));
    if (!seen.insert(s.site_id()).second) {
      return Bad(StrCat(ip, ".site_id"), StrCat(QuoteForError(s.site_id()), " is listed twice"));
    }
    if (s.rtt_micros() > kMaxRttMicros) {
      return Bad(StrCat(ip, ".rtt_micros"),
                 StrCat(s.rtt_micros(), " is above ", kMaxRttMicros, " (one minute)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAuditEvent(const wire::AuditEvent& e, const std::string& p) {
  if (e.time_unix_ms() <= 0) {
    return Bad(StrCat(p, ".time_unix_ms"), e.time_unix_ms() == 0
                                               ? std::string("missing")
                                               : StrCat(e.time_unix_ms(), " is before 1970"));
  }
  if (e.kind() == wire::AUDIT_KIND_UNSPECIFIED || !wire::AuditKind_IsValid(e.kind())) {
    return Bad(StrCat(p, ".kind"),
               e.kind() == wire::AUDIT_KIND_UNSPECIFIED
                   ? std::string("missing")
                   : StrCat(static_cast<int>(e.kind()), " is not an audit kind"));
  }
  const bool http = e.kind() == wire::AUDIT_KIND_HTTPS || e.kind() == wire::AUDIT_KIND_HTTP;
  P2P_RETURN_IF_ERROR(CheckName(e.resource(), StrCat(p, ".resource"), /*required=*/false));
  P2P_RETURN_IF_ERROR(CheckKey(e.peer_key(), StrCat(p, ".peer_key")));
  P2P_RETURN_IF_ERROR(CheckEndpoint(e.peer(), StrCat(p, ".peer")));
  P2P_RETURN_IF_ERROR(CheckName(e.user(), StrCat(p, ".user"), /*required=*/false));
  const std::string roles = StrCat(p, ".roles");
  P2P_RETURN_IF_ERROR(CheckCount(e.roles(), roles, kMaxRoles));
  for (int i = 0; i < e.roles_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckName(e.roles(i), At(roles, i), /*required=*/true));
  }
  P2P_RETURN_IF_ERROR(CheckPrintable(e.method(), StrCat(p, ".method"), kMaxMethodLen, false));
  P2P_RETURN_IF_ERROR(CheckPrintable(e.host(), StrCat(p, ".host"), kMaxHostLen, false));
  P2P_RETURN_IF_ERROR(CheckPrintable(e.path(), StrCat(p, ".path"), kMaxAuditPathLen, false));
  if (!http && !e.method().empty()) return Bad(StrCat(p, ".method"), "HTTP events only");
  if (!http && !e.path().empty()) return Bad(StrCat(p, ".path"), "HTTP events only");
  if (e.status() != 0 && (!http || e.status() < 100 || e.status() > 599)) {
    return Bad(StrCat(p, ".status"), http ? StrCat(e.status(), " is not an HTTP status")
                                          : std::string("HTTP events only"));
  }
  return CheckText(e.reason(), StrCat(p, ".reason"), kMaxReasonLen, /*required=*/false);
}

absl::Status CheckAuditBatch(const wire::AuditBatch& m, absl::string_view p) {
  P2P_RETURN_IF_ERROR(CheckNonZero(m.sequence(), StrCat(p, ".sequence")));
  const std::string ep = StrCat(p, ".events");
  if (m.events_size() == 0) return Bad(ep, "empty; a batch holds at least one event");
  P2P_RETURN_IF_ERROR(CheckCount(m.events(), ep, kMaxAuditEvents));
  for (int i = 0; i < m.events_size(); ++i) {
    P2P_RETURN_IF_ERROR(CheckAuditEvent(m.events(i), At(ep, i)));
  }
  return absl::OkStatus();
}

absl::Status CheckError(const wire::Error& m, absl::string_view p) {
  if (m.code() == wire::ERROR_CODE_UNSPECIFIED || !wire::ErrorCode_IsValid(m.code())) {
    return Bad(StrCat(p, ".code"),
               m.code() == wire::ERROR_CODE_UNSPECIFIED
                   ? std::string("missing")
                   : StrCat(static_cast<int>(m.code()), " is not an error code"));
  }
  return CheckText(m.message(), StrCat(p, ".message"), kMaxMessageLen, /*required=*/true);
}

void Wipe(std::string* s) {
  OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

}  // namespace

absl::Status ValidateFrame(const Frame& frame) {
  switch (frame.message_case()) {
    case Frame::kEnroll:
      return CheckEnroll(frame.enroll(), "enroll");
    case Frame::kEnrolled:
      return CheckEnrolled(frame.enrolled(), "enrolled");
    case Frame::kHello:
      return CheckHello(frame.hello(), "hello");
    case Frame::kSnapshot:
      return CheckSnapshot(frame.snapshot(), "snapshot");
    case Frame::kAck:
      return CheckAck(frame.ack(), "ack");
    case Frame::kEndpointReport:
      return CheckEndpointReport(frame.endpoint_report(), "endpoint_report");
    case Frame::kHealth:
      return CheckHealth(frame.health(), "health");
    case Frame::kAuditBatch:
      return CheckAuditBatch(frame.audit_batch(), "audit_batch");
    case Frame::kPing:
    case Frame::kPong:
      return absl::OkStatus();  // any id
    case Frame::kError:
      return CheckError(frame.error(), "error");
    case Frame::MESSAGE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("control: frame: no message set");
}

void WipeFrameSecrets(Frame* frame) {
  if (frame->has_enroll()) Wipe(frame->mutable_enroll()->mutable_token());
  if (frame->has_snapshot() && frame->snapshot().has_site()) {
    for (wire::Certificate& c :
         *frame->mutable_snapshot()->mutable_site()->mutable_certificates()) {
      Wipe(c.mutable_private_key_pem());
    }
  }
}

}  // namespace p2proxy::control
