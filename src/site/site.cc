// site.cc: Site.
#include "site/site.h"

#include <openssl/mem.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/log.h"
#include "crypto/keys.h"
#include "net/tcp.h"
#include "tunnel/uapi_bridge.h"

namespace p2proxy::site {

Site::~Site() {
  *alive_ = false;
  sessions_.clear();
  splices_.clear();
  dialing_.clear();
  udp_.clear();
  https_.clear();
  tcp_listeners_.clear();
  uapi_.reset();
  stack_.reset();
  transport_.reset();
}

absl::StatusOr<std::unique_ptr<Site>> Site::Create(net::Loop& loop, base::Clock& clock,
                                                   const SiteConfig& config, const Options& options) {
  std::unique_ptr<Site> s(new Site(loop));
  Site* self = s.get();
  s->resources_ = config.resources;
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
  for (const auto& p : config.peers) {
    wg::PeerConfig pc;
    pc.public_key = p.public_key;
    pc.preshared_key = p.preshared_key;
    pc.endpoint = p.endpoint;
    pc.persistent_keepalive = p.persistent_keepalive;
    pc.allowed_ips = p.allowed_ips;
    auto added = dev.AddPeer(pc);
    if (!added.ok()) return added.status();
    http::Identity id;
    id.peer_key = crypto::KeyToBase64(p.public_key);
    id.user = p.user;
    id.roles = p.roles;
    s->identities_[*added] = std::move(id);
  }

  s->https_.resize(s->resources_.size());
  for (size_t i = 0; i < s->resources_.size(); ++i) {
    const SiteResource& r = s->resources_[i];
    s->stack_->Serve(base::IpPrefix::Make(r.address, 32));
    if (r.access.grant.users.empty() && r.access.grant.roles.empty()) {
      P2P_LOG(kWarn, "site.resource_closed")
          .Kv("name", r.name)
          .Kv("why", "its access lists no users or roles, so every connection is refused");
    }
    if (r.protocol == Protocol::kHttps) {
      auto h = std::make_unique<HttpsResource>();
      h->config = &r;
      h->handshake_timeout = config.limits.tls_handshake_timeout;
      h->limits.first_request_timeout_ms =
          static_cast<uint32_t>(absl::ToInt64Milliseconds(config.limits.first_request_timeout));
      h->peer_limits = s->peer_limits_.get();
      P2P_RETURN_IF_ERROR(s->LoadCertificate(*h));
      http::ReverseProxyOptions popts;
      popts.upstream = r.target;
      h->proxy = std::make_unique<http::ReverseProxy>(
          loop, clock, popts,
          [self](std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                 std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending) {
            self->SpliceUpgraded(std::move(client), std::move(client_pending), std::move(upstream),
                                 std::move(upstream_pending));
          });
      s->https_[i] = std::move(h);
      std::vector<std::pair<uint16_t, HttpsSession::Mode>> ports = {{r.port, HttpsSession::Mode::kHttps}};
      if (r.redirect_port != 0) ports.emplace_back(r.redirect_port, HttpsSession::Mode::kRedirect);
      for (auto [port, mode] : ports) {
        auto l = s->stack_->ListenTcp(
            r.address, port,
            [self, i, mode = mode](std::unique_ptr<net::Stream> conn, const base::IpAddress& peer, uint16_t peer_port) {
              self->OnAcceptHttps(i, mode, std::move(conn), peer, peer_port);
            });
        if (!l.ok()) return absl::Status(l.status().code(), absl::StrCat("resource ", r.name, ": ", l.status().message()));
        s->tcp_listeners_.push_back(std::move(*l));
      }
    } else if (r.protocol == Protocol::kTcp) {
      auto l = s->stack_->ListenTcp(r.address, r.port,
                                    [self, i](std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                                              uint16_t peer_port) {
                                      self->OnAccept(self->resources_[i], std::move(conn), peer, peer_port);
                                    });
      if (!l.ok()) return absl::Status(l.status().code(), absl::StrCat("resource ", r.name, ": ", l.status().message()));
      s->tcp_listeners_.push_back(std::move(*l));
    } else {
      auto u = std::make_unique<UdpResource>();
      UdpResource* ur = u.get();
      u->relay = std::make_unique<proxy::UdpRelay>(
          loop, r.target, r.udp_idle_timeout, options.max_udp_sessions_per_resource,
          [ur](base::ByteSpan data, const base::IpAddress& client, uint16_t port) {
            ur->endpoint->SendTo(data, client, port);
          });
      u->relay->SetAdmit([self, i](const base::IpAddress& client, uint16_t port) {
        const http::Identity* id = self->IdentityOf(client);
        if (id == nullptr) return false;  // cannot happen: the grant check ran first
        const PeerLimits::Admission a = self->peer_limits_->TryAcquire(id->peer_key, PeerLimits::Kind::kUdp);
        if (a.ok) return true;
        ++self->counters_.over_peer_limit;
        if (a.first_refusal) {
          P2P_LOG(kInfo, "site.peer_limit")
              .Kv("resource", self->resources_[i].name)
              .Kv("peer", client.ToString())
              .Kv("limit", "max_udp_sessions_per_peer");
          self->AuditConnection(self->resources_[i], self->PeerOf(client, port), absl::Now(), 0, 0, false,
                                "limit: peer at max_udp_sessions_per_peer");
        }
        return false;
      });
      u->relay->SetSessionEnd([self, i](const proxy::UdpRelay::SessionStats& st) {
        if (const http::Identity* id = self->IdentityOf(st.client)) {
          self->peer_limits_->Release(id->peer_key, PeerLimits::Kind::kUdp);
        }
        const uint64_t now_ms = self->loop_.NowMs();
        const absl::Time started = absl::Now() - absl::Milliseconds(now_ms - st.started_ms);
        self->AuditConnection(self->resources_[i], self->PeerOf(st.client, st.client_port), started, st.bytes_in,
                              st.bytes_out, true, "");
      });
      auto ep = s->stack_->BindUdp(r.address, r.port,
                                   [self, i, ur](base::ByteSpan data, const base::IpAddress& from, uint16_t port) {
                                     // Deny by default, per datagram; a refused flow is audited once.
                                     const SiteResource& res = self->resources_[i];
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
      s->udp_.push_back(std::move(u));
    }
    P2P_LOG(kInfo, "site.resource")
        .Kv("name", r.name)
        .Kv("address", absl::StrCat(r.address.ToString(), ":", r.port))
        .Kv("protocol", ProtocolName(r.protocol))
        .Kv("target", r.target.ToString());
  }

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

void Site::StartSplice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, proxy::Splice::DoneFn done) {
  auto splice = std::make_unique<proxy::Splice>(
      std::move(a), std::move(b),
      [this, done = std::move(done)](proxy::Splice* sp, const proxy::Splice::Stats& st,
                                     const absl::Status& status) mutable {
        if (done) done(sp, st, status);
        auto sit = splices_.find(sp);
        if (sit != splices_.end()) {
          loop_.DeferDelete(std::move(sit->second));
          splices_.erase(sit);
        }
      });
  proxy::Splice* raw = splice.get();
  splices_.emplace(raw, std::move(splice));
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

void Site::OnAcceptHttps(size_t index, HttpsSession::Mode mode, std::unique_ptr<net::Stream> conn,
                         const base::IpAddress& peer, uint16_t peer_port) {
  ++counters_.tcp_accepted;
  const SiteResource& r = resources_[index];
  PeerContext who = PeerOf(peer, peer_port);
  if (!Admit(r, conn, who) || !AdmitTcp(r, conn, who)) return;
  std::string key = who.identity.peer_key;
  auto session = std::make_unique<HttpsSession>(loop_, *https_[index], *audit_, mode, std::move(conn),
                                                std::move(who), [this, key](HttpsSession* done) {
                                                  peer_limits_->Release(key, PeerLimits::Kind::kTcp);
                                                  auto it = sessions_.find(done);
                                                  if (it == sessions_.end()) return;
                                                  loop_.DeferDelete(std::move(it->second));
                                                  sessions_.erase(it);
                                                });
  HttpsSession* raw = session.get();
  sessions_.emplace(raw, std::move(session));
  raw->Start();
}

absl::Status Site::LoadCertificate(HttpsResource& h) {
  const SiteResource& r = *h.config;
  auto read = [&r](const std::string& path, const char* field) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("resource ", r.name, ": ", field, ": cannot read ", path));
    }
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  P2P_ASSIGN_OR_RETURN(std::string chain, read(r.certificate_file, "certificate_file"));
  P2P_ASSIGN_OR_RETURN(std::string key, read(r.key_file, "key_file"));
  auto cert = tls::ServerCertificate::FromPem(chain, key, tls::ServerTlsOptions{});
  OPENSSL_cleanse(key.data(), key.size());
  if (!cert.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": ", r.certificate_file, ": ",
                                                   cert.status().message()));
  }
  for (const auto& name : r.hostnames) {
    absl::Status put = h.certs.Put(name, *cert);
    if (!put.ok()) return absl::InvalidArgumentError(absl::StrCat("resource ", r.name, ": ", put.message()));
  }
  if (r.default_certificate) h.certs.SetDefault(*cert);
  return absl::OkStatus();
}

absl::Status Site::ReloadCertificates() {
  absl::Status first;
  for (auto& h : https_) {
    if (!h) continue;
    absl::Status st = LoadCertificate(*h);
    if (st.ok()) {
      P2P_LOG(kInfo, "site.certificate_reload").Kv("resource", h->config->name).Kv("result", "ok");
    } else {
      P2P_LOG(kWarn, "site.certificate_reload").Kv("resource", h->config->name).Kv("result", st.message());
    }
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

void Site::SpliceUpgraded(std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                          std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending) {
  if (!client_pending.empty()) upstream->WriteOwned(std::move(client_pending));
  if (!upstream_pending.empty()) client->WriteOwned(std::move(upstream_pending));
  StartSplice(std::move(client), std::move(upstream), nullptr);
}

void Site::OnAccept(const SiteResource& r, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                    uint16_t peer_port) {
  ++counters_.tcp_accepted;
  PeerContext who = PeerOf(peer, peer_port);
  if (!Admit(r, conn, who) || !AdmitTcp(r, conn, who)) return;
  // The overlay connection waits, unread (its window closes), while we dial the target.
  const uint64_t id = next_dial_id_++;
  dialing_.emplace(id, std::move(conn));
  const absl::Time started = absl::Now();
  std::weak_ptr<bool> alive = alive_;
  const SiteResource* res = &r;
  net::TcpStream::Connect(loop_, r.target, [this, alive, id, started, res, who](
                                               absl::StatusOr<std::unique_ptr<net::TcpStream>> target) {
    if (alive.expired()) return;
    auto it = dialing_.find(id);
    if (it == dialing_.end()) return;
    std::unique_ptr<net::Stream> overlay = std::move(it->second);
    dialing_.erase(it);
    if (!target.ok()) {
      peer_limits_->Release(who.identity.peer_key, PeerLimits::Kind::kTcp);
      ++counters_.tcp_target_failed;
      P2P_LOG(kWarn, "site.target_failed")
          .Kv("resource", res->name)
          .Kv("peer", absl::StrCat(who.address, ":", who.port))
          .Kv("error", target.status().message());
      AuditConnection(*res, who, started, 0, 0, true, absl::StrCat("target: ", target.status().message()));
      overlay->Close();
      return;
    }
    StartSplice(
        std::move(overlay), std::move(*target),
        [this, started, res, who](proxy::Splice*, const proxy::Splice::Stats& st, const absl::Status& status) {
          peer_limits_->Release(who.identity.peer_key, PeerLimits::Kind::kTcp);
          AuditConnection(*res, who, started, st.a_to_b, st.b_to_a, true,
                          status.ok() ? std::string() : std::string(status.message()));
          counters_.bytes_to_targets += st.a_to_b;
          counters_.bytes_from_targets += st.b_to_a;
          status.ok() ? ++counters_.tcp_completed : ++counters_.tcp_failed;
          P2P_LOG(kInfo, "site.conn")
              .Kv("resource", res->name)
              .Kv("peer", absl::StrCat(who.address, ":", who.port))
              .Kv("bytes_in", st.a_to_b)
              .Kv("bytes_out", st.b_to_a)
              .Kv("duration_ms", absl::ToInt64Milliseconds(absl::Now() - started))
              .Kv("result", status.ok() ? "ok" : std::string(status.message()));
        });
  });
}

}  // namespace p2proxy::site
