// client_config_fuzzer: ParseClientConfigJson on arbitrary bytes. An error must be one line that
// starts "config: ". A config must keep the rules (valid, unique zones; unique names inside a
// zone; addresses inside resource_range and never the resolver's; limits on the DNS settings)
// and, written back as JSON, parse to the same config.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "client/client_config.h"

namespace {

using p2proxy::base::IpAddress;
using p2proxy::base::SocketAddress;
using p2proxy::client::ClientConfig;
using p2proxy::client::ClientResource;

// Quoted: every string a valid config holds (names, addresses, an absolute path without
// control characters) needs escaping only for '"' and '\'.
std::string Quoted(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::string Format(const ClientConfig& c) {
  std::string out =
      absl::StrCat("{\"dns\": {\"hook\": ", Quoted(p2proxy::client::DnsHookModeName(c.dns.hook)));
  if (c.dns.listen) absl::StrAppend(&out, ", \"listen\": ", Quoted(c.dns.listen->ToString()));
  absl::StrAppend(
      &out, ", \"upstreams\": [",
      absl::StrJoin(
          c.dns.upstreams, ", ",
          [](std::string* o, const SocketAddress& a) { o->append(Quoted(a.ToString())); }),
      "], \"state_dir\": ", Quoted(c.dns.state_dir), ", \"cache_entries\": ", c.dns.cache_entries,
      ", \"ttl\": ", c.dns.ttl, "},\n\"zones\": [",
      absl::StrJoin(c.zones, ", ",
                    [](std::string* o, const std::string& z) { o->append(Quoted(z)); }),
      "],\n\"resources\": [");
  for (size_t i = 0; i < c.resources.size(); ++i) {
    const ClientResource& r = c.resources[i];
    absl::StrAppend(&out, i == 0 ? "" : ",\n", "{\"name\": ", Quoted(r.name), ", \"address\": \"",
                    r.address.ToString(), "\"}");
  }
  absl::StrAppend(&out, "],\n\"resource_range\": \"", c.resource_range.ToString(), "\"}\n");
  return out;
}

bool Same(const ClientConfig& a, const ClientConfig& b) {
  if (a.dns.listen != b.dns.listen || a.dns.hook != b.dns.hook ||
      a.dns.upstreams != b.dns.upstreams || a.dns.state_dir != b.dns.state_dir ||
      a.dns.cache_entries != b.dns.cache_entries || a.dns.ttl != b.dns.ttl || a.zones != b.zones ||
      a.resource_range != b.resource_range || a.resources.size() != b.resources.size()) {
    return false;
  }
  for (size_t i = 0; i < a.resources.size(); ++i) {
    if (a.resources[i].name != b.resources[i].name ||
        a.resources[i].address != b.resources[i].address) {
      return false;
    }
  }
  return true;
}

// HostName: labels of letters, digits and '-', the first may be "*" if |wildcard|.
bool HostName(absl::string_view name, bool wildcard) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') continue;
    const absl::string_view label = name.substr(start, i - start);
    if (label.empty() || label.size() > 63) return false;
    if (!(wildcard && start == 0 && label == "*")) {
      for (char c : label) {
        if (!absl::ascii_isalnum(c) && c != '-') return false;
      }
    }
    start = i + 1;
  }
  return true;
}

bool InZone(absl::string_view name, absl::string_view zone) {
  const std::string n = absl::AsciiStrToLower(name), z = absl::AsciiStrToLower(zone);
  return n == z || absl::EndsWith(n, absl::StrCat(".", z));
}

void CheckRules(const ClientConfig& c) {
  if (c.resource_range.address.family != IpAddress::kV4) std::abort();
  if (c.dns.cache_entries > 1000000 || c.dns.ttl == 0 || c.dns.ttl > 86400) std::abort();
  if (c.dns.state_dir.empty() || c.dns.state_dir.front() != '/') std::abort();
  for (char ch : c.dns.state_dir) {
    if (static_cast<uint8_t>(ch) < 0x20 || ch == 0x7f) std::abort();
  }
  if (c.dns.listen && !c.dns.listen->valid()) std::abort();
  const SocketAddress self =
      c.dns.listen ? *c.dns.listen
                   : *SocketAddress::FromIp(p2proxy::client::ResolverAddress().ToString(), 53);
  for (size_t i = 0; i < c.dns.upstreams.size(); ++i) {
    if (!c.dns.upstreams[i].valid() || c.dns.upstreams[i].port() == 0) std::abort();
    if (c.dns.upstreams[i] == self) std::abort();
    for (size_t j = i + 1; j < c.dns.upstreams.size(); ++j) {
      if (c.dns.upstreams[i] == c.dns.upstreams[j]) std::abort();
    }
  }
  for (size_t i = 0; i < c.zones.size(); ++i) {
    if (!HostName(c.zones[i], false)) std::abort();
    for (size_t j = i + 1; j < c.zones.size(); ++j) {
      if (absl::EqualsIgnoreCase(c.zones[i], c.zones[j])) std::abort();
    }
  }
  if (!c.resources.empty() && c.zones.empty()) std::abort();
  for (size_t i = 0; i < c.resources.size(); ++i) {
    const ClientResource& r = c.resources[i];
    if (!HostName(r.name, true)) std::abort();
    bool inside = false;
    for (const std::string& z : c.zones) inside = inside || InZone(r.name, z);
    if (!inside) std::abort();
    if (r.address.family != IpAddress::kV4 || !c.resource_range.Contains(r.address) ||
        r.address == p2proxy::client::ResolverAddress()) {
      std::abort();
    }
    for (size_t j = i + 1; j < c.resources.size(); ++j) {
      if (absl::EqualsIgnoreCase(r.name, c.resources[j].name)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  auto config = p2proxy::client::ParseClientConfigJson(json);
  if (!config.ok()) {
    const absl::string_view message = config.status().message();
    if (!absl::StartsWith(message, "config: ") || absl::StrContains(message, "\n")) std::abort();
    return 0;
  }
  CheckRules(*config);
  auto again = p2proxy::client::ParseClientConfigJson(Format(*config));
  if (!again.ok() || !Same(*config, *again)) std::abort();
  return 0;
}
