// client_node.cc: ClientNode.
#include "client/client_node.h"

#include <unistd.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "client/range_check.h"
#include "client/snapshot_config.h"
#include "crypto/x25519.h"
#include "nat/relay_frame.h"

namespace p2proxy::client {

namespace {

// CheckMachineRanges refuses overlay ranges that the machine already routes elsewhere or holds
// as an interface address (another VPN on 100.64.0.0/10, a Docker network): the TUN's routes
// would lose to theirs or break them. Harmless overlaps are logged. Only TUN mode needs it.
absl::Status CheckMachineRanges(const std::vector<OverlayRange>& ranges, const std::string& own_interface) {
  auto routes = ReadSystemRoutes();
  auto addrs = ReadSystemAddresses();
  if (!routes.ok() || !addrs.ok()) {
    P2P_LOG(kWarn, "client.range_check_skipped")
        .Kv("error", !routes.ok() ? routes.status().message() : addrs.status().message());
    return absl::OkStatus();
  }
  const RangeCheck r = CheckRanges(ranges, *routes, *addrs, own_interface);
  for (const std::string& w : r.warnings) P2P_LOG(kWarn, "client.range_overlap").Kv("what", w);
  if (r.refusals.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("address range clash: ", absl::StrJoin(r.refusals, "; ")));
}

std::string DefaultInterface(const std::string& config_path) {
  std::string base = config_path.substr(config_path.rfind('/') + 1);
  absl::string_view name = base;
  if (absl::ConsumeSuffix(&name, ".conf") && !name.empty() && name.size() <= 15) return std::string(name);
  return "p2p0";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ClientNode>> ClientNode::Start(net::Loop& loop, ClientNodeOptions options) {
  if (options.wg_config && !options.state_dir.empty()) {
    return absl::InvalidArgumentError(
        "--wg_config (static WireGuard mode) and --state_dir (managed mode) exclude each other");
  }
  if (!options.wg_config && !options.config && options.state_dir.empty()) {
    return absl::InvalidArgumentError("--wg_config=FILE, --config=FILE or --state_dir=DIR is required (see --help)");
  }
  const bool any_proxy = options.proxies.socks5 || options.proxies.http || !options.proxies.forwards.empty();
  if (options.userspace && !options.wg_config && options.state_dir.empty()) {
    return absl::InvalidArgumentError("--userspace needs --state_dir=DIR (managed) or --wg_config=FILE (static)");
  }
  if (options.userspace && !any_proxy && !options.embedded) {
    return absl::InvalidArgumentError(
        "--userspace with every proxy off: nothing could reach the overlay; set --socks5, --http_proxy or --forward");
  }
  std::unique_ptr<ClientNode> n(new ClientNode(loop));
  n->options_ = std::move(options);
  absl::Status st = !n->options_.state_dir.empty() ? n->StartManaged()
                    : n->options_.wg_config         ? n->StartStatic()
                                                    : n->StartResolverOnly();
  if (st.ok()) st = n->StartProxies();
  if (!st.ok()) {
    n->Stop();
    return st;
  }
  if (n->wg_ && (!n->options_.status_file.empty() || n->agent_)) {
    n->Tick();
    n->status_timer_.StartRepeating(absl::Seconds(1), [self = n.get()] { self->Tick(); });
  }
  return n;
}

ClientNode::~ClientNode() { Stop(); }

void ClientNode::Stop() {
  if (stopped_) return;
  stopped_ = true;
  status_timer_.Stop();
  if (status_written_) unlink(options_.status_file.c_str());
  proxies_.reset();
  overlay_.reset();
  uplink_.reset();
  agent_.reset();
  dns_.reset();  // the OS's DNS configuration is back before the interface goes
  wg_.reset();
}

absl::Status ClientNode::StartManaged() {
  control::NodeAgentOptions o;
  o.state_dir = options_.state_dir;
  o.kind = control::wire::NODE_KIND_CLIENT;
  o.server = options_.server;
  o.token = options_.token;
  o.requested_name = options_.requested_name;
  P2P_ASSIGN_OR_RETURN(agent_, control::NodeAgent::OpenAndWait(loop_, std::move(o), options_.enroll_limit));
  const crypto::PublicKey own = crypto::PublicFromPrivate(agent_->wireguard_key());
  const ClientConfig local = options_.config.value_or(ClientConfig());
  ClientConfig names = local;
  std::vector<ClientPeer> peers;
  std::vector<SharedResource> shared;
  // The deployment's ranges: from enrollment (servers before M1.7 did not say: the defaults),
  // then from the stored snapshot.
  base::IpPrefix node_range = DefaultNodeRange();
  if (auto r = base::IpPrefix::Parse(agent_->enrolled().node_range()); r.ok()) node_range = *r;
  if (auto r = base::IpPrefix::Parse(agent_->enrolled().resource_range()); r.ok()) names.resource_range = *r;
  if (agent_->stored_snapshot()) {
    auto init = ClientConfigFromSnapshot(*agent_->stored_snapshot(), own, local);
    if (init.ok()) {
      peers = init->peers;
      shared = init->shared;
      names = init->names;
      node_range = init->node_range;
    } else {
      P2P_LOG(kWarn, "client.stored_snapshot_unusable").Kv("error", init.status().message());
    }
    NoteSites(*agent_->stored_snapshot());
  }
  auto address = base::IpAddress::Parse(agent_->enrolled().node_address());
  if (!address.ok()) return absl::DataLossError("the state dir's node address does not parse: enroll again");
  ManagedClient self;
  self.private_key = agent_->wireguard_key();
  self.node_address = *address;
  self.listen_port = options_.listen_port;
  WgClient::Options wo;
  wo.interface_name = options_.interface_name.empty() ? "p2p0" : options_.interface_name;
  wo.uapi_dir = options_.uapi_dir;
  wo.install_routes = options_.install_routes;
  wo.userspace = options_.userspace;
  if (!options_.userspace) {
    const std::string fix = "the deployment's ranges are set at `p2proxy-server init --node_range --resource_range`";
    P2P_RETURN_IF_ERROR(CheckMachineRanges(
        {{"node_range", node_range, fix}, {"resource_range", names.resource_range, fix}}, wo.interface_name));
  }
  P2P_ASSIGN_OR_RETURN(wg_, WgClient::CreateManaged(loop_, base::RealClock::Get(), self, peers, wo));
  uplink_ = std::make_unique<uplink::ServerUplink>(
      loop_, wg_->transport(),
      [this](control::TlsDialCallback done) { return agent_->DialWireGuardTls(std::move(done)); },
      [this](bool over_tls) { OnUplinkChanged(over_tls); });
  wg_->SetSharedResources(shared);
  names_.Set(names.zones, names.resources);
  // The resolver: on the resource range's second address (100.96.128.1) in TUN mode; in
  // userspace mode only where the config puts it (e.g. 127.0.0.1:5353), since the proxies
  // resolve names themselves.
  if (!options_.userspace || local.dns.listen) {
    const base::SocketAddress listen = local.dns.listen.value_or(
        *base::SocketAddress::FromIp(ResolverAddressIn(names.resource_range).ToString(), kDefaultDnsPort));
    auto ip = base::IpAddress::Parse(listen.IpString());
    if (!options_.userspace && ip.ok() && names.resource_range.Contains(*ip)) {
      absl::Status st = wg_->AddLocalAddress(*ip);
      if (!st.ok()) return absl::Status(st.code(), absl::StrCat("resolver address: ", st.message()));
    }
    DnsService::Options dopts;
    dopts.live_zones = true;
    P2P_ASSIGN_OR_RETURN(dns_, DnsService::Start(loop_, base::RealClock::Get(), names, listen, wg_->interface_name(), dopts));
  }
  status_inputs_.managed = true;
  status_inputs_.server_address = options_.server;
  status_inputs_.node_id = agent_->enrolled().node_id();
  status_inputs_.node_name = agent_->enrolled().name();
  status_inputs_.node_address = agent_->enrolled().node_address();
  agent_->Run([this, own, local](const control::wire::Snapshot& snapshot) -> absl::Status {
    if (!wg_) return absl::UnavailableError("the client is stopping");
    auto next = ClientConfigFromSnapshot(snapshot, own, local);
    if (!next.ok()) return next.status();
    NoteSites(snapshot);
    // Peers (and their routes) first, so a name never resolves before its route exists.
    auto applied = wg_->ApplyPeers(next->peers);
    if (!applied.ok()) return applied.status();
    wg_->SetSharedResources(next->shared);
    names_.Set(next->names.zones, next->names.resources);
    if (!dns_) return absl::OkStatus();
    return dns_->ApplyNames(next->names.zones, next->names.resources);
  });
  return absl::OkStatus();
}

absl::Status ClientNode::StartStatic() {
  const wg::WgQuickConfig& config = *options_.wg_config;
  WgClient::Options wo;
  wo.interface_name = options_.interface_name.empty() ? DefaultInterface(options_.wg_config_path) : options_.interface_name;
  if (options_.config && !options_.userspace) {
    P2P_RETURN_IF_ERROR(CheckMachineRanges(
        {{"resource_range", options_.config->resource_range,
          "set another resource_range in --config (and the resources' addresses in it)"}},
        wo.interface_name));
  }
  wo.uapi_dir = options_.uapi_dir;
  wo.install_routes = options_.install_routes;
  wo.userspace = options_.userspace;
  P2P_ASSIGN_OR_RETURN(wg_, WgClient::Create(loop_, base::RealClock::Get(), config, wo));
  if (!config.addresses.empty()) status_inputs_.node_address = config.addresses[0].address.ToString();
  if (options_.config) names_.Set(options_.config->zones, options_.config->resources);
  if (options_.config && !(options_.userspace && !options_.config->dns.listen)) return StartResolverOnly();
  return absl::OkStatus();
}

absl::Status ClientNode::StartResolverOnly() {
  const ClientConfig& c = *options_.config;
  std::optional<base::SocketAddress> listen = c.dns.listen;
  if (!listen) {
    if (!wg_) return absl::InvalidArgumentError("--config: dns.listen is required without --wg-config (resolver only)");
    listen = *base::SocketAddress::Parse(kDefaultResolver);
  }
  // An overlay address (the default 100.96.128.1) lives on the TUN interface.
  auto ip = base::IpAddress::Parse(listen->IpString());
  if (wg_ && !options_.userspace && ip.ok() && c.resource_range.Contains(*ip)) {
    absl::Status st = wg_->AddLocalAddress(*ip);
    if (!st.ok()) return absl::Status(st.code(), absl::StrCat("resolver address: ", st.message()));
  }
  P2P_ASSIGN_OR_RETURN(dns_, DnsService::Start(loop_, base::RealClock::Get(), c, *listen, wg_ ? wg_->interface_name() : ""));
  return absl::OkStatus();
}

absl::Status ClientNode::StartProxies() {
  if (!wg_) {
    if (options_.proxies.socks5 || options_.proxies.http || !options_.proxies.forwards.empty()) {
      return absl::InvalidArgumentError("--socks5, --http_proxy and --forward need the tunnel: --state_dir or --wg_config");
    }
    return absl::OkStatus();
  }
  // Literal addresses only where the tunnel goes.
  names_.SetRoutable([this](const base::IpAddress& a) { return wg_ && wg_->transport().device().allowed_ips().Lookup(a) != nullptr; });
  // Through the userspace stack, or through the kernel and the TUN.
  overlay_ = wg_->stack() != nullptr ? StackOverlay(*wg_->stack()) : KernelOverlay(loop_);
  if (!options_.proxies.socks5 && !options_.proxies.http && options_.proxies.forwards.empty()) return absl::OkStatus();
  P2P_ASSIGN_OR_RETURN(proxies_, LocalProxies::Start(loop_, *overlay_, names_, options_.proxies));
  return absl::OkStatus();
}

void ClientNode::Dial(absl::string_view host, uint16_t port, Overlay::ConnectFn done) {
  if (!overlay_) {
    loop_.Post([done = std::move(done)]() mutable { done(absl::FailedPreconditionError("the client is not running")); });
    return;
  }
  absl::StatusOr<base::IpAddress> addr = names_.Resolve(host);
  if (!addr.ok()) {
    loop_.Post([done = std::move(done), st = addr.status()]() mutable { done(st); });
    return;
  }
  overlay_->DialTcp(*addr, port, std::move(done));
}

void ClientNode::NoteSites(const control::wire::Snapshot& snapshot) {
  constexpr size_t key_size = std::tuple_size_v<crypto::PublicKey>;
  site_ids_.clear();
  std::map<crypto::PublicKey, SitePath> paths;
  for (const auto& p : snapshot.peers()) {
    if (p.kind() == control::wire::NODE_KIND_SERVER) {
      if (auto ep = base::SocketAddress::Parse(p.endpoint()); ep.ok()) relay_server_ = *ep;
      if (p.public_key().size() == key_size) {
        crypto::PublicKey key;
        std::copy(p.public_key().begin(), p.public_key().end(), key.begin());
        server_key_ = key;
      }
      continue;
    }
    if (p.kind() == control::wire::NODE_KIND_SITE && p.public_key().size() == key_size) {
      crypto::PublicKey key;
      std::copy(p.public_key().begin(), p.public_key().end(), key.begin());
      site_ids_[key] = p.node_id();
      auto prefix = p.allowed_ips_size() > 0 ? base::IpPrefix::Parse(p.allowed_ips(0))
                                             : absl::StatusOr<base::IpPrefix>(absl::NotFoundError("none"));
      if (!prefix.ok()) continue;
      auto old = site_paths_.find(key);
      SitePath path = old != site_paths_.end() ? old->second : SitePath();
      path.address = prefix->address;
      path.direct.reset();
      if (auto ep = base::SocketAddress::Parse(p.endpoint()); ep.ok()) path.direct = *ep;
      paths[key] = path;
    }
  }
  site_paths_ = std::move(paths);
}

void ClientNode::UpdatePaths() {
  if (!agent_ || !wg_) return;
  tunnel::WgTransport& transport = wg_->transport();
  if (uplink_ && relay_server_ && server_key_) {
    auto own = base::IpAddress::Parse(agent_->enrolled().node_address());
    if (own.ok() && (!transport.relay() || transport.relay()->self != *own ||
                     (!uplink_->over_tls() && !(transport.relay()->server == *relay_server_)))) {
      uplink_->SetServer(*server_key_, *relay_server_, *own);
    }
  }
  if (uplink_) uplink_->Tick();
  if (!transport.relay()) return;
  wg::Device& dev = transport.device();
  const absl::Time now = absl::Now();
  for (auto& [key, path] : site_paths_) {
    wg::Peer* peer = dev.FindPeer(key);
    if (peer == nullptr || peer->endpoint() == nullptr) continue;
    base::IpAddress via;
    const bool relayed = nat::RelayNodeOf(*peer->endpoint(), &via);
    const auto id = site_ids_.find(key);
    const std::string name = id == site_ids_.end() ? std::string() : id->second;
    if (relayed != path.relayed) {
      path.relayed = relayed;
      if (!relayed) {
        P2P_LOG(kInfo, "client.path").Kv("site", name).Kv("path", "direct").Kv("endpoint", peer->endpoint()->ToString());
      }
    }
    if (!relayed) {
      const absl::Duration mono = base::RealClock::Get().Monotonic();
      std::string why;
      if (peer->has_session()) {
        // A live session whose direct path went silent (a NAT that rebound, a firewall that
        // closed): data sent, nothing authenticated back, for kSilentDirect.
        const absl::Duration unanswered = mono - peer->data_unanswered_since();
        if (peer->data_unanswered_since() == absl::InfiniteDuration() || unanswered < kSilentDirect) {
          path.stuck_ticks = 0;
          continue;
        }
        why = absl::StrCat("the direct path to ", peer->endpoint()->ToString(), " stopped answering (",
                           absl::FormatDuration(absl::Trunc(unanswered, absl::Milliseconds(100))), ")");
      } else {
        // Only a handshake that went out and got no answer counts: an idle peer that never
        // tried (no traffic yet) stays on its direct endpoint.
        const absl::Duration since_initiation = mono - peer->last_sent_initiation();
        if (since_initiation < absl::Seconds(1)) {
          path.stuck_ticks = 0;
          continue;
        }
        if (since_initiation > absl::Seconds(kTicksBeforeRelay + 5)) continue;  // an old try, no traffic now
        if (++path.stuck_ticks < kTicksBeforeRelay) continue;
        why = absl::StrCat("no handshake over UDP to ", peer->endpoint()->ToString(), " in ", kTicksBeforeRelay, " s");
      }
      path.stuck_ticks = 0;
      const base::SocketAddress relay = nat::RelayEndpoint(path.address);
      P2P_LOG(kInfo, "client.path").Kv("site", name).Kv("path", "relayed").Kv("why", why);
      // Our own address may have changed with the path (a NAT rebinding): a keepalive to the
      // server lets its tunnel, and so the relay, authenticate where we are now.
      if (server_key_) {
        if (wg::Peer* server = dev.FindPeer(*server_key_); server != nullptr && server->has_current_keypair()) {
          dev.SendKeepalive(server);
        }
      }
      dev.SetEndpoint(peer, relay);
      dev.InitiateHandshakeVia(peer, relay);
      path.relayed = true;
      path.next_probe = now + kProbeInterval;
      continue;
    }
    // Relayed: try the direct path now and then, the relayed session going on meanwhile.
    if (path.direct && now >= path.next_probe) {
      path.next_probe = now + kProbeInterval;
      dev.InitiateHandshakeVia(peer, *path.direct);
    }
  }
  transport.Kick();
}

void ClientNode::OnUplinkChanged(bool over_tls) {
  if (!over_tls || !wg_) return;
  // Relayed site peers whose handshake went out before the TLS connection was up try again
  // now, through it, rather than at WireGuard's next retry.
  tunnel::WgTransport& transport = wg_->transport();
  wg::Device& dev = transport.device();
  // Those still waiting on UDP go to the relay at once: UDP to the server got no answer, UDP
  // to the site will fare no better.
  for (auto& [key, path] : site_paths_) {
    wg::Peer* peer = dev.FindPeer(key);
    if (peer == nullptr || peer->has_session() || peer->endpoint() == nullptr) continue;
    base::IpAddress via;
    if (!nat::RelayNodeOf(*peer->endpoint(), &via)) {
      const absl::Duration since_initiation = base::RealClock::Get().Monotonic() - peer->last_sent_initiation();
      if (since_initiation > absl::Seconds(kTicksBeforeRelay + 5)) continue;  // not trying now
      const auto id = site_ids_.find(key);
      P2P_LOG(kInfo, "client.path")
          .Kv("site", id == site_ids_.end() ? std::string() : id->second)
          .Kv("path", "relayed")
          .Kv("why", "WireGuard to the server goes over TLS: UDP gets no answer");
      const base::SocketAddress relay = nat::RelayEndpoint(path.address);
      dev.SetEndpoint(peer, relay);
      path.relayed = true;
      path.stuck_ticks = 0;
      path.next_probe = absl::Now() + kProbeInterval;
    }
    dev.InitiateHandshakeVia(peer, *peer->endpoint());
  }
  transport.Kick();
}

status::ClientStatus ClientNode::Status() {
  status_inputs_.client = wg_.get();
  status_inputs_.proxies = proxies_.get();
  status_inputs_.names = &names_;
  if (agent_) {
    status_inputs_.server_connected = agent_->connected();
    status_inputs_.snapshot_version = agent_->applied_version();
  }
  status_inputs_.uplink_tls = uplink_ && uplink_->over_tls();
  return CollectStatus(status_inputs_, absl::Now());
}

void ClientNode::Tick() {
  if (!options_.status_file.empty()) {
    absl::Status st = WriteStatusFile(options_.status_file, Status());
    if (st.ok()) status_written_ = true;
    if (!st.ok() && !status_warned_) {
      status_warned_ = true;
      P2P_LOG(kWarn, "client.status_file_failed").Kv("error", st.message());
    }
  }
  UpdatePaths();
  ReportHealth();
}

// ReportHealth: the sites the selector probes, as this client sees them, to the server (shown
// by `p2proxy-server admin site list`); an empty report once the selector probes nothing.
void ClientNode::ReportHealth() {
  if (!agent_ || !wg_) return;
  const auto sites = wg_->selector().Status();
  if (sites.empty() && !health_reported_) return;
  control::wire::Health health;
  for (const auto& site : sites) {
    auto id = site_ids_.find(site.site.key);
    if (id == site_ids_.end()) continue;
    control::wire::SiteHealth* h = health.add_sites();
    h->set_site_id(id->second);
    h->set_up(site.health == SiteSelector::Health::kUp);
    if (site.rtt) {
      h->set_rtt_micros(static_cast<uint32_t>(std::clamp<int64_t>(absl::ToInt64Microseconds(*site.rtt), 1, 60'000'000)));
    }
  }
  health_reported_ = health.sites_size() > 0;
  agent_->ReportHealth(std::move(health));
}

}  // namespace p2proxy::client
