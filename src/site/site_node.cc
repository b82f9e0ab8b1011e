// site_node.cc: SiteNode (site_node.h).
#include "site/site_node.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "site/audit_wire.h"

namespace p2proxy::site {

namespace {

// ServerOnlySnapshot: the site's configuration before the server's first push: the server as
// its only peer, nothing served.
control::wire::Snapshot ServerOnlySnapshot(const control::wire::Enrolled& enrolled) {
  control::wire::Snapshot s;
  control::wire::Peer* server = s.add_peers();
  server->set_public_key(enrolled.server_wireguard_public_key());
  server->add_allowed_ips(absl::StrCat(enrolled.server_node_address(), "/32"));
  server->set_node_id("server");
  server->set_kind(control::wire::NODE_KIND_SERVER);
  s.mutable_site();
  return s;
}

// LocalEndpoints: this host's IPv4 addresses with the WireGuard port, for the server.
std::vector<std::string> LocalEndpoints(uint16_t port) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr && out.size() < 16; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) == nullptr) continue;
    std::string e = absl::StrCat(text, ":", port);
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
  }
  ::freeifaddrs(list);
  if (out.empty()) out.push_back(absl::StrCat("127.0.0.1:", port));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SiteNode>> SiteNode::Start(net::Loop& loop, base::Clock& clock,
                                                          SiteNodeOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("state_dir: required (managed mode)");
  control::NodeAgentOptions o;
  o.state_dir = options.state_dir;
  o.kind = control::wire::NODE_KIND_SITE;
  o.server = std::move(options.server);
  o.token = std::move(options.token);
  o.requested_name = std::move(options.requested_name);
  std::unique_ptr<SiteNode> node(new SiteNode());
  P2P_ASSIGN_OR_RETURN(node->agent_, control::NodeAgent::OpenAndWait(loop, std::move(o), options.enroll_limit));
  control::NodeAgent& agent = *node->agent_;
  auto address = base::IpAddress::Parse(agent.enrolled().node_address());
  if (!address.ok()) return absl::DataLossError("the state dir's node address does not parse: enroll again");
  ManagedSite& self = node->self_;
  self.node_id = agent.enrolled().node_id();
  self.private_key = agent.wireguard_key();
  self.node_address = *address;
  self.listen_port = options.listen_port;
  self.audit_log = options.audit_log;
  // Start from the last snapshot (without https resources, whose keys were never written
  // down), or with the server alone; the server's push brings the rest.
  absl::StatusOr<SiteConfig> config = absl::NotFoundError("no stored snapshot");
  if (agent.stored_snapshot()) {
    config = SiteConfigFromSnapshot(*agent.stored_snapshot(), self);
    if (!config.ok()) {
      P2P_LOG(kWarn, "site.stored_snapshot_unusable").Kv("error", config.status().message());
    }
  }
  node->from_stored_ = config.ok();
  if (!config.ok()) config = SiteConfigFromSnapshot(ServerOnlySnapshot(agent.enrolled()), self);
  if (!config.ok()) return config.status();
  P2P_ASSIGN_OR_RETURN(node->site_, Site::Create(loop, clock, *config, options.site));
  SiteNode* raw = node.get();
  node->site_->audit().SetTap([raw](const http::AuditEvent& e) { raw->agent_->Audit(AuditEventToWire(e)); });
  agent.Run([raw](const control::wire::Snapshot& snapshot) -> absl::Status {
    if (!raw->site_) return absl::UnavailableError("the site is stopping");
    auto next = SiteConfigFromSnapshot(snapshot, raw->self_);
    if (!next.ok()) return next.status();
    absl::Status applied = raw->site_->Apply(*next).status();
    if (applied.ok()) raw->UseRelay(snapshot);
    return applied;
  });
  node->uplink_ = std::make_unique<uplink::ServerUplink>(
      loop, node->site_->transport(),
      [raw](control::TlsDialCallback done) { return raw->agent_->DialWireGuardTls(std::move(done)); }, nullptr);
  node->uplink_timer_ = std::make_unique<net::Timer>(loop);
  node->uplink_timer_->StartRepeating(absl::Seconds(1), [raw] { raw->uplink_->Tick(); });
  if (agent.stored_snapshot()) node->UseRelay(*agent.stored_snapshot());
  agent.ReportEndpoints(LocalEndpoints(node->site_->transport().listen_port()));
  return node;
}

void SiteNode::UseRelay(const control::wire::Snapshot& snapshot) {
  if (!site_) return;
  for (const auto& p : snapshot.peers()) {
    if (p.kind() != control::wire::NODE_KIND_SERVER) continue;
    auto ep = base::SocketAddress::Parse(p.endpoint());
    if (!ep.ok() || p.public_key().size() != 32) return;
    crypto::PublicKey key;
    std::copy(p.public_key().begin(), p.public_key().end(), key.begin());
    uplink_->SetServer(key, *ep, self_.node_address);
    return;
  }
}

SiteNode::~SiteNode() {
  uplink_timer_.reset();
  uplink_.reset();
  site_.reset();
}

}  // namespace p2proxy::site
