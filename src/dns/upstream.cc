// upstream.cc: c-ares on the libuv loop, used as a raw query forwarder.
#include "dns/upstream.h"

#include <arpa/inet.h>

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::dns {

// Pending is one forwarded query: who to answer, and with which id.
struct Upstream::Pending {
  Upstream* owner;
  uint16_t id;
  ResponseCallback done;
};

Upstream::Upstream(net::Loop& loop) : loop_(loop), timer_(loop) {}

absl::StatusOr<std::unique_ptr<Upstream>> Upstream::Create(net::Loop& loop, const Options& options) {
  if (options.servers.empty()) {
    return absl::InvalidArgumentError(
        "dns upstream: no upstream resolver (the original resolv.conf named none); set "
        "dns.upstreams in the client config");
  }
  static std::once_flag once;
  static int init_rc = ARES_SUCCESS;
  std::call_once(once, [] { init_rc = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_rc != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("dns upstream: c-ares init: ", ares_strerror(init_rc)));
  }
  std::unique_ptr<Upstream> up(new Upstream(loop));
  ares_options opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.sock_state_cb = &Upstream::OnSocketState;
  opts.sock_state_cb_data = up.get();
  opts.timeout = static_cast<int>(absl::ToInt64Milliseconds(options.timeout));
  opts.tries = options.tries;
  // No search list, no hosts file: this channel only relays messages. ARES_FLAG_EDNS (with
  // ednspsz) only raises the size of UDP answer c-ares accepts before retrying over TCP, from
  // 512 to 4096; ares_send adds no OPT of its own, so the client's query goes as it came.
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
  opts.ednspsz = 4096;
  opts.ndomains = 0;
  opts.domains = nullptr;
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                   ARES_OPT_DOMAINS | ARES_OPT_EDNSPSZ;
  int rc = ares_init_options(&up->channel_, &opts, mask);
  if (rc != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("dns upstream: c-ares channel: ", ares_strerror(rc)));
  }
  // The servers replace whatever c-ares read from resolv.conf (which may name us).
  std::vector<ares_addr_port_node> nodes(options.servers.size());
  for (size_t i = 0; i < options.servers.size(); ++i) {
    const base::SocketAddress& s = options.servers[i];
    ares_addr_port_node& n = nodes[i];
    std::memset(&n, 0, sizeof(n));
    n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
    n.family = s.family();
    if (s.family() == AF_INET) {
      std::memcpy(&n.addr.addr4, &reinterpret_cast<const sockaddr_in*>(s.sa())->sin_addr, 4);
    } else {
      std::memcpy(&n.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(s.sa())->sin6_addr, 16);
    }
    n.udp_port = s.port();
    n.tcp_port = s.port();
  }
  rc = ares_set_servers_ports(up->channel_, nodes.data());
  if (rc != ARES_SUCCESS) {
    return absl::InternalError(absl::StrCat("dns upstream: set servers: ", ares_strerror(rc)));
  }
  std::string list;
  for (const auto& s : options.servers) absl::StrAppend(&list, list.empty() ? "" : ",", s.ToString());
  P2P_LOG(kInfo, "dns.upstream_ready").Kv("servers", list);
  return up;
}

Upstream::~Upstream() {
  destroying_ = true;
  timer_.Stop();
  // ares_destroy runs every pending callback (ARES_EDESTRUCTION) and closes its sockets, which
  // reaches OnSocketState for each; the polls are closed below in any case.
  if (channel_) ares_destroy(channel_);
  polls_.clear();
}

void Upstream::Forward(base::ByteSpan query, ResponseCallback done) {
  if (query.size() < 12 || query.size() > 65535) {
    loop_.Post([done = std::move(done)]() mutable {
      done(absl::InvalidArgumentError("dns upstream: not a DNS message"));
    });
    return;
  }
  auto* p = new Pending{this, static_cast<uint16_t>((query[0] << 8) | query[1]), std::move(done)};
  ++pending_;
  ++counters_.sent;
  ares_send(channel_, query.data(), static_cast<int>(query.size()), &Upstream::OnAnswer, p);
  ArmTimer();
}

void Upstream::OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  Upstream* self = p->owner;
  --self->pending_;
  absl::StatusOr<std::vector<uint8_t>> result;
  if (status == ARES_SUCCESS && abuf != nullptr && alen >= 12) {
    std::vector<uint8_t> bytes(abuf, abuf + alen);
    bytes[0] = static_cast<uint8_t>(p->id >> 8);
    bytes[1] = static_cast<uint8_t>(p->id);
    ++self->counters_.answered;
    result = std::move(bytes);
  } else if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
    result = absl::CancelledError("dns upstream: shutting down");
  } else {
    ++self->counters_.failed;
    result = absl::UnavailableError(absl::StrCat("dns upstream: ", ares_strerror(status)));
  }
  if (self->destroying_) {
    // The owner is going away: answer now, while it still exists.
    p->done(std::move(result));
    return;
  }
  // c-ares may call back from inside ares_send or ares_process_fd; report on a later turn.
  self->loop_.Post([done = std::move(p->done), result = std::move(result)]() mutable {
    done(std::move(result));
  });
}

void Upstream::OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<Upstream*>(data);
  if (!readable && !writable) {
    // c-ares is about to close fd: stop watching it first.
    self->polls_.erase(fd);
    return;
  }
  if (self->destroying_) return;
  auto it = self->polls_.find(fd);
  if (it == self->polls_.end()) {
    it = self->polls_.emplace(fd, net::UvHandle<uv_poll_t>()).first;
    if (uv_poll_init_socket(self->loop_.uv(), it->second.get(), fd) != 0) {
      P2P_LOG(kWarn, "dns.upstream_poll_failed").Kv("fd", fd);
      self->polls_.erase(it);
      return;
    }
    it->second.MarkInitialized();
    it->second->data = self;
  }
  const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(it->second.get(), events, [](uv_poll_t* h, int status, int ev) {
    auto* up = static_cast<Upstream*>(h->data);
    if (!up) return;
    int fd_of = -1;
    uv_fileno(reinterpret_cast<uv_handle_t*>(h), &fd_of);
    const auto s = static_cast<ares_socket_t>(fd_of);
    // An error on the socket is c-ares' to handle: let it read (and fail) the socket.
    const bool r = status < 0 || (ev & UV_READABLE);
    const bool w = status == 0 && (ev & UV_WRITABLE);
    up->Process(r ? s : ARES_SOCKET_BAD, w ? s : ARES_SOCKET_BAD);
  });
}

void Upstream::Process(ares_socket_t read_fd, ares_socket_t write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  ArmTimer();
}

void Upstream::ArmTimer() {
  if (destroying_) return;
  if (pending_ == 0) {
    timer_.Stop();
    return;
  }
  timeval max{1, 0}, tv{};
  timeval* next = ares_timeout(channel_, &max, &tv);
  const absl::Duration after =
      next ? absl::Seconds(next->tv_sec) + absl::Microseconds(next->tv_usec) : absl::Seconds(1);
  timer_.Start(after, [this] { Process(ARES_SOCKET_BAD, ARES_SOCKET_BAD); });
}

}  // namespace p2proxy::dns
