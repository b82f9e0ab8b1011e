// client_api.cc: p2proxy::Client (include/p2proxy/client.h) over client::ClientNode, on a
// thread of its own.
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/api_options.pb.h"
#include "api/convert.h"
#include "api/mailbox.h"
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
using api::Mailbox;

Status Stopped() { return Status(Code::kFailedPrecondition, "the client is stopped"); }

// LoopSide: what lives on the client's thread.
struct LoopSide {
  net::Loop loop;
  std::unique_ptr<client::ClientNode> node;
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices;

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

  void StopAll() {
    auto all = std::move(splices);
    splices.clear();
    for (auto& [raw, sp] : all) sp->Abort(absl::CancelledError("the client stopped"));
    node.reset();
  }
};

// Waiter: a result that the loop's thread sets and a caller waits for, at most once, with
// a deadline; what arrives after the caller gave up is handed to |discard|.
template <typename T>
struct Waiter {
  std::mutex mu;
  std::promise<Result<T>> promise;
  bool done = false;
  bool abandoned = false;
  // Set returns false if the caller is gone (the value was not taken).
  bool Set(Result<T> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (done || abandoned) return false;
    done = true;
    promise.set_value(std::move(r));
    return true;
  }
};

template <typename T>
Result<T> Wait(const std::shared_ptr<Waiter<T>>& w, int timeout_ms, const std::string& what) {
  std::future<Result<T>> f = w->promise.get_future();
  if (f.wait_for(std::chrono::milliseconds(timeout_ms)) == std::future_status::timeout) {
    std::lock_guard<std::mutex> lock(w->mu);
    if (!w->done) {
      w->abandoned = true;
      return Status(Code::kDeadlineExceeded, absl::StrCat(what, ": no answer within ", timeout_ms, " ms"));
    }
  }
  return f.get();
}

}  // namespace

struct Client::Impl {
  std::thread thread;
  std::mutex mu;
  Mailbox* mailbox = nullptr;  // set while the loop runs
  LoopSide* side = nullptr;
  bool stopped = false;

  // Run posts |fn| to the loop's thread; false if the client stopped.
  bool Run(std::function<void(LoopSide&)> fn) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped || mailbox == nullptr) return false;
    LoopSide* s = side;
    return mailbox->Post([s, fn = std::move(fn)] { fn(*s); });
  }
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
  Impl* raw = impl.get();
  std::promise<absl::Status> started;
  std::future<absl::Status> started_f = started.get_future();
  const absl::Duration timeout = o.enroll_limit;
  raw->thread = std::thread([raw, o = std::move(o), timeout, started = std::move(started)]() mutable {
    // A peer that closes its end makes writes fail with EPIPE, never kill the host program.
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    LoopSide side;
    Mailbox mailbox(side.loop);
    auto node = client::ClientNode::Start(side.loop, std::move(o));
    if (!node.ok()) {
      mailbox.Close();
      for (int i = 0; i < 4; ++i) side.loop.RunOnce(false);
      started.set_value(node.status());
      return;
    }
    side.node = std::move(*node);
    // A first start has no snapshot yet: wait for it (within the start timeout), so that a
    // Dial right after Start finds the names.
    if (!side.node->has_config() &&
        !side.loop.RunUntil([&side] { return side.node->has_config(); }, timeout)) {
      side.StopAll();
      mailbox.Close();
      for (int i = 0; i < 8; ++i) side.loop.RunOnce(false);
      started.set_value(absl::DeadlineExceededError(
          absl::StrCat("enrolled, but no configuration from the server within ", absl::FormatDuration(timeout),
                       ": is the server reachable? the client starts from its state dir next time")));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->mailbox = &mailbox;
      raw->side = &side;
    }
    started.set_value(absl::OkStatus());
    side.loop.Run();  // until Stop's task stops it
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->mailbox = nullptr;
      raw->side = nullptr;
    }
    side.StopAll();
    mailbox.Close();
    // Close callbacks and deferred deletes.
    for (int i = 0; i < 8; ++i) side.loop.RunOnce(false);
  });
  absl::Status st = started_f.get();
  if (!st.ok()) {
    raw->thread.join();
    return FromAbsl(st);
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::Stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    if (impl_->mailbox) {
      LoopSide* s = impl_->side;
      impl_->mailbox->Post([s] { s->loop.Stop(); });
    }
  }
  if (impl_->thread.joinable()) impl_->thread.join();
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
