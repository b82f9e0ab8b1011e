// site_config_internal.h: the site config's validation on its protobuf form, for the other
// ways a config is made inside the site module (a snapshot from the server). Not for use outside
// src/site.
#ifndef P2PROXY_SITE_SITE_CONFIG_INTERNAL_H_
#define P2PROXY_SITE_SITE_CONFIG_INTERNAL_H_

#include "absl/status/statusor.h"
#include "site/site_config.h"
#include "site/site_config.pb.h"

namespace p2proxy::site {

// ValidateSiteConfigMessage applies every rule ParseSiteConfigJson applies after parsing.
absl::StatusOr<SiteConfig> ValidateSiteConfigMessage(const config::SiteConfig& message);

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SITE_CONFIG_INTERNAL_H_
