// dialer.cc: DialControl: resolve, connect, TLS with the pin, then a node-side Connection.
#include "control/dialer.h"

#include <netdb.h>

#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/address.h"
#include "base/log.h"
#include "net/tcp.h"
#include "net/timer.h"
#include "tls/tls_stream.h"

namespace p2proxy::control {

absl::Status SplitHostPort(std::string_view host_port, std::string* host, uint16_t* port) {
  std::string_view h;
  std::string_view p;
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos || close + 1 >= host_port.size() || host_port[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("control: address '", std::string(host_port), "': expected [IPv6]:port"));
    }
    h = host_port.substr(1, close - 1);
    p = host_port.substr(close + 2);
  } else {
    const size_t colon = host_port.rfind(':');
    if (colon == std::string_view::npos || host_port.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("control: address '", std::string(host_port), "': expected host:port (IPv6 in brackets)"));
    }
    h = host_port.substr(0, colon);
    p = host_port.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (h.empty()) return absl::InvalidArgumentError(absl::StrCat("control: address '", std::string(host_port), "': empty host"));
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("control: address '", std::string(host_port), "': '", std::string(p), "' is not a port"));
  }
  *host = std::string(h);
  *port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

namespace {

class Dial final : public DialAttempt {
 public:
  Dial(net::Loop& loop, std::string host_port, DialOptions options, std::string alpn, DialCallback done,
       TlsDialCallback tls_done)
      : loop_(loop),
        host_port_(std::move(host_port)),
        options_(std::move(options)),
        alpn_(std::move(alpn)),
        done_(std::move(done)),
        tls_done_(std::move(tls_done)),
        timer_(loop),
        alive_(std::make_shared<Dial*>(this)) {}

  ~Dial() override {
    *alive_ = nullptr;
    if (tls_) {
      tls_->Close();
      loop_.DeferDelete(std::move(tls_));
    }
  }

  void Begin() {
    absl::Status st = SplitHostPort(host_port_, &host_, &port_);
    if (st.ok() && options_.spki_sha256.size() != 32) {
      st = absl::InvalidArgumentError(absl::StrCat("spki_sha256: ", options_.spki_sha256.size(),
                                                   " bytes; the server's key pin is 32"));
    }
    if (!st.ok()) {
      // Reported on a later turn, like every other outcome.
      loop_.Post([alive = alive_, st] {
        if (Dial* self = *alive) self->Fail(std::string(st.message()));
      });
      return;
    }
    timer_.Start(options_.timeout, [this] {
      Fail(absl::StrCat("timed out after ", absl::FormatDuration(options_.timeout), " (", phase_, ")"));
    });
    if (auto ip = base::SocketAddress::FromIp(host_, port_); ip.ok()) {
      addrs_.push_back(*ip);
      ConnectNext();
      return;
    }
    Resolve();
  }

 private:
  struct ResolveReq {
    uv_getaddrinfo_t req;
    std::shared_ptr<Dial*> alive;
  };

  void Resolve() {
    phase_ = "DNS";
    auto req = std::make_unique<ResolveReq>();
    req->alive = alive_;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const std::string port = std::to_string(port_);
    const int rc = uv_getaddrinfo(loop_.uv(), &req->req, &Dial::OnResolved, host_.c_str(), port.c_str(), &hints);
    if (rc < 0) {
      loop_.Post([alive = alive_, rc] {
        if (Dial* self = *alive) self->Fail(absl::StrCat("DNS: ", uv_strerror(rc)));
      });
      return;
    }
    req.release();  // owned by libuv until OnResolved
  }

  static void OnResolved(uv_getaddrinfo_t* r, int status, addrinfo* res) {
    std::unique_ptr<ResolveReq> req(reinterpret_cast<ResolveReq*>(r));
    std::vector<base::SocketAddress> addrs;
    for (addrinfo* ai = status == 0 ? res : nullptr; ai; ai = ai->ai_next) {
      base::SocketAddress a = base::SocketAddress::FromSockaddr(ai->ai_addr);
      if (a.valid()) addrs.push_back(a);
    }
    if (res) uv_freeaddrinfo(res);
    Dial* self = *req->alive;
    if (!self || self->finished_) return;
    if (status < 0) {
      self->Fail(absl::StrCat("DNS: ", uv_strerror(status)));
      return;
    }
    if (addrs.empty()) {
      self->Fail("DNS: no address");
      return;
    }
    self->addrs_ = std::move(addrs);
    self->ConnectNext();
  }

  void ConnectNext() {
    if (next_ >= addrs_.size()) {
      Fail(std::string(last_error_.message()));
      return;
    }
    phase_ = "connect";
    remote_ = addrs_[next_++];
    net::TcpStream::Connect(loop_, remote_, [alive = alive_](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      Dial* self = *alive;
      if (!self || self->finished_) return;
      if (!s.ok()) {
        self->last_error_ = s.status();
        self->ConnectNext();
        return;
      }
      self->StartTls(*std::move(s));
    });
  }

  void StartTls(std::unique_ptr<net::TcpStream> tcp) {
    phase_ = "TLS handshake";
    tls::ClientTlsOptions o;
    o.server_name = options_.server_name;
    o.alpn = {alpn_};
    o.ca_pem = options_.ca_pem;
    o.spki_sha256 = options_.spki_sha256;
    o.client_chain_pem = options_.client_chain_pem;
    o.client_key_pem = options_.client_key_pem;
    o.min_version_tls13 = true;
    tls_ = tls::TlsStream::Client(loop_, std::move(tcp), o);
    tls_->Handshake([alive = alive_](const absl::Status& status) {
      if (Dial* self = *alive) self->OnHandshake(status);
    });
  }

  void OnHandshake(const absl::Status& status) {
    if (finished_) return;
    if (!status.ok()) {
      Fail(absl::StrCat("TLS: ", status.message()));
      return;
    }
    if (tls_->alpn() != alpn_) {
      Fail(absl::StrCat("TLS: the server did not select ALPN ", alpn_));
      return;
    }
    if (tls_done_) {
      finished_ = true;
      timer_.Stop();
      TlsDialCallback done = std::move(tls_done_);
      done(std::move(tls_));
      return;
    }
    ConnectionOptions o = options_.connection;
    o.role = Role::kNode;
    o.peer = host_ == remote_.IpString() ? remote_.ToString() : absl::StrCat(host_port_, " (", remote_.ToString(), ")");
    o.node_has_certificate = !options_.client_chain_pem.empty();
    o.node_id.clear();
    auto conn = std::make_unique<Connection>(loop_, std::move(tls_), std::move(o));
    P2P_LOG(kInfo, "control.connected").Kv("server", conn->options().peer).Kv("enrolling", options_.client_chain_pem.empty());
    Finish(std::move(conn));
  }

  void Fail(const std::string& what) {
    if (finished_) return;
    if (tls_) {
      tls_->Close();
      loop_.DeferDelete(std::move(tls_));
    }
    const std::string message = absl::StrCat("control: dial ", host_port_, ": ", what);
    P2P_LOG(kInfo, "control.dial_failed").Kv("server", host_port_).Kv("error", message);
    Finish(absl::UnavailableError(message));
  }

  // Finish runs the callback last: it may destroy this attempt.
  void Finish(absl::StatusOr<std::unique_ptr<Connection>> result) {
    finished_ = true;
    timer_.Stop();
    if (tls_done_) {
      TlsDialCallback done = std::move(tls_done_);
      done(result.status());  // only failures reach here on a TLS dial
      return;
    }
    DialCallback done = std::move(done_);
    if (done) done(std::move(result));
  }

  net::Loop& loop_;
  std::string host_port_;
  DialOptions options_;
  std::string alpn_;
  DialCallback done_;
  TlsDialCallback tls_done_;
  net::Timer timer_;
  std::string host_;
  uint16_t port_ = 0;
  std::string phase_ = "start";
  std::vector<base::SocketAddress> addrs_;
  size_t next_ = 0;
  base::SocketAddress remote_;
  absl::Status last_error_ = absl::UnavailableError("no address");
  std::unique_ptr<tls::TlsStream> tls_;
  bool finished_ = false;
  std::shared_ptr<Dial*> alive_;
};

}  // namespace

std::unique_ptr<DialAttempt> DialControl(net::Loop& loop, std::string_view host_port, DialOptions options,
                                         DialCallback done) {
  auto dial = std::make_unique<Dial>(loop, std::string(host_port), std::move(options), std::string(kControlAlpn),
                                     std::move(done), nullptr);
  dial->Begin();
  return dial;
}

std::unique_ptr<DialAttempt> DialTls(net::Loop& loop, std::string_view host_port, DialOptions options,
                                     std::string alpn, TlsDialCallback done) {
  auto dial = std::make_unique<Dial>(loop, std::string(host_port), std::move(options), std::move(alpn), nullptr,
                                     std::move(done));
  dial->Begin();
  return dial;
}

}  // namespace p2proxy::control
