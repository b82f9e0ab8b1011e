// cache.cc: the TTL-honouring answer cache.
#include "dns/cache.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/bytes.h"

namespace p2proxy::dns {
namespace {

// SoaMinimum reads the MINIMUM field, the last 32 bits of an SOA's rdata.
std::optional<uint32_t> SoaMinimum(const Record& r) {
  if (r.type != kTypeSoa || r.rdata.size() < 20) return std::nullopt;
  const uint8_t* p = r.rdata.data() + r.rdata.size() - 4;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

Cache::Cache(const base::Clock& clock, size_t max_entries, uint32_t max_ttl)
    : clock_(clock), max_entries_(max_entries), max_ttl_(max_ttl) {}

std::string Cache::Key(const Question& q) { return absl::StrCat(q.name.Key(), "/", q.type, "/", q.klass); }

void Cache::Insert(const Question& q, const Message& response) {
  if (max_entries_ == 0 || response.header.tc) return;
  const uint8_t rcode = response.header.rcode;
  if (rcode != kRcodeNoError && rcode != kRcodeNxDomain) return;
  if (response.questions.size() != 1 || !(response.questions[0].name == q.name) ||
      response.questions[0].type != q.type) {
    return;
  }
  uint32_t ttl = max_ttl_;
  bool negative = rcode == kRcodeNxDomain || response.answers.empty();
  for (const Record& r : response.answers) ttl = std::min(ttl, r.ttl);
  if (negative) {
    // RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM); without an SOA it
    // is not cached at all.
    bool have_soa = false;
    for (const Record& r : response.authorities) {
      if (auto min = SoaMinimum(r)) {
        ttl = std::min({ttl, r.ttl, *min});
        have_soa = true;
      }
    }
    if (!have_soa) return;
  } else {
    for (const Record& r : response.authorities) ttl = std::min(ttl, r.ttl);
  }
  if (ttl == 0) return;
  const std::string key = Key(q);
  auto it = map_.find(key);
  if (it != map_.end()) {
    lru_.erase(it->second);
    map_.erase(it);
  }
  const absl::Duration now = clock_.Monotonic();
  lru_.push_front(Entry{key, response, now, now + absl::Seconds(ttl)});
  map_[key] = lru_.begin();
  ++counters_.inserted;
  while (map_.size() > max_entries_) {
    map_.erase(lru_.back().key);
    lru_.pop_back();
    ++counters_.evicted;
  }
}

bool Cache::Lookup(const Question& q, Message* out) {
  auto it = map_.find(Key(q));
  if (it == map_.end()) {
    ++counters_.misses;
    return false;
  }
  const absl::Duration now = clock_.Monotonic();
  if (now >= it->second->expires) {
    lru_.erase(it->second);
    map_.erase(it);
    ++counters_.misses;
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  const Entry& e = *it->second;
  *out = e.response;
  const auto age = static_cast<uint32_t>(absl::ToInt64Seconds(now - e.inserted));
  auto age_all = [age](std::vector<Record>& records) {
    for (Record& r : records) r.ttl = r.ttl > age ? r.ttl - age : 0;
  };
  age_all(out->answers);
  age_all(out->authorities);
  age_all(out->additionals);
  // The question is echoed as this client wrote it (case included).
  out->questions[0].name = q.name;
  ++counters_.hits;
  return true;
}

}  // namespace p2proxy::dns
