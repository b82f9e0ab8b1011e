// Tests for the client's JSON config: defaults, a realistic file, the strict JSON and protobuf
// errors with their paths, and every rule of client_config.proto, each with its exact message.
#include "client/client_config.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"

using namespace p2proxy;
using client::ClientConfig;
using client::DnsHookMode;

namespace {

ClientConfig Parse(const std::string& json) {
  auto config = client::ParseClientConfigJson(json);
  INFO(config.status().message());
  REQUIRE(config.ok());
  return *std::move(config);
}

std::string Message(const std::string& json) {
  auto config = client::ParseClientConfigJson(json);
  REQUIRE_FALSE(config.ok());
  REQUIRE(config.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// WithDns: a config whose "dns" object is |dns|.
std::string WithDns(const std::string& dns) { return absl::StrCat(R"({"dns": )", dns, "}"); }

// WithResources: zones example.internal and Corp, and the given "resources" list.
std::string WithResources(const std::string& resources, const std::string& extra = "") {
  return absl::StrCat(R"({"zones": ["example.internal", "Corp"], "resources": )", resources, extra,
                      "}");
}

std::string Resource(const std::string& name, const std::string& address) {
  return absl::StrCat(R"({"name": ")", name, R"(", "address": ")", address, R"("})");
}

std::string Sa(const base::SocketAddress& a) { return a.ToString(); }

// Dashed is a label of |n| characters, "a-a-...a": valid, and never a run that looks like a key.
std::string Dashed(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(i % 2 == 1 && i + 1 < n ? '-' : 'a');
  return out;
}

}  // namespace

TEST_CASE("client_config: an empty object takes every default") {
  for (const char* json :
       {"{}", R"({"dns": {}})", R"({"dns": null, "zones": null})", "\xEF\xBB\xBF { }\n"}) {
    INFO(json);
    const ClientConfig c = Parse(json);
    CHECK_FALSE(c.dns.listen.has_value());
    CHECK(c.dns.hook == DnsHookMode::kAuto);
    CHECK(c.dns.upstreams.empty());
    CHECK(c.dns.state_dir == "/var/lib/p2proxy/client");
    CHECK(c.dns.cache_entries == 10000);
    CHECK(c.dns.ttl == 60);
    CHECK(c.zones.empty());
    CHECK(c.resources.empty());
    CHECK(c.resource_range.ToString() == "100.96.128.0/18");
  }
  // A default-constructed config is the same as an empty file.
  const ClientConfig d;
  CHECK(d.resource_range.ToString() == "100.96.128.0/18");
  CHECK(d.dns.cache_entries == 10000);
  CHECK(d.dns.ttl == 60);
  CHECK(d.dns.state_dir == "/var/lib/p2proxy/client");
  CHECK(client::ResolverAddress().ToString() == "100.96.128.1");
}

TEST_CASE("client_config: a full config, in both spellings") {
  const ClientConfig c = Parse(R"({
    "dns": {
      "listen": "127.0.0.53:5353",
      "hook": "resolved",
      "upstreams": ["10.0.0.2", "10.0.0.3:5300", "[fd00::53]:53", "fd00::54"],
      "stateDir": "/run/p2proxy",
      "cache_entries": 0,
      "ttl": "300"
    },
    "zones": ["example.internal", "Corp.Example"],
    "resources": [
      {"name": "vault.example.internal", "address": "100.96.128.20"},
      {"name": "*.apps.example.internal", "address": "100.96.128.21"},
      {"name": "Wiki.corp.example", "address": "100.96.128.20"},
      {"name": "example.internal", "address": "100.96.191.254"}
    ],
    "resourceRange": "100.96.128.0/18"
  })");
  REQUIRE(c.dns.listen.has_value());
  CHECK(Sa(*c.dns.listen) == "127.0.0.53:5353");
  CHECK(c.dns.hook == DnsHookMode::kResolved);
  REQUIRE(c.dns.upstreams.size() == 4);
  CHECK(Sa(c.dns.upstreams[0]) == "10.0.0.2:53");
  CHECK(Sa(c.dns.upstreams[1]) == "10.0.0.3:5300");
  CHECK(Sa(c.dns.upstreams[2]) == "[fd00::53]:53");
  CHECK(Sa(c.dns.upstreams[3]) == "[fd00::54]:53");
  CHECK(c.dns.state_dir == "/run/p2proxy");
  CHECK(c.dns.cache_entries == 0);
  CHECK(c.dns.ttl == 300);
  CHECK(c.zones == std::vector<std::string>{"example.internal", "Corp.Example"});
  REQUIRE(c.resources.size() == 4);
  CHECK(c.resources[1].name == "*.apps.example.internal");
  CHECK(c.resources[1].address.ToString() == "100.96.128.21");
  CHECK(c.resources[2].name == "Wiki.corp.example");  // case kept as written
  CHECK(c.resources[3].address.ToString() == "100.96.191.254");
}

TEST_CASE("client_config: hook spellings") {
  CHECK(Parse(WithDns(R"({"hook": "auto"})")).dns.hook == DnsHookMode::kAuto);
  CHECK(Parse(WithDns(R"({"hook": "resolved"})")).dns.hook == DnsHookMode::kResolved);
  CHECK(Parse(WithDns(R"({"hook": "resolv.conf"})")).dns.hook == DnsHookMode::kResolvConf);
  CHECK(Parse(WithDns(R"({"hook": "none"})")).dns.hook == DnsHookMode::kNone);
  for (DnsHookMode m :
       {DnsHookMode::kAuto, DnsHookMode::kResolved, DnsHookMode::kResolvConf, DnsHookMode::kNone}) {
    CHECK(Parse(WithDns(absl::StrCat(R"({"hook": ")", client::DnsHookModeName(m), R"("})")))
              .dns.hook == m);
  }
  CHECK(Message(WithDns(R"({"hook": "Resolved"})")) ==
        "config: dns.hook: 'Resolved' is not a hook (\"auto\", \"resolved\", \"resolv.conf\" or "
        "\"none\", lower case)");
  CHECK(Message(WithDns(R"({"hook": "resolvconf"})")) ==
        "config: dns.hook: 'resolvconf' is not a hook (\"auto\", \"resolved\", \"resolv.conf\" or "
        "\"none\", lower case)");
}

TEST_CASE("client_config: dns.listen") {
  CHECK(Sa(*Parse(WithDns(R"({"listen": "[::1]:53"})")).dns.listen) == "[::1]:53");
  CHECK(Message(WithDns(R"({"listen": "100.96.128.1"})")) ==
        "config: dns.listen: '100.96.128.1' has no port (IP:port)");
  CHECK(Message(WithDns(R"({"listen": "100.96.128.1:0"})")) ==
        "config: dns.listen: '100.96.128.1:0': '0' is not a port (1-65535)");
  CHECK(Message(WithDns(R"({"listen": "localhost:53"})")) ==
        "config: dns.listen: 'localhost:53': host names are not supported yet; use an IP address");
  // /etc/resolv.conf cannot name a port.
  CHECK(Parse(WithDns(R"({"listen": "127.0.0.2:53", "hook": "resolv.conf"})"))
            .dns.listen.has_value());
  CHECK(Message(WithDns(R"({"listen": "127.0.0.2:5353", "hook": "resolv.conf"})")) ==
        "config: dns.listen: port 5353: /etc/resolv.conf can only name port 53 (dns.hook is "
        "\"resolv.conf\")");
}

TEST_CASE("client_config: dns.upstreams") {
  CHECK(Message(WithDns(R"({"upstreams": ["10.0.0.2", "dns.google"]})")) ==
        "config: dns.upstreams[1]: 'dns.google' is not an IP address (IP, IPv4:port or "
        "[IPv6]:port; host names are not supported)");
  CHECK(Message(WithDns(R"({"upstreams": ["10.0.0.2:99999"]})")) ==
        "config: dns.upstreams[0]: '10.0.0.2:99999': '99999' is not a port (1-65535)");
  CHECK(Message(WithDns(R"({"upstreams": ["[fd00::1]"]})")) ==
        "config: dns.upstreams[0]: '[fd00::1]' is not an address ([IPv6]:port)");
  CHECK(Message(WithDns(R"({"upstreams": ["10.0.0.2 "]})")) ==
        "config: dns.upstreams[0]: '10.0.0.2 ' is not an address (IP or IP:port)");
  CHECK(Message(WithDns(R"({"upstreams": ["10.0.0.2", "10.0.0.2:53"]})")) ==
        "config: dns.upstreams[1]: 10.0.0.2:53 is already dns.upstreams[0]");
  // The resolver never forwards to itself, by default address or by dns.listen.
  CHECK(Message(WithDns(R"({"upstreams": ["100.96.128.1"]})")) ==
        "config: dns.upstreams[0]: 100.96.128.1:53 is the resolver's own address (dns.listen); "
        "an upstream must be another resolver");
  CHECK(Message(WithDns(R"({"listen": "127.0.0.2:5353", "upstreams": ["127.0.0.2:5353"]})")) ==
        "config: dns.upstreams[0]: 127.0.0.2:5353 is the resolver's own address (dns.listen); "
        "an upstream must be another resolver");
  CHECK(Parse(WithDns(R"({"listen": "127.0.0.2:5353", "upstreams": ["100.96.128.1"]})"))
            .dns.upstreams.size() == 1);
  CHECK(Message(WithDns(R"({"upstreams": "10.0.0.2"})")) ==
        "config: dns.upstreams: expected a list of strings ([...])");
  CHECK(Message(WithDns(R"({"upstreams": ["10.0.0.2", null]})")) ==
        "config: dns.upstreams[1]: null in a list (remove it)");
}

TEST_CASE("client_config: dns.state_dir, cache_entries, ttl") {
  CHECK(Message(WithDns(R"({"state_dir": "var/lib/p2proxy"})")) ==
        "config: dns.state_dir: 'var/lib/p2proxy' is not an absolute path");
  CHECK(Message(WithDns(R"({"state_dir": "/var/lib/\np2proxy"})")) ==
        "config: dns.state_dir: '/var/lib/\\x0ap2proxy' contains a control character");
  CHECK(Message(WithDns(absl::StrCat(R"({"state_dir": "/)", std::string(4095, 'a'), "\"}"))) ==
        "config: dns.state_dir: longer than 4095 bytes");
  CHECK(Parse(WithDns(absl::StrCat(R"({"state_dir": "/)", std::string(4094, 'a'), "\"}")))
            .dns.state_dir.size() == 4095);

  CHECK(Parse(WithDns(R"({"cache_entries": 1000000})")).dns.cache_entries == 1000000);
  CHECK(Parse(WithDns(R"({"cacheEntries": null})")).dns.cache_entries == 10000);
  CHECK(Message(WithDns(R"({"cache_entries": 1000001})")) ==
        "config: dns.cache_entries: 1000001 is too many (0-1000000; 0: no cache)");
  CHECK(Message(WithDns(R"({"cache_entries": -1})")) ==
        "config: dns.cache_entries: expected a non-negative integer, got -1");

  CHECK(Parse(WithDns(R"({"ttl": 1})")).dns.ttl == 1);
  CHECK(Parse(WithDns(R"({"ttl": 86400})")).dns.ttl == 86400);
  CHECK(Message(WithDns(R"({"ttl": 0})")) == "config: dns.ttl: 0 is not a TTL (1-86400 seconds)");
  CHECK(Message(WithDns(R"({"ttl": 86401})")) ==
        "config: dns.ttl: 86401 is not a TTL (1-86400 seconds)");
  CHECK(Message(WithDns(R"({"ttl": "1m"})")) ==
        "config: dns.ttl: expected a non-negative integer, got a string that is not one");
}

TEST_CASE("client_config: zones") {
  CHECK(Parse(R"({"zones": ["internal", "a-b.x1", "xn--bcher-kva.example"]})").zones.size() == 3);
  const std::string long_label = Dashed(64);
  CHECK(Parse(absl::StrCat(R"({"zones": [")", Dashed(63), R"(.internal"]})")).zones.size() == 1);
  CHECK(Message(R"({"zones": ["example.internal", ""]})") ==
        "config: zones[1]: empty (a private zone, e.g. \"example.internal\")");
  CHECK(Message(R"({"zones": ["example.internal."]})") ==
        "config: zones[0]: 'example.internal.' is not a DNS name: it ends with '.' (write it "
        "without the trailing dot)");
  CHECK(Message(R"({"zones": ["a..b"]})") ==
        "config: zones[0]: 'a..b' is not a DNS name: it has an empty label ('..' or a leading "
        "'.')");
  CHECK(Message(R"({"zones": [".b"]})") ==
        "config: zones[0]: '.b' is not a DNS name: it has an empty label ('..' or a leading '.')");
  CHECK(Message(R"({"zones": ["*.example.internal"]})") ==
        "config: zones[0]: '*.example.internal' is not a DNS name: a zone cannot be a wildcard");
  CHECK(Message(R"({"zones": ["my zone.internal"]})") ==
        "config: zones[0]: 'my zone.internal' is not a DNS name: labels hold letters, digits and "
        "'-' only");
  CHECK(Message(R"({"zones": ["_tcp.internal"]})") ==
        "config: zones[0]: '_tcp.internal' is not a DNS name: labels hold letters, digits and "
        "'-' only");
  CHECK(Message(R"({"zones": ["-a.internal"]})") ==
        "config: zones[0]: '-a.internal' is not a DNS name: a label starts or ends with '-'");
  CHECK(Message(absl::StrCat(R"({"zones": [")", long_label, R"(.internal"]})")) ==
        absl::StrCat("config: zones[0]: '", long_label,
                     "...' is not a DNS name: a label is longer than 63 characters"));
  std::string long_name;
  for (int i = 0; i < 3; ++i) absl::StrAppend(&long_name, Dashed(63), ".");
  CHECK(Parse(absl::StrCat(R"({"zones": [")", long_name, Dashed(61), R"("]})")).zones.size() ==
        1);                 // 253 characters
  long_name += Dashed(62);  // 254 characters
  CHECK(Message(absl::StrCat(R"({"zones": [")", long_name, R"("]})")) ==
        absl::StrCat("config: zones[0]: '", long_name.substr(0, 64),
                     "...' is not a DNS name: longer than 253 characters"));
  CHECK(Message(R"({"zones": ["10.0.0.1"]})") ==
        "config: zones[0]: '10.0.0.1' is not a DNS name: it looks like an IP address");
  CHECK(Message(R"({"zones": ["example.internal", "Example.Internal"]})") ==
        "config: zones[1]: 'Example.Internal' is already zones[0]");
  CHECK(Message(R"({"zones": "example.internal"})") ==
        "config: zones: expected a list of strings ([...])");
  CHECK(Message(R"({"zones": [["example.internal"]]})") ==
        "config: zones[0]: expected a string, not a list");
  CHECK(Message(R"({"zones": [1]})") == "config: zones[0]: expected a string, got 1");
}

TEST_CASE("client_config: resource names") {
  CHECK(Message(R"({"resources": [{"name": "a.example.internal", "address": "100.96.128.2"}]})") ==
        "config: zones: none given (each resource's name must be inside a private zone; add one, "
        "e.g. \"example.internal\")");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: missing (a DNS name inside one of zones, e.g. "
        "\"vault.example.internal\")");
  CHECK(Message(
            WithResources(absl::StrCat("[", Resource("vault.example.org", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: 'vault.example.org' is not inside any of zones (add its zone "
        "there)");
  // A zone's suffix is not the zone: "badexample.internal" is not in "example.internal".
  CHECK(Message(WithResources(
            absl::StrCat("[", Resource("badexample.internal", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: 'badexample.internal' is not inside any of zones (add its "
        "zone there)");
  // Zones match ignoring case.
  CHECK(Parse(WithResources(absl::StrCat("[", Resource("WIKI.CORP", "100.96.128.2"), "]")))
            .resources[0]
            .name == "WIKI.CORP");
  CHECK(Message(WithResources(
            absl::StrCat("[", Resource("a.*.example.internal", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: 'a.*.example.internal' is not a DNS name: '*' may only be the "
        "first label (\"*.apps.example.internal\")");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("*", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: '*' is not a DNS name: a wildcard needs a name after \"*.\"");
  CHECK(Message(WithResources(
            absl::StrCat("[", Resource("a*.example.internal", "100.96.128.2"), "]"))) ==
        "config: resources[0].name: 'a*.example.internal' is not a DNS name: labels hold letters, "
        "digits and '-' only ('*' only as a whole first label)");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("vault.example.internal", "100.96.128.2"),
                                           ", ", Resource("Vault.Example.Internal", "100.96.128.3"),
                                           "]"))) ==
        "config: resources[1].name: 'Vault.Example.Internal' is already the name of resources[0]");
  CHECK(Message(WithResources(R"([{"address": "100.96.128.2", "name": ["a.corp"]}])")) ==
        "config: resources[0].name: expected a string, not a list");
}

TEST_CASE("client_config: resource addresses and resource_range") {
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "100.96.128.2"), ", ",
                                           Resource("b.corp", "100.96.0.5"), "]"))) ==
        "config: resources[1].address: \"100.96.0.5\" is not inside resource_range "
        "100.96.128.0/18");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", ""), "]"))) ==
        "config: resources[0].address: missing (the name's address in the overlay, e.g. "
        "\"100.96.128.20\")");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "100.96.128.2/32"), "]"))) ==
        "config: resources[0].address: '100.96.128.2/32' is not an IPv4 address (write the "
        "address alone, without a prefix length)");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "fd00::1"), "]"))) ==
        "config: resources[0].address: 'fd00::1' is not an IPv4 address (overlay addresses are "
        "IPv4)");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "100.96.128.1"), "]"))) ==
        "config: resources[0].address: 100.96.128.1 is the resolver's address; give the resource "
        "another");
  // Outside the default range too, 100.96.128.1 is never a resource.
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "100.96.128.1"), "]"),
                              R"(, "resource_range": "100.96.0.0/16")")) ==
        "config: resources[0].address: 100.96.128.1 is the resolver's address; give the resource "
        "another");
  CHECK(Message(absl::StrCat(R"({"dns": {"listen": "100.96.128.9:53"}, )",
                             R"("zones": ["corp"], "resources": [)",
                             Resource("a.corp", "100.96.128.9"), "]}")) ==
        "config: resources[0].address: 100.96.128.9 is the resolver's address (dns.listen); give "
        "the resource another");

  const ClientConfig c = Parse(WithResources(absl::StrCat("[", Resource("a.corp", "10.1.2.3"), "]"),
                                             R"(, "resource_range": "10.0.0.0/8")"));
  CHECK(c.resource_range.ToString() == "10.0.0.0/8");
  CHECK(c.resources[0].address.ToString() == "10.1.2.3");
  CHECK(Message(R"({"resource_range": "100.96.128.0"})") ==
        "config: resource_range: '100.96.128.0' has no prefix length (e.g. \"100.96.128.0/18\")");
  CHECK(Message(R"({"resource_range": "100.96.128.5/18"})") ==
        "config: resource_range: '100.96.128.5/18' has host bits set (did you mean "
        "100.96.128.0/18?)");
  CHECK(Message(R"({"resource_range": "100.96.128.0/33"})") ==
        "config: resource_range: '100.96.128.0/33' is not an IPv4 prefix");
  CHECK(Message(R"({"resource_range": "fd00::/8"})") ==
        "config: resource_range: 'fd00::/8' is not an IPv4 prefix (resource addresses are IPv4)");
  CHECK(Message(R"({"resource_range": "100.96.128.0/18 "})") ==
        "config: resource_range: '100.96.128.0/18 ' is not an IPv4 prefix");
  CHECK(Message(R"({"resource_range": ["100.96.128.0/18"]})") ==
        "config: resource_range: expected a string, not a list");
}

TEST_CASE("client_config: unknown fields and wrong types name their path") {
  CHECK(Message(R"({"zone": ["corp"]})") ==
        "config: zone: unknown field (expected one of: dns, zones, resources, resource_range)");
  CHECK(Message(WithDns(R"({"upstream": ["10.0.0.2"]})")) ==
        "config: dns.upstream: unknown field (expected one of: listen, hook, upstreams, "
        "state_dir, cache_entries, ttl)");
  CHECK(Message(WithResources(absl::StrCat("[", Resource("a.corp", "100.96.128.2"),
                                           R"(, {"name": "b.corp", "ip": "100.96.128.3"}])"))) ==
        "config: resources[1].ip: unknown field (expected one of: name, address)");
  CHECK(Message(R"({"dns": "100.96.128.1"})") == "config: dns: expected an object, got a string");
  CHECK(Message(R"({"dns": [{}]})") == "config: dns: expected an object, not a list");
  CHECK(Message(R"({"resources": {}})") == "config: resources: expected a list of objects ([...])");
  CHECK(Message(R"({"resources": [null]})") == "config: resources[0]: null in a list (remove it)");
  CHECK(Message(WithResources(R"([{"name": "a.corp", "address": 100}])")) ==
        "config: resources[0].address: expected a string, got 100");
  CHECK(Message(R"({"zones": ["corp"], "zones": []})") ==
        "config: zones: given twice (both on line 1)");
  CHECK(Message("{\"dns\": {\"cache_entries\": 1,\n \"cacheEntries\": 2}}") ==
        "config: dns.cache_entries: given twice (lines 1 and 2)");
  CHECK(Message(R"({"zones": ["corp"],})") ==
        "config: line 1, column 20: expected a field name after ',' (JSON has no trailing commas)");
  CHECK(Message("") == "config: empty (a config is a JSON object: {...})");
  CHECK(Message(std::string(1 << 20, ' ') + "{}") == "config: larger than 1 MiB");
}
