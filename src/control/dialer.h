// dialer.h: the node's end of the control channel: resolve, connect, TLS 1.3 with ALPN
// "p2proxy-ctl/1" and the server's key pinned, then a Connection.
//
// Timer: the dial deadline, over resolution, connection and handshake together.
#ifndef P2PROXY_CONTROL_DIALER_H_
#define P2PROXY_CONTROL_DIALER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/channel.h"
#include "net/loop.h"
#include "tls/tls_stream.h"

namespace p2proxy::control {

struct DialOptions {
  // spki_sha256: the server's key pin (Enrolled.server_spki_sha256, or from the enrollment
  // token), 32 bytes. Required: a node never trusts a control server on a CA alone.
  std::vector<uint8_t> spki_sha256;
  // ca_pem: the server's CA (Enrolled.ca_certificate_pem); when set the server's chain must
  // verify against it too. Empty while enrolling.
  std::string ca_pem;
  // client_chain_pem, client_key_pem: the node certificate and its key (mutual TLS); empty
  // while enrolling. The key is a secret and never appears in an error or log.
  std::string client_chain_pem;
  std::string client_key_pem;
  // server_name: sent as SNI and, with ca_pem, checked against the certificate. Empty (the
  // default): no SNI and no name check; the pin and the CA authenticate the server, and the
  // listener routes by ALPN, so the address may be any name or IP of the server.
  std::string server_name;
  absl::Duration timeout = absl::Seconds(10);
  // connection is the template for the Connection (role, peer and node fields are set here).
  ConnectionOptions connection;
};

// DialAttempt is a dial in progress; destroying it cancels the dial (no callback follows).
class DialAttempt {
 public:
  virtual ~DialAttempt() = default;
};

// DialCallback gets the connection (not yet started: call Start) or an error naming the step
// that failed: "control: dial ctl.example.com:443: DNS: unknown node or service",
// "control: dial 127.0.0.1:1: tcp: connect: connection refused",
// "control: dial 127.0.0.1:443: TLS: tls: handshake: server key does not match the pinned
// SHA-256 (spki_sha256)", "... timed out after 10s (TLS handshake)". A node certificate the
// server refuses shows up after the callback, as OnClosed with the TLS alert (in TLS 1.3 the
// client finishes its handshake before the server has checked its certificate).
using DialCallback = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<Connection>>)>;

// DialControl dials |host_port| ("10.0.0.1:443", "[fd00::1]:443", "ctl.example.com:443"; a
// name goes through the system resolver, uv_getaddrinfo, and each address is tried in turn).
// |done| runs once, on a later turn, unless the returned attempt is destroyed first.
std::unique_ptr<DialAttempt> DialControl(net::Loop& loop, std::string_view host_port, DialOptions options,
                                         DialCallback done);

// DialTls is DialControl's resolve, connect and TLS (same options, same errors) for another
// protocol on the server's port: |alpn| is offered, and must be selected; |done| gets the open
// TLS stream (no handler set yet) or the error.
using TlsDialCallback = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<tls::TlsStream>>)>;
std::unique_ptr<DialAttempt> DialTls(net::Loop& loop, std::string_view host_port, DialOptions options,
                                     std::string alpn, TlsDialCallback done);

// SplitHostPort splits "host:port" / "[v6]:port". Errors name the problem.
absl::Status SplitHostPort(std::string_view host_port, std::string* host, uint16_t* port);

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_DIALER_H_
