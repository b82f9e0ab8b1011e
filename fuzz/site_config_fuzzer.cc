// site_config_fuzzer: ParseSiteConfigJson on arbitrary bytes. An error must be one line that
// starts "config: ". A config must keep the rules (a peer at least, unique keys and resources,
// IPv4 addresses) and, written back as JSON, parse to the same config.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "crypto/keys.h"
#include "site/site_config.h"

namespace {

using p2proxy::site::SiteConfig;
using p2proxy::site::SitePeer;
using p2proxy::site::SiteResource;

// JsonString quotes |s| as a JSON string; |s| is valid UTF-8 (the parser checked).
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<uint8_t>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<uint8_t>(c));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string Format(const SiteConfig& c) {
  using p2proxy::crypto::KeyToBase64;
  std::string out = absl::StrCat(
      "{\"wireguard\": {\"private_key\": \"", KeyToBase64(c.wireguard.private_key.span()),
      "\", \"listen_port\": ", c.wireguard.listen_port, ", \"address\": \"",
      c.wireguard.address.ToString(), "\", \"mtu\": ", c.wireguard.mtu, "},\n\"peers\": [");
  for (size_t i = 0; i < c.peers.size(); ++i) {
    const SitePeer& p = c.peers[i];
    absl::StrAppend(&out, i == 0 ? "" : ",\n", "{\"public_key\": \"", KeyToBase64(p.public_key),
                    "\", \"allowed_ips\": [",
                    absl::StrJoin(p.allowed_ips, ", ",
                                  [](std::string* o, const p2proxy::base::IpPrefix& prefix) {
                                    absl::StrAppend(o, "\"", prefix.ToString(), "\"");
                                  }),
                    "], \"persistent_keepalive\": ", p.persistent_keepalive);
    if (p.endpoint) absl::StrAppend(&out, ", \"endpoint\": \"", p.endpoint->ToString(), "\"");
    if (p.preshared_key) {
      absl::StrAppend(&out, ", \"preshared_key\": \"", KeyToBase64(p.preshared_key->span()), "\"");
    }
    out += "}";
  }
  out += "],\n\"resources\": [";
  for (size_t i = 0; i < c.resources.size(); ++i) {
    const SiteResource& r = c.resources[i];
    absl::StrAppend(&out, i == 0 ? "" : ",\n", "{\"name\": ", JsonString(r.name),
                    ", \"address\": \"", r.address.ToString(), "\", \"port\": ", r.port,
                    ", \"protocol\": \"", p2proxy::site::ProtocolName(r.protocol),
                    "\", \"target\": \"", r.target.ToString(), "\"");
    if (r.protocol == p2proxy::site::Protocol::kUdp) {
      absl::StrAppend(&out,
                      ", \"udp_idle_timeout_seconds\": ", absl::ToInt64Seconds(r.udp_idle_timeout));
    }
    out += "}";
  }
  return out + "]}\n";
}

bool Same(const SiteConfig& a, const SiteConfig& b) {
  if (!a.wireguard.private_key.Equals(b.wireguard.private_key) ||
      a.wireguard.listen_port != b.wireguard.listen_port ||
      a.wireguard.address != b.wireguard.address || a.wireguard.mtu != b.wireguard.mtu ||
      a.peers.size() != b.peers.size() || a.resources.size() != b.resources.size()) {
    return false;
  }
  for (size_t i = 0; i < a.peers.size(); ++i) {
    const SitePeer& x = a.peers[i];
    const SitePeer& y = b.peers[i];
    if (x.public_key != y.public_key || x.allowed_ips != y.allowed_ips ||
        x.endpoint != y.endpoint || x.persistent_keepalive != y.persistent_keepalive ||
        x.preshared_key.has_value() != y.preshared_key.has_value() ||
        (x.preshared_key && !x.preshared_key->Equals(*y.preshared_key))) {
      return false;
    }
  }
  for (size_t i = 0; i < a.resources.size(); ++i) {
    const SiteResource& x = a.resources[i];
    const SiteResource& y = b.resources[i];
    if (x.name != y.name || x.address != y.address || x.port != y.port ||
        x.protocol != y.protocol || !(x.target == y.target) ||
        x.udp_idle_timeout != y.udp_idle_timeout) {
      return false;
    }
  }
  return true;
}

void CheckRules(const SiteConfig& c) {
  using p2proxy::base::IpAddress;
  if (c.wireguard.address.family != IpAddress::kV4) std::abort();
  if (c.wireguard.mtu < 576 || c.wireguard.mtu > 65535) std::abort();
  if (c.peers.empty()) std::abort();
  for (size_t i = 0; i < c.peers.size(); ++i) {
    for (size_t j = i + 1; j < c.peers.size(); ++j) {
      if (c.peers[i].public_key == c.peers[j].public_key) std::abort();
    }
  }
  for (size_t i = 0; i < c.resources.size(); ++i) {
    const SiteResource& r = c.resources[i];
    if (r.name.empty() || r.address.family != IpAddress::kV4 || r.address == c.wireguard.address ||
        r.port == 0 || r.target.port() == 0 || !r.target.valid()) {
      std::abort();
    }
    for (size_t j = i + 1; j < c.resources.size(); ++j) {
      const SiteResource& s = c.resources[j];
      if (r.name == s.name) std::abort();
      if (r.address == s.address && r.port == s.port && r.protocol == s.protocol) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  auto config = p2proxy::site::ParseSiteConfigJson(json);
  if (!config.ok()) {
    const absl::string_view message = config.status().message();
    if (!absl::StartsWith(message, "config: ") || absl::StrContains(message, "\n")) std::abort();
    return 0;
  }
  CheckRules(*config);
  auto again = p2proxy::site::ParseSiteConfigJson(Format(*config));
  if (!again.ok() || !Same(*config, *again)) std::abort();
  return 0;
}
