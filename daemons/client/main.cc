// p2proxy-client: flags, config loading, signals, and a call into the client role.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/process_limits.h"
#include "base/malloc_tune.h"
#include "client/client_config.h"
#include "client/dns_service.h"
#include "client/snapshot_config.h"
#include "client/wg_client.h"
#include "control/node_agent.h"
#include "crypto/x25519.h"
#include "dns/os_hook.h"
#include "net/loop.h"
#include "net/signal.h"
#include "wg/wg_quick_config.h"

ABSL_FLAG(std::string, wg_config, "",
          "Run in WireGuard mode from this wg-quick style file ([Interface] PrivateKey, Address, "
          "ListenPort, MTU; [Peer] PublicKey, PresharedKey, AllowedIPs, Endpoint, "
          "PersistentKeepalive). Without it and with --state_dir the client runs in managed mode.");
ABSL_FLAG(std::string, state_dir, "",
          "Managed mode: where the client keeps its keys, device certificate and last snapshot "
          "(0700/0600). It enrolls once with --server and --token, then starts from here; the "
          "server pushes its peers, routes and private names, applied live.");
ABSL_FLAG(std::string, server, "",
          "Managed mode: the control server, HOST:PORT (as `p2proxy-server admin token create` "
          "prints it). Needed to enroll; remembered afterwards.");
ABSL_FLAG(std::string, token, "",
          "Managed mode: the one-time device token (first start only). Prefer --token_file: a "
          "command line is visible to other users.");
ABSL_FLAG(std::string, token_file, "", "Managed mode: a file holding the enrollment token.");
ABSL_FLAG(std::string, name, "", "Managed mode: the device's name at enrollment (default: its id).");
ABSL_FLAG(uint16_t, listen_port, 0, "Managed mode: the WireGuard UDP port (0: an ephemeral one).");
ABSL_FLAG(std::string, config, "",
          "The client's JSON config (schema: src/client/client_config.proto): private DNS zones "
          "and resources, and the resolver's settings. With --wg-config the resolver listens on "
          "100.96.128.1:53 on the TUN interface (dns.listen overrides it) and the OS hook points "
          "the machine's DNS at it; without --wg-config only the resolver runs (userspace mode: "
          "set dns.listen, e.g. \"127.0.0.1:5353\", and usually dns.hook \"none\").");
ABSL_FLAG(bool, restore_dns, false,
          "Put back the DNS configuration that a killed client left changed (resolv.conf from the "
          "backup in dns.state_dir of --config, or the default state dir), then exit. A normal "
          "start does this first anyway.");
ABSL_FLAG(std::string, interface, "",
          "Name of the TUN interface to create (at most 15 bytes). Default: the config file's "
          "name without .conf, as wg-quick does, else p2p0.");
ABSL_FLAG(std::string, uapi_dir, "/var/run/wireguard",
          "Directory for the UAPI socket NAME.sock that `wg show NAME` and `wg set NAME` use.");
ABSL_FLAG(bool, routes, true, "Add a route through the interface for each peer's AllowedIPs.");
ABSL_FLAG(std::string, log_level, "info", "Least severe log level shown: debug, info, warn, error.");

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "p2proxy-client: %s\n", msg.c_str());
  return 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string DefaultInterface(const std::string& config_path) {
  std::string base = config_path.substr(config_path.rfind('/') + 1);
  absl::string_view name = base;
  if (absl::ConsumeSuffix(&name, ".conf") && !name.empty() && name.size() <= 15) return std::string(name);
  return "p2p0";
}

}  // namespace

int main(int argc, char** argv) {
  p2proxy::base::TuneMallocForThroughput();
  using namespace p2proxy;
  absl::SetProgramUsageMessage(
      "the p2proxy client.\n\n"
      "  p2proxy-client --wg-config=/etc/p2proxy/p2p0.conf [--config=/etc/p2proxy/client.json]\n"
      "  p2proxy-client --config=client.json            (resolver only, userspace mode)\n"
      "  p2proxy-client --state_dir=/var/lib/p2proxy-client [--server=HOST:PORT --token_file=F]\n"
      "                                                 (managed by p2proxy-server)\n"
      "  p2proxy-client --restore-dns [--config=client.json]\n\n"
      "WireGuard mode runs a TUN interface carried by a userspace WireGuard device that "
      "interoperates with any WireGuard peer. Manage it with `wg show NAME` / `wg set NAME`. "
      "With --config, private names (its zones) are answered by the client's own resolver and "
      "never leave the machine; other names go to the resolvers the machine had. "
      "SIGTERM or SIGINT restores the DNS configuration, removes the interface and exits.");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return absl::StrContains(file, "daemons/"); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  // Accept --wg-config as well as --wg_config: dashes are the usual spelling on a command line.
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

  std::optional<client::ClientConfig> cconfig;
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (!config_path.empty()) {
    auto text = ReadFile("config", config_path);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    auto parsed = client::ParseClientConfigJson(*text);
    if (!parsed.ok()) return Fail(absl::StrCat(config_path, ": ", parsed.status().message()));
    cconfig = std::move(*parsed);
  }
  if (absl::GetFlag(FLAGS_restore_dns)) {
    const client::ClientConfig c = cconfig.value_or(client::ClientConfig());
    auto restored = dns::OsHook::Recover(
        client::HookOptions(c, *base::SocketAddress::Parse(client::kDefaultResolver), ""));
    if (!restored.ok()) return Fail(std::string(restored.status().message()));
    std::printf("%s\n", *restored ? "restored the DNS configuration from the backup"
                                   : "nothing to restore: no backup left behind");
    return 0;
  }

  const std::string path = absl::GetFlag(FLAGS_wg_config);
  const std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  if (!path.empty() && !state_dir.empty()) {
    return Fail("--wg_config (static WireGuard mode) and --state_dir (managed mode) exclude each other");
  }
  if (path.empty() && !cconfig && state_dir.empty()) {
    return Fail("--wg_config=FILE, --config=FILE or --state_dir=DIR is required (see --help)");
  }

  net::Loop loop;
  std::unique_ptr<client::WgClient> client;
  std::unique_ptr<client::DnsService> dns_service;
  std::unique_ptr<control::NodeAgent> agent;
  std::string interface_name;
  if (!state_dir.empty()) {
    control::NodeAgentOptions o;
    o.state_dir = state_dir;
    o.kind = control::wire::NODE_KIND_CLIENT;
    o.server = absl::GetFlag(FLAGS_server);
    o.token = absl::GetFlag(FLAGS_token);
    o.requested_name = absl::GetFlag(FLAGS_name);
    if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
      auto token = control::NodeAgent::ReadTokenFile(file);
      if (!token.ok()) return Fail(std::string(token.status().message()));
      o.token = *token;
    }
    auto opened = control::NodeAgent::OpenAndWait(loop, std::move(o));
    if (!opened.ok()) return Fail(std::string(opened.status().message()));
    agent = std::move(*opened);
    const crypto::PublicKey own = crypto::PublicFromPrivate(agent->wireguard_key());
    const client::ClientConfig local = cconfig.value_or(client::ClientConfig());
    client::ClientConfig names = local;
    std::vector<client::ClientPeer> peers;
    std::vector<client::SharedResource> shared;
    if (agent->stored_snapshot()) {
      auto init = client::ClientConfigFromSnapshot(*agent->stored_snapshot(), own, local);
      if (init.ok()) {
        peers = init->peers;
        shared = init->shared;
        names = init->names;
      } else {
        P2P_LOG(kWarn, "client.stored_snapshot_unusable").Kv("error", init.status().message());
      }
    }
    auto address = base::IpAddress::Parse(agent->enrolled().node_address());
    if (!address.ok()) return Fail("the state dir's node address does not parse: enroll again");
    client::ManagedClient self;
    self.private_key = agent->wireguard_key();
    self.node_address = *address;
    self.listen_port = absl::GetFlag(FLAGS_listen_port);
    client::WgClient::Options options;
    options.interface_name = absl::GetFlag(FLAGS_interface).empty() ? "p2p0" : absl::GetFlag(FLAGS_interface);
    options.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);
    options.install_routes = absl::GetFlag(FLAGS_routes);
    auto created = client::WgClient::CreateManaged(loop, base::RealClock::Get(), self, peers, options);
    if (!created.ok()) return Fail(std::string(created.status().message()));
    client = std::move(*created);
    client->SetSharedResources(shared);
    interface_name = client->interface_name();
    const base::SocketAddress listen =
        local.dns.listen.value_or(*base::SocketAddress::Parse(client::kDefaultResolver));
    auto ip = base::IpAddress::Parse(listen.IpString());
    if (ip.ok() && local.resource_range.Contains(*ip)) {
      absl::Status st = client->AddLocalAddress(*ip);
      if (!st.ok()) return Fail(absl::StrCat("resolver address: ", st.message()));
    }
    client::DnsService::Options dopts;
    dopts.live_zones = true;
    auto started = client::DnsService::Start(loop, base::RealClock::Get(), names, listen, interface_name, dopts);
    if (!started.ok()) return Fail(std::string(started.status().message()));
    dns_service = std::move(*started);
    agent->Run([&client, &dns_service, own, local](const control::wire::Snapshot& snapshot) -> absl::Status {
      if (!client || !dns_service) return absl::UnavailableError("the client is stopping");
      auto next = client::ClientConfigFromSnapshot(snapshot, own, local);
      if (!next.ok()) return next.status();
      // Peers (and their routes) first, so a name never resolves before its route exists.
      auto peers = client->ApplyPeers(next->peers);
      if (!peers.ok()) return peers.status();
      client->SetSharedResources(next->shared);
      return dns_service->ApplyNames(next->names.zones, next->names.resources);
    });
  } else if (!path.empty()) {
    auto text = ReadFile("wg_config", path);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    auto config = wg::ParseWgQuickConfig(*text);
    if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));
    for (const auto& w : config->warnings) P2P_LOG(kWarn, "config.ignored").Kv("file", path).Kv("what", w);

    client::WgClient::Options options;
    options.interface_name = absl::GetFlag(FLAGS_interface);
    if (options.interface_name.empty()) options.interface_name = DefaultInterface(path);
    options.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);
    options.install_routes = absl::GetFlag(FLAGS_routes);
    auto created = client::WgClient::Create(loop, base::RealClock::Get(), *config, options);
    if (!created.ok()) return Fail(std::string(created.status().message()));
    client = std::move(*created);
    interface_name = client->interface_name();
  }

  if (cconfig && !agent) {
    std::optional<base::SocketAddress> listen = cconfig->dns.listen;
    if (!listen) {
      if (!client) return Fail("--config: dns.listen is required without --wg-config (userspace mode)");
      listen = *base::SocketAddress::Parse(client::kDefaultResolver);
    }
    // An overlay address (the default 100.96.128.1) lives on the TUN interface.
    auto ip = base::IpAddress::Parse(listen->IpString());
    if (client && ip.ok() && cconfig->resource_range.Contains(*ip)) {
      absl::Status st = client->AddLocalAddress(*ip);
      if (!st.ok()) return Fail(absl::StrCat("resolver address: ", st.message()));
    }
    auto started = client::DnsService::Start(loop, base::RealClock::Get(), *cconfig, *listen, interface_name);
    if (!started.ok()) return Fail(std::string(started.status().message()));
    dns_service = std::move(*started);
  }

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "client.stopping").Kv("signal", why);
    agent.reset();
    dns_service.reset();  // the OS's DNS configuration is back before the interface goes
    client.reset();
    loop.Stop();
  };
  net::SignalWatcher term(loop), intr(loop);
  (void)term.Watch(SIGTERM, [&] { stop("SIGTERM"); });
  (void)intr.Watch(SIGINT, [&] { stop("SIGINT"); });
  signal(SIGPIPE, SIG_IGN);
  loop.Run();
  P2P_LOG(kInfo, "client.stopped");
  return 0;
}
