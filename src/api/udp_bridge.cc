// udp_bridge.cc: UdpBridge (udp_bridge.h).
#include "api/udp_bridge.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_text.h"

namespace p2proxy::api {

absl::StatusOr<std::unique_ptr<UdpBridge>> UdpBridge::Create(net::Loop& loop, client::Overlay& overlay,
                                                            const base::IpAddress& to, uint16_t port, int* user_fd,
                                                            std::function<void(UdpBridge*)> on_end) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("socketpair: ", base::ErrnoText(errno)));
  }
  std::unique_ptr<UdpBridge> b(new UdpBridge());
  b->fd_ = sv[0];
  b->to_ = to;
  b->port_ = port;
  b->on_end_ = std::move(on_end);
  ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  UdpBridge* raw = b.get();
  auto udp = overlay.OpenUdp([raw](base::ByteSpan data, const base::IpAddress& from, uint16_t from_port) {
    if (from != raw->to_ || from_port != raw->port_ || raw->ended_) return;
    // One datagram, one message; a caller that does not read loses datagrams, as UDP would.
    if (::send(raw->fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      ++raw->counters_.dropped;
      return;
    }
    ++raw->counters_.from_resource;
  });
  if (!udp.ok()) {
    ::close(sv[1]);
    return udp.status();  // ~UdpBridge closes sv[0]
  }
  b->udp_ = std::move(*udp);
  int rc = uv_poll_init(loop.uv(), b->poll_.get(), b->fd_);
  if (rc != 0) {
    ::close(sv[1]);
    return absl::InternalError(absl::StrCat("uv_poll_init: ", uv_strerror(rc)));
  }
  b->poll_.MarkInitialized();
  b->poll_->data = raw;
  rc = uv_poll_start(b->poll_.get(), UV_READABLE | UV_DISCONNECT, &UdpBridge::OnPoll);
  if (rc != 0) {
    ::close(sv[1]);
    return absl::InternalError(absl::StrCat("uv_poll_start: ", uv_strerror(rc)));
  }
  b->polling_ = true;
  *user_fd = sv[1];
  return b;
}

UdpBridge::~UdpBridge() {
  // The poll stops before the fd closes (libuv: an fd must leave epoll before it is closed).
  if (polling_ && poll_.get()) uv_poll_stop(poll_.get());
  poll_.Close();
  udp_.reset();
  if (fd_ >= 0) ::close(fd_);
}

void UdpBridge::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<UdpBridge*>(h->data);
  if (self == nullptr || self->ended_) return;
  self->FromCaller();
}

void UdpBridge::FromCaller() {
  uint8_t buf[65536];
  for (int i = 0; i < 64; ++i) {  // a bounded batch per wakeup; the poll fires again if more wait
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      if (udp_->SendTo(base::ByteSpan(buf, static_cast<size_t>(n)), to_, port_)) {
        ++counters_.to_resource;
      } else {
        ++counters_.dropped;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    // 0: the caller closed its end (SOCK_SEQPACKET); an error ends the flow too.
    ended_ = true;
    if (polling_) uv_poll_stop(poll_.get());
    polling_ = false;
    if (on_end_) on_end_(this);
    return;
  }
}

}  // namespace p2proxy::api
