// udp.cc: UdpSocket.
#include "net/udp.h"

#include <errno.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::net {

UdpSocket::UdpSocket(ReceiveCallback cb, Options options)
    : cb_(std::move(cb)), options_(options) {
  if (options_.batch == 0) options_.batch = 1;
  // libuv's recvmmsg path splits the buffer into 64 KiB slots, one datagram each.
  if (options_.batch > 1) options_.max_datagram = 64 * 1024;
  rx_buffer_.resize(options_.max_datagram * options_.batch);
  rx_batch_.reserve(options_.batch);
}

UdpSocket::~UdpSocket() = default;

absl::StatusOr<std::unique_ptr<UdpSocket>> UdpSocket::Bind(Loop& loop, const SocketAddress& addr,
                                                           ReceiveCallback cb, Options options) {
  if (!addr.valid()) return absl::InvalidArgumentError("udp: bind address is not IPv4 or IPv6");
  std::unique_ptr<UdpSocket> s(new UdpSocket(std::move(cb), options));
  unsigned flags = static_cast<unsigned>(addr.family());
  if (s->options_.batch > 1) flags |= UV_UDP_RECVMMSG;
  int rc = uv_udp_init_ex(loop.uv(), s->udp_.get(), flags);
  if (rc != 0) return absl::InternalError(absl::StrCat("udp: socket: ", uv_strerror(rc)));
  s->udp_.MarkInitialized();
  s->udp_->data = s.get();
  rc = uv_udp_bind(s->udp_.get(), addr.sa(), 0);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("udp: bind ", addr.ToString(), ": ", uv_strerror(rc)));
  }
  // Ask for large buffers; as root, past the sysctl caps (net.core.[rw]mem_max), as
  // wireguard-go does, so bursts are not dropped at the socket.
  uv_os_fd_t fd;
  if (uv_fileno(s->udp_.handle(), &fd) == 0) {
    if (s->options_.rcvbuf > 0) {
      int v = s->options_.rcvbuf;
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
      }
    }
    if (s->options_.sndbuf > 0) {
      int v = s->options_.sndbuf;
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
      }
    }
  }
  rc = uv_udp_recv_start(s->udp_.get(), &UdpSocket::OnAlloc, &UdpSocket::OnRecv);
  if (rc != 0) return absl::InternalError(absl::StrCat("udp: recv: ", uv_strerror(rc)));
  return s;
}

void UdpSocket::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<UdpSocket*>(h->data);
  if (!self) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = uv_buf_init(reinterpret_cast<char*>(self->rx_buffer_.data()),
                     static_cast<unsigned>(self->rx_buffer_.size()));
}

void UdpSocket::OnRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                       unsigned flags) {
  auto* self = static_cast<UdpSocket*>(h->data);
  if (!self) return;
  // With recvmmsg libuv reports each datagram as a chunk, then once more with
  // UV_UDP_MMSG_FREE: that last call closes the batch.
  if (flags & UV_UDP_MMSG_FREE) return self->DeliverBatch();
  if (nread < 0) {
    ++self->counters_.rx_errors;
    return;
  }
  if (addr == nullptr) return self->DeliverBatch();  // nothing more to read this time
  if (flags & UV_UDP_PARTIAL) {
    ++self->counters_.rx_truncated;
  } else {
    ++self->counters_.rx_packets;
    self->counters_.rx_bytes += static_cast<uint64_t>(nread);
    self->rx_batch_.push_back(base::Datagram{
        base::ByteSpan(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)),
        SocketAddress::FromSockaddr(addr)});
  }
  if (!(flags & UV_UDP_MMSG_CHUNK)) self->DeliverBatch();
}

void UdpSocket::DeliverBatch() {
  if (rx_batch_.empty()) return;
  cb_(absl::MakeConstSpan(rx_batch_));
  rx_batch_.clear();
}

bool UdpSocket::Send(const SocketAddress& to, base::ByteSpan data) {
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data.data())),
                           static_cast<unsigned>(data.size()));
  int rc = uv_udp_try_send(udp_.get(), &b, 1, to.sa());
  if (rc < 0) {
    ++counters_.tx_dropped;
    return false;
  }
  ++counters_.tx_packets;
  counters_.tx_bytes += data.size();
  return true;
}

size_t UdpSocket::SendBatch(absl::Span<const base::Datagram> batch) {
  constexpr size_t kMax = 64;
  uv_os_fd_t fd;
  if (uv_fileno(udp_.handle(), &fd) != 0) {
    counters_.tx_dropped += batch.size();
    return 0;
  }
  size_t sent_total = 0;
  mmsghdr msgs[kMax];
  iovec iov[kMax];
  while (!batch.empty()) {
    const size_t n = std::min(batch.size(), kMax);
    for (size_t i = 0; i < n; ++i) {
      iov[i].iov_base = const_cast<uint8_t*>(batch[i].data.data());
      iov[i].iov_len = batch[i].data.size();
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(batch[i].addr.sa());
      msgs[i].msg_hdr.msg_namelen = batch[i].addr.sa_len();
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int rc;
    do {
      rc = sendmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT);
    } while (rc < 0 && errno == EINTR);
    // A datagram the kernel refused (full buffer, unreachable) is dropped: skip it and go on.
    const size_t sent = rc > 0 ? static_cast<size_t>(rc) : 0;
    for (size_t i = 0; i < sent; ++i) counters_.tx_bytes += batch[i].data.size();
    counters_.tx_packets += sent;
    sent_total += sent;
    const size_t consumed = sent < n ? sent + 1 : n;
    if (sent < n) ++counters_.tx_dropped;
    batch.remove_prefix(consumed);
  }
  return sent_total;
}

SocketAddress UdpSocket::local_address() const {
  sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_udp_getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace p2proxy::net
