// wg_transport.h: a WireGuard device wired to the host: its UDP socket, and one loop timer armed
// for the device's next deadline. Decrypted packets go to a callback (a TUN in the client,
// lwIP at the site); packets to encrypt come in through SendPackets.
#ifndef P2PROXY_TUNNEL_WG_TRANSPORT_H_
#define P2PROXY_TUNNEL_WG_TRANSPORT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "net/loop.h"
#include "net/timer.h"
#include "net/udp.h"
#include "wg/device.h"

namespace p2proxy::tunnel {

class WgTransport final : public wg::DeviceOutput {
 public:
  using DeliverFn = absl::AnyInvocable<void(wg::Peer& from, base::ByteSpan ip_packet)>;

  struct Options {
    uint16_t listen_port = 0;      // 0: any port (a node that only dials out)
    // after_batch runs when the device finishes a batch, before its datagrams go out: a
    // consumer that collected delivered packets handles them here, so its replies join the
    // same sendmmsg.
    std::string bind_ip = "0.0.0.0";
    size_t mtu = wg::kDefaultMtu;
    absl::AnyInvocable<void()> after_batch;
    // endpoint_changed: a peer was heard from a new address (wg::DeviceOutput::EndpointChanged).
    absl::AnyInvocable<void(wg::Peer&)> endpoint_changed;
    // intercept (the server's relay) sees every received datagram first; true: it took it.
    absl::AnyInvocable<bool(const base::Datagram&)> intercept;
    // stream_send takes every datagram addressed to a stream endpoint (nat/stream_frame.h):
    // WireGuard over TLS. Without it such datagrams are dropped.
    absl::AnyInvocable<void(const base::SocketAddress& to, base::ByteSpan datagram)> stream_send;
  };

  // Relay: a node's way through the server's relay (nat/relay_frame.h).
  struct Relay {
    base::SocketAddress server;  // the server's WireGuard UDP endpoint, or its stream endpoint (TLS)
    base::IpAddress self;        // this node's overlay address
    // also_from: frames from here are taken too: the server over UDP while the node is on TLS
    // (server is the stream endpoint), or the address a multi-homed server answers from.
    base::SocketAddress also_from;
  };
  struct RelayCounters {
    uint64_t frames_sent = 0;
    uint64_t frames_received = 0;
    uint64_t frames_dropped = 0;  // from the server but malformed, or not addressed to us
    uint64_t udp_while_streamed = 0;  // datagrams over UDP while the relay's server is a stream
    uint64_t stream_sent = 0;     // datagrams handed to stream_send
    uint64_t stream_dropped = 0;  // to a stream endpoint with no stream_send
  };

  // Create binds the UDP socket and sets up the device (without keys or peers).
  static absl::StatusOr<std::unique_ptr<WgTransport>> Create(net::Loop& loop, base::Clock& clock,
                                                             Options options, DeliverFn deliver);
  ~WgTransport() override;

  wg::Device& device() { return device_; }
  const wg::Device& device() const { return device_; }
  uint16_t listen_port() const { return port_; }
  // Rebind moves the socket to another port (UAPI listen_port=), keeping sessions.
  absl::Status Rebind(uint16_t port);
  // SendPackets encrypts and sends IP packets, routed by the allowed IPs.
  void SendPackets(absl::Span<const base::ByteSpan> packets) { device_.SendPackets(packets); }
  // Kick re-arms the timer after the device was changed from outside (config, UAPI).
  void Kick() { Flush(); }
  // Inject hands the device datagrams that came another way (WireGuard over TLS, their address
  // a stream endpoint), as if the socket had received them; the relay and intercept see them.
  void Inject(absl::Span<const base::Datagram> batch) { OnBatch(batch); }
  // SetRelay turns the relay on (a peer whose endpoint is nat::RelayEndpoint(node) is reached
  // through it, and frames from the server are unwrapped) or off (nullopt).
  void SetRelay(std::optional<Relay> relay) { relay_ = std::move(relay); }
  const std::optional<Relay>& relay() const { return relay_; }
  // SetStreamSend replaces Options::stream_send (a node's uplink sets it once it exists).
  void SetStreamSend(absl::AnyInvocable<void(const base::SocketAddress& to, base::ByteSpan datagram)> fn) {
    options_.stream_send = std::move(fn);
  }
  const RelayCounters& relay_counters() const { return relay_counters_; }

  // DeviceOutput:
  void SendDatagram(const base::SocketAddress& to, base::ByteSpan datagram) override;
  void DeliverPacket(wg::Peer& from, base::ByteSpan ip_packet) override;
  void EndpointChanged(wg::Peer& peer) override {
    if (options_.endpoint_changed) options_.endpoint_changed(peer);
  }
  // Flush sends the batch of datagrams the device produced and re-arms the timer.
  void Flush() override;

 private:
  WgTransport(net::Loop& loop, base::Clock& clock, Options options, DeliverFn deliver);
  absl::Status Bind(uint16_t port);
  void ArmTimer();
  void SendPending();
  void OnBatch(absl::Span<const base::Datagram> batch);
  void ToStream(const base::SocketAddress& to, base::ByteSpan datagram);

  // Outgoing datagrams wait here until the device flushes its batch.
  static constexpr size_t kBatchSlots = 64;
  static constexpr size_t kSlotSize = 2048;

  net::Loop& loop_;
  base::Clock& clock_;
  Options options_;
  DeliverFn deliver_;
  wg::Device device_;
  std::unique_ptr<net::UdpSocket> socket_;
  net::Timer timer_;
  absl::Duration armed_for_ = absl::InfiniteDuration();
  uint16_t port_ = 0;
  std::vector<uint8_t> tx_arena_;
  std::vector<base::Datagram> tx_batch_;
  size_t tx_count_ = 0;
  bool in_after_batch_ = false;
  std::optional<Relay> relay_;
  RelayCounters relay_counters_;
  std::vector<base::Datagram> rx_;  // a batch after the relay's unwrapping
};

}  // namespace p2proxy::tunnel

#endif  // P2PROXY_TUNNEL_WG_TRANSPORT_H_
