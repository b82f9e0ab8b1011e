// site.cc: Site.
#include "site/site.h"

#include <openssl/mem.h>

#include <cstring>
#include <optional>
#include <set>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/log.h"
#include "crypto/keys.h"
#include "net/tcp.h"
#include "crypto/x25519.h"
#include "tunnel/uapi_bridge.h"

namespace p2proxy::site {

namespace {

// SameShape: whether |a| and |b| are served by the same listeners and target, so an Apply can
// keep the resource's open connections (only access and certificate may differ).
bool SameShape(const SiteResource& a, const SiteResource& b) {
  return a.address == b.address && a.port == b.port && a.protocol == b.protocol && a.target == b.target &&
         a.in_process == b.in_process &&
         a.udp_idle_timeout == b.udp_idle_timeout && a.hostnames == b.hostnames &&
         a.default_certificate == b.default_certificate && a.redirect_port == b.redirect_port;
}

bool SameCertificateSource(const SiteResource& a, const SiteResource& b) {
  return a.certificate_file == b.certificate_file && a.key_file == b.key_file &&
         a.certificate_pem == b.certificate_pem && a.key_pem.Equals(b.key_pem);
}

bool SamePeer(const SitePeer& a, const SitePeer& b) {
  const bool same_psk = a.preshared_key.has_value() == b.preshared_key.has_value() &&
                        (!a.preshared_key || a.preshared_key->Equals(*b.preshared_key));
  return a.allowed_ips == b.allowed_ips && a.endpoint == b.endpoint &&
         a.persistent_keepalive == b.persistent_keepalive && same_psk && a.user == b.user && a.roles == b.roles;
}

http::Identity IdentityFor(const SitePeer& p) {
  http::Identity id;
  id.peer_key = crypto::KeyToBase64(p.public_key);
  id.user = p.user;
  id.roles = p.roles;
  return id;
}

// ReadFile reads a certificate or key file named in the config.
absl::StatusOr<std::string> ReadConfigFile(const SiteResource& r, const std::string& path, const char* field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": ", field, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// BuildCertificate makes |r|'s certificate from its files or from memory.
absl::StatusOr<std::shared_ptr<const tls::ServerCertificate>> BuildCertificate(const SiteResource& r) {
  if (!r.certificate_pem.empty()) {
    auto cert = tls::ServerCertificate::FromPem(r.certificate_pem, r.key_pem.view(), tls::ServerTlsOptions{});
    if (!cert.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": pushed certificate: ", cert.status().message()));
    }
    return *cert;
  }
  P2P_ASSIGN_OR_RETURN(std::string chain, ReadConfigFile(r, r.certificate_file, "certificate_file"));
  P2P_ASSIGN_OR_RETURN(std::string key, ReadConfigFile(r, r.key_file, "key_file"));
  auto cert = tls::ServerCertificate::FromPem(chain, key, tls::ServerTlsOptions{});
  OPENSSL_cleanse(key.data(), key.size());
  if (!cert.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": ", r.certificate_file, ": ",
                                                   cert.status().message()));
  }
  return *cert;
}

}  // namespace

Site::~Site() {
  *alive_ = false;
  sessions_.clear();
  splices_.clear();
  dialing_.clear();
  resources_.clear();
  uapi_.reset();
  stack_.reset();
  transport_.reset();
}

absl::StatusOr<std::unique_ptr<Site>> Site::Create(net::Loop& loop, base::Clock& clock,
                                                   const SiteConfig& config, const Options& options) {
  std::unique_ptr<Site> s(new Site(loop, clock));
  Site* self = s.get();
  s->node_address_ = config.wireguard.address;
  s->max_udp_sessions_per_resource_ = options.max_udp_sessions_per_resource;
  s->limits_ = config.limits;
  s->peer_limits_ = std::make_unique<PeerLimits>(config.limits);
  auto audit = http::AuditLog::Open(loop, config.audit_log);
  if (!audit.ok()) return audit.status();
  s->audit_ = std::move(*audit);

  tunnel::WgTransport::Options topts;
  topts.listen_port = config.wireguard.listen_port;
  topts.mtu = config.wireguard.mtu;
  // Decrypted packets are gathered for the length of the device's batch and handed to the stack
  // together, so lwIP's answers (ACKs, mostly) leave in one sendmmsg.
  topts.after_batch = [self] { self->InputPending(); };
  auto transport = tunnel::WgTransport::Create(loop, clock, std::move(topts), [self](wg::Peer&, base::ByteSpan pkt) {
    self->QueueInput(pkt);
  });
  if (!transport.ok()) return transport.status();
  s->transport_ = std::move(*transport);

  auto stack = stack::NetStack::Create(loop, config.wireguard.address, config.wireguard.mtu,
                                       [self](absl::Span<const base::ByteSpan> pkts) {
                                         self->transport_->SendPackets(pkts);
                                       });
  if (!stack.ok()) return stack.status();
  s->stack_ = std::move(*stack);

  wg::Device& dev = s->transport_->device();
  dev.SetPrivateKey(config.wireguard.private_key);
  s->public_key_ = dev.identity().public_key;
  ApplyResult ignored;
  P2P_RETURN_IF_ERROR(s->ApplyPeers(config.peers, &ignored));
  for (const auto& r : config.resources) P2P_RETURN_IF_ERROR(s->AddResource(r));

  if (options.uapi) {
    auto uapi = tunnel::UapiServer::Listen(
        loop, absl::StrCat(options.uapi_dir, "/", options.uapi_name, ".sock"),
        tunnel::UapiServer::Handler{
            [self] { return tunnel::UapiStateOf(*self->transport_); },
            [self](const wg::UapiSet& set) { return tunnel::ApplyUapiSet(*self->transport_, set); }});
    if (!uapi.ok()) return uapi.status();
    s->uapi_ = std::move(*uapi);
  }
  s->transport_->Kick();
  P2P_LOG(kInfo, "site.up")
      .Kv("public_key", crypto::KeyToBase64(dev.identity().public_key))
      .Kv("node_address", config.wireguard.address.ToString())
      .Kv("listen_port", s->transport_->listen_port())
      .Kv("peers", config.peers.size())
      .Kv("resources", config.resources.size());
  return s;
}

absl::Status Site::ApplyPeers(const std::vector<SitePeer>& peers, ApplyResult* result) {
  wg::Device& dev = transport_->device();
  std::map<crypto::PublicKey, const SitePeer*> want, had;
  for (const auto& p : peers) want[p.public_key] = &p;
  for (const auto& p : peers_) had[p.public_key] = &p;
  for (const auto& [key, old] : had) {
    if (want.count(key) != 0) continue;
    if (wg::Peer* peer = dev.FindPeer(key)) identities_.erase(peer);
    dev.RemovePeer(key);
    ++result->peers_removed;
  }
  for (const auto& p : peers) {
    auto h = had.find(p.public_key);
    const SitePeer* old = h == had.end() ? nullptr : h->second;
    if (old != nullptr && SamePeer(*old, p)) continue;
    wg::PeerConfig pc;
    pc.public_key = p.public_key;
    pc.preshared_key = p.preshared_key;
    pc.persistent_keepalive = p.persistent_keepalive;
    pc.allowed_ips = p.allowed_ips;
    // An endpoint the peer roamed to is kept unless the configured one changed; and a peer
    // with a live session keeps the address it talks from (a server-learned endpoint behind a
    // symmetric NAT is not the one this site sees).
    wg::Peer* existing = dev.FindPeer(p.public_key);
    if (old == nullptr || !(old->endpoint == p.endpoint)) pc.endpoint = p.endpoint;
    if (existing != nullptr && existing->has_current_keypair() && existing->endpoint() != nullptr) {
      pc.endpoint.reset();
    }
    if (existing != nullptr) dev.ClearAllowedIps(existing);
    auto added = dev.AddPeer(pc);
    if (!added.ok()) return added.status();
    // Hole punching: a new endpoint for a peer without a session gets a handshake now. Through
    // an endpoint-independent NAT this opens the site's mapping for the peer while the peer
    // sends its own handshake here; whichever arrives second completes.
    if (pc.endpoint.has_value() && !(*added)->has_current_keypair()) {
      dev.InitiateHandshake(*added);
      ++result->punches;
    } else if (p.endpoint.has_value() && old != nullptr && !(old->endpoint == p.endpoint) &&
               (*added)->endpoint() != nullptr && !(*(*added)->endpoint() == *p.endpoint)) {
      // The peer was heard somewhere new (a NAT that rebound) while a session lives where it
      // was (or on the relay): a handshake to the new endpoint opens this site's NAT for it,
      // and if the peer answers from there roaming moves the session over; meanwhile it goes
      // on where it is.
      dev.InitiateHandshakeVia(*added, *p.endpoint);
      ++result->punches;
    }
    if (old != nullptr && old->persistent_keepalive != p.persistent_keepalive) {
      dev.SetPersistentKeepalive(*added, p.persistent_keepalive);
    }
    identities_[*added] = IdentityFor(p);
    ++(old == nullptr ? result->peers_added : result->peers_updated);
  }
  peers_ = peers;
  return absl::OkStatus();
}

absl::Status Site::AddResource(const SiteResource& config) {
  auto state = std::make_shared<ResourceState>();
  state->config = config;
  ResourceState* st = state.get();
  const SiteResource& r = st->config;
  std::weak_ptr<ResourceState> weak = state;
  Site* self = this;
  if (r.access.grant.users.empty() && r.access.grant.roles.empty()) {
    P2P_LOG(kWarn, "site.resource_closed")
        .Kv("name", r.name)
        .Kv("why", "its access lists no users or roles, so every connection is refused");
  }
  auto listen = [&](uint16_t port, stack::NetStack::AcceptFn accept) -> absl::Status {
    auto l = stack_->ListenTcp(r.address, port, std::move(accept));
    if (!l.ok()) return absl::Status(l.status().code(), absl::StrCat("resource ", r.name, ": ", l.status().message()));
    st->listeners.push_back(std::move(*l));
    return absl::OkStatus();
  };
  if (r.protocol == Protocol::kHttps) {
    auto h = std::make_unique<HttpsResource>();
    h->config = &st->config;
    h->handshake_timeout = limits_.tls_handshake_timeout;
    h->limits.first_request_timeout_ms =
        static_cast<uint32_t>(absl::ToInt64Milliseconds(limits_.first_request_timeout));
    h->peer_limits = peer_limits_.get();
    P2P_RETURN_IF_ERROR(LoadCertificate(*h));
    http::ReverseProxyOptions popts;
    popts.upstream = r.target;
    if (r.in_process) {
      // The embedding program's listener stands in for the LAN app; each pooled connection is
      // a socketpair made on a later turn (the pool expects the callback after it returns).
      popts.pool.connect = [this, alive = std::weak_ptr<bool>(alive_), name = r.name,
                            port = r.port](net::TcpStream::ConnectCallback done) {
        loop_.Post([this, alive, name, port, done = std::move(done)]() mutable {
          if (alive.expired()) return;
          InProcessPeer peer;
          peer.resource = name;
          done(in_process_.Connect(loop_, port, peer));
        });
      };
    }
    h->proxy = std::make_unique<http::ReverseProxy>(
        loop_, clock_, popts,
        [self](std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
               std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending) {
          self->SpliceUpgraded(std::move(client), std::move(client_pending), std::move(upstream),
                               std::move(upstream_pending));
        });
    st->https = std::move(h);
    std::vector<std::pair<uint16_t, HttpsSession::Mode>> ports = {{r.port, HttpsSession::Mode::kHttps}};
    if (r.redirect_port != 0) ports.emplace_back(r.redirect_port, HttpsSession::Mode::kRedirect);
    for (auto [port, mode] : ports) {
      P2P_RETURN_IF_ERROR(listen(port, [self, weak, mode = mode](std::unique_ptr<net::Stream> conn,
                                                                 const base::IpAddress& peer, uint16_t peer_port) {
        if (ResourceRef res = weak.lock()) self->OnAcceptHttps(res, mode, std::move(conn), peer, peer_port);
      }));
    }
  } else if (r.protocol == Protocol::kTcp) {
    P2P_RETURN_IF_ERROR(listen(r.port, [self, weak](std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                                                    uint16_t peer_port) {
      if (ResourceRef res = weak.lock()) self->OnAccept(res, std::move(conn), peer, peer_port);
    }));
  } else {
    auto u = std::make_unique<UdpResource>();
    UdpResource* ur = u.get();
    u->relay = std::make_unique<proxy::UdpRelay>(
        loop_, r.target, r.udp_idle_timeout, max_udp_sessions_per_resource_,
        [ur](base::ByteSpan data, const base::IpAddress& client, uint16_t port) {
          if (ur->endpoint) ur->endpoint->SendTo(data, client, port);
        });
    // The relay's callbacks run while |st| lives: it owns the relay (and ends its sessions,
    // auditing them, while its config is still there: udp is its last member).
    u->relay->SetAdmit([self, st](const base::IpAddress& client, uint16_t port) {
      const http::Identity* id = self->IdentityOf(client);
      if (id == nullptr) return false;  // cannot happen: the grant check ran first
      const PeerLimits::Admission a = self->peer_limits_->TryAcquire(id->peer_key, PeerLimits::Kind::kUdp);
      if (a.ok) return true;
      ++self->counters_.over_peer_limit;
      if (a.first_refusal) {
        P2P_LOG(kInfo, "site.peer_limit")
            .Kv("resource", st->config.name)
            .Kv("peer", client.ToString())
            .Kv("limit", "max_udp_sessions_per_peer");
        self->AuditConnection(st->config, self->PeerOf(client, port), absl::Now(), 0, 0, false,
                              "limit: peer at max_udp_sessions_per_peer");
      }
      return false;
    });
    u->relay->SetSessionEnd([self, st](const proxy::UdpRelay::SessionStats& st_end) {
      if (const http::Identity* id = self->IdentityOf(st_end.client)) {
        self->peer_limits_->Release(id->peer_key, PeerLimits::Kind::kUdp);
      }
      const uint64_t now_ms = self->loop_.NowMs();
      const absl::Time started = absl::Now() - absl::Milliseconds(now_ms - st_end.started_ms);
      self->AuditConnection(st->config, self->PeerOf(st_end.client, st_end.client_port), started, st_end.bytes_in,
                            st_end.bytes_out, true, "");
    });
    auto ep = stack_->BindUdp(r.address, r.port,
                              [self, st, ur](base::ByteSpan data, const base::IpAddress& from, uint16_t port) {
                                // Deny by default, per datagram; a refused flow is audited once.
                                const SiteResource& res = st->config;
                                const http::Identity* id = self->IdentityOf(from);
                                if (id != nullptr && http::Matches(res.access.grant, *id)) {
                                  ur->relay->FromClient(data, from, port);
                                  return;
                                }
                                ++self->counters_.denied;
                                if (self->udp_denied_seen_.Insert(uint64_t{from.v4()} << 16 | port)) {
                                  const PeerContext peer = self->PeerOf(from, port);
                                  self->AuditConnection(res, peer, absl::Now(), data.size(), 0, false,
                                                        http::CheckConnection(res.access, peer.identity).reason);
                                }
                              });
    if (!ep.ok()) return absl::Status(ep.status().code(), absl::StrCat("resource ", r.name, ": ", ep.status().message()));
    u->endpoint = std::move(*ep);
    st->udp = std::move(u);
  }
  stack_->Serve(base::IpPrefix::Make(r.address, 32));
  P2P_LOG(kInfo, "site.resource")
      .Kv("name", r.name)
      .Kv("address", absl::StrCat(r.address.ToString(), ":", r.port))
      .Kv("protocol", ProtocolName(r.protocol))
      .Kv("target", r.in_process ? std::string(kInProcessTarget) : r.target.ToString());
  resources_[r.name] = std::move(state);
  return absl::OkStatus();
}

size_t Site::CloseIf(absl::FunctionRef<std::optional<std::string>(const ResourceState*, const std::string&)> verdict) {
  size_t closed = 0;
  for (auto it = dialing_.begin(); it != dialing_.end();) {
    Dialing& d = it->second;
    std::optional<std::string> why = verdict(d.resource.get(), d.peer_key);
    if (!why) {
      ++it;
      continue;
    }
    peer_limits_->Release(d.peer_key, PeerLimits::Kind::kTcp);
    PeerContext who;
    who.identity.peer_key = d.peer_key;
    AuditConnection(d.resource->config, who, absl::Now(), 0, 0, false, *why);
    static_cast<stack::LwipTcpStream*>(d.overlay.get())->Abort();
    loop_.DeferDelete(std::move(d.overlay));
    it = dialing_.erase(it);
    ++closed;
  }
  std::vector<std::pair<proxy::Splice*, std::string>> splices;
  for (auto& [sp, e] : splices_) {
    if (!e.resource) continue;
    if (std::optional<std::string> why = verdict(e.resource.get(), e.peer_key)) splices.emplace_back(sp, *why);
  }
  for (auto& [sp, why] : splices) {
    if (splices_.count(sp) == 0) continue;
    sp->Abort(absl::PermissionDeniedError(why));  // its DoneFn audits, releases and erases it
    ++closed;
  }
  for (auto& [session, holder] : sessions_) {
    if (session->finished()) continue;  // on its way out already
    if (std::optional<std::string> why = verdict(holder->resource.get(), session->peer().identity.peer_key)) {
      session->Revoke(*why);
      ++closed;
    }
  }
  counters_.revoked += closed;
  return closed;
}

void Site::RetireResource(const std::string& name, std::string_view reason, size_t* closed) {
  auto it = resources_.find(name);
  if (it == resources_.end()) return;
  ResourceRef r = it->second;
  resources_.erase(it);
  r->retired = true;
  r->listeners.clear();
  stack_->Unserve(base::IpPrefix::Make(r->config.address, 32));
  const std::string why(reason);
  *closed += CloseIf([&](const ResourceState* res, const std::string&) -> std::optional<std::string> {
    if (res == r.get()) return why;
    return std::nullopt;
  });
  r->udp.reset();  // ends its UDP sessions, each audited
  P2P_LOG(kInfo, "site.resource_removed").Kv("name", name).Kv("reason", why);
}

void Site::Recheck(ApplyResult* result) {
  std::map<std::string, const http::Identity*, std::less<>> by_key;
  for (const auto& [peer, id] : identities_) by_key[id.peer_key] = &id;
  static const http::Identity kNobody;
  auto identity_of = [&](const std::string& key) -> const http::Identity& {
    auto it = by_key.find(key);
    return it == by_key.end() ? kNobody : *it->second;
  };
  result->connections_closed += CloseIf([&](const ResourceState* res, const std::string& key) -> std::optional<std::string> {
    const http::AccessDecision d = http::CheckConnection(res->config.access, identity_of(key));
    if (d.allowed) return std::nullopt;
    return absl::StrCat("revoked: ", d.reason);
  });
  for (auto& [session, holder] : sessions_) session->UpdateIdentity(identity_of(session->peer().identity.peer_key));
}

absl::StatusOr<Site::ApplyResult> Site::Apply(const SiteConfig& next) {
  // Everything that can be refused is checked before anything changes.
  if (!(next.wireguard.address == node_address_)) {
    return absl::FailedPreconditionError(absl::StrCat("wireguard.address: the node address cannot change while the site runs (",
                                                      node_address_.ToString(), " -> ", next.wireguard.address.ToString(),
                                                      "); restart the site"));
  }
  if (crypto::PublicFromPrivate(next.wireguard.private_key) != public_key_) {
    return absl::FailedPreconditionError("wireguard.private_key: the key cannot change while the site runs; restart the site");
  }
  for (const auto& r : next.resources) {
    if (r.protocol != Protocol::kHttps) continue;
    auto it = resources_.find(r.name);
    if (it != resources_.end() && SameShape(it->second->config, r) && SameCertificateSource(it->second->config, r)) {
      continue;
    }
    P2P_RETURN_IF_ERROR(BuildCertificate(r).status());
  }

  ApplyResult result;
  // Connections of peers that leave are closed first, while the peer is still there to carry
  // the reset to them.
  std::set<std::string, std::less<>> leaving;
  for (const auto& p : peers_) leaving.insert(crypto::KeyToBase64(p.public_key));
  for (const auto& p : next.peers) leaving.erase(crypto::KeyToBase64(p.public_key));
  if (!leaving.empty()) {
    result.connections_closed += CloseIf([&](const ResourceState*, const std::string& key) -> std::optional<std::string> {
      if (leaving.count(key) != 0) return std::string("revoked: the peer was removed");
      return std::nullopt;
    });
  }
  P2P_RETURN_IF_ERROR(ApplyPeers(next.peers, &result));
  std::set<std::string, std::less<>> names;
  for (const auto& r : next.resources) names.insert(r.name);
  std::vector<std::string> gone;
  for (const auto& [name, state] : resources_) {
    if (names.count(name) == 0) gone.push_back(name);
  }
  for (const auto& name : gone) {
    RetireResource(name, "revoked: resource removed", &result.connections_closed);
    ++result.resources_removed;
  }
  absl::Status first_error;
  for (const auto& r : next.resources) {
    auto it = resources_.find(r.name);
    if (it != resources_.end() && SameShape(it->second->config, r)) {
      ResourceState& st = *it->second;
      bool changed = false;
      if (!(st.config.access == r.access)) {
        st.config.access = r.access;
        changed = true;
      }
      if (r.protocol == Protocol::kHttps && !SameCertificateSource(st.config, r)) {
        st.config.certificate_file = r.certificate_file;
        st.config.key_file = r.key_file;
        st.config.certificate_pem = r.certificate_pem;
        st.config.key_pem = r.key_pem;
        absl::Status loaded = LoadCertificate(*st.https);
        if (!loaded.ok() && first_error.ok()) first_error = loaded;
        changed = true;
      }
      if (changed) ++result.resources_updated;
      continue;
    }
    if (it != resources_.end()) {
      RetireResource(r.name, "closed: resource changed", &result.connections_closed);
      ++result.resources_removed;
    }
    absl::Status added = AddResource(r);
    if (!added.ok()) {
      // Only lwIP running out of listening PCBs gets here; the rest was checked above.
      P2P_LOG(kError, "site.apply_failed").Kv("resource", r.name).Kv("error", added.message());
      if (first_error.ok()) first_error = added;
      continue;
    }
    ++result.resources_added;
  }
  Recheck(&result);
  ++counters_.applied;
  P2P_LOG(kInfo, "site.applied")
      .Kv("peers_added", result.peers_added)
      .Kv("peers_removed", result.peers_removed)
      .Kv("peers_updated", result.peers_updated)
      .Kv("punches", result.punches)
      .Kv("resources_added", result.resources_added)
      .Kv("resources_removed", result.resources_removed)
      .Kv("resources_updated", result.resources_updated)
      .Kv("connections_closed", result.connections_closed);
  if (!first_error.ok()) return first_error;
  return result;
}

void Site::QueueInput(base::ByteSpan pkt) {
  if (in_count_ == kInSlots || pkt.size() > kInSlotSize) InputPending();
  if (pkt.size() > kInSlotSize) {
    if (stack_) stack_->Input(absl::MakeConstSpan(&pkt, 1));
    return;
  }
  uint8_t* slot = in_arena_.data() + in_count_ * kInSlotSize;
  std::memcpy(slot, pkt.data(), pkt.size());
  in_batch_[in_count_++] = base::ByteSpan(slot, pkt.size());
}

void Site::InputPending() {
  if (in_count_ == 0 || !stack_) return;
  const size_t n = in_count_;
  in_count_ = 0;
  stack_->Input(absl::MakeConstSpan(in_batch_.data(), n));
}

const http::Identity* Site::IdentityOf(const base::IpAddress& addr) const {
  // The device accepted this packet only because its source is inside the sending peer's
  // allowed IPs (cryptokey routing), so the source names the peer.
  const wg::Peer* p = transport_->device().allowed_ips().Lookup(addr);
  if (p == nullptr) return nullptr;
  auto it = identities_.find(p);
  return it == identities_.end() ? nullptr : &it->second;
}

PeerContext Site::PeerOf(const base::IpAddress& addr, uint16_t port) const {
  PeerContext peer;
  peer.address = addr.ToString();
  peer.port = port;
  if (const http::Identity* id = IdentityOf(addr)) peer.identity = *id;
  return peer;
}

void Site::StartSplice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, ResourceRef resource,
                       std::string peer_key, proxy::Splice::DoneFn done) {
  auto splice = std::make_unique<proxy::Splice>(
      std::move(a), std::move(b),
      [this, done = std::move(done)](proxy::Splice* sp, const proxy::Splice::Stats& st,
                                     const absl::Status& status) mutable {
        if (done) done(sp, st, status);
        auto sit = splices_.find(sp);
        if (sit != splices_.end()) {
          loop_.DeferDelete(std::move(sit->second.splice));
          splices_.erase(sit);
        }
      });
  proxy::Splice* raw = splice.get();
  splices_.emplace(raw, SpliceEntry{std::move(splice), std::move(resource), std::move(peer_key)});
  raw->Start();
}

void Site::AuditConnection(const SiteResource& r, const PeerContext& peer, absl::Time started, uint64_t in,
                           uint64_t out, bool allowed, std::string reason) {
  http::AuditEvent e;
  e.time = started;
  const std::string peer_text = absl::StrCat(peer.address, ":", peer.port);
  const std::string roles = absl::StrJoin(peer.identity.roles, ",");
  const absl::string_view kind = ProtocolName(r.protocol);
  e.kind = std::string_view(kind.data(), kind.size());
  e.resource = r.name;
  e.peer_key = peer.identity.peer_key;
  e.peer = peer_text;
  e.user = peer.identity.user;
  e.roles = roles;
  e.bytes_in = in;
  e.bytes_out = out;
  e.duration_ms = absl::ToInt64Milliseconds(absl::Now() - started);
  e.allowed = allowed;
  e.reason = reason;
  audit_->Write(e);
}

bool Site::Admit(const SiteResource& r, std::unique_ptr<net::Stream>& conn, const PeerContext& peer) {
  const http::AccessDecision d = http::CheckConnection(r.access, peer.identity);
  if (d.allowed) return true;
  ++counters_.denied;
  P2P_LOG(kInfo, "site.denied")
      .Kv("resource", r.name)
      .Kv("peer", absl::StrCat(peer.address, ":", peer.port))
      .Kv("user", peer.identity.user)
      .Kv("reason", d.reason);
  AuditConnection(r, peer, absl::Now(), 0, 0, false, d.reason);
  ResetLater(conn);
  return false;
}

void Site::ResetLater(std::unique_ptr<net::Stream>& conn) {
  // Reset, not a graceful close: the peer learns at once that it was refused. We are inside
  // lwIP's accept callback, which still holds the pcb, so the reset waits for the next turn.
  std::shared_ptr<net::Stream> held(std::move(conn));
  loop_.Post([held] { static_cast<stack::LwipTcpStream*>(held.get())->Abort(); });
}

bool Site::AdmitTcp(const SiteResource& r, std::unique_ptr<net::Stream>& conn, const PeerContext& peer) {
  const PeerLimits::Admission a = peer_limits_->TryAcquire(peer.identity.peer_key, PeerLimits::Kind::kTcp);
  if (a.ok) return true;
  ++counters_.over_peer_limit;
  if (a.first_refusal) {
    P2P_LOG(kInfo, "site.peer_limit")
        .Kv("resource", r.name)
        .Kv("peer", absl::StrCat(peer.address, ":", peer.port))
        .Kv("limit", "max_tcp_connections_per_peer")
        .Kv("cap", peer_limits_->Cap(PeerLimits::Kind::kTcp));
    AuditConnection(r, peer, absl::Now(), 0, 0, false, "limit: peer at max_tcp_connections_per_peer");
  }
  ResetLater(conn);
  return false;
}

void Site::OnAcceptHttps(const ResourceRef& res, HttpsSession::Mode mode, std::unique_ptr<net::Stream> conn,
                         const base::IpAddress& peer, uint16_t peer_port) {
  ++counters_.tcp_accepted;
  const SiteResource& r = res->config;
  PeerContext who = PeerOf(peer, peer_port);
  if (!Admit(r, conn, who) || !AdmitTcp(r, conn, who)) return;
  std::string key = who.identity.peer_key;
  auto holder = std::make_unique<SessionHolder>();
  holder->resource = res;
  holder->session = std::make_unique<HttpsSession>(loop_, *res->https, *audit_, mode, std::move(conn), std::move(who),
                                                   [this, key](HttpsSession* done) {
                                                     peer_limits_->Release(key, PeerLimits::Kind::kTcp);
                                                     auto it = sessions_.find(done);
                                                     if (it == sessions_.end()) return;
                                                     loop_.DeferDelete(std::move(it->second));
                                                     sessions_.erase(it);
                                                   });
  HttpsSession* raw = holder->session.get();
  sessions_.emplace(raw, std::move(holder));
  raw->Start();
}

absl::Status Site::LoadCertificate(HttpsResource& h) {
  const SiteResource& r = *h.config;
  P2P_ASSIGN_OR_RETURN(std::shared_ptr<const tls::ServerCertificate> cert, BuildCertificate(r));
  for (const auto& name : r.hostnames) {
    absl::Status put = h.certs.Put(name, cert);
    if (!put.ok()) return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": ", put.message()));
  }
  if (r.default_certificate) h.certs.SetDefault(cert);
  return absl::OkStatus();
}

absl::Status Site::ReloadCertificates() {
  absl::Status first;
  for (auto& [name, state] : resources_) {
    if (!state->https || state->config.certificate_file.empty()) continue;
    absl::Status st = LoadCertificate(*state->https);
    if (st.ok()) {
      P2P_LOG(kInfo, "site.certificate_reload").Kv("resource", name).Kv("result", "ok");
    } else {
      P2P_LOG(kWarn, "site.certificate_reload").Kv("resource", name).Kv("result", st.message());
    }
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

void Site::SpliceUpgraded(std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                          std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending) {
  if (!client_pending.empty()) upstream->WriteOwned(std::move(client_pending));
  if (!upstream_pending.empty()) client->WriteOwned(std::move(upstream_pending));
  StartSplice(std::move(client), std::move(upstream), nullptr, std::string(), nullptr);
}

void Site::OnAccept(const ResourceRef& res, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                    uint16_t peer_port) {
  ++counters_.tcp_accepted;
  const SiteResource& r = res->config;
  PeerContext who = PeerOf(peer, peer_port);
  if (!Admit(r, conn, who) || !AdmitTcp(r, conn, who)) return;
  // The overlay connection waits, unread (its window closes), while we dial the target.
  const uint64_t id = next_dial_id_++;
  dialing_.emplace(id, Dialing{std::move(conn), res, who.identity.peer_key});
  const absl::Time started = absl::Now();
  std::weak_ptr<bool> alive = alive_;
  net::TcpStream::ConnectCallback on_target = [this, alive, id, started, res, who](
                                                 absl::StatusOr<std::unique_ptr<net::TcpStream>> target) {
    if (alive.expired()) return;
    auto it = dialing_.find(id);
    if (it == dialing_.end()) return;  // revoked while dialing (CloseIf audited it)
    std::unique_ptr<net::Stream> overlay = std::move(it->second.overlay);
    dialing_.erase(it);
    if (!target.ok()) {
      peer_limits_->Release(who.identity.peer_key, PeerLimits::Kind::kTcp);
      ++counters_.tcp_target_failed;
      P2P_LOG(kWarn, "site.target_failed")
          .Kv("resource", res->config.name)
          .Kv("peer", absl::StrCat(who.address, ":", who.port))
          .Kv("error", target.status().message());
      AuditConnection(res->config, who, started, 0, 0, true, absl::StrCat("target: ", target.status().message()));
      overlay->Close();
      return;
    }
    StartSplice(
        std::move(overlay), std::move(*target), res, who.identity.peer_key,
        [this, started, res, who](proxy::Splice*, const proxy::Splice::Stats& st, const absl::Status& status) {
          peer_limits_->Release(who.identity.peer_key, PeerLimits::Kind::kTcp);
          // A revocation (CloseIf) ends the splice with PermissionDenied: audited as refused.
          const bool revoked = absl::IsPermissionDenied(status);
          AuditConnection(res->config, who, started, st.a_to_b, st.b_to_a, !revoked,
                          status.ok() ? std::string() : std::string(status.message()));
          counters_.bytes_to_targets += st.a_to_b;
          counters_.bytes_from_targets += st.b_to_a;
          status.ok() ? ++counters_.tcp_completed : ++counters_.tcp_failed;
          P2P_LOG(kInfo, "site.conn")
              .Kv("resource", res->config.name)
              .Kv("peer", absl::StrCat(who.address, ":", who.port))
              .Kv("bytes_in", st.a_to_b)
              .Kv("bytes_out", st.b_to_a)
              .Kv("duration_ms", absl::ToInt64Milliseconds(absl::Now() - started))
              .Kv("result", status.ok() ? "ok" : std::string(status.message()));
        });
  };
  if (!r.in_process) {
    net::TcpStream::Connect(loop_, r.target, std::move(on_target));
    return;
  }
  // The embedding program serves it: its listener gets one end of a socketpair with the
  // peer's identity, on a later turn like a LAN connect.
  InProcessPeer from;
  from.resource = r.name;
  from.user = who.identity.user;
  from.roles = who.identity.roles;
  from.address = who.address;
  from.port = who.port;
  loop_.Post([this, alive, from = std::move(from), port = r.port, on_target = std::move(on_target)]() mutable {
    if (alive.expired()) return;
    on_target(in_process_.Connect(loop_, port, from));
  });
}

}  // namespace p2proxy::site
