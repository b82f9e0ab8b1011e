// server_api.cc: p2proxy::Server (include/p2proxy/server.h) over server::Server, on a thread
// of its own (RoleThread without the stack slot: the server has no userspace TCP/IP stack).
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/api_options.pb.h"
#include "api/convert.h"
#include "api/role_thread.h"
#include "api/waiter.h"
#include "base/clock.h"
#include "base/ip_prefix.h"
#include "base/log.h"
#include "config/json_proto.h"
#include "net/loop.h"
#include "p2proxy/server.h"
#include "server/admin.h"
#include "server/admin_socket.h"
#include "server/server.h"

namespace p2proxy {

namespace {

using api::FromAbsl;
using api::Wait;
using api::Waiter;

struct ServerSide {
  net::Loop loop;
  std::unique_ptr<server::Server> server;
  std::unique_ptr<server::AdminServer> admin;
  void Close() {
    admin.reset();
    server.reset();
  }
};

Status Invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

// Config: |o| as the role's config; |init| also reads the ranges.
Result<server::ServerConfig> Config(const ServerOptions& o, bool init) {
  if (o.state_dir.empty()) return Invalid("state_dir: required (the server's CA, keys and database)");
  base::LogLevel level;
  if (!base::ParseLogLevel(o.log_level, &level)) {
    return Invalid(absl::StrCat("log_level: '", o.log_level, "' is not one of debug, info, warn, error"));
  }
  base::SetLogLevel(level);
  server::ServerConfig c;
  c.state_dir = o.state_dir;
  c.public_address = o.public_address;
  c.wireguard_endpoint = o.wireguard_endpoint;
  c.zones = o.zones;
  auto listen = base::SocketAddress::Parse(o.listen);
  if (!listen.ok()) return Invalid(absl::StrCat("listen: '", o.listen, "' is not IP:PORT"));
  c.listen = *listen;
  if (o.wireguard_listen != "off") {
    auto wg = base::SocketAddress::Parse(o.wireguard_listen);
    if (!wg.ok()) return Invalid(absl::StrCat("wireguard_listen: '", o.wireguard_listen, "' is not IP:PORT or off"));
    c.wireguard_listen = *wg;
  }
  if (init) {
    for (const auto& [name, value, out] : {std::tuple("node_range", o.node_range, &c.node_range),
                                           std::tuple("resource_range", o.resource_range, &c.resource_range)}) {
      if (value.empty()) continue;
      auto prefix = base::IpPrefix::Parse(value);
      if (!prefix.ok() || prefix->address.family != base::IpAddress::kV4 || prefix->ToString() != value) {
        return Invalid(absl::StrCat(name, ": '", value, "' is not an IPv4 range in canonical form (e.g. 100.96.0.0/17)"));
      }
      *out = *prefix;
    }
  } else if (!o.node_range.empty() || !o.resource_range.empty()) {
    return Invalid("node_range, resource_range: set at Init only (they are kept in the database)");
  }
  return c;
}

Result<ServerOptions> FromJson(const std::string& json) {
  api::ServerOptions m;
  absl::Status st = config::ParseStrictJson(json, &m);
  if (!st.ok()) {
    std::string message(st.message());
    if (message.rfind("config: ", 0) == 0) message.replace(0, 8, "options: ");
    return Invalid(message);
  }
  ServerOptions o;
  o.state_dir = m.state_dir();
  if (!m.listen().empty()) o.listen = m.listen();
  o.public_address = m.public_address();
  if (!m.wireguard_listen().empty()) o.wireguard_listen = m.wireguard_listen();
  o.wireguard_endpoint = m.wireguard_endpoint();
  o.zones.assign(m.zones().begin(), m.zones().end());
  o.node_range = m.node_range();
  o.resource_range = m.resource_range();
  o.admin_socket = m.admin_socket();
  if (!m.log_level().empty()) o.log_level = m.log_level();
  return o;
}

}  // namespace

struct Server::Impl {
  api::RoleThread<ServerSide> role{/*uses_stack=*/false};
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

bool Server::IsInitialized(const std::string& state_dir) {
  struct stat st {};
  return !state_dir.empty() && ::stat((state_dir + "/ca.pem").c_str(), &st) == 0;
}

Result<std::string> Server::Init(const ServerOptions& options) {
  auto c = Config(options, /*init=*/true);
  if (!c.ok()) return c.status();
  if (options.public_address.empty()) {
    return Invalid("public_address: required at init (HOST:PORT as nodes dial the control channel)");
  }
  auto summary = server::Server::Init(*c, absl::Now());
  if (!summary.ok()) return FromAbsl(summary.status());
  return *summary;
}

Result<std::string> Server::InitFromJson(const std::string& json) {
  auto o = FromJson(json);
  if (!o.ok()) return o.status();
  return Init(*o);
}

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto c = Config(options, /*init=*/false);
  if (!c.ok()) return c.status();
  auto impl = std::make_unique<Impl>();
  absl::Status st = impl->role.Start([config = *c, admin_socket = options.admin_socket](ServerSide& side) -> absl::Status {
    auto s = server::Server::Start(side.loop, base::RealClock::Get(), config);
    if (!s.ok()) return s.status();
    side.server = std::move(*s);
    if (!admin_socket.empty()) {
      auto admin = server::AdminServer::Listen(side.loop, admin_socket, *side.server);
      if (!admin.ok()) return absl::Status(admin.status().code(), absl::StrCat("admin_socket: ", admin.status().message()));
      side.admin = std::move(*admin);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return FromAbsl(st);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<std::unique_ptr<Server>> Server::StartFromJson(const std::string& json) {
  auto o = FromJson(json);
  if (!o.ok()) return o.status();
  return Start(*o);
}

Result<AdminOutput> Server::Admin(const std::vector<std::string>& args) {
  auto w = std::make_shared<Waiter<AdminOutput>>();
  const bool posted = impl_->role.Run([w, args](ServerSide& side) {
    if (!side.server) {
      w->Set(Status(Code::kFailedPrecondition, "the server is stopped"));
      return;
    }
    server::AdminResult r = server::RunAdmin(*side.server, args);
    AdminOutput out;
    out.exit_code = r.exit_code;
    out.out = std::move(r.out);
    out.err = std::move(r.err);
    w->Set(std::move(out));
  });
  if (!posted) return Status(Code::kFailedPrecondition, "the server is stopped");
  return Wait(w, 60000, "admin");
}

void Server::Stop() {
  if (impl_) impl_->role.Stop();
}

}  // namespace p2proxy
