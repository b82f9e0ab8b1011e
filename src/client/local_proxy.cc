// local_proxy.cc: LocalProxies: the SOCKS5 and HTTP CONNECT proxies and the port forwards.
#include "client/local_proxy.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "client/http_connect.h"
#include "client/socks5.h"
#include "net/timer.h"
#include "net/udp.h"

namespace p2proxy::client {

namespace {

constexpr size_t kMaxSocksHandshake = 600;  // greeting (257) + request (262), with room

uint8_t SocksReplyFor(const absl::Status& st) {
  if (absl::IsNotFound(st)) return socks5::kRepHostUnreachable;
  if (absl::IsDeadlineExceeded(st)) return socks5::kRepTtlExpired;
  if (absl::IsInvalidArgument(st)) return socks5::kRepNotAllowed;
  return socks5::kRepConnectionRefused;
}

int HttpStatusFor(const absl::Status& st) {
  if (absl::IsNotFound(st)) return 404;
  if (absl::IsDeadlineExceeded(st)) return 504;
  if (absl::IsInvalidArgument(st)) return 403;
  return 502;
}

std::string HostText(const socks5::Host& host) {
  if (const auto* ip = std::get_if<base::IpAddress>(&host)) return ip->ToString();
  return std::get<std::string>(host);
}

}  // namespace

absl::StatusOr<PortForward> ParsePortForward(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() == 3) parts.insert(parts.begin(), "127.0.0.1");
  if (parts.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat("forward '", text,
                                                   "': expected [LISTEN_IP:]LISTEN_PORT:HOST:PORT, "
                                                   "e.g. 2222:ssh.example.internal:22"));
  }
  uint32_t listen_port = 0, port = 0;
  if (!absl::SimpleAtoi(parts[1], &listen_port) || listen_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("forward '", text, "': listen port '", parts[1], "' is not 0-65535"));
  }
  if (!absl::SimpleAtoi(parts[3], &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("forward '", text, "': port '", parts[3], "' is not 1-65535"));
  }
  std::string_view problem;
  if (!socks5::ParseHostName(std::string_view(parts[2].data(), parts[2].size()), &problem)) {
    return absl::InvalidArgumentError(
        absl::StrCat("forward '", text, "': host '", parts[2], "' ", absl::string_view(problem.data(), problem.size())));
  }
  auto listen = base::SocketAddress::FromIp(parts[0], static_cast<uint16_t>(listen_port));
  if (!listen.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("forward '", text, "': listen address '", parts[0],
                                                   "' is not an IP address"));
  }
  PortForward f;
  f.listen = *listen;
  f.host = std::string(parts[2]);
  f.port = static_cast<uint16_t>(port);
  return f;
}

// UdpAssociation relays one SOCKS5 client's UDP datagrams (RFC 1928 §7) for as long as its
// TCP connection stays open: a host UDP socket on the listener's address for the client, one
// overlay UDP socket for the resources. Only datagrams from the client's IP are taken; the
// first one fixes its port (or the request named it).
class LocalProxies::UdpAssociation {
 public:
  UdpAssociation(LocalProxies& proxies, absl::AnyInvocable<void()> idle) : proxies_(proxies), idle_timer_(proxies.loop()), on_idle_(std::move(idle)) {
    proxies_.UdpOpened();
  }
  ~UdpAssociation() { Detach(); }

  // Detach releases the sockets and the count while the proxies still exist (the association
  // itself may be deleted on a later turn, after them).
  void Detach() {
    idle_timer_.Stop();
    socket_.reset();
    overlay_.reset();
    if (counted_) {
      counted_ = false;
      proxies_.UdpClosed();
    }
  }

  absl::Status Open(const base::SocketAddress& local_ip, const base::IpAddress& client_ip, uint16_t client_port) {
    client_ip_ = client_ip;
    client_port_ = client_port;
    auto overlay = proxies_.overlay().OpenUdp(
        [this](base::ByteSpan data, const base::IpAddress& from, uint16_t port) { FromOverlay(data, from, port); });
    if (!overlay.ok()) return overlay.status();
    overlay_ = std::move(*overlay);
    net::UdpSocket::Options o;
    o.batch = 1;
    o.rcvbuf = 0;
    o.sndbuf = 0;
    auto bind_at = base::SocketAddress::FromIp(local_ip.IpString(), 0);
    if (!bind_at.ok()) return bind_at.status();
    auto sock = net::UdpSocket::Bind(
        proxies_.loop(), *bind_at,
        [this](absl::Span<const base::Datagram> batch) {
          for (const base::Datagram& d : batch) FromClient(d);
        },
        o);
    if (!sock.ok()) return sock.status();
    socket_ = std::move(*sock);
    Touch();
    return absl::OkStatus();
  }
  base::SocketAddress bound() const { return socket_->local_address(); }

 private:
  void Touch() {
    idle_timer_.Start(proxies_.options().udp_idle, [this] {
      if (on_idle_) on_idle_();
    });
  }
  void FromClient(const base::Datagram& d) {
    LocalProxyCounters& c = proxies_.mutable_counters();
    auto ip = base::IpAddress::Parse(d.addr.IpString());
    if (!ip.ok() || *ip != client_ip_ || (client_port_ != 0 && d.addr.port() != client_port_)) {
      ++c.udp_dropped;  // not our client: an association is not an open relay
      return;
    }
    client_port_ = d.addr.port();
    socks5::Error error = socks5::Error::kNone;
    std::optional<socks5::UdpDatagram> dg = socks5::ParseUdpDatagram(d.data, &error);
    if (!dg) {
      ++c.udp_dropped;
      P2P_LOG(kDebug, "proxy.udp_dropped").Kv("reason", std::string(socks5::ErrorName(error)));
      return;
    }
    absl::StatusOr<base::IpAddress> to = proxies_.names().Resolve(HostText(dg->destination.host));
    if (!to.ok()) {
      ++c.udp_dropped;
      P2P_LOG(kDebug, "proxy.udp_dropped").Kv("reason", to.status().message());
      return;
    }
    if (overlay_->SendTo(dg->payload, *to, dg->destination.port)) {
      ++c.udp_datagrams_out;
    } else {
      ++c.udp_dropped;
    }
    Touch();
  }
  void FromOverlay(base::ByteSpan data, const base::IpAddress& from, uint16_t port) {
    LocalProxyCounters& c = proxies_.mutable_counters();
    if (client_port_ == 0) {
      ++c.udp_dropped;  // the client has not sent yet: nowhere to deliver
      return;
    }
    std::vector<uint8_t> out = socks5::EncodeUdpHeader(socks5::Host(from), port);
    out.insert(out.end(), data.begin(), data.end());
    auto to = base::SocketAddress::FromIp(client_ip_.ToString(), client_port_);
    if (to.ok() && socket_->Send(*to, out)) {
      ++c.udp_datagrams_in;
    } else {
      ++c.udp_dropped;
    }
    Touch();
  }

  LocalProxies& proxies_;
  net::Timer idle_timer_;
  absl::AnyInvocable<void()> on_idle_;
  std::unique_ptr<OverlayUdp> overlay_;
  std::unique_ptr<net::UdpSocket> socket_;
  bool counted_ = true;
  base::IpAddress client_ip_;
  uint16_t client_port_ = 0;
};

// Session is one local connection until it is joined to a resource (then a Splice owns it), or
// for its whole life when it carries a UDP association.
class LocalProxies::Session final : public net::StreamHandler {
 public:
  enum class State { kGreeting, kRequest, kHttpHead, kDialing, kUdp, kClosing };

  Session(LocalProxies& proxies, Kind kind, const PortForward* forward, std::unique_ptr<net::TcpStream> conn)
      : proxies_(proxies), kind_(kind), forward_(forward), conn_(std::move(conn)), timer_(proxies.loop()),
        token_(std::make_shared<Session*>(this)) {}
  ~Session() override {
    *token_ = nullptr;
    timer_.Stop();
    udp_.reset();
    if (conn_) conn_->Close();
  }

  // Detach ends everything that refers to the proxies (the connection, its timer, a UDP
  // association); the session object itself is deleted on a later turn, maybe after them.
  void Detach() {
    *token_ = nullptr;
    timer_.Stop();
    if (udp_) udp_->Detach();
    if (conn_) conn_->Close();
  }

  void Start() {
    if (kind_ == Kind::kForward) {
      conn_->PauseReading();  // bytes wait in the kernel until the resource answers
      conn_->SetHandler(this);
      state_ = State::kDialing;
      return Dial(forward_->host, forward_->port);
    }
    state_ = kind_ == Kind::kSocks5 ? State::kGreeting : State::kHttpHead;
    timer_.Start(proxies_.options().handshake_timeout, [this] {
      ++proxies_.mutable_counters().handshake_timeouts;
      P2P_LOG(kInfo, "proxy.handshake_timeout").Kv("proxy", KindName());
      proxies_.EndSession(this);
    });
    conn_->SetHandler(this);
  }

  void OnData(base::ByteSpan data) override {
    if (state_ == State::kDialing || state_ == State::kClosing) {
      early_.insert(early_.end(), data.begin(), data.end());  // (bounded: reading is paused)
      return;
    }
    if (state_ == State::kUdp) return;  // the control connection carries nothing more
    in_.insert(in_.end(), data.begin(), data.end());
    if (kind_ == Kind::kSocks5) {
      SocksStep();
    } else {
      HttpStep();
    }
  }
  void OnEnd() override {
    if (state_ == State::kDialing) return;  // a client may half-close after its request
    proxies_.EndSession(this);
  }
  void OnError(const absl::Status&) override { proxies_.EndSession(this); }

 private:
  const char* KindName() const {
    return kind_ == Kind::kSocks5 ? "socks5" : kind_ == Kind::kHttp ? "http" : "forward";
  }

  // Refuse answers |reply| and closes once it is written.
  void Refuse(std::vector<uint8_t> reply) {
    state_ = State::kClosing;
    timer_.Stop();
    conn_->PauseReading();
    std::shared_ptr<Session*> token = token_;
    LocalProxies* proxies = &proxies_;
    conn_->WriteOwned(std::move(reply), [token, proxies](const absl::Status&) {
      if (*token) proxies->EndSession(*token);
    });
    conn_->Shutdown();
  }

  // TooLong: a message still incomplete after kMaxSocksHandshake bytes is not SOCKS5 (bytes
  // after a complete request are the tunnel's, and do not count).
  bool TooLong() {
    if (in_.size() <= kMaxSocksHandshake) return false;
    ++proxies_.mutable_counters().bad_handshake;
    P2P_LOG(kInfo, "proxy.socks5_refused").Kv("reason", "handshake longer than 600 bytes");
    proxies_.EndSession(this);
    return true;
  }

  void SocksStep() {
    LocalProxyCounters& c = proxies_.mutable_counters();
    if (state_ == State::kGreeting) {
      auto g = socks5::ParseGreeting(in_);
      if (g.outcome == socks5::Outcome::kNeedMore) {
        TooLong();
        return;
      }
      if (g.outcome == socks5::Outcome::kError) {
        ++c.bad_handshake;
        P2P_LOG(kInfo, "proxy.socks5_refused").Kv("reason", g.message);
        return proxies_.EndSession(this);
      }
      in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(g.consumed));
      const auto sel = socks5::EncodeMethodSelection(g.value.no_auth_offered);
      if (!g.value.no_auth_offered) {
        ++c.bad_handshake;
        P2P_LOG(kInfo, "proxy.socks5_refused").Kv("reason", "the client offers no method without authentication");
        return Refuse(std::vector<uint8_t>(sel.begin(), sel.end()));
      }
      conn_->Write(base::ByteSpan(sel.data(), sel.size()));
      state_ = State::kRequest;
    }
    if (state_ != State::kRequest) return;
    auto r = socks5::ParseRequest(in_);
    if (r.outcome == socks5::Outcome::kNeedMore) {
      TooLong();
      return;
    }
    if (r.outcome == socks5::Outcome::kError) {
      ++c.bad_handshake;
      P2P_LOG(kInfo, "proxy.socks5_refused").Kv("reason", r.message);
      return Refuse(socks5::EncodeReply(r.reply, base::IpAddress(), 0));
    }
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(r.consumed));
    early_ = std::move(in_);
    in_.clear();
    const socks5::Request& req = r.value;
    if (req.command == socks5::kCmdUdpAssociate) return StartUdp(req);
    if (req.command != socks5::kCmdConnect) {
      ++c.bad_handshake;
      P2P_LOG(kInfo, "proxy.socks5_refused").Kv("reason", "BIND is not supported");
      return Refuse(socks5::EncodeReply(socks5::kRepCommandNotSupported, base::IpAddress(), 0));
    }
    state_ = State::kDialing;
    conn_->PauseReading();
    Dial(HostText(req.destination.host), req.destination.port);
  }

  void HttpStep() {
    LocalProxyCounters& c = proxies_.mutable_counters();
    const HttpConnectParser::Result r = http_.Feed(in_);
    if (r == HttpConnectParser::Result::kNeedMore) {
      in_.clear();
      return;
    }
    if (r == HttpConnectParser::Result::kError) {
      in_.clear();
      ++c.bad_handshake;
      P2P_LOG(kInfo, "proxy.http_refused").Kv("status", http_.error_status()).Kv("reason", std::string(http_.error()));
      return Refuse(Bytes(http_.ErrorResponse()));
    }
    early_.assign(in_.begin() + static_cast<std::ptrdiff_t>(http_.consumed()), in_.end());
    in_.clear();
    state_ = State::kDialing;
    conn_->PauseReading();
    Dial(HostText(http_.request().target.host), http_.request().target.port);
  }

  static std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

  void Dial(const std::string& host, uint16_t port) {
    timer_.Stop();
    target_ = absl::StrCat(host, ":", port);
    absl::StatusOr<base::IpAddress> addr = proxies_.names().Resolve(host);
    if (!addr.ok()) {
      ++proxies_.mutable_counters().unknown_names;
      P2P_LOG(kInfo, "proxy.unknown_name").Kv("proxy", KindName()).Kv("target", target_).Kv("reason", addr.status().message());
      return DialFailed(addr.status());
    }
    std::shared_ptr<Session*> token = token_;
    net::Loop* loop = &proxies_.loop();  // outlives the proxies; the session may not
    timer_.Start(proxies_.options().connect_timeout, [this] {
      DialFailed(absl::DeadlineExceededError(absl::StrCat("no answer from ", target_, " within ",
                                                          absl::FormatDuration(proxies_.options().connect_timeout))));
    });
    proxies_.overlay().DialTcp(*addr, port, [token, loop](absl::StatusOr<std::unique_ptr<net::Stream>> s) {
      Session* self = *token;
      if (self == nullptr || self->state_ != State::kDialing) {
        if (s.ok()) loop->DeferDelete(std::move(*s));  // too late: the client was answered
        return;
      }
      if (!s.ok()) return self->DialFailed(s.status());
      self->Connected(std::move(*s));
    });
  }

  void DialFailed(const absl::Status& st) {
    if (state_ != State::kDialing) return;
    ++proxies_.mutable_counters().dial_failures;
    P2P_LOG(kInfo, "proxy.dial_failed").Kv("proxy", KindName()).Kv("target", target_).Kv("error", st.message());
    switch (kind_) {
      case Kind::kSocks5:
        return Refuse(socks5::EncodeReply(SocksReplyFor(st), base::IpAddress(), 0));
      case Kind::kHttp:
        return Refuse(Bytes(EncodeConnectResponse(HttpStatusFor(st), ReasonPhrase(HttpStatusFor(st)),
                                                  std::string_view(st.message().data(), st.message().size()))));
      case Kind::kForward:
        conn_->Reset();
        return proxies_.EndSession(this);
    }
  }

  void Connected(std::unique_ptr<net::Stream> remote) {
    timer_.Stop();
    state_ = State::kClosing;
    if (kind_ == Kind::kSocks5) {
      conn_->WriteOwned(socks5::EncodeReply(socks5::kRepSucceeded, base::IpAddress::V4(0, 0, 0, 0), 0));
    } else if (kind_ == Kind::kHttp) {
      conn_->WriteOwned(Bytes(EncodeConnectResponse(200, "Connection established")));
    }
    conn_->ResumeReading();
    P2P_LOG(kDebug, "proxy.connected").Kv("proxy", KindName()).Kv("target", target_);
    std::unique_ptr<net::Stream> local = std::move(conn_);
    proxies_.Join(std::move(local), std::move(remote), std::move(early_), target_);
    proxies_.EndSession(this);
  }

  void StartUdp(const socks5::Request& req) {
    LocalProxyCounters& c = proxies_.mutable_counters();
    timer_.Stop();
    if (proxies_.udp_associations_open() >= proxies_.options().max_udp_associations) {
      P2P_LOG(kWarn, "proxy.udp_refused").Kv("reason", "max_udp_associations reached");
      return Refuse(socks5::EncodeReply(socks5::kRepGeneralFailure, base::IpAddress(), 0));
    }
    auto* tcp = static_cast<net::TcpStream*>(conn_.get());
    auto peer_ip = base::IpAddress::Parse(tcp->peer_address().IpString());
    const base::IpAddress* wanted = req.destination.ip();
    const uint16_t wanted_port =
        wanted != nullptr && wanted->family == peer_ip->family && *wanted == *peer_ip ? req.destination.port : 0;
    udp_ = std::make_unique<UdpAssociation>(proxies_, [this] { proxies_.EndSession(this); });
    absl::Status st = peer_ip.ok() ? udp_->Open(tcp->local_address(), *peer_ip, wanted_port) : peer_ip.status();
    if (!st.ok()) {
      P2P_LOG(kWarn, "proxy.udp_refused").Kv("reason", st.message());
      udp_.reset();
      return Refuse(socks5::EncodeReply(socks5::kRepGeneralFailure, base::IpAddress(), 0));
    }
    ++c.udp_associations;
    state_ = State::kUdp;
    const base::SocketAddress bound = udp_->bound();
    auto bound_ip = base::IpAddress::Parse(bound.IpString());
    conn_->WriteOwned(socks5::EncodeReply(socks5::kRepSucceeded, bound_ip.ok() ? *bound_ip : base::IpAddress(), bound.port()));
  }

  LocalProxies& proxies_;
  Kind kind_;
  const PortForward* forward_;
  std::unique_ptr<net::Stream> conn_;
  net::Timer timer_;
  std::shared_ptr<Session*> token_;
  State state_ = State::kGreeting;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> early_;
  std::string target_;
  HttpConnectParser http_;
  std::unique_ptr<UdpAssociation> udp_;
};

LocalProxies::LocalProxies(net::Loop& loop, Overlay& overlay, const PrivateNames& names, LocalProxyOptions options)
    : loop_(loop), overlay_(overlay), names_(names), options_(std::move(options)) {}

LocalProxies::~LocalProxies() {
  socks5_.reset();
  http_.reset();
  forwards_.clear();
  sessions_.clear();
  // Abort runs each splice's DoneFn, which looks itself up in splices_: take them out first.
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices = std::move(splices_);
  splices_.clear();
  for (auto& [raw, splice] : splices) splice->Abort(absl::CancelledError("the client is stopping"));
}

absl::StatusOr<std::unique_ptr<LocalProxies>> LocalProxies::Start(net::Loop& loop, Overlay& overlay,
                                                                  const PrivateNames& names,
                                                                  LocalProxyOptions options) {
  std::unique_ptr<LocalProxies> p(new LocalProxies(loop, overlay, names, std::move(options)));
  LocalProxies* self = p.get();
  auto listen = [&](const base::SocketAddress& at, const char* what, Kind kind,
                    const PortForward* fwd) -> absl::StatusOr<std::unique_ptr<net::TcpListener>> {
    auto l = net::TcpListener::Listen(loop, at, [self, kind, fwd](std::unique_ptr<net::TcpStream> conn) {
      self->Accept(kind, fwd, std::move(conn));
    });
    if (!l.ok()) {
      return absl::Status(l.status().code(), absl::StrCat(what, " ", at.ToString(), ": ", l.status().message()));
    }
    P2P_LOG(kInfo, "proxy.listening").Kv("proxy", what).Kv("address", (*l)->local_address().ToString());
    return l;
  };
  if (p->options_.socks5) {
    auto l = listen(*p->options_.socks5, "socks5", Kind::kSocks5, nullptr);
    if (!l.ok()) return l.status();
    p->socks5_ = std::move(*l);
  }
  if (p->options_.http) {
    auto l = listen(*p->options_.http, "http", Kind::kHttp, nullptr);
    if (!l.ok()) return l.status();
    p->http_ = std::move(*l);
  }
  for (const PortForward& f : p->options_.forwards) {
    auto l = listen(f.listen, "forward", Kind::kForward, &f);
    if (!l.ok()) return l.status();
    p->forwards_.push_back(std::move(*l));
  }
  return p;
}

std::optional<base::SocketAddress> LocalProxies::socks5_address() const {
  if (!socks5_) return std::nullopt;
  return socks5_->local_address();
}

std::optional<base::SocketAddress> LocalProxies::http_address() const {
  if (!http_) return std::nullopt;
  return http_->local_address();
}

std::vector<base::SocketAddress> LocalProxies::forward_addresses() const {
  std::vector<base::SocketAddress> out;
  for (const auto& l : forwards_) out.push_back(l->local_address());
  return out;
}

void LocalProxies::Accept(Kind kind, const PortForward* forward, std::unique_ptr<net::TcpStream> conn) {
  ++counters_.accepted;
  if (open_connections() >= options_.max_connections) {
    ++counters_.refused_limit;
    P2P_LOG(kWarn, "proxy.connection_limit").Kv("max_connections", options_.max_connections);
    conn->Abort();
    return;
  }
  auto s = std::make_unique<Session>(*this, kind, forward, std::move(conn));
  Session* raw = s.get();
  sessions_.emplace(raw, std::move(s));
  raw->Start();
}

void LocalProxies::EndSession(Session* s) {
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;
  std::unique_ptr<Session> owned = std::move(it->second);
  sessions_.erase(it);
  owned->Detach();
  // The session may be on the stack (its own callback): delete it on a later turn.
  struct Holder : net::DeferredDeletable {
    std::unique_ptr<Session> s;
  };
  auto h = std::make_unique<Holder>();
  h->s = std::move(owned);
  loop_.DeferDelete(std::move(h));
}

void LocalProxies::Join(std::unique_ptr<net::Stream> local, std::unique_ptr<net::Stream> remote,
                        std::vector<uint8_t> early, std::string what) {
  ++counters_.spliced;
  if (!early.empty()) remote->WriteOwned(std::move(early));
  auto splice = std::make_unique<proxy::Splice>(
      std::move(local), std::move(remote),
      [this, what = std::move(what)](proxy::Splice* sp, const proxy::Splice::Stats& st, const absl::Status& status) {
        P2P_LOG(kDebug, "proxy.closed")
            .Kv("target", what)
            .Kv("bytes_out", st.a_to_b)
            .Kv("bytes_in", st.b_to_a)
            .Kv("status", status.ok() ? "ok" : status.message());
        auto it = splices_.find(sp);
        if (it != splices_.end()) {
          loop_.DeferDelete(std::move(it->second));
          splices_.erase(it);
        }
      });
  proxy::Splice* raw = splice.get();
  splices_.emplace(raw, std::move(splice));
  raw->Start();
}

}  // namespace p2proxy::client
