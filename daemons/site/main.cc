// p2proxy-site: flags, config loading, signals, and a call into the site role.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/process_limits.h"
#include "base/status_macros.h"
#include "base/malloc_tune.h"
#include "net/loop.h"
#include "net/signal.h"
#include "control/node_agent.h"
#include "site/audit_wire.h"
#include "site/site.h"
#include "site/site_config.h"
#include "site/snapshot_config.h"

ABSL_FLAG(std::string, config, "",
          "Static mode: the configuration (JSON; schema: src/site/site_config.proto): the site's "
          "WireGuard key, node address and optional listen port, its peers (with the user and "
          "roles each key stands for), its resources (address, port, tcp|udp|https, target "
          "host:port, access; for https the host names, certificate and key files) and "
          "audit_log. Without it the site runs in managed mode (--state_dir).");
ABSL_FLAG(std::string, state_dir, "",
          "Managed mode: where the site keeps its keys, node certificate and last snapshot "
          "(0700/0600). It enrolls once with --server and --token, then starts from here, even "
          "while the server is down.");
ABSL_FLAG(std::string, server, "",
          "Managed mode: the control server, HOST:PORT (as `p2proxy-server admin token create` "
          "prints it). Needed to enroll; remembered afterwards.");
ABSL_FLAG(std::string, token, "",
          "Managed mode: the one-time enrollment token (only for the first start). Prefer "
          "--token_file: a command line is visible to other users.");
ABSL_FLAG(std::string, token_file, "",
          "Managed mode: a file holding the enrollment token. Without --server, --token or "
          "--token_file, the environment's P2PROXY_SERVER and P2PROXY_TOKEN are used (the "
          "packaged service reads them from /etc/p2proxy/site.env).");
ABSL_FLAG(std::string, name, "", "Managed mode: the site's name at enrollment (default: the token's).");
ABSL_FLAG(uint16_t, listen_port, 0,
          "Managed mode: the WireGuard UDP port (0: an ephemeral one; the site only dials out).");
ABSL_FLAG(std::string, audit_log, "-",
          "Managed mode: where the site also writes its audit log locally: a file, '-' for "
          "stdout. Events always go to the server.");
ABSL_FLAG(bool, uapi, false,
          "Serve the WireGuard UAPI on a local unix socket (UAPI_DIR/NAME.sock) so `wg show NAME` "
          "works. No network port is opened either way.");
ABSL_FLAG(std::string, uapi_name, "p2p-site", "NAME for --uapi.");
ABSL_FLAG(std::string, uapi_dir, "/var/run/wireguard", "UAPI_DIR for --uapi.");
ABSL_FLAG(std::string, log_level, "info", "Least severe log level shown: debug, info, warn, error.");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "p2proxy-site: %s\n", msg.c_str());
  return 1;
}

using namespace p2proxy;

// OpenAgent loads the state dir, or enrolls with --server and --token first.
absl::StatusOr<std::unique_ptr<control::NodeAgent>> OpenAgent(net::Loop& loop) {
  control::NodeAgentOptions o;
  o.state_dir = absl::GetFlag(FLAGS_state_dir);
  o.kind = control::wire::NODE_KIND_SITE;
  o.server = absl::GetFlag(FLAGS_server);
  o.token = absl::GetFlag(FLAGS_token);
  o.requested_name = absl::GetFlag(FLAGS_name);
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    P2P_ASSIGN_OR_RETURN(o.token, control::NodeAgent::ReadTokenFile(file));
  }
  // The environment (a systemd EnvironmentFile) stands in for flags not given.
  if (const char* v = getenv("P2PROXY_SERVER"); o.server.empty() && v != nullptr) o.server = v;
  if (const char* v = getenv("P2PROXY_TOKEN"); o.token.empty() && v != nullptr) o.token = v;
  return control::NodeAgent::OpenAndWait(loop, std::move(o));
}

// ServerOnlySnapshot: the site's configuration before the server's first push: the server as
// its only peer, nothing served.
control::wire::Snapshot ServerOnlySnapshot(const control::wire::Enrolled& enrolled) {
  control::wire::Snapshot s;
  control::wire::Peer* server = s.add_peers();
  server->set_public_key(enrolled.server_wireguard_public_key());
  server->add_allowed_ips(absl::StrCat(enrolled.server_node_address(), "/32"));
  server->set_node_id("server");
  server->set_kind(control::wire::NODE_KIND_SERVER);
  s.mutable_site();
  return s;
}

// LocalEndpoints: this host's IPv4 addresses with the WireGuard port, for the server.
std::vector<std::string> LocalEndpoints(uint16_t port) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr && out.size() < 16; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)) == nullptr) continue;
    std::string e = absl::StrCat(text, ":", port);
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(std::move(e));
  }
  ::freeifaddrs(list);
  if (out.empty()) out.push_back(absl::StrCat("127.0.0.1:", port));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  p2proxy::base::TuneMallocForThroughput();
  using namespace p2proxy;
  absl::SetProgramUsageMessage(
      "the p2proxy site connector.\n\n"
      "  p2proxy-site --config=/etc/p2proxy/site.json\n\n"
      "Accepts connections for its resources' overlay addresses inside a userspace TCP/IP "
      "stack, reached only through WireGuard, and forwards them to targets on the local network. "
      "It opens no listening port on the host. https resources end TLS here with their own "
      "certificate and proxy each request to the target as HTTP/1.1; every connection and "
      "request is checked against the resource's access rules (deny by default) and written to "
      "the audit log as one JSON line.\n\n"
      "Signals: SIGTERM or SIGINT stops it; SIGHUP rereads the config and applies it live "
      "(peers, resources, access and certificates: unchanged connections keep going, those "
      "whose peer lost access are closed and audited; a config that does not parse is refused "
      "whole and the running one kept; the private key and node address need a restart) and "
      "rereads the https certificate and key files (connections already open keep theirs); "
      "SIGUSR1 logs counters.");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "daemons/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> cargs;
  for (auto& a : args) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    }
    cargs.push_back(a.data());
  }
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());
  if (rest.size() > 1) return Fail(absl::StrCat("unexpected argument '", rest[1], "' (see --help)"));

  base::LogLevel level;
  if (!base::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail(absl::StrCat("--log_level: '", absl::GetFlag(FLAGS_log_level),
                             "' is not one of debug, info, warn, error"));
  }
  base::SetLogLevel(level);
  if (const base::OpenFileLimit files = base::RaiseOpenFileLimit(); files.after < 4096) {
    P2P_LOG(kWarn, "process.open_files")
        .Kv("limit", files.after)
        .Kv("hard", files.hard)
        .Kv("what", "each connection costs a descriptor; raise the hard RLIMIT_NOFILE (systemd: LimitNOFILE=)");
  }

  site::Site::Options options;
  options.uapi = absl::GetFlag(FLAGS_uapi);
  options.uapi_name = absl::GetFlag(FLAGS_uapi_name);
  options.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);

  signal(SIGPIPE, SIG_IGN);
  net::Loop loop;
  const std::string path = absl::GetFlag(FLAGS_config);
  absl::StatusOr<site::SiteConfig> config = absl::UnknownError("no config");
  std::unique_ptr<control::NodeAgent> agent;
  site::ManagedSite self;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return Fail(absl::StrCat("--config: cannot read ", path));
    std::stringstream text;
    text << in.rdbuf();
    config = site::ParseSiteConfigJson(text.str());
    if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));
  } else {
    if (absl::GetFlag(FLAGS_state_dir).empty()) {
      return Fail("give --config=FILE (static mode) or --state_dir=DIR (managed mode); see --help");
    }
    auto opened = OpenAgent(loop);
    if (!opened.ok()) return Fail(std::string(opened.status().message()));
    agent = std::move(*opened);
    auto address = base::IpAddress::Parse(agent->enrolled().node_address());
    if (!address.ok()) return Fail("the state dir's node address does not parse: enroll again");
    self.node_id = agent->enrolled().node_id();
    self.private_key = agent->wireguard_key();
    self.node_address = *address;
    self.listen_port = absl::GetFlag(FLAGS_listen_port);
    self.audit_log = absl::GetFlag(FLAGS_audit_log);
    // Start from the last snapshot (without https resources, whose keys were never written
    // down), or with the server alone; the server's push brings the rest.
    if (agent->stored_snapshot()) config = site::SiteConfigFromSnapshot(*agent->stored_snapshot(), self);
    if (!config.ok()) {
      if (agent->stored_snapshot()) {
        P2P_LOG(kWarn, "site.stored_snapshot_unusable").Kv("error", config.status().message());
      }
      config = site::SiteConfigFromSnapshot(ServerOnlySnapshot(agent->enrolled()), self);
    }
    if (!config.ok()) return Fail(std::string(config.status().message()));
  }

  auto s = site::Site::Create(loop, base::RealClock::Get(), *config, options);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  if (agent) {
    control::NodeAgent* a = agent.get();
    (*s)->audit().SetTap([a](const http::AuditEvent& e) { a->Audit(site::AuditEventToWire(e)); });
    agent->Run([&s, &self](const control::wire::Snapshot& snapshot) -> absl::Status {
      if (!*s) return absl::UnavailableError("the site is stopping");
      auto next = site::SiteConfigFromSnapshot(snapshot, self);
      if (!next.ok()) return next.status();
      return (*s)->Apply(*next).status();
    });
    agent->ReportEndpoints(LocalEndpoints((*s)->transport().listen_port()));
  }

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "site.stopping").Kv("signal", why);
    s->reset();
    loop.Stop();
  };
  net::SignalWatcher term(loop), intr(loop), usr1(loop), hup(loop);
  // SIGHUP: the config file again, applied live (Site::Apply: what did not change keeps
  // running, connections whose peer lost access are closed), then the certificate files reread.
  // A config that does not parse or cannot be applied is refused whole and logged; the site
  // keeps the one it has.
  (void)hup.Watch(SIGHUP, [&] {
    if (!*s) return;
    if (path.empty()) {
      P2P_LOG(kInfo, "site.reload_skipped").Kv("why", "managed mode: the configuration comes from the server");
      return;
    }
    std::ifstream again(path);
    std::stringstream next_text;
    next_text << again.rdbuf();
    auto next = again ? site::ParseSiteConfigJson(next_text.str())
                      : absl::StatusOr<site::SiteConfig>(absl::NotFoundError(absl::StrCat("cannot read ", path)));
    if (!next.ok()) {
      P2P_LOG(kError, "site.reload_refused").Kv("config", path).Kv("error", next.status().message());
      return;
    }
    auto applied = (*s)->Apply(*next);
    if (!applied.ok()) {
      P2P_LOG(kError, "site.reload_refused").Kv("config", path).Kv("error", applied.status().message());
    }
    (void)(*s)->ReloadCertificates();
  });
  // SIGUSR1 logs the counters (until the metrics listener exists).
  (void)usr1.Watch(SIGUSR1, [&] {
    if (!*s) return;
    const auto& c = (*s)->counters();
    const auto& st = (*s)->netstack().counters();
    const auto& wc = (*s)->transport().device().counters();
    P2P_LOG(kInfo, "site.stats")
        .Kv("tcp_accepted", c.tcp_accepted)
        .Kv("tcp_completed", c.tcp_completed)
        .Kv("tcp_failed", c.tcp_failed)
        .Kv("tcp_target_failed", c.tcp_target_failed)
        .Kv("denied", c.denied)
        .Kv("revoked", c.revoked)
        .Kv("applied", c.applied)
        .Kv("active", (*s)->active_connections())
        .Kv("bytes_to_targets", c.bytes_to_targets)
        .Kv("bytes_from_targets", c.bytes_from_targets)
        .Kv("tcp_rst_sent", st.tcp_rst_sent)
        .Kv("dropped_not_served", st.dropped_not_served)
        .Kv("dropped_no_buffer", st.dropped_no_buffer)
        .Kv("tcp_segments_sent", st.tcp_segments_sent)
        .Kv("tcp_segments_dropped", st.tcp_segments_dropped)
        .Kv("wg_handshakes", wc.handshakes_completed)
        .Kv("wg_rx_packets", wc.data_packets_received)
        .Kv("wg_tx_packets", wc.data_packets_sent);
  });
  (void)term.Watch(SIGTERM, [&] { stop("SIGTERM"); });
  (void)intr.Watch(SIGINT, [&] { stop("SIGINT"); });
  loop.Run();
  P2P_LOG(kInfo, "site.stopped");
  return 0;
}
