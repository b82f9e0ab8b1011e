// zone.h: ZoneTable, the private names the client answers itself (A records, wildcards, PTRs
// for reverse prefixes), and the authoritative answers it builds for them.
#ifndef P2PROXY_DNS_ZONE_H_
#define P2PROXY_DNS_ZONE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/ip_prefix.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/name_key.h"

namespace p2proxy::dns {

// ZoneTable holds private zones and their A records. Every name at or under a zone is answered
// locally (never forwarded, so private names do not leak to upstream resolvers), as are the
// in-addr.arpa names of the reverse prefixes. Setup methods return errors a user can act on;
// IsPrivate, Lookup and Answer are for the per-query path and do not fail. Lookups are keyed on
// NameKey (lower-cased wire form), so Lookup allocates nothing; AnswerFast (fast_path.h) builds
// on it for the common UDP query.
class ZoneTable {
 public:
  // ZoneTable(ttl): |ttl| is the TTL of every answer and the SOA's minimum (negative caching).
  explicit ZoneTable(uint32_t ttl = 60);

  // AddZone makes every name at or under |zone| ("example.internal") private. Fails on a bad
  // name, the root, a wildcard label, or a zone added before.
  absl::Status AddZone(absl::string_view zone);
  // AddRecord adds an A record: an exact name ("vault.example.internal") or a wildcard
  // ("*.apps.example.internal", '*' only as the whole first label) which answers for every name
  // with at least one label below apps.example.internal that has no exact record (the closest
  // encloser rules of RFC 4592 do not apply). Fails unless |v4| is IPv4 and the name is inside
  // an added zone, or if the same name (exact or wildcard) was added before.
  absl::Status AddRecord(absl::string_view name, const base::IpAddress& v4);
  // AddReverse makes the PTR names of the addresses in the IPv4 |prefix| private: answered with
  // the name of a record with that address (the first added), else NXDOMAIN.
  absl::Status AddReverse(const base::IpPrefix& prefix);

  // IsPrivate is true for a name at or under a zone, and for an in-addr.arpa name (full, or
  // partial such as 128.96.100.in-addr.arpa) whose addresses all lie in a reverse prefix. A
  // name no message can carry (a label over 63 octets, over 255 in all) is never private.
  bool IsPrivate(const Name& qname) const;

  // Apex is a zone, or the reverse zone of a prefix (100.in-addr.arpa for 100.64.0.0/10): the
  // owner of the SOA in negative answers. The wire forms are uncompressed, in the configured
  // case, for writers that compress them against other names themselves.
  struct Apex {
    Name name;
    std::string key;  // NameKey of |name|
    size_t num_labels = 0;
    std::vector<uint8_t> wire, mname_wire, rname_wire;  // name, ns.<name>, hostmaster.<name>
  };
  // Target is the name a PTR answer gives, with its uncompressed wire form.
  struct Target {
    Name name;
    std::vector<uint8_t> wire;
  };
  // Match is what Lookup found for one name. Its pointers are into the table: valid until the
  // table is changed, moved or destroyed.
  struct Match {
    const Apex* apex = nullptr;                // the zone it is in; null: the name is not private
    bool exists = false;                       // a record, wildcard, apex or empty non-terminal
    bool is_apex = false;
    const base::IpAddress* address = nullptr;  // its A record, if any
    const Target* ptr_target = nullptr;        // its PTR target (reverse names), if any
  };
  // Lookup finds |qname| among the zones, records and reverse prefixes, without allocating.
  Match Lookup(const NameKey& qname) const;
  // ttl is the TTL of every answer and the SOA's minimum.
  uint32_t ttl() const { return ttl_; }
  // soa_fixed is the end of every SOA rdata after its two names: serial, refresh, retry,
  // expire and minimum, 32 bits each.
  const std::array<uint8_t, 20>& soa_fixed() const { return soa_fixed_; }

  // Answer builds the response to |query|, whose first question must be private; otherwise it
  // returns false and leaves |response| alone. The response has the query's id and opcode,
  // qr=1, aa=1, ra=1, rd and cd copied, and the questions echoed; an A query gets the address
  // (owner written as the client wrote it), ANY the address too, SOA at an apex the SOA; other
  // types for an existing name get NODATA (NOERROR, no answer) and NXDOMAIN for an absent one,
  // both with the zone's SOA in authority; PTR answers the record's name. Opcode != 0 gives
  // NOTIMP, more than one question FORMERR, a class other than IN or ANY REFUSED. If the query
  // had OPT, so does the response (payload 1232, DO copied; BADVERS for version > 0).
  bool Answer(const Message& query, Message* response) const;

  size_t num_records() const { return exact_.size() + wildcards_.size(); }

 private:
  struct Entry {
    Name name;
    base::IpAddress address;
  };
  struct Reverse {
    base::IpPrefix prefix;
    Apex apex;
  };

  const Apex* ZoneOf(const NameKey& qname) const;
  const Reverse* ReverseOf(const NameKey& qname, base::IpPrefix* block) const;
  Record Soa(const Apex& apex) const;

  uint32_t ttl_;
  std::array<uint8_t, 20> soa_fixed_;
  std::vector<Apex> zones_;
  std::vector<Reverse> reverse_;
  // Keyed by NameKey: exact names, and wildcards by the name under their '*'.
  absl::flat_hash_map<std::string, Entry> exact_;
  absl::flat_hash_map<std::string, Entry> wildcards_;
  // interior_ holds the keys of every record's name and all its ancestors: a name in a zone
  // without a record of its own exists (an empty non-terminal) if it is here.
  absl::flat_hash_set<std::string> interior_;
  absl::flat_hash_map<uint32_t, Target> names_by_address_;  // first exact name per address
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_ZONE_H_
