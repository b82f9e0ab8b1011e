// zone.cc: ZoneTable setup, lookup (exact, wildcard, apex, empty non-terminal, reverse) and
// the authoritative answers.
#include "dns/zone.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace p2proxy::dns {

namespace {

// Negative-answer SOA timers. Only |minimum| matters to resolvers (RFC 2308); the others are
// the values RFC 1912 suggests, for tools that print them.
constexpr uint32_t kSoaSerial = 1;
constexpr uint32_t kSoaRefresh = 3600;
constexpr uint32_t kSoaRetry = 600;
constexpr uint32_t kSoaExpire = 86400;
// The payload size we advertise: the DNS flag day 2020 value, which avoids IP fragmentation.
constexpr uint16_t kEdnsPayload = 1232;
// "hostmaster." is the longest label the SOA prepends to a zone.
constexpr size_t kSoaPrefixLen = 1 + 10;

const Name& InAddrArpa() {
  static const Name* const kName = new Name(Name::FromLabels({"in-addr", "arpa"}));
  return *kName;
}

// ReverseZone is the in-addr.arpa name of the whole octets of |prefix| (100.64.0.0/10 ->
// 100.in-addr.arpa): the apex of the SOA for names in the prefix.
Name ReverseZone(const base::IpPrefix& prefix) {
  Name n = InAddrArpa();
  for (int i = 0; i < prefix.length / 8; ++i) n = n.Child(absl::StrCat(prefix.address.bytes[i]));
  return n;
}

// ReverseBlock reads an in-addr.arpa name of 1 to 4 octets as the block of addresses it stands
// for (128.96.100.in-addr.arpa -> 100.96.128.0/24); nullopt for any other name.
std::optional<base::IpPrefix> ReverseBlock(const Name& qname) {
  if (!qname.IsSubdomainOf(InAddrArpa())) return std::nullopt;
  const size_t num_octets = qname.labels().size() - InAddrArpa().labels().size();
  if (num_octets < 1 || num_octets > 4) return std::nullopt;
  // Pad a partial name with zero octets to the full name of the block's first address.
  std::vector<std::string> labels(4 - num_octets, "0");
  labels.insert(labels.end(), qname.labels().begin(), qname.labels().end());
  const std::optional<base::IpAddress> first = FromReverseName(Name::FromLabels(std::move(labels)));
  if (!first) return std::nullopt;
  return base::IpPrefix::Make(*first, static_cast<uint8_t>(8 * num_octets));
}

}  // namespace

ZoneTable::ZoneTable(uint32_t ttl) : ttl_(ttl) {}

absl::Status ZoneTable::AddZone(absl::string_view zone) {
  P2P_ASSIGN_OR_RETURN(Name name, Name::Parse(zone));
  if (name.is_root()) return absl::InvalidArgumentError("dns zone: the root cannot be a zone");
  for (const std::string& l : name.labels()) {
    if (l == "*") {
      return absl::InvalidArgumentError(
          absl::StrCat("dns zone \"", name.ToString(), "\": a zone cannot have a '*' label"));
    }
  }
  if (name.WireLength() + kSoaPrefixLen > kMaxNameWireLen) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns zone \"", name.ToString(), "\": too long for its SOA names (hostmaster.<zone>)"));
  }
  for (const Name& z : zones_) {
    if (z == name) {
      return absl::AlreadyExistsError(
          absl::StrCat("dns zone \"", name.ToString(), "\" is already added"));
    }
  }
  zones_.push_back(std::move(name));
  return absl::OkStatus();
}

absl::Status ZoneTable::AddRecord(absl::string_view text, const base::IpAddress& v4) {
  P2P_ASSIGN_OR_RETURN(Name name, Name::Parse(text));
  const std::string where = absl::StrCat("dns record \"", name.ToString(), "\": ");
  if (v4.family != base::IpAddress::kV4) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, v4.ToString(), " is not an IPv4 address"));
  }
  const std::vector<std::string>& labels = name.labels();
  for (size_t i = 1; i < labels.size(); ++i) {
    if (labels[i] == "*") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "'*' is allowed only as the whole first label"));
    }
  }
  const bool wildcard = !labels.empty() && labels[0] == "*";
  const Name owner = wildcard ? name.Parent() : name;
  if (ZoneOf(owner) == nullptr || (wildcard && owner.is_root())) {
    return absl::InvalidArgumentError(absl::StrCat(where, "is not inside an added zone"));
  }
  auto& table = wildcard ? wildcards_ : exact_;
  const auto [it, added] = table.emplace(owner.Key(), Entry{name, v4});
  if (!added) {
    return absl::AlreadyExistsError(
        absl::StrCat(where, "is already added (as ", it->second.address.ToString(), ")"));
  }
  if (!wildcard) names_by_address_.emplace(v4.v4(), name);
  return absl::OkStatus();
}

absl::Status ZoneTable::AddReverse(const base::IpPrefix& prefix) {
  if (prefix.address.family != base::IpAddress::kV4) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns reverse prefix ", prefix.ToString(), ": only IPv4 is supported"));
  }
  for (const base::IpPrefix& p : reverse_) {
    if (p == prefix) {
      return absl::AlreadyExistsError(
          absl::StrCat("dns reverse prefix ", prefix.ToString(), " is already added"));
    }
  }
  reverse_.push_back(prefix);
  return absl::OkStatus();
}

const Name* ZoneTable::ZoneOf(const Name& qname) const {
  // The longest zone wins, so that a nested zone has its own SOA.
  const Name* best = nullptr;
  for (const Name& z : zones_) {
    if (qname.IsSubdomainOf(z) && (best == nullptr || z.labels().size() > best->labels().size())) {
      best = &z;
    }
  }
  return best;
}

const base::IpPrefix* ZoneTable::ReverseOf(const Name& qname, Name* apex) const {
  const std::optional<base::IpPrefix> block = ReverseBlock(qname);
  if (!block) return nullptr;
  // The whole block must lie inside a prefix, so that no name above a prefix (such as
  // 100.in-addr.arpa for 100.64.0.0/10) is hidden from the upstream resolver.
  for (const base::IpPrefix& p : reverse_) {
    if (p.length <= block->length && p.Contains(block->address)) {
      if (apex != nullptr) *apex = ReverseZone(p);
      return &p;
    }
  }
  return nullptr;
}

bool ZoneTable::IsPrivate(const Name& qname) const {
  return ZoneOf(qname) != nullptr || ReverseOf(qname, nullptr) != nullptr;
}

ZoneTable::Found ZoneTable::Find(const Name& qname) const {
  Found f;
  if (const Name* zone = ZoneOf(qname)) {
    f.apex = *zone;
    f.is_apex = qname == *zone;
    if (auto it = exact_.find(qname.Key()); it != exact_.end()) {
      f.exists = true;
      f.address = &it->second.address;
      return f;
    }
    // The closest wildcard above the name, if any.
    for (Name up = qname.Parent(); up.IsSubdomainOf(*zone); up = up.Parent()) {
      if (auto it = wildcards_.find(up.Key()); it != wildcards_.end()) {
        f.exists = true;
        f.address = &it->second.address;
        return f;
      }
      if (up == *zone) break;
    }
    // The apex, or an empty non-terminal (a name with records below it), exists without
    // records: NODATA, not NXDOMAIN, which would tell a resolver the names below are absent
    // too (RFC 8020). A linear scan: zones here hold tens of names, not millions.
    f.exists = f.is_apex;
    for (const auto* table : {&exact_, &wildcards_}) {
      for (const auto& [key, entry] : *table) {
        if (f.exists) break;
        f.exists = entry.name.IsSubdomainOf(qname);
      }
    }
    return f;
  }
  const base::IpPrefix* prefix = ReverseOf(qname, &f.apex);
  if (prefix == nullptr) return f;
  f.is_apex = qname == f.apex;
  if (std::optional<base::IpAddress> a = FromReverseName(qname)) {
    if (auto it = names_by_address_.find(a->v4()); it != names_by_address_.end()) {
      f.exists = true;
      f.ptr_target = &it->second;
    }
    return f;
  }
  // A partial reverse name exists if some record's address is in its block.
  const base::IpPrefix block = *ReverseBlock(qname);
  f.exists = f.is_apex;
  for (const auto& [v4, name] : names_by_address_) {
    if (f.exists) break;
    f.exists = block.Contains(
        base::IpAddress::V4(static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16),
                            static_cast<uint8_t>(v4 >> 8), static_cast<uint8_t>(v4)));
  }
  return f;
}

Record ZoneTable::Soa(const Name& apex) const {
  return MakeSoa(apex, ttl_, apex.Child("ns"), apex.Child("hostmaster"), kSoaSerial, kSoaRefresh,
                 kSoaRetry, kSoaExpire, ttl_);
}

bool ZoneTable::Answer(const Message& query, Message* response) const {
  if (query.questions.empty() || !IsPrivate(query.questions[0].name)) return false;
  Message r;
  r.header.id = query.header.id;
  r.header.qr = true;
  r.header.opcode = query.header.opcode;
  r.header.rd = query.header.rd;
  r.header.ra = true;
  // RFC 4035 3.1.6: CD is copied from the query.
  r.header.cd = query.header.cd;
  r.questions = query.questions;
  if (query.edns) {
    r.edns.emplace();
    r.edns->udp_payload_size = kEdnsPayload;
    // RFC 3225 3: DO is copied (we sign nothing, so it changes nothing else).
    r.edns->dnssec_ok = query.edns->dnssec_ok;
  }
  // Errors are not authoritative data: aa stays 0 for them, as BIND and Unbound do.
  auto fail = [&](uint8_t rcode) {
    r.header.rcode = rcode;
    *response = std::move(r);
    return true;
  };
  // RFC 6891 6.1.3: a version we do not implement gets BADVERS, with our version (0).
  if (query.edns && query.edns->version > 0) {
    r.edns->extended_rcode = kExtRcodeBadVers;
    return fail(kRcodeNoError);
  }
  if (query.header.opcode != 0) return fail(kRcodeNotImp);
  if (query.questions.size() != 1) return fail(kRcodeFormErr);
  const Question& q = query.questions[0];
  if (q.klass != kClassIn && q.klass != kClassAny) return fail(kRcodeRefused);

  r.header.aa = true;
  const Found f = Find(q.name);
  if (!f.exists) {
    r.header.rcode = kRcodeNxDomain;
    r.authorities.push_back(Soa(f.apex));
    *response = std::move(r);
    return true;
  }
  const bool any = q.type == kTypeAny;
  if ((q.type == kTypeA || any) && f.address != nullptr) {
    r.answers.push_back(MakeA(q.name, ttl_, *f.address));
  }
  if ((q.type == kTypePtr || any) && f.ptr_target != nullptr) {
    r.answers.push_back(MakePtr(q.name, ttl_, *f.ptr_target));
  }
  if ((q.type == kTypeSoa || any) && f.is_apex) r.answers.push_back(Soa(f.apex));
  // NODATA (RFC 2308 2.2): NOERROR, no answer, the SOA in authority for negative caching.
  if (r.answers.empty()) r.authorities.push_back(Soa(f.apex));
  *response = std::move(r);
  return true;
}

}  // namespace p2proxy::dns
