// site_selector.cc: SiteSelector.
#include "client/site_selector.h"

#include <algorithm>
#include <cstring>

namespace p2proxy::client {
namespace {

uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint16_t Checksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2) sum += static_cast<uint32_t>(p[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

constexpr size_t kProbePayload = 8;  // "p2proxy" and a NUL: recognisable in a capture

}  // namespace

SiteSelector::SiteState* SiteSelector::Find(const crypto::PublicKey& key) {
  for (auto& s : sites_) {
    if (s.site.key == key) return &s;
  }
  return nullptr;
}

const SiteSelector::SiteState* SiteSelector::Find(const crypto::PublicKey& key) const {
  for (const auto& s : sites_) {
    if (s.site.key == key) return &s;
  }
  return nullptr;
}

void SiteSelector::Configure(const base::IpAddress& self, const std::vector<SharedResource>& resources,
                             absl::Duration now) {
  self_ = self;
  std::vector<SiteState> next;
  absl::flat_hash_map<uint32_t, ResourceState> next_resources;
  for (const SharedResource& r : resources) {
    if (r.address.family != base::IpAddress::kV4) continue;
    ResourceState rs;
    for (const SiteCandidate& c : r.sites) {
      if (c.node_address.family != base::IpAddress::kV4) continue;
      rs.sites.push_back(c.key);
      const bool have = std::any_of(next.begin(), next.end(), [&](const SiteState& s) { return s.site.key == c.key; });
      if (have) continue;
      if (SiteState* old = Find(c.key); old != nullptr && old->site.node_address == c.node_address) {
        next.push_back(*old);
        next.back().site = c;
      } else {
        SiteState s;
        s.site = c;
        s.next_probe_at = now;
        next.push_back(std::move(s));
      }
    }
    auto old = resources_.find(r.address.v4());
    if (old != resources_.end()) rs.preferred = old->second.preferred;
    if (!rs.sites.empty()) next_resources[r.address.v4()] = std::move(rs);
  }
  sites_ = std::move(next);
  resources_ = std::move(next_resources);
  for (auto it = flows_.begin(); it != flows_.end();) {
    auto r = resources_.find(it->first.dst);
    const bool keep = r != resources_.end() &&
                      std::find(r->second.sites.begin(), r->second.sites.end(), it->second.site) != r->second.sites.end();
    if (keep) {
      ++it;
    } else {
      flows_.erase(it++);
    }
  }
  Choose();
}

absl::Duration SiteSelector::TimeoutOf(const SiteState& s) const {
  if (!s.rtt) return options_.max_timeout;
  return std::clamp(*s.rtt * 3, options_.min_timeout, options_.max_timeout);
}

void SiteSelector::SetHealth(SiteState& s, Health h) {
  if (s.health == h) return;
  const bool was_down = s.health == Health::kDown;
  s.health = h;
  if (h == Health::kDown) events_.push_back(Event{"site_down", s.site.name, ""});
  if (h == Health::kUp && was_down) events_.push_back(Event{"site_up", s.site.name, ""});
}

void SiteSelector::Choose() {
  // Rank: up with an RTT (lowest first), then not yet known (server order), then down.
  auto rank = [&](const crypto::PublicKey& key, size_t order) {
    const SiteState* s = Find(key);
    if (s == nullptr || s->health == Health::kDown) return std::make_pair(2, absl::Duration() + absl::Nanoseconds(order));
    if (s->health == Health::kUp && s->rtt) return std::make_pair(0, *s->rtt);
    return std::make_pair(1, absl::Nanoseconds(order));
  };
  for (auto& [addr, r] : resources_) {
    size_t best = 0;
    for (size_t i = 1; i < r.sites.size(); ++i) {
      if (rank(r.sites[i], i) < rank(r.sites[best], best)) best = i;
    }
    const crypto::PublicKey& candidate = r.sites[best];
    std::optional<crypto::PublicKey> next = r.preferred;
    if (!r.preferred || std::find(r.sites.begin(), r.sites.end(), *r.preferred) == r.sites.end()) {
      next = candidate;
    } else if (*r.preferred != candidate) {
      const size_t cur_order = static_cast<size_t>(std::find(r.sites.begin(), r.sites.end(), *r.preferred) - r.sites.begin());
      const auto cur = rank(*r.preferred, cur_order);
      const auto cand = rank(candidate, best);
      if (cur.first != cand.first) {
        next = candidate;  // a better class (up over unknown over down) always wins
      } else if (cur.first == 0 && absl::FDivDuration(cand.second, cur.second) < options_.switch_ratio) {
        next = candidate;  // clearly faster
      }
    }
    if (next != r.preferred) {
      r.preferred = next;
      const SiteState* s = Find(*next);
      const base::IpAddress a = base::IpAddress::V4(static_cast<uint8_t>(addr >> 24), static_cast<uint8_t>(addr >> 16),
                                                    static_cast<uint8_t>(addr >> 8), static_cast<uint8_t>(addr));
      events_.push_back(Event{"preferred", s ? s->site.name : "", a.ToString()});
    }
  }
}

std::optional<crypto::PublicKey> SiteSelector::Route(base::ByteSpan p, absl::Duration now) {
  if (resources_.empty() || p.size() < 20 || (p[0] >> 4) != 4) return std::nullopt;
  const uint32_t dst = Load32(p.data() + 16);
  auto r = resources_.find(dst);
  if (r == resources_.end() || !r->second.preferred) return std::nullopt;
  FlowKey key;
  key.dst = dst;
  key.proto = p[9];
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  const bool first_fragment = (Load16(p.data() + 6) & 0x1fff) == 0;
  if ((key.proto == 6 || key.proto == 17) && first_fragment && ihl >= 20 && p.size() >= ihl + 4) {
    key.src_port = Load16(p.data() + ihl);
    key.dst_port = Load16(p.data() + ihl + 2);
  }
  auto f = flows_.find(key);
  if (f != flows_.end()) {
    const SiteState* s = Find(f->second.site);
    if (s != nullptr && s->health != Health::kDown) {
      f->second.last_used = now;
      return f->second.site;
    }
    f->second.site = *r->second.preferred;  // its site went down: carried on by the preferred
    f->second.last_used = now;
    return f->second.site;
  }
  if (flows_.size() >= options_.max_flows) {
    // Full: the least recently used flow goes (it is re-pinned to the preferred site if it
    // comes back, which is where it would go anyway unless its site is slower).
    auto oldest = flows_.begin();
    for (auto it = flows_.begin(); it != flows_.end(); ++it) {
      if (it->second.last_used < oldest->second.last_used) oldest = it;
    }
    flows_.erase(oldest);
  }
  flows_.emplace(key, Flow{*r->second.preferred, now});
  // A new flow checks its site now rather than at the next regular probe when the site has
  // not answered lately: a site that died is found out within three short timeouts of the
  // first flow that needs it, not up to a probe interval later.
  if (SiteState* s = Find(*r->second.preferred);
      s != nullptr && !s->outstanding_since && now - s->last_answer >= options_.probe_interval / 4) {
    s->next_probe_at = std::min(s->next_probe_at, now);
  }
  return *r->second.preferred;
}

std::vector<uint8_t> SiteSelector::MakeProbe(const SiteState& s) const {
  std::vector<uint8_t> p(20 + 8 + kProbePayload, 0);
  p[0] = 0x45;
  Store16(p.data() + 2, static_cast<uint16_t>(p.size()));
  p[8] = 64;
  p[9] = 1;
  std::memcpy(p.data() + 12, self_.bytes.data(), 4);
  std::memcpy(p.data() + 16, s.site.node_address.bytes.data(), 4);
  Store16(p.data() + 10, Checksum(p.data(), 20));
  p[20] = 8;
  Store16(p.data() + 24, kProbeId);
  Store16(p.data() + 26, s.outstanding_seq);
  std::memcpy(p.data() + 28, "p2proxy", kProbePayload);
  Store16(p.data() + 22, Checksum(p.data() + 20, p.size() - 20));
  return p;
}

bool SiteSelector::OnDelivered(base::ByteSpan p, absl::Duration now) {
  if (sites_.empty() || p.size() < 28 || p[0] != 0x45 || p[9] != 1 || p[20] != 0) return false;
  if (Load16(p.data() + 24) != kProbeId) return false;
  const uint32_t from = Load32(p.data() + 12);
  for (SiteState& s : sites_) {
    if (s.site.node_address.v4() != from) continue;
    if (!s.outstanding_since || Load16(p.data() + 26) != s.outstanding_seq) return true;  // late: consumed
    const absl::Duration sample = now - *s.outstanding_since;
    s.rtt = s.rtt ? (*s.rtt * 7 + sample) / 8 : sample;
    s.outstanding_since.reset();
    s.last_answer = now;
    ++s.answers;
    s.misses = 0;
    ++s.answers_in_row;
    if (s.health != Health::kDown || s.answers_in_row >= options_.answers_to_up) SetHealth(s, Health::kUp);
    Choose();
    return true;
  }
  return false;
}

std::vector<SiteSelector::Probe> SiteSelector::Tick(absl::Duration now) {
  std::vector<Probe> out;
  bool changed = false;
  for (SiteState& s : sites_) {
    if (s.outstanding_since && now - *s.outstanding_since >= TimeoutOf(s)) {
      s.outstanding_since.reset();
      s.answers_in_row = 0;
      if (++s.misses >= options_.misses_to_down && s.health != Health::kDown) {
        SetHealth(s, Health::kDown);
        changed = true;
      }
      s.next_probe_at = now;  // a miss is checked again at once
    }
    if (!s.outstanding_since && now >= s.next_probe_at) {
      s.outstanding_seq = ++s.seq;
      s.outstanding_since = now;
      s.next_probe_at = now + options_.probe_interval;
      ++s.probes_sent;
      out.push_back(Probe{s.site.key, MakeProbe(s), s.misses > 0 || s.health == Health::kDown});
    }
  }
  if (changed) Choose();
  if (now - last_sweep_ >= absl::Seconds(1)) {
    last_sweep_ = now;
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (now - it->second.last_used > options_.flow_idle) {
        flows_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  return out;
}

std::vector<SiteSelector::Event> SiteSelector::TakeEvents() {
  std::vector<Event> out;
  out.swap(events_);
  return out;
}

std::vector<SiteSelector::SiteStatus> SiteSelector::Status() const {
  std::vector<SiteStatus> out;
  for (const SiteState& s : sites_) {
    SiteStatus st;
    st.site = s.site;
    st.health = s.health;
    st.rtt = s.rtt;
    st.probes_sent = s.probes_sent;
    st.answers = s.answers;
    for (const auto& [k, f] : flows_) st.flows += f.site == s.site.key;
    out.push_back(std::move(st));
  }
  return out;
}

const SiteCandidate* SiteSelector::PreferredFor(const base::IpAddress& resource) const {
  auto r = resources_.find(resource.v4());
  if (r == resources_.end() || !r->second.preferred) return nullptr;
  const SiteState* s = Find(*r->second.preferred);
  return s == nullptr ? nullptr : &s->site;
}

}  // namespace p2proxy::client
