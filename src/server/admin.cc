// admin.cc: the admin commands: the command table and its flag parser, one handler per
// command over the Store, and the two renderings (aligned tables, JSON).
#include "server/admin.h"

#include <openssl/mem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/encoding.h"
#include "base/status_macros.h"
#include "control/validate.h"

namespace p2proxy::server {

void AdminHost::RandomBytes(uint8_t* out, size_t len) { RAND_bytes(out, len); }

namespace {

using absl::StrCat;

constexpr size_t kHexSecretLen = 64;  // 32 bytes
constexpr size_t kTokenIdLen = 12;    // hex digits of the token's hash shown as its id
constexpr size_t kMinTokenIdLen = 8;
constexpr uint64_t kMaxAuditLimit = 100000;
constexpr size_t kMaxCellLen = 60;  // table cells longer than this are cut (paths, reasons)

// ---- Errors ----------------------------------------------------------------------------------
// A handler's Status: InvalidArgument is a usage error (exit 2), anything else a failure (1).

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }
absl::Status Failed(absl::string_view message) { return absl::FailedPreconditionError(message); }
absl::Status Missing(absl::string_view message) { return absl::NotFoundError(message); }

// Q repeats a name from the command line or the store in single quotes, cut short, with
// anything that is not printable ASCII or UTF-8 escaped, so an error stays one readable line.
std::string Q(absl::string_view value) {
  constexpr size_t kMaxEcho = 64;
  std::string out = "'";
  for (char c : value.substr(0, kMaxEcho)) {
    const auto b = static_cast<uint8_t>(c);
    if (b == '\'' || b == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (b < 0x20 || b == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", b);
    } else {
      out.push_back(c);
    }
  }
  out += value.size() > kMaxEcho ? "'..." : "'";
  return out;
}

// ---- Rendering -------------------------------------------------------------------------------

std::string ShowTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}
std::string FormatTimeMs(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}
std::string FormatOptTime(const std::optional<absl::Time>& t) {
  return t ? ShowTime(*t) : "-";
}

// JsonString is |s| as a JSON string. Bytes that are not valid in JSON text are escaped; the
// store's strings are UTF-8 (names) or printable ASCII (audit fields), so nothing is lost.
std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto b = static_cast<uint8_t>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (b < 0x20 || b == 0x7F) {
          absl::StrAppendFormat(&out, "\\u%04x", b);
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

// JsonObject builds one JSON object, keys in the order added.
class JsonObject {
 public:
  JsonObject& Raw(absl::string_view key, absl::string_view json) {
    absl::StrAppend(&text_, text_.empty() ? "{" : ",", JsonString(key), ":", json);
    return *this;
  }
  JsonObject& Str(absl::string_view key, absl::string_view value) {
    return Raw(key, JsonString(value));
  }
  JsonObject& Int(absl::string_view key, int64_t value) { return Raw(key, StrCat(value)); }
  JsonObject& Uint(absl::string_view key, uint64_t value) { return Raw(key, StrCat(value)); }
  JsonObject& Bool(absl::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
  JsonObject& Time(absl::string_view key, absl::Time t) { return Str(key, FormatTimeMs(t)); }
  JsonObject& OptTime(absl::string_view key, const std::optional<absl::Time>& t) {
    return t ? Time(key, *t) : Raw(key, "null");
  }
  template <typename C>
  JsonObject& StrList(absl::string_view key, const C& values) {
    std::vector<std::string> parts;
    for (const auto& v : values) parts.push_back(JsonString(v));
    return Raw(key, StrCat("[", absl::StrJoin(parts, ","), "]"));
  }
  std::string Done() const { return text_.empty() ? "{}" : StrCat(text_, "}"); }

 private:
  std::string text_;
};

std::string JsonArray(const std::vector<std::string>& items) {
  return StrCat("[", absl::StrJoin(items, ","), "]");
}

// Cell makes a value fit a table cell: one line, nothing a terminal would interpret, cut at
// |max| characters; empty becomes "-".
std::string Cell(absl::string_view value, size_t max = kMaxCellLen) {
  if (value.empty()) return "-";
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto b = static_cast<uint8_t>(value[i]);
    if ((b & 0xC0) != 0x80 && ++chars > max) {
      out += "...";
      break;
    }
    out.push_back(b < 0x20 || b == 0x7F ? '?' : value[i]);
  }
  return out;
}

// Width counts characters (UTF-8 lead bytes) for alignment.
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// Table renders rows under a header, columns separated by two spaces, the last not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const {
    std::vector<size_t> widths(rows_[0].size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        widths[i] = std::max(widths[i], Width(row[i]));
      }
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(widths[i] - Width(row[i]) + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// KeyValues renders "key:  value" lines with the values aligned.
class KeyValues {
 public:
  void Add(absl::string_view key, absl::string_view value) {
    rows_.emplace_back(StrCat(key, ":"), std::string(value.empty() ? "-" : value));
  }
  std::string Render() const {
    size_t width = 0;
    for (const auto& [k, v] : rows_) width = std::max(width, k.size());
    std::string out;
    for (const auto& [k, v] : rows_) {
      absl::StrAppend(&out, k, std::string(width - k.size() + 2, ' '), v, "\n");
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

absl::string_view NodeKindWord(wire::NodeKind kind) {
  return kind == wire::NODE_KIND_SITE ? "site" : kind == wire::NODE_KIND_CLIENT ? "device" : "node";
}
absl::string_view ResourceKindWord(wire::ResourceKind kind) {
  switch (kind) {
    case wire::RESOURCE_KIND_HTTPS: return "https";
    case wire::RESOURCE_KIND_TCP: return "tcp";
    case wire::RESOURCE_KIND_UDP: return "udp";
    default: return "unknown";
  }
}
absl::string_view AuditKindWord(wire::AuditKind kind) {
  switch (kind) {
    case wire::AUDIT_KIND_HTTPS: return "https";
    case wire::AUDIT_KIND_HTTP: return "http";
    case wire::AUDIT_KIND_TCP: return "tcp";
    case wire::AUDIT_KIND_UDP: return "udp";
    default: return "unknown";
  }
}

std::string TokenId(const TokenRecord& t) {
  return base::HexEncode(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(t.token_hash.data()),
                                             t.token_hash.size()))
      .substr(0, kTokenIdLen);
}

// ---- The command line ------------------------------------------------------------------------

struct FlagSpec {
  absl::string_view name;  // "--domain", "-n"
  bool takes_value = true;
  bool repeatable = false;
};

// Args is a parsed command line: positional words and flags in the order given.
struct Args {
  std::vector<std::string> pos;
  std::vector<std::pair<std::string, std::string>> flags;
  bool help = false;

  bool Has(absl::string_view name) const {
    return std::any_of(flags.begin(), flags.end(), [&](const auto& f) { return f.first == name; });
  }
  std::optional<std::string> Get(absl::string_view name) const {
    for (const auto& f : flags) {
      if (f.first == name) return f.second;
    }
    return std::nullopt;
  }
  std::vector<std::string> All(absl::string_view name) const {
    std::vector<std::string> out;
    for (const auto& f : flags) {
      if (f.first == name) out.push_back(f.second);
    }
    return out;
  }
};

// ParseArgs reads |words| against |specs|: "--flag value", "--flag=value", boolean "--flag";
// "--" ends the flags. A value may start with '-' ("--since -1h") but not with "--".
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                               const std::vector<FlagSpec>& specs) {
  Args args;
  bool flags_done = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (flags_done || w.size() < 2 || w[0] != '-') {
      args.pos.push_back(w);
      continue;
    }
    if (w == "--") {
      flags_done = true;
      continue;
    }
    if (w == "--help" || w == "-h") {
      args.help = true;
      continue;
    }
    std::string name = w;
    std::optional<std::string> inline_value;
    if (const size_t eq = w.find('='); eq != std::string::npos && absl::StartsWith(w, "--")) {
      name = w.substr(0, eq);
      inline_value = w.substr(eq + 1);
    }
    const auto spec = std::find_if(specs.begin(), specs.end(),
                                   [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      std::vector<std::string> known;
      for (const auto& s : specs) known.emplace_back(s.name);
      return Usage(StrCat("unknown flag ", Q(name),
                          known.empty() ? " (this command takes none)"
                                        : StrCat(" (known: ", absl::StrJoin(known, " "), ")")));
    }
    if (!spec->repeatable && args.Has(name)) return Usage(StrCat(name, " given twice"));
    if (!spec->takes_value) {
      if (inline_value) return Usage(StrCat(name, " takes no value"));
      args.flags.emplace_back(name, "");
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= words.size() || absl::StartsWith(words[i + 1], "--")) {
        return Usage(StrCat(name, " needs a value"));
      }
      inline_value = words[++i];
    }
    args.flags.emplace_back(name, *inline_value);
  }
  return args;
}

// ParseTtl reads "90m", "1h30m", "7d" (a day is 24h).
absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view flag, absl::string_view text) {
  absl::Duration d;
  uint64_t days = 0;
  if (absl::EndsWith(text, "d") &&
      base::ParseDecimal(text.substr(0, text.size() - 1), 100000, &days)) {
    d = absl::Hours(24 * static_cast<int64_t>(days));
  } else if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration() ||
             d == -absl::InfiniteDuration()) {
    return Usage(StrCat(flag, " ", Q(text), " is not a duration (e.g. 30m, 1h, 7d)"));
  }
  return d;
}

// ParseTimeArg reads an RFC 3339 time ("2024-05-01T12:00:00Z") or a time before |now|
// ("-1h", "1h", "2d": that long ago).
absl::StatusOr<absl::Time> ParseTimeArg(absl::string_view flag, absl::string_view text,
                                        absl::Time now) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  absl::string_view ago = text;
  if (absl::StartsWith(ago, "-")) ago.remove_prefix(1);
  absl::Duration d;
  uint64_t days = 0;
  if (absl::EndsWith(ago, "d") &&
      base::ParseDecimal(ago.substr(0, ago.size() - 1), 100000, &days)) {
    return now - absl::Hours(24 * static_cast<int64_t>(days));
  }
  if (!ago.empty() && absl::ascii_isdigit(ago[0]) && absl::ParseDuration(ago, &d) &&
      d >= absl::ZeroDuration() && d != absl::InfiniteDuration()) {
    return now - d;
  }
  return Usage(StrCat(flag, " ", Q(text),
                      " is not a time: give RFC 3339 (2024-05-01T12:00:00Z) or an age (-1h, -2d)"));
}

absl::StatusOr<uint64_t> ParseCount(absl::string_view flag, absl::string_view text, uint64_t max) {
  uint64_t n = 0;
  if (!base::ParseDecimal(text, max, &n) || n == 0) {
    return Usage(StrCat(flag, " ", Q(text), " is not a count (1-", max, ")"));
  }
  return n;
}

// ---- Commands --------------------------------------------------------------------------------

struct Ctx {
  AdminHost& host;
  Store& store;
  AdminResult& result;
  bool json = false;
  std::vector<std::string> disconnect;  // node ids to disconnect after the command
};

using Handler = std::function<absl::Status(Ctx&, const Args&)>;

struct Command {
  absl::string_view group;  // "resource"
  absl::string_view verb;   // "add"; empty for a one-word command
  absl::string_view usage;  // the synopsis after the command words
  absl::string_view help;   // what it does, lines indented by two spaces
  size_t min_pos = 0;
  size_t max_pos = 0;
  std::vector<FlagSpec> flags;
  Handler run;
};

constexpr FlagSpec kJson{"--json", false, false};

// ---- Lookups with errors that say what to do -------------------------------------------------

absl::StatusOr<UserRecord> FindUser(Store& store, absl::string_view name) {
  auto user = store.GetUser(name);
  if (ErrorOf(user.status()) == StoreError::kNotFound) {
    return Missing(StrCat("user ", Q(name), " does not exist (add it with: user add ", name, ")"));
  }
  return user;
}

absl::Status CheckRoleExists(Store& store, absl::string_view name) {
  P2P_ASSIGN_OR_RETURN(auto roles, store.ListRoles());
  for (const auto& r : roles) {
    if (r.name == name) return absl::OkStatus();
  }
  return Missing(StrCat("role ", Q(name), " does not exist (add it with: role add ", name, ")"));
}

// FindNode finds a node of |kind| (UNSPECIFIED: any) by id or name.
absl::StatusOr<NodeRecord> FindNode(Store& store, wire::NodeKind kind, absl::string_view ref) {
  P2P_ASSIGN_OR_RETURN(auto nodes, store.ListNodes(kind));
  std::vector<NodeRecord> by_name;
  for (auto& n : nodes) {
    if (n.id == ref) return std::move(n);
    if (n.name == ref) by_name.push_back(std::move(n));
  }
  if (by_name.size() == 1) return std::move(by_name[0]);
  if (by_name.size() > 1) {
    std::vector<std::string> which;
    for (const auto& n : by_name) which.push_back(StrCat(NodeKindWord(n.kind), " ", n.id));
    return Usage(StrCat(Q(ref), " names ", absl::StrJoin(which, " and "), "; give the id"));
  }
  const absl::string_view word = NodeKindWord(kind);
  return Missing(StrCat(word, " ", Q(ref), " does not exist (see: ",
                        kind == wire::NODE_KIND_UNSPECIFIED ? "site list, device list"
                                                            : StrCat(word, " list"),
                        ")"));
}

absl::StatusOr<wire::Resource> FindResource(Store& store, absl::string_view name) {
  auto r = store.GetResource(name);
  if (ErrorOf(r.status()) == StoreError::kNotFound) {
    return Missing(StrCat("resource ", Q(name), " does not exist (see: resource list)"));
  }
  return r;
}

std::map<std::string, NodeLiveStatus> LiveById(AdminHost& host) {
  std::map<std::string, NodeLiveStatus> out;
  for (auto& s : host.LiveStatus()) out[s.node_id] = std::move(s);
  return out;
}

std::map<std::string, std::string> SiteNames(Store& store) {
  std::map<std::string, std::string> out;
  auto sites = store.ListNodes(wire::NODE_KIND_SITE);
  if (sites.ok()) {
    for (const auto& s : *sites) out[s.id] = s.name;
  }
  return out;
}

// ---- token -----------------------------------------------------------------------------------

absl::Status TokenCreate(Ctx& c, const Args& a) {
  const std::string& kind_word = a.pos[0];
  wire::NodeKind kind;
  std::string bound_to;
  if (kind_word == "site") {
    if (a.pos.size() != 2) return Usage("give the site's name: token create site NAME");
    if (a.Has("--user")) return Usage("--user is for device tokens; a site has no user");
    kind = wire::NODE_KIND_SITE;
    bound_to = a.pos[1];
    P2P_RETURN_IF_ERROR(ValidateName("site", bound_to));
    P2P_ASSIGN_OR_RETURN(auto sites, c.store.ListNodes(wire::NODE_KIND_SITE));
    for (const auto& s : sites) {
      if (s.name == bound_to) {
        return absl::AlreadyExistsError(
            StrCat("site ", Q(bound_to), " exists (", s.id,
                   "); choose another name, or remove it first (site remove ", s.id, ")"));
      }
    }
  } else if (kind_word == "device") {
    if (a.pos.size() != 1) return Usage("a device token takes no name: token create device --user USER");
    const auto user = a.Get("--user");
    if (!user) return Usage("--user USER is required (the user who will own the device)");
    kind = wire::NODE_KIND_CLIENT;
    bound_to = *user;
    P2P_RETURN_IF_ERROR(ValidateName("--user", bound_to));
    P2P_RETURN_IF_ERROR(FindUser(c.store, bound_to).status());
  } else {
    return Usage(StrCat("the kind is ", Q(kind_word), "; give site or device"));
  }
  absl::Duration ttl = kDefaultTokenTtl;
  if (const auto t = a.Get("--ttl")) {
    P2P_ASSIGN_OR_RETURN(ttl, ParseDurationArg("--ttl", *t));
    if (ttl < absl::Minutes(1)) return Usage(StrCat("--ttl ", *t, " is too short (at least 1m)"));
    if (ttl > kMaxTokenTtl) {
      return Usage(StrCat("--ttl ", *t, " is longer than 30 days (720h); make a new token later"));
    }
  }
  const std::string pin = c.host.EnrollmentPin();
  const auto pin_bytes = base::HexDecode(pin);
  if (pin.size() != kHexSecretLen || !pin_bytes.ok() || absl::AsciiStrToLower(pin) != pin) {
    return absl::InternalError("the server's certificate pin is not available (is the server set up?)");
  }
  uint8_t secret[kHexSecretLen / 2];
  c.host.RandomBytes(secret, sizeof(secret));
  std::string token = StrCat(kTokenPrefix, base::HexEncode(secret), "_", pin);
  OPENSSL_cleanse(secret, sizeof(secret));

  TokenRecord record;
  record.token_hash = HashToken(token);
  record.kind = kind;
  record.bound_to = bound_to;
  record.created = c.host.Now();
  record.expires = record.created + ttl;
  const absl::Status stored = c.store.CreateToken(record);
  if (!stored.ok()) {
    OPENSSL_cleanse(token.data(), token.size());
    return stored;
  }
  const bool site = kind == wire::NODE_KIND_SITE;
  const std::string command =
      site ? StrCat("p2proxy-site --server ", c.host.ControlAddress(), " --token ", token,
                    " --state-dir /var/lib/p2proxy-site")
           : StrCat("p2proxy-client --server ", c.host.ControlAddress(), " --token ", token,
                    " --state-dir /var/lib/p2proxy-client");
  if (c.json) {
    c.result.out = StrCat(JsonObject()
                              .Str("id", TokenId(record))
                              .Str("kind", site ? "site" : "device")
                              .Str("bound_to", bound_to)
                              .Str("token", token)
                              .Time("created", record.created)
                              .Time("expires", record.expires)
                              .Str("command", command)
                              .Done(),
                          "\n");
  } else {
    c.result.out = StrCat(
        site ? StrCat("site token for site ", Q(bound_to)) : StrCat("device token for user ", Q(bound_to)),
        " (id ", TokenId(record), "; one use; expires ", ShowTime(record.expires), ", in ",
        absl::FormatDuration(ttl), "):\n  ", token, "\n", site ? "enroll the site with:\n  "
                                                               : "enroll the device with:\n  ",
        command, "\n");
  }
  OPENSSL_cleanse(token.data(), token.size());
  return absl::OkStatus();
}

absl::Status TokenList(Ctx& c, const Args&) {
  P2P_ASSIGN_OR_RETURN(auto tokens, c.store.ListTokens());
  const absl::Time now = c.host.Now();
  auto state = [&](const TokenRecord& t) -> std::string {
    if (t.used) return StrCat("used (", t.node_id, ")");
    if (t.expires <= now) return "expired";
    return "unused";
  };
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& t : tokens) {
      items.push_back(JsonObject()
                          .Str("id", TokenId(t))
                          .Str("kind", t.kind == wire::NODE_KIND_SITE ? "site" : "device")
                          .Str("bound_to", t.bound_to)
                          .Time("created", t.created)
                          .Time("expires", t.expires)
                          .OptTime("used", t.used)
                          .Str("node_id", t.node_id)
                          .Str("state", t.used ? "used" : t.expires <= now ? "expired" : "unused")
                          .Done());
    }
    c.result.out = StrCat(JsonArray(items), "\n");
    return absl::OkStatus();
  }
  Table table({"ID", "KIND", "BOUND TO", "CREATED", "EXPIRES", "STATE"});
  for (const auto& t : tokens) {
    table.Add({TokenId(t), t.kind == wire::NODE_KIND_SITE ? "site" : "device", Cell(t.bound_to),
               ShowTime(t.created), ShowTime(t.expires), state(t)});
  }
  c.result.out = table.Render();
  return absl::OkStatus();
}

absl::Status TokenRemove(Ctx& c, const Args& a) {
  const std::string id = absl::AsciiStrToLower(a.pos[0]);
  if (id.size() < kMinTokenIdLen || id.size() > kHexSecretLen ||
      !std::all_of(id.begin(), id.end(), [](char ch) { return absl::ascii_isxdigit(ch); })) {
    return Usage(StrCat("token id ", Q(a.pos[0]), ": give at least ", kMinTokenIdLen,
                        " hex digits of an ID from: token list"));
  }
  P2P_ASSIGN_OR_RETURN(auto tokens, c.store.ListTokens());
  std::vector<const TokenRecord*> hits;
  for (const auto& t : tokens) {
    const std::string hex = base::HexEncode(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(t.token_hash.data()), t.token_hash.size()));
    if (absl::StartsWith(hex, id)) hits.push_back(&t);
  }
  if (hits.empty()) return Missing(StrCat("no token has id ", id, " (see: token list)"));
  if (hits.size() > 1) return Usage(StrCat("token id ", id, " matches ", hits.size(), " tokens; give more digits"));
  P2P_RETURN_IF_ERROR(c.store.DeleteToken(hits[0]->token_hash));
  c.result.out = StrCat("token ", TokenId(*hits[0]), " removed\n");
  return absl::OkStatus();
}

// ---- site, device, node ----------------------------------------------------------------------

// Health: what the connected clients report of each site (AdminHost::HealthReports).
using HealthBySite = std::map<std::string, std::vector<SiteHealthReport>>;

HealthBySite HealthById(AdminHost& host) {
  HealthBySite out;
  for (auto& r : host.HealthReports()) out[r.site_id].push_back(std::move(r));
  return out;
}

// HealthSummary is a site's health over the clients that report on it.
struct HealthSummary {
  size_t num_clients = 0;
  size_t num_up = 0;
  // rtt_micros_median: the median RTT among the clients that see the site up and know their
  // RTT (for an even count, the mean of the middle two); none: no such client.
  std::optional<uint32_t> rtt_micros_median;
};

HealthSummary Summarize(const HealthBySite& health, const std::string& site_id) {
  HealthSummary out;
  const auto it = health.find(site_id);
  if (it == health.end()) return out;
  std::vector<uint32_t> rtts;
  for (const auto& r : it->second) {
    ++out.num_clients;
    if (!r.up) continue;
    ++out.num_up;
    if (r.rtt_micros > 0) rtts.push_back(r.rtt_micros);
  }
  if (!rtts.empty()) {
    std::sort(rtts.begin(), rtts.end());
    const size_t mid = rtts.size() / 2;
    out.rtt_micros_median = rtts.size() % 2 == 1
                                ? rtts[mid]
                                : static_cast<uint32_t>((uint64_t{rtts[mid - 1]} + rtts[mid]) / 2);
  }
  return out;
}

// Rtt shows a round-trip time: "0.8 ms", "12 ms".
std::string Rtt(uint32_t micros) {
  if (micros < 9'950) return absl::StrFormat("%.1f ms", micros / 1000.0);  // not "10.0 ms"
  return StrCat((micros + 500) / 1000, " ms");
}

// HealthCell is the HEALTH column: "up 3/3 clients, rtt 1.2 ms", "down 1/1 clients", or "-"
// when no client reports on the site.
std::string HealthCell(const HealthSummary& h) {
  if (h.num_clients == 0) return "-";
  if (h.num_up == 0) return StrCat("down ", h.num_clients, "/", h.num_clients, " clients");
  std::string out = StrCat("up ", h.num_up, "/", h.num_clients, " clients");
  if (h.rtt_micros_median) absl::StrAppend(&out, ", rtt ", Rtt(*h.rtt_micros_median));
  return out;
}

std::string HealthJson(const HealthSummary& h) {
  JsonObject o;
  o.Uint("clients", h.num_clients).Uint("up", h.num_up);
  if (h.rtt_micros_median) {
    o.Uint("rtt_micros_median", *h.rtt_micros_median);
  } else {
    o.Raw("rtt_micros_median", "null");
  }
  return o.Done();
}

std::string NodeState(const NodeRecord& n, const std::map<std::string, NodeLiveStatus>& live) {
  if (n.revoked) return "revoked";
  const auto it = live.find(n.id);
  return it != live.end() && it->second.connected ? "online" : "offline";
}

// NodeJson is |n| as a JSON object, then |extras| (key, JSON value) in order.
std::string NodeJson(const NodeRecord& n, const std::map<std::string, NodeLiveStatus>& live,
                     const std::vector<std::pair<std::string, std::string>>& extras = {}) {
  const auto it = live.find(n.id);
  const NodeLiveStatus* l = it == live.end() ? nullptr : &it->second;
  JsonObject o;
  o.Str("id", n.id)
      .Str("kind", NodeKindWord(n.kind))
      .Str("name", n.name);
  if (n.kind == wire::NODE_KIND_CLIENT) o.Str("user", n.user);
  o.Str("address", n.address)
      .Str("state", NodeState(n, live))
      .Bool("connected", l && l->connected)
      .Uint("acked_version", l ? l->acked_version : 0)
      .Str("endpoint", l && !l->endpoint.empty() ? l->endpoint : n.last_endpoint)
      .Str("path", l && l->over_tls ? "relayed-tls" : l && l->relayed_now ? "relayed" : "direct")
      .Uint("relayed_frames", l ? l->relayed_frames : 0)
      .OptTime("last_seen", l && l->last_seen ? l->last_seen : n.last_seen)
      .Time("created", n.created)
      .OptTime("revoked", n.revoked)
      .Str("certificate_serial", n.certificate_serial)
      .Str("wireguard_public_key",
           base::Base64Encode(absl::MakeConstSpan(
               reinterpret_cast<const uint8_t*>(n.wireguard_public_key.data()),
               n.wireguard_public_key.size())));
  for (const auto& [key, json] : extras) o.Raw(key, json);
  return o.Done();
}

// NodeRow is |n|'s line in `site list` / `device list`; sites end with their health.
std::vector<std::string> NodeRow(const NodeRecord& n,
                                 const std::map<std::string, NodeLiveStatus>& live,
                                 const HealthBySite& health) {
  const auto it = live.find(n.id);
  const NodeLiveStatus* l = it == live.end() ? nullptr : &it->second;
  std::vector<std::string> row = {Cell(n.name), n.id};
  if (n.kind == wire::NODE_KIND_CLIENT) row.push_back(Cell(n.user));
  row.push_back(n.address);
  row.push_back(NodeState(n, live));
  row.push_back(l && l->acked_version ? StrCat(l->acked_version) : "-");
  // A node the relay carried traffic for in the last 30 s says so next to its endpoint.
  row.push_back(StrCat(Cell(l && !l->endpoint.empty() ? l->endpoint : n.last_endpoint),
                       l && l->over_tls ? " (relayed over TLS)" : l && l->relayed_now ? " (relayed)" : ""));
  row.push_back(FormatOptTime(l && l->last_seen ? l->last_seen : n.last_seen));
  if (n.kind == wire::NODE_KIND_SITE) row.push_back(HealthCell(Summarize(health, n.id)));
  return row;
}

absl::Status NodeList(Ctx& c, const Args& a, wire::NodeKind kind) {
  P2P_ASSIGN_OR_RETURN(auto nodes, c.store.ListNodes(kind));
  if (const auto user = a.Get("--user")) {
    P2P_RETURN_IF_ERROR(FindUser(c.store, *user).status());
    nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                               [&](const NodeRecord& n) { return n.user != *user; }),
                nodes.end());
  }
  const auto live = LiveById(c.host);
  const bool sites = kind == wire::NODE_KIND_SITE;
  const HealthBySite health = sites ? HealthById(c.host) : HealthBySite();
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& n : nodes) {
      items.push_back(sites ? NodeJson(n, live, {{"health", HealthJson(Summarize(health, n.id))}})
                            : NodeJson(n, live));
    }
    c.result.out = StrCat(JsonArray(items), "\n");
    return absl::OkStatus();
  }
  std::vector<std::string> header = {"NAME", "ID"};
  if (kind == wire::NODE_KIND_CLIENT) header.push_back("USER");
  for (const char* h : {"ADDRESS", "STATE", "VERSION", "ENDPOINT", "LAST SEEN"}) header.push_back(h);
  if (sites) header.push_back("HEALTH");
  Table table(header);
  for (const auto& n : nodes) table.Add(NodeRow(n, live, health));
  c.result.out = table.Render();
  return absl::OkStatus();
}

absl::Status NodeShow(Ctx& c, const Args& a, wire::NodeKind kind) {
  P2P_ASSIGN_OR_RETURN(auto n, FindNode(c.store, kind, a.pos[0]));
  const auto live = LiveById(c.host);
  // A site's resources, with where it forwards each.
  std::vector<std::pair<std::string, std::string>> serves;
  if (kind == wire::NODE_KIND_SITE) {
    P2P_ASSIGN_OR_RETURN(auto resources, c.store.ListResources());
    for (const auto& r : resources) {
      for (const auto& t : r.targets()) {
        if (t.site_id() == n.id) serves.emplace_back(r.name(), t.address());
      }
    }
  }
  // A site's health, client by client (by the client's name, then id).
  HealthBySite health;
  std::map<std::string, NodeRecord> clients;
  std::vector<SiteHealthReport> reports;
  if (kind == wire::NODE_KIND_SITE) {
    health = HealthById(c.host);
    if (auto it = health.find(n.id); it != health.end()) reports = it->second;
    if (!reports.empty()) {
      P2P_ASSIGN_OR_RETURN(auto devices, c.store.ListNodes(wire::NODE_KIND_CLIENT));
      for (auto& d : devices) clients[d.id] = std::move(d);
    }
    auto name_of = [&](const SiteHealthReport& r) {
      const auto it = clients.find(r.client_id);
      return it == clients.end() ? std::string() : it->second.name;
    };
    std::sort(reports.begin(), reports.end(), [&](const SiteHealthReport& x, const SiteHealthReport& y) {
      return std::make_pair(name_of(x), x.client_id) < std::make_pair(name_of(y), y.client_id);
    });
  }
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& [name, target] : serves) {
      items.push_back(JsonObject().Str("name", name).Str("target", target).Done());
    }
    std::vector<std::string> per_client;
    for (const auto& r : reports) {
      const auto it = clients.find(r.client_id);
      per_client.push_back(JsonObject()
                               .Str("client_id", r.client_id)
                               .Str("client", it == clients.end() ? "" : it->second.name)
                               .Str("user", it == clients.end() ? "" : it->second.user)
                               .Bool("up", r.up)
                               .Uint("rtt_micros", r.rtt_micros)
                               .Time("received", r.received)
                               .Done());
    }
    c.result.out = StrCat(kind == wire::NODE_KIND_SITE
                              ? NodeJson(n, live,
                                         {{"resources", JsonArray(items)},
                                          {"health", HealthJson(Summarize(health, n.id))},
                                          {"health_reports", JsonArray(per_client)}})
                              : NodeJson(n, live),
                          "\n");
    return absl::OkStatus();
  }
  const auto it = live.find(n.id);
  const NodeLiveStatus* l = it == live.end() ? nullptr : &it->second;
  KeyValues kv;
  kv.Add("name", Cell(n.name, 64));
  kv.Add("id", n.id);
  if (kind == wire::NODE_KIND_CLIENT) kv.Add("user", Cell(n.user, 64));
  kv.Add("address", n.address);
  kv.Add("state", NodeState(n, live));
  kv.Add("snapshot", StrCat(l && l->acked_version ? StrCat(l->acked_version) : "none",
                            " acked (current ", c.store.CurrentVersion(), ")"));
  kv.Add("endpoint", Cell(l && !l->endpoint.empty() ? l->endpoint : n.last_endpoint));
  kv.Add("last seen", FormatOptTime(l && l->last_seen ? l->last_seen : n.last_seen));
  kv.Add("created", ShowTime(n.created));
  kv.Add("revoked", FormatOptTime(n.revoked));
  kv.Add("certificate", n.certificate_serial);
  kv.Add("wireguard key", base::Base64Encode(absl::MakeConstSpan(
                              reinterpret_cast<const uint8_t*>(n.wireguard_public_key.data()),
                              n.wireguard_public_key.size())));
  if (kind == wire::NODE_KIND_SITE) {
    std::vector<std::string> parts;
    for (const auto& [name, target] : serves) parts.push_back(StrCat(name, " -> ", target));
    kv.Add("resources", parts.empty() ? "none" : absl::StrJoin(parts, ", "));
    kv.Add("health", HealthCell(Summarize(health, n.id)));
    // One line per reporting client: "laptop (d-1a2b, alice): up, rtt 1.2 ms, at 2023-...Z";
    // for a site it sees down, the RTT is its last smoothed one ("down, last rtt 3.0 ms").
    for (size_t i = 0; i < reports.size(); ++i) {
      const SiteHealthReport& r = reports[i];
      const auto it = clients.find(r.client_id);
      std::string who = r.client_id;
      if (it != clients.end()) {
        const NodeRecord& d = it->second;
        who = d.name == d.id ? StrCat(d.id, " (", Cell(d.user, 64), ")")
                             : StrCat(Cell(d.name, 64), " (", d.id, ", ", Cell(d.user, 64), ")");
      }
      std::string rtt;
      if (r.rtt_micros > 0) rtt = StrCat(r.up ? ", rtt " : ", last rtt ", Rtt(r.rtt_micros));
      kv.Add(StrCat("client ", i + 1),
             StrCat(who, ": ", r.up ? "up" : "down", rtt, ", at ", ShowTime(r.received)));
    }
  }
  c.result.out = kv.Render();
  return absl::OkStatus();
}

absl::Status NodeRemove(Ctx& c, const Args& a, wire::NodeKind kind) {
  P2P_ASSIGN_OR_RETURN(auto n, FindNode(c.store, kind, a.pos[0]));
  P2P_RETURN_IF_ERROR(c.store.RemoveNode(n.id, c.host.Now()));
  c.disconnect.push_back(n.id);
  if (c.json) {
    c.result.out = StrCat(JsonObject().Str("removed", n.id).Str("name", n.name).Done(), "\n");
  } else {
    c.result.out = StrCat(NodeKindWord(n.kind), " ", Q(n.name), " (", n.id,
                          ") removed; its certificate is revoked\n");
  }
  return absl::OkStatus();
}

absl::Status NodeRevoke(Ctx& c, const Args& a) {
  P2P_ASSIGN_OR_RETURN(auto n, FindNode(c.store, wire::NODE_KIND_UNSPECIFIED, a.pos[0]));
  P2P_RETURN_IF_ERROR(c.store.RevokeNode(n.id, c.host.Now()));
  c.disconnect.push_back(n.id);
  const absl::string_view word = NodeKindWord(n.kind);
  c.result.out = StrCat(word, " ", Q(n.name), " (", n.id,
                        ") revoked: the server refuses its certificate from now on; remove it "
                        "with: ", word, " remove ", n.id, "\n");
  return absl::OkStatus();
}

// ---- user, role ------------------------------------------------------------------------------

absl::Status UserAdd(Ctx& c, const Args& a) {
  P2P_RETURN_IF_ERROR(ValidateName("user", a.pos[0]));
  P2P_ASSIGN_OR_RETURN(auto u, c.store.AddUser(a.pos[0], c.host.Now()));
  c.result.out = c.json ? StrCat(JsonObject().Str("name", u.name).Time("created", u.created).Done(), "\n")
                        : StrCat("user ", Q(u.name), " added\n");
  return absl::OkStatus();
}

absl::Status UserRemove(Ctx& c, const Args& a) {
  P2P_RETURN_IF_ERROR(FindUser(c.store, a.pos[0]).status());
  P2P_RETURN_IF_ERROR(c.store.RemoveUser(a.pos[0]));
  c.result.out = StrCat("user ", Q(a.pos[0]), " removed\n");
  return absl::OkStatus();
}

absl::Status UserList(Ctx& c, const Args&) {
  P2P_ASSIGN_OR_RETURN(auto users, c.store.ListUsers());
  P2P_ASSIGN_OR_RETURN(auto devices, c.store.ListNodes(wire::NODE_KIND_CLIENT));
  std::map<std::string, int> num_devices;
  for (const auto& d : devices) ++num_devices[d.user];
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& u : users) {
      items.push_back(JsonObject()
                          .Str("name", u.name)
                          .StrList("roles", u.roles)
                          .Int("devices", num_devices[u.name])
                          .Time("created", u.created)
                          .Done());
    }
    c.result.out = StrCat(JsonArray(items), "\n");
    return absl::OkStatus();
  }
  Table table({"NAME", "ROLES", "DEVICES", "CREATED"});
  for (const auto& u : users) {
    table.Add({Cell(u.name, 64), Cell(absl::StrJoin(u.roles, ",")), StrCat(num_devices[u.name]),
               ShowTime(u.created)});
  }
  c.result.out = table.Render();
  return absl::OkStatus();
}

absl::Status UserGrant(Ctx& c, const Args& a, bool grant) {
  P2P_RETURN_IF_ERROR(FindUser(c.store, a.pos[0]).status());
  P2P_RETURN_IF_ERROR(CheckRoleExists(c.store, a.pos[1]));
  if (grant) {
    P2P_RETURN_IF_ERROR(c.store.GrantRole(a.pos[0], a.pos[1]));
    c.result.out = StrCat("user ", Q(a.pos[0]), " has role ", Q(a.pos[1]), "\n");
  } else {
    P2P_RETURN_IF_ERROR(c.store.RevokeRole(a.pos[0], a.pos[1]));
    c.result.out = StrCat("user ", Q(a.pos[0]), " no longer has role ", Q(a.pos[1]), "\n");
  }
  return absl::OkStatus();
}

absl::Status RoleAdd(Ctx& c, const Args& a) {
  P2P_RETURN_IF_ERROR(ValidateName("role", a.pos[0]));
  P2P_ASSIGN_OR_RETURN(auto r, c.store.AddRole(a.pos[0], c.host.Now()));
  c.result.out = c.json ? StrCat(JsonObject().Str("name", r.name).Time("created", r.created).Done(), "\n")
                        : StrCat("role ", Q(r.name), " added\n");
  return absl::OkStatus();
}

absl::Status RoleRemove(Ctx& c, const Args& a) {
  P2P_RETURN_IF_ERROR(CheckRoleExists(c.store, a.pos[0]));
  P2P_RETURN_IF_ERROR(c.store.RemoveRole(a.pos[0]));
  c.result.out = StrCat("role ", Q(a.pos[0]), " removed (and its grants)\n");
  return absl::OkStatus();
}

absl::Status RoleList(Ctx& c, const Args&) {
  P2P_ASSIGN_OR_RETURN(auto roles, c.store.ListRoles());
  P2P_ASSIGN_OR_RETURN(auto users, c.store.ListUsers());
  std::map<std::string, std::vector<std::string>> holders;
  for (const auto& u : users) {
    for (const auto& r : u.roles) holders[r].push_back(u.name);
  }
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& r : roles) {
      items.push_back(JsonObject()
                          .Str("name", r.name)
                          .StrList("users", holders[r.name])
                          .Time("created", r.created)
                          .Done());
    }
    c.result.out = StrCat(JsonArray(items), "\n");
    return absl::OkStatus();
  }
  Table table({"NAME", "USERS", "CREATED"});
  for (const auto& r : roles) {
    table.Add({Cell(r.name, 64), Cell(absl::StrJoin(holders[r.name], ",")), ShowTime(r.created)});
  }
  c.result.out = table.Render();
  return absl::OkStatus();
}

// ---- resource --------------------------------------------------------------------------------

// Principals is a parsed --allow list or a --path rule's list.
struct Principals {
  std::vector<std::string> users;
  std::vector<std::string> roles;
};

// AddPrincipal reads "user:NAME", "role:NAME" or "user:*"; named users and roles must exist.
absl::Status AddPrincipal(Store& store, absl::string_view flag, absl::string_view text,
                          Principals* out) {
  const auto bad = [&] {
    return Usage(StrCat(flag, " ", Q(text),
                        ": expected user:NAME, role:NAME or user:* (e.g. --allow role:admins)"));
  };
  std::vector<std::string>* list;
  absl::string_view name = text;
  bool user = false;
  if (absl::ConsumePrefix(&name, "user:")) {
    list = &out->users;
    user = true;
  } else if (absl::ConsumePrefix(&name, "role:")) {
    list = &out->roles;
  } else {
    return bad();
  }
  if (name.empty()) return bad();
  if (!(user && name == "*")) {
    P2P_RETURN_IF_ERROR(ValidateName(StrCat(flag, " ", user ? "user" : "role"), name));
    if (user) {
      P2P_RETURN_IF_ERROR(FindUser(store, name).status());
    } else {
      P2P_RETURN_IF_ERROR(CheckRoleExists(store, name));
    }
  }
  if (std::find(list->begin(), list->end(), name) == list->end()) list->emplace_back(name);
  return absl::OkStatus();
}

absl::StatusOr<wire::PathRule> ParsePathRule(Store& store, absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0 || text[0] != '/') {
    return Usage(StrCat("--path ", Q(text),
                        ": expected PREFIX=user:NAME,role:NAME with PREFIX starting with '/' "
                        "(e.g. --path /admin=role:admins)"));
  }
  wire::PathRule rule;
  rule.set_prefix(std::string(text.substr(0, eq)));
  Principals p;
  const absl::string_view list = text.substr(eq + 1);
  if (!list.empty()) {
    for (absl::string_view item : absl::StrSplit(list, ',')) {
      P2P_RETURN_IF_ERROR(AddPrincipal(store, "--path", item, &p));
    }
  }
  for (auto& u : p.users) rule.add_users(std::move(u));
  for (auto& r : p.roles) rule.add_roles(std::move(r));
  return rule;
}

// CheckHostPort checks the shape of HOST:PORT (the store checks the host itself).
absl::Status CheckHostPort(absl::string_view text) {
  if (text == control::kInProcessTarget) return absl::OkStatus();
  const size_t colon = text.rfind(':');
  uint64_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !base::ParseDecimal(text.substr(colon + 1), 65535, &port) || port == 0) {
    return Usage(StrCat("--target ", Q(text),
                        " is not HOST:PORT with a port of 1-65535 (e.g. 10.0.10.15:8080, "
                        "[fd00::5]:22, app.lan:80)"));
  }
  const absl::string_view host = text.substr(0, colon);
  if (host.find(':') != absl::string_view::npos &&
      !(absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))) {
    return Usage(StrCat("--target ", Q(text), ": write an IPv6 host in brackets ([fd00::5]:22)"));
  }
  return absl::OkStatus();
}

// ResourceChanges is what the resource flags ask for; unset fields stay as they are.
struct ResourceChanges {
  std::optional<std::vector<std::string>> domains;
  std::optional<std::vector<wire::Target>> targets;
  std::optional<wire::ResourceKind> kind;
  std::optional<uint32_t> port;
  std::optional<Principals> allow;
  std::optional<std::vector<wire::PathRule>> paths;
  std::optional<bool> case_insensitive_paths;
  bool any() const {
    return domains || targets || kind || port || allow || paths || case_insensitive_paths;
  }
};

std::vector<FlagSpec> ResourceFlags(bool update) {
  std::vector<FlagSpec> f = {{"--domain", true, true},  {"--site", true, true},
                             {"--target", true, true},  {"--kind", true, false},
                             {"--port", true, false},   {"--allow", true, true},
                             {"--path", true, true},    {"--case-insensitive-paths", false, false},
                             kJson};
  if (update) {
    f.push_back({"--case-sensitive-paths", false, false});
    f.push_back({"--no-allow", false, false});
    f.push_back({"--no-paths", false, false});
    f.push_back({"--no-domains", false, false});
  }
  return f;
}

absl::StatusOr<ResourceChanges> ParseResourceChanges(Store& store, const Args& a) {
  ResourceChanges ch;
  const auto domains = a.All("--domain");
  if (!domains.empty() || a.Has("--no-domains")) {
    if (!domains.empty() && a.Has("--no-domains")) return Usage("--domain and --no-domains conflict");
    ch.domains.emplace();
    for (std::string d : domains) {
      d = absl::AsciiStrToLower(d);
      if (absl::EndsWith(d, ".")) d.pop_back();
      if (d.empty()) return Usage("--domain is empty");
      if (std::find(ch.domains->begin(), ch.domains->end(), d) == ch.domains->end()) {
        ch.domains->push_back(std::move(d));
      }
    }
  }
  const auto sites = a.All("--site");
  const auto targets = a.All("--target");
  if (sites.size() != targets.size()) {
    return Usage(StrCat(sites.size(), " --site but ", targets.size(),
                        " --target: give one --target HOST:PORT after each --site SITE"));
  }
  if (!sites.empty()) {
    ch.targets.emplace();
    for (size_t i = 0; i < sites.size(); ++i) {
      P2P_RETURN_IF_ERROR(CheckHostPort(targets[i]));
      P2P_ASSIGN_OR_RETURN(auto site, FindNode(store, wire::NODE_KIND_SITE, sites[i]));
      wire::Target t;
      t.set_site_id(site.id);
      t.set_address(targets[i]);
      ch.targets->push_back(std::move(t));
    }
  }
  if (const auto k = a.Get("--kind")) {
    if (*k == "https") {
      ch.kind = wire::RESOURCE_KIND_HTTPS;
    } else if (*k == "tcp") {
      ch.kind = wire::RESOURCE_KIND_TCP;
    } else if (*k == "udp") {
      ch.kind = wire::RESOURCE_KIND_UDP;
    } else {
      return Usage(StrCat("--kind ", Q(*k), ": give https, tcp or udp"));
    }
  }
  if (const auto p = a.Get("--port")) {
    uint64_t port = 0;
    if (!base::ParseDecimal(*p, 1u << 31, &port) || port == 0 || port > 65535) {
      return Usage(StrCat("--port ", p->size() > 12 ? Q(*p) : *p, " is not a port (1-65535)"));
    }
    ch.port = static_cast<uint32_t>(port);
  }
  const auto allows = a.All("--allow");
  if (!allows.empty() && a.Has("--no-allow")) return Usage("--allow and --no-allow conflict");
  if (!allows.empty() || a.Has("--no-allow")) {
    ch.allow.emplace();
    for (const auto& item : allows) {
      P2P_RETURN_IF_ERROR(AddPrincipal(store, "--allow", item, &*ch.allow));
    }
  }
  const auto paths = a.All("--path");
  if (!paths.empty() && a.Has("--no-paths")) return Usage("--path and --no-paths conflict");
  if (!paths.empty() || a.Has("--no-paths")) {
    ch.paths.emplace();
    std::set<std::string> prefixes;
    for (const auto& item : paths) {
      P2P_ASSIGN_OR_RETURN(auto rule, ParsePathRule(store, item));
      if (!prefixes.insert(rule.prefix()).second) {
        return Usage(StrCat("--path ", Q(rule.prefix()), " given twice; give each prefix once"));
      }
      ch.paths->push_back(std::move(rule));
    }
  }
  if (a.Has("--case-insensitive-paths") && a.Has("--case-sensitive-paths")) {
    return Usage("--case-insensitive-paths and --case-sensitive-paths conflict");
  }
  if (a.Has("--case-insensitive-paths")) ch.case_insensitive_paths = true;
  if (a.Has("--case-sensitive-paths")) ch.case_insensitive_paths = false;
  return ch;
}

void ApplyAccess(const ResourceChanges& ch, wire::Access* access) {
  if (ch.allow) {
    access->clear_users();
    access->clear_roles();
    for (const auto& u : ch.allow->users) access->add_users(u);
    for (const auto& r : ch.allow->roles) access->add_roles(r);
  }
  if (ch.paths) {
    access->clear_paths();
    for (const auto& p : *ch.paths) *access->add_paths() = p;
  }
  if (ch.case_insensitive_paths) access->set_case_insensitive_paths(*ch.case_insensitive_paths);
}

std::string AccessSummary(const wire::Access& access) {
  std::vector<std::string> parts;
  for (const auto& u : access.users()) parts.push_back(StrCat("user:", u));
  for (const auto& r : access.roles()) parts.push_back(StrCat("role:", r));
  std::string out = parts.empty() ? "nobody" : absl::StrJoin(parts, ",");
  if (access.paths_size() > 0) {
    absl::StrAppend(&out, " (+", access.paths_size(), " path rule",
                    access.paths_size() > 1 ? "s" : "", ")");
  }
  return out;
}

std::string PrincipalList(const google::protobuf::RepeatedPtrField<std::string>& users,
                          const google::protobuf::RepeatedPtrField<std::string>& roles) {
  std::vector<std::string> parts;
  for (const auto& u : users) parts.push_back(StrCat("user:", u));
  for (const auto& r : roles) parts.push_back(StrCat("role:", r));
  return parts.empty() ? "nobody" : absl::StrJoin(parts, ",");
}

std::string ResourceJson(Store& store, const wire::Resource& r,
                         const std::map<std::string, std::string>& site_names) {
  std::vector<std::string> targets;
  for (const auto& t : r.targets()) {
    const auto it = site_names.find(t.site_id());
    targets.push_back(JsonObject()
                          .Str("site_id", t.site_id())
                          .Str("site", it == site_names.end() ? "" : it->second)
                          .Str("address", t.address())
                          .Done());
  }
  std::vector<std::string> paths;
  for (const auto& p : r.access().paths()) {
    paths.push_back(
        JsonObject().Str("prefix", p.prefix()).StrList("users", p.users()).StrList("roles", p.roles()).Done());
  }
  const std::string access = JsonObject()
                                 .StrList("users", r.access().users())
                                 .StrList("roles", r.access().roles())
                                 .Raw("paths", JsonArray(paths))
                                 .Bool("case_insensitive_paths", r.access().case_insensitive_paths())
                                 .Done();
  std::string cert = "null";
  if (r.kind() == wire::RESOURCE_KIND_HTTPS) {
    auto c = store.GetCertificate(r.name());
    if (c.ok()) {
      cert = JsonObject().Str("serial", c->serial).Time("not_after", c->not_after).Done();
      OPENSSL_cleanse(c->key_pem.data(), c->key_pem.size());
    }
  }
  return JsonObject()
      .Str("name", r.name())
      .Str("kind", ResourceKindWord(r.kind()))
      .Str("address", r.address())
      .Uint("port", r.port())
      .StrList("domains", r.domains())
      .Raw("targets", JsonArray(targets))
      .Raw("access", access)
      .Raw("certificate", cert)
      .Done();
}

absl::Status ResourceAdd(Ctx& c, const Args& a) {
  const std::string& name = a.pos[0];
  P2P_RETURN_IF_ERROR(ValidateName("resource", name));
  P2P_ASSIGN_OR_RETURN(auto ch, ParseResourceChanges(c.store, a));
  if (a.Has("--no-domains") || a.Has("--no-allow") || a.Has("--no-paths")) {
    return Usage("--no-* flags are for resource update");
  }
  if (!ch.kind) return Usage("--kind https|tcp|udp is required");
  if (!ch.targets) {
    return Usage("--site SITE --target HOST:PORT is required (the site that serves it and "
                 "where that site forwards)");
  }
  if (*ch.kind == wire::RESOURCE_KIND_HTTPS && !ch.domains) {
    return Usage("an https resource needs at least one --domain (the name browsers use)");
  }
  if (!ch.port) {
    if (*ch.kind != wire::RESOURCE_KIND_HTTPS) {
      return Usage(StrCat("--port is required for a ", ResourceKindWord(*ch.kind), " resource"));
    }
    ch.port = 443;
  }
  wire::Resource r;
  r.set_name(name);
  for (const auto& d : ch.domains.value_or(std::vector<std::string>{})) r.add_domains(d);
  r.set_port(*ch.port);
  r.set_kind(*ch.kind);
  for (const auto& t : *ch.targets) *r.add_targets() = t;
  ApplyAccess(ch, r.mutable_access());
  P2P_ASSIGN_OR_RETURN(auto stored, c.store.AddResource(r));
  if (c.json) {
    c.result.out = StrCat(ResourceJson(c.store, stored, SiteNames(c.store)), "\n");
  } else {
    c.result.out = StrCat("resource ", Q(stored.name()), " added: ", ResourceKindWord(stored.kind()),
                          " at ", stored.address(), ":", stored.port(),
                          stored.domains_size() ? StrCat(" (", absl::StrJoin(stored.domains(), ", "), ")") : "",
                          "; allowed: ", AccessSummary(stored.access()), "\n");
  }
  return absl::OkStatus();
}

absl::Status ResourceUpdate_(Ctx& c, const Args& a) {
  P2P_ASSIGN_OR_RETURN(auto current, FindResource(c.store, a.pos[0]));
  P2P_ASSIGN_OR_RETURN(auto ch, ParseResourceChanges(c.store, a));
  if (!ch.any()) {
    return Usage("nothing to change: give at least one of --domain, --site/--target, --kind, "
                 "--port, --allow, --path, --case-insensitive-paths (or a --no-* flag)");
  }
  ResourceUpdate update;
  update.name = current.name();
  update.domains = ch.domains;
  update.targets = ch.targets;
  update.kind = ch.kind;
  update.port = ch.port;
  if (ch.allow || ch.paths || ch.case_insensitive_paths) {
    wire::Access access = current.access();
    ApplyAccess(ch, &access);
    update.access = std::move(access);
  }
  P2P_ASSIGN_OR_RETURN(auto stored, c.store.UpdateResource(update));
  if (c.json) {
    c.result.out = StrCat(ResourceJson(c.store, stored, SiteNames(c.store)), "\n");
  } else {
    c.result.out = StrCat("resource ", Q(stored.name()), " updated: ", ResourceKindWord(stored.kind()),
                          " at ", stored.address(), ":", stored.port(), "; allowed: ",
                          AccessSummary(stored.access()), "\n");
  }
  return absl::OkStatus();
}

absl::Status ResourceRemove(Ctx& c, const Args& a) {
  P2P_RETURN_IF_ERROR(FindResource(c.store, a.pos[0]).status());
  P2P_RETURN_IF_ERROR(c.store.RemoveResource(a.pos[0]));
  c.result.out = StrCat("resource ", Q(a.pos[0]), " removed; its address is free\n");
  return absl::OkStatus();
}

absl::Status ResourceList(Ctx& c, const Args&) {
  P2P_ASSIGN_OR_RETURN(auto resources, c.store.ListResources());
  const auto names = SiteNames(c.store);
  if (c.json) {
    std::vector<std::string> items;
    for (const auto& r : resources) items.push_back(ResourceJson(c.store, r, names));
    c.result.out = StrCat(JsonArray(items), "\n");
    return absl::OkStatus();
  }
  Table table({"NAME", "KIND", "ADDRESS", "PORT", "DOMAINS", "SITES", "ALLOWED"});
  for (const auto& r : resources) {
    std::vector<std::string> sites;
    for (const auto& t : r.targets()) {
      const auto it = names.find(t.site_id());
      sites.push_back(it == names.end() ? t.site_id() : it->second);
    }
    table.Add({Cell(r.name(), 64), std::string(ResourceKindWord(r.kind())), r.address(),
               StrCat(r.port()), Cell(absl::StrJoin(r.domains(), ",")),
               Cell(absl::StrJoin(sites, ",")), Cell(AccessSummary(r.access()))});
  }
  c.result.out = table.Render();
  return absl::OkStatus();
}

absl::Status ResourceShow(Ctx& c, const Args& a) {
  P2P_ASSIGN_OR_RETURN(auto r, FindResource(c.store, a.pos[0]));
  const auto names = SiteNames(c.store);
  if (c.json) {
    c.result.out = StrCat(ResourceJson(c.store, r, names), "\n");
    return absl::OkStatus();
  }
  KeyValues kv;
  kv.Add("name", Cell(r.name(), 64));
  kv.Add("kind", ResourceKindWord(r.kind()));
  kv.Add("address", StrCat(r.address(), ":", r.port()));
  kv.Add("domains", absl::StrJoin(r.domains(), ", "));
  for (int i = 0; i < r.targets_size(); ++i) {
    const auto& t = r.targets(i);
    const auto it = names.find(t.site_id());
    kv.Add(StrCat("target ", i + 1),
           StrCat(it == names.end() ? "" : StrCat(it->second, " "), "(", t.site_id(), ") -> ",
                  t.address()));
  }
  kv.Add("allowed", PrincipalList(r.access().users(), r.access().roles()));
  for (const auto& p : r.access().paths()) {
    kv.Add(StrCat("path ", Cell(p.prefix())), PrincipalList(p.users(), p.roles()));
  }
  if (r.kind() == wire::RESOURCE_KIND_HTTPS) {
    kv.Add("paths compare", r.access().case_insensitive_paths() ? "ignoring case" : "with case");
    auto cert = c.store.GetCertificate(r.name());
    if (cert.ok()) {
      kv.Add("certificate", StrCat("serial ", cert->serial, ", expires ", ShowTime(cert->not_after)));
      OPENSSL_cleanse(cert->key_pem.data(), cert->key_pem.size());
    } else {
      kv.Add("certificate", "none yet");
    }
  }
  c.result.out = kv.Render();
  return absl::OkStatus();
}

// ---- ca, cert --------------------------------------------------------------------------------

constexpr absl::string_view kTrustHelp =
    "To trust the p2proxy CA on a Debian machine (save the certificate as ca.pem first):\n"
    "  install -m 0644 ca.pem /usr/local/share/ca-certificates/p2proxy.crt && update-ca-certificates\n"
    "and for Chromium (its own NSS database; certutil is in the libnss3-tools package):\n"
    "  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n p2proxy -i ca.pem\n";

absl::Status CaExport(Ctx& c, const Args& a) {
  const std::string pem = c.host.CaCertificatePem();
  if (pem.empty()) return absl::InternalError("the CA certificate is not available (is the server set up?)");
  if (c.json) {
    c.result.out = StrCat(JsonObject().Str("certificate_pem", pem).Str("trust_help", kTrustHelp).Done(), "\n");
    return absl::OkStatus();
  }
  c.result.out = pem;
  if (!absl::EndsWith(c.result.out, "\n")) c.result.out += "\n";
  if (a.Has("--help-trust")) {
    absl::StrAppend(&c.result.out, "\n", kTrustHelp);
  } else {
    c.result.err = StrCat(kTrustHelp);
  }
  return absl::OkStatus();
}

absl::Status CertRotate(Ctx& c, const Args& a) {
  const int n = a.Has("--server") + a.Has("--resource") + a.Has("--all");
  if (n != 1) return Usage("give exactly one of --server, --resource NAME, --all");
  CertRotation what;
  std::string said;
  if (a.Has("--server")) {
    what.what = CertRotation::What::kServer;
    said = "the server's control-channel certificate";
  } else if (const auto name = a.Get("--resource")) {
    P2P_ASSIGN_OR_RETURN(auto r, FindResource(c.store, *name));
    if (r.kind() != wire::RESOURCE_KIND_HTTPS) {
      return Failed(StrCat("resource ", Q(*name), " is ", ResourceKindWord(r.kind()),
                           "; only https resources have certificates"));
    }
    what.what = CertRotation::What::kResource;
    what.resource = *name;
    said = StrCat("the certificate of resource ", Q(*name));
  } else {
    what.what = CertRotation::What::kAllResources;
    said = "the certificates of every https resource";
  }
  P2P_RETURN_IF_ERROR(c.host.RotateCertificates(what));
  c.result.out = StrCat("rotated ", said, "\n");
  return absl::OkStatus();
}

// ---- audit -----------------------------------------------------------------------------------

absl::Status RenderAudit(Ctx& c, std::vector<StoredAuditEvent> events) {
  // The store gives the newest first (so a limit keeps the latest); show them in time order.
  std::reverse(events.begin(), events.end());
  const auto names = SiteNames(c.store);
  auto site_of = [&](const std::string& id) {
    const auto it = names.find(id);
    return it == names.end() ? id : it->second;
  };
  if (c.json) {
    for (const auto& s : events) {
      const auto& e = s.event;
      absl::StrAppend(
          &c.result.out,
          JsonObject()
              .Time("time", absl::FromUnixMillis(e.time_unix_ms()))
              .Str("site_id", s.site_id)
              .Str("site", site_of(s.site_id))
              .Str("user", e.user())
              .StrList("roles", e.roles())
              .Str("resource", e.resource())
              .Str("kind", AuditKindWord(e.kind()))
              .Str("method", e.method())
              .Str("host", e.host())
              .Str("path", e.path())
              .Uint("status", e.status())
              .Str("decision", e.allowed() ? "allow" : "deny")
              .Bool("allowed", e.allowed())
              .Str("reason", e.reason())
              .Str("peer", e.peer())
              .Str("peer_key", base::Base64Encode(absl::MakeConstSpan(
                                   reinterpret_cast<const uint8_t*>(e.peer_key().data()),
                                   e.peer_key().size())))
              .Uint("bytes_in", e.bytes_in())
              .Uint("bytes_out", e.bytes_out())
              .Uint("duration_ms", e.duration_ms())
              .Int("id", s.id)
              .Done(),
          "\n");
    }
    return absl::OkStatus();
  }
  Table table({"TIME", "SITE", "USER", "RESOURCE", "KIND", "METHOD", "PATH", "STATUS", "DECISION",
               "REASON"});
  for (const auto& s : events) {
    const auto& e = s.event;
    table.Add({ShowTime(absl::FromUnixMillis(e.time_unix_ms())), Cell(site_of(s.site_id)),
               Cell(e.user()), Cell(e.resource()), std::string(AuditKindWord(e.kind())),
               Cell(e.method()), Cell(e.path()), e.status() ? StrCat(e.status()) : "-",
               e.allowed() ? "allow" : "deny", Cell(e.reason())});
  }
  c.result.out = table.Render();
  return absl::OkStatus();
}

absl::Status AuditTail(Ctx& c, const Args& a) {
  AuditQuery q;
  q.limit = 20;
  if (const auto n = a.Get("-n")) {
    P2P_ASSIGN_OR_RETURN(q.limit, ParseCount("-n", *n, kMaxAuditLimit));
  }
  P2P_ASSIGN_OR_RETURN(auto events, c.store.QueryAudit(q));
  return RenderAudit(c, std::move(events));
}

absl::Status AuditQuery_(Ctx& c, const Args& a) {
  AuditQuery q;
  const absl::Time now = c.host.Now();
  if (const auto u = a.Get("--user")) q.user = *u;
  if (const auto r = a.Get("--resource")) q.resource = *r;
  if (const auto s = a.Get("--site")) {
    // A site by name or id; an id of a removed site still finds its events.
    auto site = FindNode(c.store, wire::NODE_KIND_SITE, *s);
    if (site.ok()) {
      q.site_id = site->id;
    } else if (absl::StartsWith(*s, "s-")) {
      q.site_id = *s;
    } else {
      return site.status();
    }
  }
  if (const auto t = a.Get("--since")) {
    P2P_ASSIGN_OR_RETURN(q.since, ParseTimeArg("--since", *t, now));
  }
  if (const auto t = a.Get("--until")) {
    P2P_ASSIGN_OR_RETURN(q.until, ParseTimeArg("--until", *t, now));
  }
  if (q.since >= q.until) return Usage("--since is not before --until: nothing can match");
  if (const auto n = a.Get("--limit")) {
    P2P_ASSIGN_OR_RETURN(q.limit, ParseCount("--limit", *n, kMaxAuditLimit));
  }
  P2P_ASSIGN_OR_RETURN(auto events, c.store.QueryAudit(q));
  return RenderAudit(c, std::move(events));
}

// ---- The table of commands -------------------------------------------------------------------

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"token", "create", "site NAME [--ttl 1h] [--json]\n  token create device --user USER [--ttl 1h] [--json]",
       "  Make a one-time enrollment token for the site NAME, or for a device of USER, and print\n"
       "  it with the command that enrolls the node. --ttl: how long it stays valid (default 1h,\n"
       "  at most 30 days; e.g. 30m, 12h, 7d).",
       1, 2, {{"--ttl"}, {"--user"}, kJson}, TokenCreate},
      {"token", "list", "[--json]", "  Tokens: kind, what they are bound to, times, state. Never the secrets.",
       0, 0, {kJson}, TokenList},
      {"token", "remove", "ID", "  Delete an unused token (ID from token list; 8 hex digits suffice).",
       1, 1, {}, TokenRemove},
      {"site", "list", "[--json]",
       "  Sites with their state, acked snapshot version, endpoint and health: how many connected\n"
       "  clients see each up, and the median RTT among those (\"up 3/3 clients, rtt 1.2 ms\").",
       0, 0, {kJson}, [](Ctx& c, const Args& a) { return NodeList(c, a, wire::NODE_KIND_SITE); }},
      {"site", "show", "NAME|ID [--json]",
       "  One site, the resources it serves, and each connected client's view of its health.",
       1, 1, {kJson}, [](Ctx& c, const Args& a) { return NodeShow(c, a, wire::NODE_KIND_SITE); }},
      {"site", "remove", "NAME|ID", "  Remove a site (revoking its certificate); refused while resources\n"
       "  name it as a target.",
       1, 1, {kJson}, [](Ctx& c, const Args& a) { return NodeRemove(c, a, wire::NODE_KIND_SITE); }},
      {"device", "list", "[--user USER] [--json]", "  Client devices, optionally only USER's.",
       0, 0, {{"--user"}, kJson}, [](Ctx& c, const Args& a) { return NodeList(c, a, wire::NODE_KIND_CLIENT); }},
      {"device", "show", "NAME|ID [--json]", "  One device.",
       1, 1, {kJson}, [](Ctx& c, const Args& a) { return NodeShow(c, a, wire::NODE_KIND_CLIENT); }},
      {"device", "remove", "NAME|ID", "  Remove a device (revoking its certificate).",
       1, 1, {kJson}, [](Ctx& c, const Args& a) { return NodeRemove(c, a, wire::NODE_KIND_CLIENT); }},
      {"node", "revoke", "NAME|ID", "  Revoke a site's or device's certificate; the server disconnects it.",
       1, 1, {}, NodeRevoke},
      {"user", "add", "NAME [--json]", "  Add a user.", 1, 1, {kJson}, UserAdd},
      {"user", "remove", "NAME", "  Remove a user (refused while the user owns devices).", 1, 1, {}, UserRemove},
      {"user", "list", "[--json]", "  Users with their roles and number of devices.", 0, 0, {kJson}, UserList},
      {"user", "grant", "USER ROLE", "  Give USER the role ROLE.", 2, 2, {},
       [](Ctx& c, const Args& a) { return UserGrant(c, a, true); }},
      {"user", "revoke", "USER ROLE", "  Take the role ROLE from USER.", 2, 2, {},
       [](Ctx& c, const Args& a) { return UserGrant(c, a, false); }},
      {"role", "add", "NAME [--json]", "  Add a role.", 1, 1, {kJson}, RoleAdd},
      {"role", "remove", "NAME", "  Remove a role and its grants.", 1, 1, {}, RoleRemove},
      {"role", "list", "[--json]", "  Roles and who holds them.", 0, 0, {kJson}, RoleList},
      {"resource", "add",
       "NAME --kind https|tcp|udp --site SITE --target HOST:PORT [--site S2 --target T2 ...]\n"
       "      [--domain D ...] [--port P] [--allow user:NAME|role:NAME|user:* ...]\n"
       "      [--path PREFIX=user:a,role:b ...] [--case-insensitive-paths] [--json]",
       "  Add a resource and print its address. Each --site (name or id) is followed by its\n"
       "  --target, where that site forwards (HOST:PORT on its LAN, or in-process for a program\n"
       "  that embeds the site and serves it itself: tcp and https). --port defaults to 443 for\n"
       "  https and is required\n"
       "  otherwise. Deny by default: only --allow'ed users and roles may use it; each --path\n"
       "  narrows requests under PREFIX (https only) to the users and roles it lists.\n"
       "  Example: resource add vault --domain vault.example.internal --site s1\n"
       "           --target 10.0.10.15:8080 --kind https --allow role:admins",
       1, 1, ResourceFlags(false), ResourceAdd},
      {"resource", "update", "NAME [the flags of resource add] [--no-allow] [--no-paths]\n"
       "      [--no-domains] [--case-sensitive-paths] [--json]",
       "  Change only what is given: --domain, the --site/--target pairs, --allow and --path\n"
       "  each replace their whole list; --no-allow, --no-paths, --no-domains empty them.",
       1, 1, ResourceFlags(true), ResourceUpdate_},
      {"resource", "remove", "NAME", "  Remove a resource; its address becomes free.", 1, 1, {}, ResourceRemove},
      {"resource", "list", "[--json]", "  Resources with their address, sites and access.", 0, 0, {kJson}, ResourceList},
      {"resource", "show", "NAME [--json]", "  One resource: targets, access rules, certificate.",
       1, 1, {kJson}, ResourceShow},
      {"ca", "export", "[--help-trust] [--json]",
       "  Print the CA certificate (PEM) on stdout, and on stderr how to make Debian and\n"
       "  Chromium trust it (--help-trust: on stdout after the certificate).",
       0, 0, {{"--help-trust", false}, kJson}, CaExport},
      {"cert", "rotate", "--server | --resource NAME | --all",
       "  Issue new certificates now: the server's control-channel certificate (its key and so\n"
       "  the nodes' pin stay), one https resource's, or every https resource's.",
       0, 0, {{"--server", false}, {"--resource"}, {"--all", false}}, CertRotate},
      {"audit", "tail", "[-n 20] [--json]", "  The latest N audit events, oldest first.",
       0, 0, {{"-n"}, kJson}, AuditTail},
      {"audit", "query",
       "[--user U] [--resource R] [--site S] [--since T] [--until T] [--limit 100] [--json]",
       "  Audit events that match every filter given, oldest first (the latest --limit of them).\n"
       "  T is RFC 3339 (2024-05-01T12:00:00Z) or an age (-1h, -30m, -2d). --json prints one\n"
       "  JSON object per event, one per line.",
       0, 0, {{"--user"}, {"--resource"}, {"--site"}, {"--since"}, {"--until"}, {"--limit"}, kJson},
       AuditQuery_},
  };
  return *commands;
}

std::string CommandUsage(const Command& c) {
  return StrCat("usage: ", c.group, " ", c.verb, " ", c.usage, "\n", c.help, "\n");
}

std::string GroupUsage(absl::string_view group) {
  std::string out;
  for (const auto& c : Commands()) {
    if (c.group == group) absl::StrAppend(&out, "  ", c.group, " ", c.verb, " ", c.usage, "\n");
  }
  return out;
}

std::vector<std::string> Verbs(absl::string_view group) {
  std::vector<std::string> out;
  for (const auto& c : Commands()) {
    if (c.group == group) out.emplace_back(c.verb);
  }
  return out;
}

}  // namespace

std::string AdminUsage() {
  std::string out =
      "usage: p2proxy-server admin COMMAND [ARGS] [--json]\n"
      "Exit status: 0 done, 1 the operation was refused or failed, 2 the command line is wrong.\n"
      "COMMAND --help prints one command's usage.\n\n";
  absl::string_view last;
  for (const auto& c : Commands()) {
    if (c.group != last && !last.empty()) out += "\n";
    last = c.group;
    absl::StrAppend(&out, "  ", c.group, " ", c.verb, " ", c.usage, "\n");
  }
  return out;
}

AdminResult RunAdmin(AdminHost& host, const std::vector<std::string>& args) {
  AdminResult result;
  auto usage_error = [&](absl::string_view message) {
    result.exit_code = 2;
    result.err = StrCat(message, "\n");
    return result;
  };
  if (args.empty()) return usage_error(StrCat("no command given\n", AdminUsage()));
  const std::string& group = args[0];
  if (group == "help" || group == "--help" || group == "-h") {
    if (args.size() > 1 && !Verbs(args[1]).empty()) {
      result.out = StrCat("usage:\n", GroupUsage(args[1]));
    } else {
      result.out = AdminUsage();
    }
    return result;
  }
  const std::vector<std::string> verbs = Verbs(group);
  if (verbs.empty()) return usage_error(StrCat("unknown command ", Q(group), " (see: help)"));
  if (args.size() < 2 || args[1] == "--help" || args[1] == "-h") {
    if (args.size() >= 2) {
      result.out = StrCat("usage:\n", GroupUsage(group));
      return result;
    }
    return usage_error(StrCat(group, ": give a command: ", absl::StrJoin(verbs, ", "), "\nusage:\n",
                              GroupUsage(group)));
  }
  const Command* command = nullptr;
  for (const auto& c : Commands()) {
    if (c.group == group && c.verb == args[1]) command = &c;
  }
  if (!command) {
    return usage_error(StrCat(group, ": unknown command ", Q(args[1]), " (one of: ",
                              absl::StrJoin(verbs, ", "), ")"));
  }
  const std::string name = StrCat(group, " ", args[1]);
  const std::vector<std::string> words(args.begin() + 2, args.end());
  auto parsed = ParseArgs(words, command->flags);
  if (parsed.ok() && parsed->help) {
    result.out = CommandUsage(*command);
    return result;
  }
  if (!parsed.ok()) {
    return usage_error(StrCat(name, ": ", parsed.status().message(), "\n", CommandUsage(*command)));
  }
  if (parsed->pos.size() < command->min_pos || parsed->pos.size() > command->max_pos) {
    const bool few = parsed->pos.size() < command->min_pos;
    return usage_error(StrCat(name, ": ",
                              few ? "missing argument"
                                  : StrCat("unexpected argument ", Q(parsed->pos[command->max_pos])),
                              "\n", CommandUsage(*command)));
  }

  Ctx ctx{host, host.store(), result, false, {}};
  ctx.json = parsed->Has("--json");
  const uint64_t version_before = host.store().CurrentVersion();
  const absl::Status status = command->run(ctx, *parsed);
  // Changed exactly when the store's snapshot version went up: every admin write bumps it in
  // the write's own transaction, and nothing else does.
  if (host.store().CurrentVersion() != version_before) host.Changed();
  for (const auto& id : ctx.disconnect) host.Disconnect(id);
  if (!status.ok()) {
    result.exit_code = status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    result.out.clear();
    result.err = StrCat(name, ": ", status.message(), "\n");
  }
  return result;
}

}  // namespace p2proxy::server
