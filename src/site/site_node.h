// site_node.h: the managed site role as one object: enrollment (or the state dir), the site
// (WireGuard device, lwIP, resources) started from the last snapshot or with the server alone,
// the server's pushes applied live, audit events sent to the server and the host's endpoints
// reported. p2proxy-site runs one in managed mode; a program that embeds a site does the same
// (include/p2proxy/site.h).
#ifndef P2PROXY_SITE_SITE_NODE_H_
#define P2PROXY_SITE_SITE_NODE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "control/node_agent.h"
#include "net/loop.h"
#include "site/site.h"
#include "uplink/server_uplink.h"
#include "site/snapshot_config.h"

namespace p2proxy::site {

struct SiteNodeOptions {
  std::string state_dir;       // keys, node certificate, last snapshot (0700/0600). Required.
  std::string server;          // HOST:PORT, needed to enroll
  std::string token;           // one-time enrollment token, first start only (never logged)
  std::string requested_name;  // the site's name at enrollment ("": the token's)
  uint16_t listen_port = 0;    // WireGuard UDP port (0: ephemeral; the site only dials out)
  std::string audit_log = "-"; // where the site also writes its audit log: a file, "-" stdout
  absl::Duration enroll_limit = absl::Seconds(60);
  Site::Options site;
};

class SiteNode {
 public:
  // Start enrolls (first time) or loads the state dir, then brings the site up from its last
  // snapshot, or with the server as its only peer until the first push. Runs |loop| while it
  // enrolls (at most enroll_limit).
  static absl::StatusOr<std::unique_ptr<SiteNode>> Start(net::Loop& loop, base::Clock& clock,
                                                         SiteNodeOptions options);
  ~SiteNode();
  SiteNode(const SiteNode&) = delete;
  SiteNode& operator=(const SiteNode&) = delete;

  Site& site() { return *site_; }
  control::NodeAgent& agent() { return *agent_; }
  // over_tls: the site's WireGuard reaches the server over TLS (UDP gets no answer).
  bool over_tls() const { return uplink_ && uplink_->over_tls(); }
  // has_config: a snapshot from the server was applied, or the stored one loaded.
  bool has_config() const { return from_stored_ || agent_->applied_version() > 0; }

 private:
  SiteNode() = default;
  // UseRelay points the site's transport at the server's relay (the server peer's endpoint in
  // |snapshot|), so that clients that cannot reach it directly come through the server; the
  // uplink takes it over TLS when UDP to the server gets no answer.
  void UseRelay(const control::wire::Snapshot& snapshot);
  ManagedSite self_;
  bool from_stored_ = false;
  std::unique_ptr<control::NodeAgent> agent_;
  std::unique_ptr<Site> site_;  // destroyed before the agent its audit tap points at
  std::unique_ptr<uplink::ServerUplink> uplink_;  // destroyed before the site whose transport it uses
  std::unique_ptr<net::Timer> uplink_timer_;
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SITE_NODE_H_
