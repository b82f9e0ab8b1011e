// snapshot_config.h: a managed site's configuration, made from the snapshot the server pushed
// (control.proto Snapshot with its SiteSection) and what the site keeps of itself in its state
// dir (its id, WireGuard key and node address).
#ifndef P2PROXY_SITE_SNAPSHOT_CONFIG_H_
#define P2PROXY_SITE_SNAPSHOT_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "base/ip_prefix.h"
#include "control/control.pb.h"
#include "crypto/secret.h"
#include "site/site_config.h"

namespace p2proxy::site {

// ManagedSite is what a managed site knows of itself, beside the snapshot.
struct ManagedSite {
  std::string node_id;       // from enrollment; picks this site's target in each resource
  crypto::Key private_key;   // its WireGuard key (state dir)
  base::IpAddress node_address;
  uint16_t listen_port = 0;  // 0: no fixed port, the site only dials out
  std::string audit_log = "-";
  SiteLimits limits;
};

// SiteConfigFromSnapshot makes the SiteConfig to Apply for |snapshot|. The snapshot passed
// ValidateFrame (control/validate.h); this checks what needs the site's context and applies
// every rule a static config must pass (site_config.proto), so a managed site is held to the
// same rules: each resource has exactly this site's target, each https resource its pushed
// certificate, and the snapshot is a site's. Certificates and keys stay in memory.
//
// Failure: InvalidArgument naming the snapshot's field ("snapshot: resources[2] 'vault': no
// target for this site (s-abc)") or the config rule broken; the site then keeps the config it
// has and acks the snapshot with the error.
absl::StatusOr<SiteConfig> SiteConfigFromSnapshot(const control::wire::Snapshot& snapshot, const ManagedSite& self);

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SNAPSHOT_CONFIG_H_
