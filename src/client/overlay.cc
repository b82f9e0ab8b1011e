// overlay.cc: PrivateNames, StackOverlay and KernelOverlay.
#include "client/overlay.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "net/tcp.h"
#include "net/udp.h"
#include "stack/udp_endpoint.h"

namespace p2proxy::client {

namespace {

std::string Canonical(absl::string_view name) {
  absl::ConsumeSuffix(&name, ".");
  return absl::AsciiStrToLower(name);
}

// InZone: |name| is |zone| or below it (both lower case).
bool InZone(absl::string_view name, absl::string_view zone) {
  if (name == zone) return true;
  return name.size() > zone.size() && absl::EndsWith(name, zone) && name[name.size() - zone.size() - 1] == '.';
}

}  // namespace

void PrivateNames::Set(const std::vector<std::string>& zones, const std::vector<ClientResource>& resources) {
  zones_.clear();
  for (const auto& z : zones) zones_.push_back(Canonical(z));
  resources_ = resources;
  exact_.clear();
  wildcard_.clear();
  for (const auto& r : resources) {
    std::string name = Canonical(r.name);
    if (absl::StartsWith(name, "*.")) {
      wildcard_.emplace_back(name.substr(1), r.address);  // ".apps.example.internal"
    } else {
      exact_.emplace_back(std::move(name), r.address);
    }
  }
  std::sort(exact_.begin(), exact_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::sort(wildcard_.begin(), wildcard_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

absl::StatusOr<base::IpAddress> PrivateNames::Resolve(absl::string_view host) const {
  absl::string_view literal = host;
  if (absl::ConsumePrefix(&literal, "[")) absl::ConsumeSuffix(&literal, "]");
  if (auto ip = base::IpAddress::Parse(literal); ip.ok()) {
    if (ip->family != base::IpAddress::kV4) {
      return absl::InvalidArgumentError(absl::StrCat(ip->ToString(), ": the overlay is IPv4; use the resource's name"));
    }
    if (routable_ && !routable_(*ip)) {
      return absl::InvalidArgumentError(
          absl::StrCat(ip->ToString(), " is not an overlay address this client reaches (no peer routes it)"));
    }
    return *ip;
  }
  const std::string name = Canonical(host);
  auto it = std::lower_bound(exact_.begin(), exact_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  if (it != exact_.end() && it->first == name) return it->second;
  for (const auto& [suffix, address] : wildcard_) {
    if (name.size() > suffix.size() && absl::EndsWith(name, suffix)) return address;
  }
  for (const auto& zone : zones_) {
    if (InZone(name, zone)) {
      return absl::NotFoundError(absl::StrCat("no private resource is named ", name, " (zone ", zone,
                                              "): check the name, or `p2proxy-client status` for the list"));
    }
  }
  return absl::NotFoundError(absl::StrCat(
      name, " is not a private name (private zones: ", zones_.empty() ? "none" : absl::StrJoin(zones_, ", "),
      "); the overlay reaches only private resources"));
}

namespace {

class StackUdp final : public OverlayUdp {
 public:
  explicit StackUdp(std::unique_ptr<stack::UdpEndpoint> ep) : ep_(std::move(ep)) {}
  bool SendTo(base::ByteSpan data, const base::IpAddress& to, uint16_t port) override {
    return ep_->SendTo(data, to, port);
  }

 private:
  std::unique_ptr<stack::UdpEndpoint> ep_;
};

class StackOverlayImpl final : public Overlay {
 public:
  explicit StackOverlayImpl(stack::NetStack& stack) : stack_(stack) {}
  void DialTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done) override {
    stack_.ConnectTcp(addr, port, std::move(done));
  }
  absl::StatusOr<std::unique_ptr<OverlayUdp>> OpenUdp(RecvFn recv) override {
    auto ep = stack_.BindUdp(stack_.node_address(), 0, std::move(recv));
    if (!ep.ok()) return ep.status();
    return std::unique_ptr<OverlayUdp>(new StackUdp(std::move(*ep)));
  }

 private:
  stack::NetStack& stack_;
};

class KernelUdp final : public OverlayUdp {
 public:
  std::unique_ptr<net::UdpSocket> socket;
  bool SendTo(base::ByteSpan data, const base::IpAddress& to, uint16_t port) override {
    auto addr = base::SocketAddress::FromIp(to.ToString(), port);
    return addr.ok() && socket->Send(*addr, data);
  }
};

class KernelOverlayImpl final : public Overlay {
 public:
  explicit KernelOverlayImpl(net::Loop& loop) : loop_(loop) {}
  void DialTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done) override {
    auto to = base::SocketAddress::FromIp(addr.ToString(), port);
    if (!to.ok()) {
      loop_.Post([done = std::move(done), st = to.status()]() mutable { done(st); });
      return;
    }
    net::TcpStream::Connect(loop_, *to, [done = std::move(done)](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) mutable {
      if (!s.ok()) {
        done(s.status());
        return;
      }
      done(std::unique_ptr<net::Stream>(std::move(*s)));
    });
  }
  absl::StatusOr<std::unique_ptr<OverlayUdp>> OpenUdp(RecvFn recv) override {
    auto udp = std::make_unique<KernelUdp>();
    net::UdpSocket::Options o;
    o.batch = 1;
    o.rcvbuf = 0;
    o.sndbuf = 0;
    auto sock = net::UdpSocket::Bind(
        loop_, *base::SocketAddress::Parse("0.0.0.0:0"),
        [recv = std::move(recv)](absl::Span<const base::Datagram> batch) mutable {
          for (const base::Datagram& d : batch) {
            auto ip = base::IpAddress::Parse(d.addr.IpString());
            if (ip.ok()) recv(d.data, *ip, d.addr.port());
          }
        },
        o);
    if (!sock.ok()) return sock.status();
    udp->socket = std::move(*sock);
    return std::unique_ptr<OverlayUdp>(std::move(udp));
  }

 private:
  net::Loop& loop_;
};

}  // namespace

std::unique_ptr<Overlay> StackOverlay(stack::NetStack& stack) { return std::make_unique<StackOverlayImpl>(stack); }
std::unique_ptr<Overlay> KernelOverlay(net::Loop& loop) { return std::make_unique<KernelOverlayImpl>(loop); }

}  // namespace p2proxy::client
