// version.h: libp2proxy's version. The public API (site.h, client.h, server.h, dial.h and the C
// API p2proxy.h) grows here as the roles land; everything under src/ is private.
#ifndef P2PROXY_VERSION_H_
#define P2PROXY_VERSION_H_

#define P2PROXY_VERSION_MAJOR 0
#define P2PROXY_VERSION_MINOR 1
#define P2PROXY_VERSION_PATCH 0
#define P2PROXY_VERSION_STRING "0.1.0"

#endif  // P2PROXY_VERSION_H_
