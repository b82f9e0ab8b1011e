// site.cc: Site.
#include "site/site.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "crypto/keys.h"
#include "net/tcp.h"
#include "tunnel/uapi_bridge.h"

namespace p2proxy::site {

Site::~Site() {
  *alive_ = false;
  splices_.clear();
  dialing_.clear();
  udp_.clear();
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
  }

  for (size_t i = 0; i < s->resources_.size(); ++i) {
    const SiteResource& r = s->resources_[i];
    s->stack_->Serve(base::IpPrefix::Make(r.address, 32));
    if (r.protocol == Protocol::kTcp) {
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
      auto ep = s->stack_->BindUdp(r.address, r.port,
                                   [ur](base::ByteSpan data, const base::IpAddress& from, uint16_t port) {
                                     ur->relay->FromClient(data, from, port);
                                   });
      if (!ep.ok()) return absl::Status(ep.status().code(), absl::StrCat("resource ", r.name, ": ", ep.status().message()));
      u->endpoint = std::move(*ep);
      s->udp_.push_back(std::move(u));
    }
    P2P_LOG(kInfo, "site.resource")
        .Kv("name", r.name)
        .Kv("address", absl::StrCat(r.address.ToString(), ":", r.port))
        .Kv("protocol", r.protocol == Protocol::kTcp ? "tcp" : "udp")
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

void Site::OnAccept(const SiteResource& r, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                    uint16_t peer_port) {
  ++counters_.tcp_accepted;
  // The overlay connection waits, unread (its window closes), while we dial the target.
  const uint64_t id = next_dial_id_++;
  dialing_.emplace(id, std::move(conn));
  const std::string resource = r.name;
  const std::string from = absl::StrCat(peer.ToString(), ":", peer_port);
  const absl::Time started = absl::Now();
  std::weak_ptr<bool> alive = alive_;
  net::TcpStream::Connect(loop_, r.target, [this, alive, id, resource, from, started](
                                               absl::StatusOr<std::unique_ptr<net::TcpStream>> target) {
    if (alive.expired()) return;
    auto it = dialing_.find(id);
    if (it == dialing_.end()) return;
    std::unique_ptr<net::Stream> overlay = std::move(it->second);
    dialing_.erase(it);
    if (!target.ok()) {
      ++counters_.tcp_target_failed;
      P2P_LOG(kWarn, "site.target_failed").Kv("resource", resource).Kv("peer", from).Kv("error", target.status().message());
      overlay->Close();
      return;
    }
    auto splice = std::make_unique<proxy::Splice>(
        std::move(overlay), std::move(*target),
        [this, resource, from, started](proxy::Splice* sp, const proxy::Splice::Stats& st, const absl::Status& status) {
          counters_.bytes_to_targets += st.a_to_b;
          counters_.bytes_from_targets += st.b_to_a;
          status.ok() ? ++counters_.tcp_completed : ++counters_.tcp_failed;
          P2P_LOG(kInfo, "site.conn")
              .Kv("resource", resource)
              .Kv("peer", from)
              .Kv("bytes_in", st.a_to_b)
              .Kv("bytes_out", st.b_to_a)
              .Kv("duration_ms", absl::ToInt64Milliseconds(absl::Now() - started))
              .Kv("result", status.ok() ? "ok" : std::string(status.message()));
          auto sit = splices_.find(sp);
          if (sit != splices_.end()) {
            loop_.DeferDelete(std::move(sit->second));
            splices_.erase(sit);
          }
        });
    proxy::Splice* raw = splice.get();
    splices_.emplace(raw, std::move(splice));
    raw->Start();
  });
}

}  // namespace p2proxy::site
