// wg_over_tls.h: the server's end of WireGuard over TLS (DESIGN.md §5, nat/stream_frame.h).
// The control listener hands it connections that offered ALPN "p2proxy-wg/1"; it finishes
// their TLS 1.3 handshake, requiring a node certificate the server's CA issued (a stranger
// never gets to speak WireGuard here), and then gives each message to the server's tunnel as a
// datagram from the connection's pseudo endpoint [100::1:0:0:ID]:2. What the tunnel (or the
// relay) sends to such an endpoint goes back down that connection.
//
// Bounds: kMaxStreams open connections, kMaxPending in handshake, each handshake within
// handshake_timeout; a connection that sends a bad frame length is closed.
#ifndef P2PROXY_SERVER_WG_OVER_TLS_H_
#define P2PROXY_SERVER_WG_OVER_TLS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/bytes.h"
#include "control/wg_stream.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/timer.h"
#include "tls/cert_store.h"
#include "tls/tls_stream.h"

namespace p2proxy::server {

class WgOverTls {
 public:
  // InjectFn gives the tunnel the messages one read brought, as datagrams from the stream's
  // endpoint.
  using InjectFn = absl::AnyInvocable<void(absl::Span<const base::Datagram> batch)>;

  static constexpr size_t kMaxStreams = 4096;
  static constexpr size_t kMaxPending = 256;

  struct Counters {
    uint64_t accepted = 0;
    uint64_t refused_busy = 0;        // kMaxPending or kMaxStreams reached
    uint64_t handshake_failures = 0;  // no node certificate, a bad one, timeouts
    uint64_t opened = 0;
    uint64_t closed = 0;
    uint64_t bad_frames = 0;          // closed for a frame length out of bounds
    uint64_t messages_in = 0;
    uint64_t messages_out = 0;
    uint64_t dropped = 0;             // to a stream that is gone, or whose queue is full
  };

  WgOverTls(net::Loop& loop, InjectFn inject) : loop_(loop), inject_(std::move(inject)) {}
  ~WgOverTls();

  // SetCertificate: the server's certificate for ALPN p2proxy-wg/1 (client_auth required);
  // connections accepted without one are closed.
  void SetCertificate(std::shared_ptr<const tls::ServerCertificate> cert) { cert_ = std::move(cert); }
  // Accept takes a TCP connection whose ClientHello (in |peeked|) offered p2proxy-wg/1.
  void Accept(std::unique_ptr<net::TcpStream> tcp, std::vector<uint8_t> peeked);
  // Send writes one datagram to the stream |to| names; false (counted) if it is gone or full.
  bool Send(const base::SocketAddress& to, base::ByteSpan datagram);
  // RemoteOf: the TCP address of stream |endpoint|, or an invalid address.
  base::SocketAddress RemoteOf(const base::SocketAddress& endpoint) const;
  size_t open_streams() const { return streams_.size(); }
  const Counters& counters() const { return counters_; }
  absl::Duration handshake_timeout = absl::Seconds(10);

 private:
  struct Pending {
    std::unique_ptr<tls::TlsStream> tls;
    std::unique_ptr<net::Timer> timer;
    base::SocketAddress remote;
  };
  struct Open {
    std::unique_ptr<control::WgStream> stream;
    base::SocketAddress remote;
    std::string node_id;
  };
  void OnHandshake(uint64_t key, const absl::Status& status);
  void DropPending(uint64_t key);
  void OnClosed(uint32_t id, const absl::Status& why);

  net::Loop& loop_;
  InjectFn inject_;
  std::shared_ptr<const tls::ServerCertificate> cert_;
  uint64_t next_pending_ = 1;
  std::map<uint64_t, Pending> pending_;
  uint32_t next_id_ = 1;
  std::map<uint32_t, Open> streams_;
  Counters counters_;
  std::vector<base::Datagram> rx_;
  std::shared_ptr<WgOverTls*> alive_ = std::make_shared<WgOverTls*>(this);
};

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_WG_OVER_TLS_H_
