// site_api.cc: p2proxy::Site and p2proxy::Listener (include/p2proxy/site.h) over
// site::SiteNode, on a thread of its own. Connections cross from the site's loop to the
// caller's thread as file descriptors in each Listener's queue.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/api_options.pb.h"
#include "api/convert.h"
#include "api/mailbox.h"
#include "api/role_thread.h"
#include "api/waiter.h"
#include "base/clock.h"
#include "base/errno_text.h"
#include "base/log.h"
#include "config/json_proto.h"
#include "net/loop.h"
#include "p2proxy/site.h"
#include "site/site_node.h"

namespace p2proxy {

namespace {

using api::AppendJson;
using api::FromAbsl;
using api::Wait;
using api::Waiter;

Status Stopped() { return Status(Code::kFailedPrecondition, "the site is stopped"); }

struct LoopSide {
  net::Loop loop;
  std::unique_ptr<site::SiteNode> node;
  void Close() { node.reset(); }
};

}  // namespace

// Listener::Impl: the queue between the site's loop (Push) and the caller (Accept).
struct Listener::Impl {
  uint16_t port = 0;
  int event_fd = -1;  // semaphore eventfd: one count per queued connection, +1 once closed
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Connection> pending;
  bool closed = false;
  uint64_t refused = 0;  // connections closed because kMaxPending were waiting
  // unlisten: ends the registration at the site (set while the site runs; cleared under |mu|
  // when the site stops, so it never outlives the site).
  std::function<void()> unlisten;

  ~Impl() {
    for (Connection& c : pending) ::close(c.fd);
    if (event_fd >= 0) ::close(event_fd);
  }
  void Signal() {
    const uint64_t one = 1;
    (void)!::write(event_fd, &one, sizeof(one));
  }
  // Push: the loop thread hands over |fd|.
  void Push(int fd, const site::InProcessPeer& from) {
    std::lock_guard<std::mutex> lock(mu);
    if (closed || pending.size() >= static_cast<size_t>(kMaxPending)) {
      ::close(fd);
      ++refused;
      if (!closed) {
        P2P_LOG(kWarn, "api.listener_full").Kv("port", port).Kv("pending", pending.size()).Kv("refused", refused);
      }
      return;
    }
    Connection c;
    c.fd = fd;
    c.peer.resource = from.resource;
    c.peer.user = from.user;
    c.peer.roles = from.roles;
    c.peer.address = from.address;
    c.peer.port = from.port;
    pending.push_back(std::move(c));
    Signal();
    cv.notify_one();
  }
  // Shut: closed for good (the caller's Close, or the site stopping); |mu| held.
  void ShutLocked() {
    if (closed) return;
    closed = true;
    for (Connection& c : pending) ::close(c.fd);
    pending.clear();
    Signal();
    cv.notify_all();
  }
};

struct Site::Impl {
  api::RoleThread<LoopSide> role;
  bool Run(std::function<void(LoopSide&)> fn) { return role.Run(std::move(fn)); }
  std::mutex mu;  // guards listeners
  std::vector<std::weak_ptr<Listener::Impl>> listeners;
};

Listener::Listener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Listener::~Listener() { Close(); }

uint16_t Listener::port() const { return impl_->port; }

int Listener::fd() const { return impl_->event_fd; }

Result<Connection> Listener::Accept(int timeout_ms) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto ready = [this] { return impl_->closed || !impl_->pending.empty(); };
  if (timeout_ms < 0) {
    impl_->cv.wait(lock, ready);
  } else if (timeout_ms > 0) {
    impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
  }
  if (impl_->closed) return Status(Code::kCancelled, absl::StrCat("the listener on port ", impl_->port, " is closed"));
  if (impl_->pending.empty()) {
    return Status(Code::kDeadlineExceeded,
                  absl::StrCat("no connection on port ", impl_->port, " within ", timeout_ms, " ms"));
  }
  Connection c = std::move(impl_->pending.front());
  impl_->pending.pop_front();
  uint64_t n = 0;
  (void)!::read(impl_->event_fd, &n, sizeof(n));  // one count (semaphore), never blocks
  return c;
}

void Listener::Close() {
  if (!impl_) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->unlisten) {
    impl_->unlisten();  // under |mu|: the site cannot stop in between (Site::Stop takes it)
    impl_->unlisten = nullptr;
  }
  impl_->ShutLocked();
}

Site::Site(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Site::~Site() { Stop(); }

Result<std::unique_ptr<Site>> Site::Start(const SiteOptions& options) {
  if (options.state_dir.empty()) {
    return Status(Code::kInvalidArgument, "state_dir: required (where the site keeps its keys and certificate)");
  }
  base::LogLevel level;
  if (!base::ParseLogLevel(options.log_level, &level)) {
    return Status(Code::kInvalidArgument,
                  absl::StrCat("log_level: '", options.log_level, "' is not one of debug, info, warn, error"));
  }
  if (options.start_timeout_ms < 0 || options.start_timeout_ms > 600000) {
    return Status(Code::kInvalidArgument, "start_timeout_ms: 1 to 600000 (0: the default, 60000)");
  }
  base::SetLogLevel(level);
  site::SiteNodeOptions o;
  o.state_dir = options.state_dir;
  o.server = options.server;
  o.token = options.token;
  o.requested_name = options.name;
  o.listen_port = options.listen_port;
  o.audit_log = options.audit_log.empty() ? "/dev/null" : options.audit_log;
  o.enroll_limit = absl::Milliseconds(options.start_timeout_ms > 0 ? options.start_timeout_ms : 60000);

  auto impl = std::make_unique<Impl>();
  absl::Status st = impl->role.Start([o = std::move(o)](LoopSide& side) mutable -> absl::Status {
    const absl::Time deadline = absl::Now() + o.enroll_limit;
    auto node = site::SiteNode::Start(side.loop, base::RealClock::Get(), std::move(o));
    if (!node.ok()) return node.status();
    side.node = std::move(*node);
    // A first start has no snapshot yet: wait for it (within what is left of the start
    // timeout), so that the resources are served when Start returns.
    if (!side.node->has_config() &&
        !side.loop.RunUntil([&side] { return side.node->has_config(); }, deadline - absl::Now())) {
      return absl::DeadlineExceededError(
          "enrolled, but no configuration from the server in time: is the server reachable? the site "
          "starts from its state dir next time");
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return FromAbsl(st);
  return std::unique_ptr<Site>(new Site(std::move(impl)));
}

Result<std::unique_ptr<Site>> Site::StartFromJson(const std::string& json) {
  api::SiteOptions m;
  absl::Status st = config::ParseStrictJson(json, &m);
  if (!st.ok()) {
    std::string message(st.message());
    if (message.rfind("config: ", 0) == 0) message.replace(0, 8, "options: ");
    return Status(Code::kInvalidArgument, message);
  }
  if (m.listen_port() > 65535) return Status(Code::kInvalidArgument, "options: listen_port: 0 to 65535");
  if (m.start_timeout_ms() > 600000) return Status(Code::kInvalidArgument, "options: start_timeout_ms: at most 600000");
  SiteOptions o;
  o.state_dir = m.state_dir();
  o.server = m.server();
  o.token = m.token();
  o.name = m.name();
  o.listen_port = static_cast<uint16_t>(m.listen_port());
  o.audit_log = m.audit_log();
  if (!m.log_level().empty()) o.log_level = m.log_level();
  o.start_timeout_ms = static_cast<int>(m.start_timeout_ms());
  return Start(o);
}

Result<std::unique_ptr<Listener>> Site::Listen(uint16_t port) {
  if (port == 0) return Status(Code::kInvalidArgument, "port: 0 is not a port");
  auto li = std::make_shared<Listener::Impl>();
  li->port = port;
  li->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
  if (li->event_fd < 0) return Status(Code::kResourceExhausted, absl::StrCat("eventfd: ", base::ErrnoText(errno)));
  auto w = std::make_shared<Waiter<int>>();
  const bool posted = impl_->Run([w, li, port](LoopSide& side) {
    if (!side.node) {
      w->Set(Stopped());
      return;
    }
    absl::Status st = side.node->site().in_process().Listen(
        port, [li](int fd, const site::InProcessPeer& from) { li->Push(fd, from); });
    if (!st.ok()) {
      w->Set(FromAbsl(st));
      return;
    }
    P2P_LOG(kInfo, "api.listening").Kv("port", port);
    // The caller gave up waiting: take the registration back.
    if (!w->Set(0)) side.node->site().in_process().Unlisten(port);
  });
  if (!posted) return Stopped();
  Result<int> r = Wait(w, 10000, absl::StrCat("listen on port ", port));
  if (!r.ok()) return r.status();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->role.stopped()) return Stopped();
    Impl* site = impl_.get();
    std::lock_guard<std::mutex> llock(li->mu);
    li->unlisten = [site, port] {
      site->Run([port](LoopSide& side) {
        if (side.node) side.node->site().in_process().Unlisten(port);
      });
    };
    // Forget listeners already gone, so the list stays as long as the live ones.
    std::erase_if(impl_->listeners, [](const std::weak_ptr<Listener::Impl>& l) { return l.expired(); });
    impl_->listeners.push_back(li);
  }
  return std::make_unique<Listener>(li);
}

Result<std::string> Site::StatusJson() {
  auto w = std::make_shared<Waiter<std::string>>();
  const bool posted = impl_->Run([w](LoopSide& side) {
    if (!side.node) {
      w->Set(Stopped());
      return;
    }
    control::NodeAgent& agent = side.node->agent();
    site::Site& s = side.node->site();
    std::string out = "{\"node_id\":";
    AppendJson(&out, agent.enrolled().node_id());
    out += ",\"node_address\":";
    AppendJson(&out, agent.enrolled().node_address());
    absl::StrAppend(&out, ",\"server\":{\"connected\":", agent.connected() ? "true" : "false",
                    "},\"snapshot_version\":", agent.applied_version(), ",\"resources\":[");
    bool first = true;
    for (const site::SiteResource* r : s.resources()) {
      if (!first) out += ',';
      first = false;
      out += "{\"name\":";
      AppendJson(&out, r->name);
      out += ",\"address\":";
      AppendJson(&out, r->address.ToString());
      absl::StrAppend(&out, ",\"port\":", r->port, ",\"kind\":\"", site::ProtocolName(r->protocol),
                      "\",\"in_process\":", r->in_process ? "true" : "false",
                      ",\"listening\":", r->in_process && s.in_process().listening(r->port) ? "true" : "false", "}");
    }
    absl::StrAppend(&out, "],\"in_process_connections\":", s.in_process().handed(), "}");
    w->Set(std::move(out));
  });
  if (!posted) return Stopped();
  return Wait(w, 10000, "status");
}

void Site::Stop() {
  if (!impl_ || !impl_->role.Stop()) return;
  // Listeners outlive the site: closed now, their Accepts answer kCancelled.
  std::vector<std::weak_ptr<Listener::Impl>> listeners;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    listeners.swap(impl_->listeners);
  }
  for (auto& weak : listeners) {
    if (auto li = weak.lock()) {
      std::lock_guard<std::mutex> lock(li->mu);
      li->unlisten = nullptr;
      li->ShutLocked();
    }
  }
}

}  // namespace p2proxy
