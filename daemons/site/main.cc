// p2proxy-site: flags, config loading, signals, and a call into the site role.
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
#include "site/site.h"
#include "site/site_config.h"
#include "site/site_node.h"

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

// NodeOptions: the managed-mode flags, with the environment (a systemd EnvironmentFile)
// standing in for --server and --token when not given.
absl::StatusOr<site::SiteNodeOptions> NodeOptions(const site::Site::Options& site_options) {
  site::SiteNodeOptions o;
  o.state_dir = absl::GetFlag(FLAGS_state_dir);
  o.server = absl::GetFlag(FLAGS_server);
  o.token = absl::GetFlag(FLAGS_token);
  o.requested_name = absl::GetFlag(FLAGS_name);
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    P2P_ASSIGN_OR_RETURN(o.token, control::NodeAgent::ReadTokenFile(file));
  }
  if (const char* v = getenv("P2PROXY_SERVER"); o.server.empty() && v != nullptr) o.server = v;
  if (const char* v = getenv("P2PROXY_TOKEN"); o.token.empty() && v != nullptr) o.token = v;
  o.listen_port = absl::GetFlag(FLAGS_listen_port);
  o.audit_log = absl::GetFlag(FLAGS_audit_log);
  o.site = site_options;
  return o;
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
  // s: the running site; in managed mode it belongs to node.
  std::unique_ptr<site::SiteNode> node;
  std::unique_ptr<site::Site> static_site;
  site::Site* s = nullptr;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return Fail(absl::StrCat("--config: cannot read ", path));
    std::stringstream text;
    text << in.rdbuf();
    auto config = site::ParseSiteConfigJson(text.str());
    if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));
    auto created = site::Site::Create(loop, base::RealClock::Get(), *config, options);
    if (!created.ok()) return Fail(std::string(created.status().message()));
    static_site = std::move(*created);
    s = static_site.get();
  } else {
    if (absl::GetFlag(FLAGS_state_dir).empty()) {
      return Fail("give --config=FILE (static mode) or --state_dir=DIR (managed mode); see --help");
    }
    auto o = NodeOptions(options);
    if (!o.ok()) return Fail(std::string(o.status().message()));
    auto started = site::SiteNode::Start(loop, base::RealClock::Get(), std::move(*o));
    if (!started.ok()) return Fail(std::string(started.status().message()));
    node = std::move(*started);
    s = &node->site();
  }

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "site.stopping").Kv("signal", why);
    s = nullptr;
    node.reset();
    static_site.reset();
    loop.Stop();
  };
  net::SignalWatcher term(loop), intr(loop), usr1(loop), hup(loop);
  // SIGHUP: the config file again, applied live (Site::Apply: what did not change keeps
  // running, connections whose peer lost access are closed), then the certificate files reread.
  // A config that does not parse or cannot be applied is refused whole and logged; the site
  // keeps the one it has.
  (void)hup.Watch(SIGHUP, [&] {
    if (s == nullptr) return;
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
    auto applied = s->Apply(*next);
    if (!applied.ok()) {
      P2P_LOG(kError, "site.reload_refused").Kv("config", path).Kv("error", applied.status().message());
    }
    (void)s->ReloadCertificates();
  });
  // SIGUSR1 logs the counters (until the metrics listener exists).
  (void)usr1.Watch(SIGUSR1, [&] {
    if (s == nullptr) return;
    const auto& c = s->counters();
    const auto& st = s->netstack().counters();
    const auto& wc = s->transport().device().counters();
    P2P_LOG(kInfo, "site.stats")
        .Kv("tcp_accepted", c.tcp_accepted)
        .Kv("tcp_completed", c.tcp_completed)
        .Kv("tcp_failed", c.tcp_failed)
        .Kv("tcp_target_failed", c.tcp_target_failed)
        .Kv("denied", c.denied)
        .Kv("revoked", c.revoked)
        .Kv("applied", c.applied)
        .Kv("active", s->active_connections())
        .Kv("bytes_to_targets", c.bytes_to_targets)
        .Kv("bytes_from_targets", c.bytes_from_targets)
        .Kv("tcp_rst_sent", st.tcp_rst_sent)
        .Kv("dropped_not_served", st.dropped_not_served)
        .Kv("dropped_no_buffer", st.dropped_no_buffer)
        .Kv("tcp_segments_sent", st.tcp_segments_sent)
        .Kv("tcp_segments_dropped", st.tcp_segments_dropped)
        .Kv("wg_handshakes", wc.handshakes_completed)
        .Kv("wg_rx_packets", wc.data_packets_received)
        .Kv("wg_tx_packets", wc.data_packets_sent)
        .Kv("wireguard", node == nullptr ? "static" : node->over_tls() ? "tls" : "udp")
        .Kv("relay", s->transport().relay() ? s->transport().relay()->server.ToString() : std::string("off"))
        .Kv("relay_frames_received", s->transport().relay_counters().frames_received)
        .Kv("relay_frames_sent", s->transport().relay_counters().frames_sent)
        .Kv("relay_frames_dropped", s->transport().relay_counters().frames_dropped)
        .Kv("wg_bad_mac1", wc.drop(wg::Drop::kBadMac1))
        .Kv("wg_unknown_peer", wc.drop(wg::Drop::kUnknownPeer))
        .Kv("wg_invalid", wc.drop(wg::Drop::kInvalidMessage));
  });
  (void)term.Watch(SIGTERM, [&] { stop("SIGTERM"); });
  (void)intr.Watch(SIGINT, [&] { stop("SIGINT"); });
  loop.Run();
  P2P_LOG(kInfo, "site.stopped");
  return 0;
}
