// audit_wire.h: a site's audit event (http::AuditEvent) as the control channel carries it
// (control.proto AuditEvent), made to fit the wire's rules whatever the peer sent.
#ifndef P2PROXY_SITE_AUDIT_WIRE_H_
#define P2PROXY_SITE_AUDIT_WIRE_H_

#include "control/control.pb.h"
#include "http/audit.h"

namespace p2proxy::site {

// AuditEventToWire converts |e|. Strings a peer influenced (host, path, method, reason) are
// made fit: bytes outside printable ASCII are percent-encoded and each is cut to its limit
// (control.proto), so the server never refuses a batch for what a peer sent. An event with no
// known peer key carries 32 zero bytes. The result always passes ValidateFrame.
control::wire::AuditEvent AuditEventToWire(const http::AuditEvent& e);

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_AUDIT_WIRE_H_
