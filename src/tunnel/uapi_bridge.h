// uapi_bridge.h: maps between a WireGuard device and the UAPI's view of it.
#ifndef P2PROXY_TUNNEL_UAPI_BRIDGE_H_
#define P2PROXY_TUNNEL_UAPI_BRIDGE_H_

#include "tunnel/wg_transport.h"
#include "wg/uapi.h"

namespace p2proxy::tunnel {

// UapiStateOf describes |t| for "get=1".
wg::UapiState UapiStateOf(const WgTransport& t);
// ApplyUapiSet carries out a "set=1" request on |t|, as wireguard-go would. Returns 0, or the
// errno to report (EADDRINUSE when the new listen port cannot be bound).
int ApplyUapiSet(WgTransport& t, const wg::UapiSet& set);

}  // namespace p2proxy::tunnel

#endif  // P2PROXY_TUNNEL_UAPI_BRIDGE_H_
