// server_uplink.h: a node's way to the server's WireGuard: UDP to its endpoint while that
// answers; else TLS 1.3 to the control port with ALPN p2proxy-wg/1 (nat/stream_frame.h), the
// same WireGuard messages and relay frames inside. While on TLS it probes UDP now and then with
// a handshake sent there; when the server answers over UDP, WireGuard's roaming moves the
// server peer back and the uplink follows, closing the TLS connection.
//
// The switch is done through the transport alone: the server peer's endpoint and the relay's
// server address become the stream endpoint [100::1:0:0:0]:2, whose datagrams the transport
// hands to this object's stream (WgTransport::SetStreamSend), and what the stream reads is
// injected as datagrams from that endpoint.
//
// Timers: none of its own; Tick() runs each second from the node's status timer.
#ifndef P2PROXY_UPLINK_SERVER_UPLINK_H_
#define P2PROXY_UPLINK_SERVER_UPLINK_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "control/dialer.h"
#include "control/wg_stream.h"
#include "crypto/x25519.h"
#include "net/loop.h"
#include "tunnel/wg_transport.h"

namespace p2proxy::uplink {

class ServerUplink {
 public:
  // DialFn starts a TLS dial of the server's control port with ALPN p2proxy-wg/1 and this
  // node's certificate (control::NodeAgent::DialWireGuardTls).
  using DialFn = absl::AnyInvocable<std::unique_ptr<control::DialAttempt>(control::TlsDialCallback done)>;
  // ChangedFn: the uplink moved: to TLS (once the server's session over it is up) or back to
  // UDP.
  using ChangedFn = absl::AnyInvocable<void(bool over_tls)>;

  struct Options {
    // udp_silence: how long a handshake to the server over UDP may go unanswered (no session)
    // before the uplink tries TLS.
    absl::Duration udp_silence = absl::Milliseconds(1500);
    absl::Duration probe_interval = absl::Seconds(10);  // UDP probes while on TLS
    absl::Duration redial_min = absl::Seconds(1);       // after a failed dial, doubling
    absl::Duration redial_max = absl::Seconds(30);
  };

  struct Counters {
    uint64_t dials = 0;
    uint64_t dial_failures = 0;
    uint64_t to_tls = 0;
    uint64_t to_udp = 0;
    uint64_t probes = 0;
  };

  ServerUplink(net::Loop& loop, tunnel::WgTransport& transport, DialFn dial, ChangedFn changed, Options options);
  ServerUplink(net::Loop& loop, tunnel::WgTransport& transport, DialFn dial, ChangedFn changed)
      : ServerUplink(loop, transport, std::move(dial), std::move(changed), Options()) {}
  ~ServerUplink();

  // SetServer: the server peer's key, its UDP endpoint, and this node's overlay address (the
  // relay's source); from the snapshot, again on every change.
  void SetServer(const crypto::PublicKey& key, const base::SocketAddress& udp, const base::IpAddress& self);
  void Tick();

  bool over_tls() const { return stream_ != nullptr; }
  const Counters& counters() const { return counters_; }
  const control::WgStream* stream() const { return stream_.get(); }

 private:
  void Dial();
  void OnDialed(absl::StatusOr<std::unique_ptr<tls::TlsStream>> tls);
  void ToUdp(const char* why);
  void ApplyRelay();
  void CheckReady();

  net::Loop& loop_;
  tunnel::WgTransport& transport_;
  DialFn dial_;
  ChangedFn changed_;
  Options options_;
  std::optional<crypto::PublicKey> server_key_;
  base::SocketAddress udp_;
  base::IpAddress self_;
  std::unique_ptr<control::DialAttempt> dialing_;
  std::unique_ptr<control::WgStream> stream_;
  std::vector<base::Datagram> rx_;
  absl::Duration redial_delay_ = absl::ZeroDuration();
  absl::Time next_dial_ = absl::InfinitePast();
  absl::Time next_probe_ = absl::InfiniteFuture();
  bool ready_ = false;           // on TLS, with a session with the server over it
  uint64_t udp_heard_mark_ = 0;  // the transport's udp_while_streamed at the last tick
  Counters counters_;
  std::shared_ptr<ServerUplink*> alive_ = std::make_shared<ServerUplink*>(this);
};

}  // namespace p2proxy::uplink

#endif  // P2PROXY_UPLINK_SERVER_UPLINK_H_
