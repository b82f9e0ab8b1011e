// p2proxy-server: flags, signals, and a call into the server role (or its admin client).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/process_limits.h"
#include "net/loop.h"
#include "net/signal.h"
#include "server/admin.h"
#include "server/admin_socket.h"
#include "server/server.h"

ABSL_FLAG(std::string, state_dir, "/var/lib/p2proxy-server",
          "Where the server keeps its CA, keys (0600) and database (server.db). `init` creates it.");
ABSL_FLAG(std::string, listen, "0.0.0.0:443",
          "The control channel's TCP address (TLS 1.3, ALPN p2proxy-ctl/1; nodes dial it).");
ABSL_FLAG(std::string, public_address, "",
          "init: the HOST:PORT nodes dial to reach --listen (a name or an IP; it goes into the "
          "control certificate and every enrollment command). Required for init; afterwards "
          "remembered in the database.");
ABSL_FLAG(std::string, wireguard_listen, "0.0.0.0:51820",
          "The UDP address of the server's own WireGuard interface (it is a peer of every node at "
          "100.96.0.1 and learns each node's public endpoint from its keepalives) and of the relay "
          "for nodes that cannot reach each other directly. On a host with several addresses, give "
          "the public one (a socket on 0.0.0.0 answers from the address of the interface towards "
          "the node, which the node's NAT does not recognize). 'off': none.");
ABSL_FLAG(std::string, wireguard_endpoint, "",
          "The HOST:port where nodes send WireGuard to the server (told to nodes). Empty: the host "
          "of --public_address with the port of --wireguard_listen.");
ABSL_FLAG(std::string, admin_socket, std::string(p2proxy::server::kDefaultAdminSocket),
          "The local admin socket (mode 0600, root or the p2proxy group) that `p2proxy-server "
          "admin` talks to.");
ABSL_FLAG(std::vector<std::string>, zone, {},
          "The clients' private DNS zones, comma-separated (e.g. example.internal). Empty: each "
          "resource domain's parent.");
ABSL_FLAG(std::string, node_range, "100.96.0.0/17",
          "init: the deployment's node addresses (an IPv4 range; the server is its second address, "
          "e.g. 100.96.0.1). Fixed at init: choose one no machine of yours routes elsewhere "
          "(another VPN, a Docker network); clients refuse to start on a clash.");
ABSL_FLAG(std::string, resource_range, "100.96.128.0/18",
          "init: the deployment's resource addresses (an IPv4 range; its second address is each "
          "client's resolver, e.g. 100.96.128.1). Fixed at init, like --node_range.");
ABSL_FLAG(std::string, log_level, "info", "Least severe log level shown: debug, info, warn, error.");

namespace {

using namespace p2proxy;

int Fail(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "p2proxy-server: %s\n", msg.c_str());
  return code;
}

constexpr char kUsage[] =
    "the p2proxy control plane.\n\n"
    "  p2proxy-server init --state_dir=DIR --public_address=HOST:PORT\n"
    "      make the CA, keys and database (once)\n"
    "  p2proxy-server [run] --state_dir=DIR [--listen=0.0.0.0:443] [--admin_socket=PATH]\n"
    "      serve: enrollment, snapshots pushed to sites and clients, certificates, audit\n"
    "  p2proxy-server admin [--admin_socket=PATH] COMMAND...   (try: admin help)\n"
    "      manage tokens, sites, devices, users, roles, resources, the CA and read the audit log\n\n"
    "Signals: SIGTERM or SIGINT stops it (nodes keep their last snapshot and traffic keeps "
    "flowing; they reconnect when it is back); SIGUSR1 logs counters.";

// RunAdmin: `p2proxy-server admin ...` is a client of the running server's admin socket. Its
// words are the admin command's own (with their own --flags), so absl's parser never sees them.
int RunAdminCommand(int argc, char** argv) {
  std::string socket_path(server::kDefaultAdminSocket);
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    for (const char* flag : {"--admin_socket=", "--admin-socket="}) {
      if (args.empty() && absl::StartsWith(a, flag)) {
        socket_path = a.substr(std::string(flag).size());
        a.clear();
      }
    }
    if (!a.empty()) args.push_back(std::move(a));
  }
  return server::RunAdminClient(socket_path, args, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "admin") return RunAdminCommand(argc, argv);
  absl::SetProgramUsageMessage(kUsage);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "daemons/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> words(argv, argv + argc);
  std::vector<char*> cargs;
  for (auto& a : words) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
    }
    cargs.push_back(a.data());
  }
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());
  std::string command = rest.size() > 1 ? rest[1] : "run";
  if (rest.size() > 2) return Fail(absl::StrCat("unexpected argument '", rest[2], "' (see --help)"), 2);
  if (command != "run" && command != "init") {
    return Fail(absl::StrCat("unknown command '", command, "': init, run or admin (see --help)"), 2);
  }
  base::LogLevel level;
  if (!base::ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail(absl::StrCat("--log_level: '", absl::GetFlag(FLAGS_log_level), "' is not one of debug, info, warn, error"), 2);
  }
  base::SetLogLevel(level);
  if (const base::OpenFileLimit files = base::RaiseOpenFileLimit(); files.after < 4096) {
    P2P_LOG(kWarn, "process.open_files")
        .Kv("limit", files.after)
        .Kv("hard", files.hard)
        .Kv("what", "each connection costs a descriptor; raise the hard RLIMIT_NOFILE (systemd: LimitNOFILE=)");
  }

  server::ServerConfig config;
  config.state_dir = absl::GetFlag(FLAGS_state_dir);
  config.public_address = absl::GetFlag(FLAGS_public_address);
  config.wireguard_endpoint = absl::GetFlag(FLAGS_wireguard_endpoint);
  config.zones = absl::GetFlag(FLAGS_zone);
  auto listen = base::SocketAddress::Parse(absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) return Fail(absl::StrCat("--listen: ", listen.status().message()), 2);
  config.listen = *listen;
  if (const std::string wl = absl::GetFlag(FLAGS_wireguard_listen); wl != "off") {
    auto wg_listen = base::SocketAddress::Parse(wl);
    if (!wg_listen.ok()) {
      return Fail(absl::StrCat("--wireguard_listen: ", wg_listen.status().message(), " (IP:port, or 'off')"), 2);
    }
    config.wireguard_listen = *wg_listen;
  }

  if (command == "init") {
    for (const auto& [flag, value, out] : {std::tuple("node_range", absl::GetFlag(FLAGS_node_range), &config.node_range),
                                           std::tuple("resource_range", absl::GetFlag(FLAGS_resource_range), &config.resource_range)}) {
      auto prefix = base::IpPrefix::Parse(value);
      if (!prefix.ok() || prefix->address.family != base::IpAddress::kV4 || prefix->ToString() != value) {
        return Fail(absl::StrCat("--", flag, ": '", value, "' is not an IPv4 range in canonical form (e.g. 100.96.0.0/17)"), 2);
      }
      *out = *prefix;
    }
    auto summary = server::Server::Init(config, absl::Now());
    if (!summary.ok()) return Fail(std::string(summary.status().message()));
    std::fputs(summary->c_str(), stdout);
    return 0;
  }

  signal(SIGPIPE, SIG_IGN);
  net::Loop loop;
  auto s = server::Server::Start(loop, base::RealClock::Get(), config);
  if (!s.ok()) return Fail(std::string(s.status().message()));
  const std::string admin_path = absl::GetFlag(FLAGS_admin_socket);
  const std::string admin_dir = admin_path.substr(0, admin_path.rfind('/'));
  if (!admin_dir.empty()) ::mkdir(admin_dir.c_str(), 0755);
  auto admin = server::AdminServer::Listen(loop, admin_path, **s);
  if (!admin.ok()) return Fail(absl::StrCat("--admin_socket: ", admin.status().message()));

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "server.stopping").Kv("signal", why);
    admin->reset();
    s->reset();
    loop.Stop();
  };
  net::SignalWatcher term(loop), intr(loop), usr1(loop);
  (void)usr1.Watch(SIGUSR1, [&] {
    if (!*s) return;
    const auto& c = (*s)->counters();
    P2P_LOG(kInfo, "server.stats")
        .Kv("enrolled", c.enrolled)
        .Kv("enroll_refused", c.enroll_refused)
        .Kv("sessions", c.sessions)
        .Kv("sessions_refused", c.sessions_refused)
        .Kv("snapshots_sent", c.snapshots_sent)
        .Kv("snapshots_acked", c.snapshots_acked)
        .Kv("snapshots_refused", c.snapshots_refused)
        .Kv("audit_batches", c.audit_batches)
        .Kv("audit_events", c.audit_events)
        .Kv("audit_duplicates", c.audit_duplicates)
        .Kv("certificates_issued", c.certificates_issued)
        .Kv("relay_forwarded", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().forwarded : 0)
        .Kv("relay_bytes", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().forwarded_bytes : 0)
        .Kv("relay_malformed", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().malformed : 0)
        .Kv("relay_unknown_sender", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().unknown_sender : 0)
        .Kv("relay_spoofed", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().spoofed : 0)
        .Kv("relay_unknown_destination", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().unknown_destination : 0)
        .Kv("relay_rate_limited", (*s)->tunnel() ? (*s)->tunnel()->relay_counters().rate_limited : 0)
        .Kv("wg_tls_streams", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_streams() : 0)
        .Kv("wg_tls_opened", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().opened : 0)
        .Kv("wg_tls_refused", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().refused_busy + (*s)->tunnel()->wg_tls_counters().handshake_failures : 0)
        .Kv("wg_tls_bad_frames", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().bad_frames : 0)
        .Kv("wg_tls_messages_in", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().messages_in : 0)
        .Kv("wg_tls_messages_out", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().messages_out : 0)
        .Kv("wg_tls_dropped", (*s)->tunnel() ? (*s)->tunnel()->wg_tls_counters().dropped : 0);
  });
  (void)term.Watch(SIGTERM, [&] { stop("SIGTERM"); });
  (void)intr.Watch(SIGINT, [&] { stop("SIGINT"); });
  loop.Run();
  P2P_LOG(kInfo, "server.stopped");
  return 0;
}
