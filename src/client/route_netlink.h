// route_netlink.h: taking a device route off the client's TUN interface (rtnetlink
// RTM_DELROUTE), the counterpart of net::TunDevice::AddRoute, for routes a snapshot withdraws.
#ifndef P2PROXY_CLIENT_ROUTE_NETLINK_H_
#define P2PROXY_CLIENT_ROUTE_NETLINK_H_

#include <string>

#include "absl/status/status.h"
#include "base/ip_prefix.h"

namespace p2proxy::client {

// DeleteDeviceRoute removes the main-table route to |prefix| through interface |ifindex| (named
// |ifname| in errors), as `ip route del PREFIX dev NAME` does. Blocks briefly on the kernel.
// NotFound when there is no such route; PermissionDenied without CAP_NET_ADMIN.
absl::Status DeleteDeviceRoute(int ifindex, const std::string& ifname, const base::IpPrefix& prefix);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_ROUTE_NETLINK_H_
