// wg_transport.cc: WgTransport.
#include "tunnel/wg_transport.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "nat/relay_frame.h"
#include "nat/stream_frame.h"

namespace p2proxy::tunnel {

WgTransport::WgTransport(net::Loop& loop, base::Clock& clock, Options options, DeliverFn deliver)
    : loop_(loop), clock_(clock), options_(std::move(options)), deliver_(std::move(deliver)),
      device_(clock, *this, options_.mtu), timer_(loop), tx_arena_(kBatchSlots * kSlotSize),
      tx_batch_(kBatchSlots) {}

WgTransport::~WgTransport() = default;

absl::StatusOr<std::unique_ptr<WgTransport>> WgTransport::Create(net::Loop& loop, base::Clock& clock,
                                                                 Options options,
                                                                 DeliverFn deliver) {
  const uint16_t port = options.listen_port;
  std::unique_ptr<WgTransport> t(new WgTransport(loop, clock, std::move(options), std::move(deliver)));
  auto st = t->Bind(port);
  if (!st.ok()) return st;
  return t;
}

absl::Status WgTransport::Bind(uint16_t port) {
  auto addr = base::SocketAddress::FromIp(options_.bind_ip, port);
  if (!addr.ok()) return addr.status();
  auto sock = net::UdpSocket::Bind(loop_, *addr, [this](absl::Span<const base::Datagram> batch) { OnBatch(batch); });
  if (!sock.ok()) {
    return absl::UnavailableError(absl::StrCat("wireguard: cannot bind UDP port ", port, ": ",
                                               sock.status().message(),
                                               " (is another process using it? choose another ListenPort)"));
  }
  socket_ = std::move(*sock);
  port_ = socket_->local_address().port();
  P2P_LOG(kInfo, "wg.listening").Kv("addr", socket_->local_address().ToString());
  return absl::OkStatus();
}

absl::Status WgTransport::Rebind(uint16_t port) {
  if (port != 0 && port == port_) return absl::OkStatus();
  auto old = std::move(socket_);
  auto st = Bind(port);
  if (!st.ok()) socket_ = std::move(old);
  return st;
}

void WgTransport::OnBatch(absl::Span<const base::Datagram> batch) {
  if (relay_ && nat::IsPseudoEndpoint(relay_->server)) {
    // On TLS: a datagram over UDP says UDP works again (server_uplink.h).
    for (const base::Datagram& d : batch) relay_counters_.udp_while_streamed += nat::IsPseudoEndpoint(d.addr) ? 0 : 1;
  }
  if (!options_.intercept) {
    // The hot path: a node's batch with no relay frame in it goes to the device as it is.
    bool framed = false;
    if (relay_) {
      for (const base::Datagram& d : batch) framed = framed || nat::IsRelayFrame(d.data);
    }
    if (!framed) {
      device_.ReceiveDatagrams(batch);
      return;
    }
  }
  rx_.clear();
  for (const base::Datagram& d : batch) {
    if (options_.intercept && options_.intercept(d)) continue;
    if (relay_ && nat::IsRelayFrame(d.data)) {
      nat::RelayFrame f;
      const bool from_server = d.addr == relay_->server || (relay_->also_from.valid() && d.addr == relay_->also_from);
      if (!from_server || !nat::ParseRelayFrame(d.data, &f) || !(f.dst == relay_->self)) {
        ++relay_counters_.frames_dropped;
        continue;
      }
      ++relay_counters_.frames_received;
      rx_.push_back(base::Datagram{f.payload, nat::RelayEndpoint(f.src)});
      continue;
    }
    rx_.push_back(d);
  }
  if (rx_.empty()) {
    Flush();  // what the intercept queued goes out
    return;
  }
  device_.ReceiveDatagrams(rx_);
}

void WgTransport::SendDatagram(const base::SocketAddress& to, base::ByteSpan datagram) {
  if (!socket_) return;
  base::IpAddress relayed_to;
  if (relay_ && nat::RelayNodeOf(to, &relayed_to)) {
    // Through the server: the frame header, then the WireGuard message as it is.
    if (datagram.size() > nat::kMaxRelayPayload) {
      ++relay_counters_.frames_dropped;
      return;
    }
    if (tx_count_ == kBatchSlots) SendPending();
    uint8_t* slot = tx_arena_.data() + tx_count_ * kSlotSize;
    nat::WriteRelayHeader(relayed_to, relay_->self, slot);
    std::memcpy(slot + nat::kRelayHeaderSize, datagram.data(), datagram.size());
    ++relay_counters_.frames_sent;
    const base::ByteSpan frame(slot, nat::kRelayHeaderSize + datagram.size());
    if (nat::IsPseudoEndpoint(relay_->server)) {
      ToStream(relay_->server, frame);  // the relay over TLS: the slot is not kept
      return;
    }
    tx_batch_[tx_count_] = base::Datagram{frame, relay_->server};
    ++tx_count_;
    return;
  }
  if (nat::IsPseudoEndpoint(to)) {
    ToStream(to, datagram);
    return;
  }
  // Small datagrams (all of them, at the tunnel MTU) wait in the batch for one sendmmsg; one
  // that does not fit a slot goes out alone.
  if (datagram.size() > kSlotSize) {
    socket_->Send(to, datagram);
    return;
  }
  if (tx_count_ == kBatchSlots) SendPending();
  uint8_t* slot = tx_arena_.data() + tx_count_ * kSlotSize;
  std::memcpy(slot, datagram.data(), datagram.size());
  tx_batch_[tx_count_] = base::Datagram{base::ByteSpan(slot, datagram.size()), to};
  ++tx_count_;
}

void WgTransport::ToStream(const base::SocketAddress& to, base::ByteSpan datagram) {
  uint32_t id = 0;
  if (!options_.stream_send || !nat::StreamIdOf(to, &id)) {
    ++relay_counters_.stream_dropped;
    return;
  }
  ++relay_counters_.stream_sent;
  options_.stream_send(to, datagram);
}

void WgTransport::SendPending() {
  if (tx_count_ == 0) return;
  if (socket_) socket_->SendBatch(absl::MakeConstSpan(tx_batch_.data(), tx_count_));
  tx_count_ = 0;
}

void WgTransport::Flush() {
  if (options_.after_batch && !in_after_batch_) {
    in_after_batch_ = true;
    options_.after_batch();
    in_after_batch_ = false;
  }
  SendPending();
  ArmTimer();
}

void WgTransport::DeliverPacket(wg::Peer& from, base::ByteSpan ip_packet) { deliver_(from, ip_packet); }

void WgTransport::ArmTimer() {
  const absl::Duration next = device_.NextDeadline();
  if (next == armed_for_ && timer_.active()) return;
  armed_for_ = next;
  if (next == absl::InfiniteDuration()) {
    timer_.Stop();
    return;
  }
  const absl::Duration wait = std::max(absl::ZeroDuration(), next - clock_.Monotonic());
  timer_.Start(wait, [this] {
    armed_for_ = absl::InfiniteDuration();
    device_.RunTimers();  // ends with Flush(), which re-arms
  });
}

}  // namespace p2proxy::tunnel
