// zone.cc: ZoneTable setup, lookup (exact, wildcard, apex, empty non-terminal, reverse) and
// the authoritative answers.
#include "dns/zone.h"

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
// "hostmaster." is the longest label the SOA prepends to a zone.
constexpr size_t kSoaPrefixLen = 1 + 10;

// The key of in-addr.arpa, which every reverse name ends with.
constexpr absl::string_view kInAddrArpaKey("\x07" "in-addr" "\x04" "arpa" "\x00", 14);
constexpr size_t kInAddrArpaLabels = 2;

void AppendWire(const Name& name, std::vector<uint8_t>* out) {
  for (const std::string& l : name.labels()) {
    out->push_back(static_cast<uint8_t>(l.size()));
    out->insert(out->end(), l.begin(), l.end());
  }
  out->push_back(0);
}

std::vector<uint8_t> WireOf(const Name& name) {
  std::vector<uint8_t> out;
  AppendWire(name, &out);
  return out;
}

ZoneTable::Apex MakeApex(Name name) {
  ZoneTable::Apex a;
  a.key = NameKey::Of(name);
  a.num_labels = name.labels().size();
  a.wire = WireOf(name);
  a.mname_wire = WireOf(name.Child("ns"));
  a.rname_wire = WireOf(name.Child("hostmaster"));
  a.name = std::move(name);
  return a;
}

// ReverseZone is the in-addr.arpa name of the whole octets of |prefix| (100.64.0.0/10 ->
// 100.in-addr.arpa): the apex of the SOA for names in the prefix.
Name ReverseZone(const base::IpPrefix& prefix) {
  Name n = Name::FromLabels({"in-addr", "arpa"});
  for (int i = 0; i < prefix.length / 8; ++i) n = n.Child(absl::StrCat(prefix.address.bytes[i]));
  return n;
}

// ParseOctet reads a decimal octet in its one canonical spelling (0-255, no leading zeros):
// "020" or "+20" would be a second name for one PTR.
bool ParseOctet(absl::string_view s, uint8_t* out) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 255) return false;
  *out = static_cast<uint8_t>(v);
  return true;
}

// ReverseBlock reads an in-addr.arpa name of 1 to 4 octets as the block of addresses it stands
// for (128.96.100.in-addr.arpa -> 100.96.128.0/24); false for any other name.
bool ReverseBlock(const NameKey& qname, base::IpPrefix* block) {
  if (!qname.IsSubdomainOf(kInAddrArpaKey, kInAddrArpaLabels)) return false;
  const size_t num_octets = qname.num_labels() - kInAddrArpaLabels;
  if (num_octets < 1 || num_octets > 4) return false;
  // The first label is the last octet given; the ones not given are zero.
  uint8_t octets[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < num_octets; ++i) {
    if (!ParseOctet(qname.Label(i), &octets[num_octets - 1 - i])) return false;
  }
  *block = base::IpPrefix::Make(base::IpAddress::V4(octets[0], octets[1], octets[2], octets[3]),
                                static_cast<uint8_t>(8 * num_octets));
  return true;
}

}  // namespace

ZoneTable::ZoneTable(uint32_t ttl) : ttl_(ttl) {
  size_t at = 0;
  for (const uint32_t v : {kSoaSerial, kSoaRefresh, kSoaRetry, kSoaExpire, ttl_}) {
    for (int shift = 24; shift >= 0; shift -= 8) soa_fixed_[at++] = static_cast<uint8_t>(v >> shift);
  }
}

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
  const std::string key = NameKey::Of(name);
  for (const Apex& z : zones_) {
    if (z.key == key) {
      return absl::AlreadyExistsError(
          absl::StrCat("dns zone \"", name.ToString(), "\" is already added"));
    }
  }
  zones_.push_back(MakeApex(std::move(name)));
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
  NameKey owner;
  NameKey full;
  // Name::Parse already refused what the wire cannot carry.
  if (!owner.Set(wildcard ? name.Parent() : name) || !full.Set(name) ||
      ZoneOf(owner) == nullptr || (wildcard && owner.num_labels() == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(where, "is not inside an added zone"));
  }
  auto& table = wildcard ? wildcards_ : exact_;
  const auto [it, added] = table.emplace(owner.key(), Entry{name, v4});
  if (!added) {
    return absl::AlreadyExistsError(
        absl::StrCat(where, "is already added (as ", it->second.address.ToString(), ")"));
  }
  for (size_t i = 0; i <= full.num_labels(); ++i) interior_.emplace(full.Suffix(i));
  if (!wildcard) names_by_address_.emplace(v4.v4(), Target{name, WireOf(name)});
  return absl::OkStatus();
}

absl::Status ZoneTable::AddReverse(const base::IpPrefix& prefix) {
  if (prefix.address.family != base::IpAddress::kV4) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns reverse prefix ", prefix.ToString(), ": only IPv4 is supported"));
  }
  for (const Reverse& r : reverse_) {
    if (r.prefix == prefix) {
      return absl::AlreadyExistsError(
          absl::StrCat("dns reverse prefix ", prefix.ToString(), " is already added"));
    }
  }
  reverse_.push_back(Reverse{prefix, MakeApex(ReverseZone(prefix))});
  return absl::OkStatus();
}

const ZoneTable::Apex* ZoneTable::ZoneOf(const NameKey& qname) const {
  // The longest zone wins, so that a nested zone has its own SOA.
  const Apex* best = nullptr;
  for (const Apex& z : zones_) {
    if (qname.IsSubdomainOf(z.key, z.num_labels) &&
        (best == nullptr || z.num_labels > best->num_labels)) {
      best = &z;
    }
  }
  return best;
}

const ZoneTable::Reverse* ZoneTable::ReverseOf(const NameKey& qname,
                                               base::IpPrefix* block) const {
  if (reverse_.empty() || !ReverseBlock(qname, block)) return nullptr;
  // The whole block must lie inside a prefix, so that no name above a prefix (such as
  // 100.in-addr.arpa for 100.64.0.0/10) is hidden from the upstream resolver.
  for (const Reverse& r : reverse_) {
    if (r.prefix.length <= block->length && r.prefix.Contains(block->address)) return &r;
  }
  return nullptr;
}

bool ZoneTable::IsPrivate(const Name& qname) const {
  NameKey key;
  if (!key.Set(qname)) return false;
  base::IpPrefix block;
  return ZoneOf(key) != nullptr || ReverseOf(key, &block) != nullptr;
}

ZoneTable::Match ZoneTable::Lookup(const NameKey& qname) const {
  Match m;
  if (const Apex* zone = ZoneOf(qname)) {
    m.apex = zone;
    m.is_apex = qname.num_labels() == zone->num_labels;
    if (auto it = exact_.find(qname.key()); it != exact_.end()) {
      m.exists = true;
      m.address = &it->second.address;
      return m;
    }
    // The closest wildcard above the name, up to the apex.
    for (size_t i = 1; i + zone->num_labels <= qname.num_labels(); ++i) {
      if (auto it = wildcards_.find(qname.Suffix(i)); it != wildcards_.end()) {
        m.exists = true;
        m.address = &it->second.address;
        return m;
      }
    }
    // The apex, or an empty non-terminal (a name with records below it), exists without
    // records: NODATA, not NXDOMAIN, which would tell a resolver the names below are absent
    // too (RFC 8020).
    m.exists = m.is_apex || interior_.contains(qname.key());
    return m;
  }
  base::IpPrefix block;
  const Reverse* reverse = ReverseOf(qname, &block);
  if (reverse == nullptr) return m;
  m.apex = &reverse->apex;
  m.is_apex = qname.key() == reverse->apex.key;
  if (block.length == 32) {
    if (auto it = names_by_address_.find(block.address.v4()); it != names_by_address_.end()) {
      m.exists = true;
      m.ptr_target = &it->second;
    }
    return m;
  }
  // A partial reverse name exists if some record's address is in its block. A linear scan:
  // zones here hold tens of names, not millions, and such queries are rare.
  m.exists = m.is_apex;
  for (const auto& [v4, target] : names_by_address_) {
    if (m.exists) break;
    m.exists = block.Contains(
        base::IpAddress::V4(static_cast<uint8_t>(v4 >> 24), static_cast<uint8_t>(v4 >> 16),
                            static_cast<uint8_t>(v4 >> 8), static_cast<uint8_t>(v4)));
  }
  return m;
}

Record ZoneTable::Soa(const Apex& apex) const {
  return MakeSoa(apex.name, ttl_, apex.name.Child("ns"), apex.name.Child("hostmaster"),
                 kSoaSerial, kSoaRefresh, kSoaRetry, kSoaExpire, ttl_);
}

bool ZoneTable::Answer(const Message& query, Message* response) const {
  if (query.questions.empty()) return false;
  NameKey key;
  if (!key.Set(query.questions[0].name)) return false;
  const Match f = Lookup(key);
  if (f.apex == nullptr) return false;
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
    r.edns->udp_payload_size = kMaxEdnsUdpPayload;
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
  if (!f.exists) {
    r.header.rcode = kRcodeNxDomain;
    r.authorities.push_back(Soa(*f.apex));
    *response = std::move(r);
    return true;
  }
  const bool any = q.type == kTypeAny;
  if ((q.type == kTypeA || any) && f.address != nullptr) {
    r.answers.push_back(MakeA(q.name, ttl_, *f.address));
  }
  if ((q.type == kTypePtr || any) && f.ptr_target != nullptr) {
    r.answers.push_back(MakePtr(q.name, ttl_, f.ptr_target->name));
  }
  if ((q.type == kTypeSoa || any) && f.is_apex) r.answers.push_back(Soa(*f.apex));
  // NODATA (RFC 2308 2.2): NOERROR, no answer, the SOA in authority for negative caching.
  if (r.answers.empty()) r.authorities.push_back(Soa(*f.apex));
  *response = std::move(r);
  return true;
}

}  // namespace p2proxy::dns
