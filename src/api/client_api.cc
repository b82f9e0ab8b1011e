// client_api.cc: p2proxy::Client (include/p2proxy/client.h) over client::ClientNode, on a
// thread of its own.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "api/api_options.pb.h"
#include "api/convert.h"
#include "api/mailbox.h"
#include "api/role_thread.h"
#include "api/udp_bridge.h"
#include "api/waiter.h"
#include "base/errno_text.h"
#include "base/log.h"
#include "client/client_node.h"
#include "client/local_proxy.h"
#include "client/status_report.h"
#include "config/json_proto.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "p2proxy/client.h"
#include "proxy/splice.h"

namespace p2proxy {

namespace {

using api::FromAbsl;
using api::Wait;
using api::Waiter;

// kMaxUdpFlows bounds DialUdp's open flows per client.
constexpr size_t kMaxUdpFlows = 1024;

// kFreshSnapshotWait: how long Start waits for the server's snapshot when it has a stored one.
constexpr absl::Duration kFreshSnapshotWait = absl::Seconds(5);

Status Stopped() { return Status(Code::kFailedPrecondition, "the client is stopped"); }

// LoopSide: what lives on the client's thread.
struct LoopSide {
  net::Loop loop;
  std::unique_ptr<client::ClientNode> node;
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices;
  std::map<api::UdpBridge*, std::unique_ptr<api::UdpBridge>> udp;  // DialUdp's flows

  // Join splices a dialed overlay stream to the library's end of a socketpair.
  void Join(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b) {
    auto splice = std::make_unique<proxy::Splice>(
        std::move(a), std::move(b), [this](proxy::Splice* sp, const proxy::Splice::Stats&, const absl::Status&) {
          auto it = splices.find(sp);
          if (it == splices.end()) return;
          loop.DeferDelete(std::move(it->second));
          splices.erase(it);
        });
    proxy::Splice* raw = splice.get();
    splices.emplace(raw, std::move(splice));
    raw->Start();
  }

  // Close takes the role down (RoleThread calls it on the loop's thread at the end).
  void Close() {
    auto all = std::move(splices);
    splices.clear();
    for (auto& [raw, sp] : all) sp->Abort(absl::CancelledError("the client stopped"));
    udp.clear();
    node.reset();
  }
};

}  // namespace

struct Client::Impl {
  api::RoleThread<LoopSide> role;
  bool Run(std::function<void(LoopSide&)> fn) { return role.Run(std::move(fn)); }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() { Stop(); }

Result<std::unique_ptr<Client>> Client::Start(const ClientOptions& options) {
  if (options.state_dir.empty()) {
    return Status(Code::kInvalidArgument, "state_dir: required (where the client keeps its keys and certificate)");
  }
  base::LogLevel level;
  if (!base::ParseLogLevel(options.log_level, &level)) {
    return Status(Code::kInvalidArgument,
                  absl::StrCat("log_level: '", options.log_level, "' is not one of debug, info, warn, error"));
  }
  base::SetLogLevel(level);
  client::ClientNodeOptions o;
  o.state_dir = options.state_dir;
  o.server = options.server;
  o.token = options.token;
  o.requested_name = options.name;
  o.userspace = true;  // a library never touches the machine's interfaces
  o.embedded = true;   // Dial is its way in: no proxy needed
  o.uapi_dir.clear();
  o.enroll_limit = absl::Milliseconds(options.start_timeout_ms > 0 ? options.start_timeout_ms : 60000);
  o.status_file = options.status_file;
  auto listen = [](const char* what, const std::string& v) -> absl::StatusOr<std::optional<base::SocketAddress>> {
    if (v.empty()) return std::nullopt;
    auto a = base::SocketAddress::Parse(v);
    if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": '", v, "' is not IP:PORT"));
    return std::optional<base::SocketAddress>(*a);
  };
  auto socks = listen("socks5", options.socks5);
  if (!socks.ok()) return FromAbsl(socks.status());
  auto http = listen("http_proxy", options.http_proxy);
  if (!http.ok()) return FromAbsl(http.status());
  o.proxies.socks5 = *socks;
  o.proxies.http = *http;
  for (const std::string& f : options.forwards) {
    auto parsed = client::ParsePortForward(f);
    if (!parsed.ok()) return FromAbsl(parsed.status());
    o.proxies.forwards.push_back(*parsed);
  }

  auto impl = std::make_unique<Impl>();
  const absl::Duration timeout = o.enroll_limit;
  absl::Status st = impl->role.Start([o = std::move(o), timeout](LoopSide& side) mutable -> absl::Status {
    auto node = client::ClientNode::Start(side.loop, std::move(o));
    if (!node.ok()) return node.status();
    side.node = std::move(*node);
    // A first start has no snapshot yet: wait for it (within the start timeout), so that a
    // Dial right after Start finds the names.
    if (!side.node->has_config() &&
        !side.loop.RunUntil([&side] { return side.node->has_config(); }, timeout)) {
      return absl::DeadlineExceededError(
          absl::StrCat("enrolled, but no configuration from the server within ", absl::FormatDuration(timeout),
                       ": is the server reachable? the client starts from its state dir next time"));
    }
    // A start from the stored snapshot waits a little for the server's current one, so that a
    // resource added since is found by the first Dial; an unreachable server costs at most this.
    if (!side.node->synced()) {
      side.loop.RunUntil([&side] { return side.node->synced(); }, std::min(timeout, kFreshSnapshotWait));
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return FromAbsl(st);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::Stop() {
  if (impl_) impl_->role.Stop();
}

Result<int> Client::Dial(const std::string& host, uint16_t port, int timeout_ms) {
  if (port == 0) return Status(Code::kInvalidArgument, "port: 0 is not a port");
  auto w = std::make_shared<Waiter<int>>();
  const bool posted = impl_->Run([w, host, port](LoopSide& side) {
    if (!side.node) {
      w->Set(Stopped());
      return;
    }
    side.node->Dial(host, port, [w, &side](absl::StatusOr<std::unique_ptr<net::Stream>> s) {
      if (!s.ok()) {
        w->Set(FromAbsl(s.status()));
        return;
      }
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        w->Set(Status(Code::kResourceExhausted, absl::StrCat("socketpair: ", base::ErrnoText(errno))));
        return;
      }
      auto local = net::TcpStream::Adopt(side.loop, sv[0]);  // owns sv[0], also on error
      if (!local.ok()) {
        close(sv[1]);
        w->Set(FromAbsl(local.status()));
        return;
      }
      side.Join(std::move(*local), std::move(*s));
      if (!w->Set(sv[1])) close(sv[1]);  // the caller gave up: its end closes, the splice ends
    });
  });
  if (!posted) return Stopped();
  return Wait(w, timeout_ms, absl::StrCat("dial ", host, ":", port));
}

Result<int> Client::DialUdp(const std::string& host, uint16_t port) {
  if (port == 0) return Status(Code::kInvalidArgument, "port: 0 is not a port");
  auto w = std::make_shared<Waiter<int>>();
  const bool posted = impl_->Run([w, host, port](LoopSide& side) {
    if (!side.node || side.node->overlay() == nullptr) {
      w->Set(Stopped());
      return;
    }
    absl::StatusOr<base::IpAddress> addr = side.node->names().Resolve(host);
    if (!addr.ok()) {
      w->Set(FromAbsl(addr.status()));
      return;
    }
    if (side.udp.size() >= kMaxUdpFlows) {
      w->Set(Status(Code::kResourceExhausted,
                    absl::StrCat("at most ", kMaxUdpFlows, " UDP flows at once: close some sockets from DialUdp")));
      return;
    }
    int fd = -1;
    LoopSide* s = &side;
    auto bridge = api::UdpBridge::Create(side.loop, *side.node->overlay(), *addr, port, &fd, [s](api::UdpBridge* b) {
      auto it = s->udp.find(b);
      if (it == s->udp.end()) return;
      // Not inside its own callback: destroyed on the next turn.
      s->loop.Post([owned = std::shared_ptr<api::UdpBridge>(std::move(it->second))] {});
      s->udp.erase(it);
    });
    if (!bridge.ok()) {
      w->Set(FromAbsl(bridge.status()));
      return;
    }
    api::UdpBridge* raw = bridge->get();
    side.udp.emplace(raw, std::move(*bridge));
    if (!w->Set(fd)) {
      ::close(fd);  // the caller gave up: the bridge sees the end and goes
    }
  });
  if (!posted) return Stopped();
  return Wait(w, 10000, absl::StrCat("dial udp ", host, ":", port));
}

Result<std::string> Client::Resolve(const std::string& host) {
  auto w = std::make_shared<Waiter<std::string>>();
  const bool posted = impl_->Run([w, host](LoopSide& side) {
    if (!side.node) {
      w->Set(Stopped());
      return;
    }
    absl::StatusOr<base::IpAddress> a = side.node->names().Resolve(host);
    if (!a.ok()) {
      w->Set(FromAbsl(a.status()));
      return;
    }
    w->Set(a->ToString());
  });
  if (!posted) return Stopped();
  return Wait(w, 10000, "resolve");
}

Result<std::string> Client::StatusJson() {
  auto w = std::make_shared<Waiter<std::string>>();
  const bool posted = impl_->Run([w](LoopSide& side) {
    if (!side.node) {
      w->Set(Stopped());
      return;
    }
    w->Set(client::StatusJson(side.node->Status()));
  });
  if (!posted) return Stopped();
  return Wait(w, 10000, "status");
}

Result<std::unique_ptr<Client>> Client::StartFromJson(const std::string& json) {
  api::ClientOptions m;
  absl::Status st = config::ParseStrictJson(json, &m);
  if (!st.ok()) {
    // "config: PATH: WHAT" from the shared parser: these are the client's options.
    std::string message(st.message());
    if (message.rfind("config: ", 0) == 0) message.replace(0, 8, "options: ");
    return Status(Code::kInvalidArgument, message);
  }
  ClientOptions o;
  o.state_dir = m.state_dir();
  o.server = m.server();
  o.token = m.token();
  o.name = m.name();
  o.socks5 = m.socks5();
  o.http_proxy = m.http_proxy();
  o.forwards.assign(m.forwards().begin(), m.forwards().end());
  o.status_file = m.status_file();
  if (!m.log_level().empty()) o.log_level = m.log_level();
  if (m.start_timeout_ms() > 600000) {
    return Status(Code::kInvalidArgument, "options: start_timeout_ms: at most 600000");
  }
  if (m.start_timeout_ms() > 0) o.start_timeout_ms = static_cast<int>(m.start_timeout_ms());
  return Start(o);
}

}  // namespace p2proxy
