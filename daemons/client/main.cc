// p2proxy-client: flags, config loading, signals, and a call into the client role.
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
#include "absl/strings/strip.h"
#include "base/clock.h"
#include "base/log.h"
#include "client/wg_client.h"
#include "net/loop.h"
#include "net/signal.h"
#include "wg/wg_quick_config.h"

ABSL_FLAG(std::string, wg_config, "",
          "Run in WireGuard mode from this wg-quick style file ([Interface] PrivateKey, Address, "
          "ListenPort, MTU; [Peer] PublicKey, PresharedKey, AllowedIPs, Endpoint, "
          "PersistentKeepalive). Required for now: the control-plane mode arrives with the server.");
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

std::string DefaultInterface(const std::string& config_path) {
  std::string base = config_path.substr(config_path.rfind('/') + 1);
  absl::string_view name = base;
  if (absl::ConsumeSuffix(&name, ".conf") && !name.empty() && name.size() <= 15) return std::string(name);
  return "p2p0";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace p2proxy;
  absl::SetProgramUsageMessage(
      "the p2proxy client.\n\n"
      "  p2proxy-client --wg-config=/etc/p2proxy/p2p0.conf\n\n"
      "WireGuard mode runs a TUN interface carried by a userspace WireGuard device that "
      "interoperates with any WireGuard peer. Manage it with `wg show NAME` / `wg set NAME`. "
      "SIGTERM or SIGINT removes the interface and exits.");
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

  const std::string path = absl::GetFlag(FLAGS_wg_config);
  if (path.empty()) return Fail("--wg_config=FILE is required (see --help)");
  std::ifstream in(path);
  if (!in) return Fail(absl::StrCat("--wg_config: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  auto config = wg::ParseWgQuickConfig(text.str());
  if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));
  for (const auto& w : config->warnings) P2P_LOG(kWarn, "config.ignored").Kv("file", path).Kv("what", w);

  client::WgClient::Options options;
  options.interface_name = absl::GetFlag(FLAGS_interface);
  if (options.interface_name.empty()) options.interface_name = DefaultInterface(path);
  options.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);
  options.install_routes = absl::GetFlag(FLAGS_routes);

  net::Loop loop;
  auto client = client::WgClient::Create(loop, base::RealClock::Get(), *config, options);
  if (!client.ok()) return Fail(std::string(client.status().message()));

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "client.stopping").Kv("signal", why);
    client->reset();
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
