// tun.cc: TunDevice, and the small ioctl and rtnetlink helpers that configure its interface.
#include "net/tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/errno_text.h"
#include "base/status_macros.h"

namespace p2proxy::net {
namespace {

// A receive-buffer slot for a typical packet (MTU 1500 and a little more); see Options::batch.
constexpr size_t kTypicalPacket = 2048;
// How long a netlink request may wait for the kernel's ack. rtnetlink answers before sendto
// returns, so this bounds only a kernel that misbehaves.
constexpr int kNetlinkTimeoutSeconds = 2;

// ScopedFd closes an fd it owns.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// ErrnoStatus turns a failed configuration call into a Status a user can act on: |what| says
// what was tried, |kernel_says| is the kernel's own explanation (netlink extended ack), if any.
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view kernel_says = {}) {
  std::string msg = absl::StrCat(what, ": ", base::ErrnoText(err));
  if (!kernel_says.empty()) absl::StrAppend(&msg, " (kernel: ", kernel_says, ")");
  switch (err) {
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(
          msg, "; this needs CAP_NET_ADMIN: run as root or grant the capability "
               "(setcap cap_net_admin+ep on the binary)"));
    case EACCES:
      return absl::PermissionDeniedError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ESRCH:  // a route to delete that is not there
      return absl::NotFoundError(msg);
    case ENODEV:
    case ENXIO:
      return absl::NotFoundError(absl::StrCat(msg, "; the interface is gone"));
    case ENETDOWN:
      return absl::FailedPreconditionError(
          absl::StrCat(msg, "; the interface is down: call SetUp(true) first"));
    case EINVAL:
    case ERANGE:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

ifreq MakeIfreq(const std::string& name) {
  ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  // name() comes from the kernel, so it fits with its NUL.
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof(ifr.ifr_name) - 1));
  return ifr;
}

// SetSockaddrIn writes an AF_INET sockaddr for |host_order| into an ifreq's sockaddr field.
void SetSockaddrIn(sockaddr* out, uint32_t host_order) {
  static_assert(sizeof(sockaddr_in) <= sizeof(sockaddr));
  sockaddr_in sin;
  std::memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(host_order);
  std::memcpy(out, &sin, sizeof(sin));
}

// InterfaceIoctl runs one SIOC* request on an AF_INET datagram socket, the classic way to reach
// an interface's settings.
absl::Status InterfaceIoctl(unsigned long request, ifreq* ifr, absl::string_view what) {
  ScopedFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat(what, ": socket"));
  }
  if (::ioctl(sock.get(), request, ifr) < 0) {
    const int err = errno;
    return ErrnoStatus(err, what);
  }
  return absl::OkStatus();
}

// NetlinkRequest builds one rtnetlink request (header, fixed body, attributes) in a small
// fixed buffer and sends it, waiting for the kernel's ack. Structs are copied in and out with
// memcpy, never cast over the buffer.
class NetlinkRequest {
 public:
  // NetlinkRequest starts a request of |type| with |flags| (NLM_F_REQUEST and NLM_F_ACK are
  // added) and the fixed header |body| (rtmsg, ifaddrmsg...).
  NetlinkRequest(uint16_t type, uint16_t flags, const void* body, size_t body_len)
      : type_(type), flags_(static_cast<uint16_t>(flags | NLM_F_REQUEST | NLM_F_ACK)) {
    if (NLMSG_LENGTH(body_len) > sizeof(buf_)) {
      overflow_ = true;
      return;
    }
    std::memcpy(buf_ + NLMSG_HDRLEN, body, body_len);
    len_ = NLMSG_LENGTH(body_len);
  }

  // AddAttribute appends an rtattr of |type| holding |data|.
  void AddAttribute(uint16_t type, base::ByteSpan data) {
    const size_t at = NLMSG_ALIGN(len_);
    const size_t attr_len = RTA_LENGTH(data.size());
    if (overflow_ || at + RTA_ALIGN(attr_len) > sizeof(buf_)) {
      overflow_ = true;
      return;
    }
    rtattr rta;
    rta.rta_len = static_cast<unsigned short>(attr_len);
    rta.rta_type = type;
    std::memcpy(buf_ + at, &rta, sizeof(rta));
    std::memcpy(buf_ + at + RTA_LENGTH(0), data.data(), data.size());
    len_ = at + RTA_ALIGN(attr_len);
  }
  void AddU32(uint16_t type, uint32_t v) {
    AddAttribute(type, base::ByteSpan(reinterpret_cast<const uint8_t*>(&v), sizeof(v)));
  }

  // Transact sends the request on a fresh NETLINK_ROUTE socket and returns the kernel's
  // verdict: OK, or the error with the kernel's explanation when it gives one.
  absl::Status Transact(absl::string_view what);

 private:
  static constexpr uint32_t kSeq = 1;  // one request per socket
  absl::Status ParseAck(base::ByteSpan msg, uint16_t msg_flags, absl::string_view what);

  alignas(nlmsghdr) uint8_t buf_[256] = {};
  size_t len_ = NLMSG_HDRLEN;
  uint16_t type_;
  uint16_t flags_;
  bool overflow_ = false;
};

absl::Status NetlinkRequest::Transact(absl::string_view what) {
  if (overflow_) return absl::InternalError(absl::StrCat(what, ": netlink request too large"));
  ScopedFd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat(what, ": netlink socket"));
  }
  // Best effort, for older kernels: CAP_ACK keeps our request out of the ack, EXT_ACK makes
  // the kernel say in words what it rejected ("Device for nexthop is not up").
  const int one = 1;
  ::setsockopt(sock.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  ::setsockopt(sock.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  timeval timeout{kNetlinkTimeoutSeconds, 0};
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  nlmsghdr hdr;
  std::memset(&hdr, 0, sizeof(hdr));
  hdr.nlmsg_len = static_cast<uint32_t>(len_);
  hdr.nlmsg_type = type_;
  hdr.nlmsg_flags = flags_;
  hdr.nlmsg_seq = kSeq;
  std::memcpy(buf_, &hdr, sizeof(hdr));
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
  ssize_t sent;
  do {
    sent = ::sendto(sock.get(), buf_, len_, 0, reinterpret_cast<const sockaddr*>(&kernel),
                    sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat(what, ": netlink send"));
  }

  alignas(nlmsghdr) uint8_t reply[8192];
  for (;;) {
    const ssize_t n = ::recv(sock.get(), reply, sizeof(reply), 0);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return absl::DeadlineExceededError(
            absl::StrCat(what, ": the kernel did not answer the netlink request"));
      }
      return ErrnoStatus(err, absl::StrCat(what, ": netlink receive"));
    }
    const size_t got = static_cast<size_t>(n);
    size_t off = 0;
    while (got - off >= NLMSG_HDRLEN) {
      nlmsghdr h;
      std::memcpy(&h, reply + off, sizeof(h));
      if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > got - off) {
        return absl::InternalError(absl::StrCat(what, ": malformed netlink reply"));
      }
      if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == kSeq) {
        return ParseAck(base::ByteSpan(reply + off, h.nlmsg_len), h.nlmsg_flags, what);
      }
      off += NLMSG_ALIGN(h.nlmsg_len);
    }
  }
}

absl::Status NetlinkRequest::ParseAck(base::ByteSpan msg, uint16_t msg_flags,
                                      absl::string_view what) {
  if (msg.size() < NLMSG_HDRLEN + sizeof(nlmsgerr)) {
    return absl::InternalError(absl::StrCat(what, ": short netlink ack"));
  }
  nlmsgerr err;
  std::memcpy(&err, msg.data() + NLMSG_HDRLEN, sizeof(err));
  if (err.error == 0) return absl::OkStatus();
  // With a capped ack the extended-ack attributes follow nlmsgerr directly.
  std::string kernel_says;
  if ((msg_flags & NLM_F_ACK_TLVS) && (msg_flags & NLM_F_CAPPED)) {
    size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nlmsgerr));
    while (off <= msg.size() && msg.size() - off >= NLA_HDRLEN) {
      nlattr attr;
      std::memcpy(&attr, msg.data() + off, sizeof(attr));
      if (attr.nla_len < NLA_HDRLEN || attr.nla_len > msg.size() - off) break;
      if ((attr.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
        const char* text = reinterpret_cast<const char*>(msg.data() + off + NLA_HDRLEN);
        kernel_says.assign(text, strnlen(text, attr.nla_len - NLA_HDRLEN));
      }
      off += NLA_ALIGN(attr.nla_len);
    }
  }
  return ErrnoStatus(-err.error, what, kernel_says);
}

}  // namespace

TunDevice::TunDevice(int fd, std::string name, PacketCallback cb, Options options)
    : fd_(fd), name_(std::move(name)), cb_(std::move(cb)), options_(options) {
  if (options_.batch == 0) options_.batch = 1;
  rx_buffer_len_ = options_.batch * kTypicalPacket + kMaxPacket;
  rx_buffer_.reset(new uint8_t[rx_buffer_len_]);
  rx_packets_.resize(options_.batch);
}

TunDevice::~TunDevice() {
  // Order matters (see tun.h): stop polling, so libuv forgets the fd now; start closing the
  // handle (its memory goes later, in the close callback, which does not touch the fd); then
  // close the fd, which deletes the interface.
  StopReading();
  poll_.Close();
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<TunDevice>> TunDevice::Open(Loop& loop, const std::string& name,
                                                           PacketCallback cb, Options options) {
  if (name.size() >= IFNAMSIZ) {
    return absl::InvalidArgumentError(absl::StrCat("tun: interface name '", name, "' is ",
                                                   name.size(), " bytes; Linux allows at most ",
                                                   IFNAMSIZ - 1));
  }
  if (name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("tun: interface name holds a NUL byte");
  }
  if (!cb) return absl::InvalidArgumentError("tun: no packet callback");

  ScopedFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    switch (err) {
      case ENOENT:
        return absl::FailedPreconditionError(
            "tun: /dev/net/tun does not exist: load the driver (modprobe tun), or in a "
            "container pass the device in (docker run --device /dev/net/tun --cap-add NET_ADMIN)");
      case ENODEV:
      case ENXIO:
        return absl::FailedPreconditionError(absl::StrCat(
            "tun: open /dev/net/tun: ", base::ErrnoText(err),
            "; the kernel has no TUN driver loaded (modprobe tun)"));
      case EPERM:
      case EACCES:
        return absl::PermissionDeniedError(absl::StrCat(
            "tun: open /dev/net/tun: ", base::ErrnoText(err),
            "; run as root (or with CAP_NET_ADMIN and access to the device; in a container: "
            "--device /dev/net/tun --cap-add NET_ADMIN)"));
      default:
        return ErrnoStatus(err, "tun: open /dev/net/tun");
    }
  }

  const std::string shown = name.empty() ? std::string("tun%d") : name;
  ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = static_cast<short>(IFF_TUN | IFF_NO_PI);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    const int err = errno;
    const std::string what = absl::StrCat("tun: create interface '", shown, "'");
    switch (err) {
      case EPERM:
        return absl::PermissionDeniedError(absl::StrCat(
            what, ": ", base::ErrnoText(err), "; this needs CAP_NET_ADMIN: run as root or grant the "
            "capability (setcap cap_net_admin+ep on the binary)"));
      case EBUSY:
        return absl::FailedPreconditionError(
            absl::StrCat(what, ": ", base::ErrnoText(err), "; another process has it open"));
      case EINVAL:
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": ", base::ErrnoText(err), "; the name is not valid, or an interface that is not "
            "a TUN of this kind already has it"));
      case ENFILE:
        return absl::ResourceExhaustedError(
            absl::StrCat(what, ": ", base::ErrnoText(err), "; every name of the template is taken"));
      default:
        return ErrnoStatus(err, what);
    }
  }
  std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, sizeof(ifr.ifr_name)));
  std::unique_ptr<TunDevice> dev(new TunDevice(fd.Release(), actual, std::move(cb), options));

  dev->index_ = static_cast<int>(::if_nametoindex(actual.c_str()));
  if (dev->index_ == 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("tun ", actual, ": look up the interface index"));
  }

  int rc = uv_poll_init(loop.uv(), dev->poll_.get(), dev->fd_);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("tun ", actual, ": poll: ", uv_strerror(rc)));
  }
  dev->poll_.MarkInitialized();
  dev->poll_initialized_ = true;
  dev->poll_->data = dev.get();
  rc = uv_poll_start(dev->poll_.get(), UV_READABLE, &TunDevice::OnPoll);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("tun ", actual, ": poll: ", uv_strerror(rc)));
  }
  P2P_LOG(kInfo, "tun.opened").Kv("name", actual).Kv("index", dev->index_);
  return dev;
}

void TunDevice::StopReading() {
  if (poll_initialized_ && poll_.get()) uv_poll_stop(poll_.get());
}

void TunDevice::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<TunDevice*>(h->data);
  if (!self) return;
  if (status < 0) {
    // libuv has already stopped the handle. The kernel reports POLLERR on a TUN fd when its
    // interface was deleted underneath us (ip link del, namespace gone).
    ++self->counters_.rx_errors;
    P2P_LOG(kError, "tun.poll_failed").Kv("name", self->name_).Kv("error", uv_strerror(status));
    return;
  }
  if (events & UV_READABLE) self->ReadBatch();
}

void TunDevice::ReadBatch() {
  // Packets are packed one after another; each read is offered kMaxPacket bytes so none is
  // ever truncated, and the batch ends early when less than that is left. The poll is level
  // triggered: whatever is still queued wakes us again on the next turn.
  uint8_t* const buf = rx_buffer_.get();
  size_t used = 0;
  size_t num_packets = 0;
  while (num_packets < rx_packets_.size() && rx_buffer_len_ - used >= kMaxPacket) {
    const ssize_t n = ::read(fd_, buf + used, kMaxPacket);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      // A TUN read fails otherwise only when the device is detached or gone; polling on would
      // spin on the same error.
      ++counters_.rx_errors;
      P2P_LOG(kError, "tun.read_failed").Kv("name", name_).Kv("error", base::ErrnoText(err));
      StopReading();
      break;
    }
    if (n == 0) break;  // only a zero-sized read returns 0; stop rather than spin
    const size_t len = static_cast<size_t>(n);
    rx_packets_[num_packets++] = base::ByteSpan(buf + used, len);
    used += len;
    ++counters_.rx_packets;
    counters_.rx_bytes += len;
  }
  if (num_packets > 0) cb_(absl::MakeConstSpan(rx_packets_.data(), num_packets));
}

bool TunDevice::Write(base::ByteSpan packet) {
  if (packet.empty() || packet.size() > kMaxPacket) {
    ++counters_.tx_dropped;
    return false;
  }
  ssize_t n;
  do {
    n = ::write(fd_, packet.data(), packet.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(packet.size())) {
    const int err = n < 0 ? errno : 0;
    ++counters_.tx_dropped;
    // A full queue is ordinary loss; anything else (EINVAL: not IPv4/IPv6, EIO: interface
    // down) says something upstream is wrong, so it is logged, within limits.
    if (err != EAGAIN && err != EWOULDBLOCK) {
      P2P_LOG_RATELIMITED(write_log_limiter_, kWarn, "tun.write_dropped")
          .Kv("name", name_)
          .Kv("len", packet.size())
          .Kv("error", err != 0 ? base::ErrnoText(err) : std::string("short write"));
    }
    return false;
  }
  ++counters_.tx_packets;
  counters_.tx_bytes += packet.size();
  return true;
}

size_t TunDevice::WriteBatch(absl::Span<const base::ByteSpan> packets) {
  size_t num_written = 0;
  for (const base::ByteSpan& p : packets) {
    if (Write(p)) ++num_written;
  }
  return num_written;
}

absl::Status TunDevice::SetMtu(int mtu) {
  const std::string what = absl::StrCat("tun ", name_, ": set MTU ", mtu);
  if (mtu < 68 || mtu > static_cast<int>(kMaxPacket)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the MTU must be 68 to 65535"));
  }
  ifreq ifr = MakeIfreq(name_);
  ifr.ifr_mtu = mtu;
  return InterfaceIoctl(SIOCSIFMTU, &ifr, what);
}

absl::Status TunDevice::AddAddress(const base::IpAddress& address, int prefix_length) {
  const std::string what =
      absl::StrCat("tun ", name_, ": add address ", address.ToString(), "/", prefix_length);
  if (address.family == base::IpAddress::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an IPv4 or IPv6 address"));
  }
  const base::ByteSpan bytes = address.span();
  if (std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; })) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the unspecified address cannot be an interface's address"));
  }
  const int max_length = address.family == base::IpAddress::kV4 ? 32 : 128;
  if (prefix_length < 0 || prefix_length > max_length) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the prefix length must be 0 to ", max_length));
  }

  if (address.family == base::IpAddress::kV4) {
    ifreq ifr = MakeIfreq(name_);
    SetSockaddrIn(&ifr.ifr_addr, address.v4());
    P2P_RETURN_IF_ERROR(InterfaceIoctl(SIOCSIFADDR, &ifr, what));
    // SIOCSIFADDR gave the address its classful mask; set the one asked for.
    const uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
    ifr = MakeIfreq(name_);
    SetSockaddrIn(&ifr.ifr_netmask, mask);
    return InterfaceIoctl(SIOCSIFNETMASK, &ifr, what);
  }

  // IPv6 has no SIOCSIFADDR on an AF_INET socket; netlink it is. The kernel never runs
  // duplicate address detection on a NOARP device like a TUN, and IFA_F_NODAD says so anyway,
  // so the address is usable at once.
  ifaddrmsg ifa;
  std::memset(&ifa, 0, sizeof(ifa));
  ifa.ifa_family = AF_INET6;
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  ifa.ifa_flags = IFA_F_NODAD;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;  // the kernel derives the real scope from the address
  ifa.ifa_index = static_cast<uint32_t>(index_);
  NetlinkRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
  req.AddAttribute(IFA_LOCAL, address.span());
  req.AddAttribute(IFA_ADDRESS, address.span());
  return req.Transact(what);
}

absl::Status TunDevice::AddHostAddress(const base::IpAddress& address) {
  const std::string what = absl::StrCat("tun ", name_, ": add host address ", address.ToString());
  if (address.family == base::IpAddress::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an IPv4 or IPv6 address"));
  }
  ifaddrmsg ifa;
  std::memset(&ifa, 0, sizeof(ifa));
  ifa.ifa_family = address.family == base::IpAddress::kV4 ? AF_INET : AF_INET6;
  ifa.ifa_prefixlen = address.family == base::IpAddress::kV4 ? 32 : 128;
  ifa.ifa_flags = IFA_F_NODAD;
  // Host scope: local sockets may bind it, but the kernel never picks it as the source of a
  // packet to another host, so the interface's own address stays the tunnel's source.
  ifa.ifa_scope = RT_SCOPE_HOST;
  ifa.ifa_index = static_cast<uint32_t>(index_);
  NetlinkRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
  req.AddAttribute(IFA_LOCAL, address.span());
  req.AddAttribute(IFA_ADDRESS, address.span());
  return req.Transact(what);
}

absl::Status TunDevice::SetUp(bool up) {
  const std::string what = absl::StrCat("tun ", name_, ": set ", up ? "up" : "down");
  ifreq ifr = MakeIfreq(name_);
  P2P_RETURN_IF_ERROR(InterfaceIoctl(SIOCGIFFLAGS, &ifr, what));
  if (up) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  }
  return InterfaceIoctl(SIOCSIFFLAGS, &ifr, what);
}

absl::Status TunDevice::AddRoute(const base::IpPrefix& prefix) { return ChangeRoute(prefix, true); }

absl::Status TunDevice::RemoveRoute(const base::IpPrefix& prefix) { return ChangeRoute(prefix, false); }

absl::Status TunDevice::ChangeRoute(const base::IpPrefix& prefix, bool add) {
  const std::string what = absl::StrCat("tun ", name_, add ? ": add route " : ": remove route ", prefix.ToString());
  const bool v4 = prefix.address.family == base::IpAddress::kV4;
  if (!v4 && prefix.address.family != base::IpAddress::kV6) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an IPv4 or IPv6 prefix"));
  }
  // What `ip route add|del PREFIX dev NAME` sends: a unicast device route in the main table.
  rtmsg rt;
  std::memset(&rt, 0, sizeof(rt));
  rt.rtm_family = v4 ? AF_INET : AF_INET6;
  rt.rtm_dst_len = prefix.length;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = add ? RTPROT_BOOT : RTPROT_UNSPEC;
  rt.rtm_scope = add ? (v4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE) : RT_SCOPE_NOWHERE;
  rt.rtm_type = add ? RTN_UNICAST : RTN_UNSPEC;  // a delete matches the route whatever its type
  NetlinkRequest req(add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_EXCL : 0, &rt, sizeof(rt));
  req.AddAttribute(RTA_DST, prefix.address.span());
  req.AddU32(RTA_OIF, static_cast<uint32_t>(index_));
  return req.Transact(what);
}

}  // namespace p2proxy::net
