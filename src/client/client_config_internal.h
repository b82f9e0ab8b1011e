// client_config_internal.h: the client config's rules for private zones and names, on their
// protobuf form, for the other ways the client gets names (a snapshot from the server). Not for
// use outside src/client.
#ifndef P2PROXY_CLIENT_CLIENT_CONFIG_INTERNAL_H_
#define P2PROXY_CLIENT_CLIENT_CONFIG_INTERNAL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/client_config.h"
#include "client/client_config.pb.h"

namespace p2proxy::client {

// ValidateZoneList replaces out->zones with |zones| after the rules of client_config.proto's
// zones (DNS names, no wildcard, unique ignoring case). Errors are "config: PATH: ..." with
// PATH built on |zones_path| ("zones", or "client.zones" for a snapshot).
absl::Status ValidateZoneList(const google::protobuf::RepeatedPtrField<std::string>& zones,
                              absl::string_view zones_path, ClientConfig* out);

// ValidateResourceList replaces out->resources with |resources| after the rules of
// client_config.proto's resources, checked against out->zones, out->resource_range and
// out->dns.listen (set those first). Paths are built on |resources_path| and |zones_path|.
absl::Status ValidateResourceList(const google::protobuf::RepeatedPtrField<config::Resource>& resources,
                                  absl::string_view resources_path, absl::string_view zones_path,
                                  ClientConfig* out);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_CLIENT_CONFIG_INTERNAL_H_
