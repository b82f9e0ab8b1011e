// Tests for the strict JSON-to-proto parser (against tests/config/test_config.proto) and the
// path-naming helpers the roles' config validation shares.
#include "config/json_proto.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/test_config.pb.h"

using namespace p2proxy;
using config::test::Root;

namespace {

// Message parses |json| into a Root and gives the error it must fail with.
std::string Message(const std::string& json, const config::JsonOptions& options = {}) {
  Root root;
  absl::Status status = config::ParseStrictJson(json, &root, options);
  REQUIRE_FALSE(status.ok());
  REQUIRE(status.code() == absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

Root Parse(const std::string& json) {
  Root root;
  absl::Status status = config::ParseStrictJson(json, &root);
  INFO(status.message());
  REQUIRE(status.ok());
  return root;
}

}  // namespace

TEST_CASE("json_proto: every shape of the schema parses, in both spellings") {
  const Root r = Parse(R"({
    "name": "ünïcode \u00e9 \ud83d\ude00",
    "port": "443",
    "baseOffset": -7,
    "enabled": true,
    "tags": ["a", "b"],
    "inner": {"label": "x", "values": [1, 2], "child": {"label": "y"}},
    "items": [{"label": "i0"}, {}],
    "ratio": 0.5e1,
    "color": "COLOR_RED",
    "limit": 0
  })");
  CHECK(r.name() == "ünïcode é \xF0\x9F\x98\x80");
  CHECK(r.port() == 443);
  CHECK(r.base_offset() == -7);
  CHECK(r.enabled());
  CHECK(r.tags_size() == 2);
  CHECK(r.tags(1) == "b");
  CHECK(r.inner().values(1) == 2);
  CHECK(r.inner().child().label() == "y");
  CHECK(r.items_size() == 2);
  CHECK(r.ratio() == 5.0);
  CHECK(r.color() == config::test::COLOR_RED);
  CHECK(r.has_limit());
  CHECK(r.limit() == 0);
}

TEST_CASE("json_proto: missing fields and null take the default") {
  const Root r = Parse(R"({"name": null, "tags": null, "inner": null, "limit": null})");
  CHECK(r.name().empty());
  CHECK(r.tags_size() == 0);
  CHECK_FALSE(r.has_inner());
  CHECK_FALSE(r.has_limit());
  CHECK(Parse("{}").port() == 0);
  CHECK(Parse(" \n{ }\n").port() == 0);
}

TEST_CASE("json_proto: a byte order mark is skipped") {
  CHECK(Parse("\xEF\xBB\xBF{\"port\": 1}").port() == 1);
  // Only at the start.
  CHECK(Message("{\"port\": 1}\xEF\xBB\xBF") ==
        "config: line 1, column 12: unexpected text after the config's closing '}'");
}

TEST_CASE("json_proto: size and depth limits") {
  CHECK(Message(std::string(1 << 20, ' ') + "{}") == "config: larger than 1 MiB");
  Root root;
  CHECK(config::ParseStrictJson(std::string((1 << 20) - 2, ' ') + "{}", &root).ok());
  config::JsonOptions small;
  small.max_len = 10;
  CHECK(Message(R"({"port": 80})", small) == "config: larger than 10 bytes");
  config::JsonOptions shallow;
  shallow.max_depth = 3;
  CHECK(config::ParseStrictJson(R"({"inner": {"child": {}}})", &root, shallow).ok());
  CHECK(Message(R"({"inner": {"child": {"child": {}}}})", shallow) ==
        "config: line 1, column 31 (in inner.child.child): nested more than 3 levels deep");
  std::string deep = "{\"x\": ";
  for (int i = 0; i < 20; ++i) deep += "[";
  CHECK(Message(deep) ==
        "config: line 1, column 22 (in x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]): nested "
        "more than 16 levels deep");
}

TEST_CASE("json_proto: RFC 8259 syntax only") {
  CHECK(Message("") == "config: empty (a config is a JSON object: {...})");
  CHECK(Message("[]") == "config: line 1, column 1: expected '{' (a config is a JSON object)");
  CHECK(Message(R"({"port": 1,})") ==
        "config: line 1, column 12: expected a field name after ',' (JSON has no trailing commas)");
  CHECK(Message(R"({"tags": ["a",]})") ==
        "config: line 1, column 15 (in tags): expected a value after ',' (JSON has no trailing "
        "commas)");
  CHECK(Message("{port: 1}") == "config: line 1, column 2: expected a field name in double quotes");
  CHECK(Message("{'port': 1}") ==
        "config: line 1, column 2: expected a field name in double quotes");
  CHECK(Message(R"({"name": 'x'})") ==
        "config: line 1, column 10 (in name): expected a value (strings take double quotes)");
  CHECK(Message("{\n  // a comment\n}") ==
        "config: line 2, column 3: expected a field name in double quotes");
  CHECK(Message(R"({"port": 01})") ==
        "config: line 1, column 11 (in port): numbers have no leading zeros in JSON");
  CHECK(Message(R"({"port": 1e999})") ==
        "config: line 1, column 10 (in port): number out of range");
  CHECK(Message(R"({"port": 1} {})") ==
        "config: line 1, column 13: unexpected text after the config's closing '}'");
  CHECK(Message(R"({"": 1})") == "config: line 1, column 2: empty field name");
  CHECK(Message(R"({"port" 1})") == "config: line 1, column 9: expected ':' after the field name");
  CHECK(Message(R"({"port": 1)") ==
        "config: line 1, column 11: unexpected end of input (expected ',' or '}' after a field)");
  CHECK(Message("{\"name\": \"a\tb\"}") ==
        "config: line 1, column 12 (in name): control character in a string (write a newline as "
        "\\n, a tab as \\t)");
  CHECK(Message(R"({"name": "\x"})") ==
        "config: line 1, column 12 (in name): invalid escape in a string (JSON has \\\" \\\\ \\/ "
        "\\b \\f \\n \\r \\t \\uXXXX)");
  CHECK(Message(R"({"name": "\udc00"})") ==
        "config: line 1, column 17 (in name): \\u escape is a lone low surrogate");
  CHECK(Message(R"({"name": "\ud800x"})") ==
        "config: line 1, column 17 (in name): \\u escape is a high surrogate without a low one "
        "after it");
  CHECK(Message("{\"name\": \"\xC0\xAF\"}") ==
        "config: line 1, column 11 (in name): invalid UTF-8 in a string");
  CHECK(Message("{\"name\": \"\xED\xA0\x80\"}") ==
        "config: line 1, column 11 (in name): invalid UTF-8 in a string");
  // Columns count characters, not bytes.
  CHECK(Message("{\"name\": \"é\", x}") ==
        "config: line 1, column 15: expected a field name in double quotes");
}

TEST_CASE("json_proto: each field once per object, in either spelling") {
  CHECK(Message(R"({"port": 1, "port": 2})") == "config: port: given twice (both on line 1)");
  CHECK(Message("{\"base_offset\": 1,\n\"baseOffset\": 2}") ==
        "config: base_offset: given twice (lines 1 and 2)");
  CHECK(Message(R"({"items": [{}, {"label": "a", "label": "b"}]})") ==
        "config: items[1].label: given twice (both on line 1)");
}

TEST_CASE("json_proto: lists exactly where the schema has them") {
  CHECK(Message(R"({"name": ["a"]})") == "config: name: expected a string, not a list");
  CHECK(Message(R"({"tags": "a"})") == "config: tags: expected a list of strings ([...])");
  CHECK(Message(R"({"items": {}})") == "config: items: expected a list of objects ([...])");
  CHECK(Message(R"({"tags": [["a"]]})") == "config: tags[0]: expected a string, not a list");
  CHECK(Message(R"({"tags": ["a", null]})") == "config: tags[1]: null in a list (remove it)");
  CHECK(Message(R"({"items": [null]})") == "config: items[0]: null in a list (remove it)");
  CHECK(Message(R"({"port": {}})") ==
        "config: port: expected a non-negative integer, not an object");
  CHECK(Message(R"({"inner": {"values": [{}]}})") ==
        "config: inner.values[0]: expected a non-negative integer, not an object");
}

TEST_CASE("json_proto: unknown fields are named by their path") {
  CHECK(Message(R"({"bogus": 1})") ==
        "config: bogus: unknown field (expected one of: name, port, base_offset, enabled, tags, "
        "inner, items, ratio, color, limit)");
  CHECK(Message(R"({"items": [{}, {"bogus": 1}]})") ==
        "config: items[1].bogus: unknown field (expected one of: label, values, child)");
  CHECK(Message(R"({"inner": {"child": {"Label": "x"}}})") ==
        "config: inner.child.Label: unknown field (expected one of: label, values, child)");
  // A field name that could be a key is not repeated.
  CHECK(Message(R"({"inner": {"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=": 1}})") ==
        "config: inner: unknown field (name not shown; expected one of: label, values, child)");
  // The checker does not descend into an unknown field's value with a schema.
  CHECK(Message(R"({"bogus": {"port": [1, null]}, "port": 1})") ==
        "config: bogus: unknown field (expected one of: name, port, base_offset, enabled, tags, "
        "inner, items, ratio, color, limit)");
}

TEST_CASE("json_proto: wrong leaf types name the field and never repeat a string") {
  CHECK(Message(R"({"port": "eighty"})") ==
        "config: port: expected a non-negative integer, got a string that is not one");
  CHECK(Message(R"({"port": -1})") == "config: port: expected a non-negative integer, got -1");
  CHECK(Message(R"({"port": 4294967296})") ==
        "config: port: expected a non-negative integer, got 4294967296");
  CHECK(Message(R"({"port": true})") == "config: port: expected a non-negative integer, got true");
  CHECK(Message(R"({"base_offset": 1.5})") == "config: base_offset: expected an integer, got 1.5");
  CHECK(Message(R"({"name": 5})") == "config: name: expected a string, got 5");
  // protobuf's parser would take any string for a bool.
  CHECK(Message(R"({"enabled": "no"})") == "config: enabled: expected true or false, got a string");
  CHECK(Message(R"({"enabled": 1})") == "config: enabled: expected true or false, got 1");
  CHECK(Message(R"({"ratio": "x"})") ==
        "config: ratio: expected a number, got a string that is not one");
  CHECK(Message(R"({"inner": {"values": [1, "x"]}})") ==
        "config: inner.values[1]: expected a non-negative integer, got a string that is not one");
  CHECK(Message(R"({"items": [{}, {"label": false}]})") ==
        "config: items[1].label: expected a string, got false");
  CHECK(Message(R"({"inner": "x"})") == "config: inner: expected an object, got a string");
  CHECK(Message(R"({"color": "COLOR_BLUE"})") ==
        "config: color: expected an enum value name, got a string");
}

TEST_CASE("json_proto: ConfigError, JoinPath, IndexPath") {
  const absl::Status e = config::ConfigError("a.b[1]", "bad");
  CHECK(e.code() == absl::StatusCode::kInvalidArgument);
  CHECK(e.message() == "config: a.b[1]: bad");
  CHECK(config::ConfigError("", "bad").message() == "config: bad");
  CHECK(config::JoinPath("", "x") == "x");
  CHECK(config::JoinPath("a[0]", "x") == "a[0].x");
  CHECK(config::IndexPath("resources", 2) == "resources[2]");
}

TEST_CASE("json_proto: Quote cuts, escapes and hides keys") {
  CHECK(config::Quote("a'b\\c\n") == "'a\\'b\\\\c\\x0a'");
  CHECK(config::Quote(std::string(70, '.')) == "'" + std::string(64, '.') + "...'");
  CHECK(config::Quote(std::string(63, '.') + "é") == "'" + std::string(63, '.') + "...'");
  CHECK(config::Quote("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=") ==
        "a value that looks like a key (not shown)");
  CHECK(config::LooksLikeKey(std::string(32, 'a')));
  CHECK_FALSE(config::LooksLikeKey(std::string(31, 'a') + "." + std::string(31, 'a')));
  CHECK(config::LooksLikeName("listen_port"));
  CHECK_FALSE(config::LooksLikeName(""));
  CHECK_FALSE(config::LooksLikeName("a b"));
  CHECK_FALSE(config::LooksLikeName(std::string(33, 'a')));
}

TEST_CASE("json_proto: CheckPlain, ParseIpv4, ParseHostPort") {
  CHECK(config::CheckPlain("1.2.3.4", "x", "an address").ok());
  CHECK(config::CheckPlain("1.2.3.4 ", "x", "an address").message() ==
        "config: x: '1.2.3.4 ' is not an address");
  CHECK(config::CheckPlain(std::string(65, '.'), "x", "an address").message() ==
        absl::StrCat("config: x: '", std::string(64, '.'), "...' is not an address"));
  CHECK(config::CheckPlain(std::string(44, 'A'), "x", "an address").message() ==
        "config: x: a value that looks like a key (not shown) is not an address");

  CHECK(config::ParseIpv4("100.96.0.1", "a", "missing")->ToString() == "100.96.0.1");
  CHECK(config::ParseIpv4("", "a", "missing (give one)").status().message() ==
        "config: a: missing (give one)");
  CHECK(config::ParseIpv4("10.0.0.1/32", "a", "").status().message() ==
        "config: a: '10.0.0.1/32' is not an IPv4 address (write the address alone, without a "
        "prefix length)");
  CHECK(config::ParseIpv4("fd00::1", "a", "").status().message() ==
        "config: a: 'fd00::1' is not an IPv4 address (overlay addresses are IPv4)");
  CHECK(config::ParseIpv4("host", "a", "").status().message() ==
        "config: a: 'host' is not an IPv4 address");

  CHECK(config::ParseHostPort("10.0.0.1:53", "t", "")->ToString() == "10.0.0.1:53");
  CHECK(config::ParseHostPort("[fd00::1]:853", "t", "")->ToString() == "[fd00::1]:853");
  CHECK(config::ParseHostPort("", "t", "missing").status().message() == "config: t: missing");
  CHECK(config::ParseHostPort("10.0.0.1", "t", "").status().message() ==
        "config: t: '10.0.0.1' has no port (IP:port)");
  CHECK(config::ParseHostPort("fd00::1:53", "t", "").status().message() ==
        "config: t: 'fd00::1:53' is not an address (write IPv6 as [IPv6]:port)");
  CHECK(config::ParseHostPort("[fd00::1]", "t", "").status().message() ==
        "config: t: '[fd00::1]' is not an address ([IPv6]:port)");
  CHECK(config::ParseHostPort("10.0.0.1:0", "t", "").status().message() ==
        "config: t: '10.0.0.1:0': '0' is not a port (1-65535)");
  CHECK(config::ParseHostPort("10.0.0.1:65536", "t", "").status().message() ==
        "config: t: '10.0.0.1:65536': '65536' is not a port (1-65535)");
  CHECK(config::ParseHostPort("db.internal:5432", "t", "").status().message() ==
        "config: t: 'db.internal:5432': host names are not supported yet; use an IP address");
  CHECK(config::ParseHostPort("1.2.3:80", "t", "").status().message() ==
        "config: t: '1.2.3:80': '1.2.3' is not an IP address");
}
