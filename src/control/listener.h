// listener.h: the server's end of the control channel: one TCP port (443 by default) whose
// connections are told apart by the ALPN of their ClientHello, peeked before any TLS runs.
// "p2proxy-ctl/1" ends in a TLS 1.3 server with the server's certificate and optional client
// certificates verified against the CA, then a Connection; other protocols registered with
// RegisterAlpn (public HTTPS, WireGuard over TLS) get the raw stream and the peeked bytes.
//
// Timers: one per pending connection, the handshake deadline (peek and TLS handshake
// together); when it fires the connection is dropped.
#ifndef P2PROXY_CONTROL_LISTENER_H_
#define P2PROXY_CONTROL_LISTENER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "control/channel.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/tcp.h"
#include "tls/cert_store.h"
#include "tls/client_hello.h"

namespace p2proxy::control {

// PeerInfo is what the listener learned about a control connection during its handshake.
struct PeerInfo {
  base::SocketAddress remote;
  // has_client_cert: the node presented a certificate, and it verified against the CA.
  bool has_client_cert = false;
  std::string node_id;          // the certificate's subject CN; empty without a certificate
  std::string cert_serial_hex;  // its serial, lower-case hex (TlsStream::PeerSerialHex)
};

// ControlCredentials are the server's TLS identity on the control channel (PEM). The key is a
// secret: it is parsed into BoringSSL and never logged.
struct ControlCredentials {
  std::string certificate_chain_pem;  // the server's certificate, leaf first
  std::string private_key_pem;
  std::string client_ca_pem;  // the CA that issues node certificates
};

struct ListenerOptions {
  base::SocketAddress address;                              // 127.0.0.1:0 in tests
  absl::Duration handshake_timeout = absl::Seconds(10);     // peek + TLS handshake
  size_t max_pending = 256;                                 // connections still in handshake
  size_t max_client_hello_len = tls::kDefaultMaxClientHelloLen;
  // connection is the template for each control Connection (role, peer and node fields are
  // filled in by the listener).
  ConnectionOptions connection;
};

// ListenerCounters: accepted connections and what became of them.
struct ListenerCounters {
  uint64_t accepted = 0;
  uint64_t refused_busy = 0;        // max_pending reached: closed at once
  uint64_t not_tls = 0;             // the peek failed
  uint64_t no_protocol = 0;         // no control ALPN and no hook for any offered ALPN
  uint64_t handshake_timeouts = 0;
  uint64_t handshake_failures = 0;  // TLS failed (bad client certificate, TLS 1.2, ...)
  uint64_t to_hooks = 0;
  uint64_t control_connections = 0;
};

class ControlListener {
 public:
  // ConnectionCallback gets each control connection after its handshake; it calls Start.
  using ConnectionCallback = absl::AnyInvocable<void(std::unique_ptr<Connection>, PeerInfo)>;
  // AlpnHook gets a connection whose ClientHello offered its ALPN: the TCP stream (reading
  // paused, no handler: set one and ResumeReading), every byte read from it so far (the
  // ClientHello, to feed to a TLS server), and the parsed hello.
  using AlpnHook = absl::AnyInvocable<void(std::unique_ptr<net::TcpStream>, std::vector<uint8_t> peeked,
                                           const tls::ClientHelloInfo& hello)>;

  // Listen binds options.address and serves with |credentials|. Errors: bad credentials
  // ("control: listener: credentials: key does not match certificate"), the bind.
  static absl::StatusOr<std::unique_ptr<ControlListener>> Listen(net::Loop& loop, ListenerOptions options,
                                                                 const ControlCredentials& credentials,
                                                                 ConnectionCallback on_connection);
  ~ControlListener();

  // SetCredentials replaces the certificate and CA for connections accepted from now on
  // (rotation); connections already up keep theirs. On error nothing changes.
  absl::Status SetCredentials(const ControlCredentials& credentials);
  // RegisterAlpn routes connections offering |alpn| to |hook|. Errors: |alpn| is the control
  // protocol, empty, longer than 255 bytes, or registered already; |hook| is null.
  absl::Status RegisterAlpn(std::string alpn, AlpnHook hook);

  base::SocketAddress local_address() const { return tcp_->local_address(); }
  // spki_sha256 is the pin of the current certificate (what Enrolled tells nodes).
  const std::vector<uint8_t>& spki_sha256() const { return cert_->spki_sha256(); }
  const ListenerCounters& counters() const { return counters_; }
  ChannelCounters& channel_counters() { return channel_counters_; }
  size_t pending() const { return pending_.size(); }

 private:
  class Pending;
  ControlListener(net::Loop& loop, ListenerOptions options, ConnectionCallback cb);
  static absl::StatusOr<std::shared_ptr<const tls::ServerCertificate>> MakeCertificate(
      const ControlCredentials& credentials);
  void OnAccept(std::unique_ptr<net::TcpStream> tcp);
  // Drop removes |p| from the pending set; it is deleted on a later turn.
  void Drop(Pending* p);
  void Route(Pending* p);
  void OnHandshake(Pending* p, const absl::Status& status);

  net::Loop& loop_;
  ListenerOptions options_;
  ConnectionCallback on_connection_;
  std::unique_ptr<net::TcpListener> tcp_;
  std::shared_ptr<const tls::ServerCertificate> cert_;
  std::map<std::string, AlpnHook, std::less<>> hooks_;
  std::map<Pending*, std::unique_ptr<Pending>> pending_;
  ListenerCounters counters_;
  ChannelCounters channel_counters_;
  std::shared_ptr<ControlListener*> alive_;  // shared with callbacks; cleared by the destructor
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_LISTENER_H_
