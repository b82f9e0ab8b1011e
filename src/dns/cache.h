// cache.h: a small cache of upstream answers that honours their TTLs (RFC 1035 §7.4; negative
// answers for the SOA's minimum, RFC 2308 §5), bounded in entries, least recently used first out.
#ifndef P2PROXY_DNS_CACHE_H_
#define P2PROXY_DNS_CACHE_H_

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "absl/time/time.h"
#include "base/clock.h"
#include "dns/message.h"

namespace p2proxy::dns {

struct CacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t inserted = 0;
  uint64_t evicted = 0;
};

class Cache {
 public:
  Cache(const base::Clock& clock, size_t max_entries, uint32_t max_ttl = 86400);

  // Insert keeps |response| (to |q|) for its lifetime: the smallest TTL among its answer and
  // authority records (the SOA's minimum for NXDOMAIN and NODATA), capped at max_ttl. Responses
  // that are truncated, not NOERROR/NXDOMAIN, or have a TTL of 0 are not kept.
  void Insert(const Question& q, const Message& response);
  // Lookup fills |out| with a fresh copy whose TTLs have aged by the time spent in the cache
  // (the header id and EDNS are the caller's to set). False when absent or expired.
  bool Lookup(const Question& q, Message* out);

  size_t size() const { return map_.size(); }
  const CacheCounters& counters() const { return counters_; }

 private:
  struct Entry {
    std::string key;
    Message response;
    absl::Duration inserted;
    absl::Duration expires;
  };
  static std::string Key(const Question& q);

  const base::Clock& clock_;
  size_t max_entries_;
  uint32_t max_ttl_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
  CacheCounters counters_;
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_CACHE_H_
