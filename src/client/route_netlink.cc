// route_netlink.cc: DeleteDeviceRoute. One request on a fresh NETLINK_ROUTE socket, structs
// copied in and out with memcpy, never cast over the buffer (as net/tun.cc does for AddRoute).
#include "client/route_netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_text.h"

namespace p2proxy::client {
namespace {

constexpr int kNetlinkTimeoutSeconds = 2;

absl::Status Failed(int err, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", base::ErrnoText(err));
  switch (err) {
    case ESRCH:
    case ENOENT:
      return absl::NotFoundError(msg);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(absl::StrCat(msg, "; this needs CAP_NET_ADMIN"));
    case ENODEV:
      return absl::NotFoundError(absl::StrCat(msg, "; the interface is gone"));
    default:
      return absl::InternalError(msg);
  }
}

class Socket {
 public:
  Socket() : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::Status DeleteDeviceRoute(int ifindex, const std::string& ifname, const base::IpPrefix& prefix) {
  const std::string what = absl::StrCat("interface ", ifname, ": remove route ", prefix.ToString());
  const bool v4 = prefix.address.family == base::IpAddress::kV4;
  if (!v4 && prefix.address.family != base::IpAddress::kV6) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an IPv4 or IPv6 prefix"));
  }
  // The request: header, rtmsg, RTA_DST, RTA_OIF; the kernel matches the route by table,
  // destination, length and output interface.
  rtmsg rt;
  std::memset(&rt, 0, sizeof(rt));
  rt.rtm_family = v4 ? AF_INET : AF_INET6;
  rt.rtm_dst_len = prefix.length;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_scope = RT_SCOPE_NOWHERE;  // any scope
  const uint32_t oif = static_cast<uint32_t>(ifindex);
  const size_t dst_len = prefix.address.size();

  alignas(nlmsghdr) uint8_t buf[128] = {};
  size_t len = NLMSG_LENGTH(sizeof(rt));
  std::memcpy(buf + NLMSG_HDRLEN, &rt, sizeof(rt));
  auto add_attr = [&](uint16_t type, const void* data, size_t data_len) {
    rtattr rta;
    rta.rta_len = static_cast<unsigned short>(RTA_LENGTH(data_len));
    rta.rta_type = type;
    const size_t at = NLMSG_ALIGN(len);
    std::memcpy(buf + at, &rta, sizeof(rta));
    std::memcpy(buf + at + RTA_LENGTH(0), data, data_len);
    len = at + RTA_ALIGN(RTA_LENGTH(data_len));
  };
  add_attr(RTA_DST, prefix.address.bytes.data(), dst_len);
  add_attr(RTA_OIF, &oif, sizeof(oif));
  nlmsghdr hdr;
  std::memset(&hdr, 0, sizeof(hdr));
  hdr.nlmsg_len = static_cast<uint32_t>(len);
  hdr.nlmsg_type = RTM_DELROUTE;
  hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  hdr.nlmsg_seq = 1;
  std::memcpy(buf, &hdr, sizeof(hdr));

  Socket sock;
  if (sock.fd() < 0) return Failed(errno, absl::StrCat(what, ": netlink socket"));
  const int one = 1;
  ::setsockopt(sock.fd(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  timeval timeout{kNetlinkTimeoutSeconds, 0};
  ::setsockopt(sock.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(sock.fd(), buf, len, 0, reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return Failed(errno, absl::StrCat(what, ": netlink send"));

  alignas(nlmsghdr) uint8_t reply[4096];
  for (;;) {
    const ssize_t n = ::recv(sock.fd(), reply, sizeof(reply), 0);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return absl::DeadlineExceededError(absl::StrCat(what, ": the kernel did not answer"));
      }
      return Failed(err, absl::StrCat(what, ": netlink receive"));
    }
    const size_t got = static_cast<size_t>(n);
    size_t off = 0;
    while (got - off >= NLMSG_HDRLEN) {
      nlmsghdr h;
      std::memcpy(&h, reply + off, sizeof(h));
      if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > got - off) {
        return absl::InternalError(absl::StrCat(what, ": malformed netlink reply"));
      }
      if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == 1) {
        if (h.nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) {
          return absl::InternalError(absl::StrCat(what, ": short netlink ack"));
        }
        nlmsgerr e;
        std::memcpy(&e, reply + off + NLMSG_HDRLEN, sizeof(e));
        if (e.error == 0) return absl::OkStatus();
        return Failed(-e.error, what);
      }
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
}

}  // namespace p2proxy::client
