// audit_wire.cc: AuditEventToWire.
#include "site/audit_wire.h"

#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "crypto/keys.h"

namespace p2proxy::site {
namespace {

// Fit percent-encodes what is not printable ASCII (and '%' itself, so the text stays
// unambiguous) and cuts to |max| bytes without splitting an escape.
std::string Fit(std::string_view in, size_t max, bool allow_space = true) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(std::min(in.size(), max));
  for (unsigned char c : in) {
    const bool plain = c > 0x20 && c < 0x7f && c != '%';
    const bool space = c == ' ' && allow_space;
    if (plain || space) {
      if (out.size() + 1 > max) break;
      out.push_back(static_cast<char>(c));
    } else {
      if (out.size() + 3 > max) break;
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// FitName keeps a name (user, role, resource: 1 to 64 bytes of UTF-8 without control
// characters or ','); names come from the site's own config, so this only guards.
std::string FitName(std::string_view in) {
  std::string out = Fit(in, 64, false);
  for (char& c : out) {
    if (c == ',') c = '_';
  }
  return out;
}

control::wire::AuditKind KindOf(std::string_view kind) {
  if (kind == "https") return control::wire::AUDIT_KIND_HTTPS;
  if (kind == "http") return control::wire::AUDIT_KIND_HTTP;
  if (kind == "udp") return control::wire::AUDIT_KIND_UDP;
  return control::wire::AUDIT_KIND_TCP;
}

}  // namespace

control::wire::AuditEvent AuditEventToWire(const http::AuditEvent& e) {
  control::wire::AuditEvent w;
  w.set_time_unix_ms(std::max<int64_t>(1, absl::ToUnixMillis(e.time)));
  w.set_kind(KindOf(e.kind));
  w.set_resource(FitName(e.resource));
  auto key = crypto::ParsePublicKey(absl::string_view(e.peer_key.data(), e.peer_key.size()));
  w.set_peer_key(key.ok() ? std::string(key->begin(), key->end()) : std::string(32, '\0'));
  w.set_peer(std::string(e.peer));
  w.set_user(FitName(e.user));
  if (!e.roles.empty()) {
    for (absl::string_view role : absl::StrSplit(absl::string_view(e.roles.data(), e.roles.size()), ',')) {
      if (!role.empty() && w.roles_size() < 64) w.add_roles(FitName(std::string_view(role.data(), role.size())));
    }
  }
  w.set_method(Fit(e.method, 32, false));
  w.set_host(Fit(e.host, 255, false));
  w.set_path(Fit(e.path, 8192, false));
  if (e.status >= 100 && e.status <= 599) w.set_status(static_cast<uint32_t>(e.status));
  w.set_bytes_in(e.bytes_in);
  w.set_bytes_out(e.bytes_out);
  w.set_duration_ms(static_cast<uint64_t>(std::max<int64_t>(0, e.duration_ms)));
  w.set_allowed(e.allowed);
  w.set_reason(Fit(e.reason, 512));
  return w;
}

}  // namespace p2proxy::site
