// p2proxy-site: flags, config loading, signals, and a call into the site role.
#include <signal.h>

#include <algorithm>
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
#include "base/malloc_tune.h"
#include "net/loop.h"
#include "net/signal.h"
#include "site/site.h"
#include "site/site_config.h"

ABSL_FLAG(std::string, config, "",
          "Static configuration (JSON; schema: src/site/site_config.proto): the site's WireGuard "
          "key, node address and optional listen port, its peers (with the user and roles each "
          "key stands for), its resources (address, port, tcp|udp|https, target host:port, "
          "access; for https the host names, certificate and key files) and audit_log. "
          "Required.");
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

  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return Fail("--config=FILE is required (see --help)");
  std::ifstream in(path);
  if (!in) return Fail(absl::StrCat("--config: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  auto config = site::ParseSiteConfigJson(text.str());
  if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));

  site::Site::Options options;
  options.uapi = absl::GetFlag(FLAGS_uapi);
  options.uapi_name = absl::GetFlag(FLAGS_uapi_name);
  options.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);

  signal(SIGPIPE, SIG_IGN);
  net::Loop loop;
  auto s = site::Site::Create(loop, base::RealClock::Get(), *config, options);
  if (!s.ok()) return Fail(std::string(s.status().message()));

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
