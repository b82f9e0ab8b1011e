// wg_client.cc: WgClient.
#include "client/wg_client.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "crypto/keys.h"
#include "tunnel/uapi_bridge.h"

namespace p2proxy::client {

WgClient::~WgClient() {
  uapi_.reset();
  tun_.reset();
  transport_.reset();
}

absl::StatusOr<std::unique_ptr<WgClient>> WgClient::Create(net::Loop& loop, base::Clock& clock,
                                                           const wg::WgQuickConfig& config,
                                                           const Options& options) {
  std::unique_ptr<WgClient> c(new WgClient());
  WgClient* self = c.get();

  // The tunnel's UDP side first: if the port is taken, fail before touching interfaces.
  tunnel::WgTransport::Options topts;
  topts.listen_port = config.listen_port.value_or(0);
  topts.mtu = config.mtu.value_or(wg::kDefaultMtu);
  auto transport = tunnel::WgTransport::Create(loop, clock, std::move(topts), [self](wg::Peer&, base::ByteSpan pkt) {
    if (self->tun_) self->tun_->Write(pkt);
  });
  if (!transport.ok()) return transport.status();
  c->transport_ = std::move(*transport);

  auto tun = net::TunDevice::Open(loop, options.interface_name, [self](absl::Span<const base::ByteSpan> pkts) {
    self->transport_->SendPackets(pkts);
  });
  if (!tun.ok()) return tun.status();
  c->tun_ = std::move(*tun);
  auto step = [&](absl::Status st, absl::string_view what) -> absl::Status {
    if (st.ok()) return st;
    return absl::Status(st.code(), absl::StrCat("interface ", c->tun_->name(), ": ", what, ": ", st.message()));
  };
  P2P_RETURN_IF_ERROR(step(c->tun_->SetMtu(static_cast<int>(config.mtu.value_or(wg::kDefaultMtu))), "MTU"));
  for (const auto& addr : config.addresses) {
    P2P_RETURN_IF_ERROR(step(c->tun_->AddAddress(addr.address, addr.length), absl::StrCat("Address ", addr.ToString())));
  }
  P2P_RETURN_IF_ERROR(step(c->tun_->SetUp(true), "up"));

  wg::Device& dev = c->transport_->device();
  dev.SetPrivateKey(config.private_key);
  for (const auto& p : config.peers) {
    wg::PeerConfig pc;
    pc.public_key = p.public_key;
    pc.preshared_key = p.preshared_key;
    pc.endpoint = p.endpoint;
    pc.persistent_keepalive = p.persistent_keepalive;
    pc.allowed_ips = p.allowed_ips;
    auto added = dev.AddPeer(pc);
    if (!added.ok()) return added.status();
    if (!options.install_routes) continue;
    for (const auto& prefix : p.allowed_ips) {
      if (prefix.length == 0) {
        P2P_LOG(kWarn, "client.route_skipped").Kv("prefix", prefix.ToString())
            .Kv("why", "a default route needs policy routing, which p2proxy does not set up");
        continue;
      }
      auto st = c->tun_->AddRoute(prefix);
      if (!st.ok() && st.code() != absl::StatusCode::kAlreadyExists) {
        return step(st, absl::StrCat("route ", prefix.ToString()));
      }
    }
  }
  c->transport_->Kick();

  auto uapi = tunnel::UapiServer::Listen(
      loop, absl::StrCat(options.uapi_dir, "/", c->tun_->name(), ".sock"),
      tunnel::UapiServer::Handler{
          [self] { return tunnel::UapiStateOf(*self->transport_); },
          [self](const wg::UapiSet& set) { return tunnel::ApplyUapiSet(*self->transport_, set); }});
  if (!uapi.ok()) return uapi.status();
  c->uapi_ = std::move(*uapi);
  P2P_LOG(kInfo, "client.up")
      .Kv("interface", c->tun_->name())
      .Kv("public_key", crypto::KeyToBase64(dev.identity().public_key))
      .Kv("listen_port", c->transport_->listen_port())
      .Kv("peers", config.peers.size());
  return c;
}

absl::Status WgClient::AddLocalAddress(const base::IpAddress& address) {
  absl::Status st = tun_->AddHostAddress(address);
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat("interface ", tun_->name(), ": address ", address.ToString(),
                                              ": ", st.message()));
}

}  // namespace p2proxy::client
