// wg_client.cc: WgClient.
#include "client/wg_client.h"

#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "tunnel/uapi_bridge.h"

namespace p2proxy::client {

WgClient::~WgClient() {
  if (selector_timer_) selector_timer_->Stop();
  uapi_.reset();
  tun_.reset();
  stack_.reset();
  transport_.reset();
}

absl::Status WgClient::Step(const absl::Status& st, absl::string_view what) const {
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat("interface ", interface_name(), ": ", what, ": ", st.message()));
}

absl::StatusOr<std::unique_ptr<WgClient>> WgClient::Start(net::Loop& loop, base::Clock& clock,
                                                          const crypto::Key& private_key,
                                                          const std::vector<base::IpPrefix>& addresses,
                                                          uint16_t listen_port, uint32_t mtu,
                                                          const Options& options) {
  std::unique_ptr<WgClient> c(new WgClient());
  WgClient* self = c.get();
  c->options_ = options;

  // The tunnel's UDP side first: if the port is taken, fail before touching interfaces.
  tunnel::WgTransport::Options topts;
  topts.listen_port = listen_port;
  topts.mtu = mtu;
  if (options.userspace) topts.after_batch = [self] { self->InputPending(); };
  auto transport = tunnel::WgTransport::Create(loop, clock, std::move(topts), [self](wg::Peer&, base::ByteSpan pkt) {
    // Answers to the site selector's probes stop here; everything else goes to the kernel (or
    // the userspace stack).
    if (!self->selector_.empty() && self->selector_.OnDelivered(pkt, self->clock_->Monotonic())) return;
    if (self->tun_) {
      self->tun_->Write(pkt);
    } else if (self->stack_) {
      self->QueueInput(pkt);
    }
  });
  if (!transport.ok()) return transport.status();
  c->transport_ = std::move(*transport);

  c->clock_ = &clock;
  c->selector_timer_ = std::make_unique<net::Timer>(loop);
  auto to_overlay = [self](absl::Span<const base::ByteSpan> pkts) {
    if (self->selector_.empty()) {
      self->transport_->SendPackets(pkts);
    } else {
      self->FromTun(pkts);
    }
  };
  if (options.userspace) {
    if (addresses.empty() || addresses[0].address.family != base::IpAddress::kV4) {
      return absl::InvalidArgumentError("userspace mode needs an IPv4 node address (Address = 100.96.0.x/32)");
    }
    c->in_arena_.resize(kInSlots * kInSlotSize);
    c->in_batch_.resize(kInSlots);
    auto stack = stack::NetStack::Create(loop, addresses[0].address, mtu, to_overlay);
    if (!stack.ok()) return stack.status();
    c->stack_ = std::move(*stack);
    c->transport_->device().SetPrivateKey(private_key);
    return c;
  }
  auto tun = net::TunDevice::Open(loop, options.interface_name, to_overlay);
  if (!tun.ok()) return tun.status();
  c->tun_ = std::move(*tun);
  P2P_RETURN_IF_ERROR(c->Step(c->tun_->SetMtu(static_cast<int>(mtu)), "MTU"));
  for (const auto& addr : addresses) {
    P2P_RETURN_IF_ERROR(c->Step(c->tun_->AddAddress(addr.address, addr.length), absl::StrCat("Address ", addr.ToString())));
  }
  P2P_RETURN_IF_ERROR(c->Step(c->tun_->SetUp(true), "up"));
  c->transport_->device().SetPrivateKey(private_key);
  return c;
}

absl::Status WgClient::Finish(net::Loop& loop, const Options& options) {
  WgClient* self = this;
  if (options.uapi_dir.empty()) {
    LogUp();
    return absl::OkStatus();
  }
  auto uapi = tunnel::UapiServer::Listen(
      loop, absl::StrCat(options.uapi_dir, "/", interface_name(), ".sock"),
      tunnel::UapiServer::Handler{
          [self] { return tunnel::UapiStateOf(*self->transport_); },
          [self](const wg::UapiSet& set) { return tunnel::ApplyUapiSet(*self->transport_, set); }});
  if (!uapi.ok()) return uapi.status();
  uapi_ = std::move(*uapi);
  LogUp();
  return absl::OkStatus();
}

void WgClient::LogUp() const {
  P2P_LOG(kInfo, "client.up")
      .Kv("mode", tun_ ? "tun" : "userspace")
      .Kv("interface", interface_name())
      .Kv("public_key", crypto::KeyToBase64(transport_->device().identity().public_key))
      .Kv("listen_port", transport_->listen_port())
      .Kv("peers", peers_.size());
}

absl::StatusOr<std::unique_ptr<WgClient>> WgClient::Create(net::Loop& loop, base::Clock& clock,
                                                           const wg::WgQuickConfig& config,
                                                           const Options& options) {
  P2P_ASSIGN_OR_RETURN(std::unique_ptr<WgClient> c,
                       Start(loop, clock, config.private_key, config.addresses, config.listen_port.value_or(0),
                             config.mtu.value_or(wg::kDefaultMtu), options));
  std::vector<ClientPeer> peers;
  peers.reserve(config.peers.size());
  for (const auto& p : config.peers) {
    ClientPeer q;
    q.public_key = p.public_key;
    q.preshared_key = p.preshared_key;
    q.allowed_ips = p.allowed_ips;
    q.endpoint = p.endpoint;
    q.persistent_keepalive = p.persistent_keepalive;
    peers.push_back(std::move(q));
  }
  P2P_RETURN_IF_ERROR(c->ApplyPeers(peers).status());
  P2P_RETURN_IF_ERROR(c->Finish(loop, options));
  return c;
}

absl::StatusOr<std::unique_ptr<WgClient>> WgClient::CreateManaged(net::Loop& loop, base::Clock& clock,
                                                                  const ManagedClient& self,
                                                                  const std::vector<ClientPeer>& peers,
                                                                  const Options& options) {
  if (self.node_address.family != base::IpAddress::kV4) {
    return absl::InvalidArgumentError("managed client: the node address is not an IPv4 address");
  }
  P2P_ASSIGN_OR_RETURN(std::unique_ptr<WgClient> c,
                       Start(loop, clock, self.private_key, {base::IpPrefix::Make(self.node_address, 32)},
                             self.listen_port, self.mtu, options));
  c->node_address_ = self.node_address;
  P2P_RETURN_IF_ERROR(c->ApplyPeers(peers).status());
  P2P_RETURN_IF_ERROR(c->Finish(loop, options));
  return c;
}

absl::StatusOr<WgClient::ApplyResult> WgClient::ApplyPeers(const std::vector<ClientPeer>& peers) {
  wg::Device& dev = transport_->device();
  // Everything that can be refused is checked before anything changes.
  std::set<crypto::PublicKey> keys;
  for (size_t i = 0; i < peers.size(); ++i) {
    if (peers[i].public_key == dev.identity().public_key) {
      return absl::InvalidArgumentError(
          absl::StrCat("peers[", i, "]: the client's own public key; a node is not its own peer"));
    }
    if (!keys.insert(peers[i].public_key).second) {
      return absl::InvalidArgumentError(absl::StrCat("peers[", i, "]: the same key as an earlier peer"));
    }
  }

  ApplyResult result;
  const PeerPlan plan = PlanPeers(peers_, peers);
  const RoutePlan routes = PlanRoutes(peers_, peers);
  P2P_RETURN_IF_ERROR(ApplyPeerPlan(dev, plan, peers));
  peers_ = peers;
  transport_->Kick();
  result.peers_added = plan.add.size();
  result.peers_removed = plan.remove.size();
  result.peers_updated = plan.update.size();
  result.peers_unchanged = plan.num_unchanged;

  absl::Status first_error;
  if (options_.install_routes && tun_) {
    for (const base::IpPrefix& prefix : routes.remove) {
      auto owned = own_routes_.find(prefix.ToString());
      if (owned == own_routes_.end()) continue;  // it was there before us: not ours to remove
      absl::Status st = tun_->RemoveRoute(prefix);
      if (st.ok() || absl::IsNotFound(st)) {
        own_routes_.erase(owned);
        if (st.ok()) ++result.routes_removed;
        continue;
      }
      P2P_LOG(kWarn, "client.route_remove_failed").Kv("prefix", prefix.ToString()).Kv("error", st.message());
      if (first_error.ok()) first_error = st;
    }
    for (const base::IpPrefix& prefix : routes.skipped) {
      P2P_LOG(kWarn, "client.route_skipped").Kv("prefix", prefix.ToString())
          .Kv("why", "a default route needs policy routing, which p2proxy does not set up");
    }
    for (const base::IpPrefix& prefix : routes.add) {
      absl::Status st = tun_->AddRoute(prefix);
      if (st.ok()) {
        own_routes_.insert(prefix.ToString());
        ++result.routes_added;
        continue;
      }
      if (absl::IsAlreadyExists(st)) continue;  // someone else's route to the same place
      P2P_LOG(kWarn, "client.route_failed").Kv("prefix", prefix.ToString()).Kv("error", st.message());
      if (first_error.ok()) first_error = Step(st, absl::StrCat("route ", prefix.ToString()));
    }
  }
  P2P_LOG(kInfo, "client.peers_applied")
      .Kv("added", result.peers_added)
      .Kv("removed", result.peers_removed)
      .Kv("updated", result.peers_updated)
      .Kv("unchanged", result.peers_unchanged)
      .Kv("routes_added", result.routes_added)
      .Kv("routes_removed", result.routes_removed);
  if (!first_error.ok()) return first_error;
  return result;
}

absl::Status WgClient::AddLocalAddress(const base::IpAddress& address) {
  if (!tun_) return absl::FailedPreconditionError("userspace mode has no interface to add an address to");
  absl::Status st = tun_->AddHostAddress(address);
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat("interface ", tun_->name(), ": address ", address.ToString(),
                                              ": ", st.message()));
}

void WgClient::SetSharedResources(const std::vector<SharedResource>& shared) {
  if (node_address_.family != base::IpAddress::kV4) return;
  const bool was_empty = selector_.empty();
  selector_.Configure(node_address_, shared, clock_->Monotonic());
  if (selector_.empty()) {
    selector_timer_->Stop();
  } else if (was_empty) {
    selector_timer_->StartRepeating(absl::Milliseconds(50), [this] { SelectorTick(); });
    SelectorTick();
  }
  P2P_LOG(kInfo, "client.shared_resources").Kv("count", shared.size());
}

void WgClient::SelectorTick() {
  wg::Device& dev = transport_->device();
  for (const SiteSelector::Probe& probe : selector_.Tick(clock_->Monotonic())) {
    wg::Peer* peer = dev.FindPeer(probe.site);
    if (peer == nullptr) continue;
    if (probe.suspect) dev.InitiateHandshake(peer);
    base::ByteSpan span(probe.packet.data(), probe.packet.size());
    dev.SendPacketsTo(peer, absl::MakeConstSpan(&span, 1));
  }
  for (const SiteSelector::Event& e : selector_.TakeEvents()) {
    const base::LogLevel level = e.what == "site_down" ? base::LogLevel::kWarn : base::LogLevel::kInfo;
    if (!base::LogEnabled(level)) continue;
    base::LogLine line(level, absl::StrCat("client.", e.what));
    line.Kv("site", e.site);
    if (!e.resource.empty()) line.Kv("resource", e.resource);
  }
  transport_->Kick();
}

void WgClient::FromTun(absl::Span<const base::ByteSpan> packets) {
  wg::Device& dev = transport_->device();
  const absl::Duration now = clock_->Monotonic();
  routed_batch_.clear();
  for (base::ByteSpan pkt : packets) {
    std::optional<crypto::PublicKey> site = selector_.Route(pkt, now);
    wg::Peer* peer = site ? dev.FindPeer(*site) : nullptr;
    if (peer == nullptr) {
      routed_batch_.push_back(pkt);
      continue;
    }
    dev.SendPacketsTo(peer, absl::MakeConstSpan(&pkt, 1));
  }
  if (!routed_batch_.empty()) transport_->SendPackets(routed_batch_);
}

void WgClient::QueueInput(base::ByteSpan pkt) {
  if (in_count_ == kInSlots || pkt.size() > kInSlotSize) InputPending();
  if (pkt.size() > kInSlotSize) {
    stack_->Input(absl::MakeConstSpan(&pkt, 1));
    return;
  }
  uint8_t* slot = in_arena_.data() + in_count_ * kInSlotSize;
  std::memcpy(slot, pkt.data(), pkt.size());
  in_batch_[in_count_++] = base::ByteSpan(slot, pkt.size());
}

void WgClient::InputPending() {
  if (in_count_ == 0 || !stack_) return;
  const size_t n = in_count_;
  in_count_ = 0;
  stack_->Input(absl::MakeConstSpan(in_batch_.data(), n));
}

}  // namespace p2proxy::client
