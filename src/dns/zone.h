// zone.h: ZoneTable, the private names the client answers itself (A records, wildcards, PTRs
// for reverse prefixes), and the authoritative answers it builds for them.
#ifndef P2PROXY_DNS_ZONE_H_
#define P2PROXY_DNS_ZONE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/ip_prefix.h"
#include "dns/message.h"
#include "dns/name.h"

namespace p2proxy::dns {

// ZoneTable holds private zones and their A records. Every name at or under a zone is answered
// locally (never forwarded, so private names do not leak to upstream resolvers), as are the
// in-addr.arpa names of the reverse prefixes. Setup methods return errors a user can act on;
// IsPrivate and Answer are for the per-query path and do not fail.
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
  // partial such as 128.96.100.in-addr.arpa) whose addresses all lie in a reverse prefix.
  bool IsPrivate(const Name& qname) const;

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
  // Lookup result for one name.
  struct Found {
    bool exists = false;                       // the name exists (record, wildcard, apex, interior)
    const base::IpAddress* address = nullptr;  // its A record, if any
    const Name* ptr_target = nullptr;          // its PTR target (reverse names), if any
    bool is_apex = false;
    Name apex;  // the zone (or reverse zone) for the SOA
  };

  const Name* ZoneOf(const Name& qname) const;
  const base::IpPrefix* ReverseOf(const Name& qname, Name* apex) const;
  Found Find(const Name& qname) const;
  Record Soa(const Name& apex) const;

  uint32_t ttl_;
  std::vector<Name> zones_;
  std::vector<base::IpPrefix> reverse_;
  std::unordered_map<std::string, Entry> exact_;         // by Name::Key()
  std::unordered_map<std::string, Entry> wildcards_;     // by the Key() of the name under '*'
  std::unordered_map<uint32_t, Name> names_by_address_;  // first exact name per address
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_ZONE_H_
