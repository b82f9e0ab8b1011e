// connect_command.cc: LiveStatus, ConnectThrough and Pump.
#include "client/connect_command.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/address.h"
#include "base/errno_text.h"
#include "client/overlay.h"
#include "client/socks5.h"
#include "client/status_report.h"

namespace p2proxy::client {

namespace {

int RemainingMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
}

// ConnectTcp connects a blocking socket to |to| within the deadline.
absl::StatusOr<int> ConnectTcp(const base::SocketAddress& to, absl::Time deadline) {
  const int fd = socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", base::ErrnoText(errno)));
  if (connect(fd, to.sa(), to.sa_len()) != 0 && errno != EINPROGRESS) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", to.ToString(), ": ", base::ErrnoText(e)));
  }
  pollfd p{fd, POLLOUT, 0};
  const int r = poll(&p, 1, RemainingMs(deadline));
  int err = 0;
  socklen_t len = sizeof(err);
  if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    close(fd);
    if (r == 0) return absl::DeadlineExceededError(absl::StrCat("connect ", to.ToString(), ": no answer"));
    return absl::UnavailableError(absl::StrCat("connect ", to.ToString(), ": ", base::ErrnoText(err ? err : errno)));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

absl::Status ReadExactly(int fd, uint8_t* out, size_t n, absl::Time deadline) {
  size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, RemainingMs(deadline)) <= 0) return absl::DeadlineExceededError("the SOCKS5 proxy did not answer");
    const ssize_t r = read(fd, out + got, n - got);
    if (r == 0) return absl::UnavailableError("the SOCKS5 proxy closed the connection");
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("read: ", base::ErrnoText(errno)));
    }
    got += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

bool WriteAll(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

const char* SocksReplyText(uint8_t rep) {
  switch (rep) {
    case socks5::kRepGeneralFailure: return "general failure";
    case socks5::kRepNotAllowed: return "not allowed";
    case socks5::kRepNetworkUnreachable: return "network unreachable";
    case socks5::kRepHostUnreachable: return "not a private resource the client knows (host unreachable)";
    case socks5::kRepConnectionRefused: return "connection refused by the resource or its site";
    case socks5::kRepTtlExpired: return "no answer from the resource (timed out)";
    case socks5::kRepCommandNotSupported: return "command not supported";
    case socks5::kRepAddressTypeNotSupported: return "address type not supported";
  }
  return "unknown reply";
}

// Socks5Connect runs the SOCKS5 CONNECT handshake with a host name (resolved by the proxy).
absl::Status Socks5Connect(int fd, const std::string& host, uint16_t port, absl::Time deadline) {
  if (host.size() > 255) return absl::InvalidArgumentError(absl::StrCat("host name too long: ", host.size(), " bytes"));
  std::vector<uint8_t> out = {socks5::kVersion5, 1, socks5::kMethodNoAuth, socks5::kVersion5, socks5::kCmdConnect,
                              socks5::kReserved, socks5::kAtypDomainName, static_cast<uint8_t>(host.size())};
  out.insert(out.end(), host.begin(), host.end());
  out.push_back(static_cast<uint8_t>(port >> 8));
  out.push_back(static_cast<uint8_t>(port));
  if (!WriteAll(fd, out.data(), out.size())) return absl::UnavailableError("write to the SOCKS5 proxy failed");
  uint8_t sel[2];
  if (absl::Status st = ReadExactly(fd, sel, 2, deadline); !st.ok()) return st;
  if (sel[0] != socks5::kVersion5 || sel[1] != socks5::kMethodNoAuth) {
    return absl::UnavailableError("the SOCKS5 proxy refused the method");
  }
  uint8_t head[4];
  if (absl::Status st = ReadExactly(fd, head, 4, deadline); !st.ok()) return st;
  if (head[1] != socks5::kRepSucceeded) {
    return absl::UnavailableError(absl::StrCat(host, ":", port, ": ", SocksReplyText(head[1])));
  }
  size_t rest = head[3] == socks5::kAtypIpv4 ? 4 + 2 : head[3] == socks5::kAtypIpv6 ? 16 + 2 : 0;
  if (head[3] == socks5::kAtypDomainName) {
    uint8_t len = 0;
    if (absl::Status st = ReadExactly(fd, &len, 1, deadline); !st.ok()) return st;
    rest = len + 2u;
  }
  if (rest == 0) return absl::UnavailableError("the SOCKS5 proxy sent a malformed reply");
  uint8_t skip[300];
  return ReadExactly(fd, skip, rest, deadline);
}

}  // namespace

absl::StatusOr<status::ClientStatus> LiveStatus(const std::string& status_file, absl::Duration max_age) {
  auto s = ReadStatusFile(status_file);
  if (!s.ok()) return s.status();
  if (s->pid() == 0 || (kill(static_cast<pid_t>(s->pid()), 0) != 0 && errno == ESRCH)) {
    return absl::NotFoundError(absl::StrCat("the client that wrote ", status_file, " (pid ", s->pid(), ") is not running"));
  }
  if (absl::Now() - absl::FromUnixMillis(s->updated_unix_ms()) > max_age) {
    return absl::UnavailableError(absl::StrCat("the client (pid ", s->pid(), ") has not updated ", status_file,
                                               " for over ", absl::FormatDuration(max_age), ": is it stuck?"));
  }
  return s;
}

absl::StatusOr<int> ConnectThrough(const status::ClientStatus& s, const std::string& host, uint16_t port,
                                   absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  if (!s.proxies().socks5().empty()) {
    auto proxy = base::SocketAddress::Parse(s.proxies().socks5());
    if (!proxy.ok()) return absl::InvalidArgumentError(absl::StrCat("status: socks5 '", s.proxies().socks5(), "' does not parse"));
    auto fd = ConnectTcp(*proxy, deadline);
    if (!fd.ok()) return fd.status();
    absl::Status st = Socks5Connect(*fd, host, port, deadline);
    if (!st.ok()) {
      close(*fd);
      return st;
    }
    return *fd;
  }
  if (s.mode() != "tun") {
    return absl::FailedPreconditionError("the running client has neither a SOCKS5 proxy nor a TUN interface: start it with --socks5");
  }
  // TUN mode: the kernel routes resource addresses into the tunnel.
  PrivateNames names;
  std::vector<ClientResource> resources;
  for (const status::Resource& r : s.resources()) {
    auto ip = base::IpAddress::Parse(r.address());
    if (ip.ok()) resources.push_back(ClientResource{r.name(), *ip});
  }
  names.Set({}, resources);
  auto addr = names.Resolve(host);
  if (!addr.ok()) return absl::NotFoundError(absl::StrCat(host, ": not a private resource the client knows"));
  auto to = base::SocketAddress::FromIp(addr->ToString(), port);
  if (!to.ok()) return to.status();
  return ConnectTcp(*to, deadline);
}

absl::Status Pump(int fd) {
  bool in_open = true, out_open = true;
  std::vector<uint8_t> buf(64 * 1024);
  while (in_open || out_open) {
    pollfd p[2] = {{in_open ? 0 : -1, POLLIN, 0}, {out_open ? fd : -1, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return absl::UnavailableError(absl::StrCat("poll: ", base::ErrnoText(errno)));
    }
    if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
      const ssize_t n = read(0, buf.data(), buf.size());
      if (n > 0) {
        if (!WriteAll(fd, buf.data(), static_cast<size_t>(n))) {
          close(fd);
          return absl::UnavailableError(absl::StrCat("the connection failed: ", base::ErrnoText(errno)));
        }
      } else if (n == 0 || errno != EINTR) {
        in_open = false;
        shutdown(fd, SHUT_WR);
      }
    }
    if (out_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
      const ssize_t n = read(fd, buf.data(), buf.size());
      if (n > 0) {
        if (!WriteAll(1, buf.data(), static_cast<size_t>(n))) {
          close(fd);
          return absl::OkStatus();  // our reader went away: done
        }
      } else if (n == 0) {
        out_open = false;
        close(1);
        // The remote side finished: so are we, even if stdin stays open (ssh closes it later).
        in_open = false;
      } else if (errno != EINTR) {
        const int e = errno;
        close(fd);
        return absl::UnavailableError(absl::StrCat("the connection failed: ", base::ErrnoText(e)));
      }
    }
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace p2proxy::client
