// wg_transport.cc: WgTransport.
#include "tunnel/wg_transport.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"

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
  auto sock = net::UdpSocket::Bind(loop_, *addr, [this](absl::Span<const base::Datagram> batch) {
    device_.ReceiveDatagrams(batch);
  });
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

void WgTransport::SendDatagram(const base::SocketAddress& to, base::ByteSpan datagram) {
  if (!socket_) return;
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
