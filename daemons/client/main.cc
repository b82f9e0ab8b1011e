// p2proxy-client: flags, config loading, signals, and a call into the client role.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/process_limits.h"
#include "base/malloc_tune.h"
#include "client/client_config.h"
#include "client/client_node.h"
#include "client/connect_command.h"
#include "client/local_proxy.h"
#include "client/status_report.h"
#include "client/dns_service.h"
#include "control/node_agent.h"
#include "dns/os_hook.h"
#include "net/loop.h"
#include "net/signal.h"
#include "net/timer.h"
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
ABSL_FLAG(std::string, token_file, "",
          "Managed mode: a file holding the enrollment token. Without --server, --token or "
          "--token_file, the environment's P2PROXY_SERVER and P2PROXY_TOKEN are used (the "
          "packaged service reads them from /etc/p2proxy/client.env).");
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
          "Directory for the UAPI socket NAME.sock that `wg show NAME` and `wg set NAME` use. Empty: no UAPI socket (userspace mode as a user without root has none by default).");
ABSL_FLAG(bool, routes, true, "Add a route through the interface for each peer's AllowedIPs.");
ABSL_FLAG(bool, userspace, false,
          "Userspace mode: no TUN interface, no routes, no root. The overlay is reached only through "
          "the local proxies (--socks5, --http_proxy, --forward), whose connections go through a "
          "TCP/IP stack inside the process. Private names are resolved by the proxies.");
ABSL_FLAG(std::string, socks5, "auto",
          "SOCKS5 proxy (RFC 1928: CONNECT and UDP ASSOCIATE, names resolved by the client), "
          "IP:PORT. 'auto': 127.0.0.1:1080 in userspace mode, off in TUN mode; 'off': none. "
          "e.g. curl --socks5-hostname 127.0.0.1:1080 https://vault.example.internal/");
ABSL_FLAG(std::string, http_proxy, "auto",
          "HTTP CONNECT proxy, IP:PORT. 'auto': 127.0.0.1:8080 in userspace mode, off in TUN mode; "
          "'off': none. e.g. curl -x http://127.0.0.1:8080 https://vault.example.internal/");
ABSL_FLAG(std::vector<std::string>, forward, {},
          "Static port forwards, comma-separated [LISTEN_IP:]LISTEN_PORT:HOST:PORT (as ssh -L), "
          "e.g. 5432:db.example.internal:5432. The listen IP defaults to 127.0.0.1.");
ABSL_FLAG(std::string, status_file, "",
          "Where the running client writes its status every second (JSON, client_status.proto), "
          "read by `p2proxy-client status` and `connect`. Default: STATE_DIR/status.json in managed "
          "mode; none in static mode.");
ABSL_FLAG(bool, json, false, "status: print the status as JSON instead of a table.");
ABSL_FLAG(std::string, log_level, "info", "Least severe log level shown: debug, info, warn, error.");

namespace {

using namespace p2proxy;

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

// kDefaultStateDir is the managed client's state dir when a command (status, connect) is not
// given --state_dir: the one the packaged service uses.
constexpr char kDefaultManagedStateDir[] = "/var/lib/p2proxy-client";

std::string StatusFileFor(const std::string& state_dir) {
  if (!absl::GetFlag(FLAGS_status_file).empty()) return absl::GetFlag(FLAGS_status_file);
  return absl::StrCat(state_dir.empty() ? kDefaultManagedStateDir : state_dir, "/status.json");
}

// ListenFlag reads --socks5 or --http_proxy: 'auto' is |userspace_default| in userspace mode.
absl::StatusOr<std::optional<base::SocketAddress>> ListenFlag(const char* flag, const std::string& value,
                                                              bool userspace, const char* userspace_default) {
  std::string v = value;
  if (v == "auto") v = userspace ? userspace_default : "off";
  if (v == "off" || v.empty()) return std::nullopt;
  auto a = base::SocketAddress::Parse(v);
  if (!a.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", value, "' is not IP:PORT, 'auto' or 'off'"));
  }
  return std::optional<base::SocketAddress>(*a);
}

// RunUp starts the client in the background (a new session, its log in STATE_DIR/client.log)
// with |daemon_args|, and returns once its status file says it runs, printing the status.
int RunUp(const std::string& self, const std::string& state_dir, const std::vector<std::string>& daemon_args) {
  const std::string status_file = StatusFileFor(state_dir);
  if (auto live = client::LiveStatus(status_file); live.ok()) {
    std::printf("already up (pid %u)\n", live->pid());
    return 0;
  }
  const std::string log_path = absl::StrCat(state_dir, "/client.log");
  const pid_t pid = fork();
  if (pid < 0) return Fail("up: fork failed");
  if (pid == 0) {
    setsid();
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0) _exit(126);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    if (const std::string token = absl::GetFlag(FLAGS_token); !token.empty()) setenv("P2PROXY_TOKEN", token.c_str(), 1);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(self.c_str()));
    for (const std::string& a : daemon_args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(self.c_str(), argv.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    auto live = client::LiveStatus(status_file);
    if (live.ok() && live->pid() == static_cast<uint32_t>(pid)) {
      std::printf("up (pid %d, log %s)\n%s", pid, log_path.c_str(), client::FormatStatus(*live, absl::Now()).c_str());
      return 0;
    }
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      return Fail(absl::StrCat("up: the client exited at start (exit status ",
                               WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus),
                               "); its last words are in ", log_path));
    }
    usleep(50 * 1000);  // the daemon's status file, written by another process: polled
  }
  kill(pid, SIGTERM);
  return Fail(absl::StrCat("up: the client did not come up within 60 s; see ", log_path));
}

// RunDown stops the running client (SIGTERM: it restores the DNS configuration and removes its
// interface) and waits for it to exit.
int RunDown(const std::string& state_dir) {
  auto live = client::LiveStatus(StatusFileFor(state_dir), absl::InfiniteDuration());
  if (!live.ok()) {
    std::printf("already down: %s\n", std::string(live.status().message()).c_str());
    return 0;
  }
  const pid_t pid = static_cast<pid_t>(live->pid());
  // The status file names the pid; a stale file (a crash, then pid reuse) must not make us
  // signal some other program.
  char exe[4096];
  const ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    const std::string_view name = std::string_view(exe).substr(std::string_view(exe).rfind('/') + 1);
    if (name.rfind("p2proxy-client", 0) != 0) {
      return Fail(absl::StrCat("down: pid ", pid, " from ", StatusFileFor(state_dir), " is ", exe,
                               ", not p2proxy-client: the status file is stale; remove it"));
    }
  }
  if (kill(pid, SIGTERM) != 0) return Fail(absl::StrCat("down: cannot signal pid ", pid, ": ", std::strerror(errno)));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      std::printf("down (pid %d stopped; what it changed on this machine is undone)\n", pid);
      return 0;
    }
    usleep(50 * 1000);  // another process's exit: nothing here to wait on but its pid
  }
  return Fail(absl::StrCat("down: pid ", pid, " did not stop within 30 s"));
}

int RunStatus(const std::string& state_dir) {
  const std::string file = StatusFileFor(state_dir);
  auto s = client::LiveStatus(file);
  if (!s.ok()) {
    std::fprintf(stderr, "p2proxy-client: not running: %s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", client::StatusJson(*s).c_str());
  } else {
    std::printf("%s", client::FormatStatus(*s, absl::Now()).c_str());
  }
  return 0;
}

// StartPrivateClient runs a userspace client of |state_dir| as a child (SOCKS5 on an ephemeral
// loopback port, its status in a file of its own), for `connect` when no client runs. The
// child dies with us (PR_SET_PDEATHSIG) and its output goes to our stderr, never to stdout.
absl::StatusOr<client::status::ClientStatus> StartPrivateClient(const std::string& self,
                                                                const std::string& state_dir, pid_t* child) {
  char dir_template[] = "/tmp/p2proxy-connect-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return absl::UnavailableError("cannot make a temporary directory");
  const std::string status_file = absl::StrCat(dir_template, "/status.json");
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::UnavailableError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    dup2(2, 1);
    const std::string a1 = absl::StrCat("--state_dir=", state_dir), a2 = absl::StrCat("--status_file=", status_file);
    execl(self.c_str(), self.c_str(), a1.c_str(), a2.c_str(), "--userspace", "--socks5=127.0.0.1:0",
          "--http_proxy=off", "--log_level=warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  *child = pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto s = client::LiveStatus(status_file);
    if (s.ok() && !s->proxies().socks5().empty()) {
      unlink(status_file.c_str());
      rmdir(dir_template);
      return s;
    }
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      rmdir(dir_template);
      *child = -1;
      return absl::UnavailableError("the in-process client could not start (its error is above)");
    }
    usleep(50 * 1000);  // polling a file another process writes: nothing to wait on
  }
  return absl::DeadlineExceededError("the in-process client did not start within 30 s");
}

int RunConnect(const std::string& self, const std::string& state_dir, const std::string& host,
               const std::string& port_text) {
  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
    return Fail(absl::StrCat("connect: port '", port_text, "' is not 1-65535"));
  }
  signal(SIGPIPE, SIG_IGN);
  pid_t child = -1;
  auto s = client::LiveStatus(StatusFileFor(state_dir));
  if (!s.ok() && absl::IsNotFound(s.status())) {
    s = StartPrivateClient(self, state_dir.empty() ? kDefaultManagedStateDir : state_dir, &child);
  }
  auto stop_child = [&] {
    if (child > 0) {
      kill(child, SIGTERM);
      waitpid(child, nullptr, 0);
    }
  };
  if (!s.ok()) {
    stop_child();
    return Fail(absl::StrCat("connect: ", s.status().message()));
  }
  auto fd = client::ConnectThrough(*s, host, static_cast<uint16_t>(port));
  if (!fd.ok()) {
    stop_child();
    return Fail(absl::StrCat("connect: ", fd.status().message()));
  }
  absl::Status st = client::Pump(*fd);
  stop_child();
  if (!st.ok()) return Fail(absl::StrCat("connect: ", st.message()));
  return 0;
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
      "  p2proxy-client --state_dir=DIR --userspace [--socks5=127.0.0.1:1080] [--http_proxy=...]\n"
      "                 [--forward=2222:ssh.example.internal:22]   (no root, no TUN)\n"
      "  p2proxy-client up --state_dir=DIR [flags as above]      (in the background; log in DIR/client.log)\n"
      "  p2proxy-client down [--state_dir=DIR]\n"
      "  p2proxy-client status [--json] [--state_dir=DIR]\n"
      "  p2proxy-client connect HOST PORT [--state_dir=DIR]      (ssh -o ProxyCommand=\"p2proxy-client connect %h %p\")\n"
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
  if (rest.size() > 1) {
    const std::string command = rest[1];
    if (command == "status" && rest.size() == 2) return RunStatus(absl::GetFlag(FLAGS_state_dir));
    if (command == "connect") {
      if (rest.size() != 4) return Fail("usage: p2proxy-client connect HOST PORT");
      base::SetLogLevel(base::LogLevel::kWarn);
      char self[4096];
      const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      self[n > 0 ? n : 0] = '\0';
      return RunConnect(self, absl::GetFlag(FLAGS_state_dir), rest[2], rest[3]);
    }
    if (command == "down" && rest.size() == 2) return RunDown(absl::GetFlag(FLAGS_state_dir));
    if (command == "up" && rest.size() == 2) {
      if (absl::GetFlag(FLAGS_state_dir).empty()) return Fail("up: --state_dir=DIR is required (the client's state dir)");
      char self[4096];
      const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      self[n > 0 ? n : 0] = '\0';
      std::vector<std::string> daemon_args;
      bool dropped = false;  // the command word itself (the first "up" that is not a flag)
      for (size_t i = 1; i < args.size(); ++i) {
        if (!dropped && args[i] == "up") {
          dropped = true;
          continue;
        }
        // The token goes to the daemon in its environment, never in a command line that
        // other users can read in /proc.
        if (args[i].rfind("--token=", 0) == 0) continue;
        if (args[i] == "--token") {
          ++i;
          continue;
        }
        daemon_args.push_back(args[i]);
      }
      return RunUp(self, absl::GetFlag(FLAGS_state_dir), daemon_args);
    }
    return Fail(absl::StrCat("unexpected argument '", command,
                             "': the commands are up, down, status and connect (see --help)"));
  }

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
  const bool userspace = absl::GetFlag(FLAGS_userspace);
  client::ClientNodeOptions o;
  o.state_dir = state_dir;
  o.server = absl::GetFlag(FLAGS_server);
  o.token = absl::GetFlag(FLAGS_token);
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    auto token = control::NodeAgent::ReadTokenFile(file);
    if (!token.ok()) return Fail(std::string(token.status().message()));
    o.token = *token;
  }
  // The environment (a systemd EnvironmentFile) stands in for flags not given.
  if (const char* v = getenv("P2PROXY_SERVER"); o.server.empty() && v != nullptr) o.server = v;
  if (const char* v = getenv("P2PROXY_TOKEN"); o.token.empty() && v != nullptr) o.token = v;
  o.requested_name = absl::GetFlag(FLAGS_name);
  o.listen_port = absl::GetFlag(FLAGS_listen_port);
  if (!path.empty()) {
    auto text = ReadFile("wg_config", path);
    if (!text.ok()) return Fail(std::string(text.status().message()));
    auto config = wg::ParseWgQuickConfig(*text);
    if (!config.ok()) return Fail(absl::StrCat(path, ": ", config.status().message()));
    for (const auto& w : config->warnings) P2P_LOG(kWarn, "config.ignored").Kv("file", path).Kv("what", w);
    o.wg_config = std::move(*config);
    o.wg_config_path = path;
  }
  o.config = cconfig;
  o.userspace = userspace;
  o.interface_name = absl::GetFlag(FLAGS_interface);
  o.uapi_dir = absl::GetFlag(FLAGS_uapi_dir);
  if (userspace && geteuid() != 0 && o.uapi_dir == "/var/run/wireguard") o.uapi_dir.clear();  // not ours to write
  o.install_routes = absl::GetFlag(FLAGS_routes);
  {
    auto socks = ListenFlag("socks5", absl::GetFlag(FLAGS_socks5), userspace, "127.0.0.1:1080");
    if (!socks.ok()) return Fail(std::string(socks.status().message()));
    auto http = ListenFlag("http_proxy", absl::GetFlag(FLAGS_http_proxy), userspace, "127.0.0.1:8080");
    if (!http.ok()) return Fail(std::string(http.status().message()));
    o.proxies.socks5 = *socks;
    o.proxies.http = *http;
    for (const std::string& f : absl::GetFlag(FLAGS_forward)) {
      auto parsed = client::ParsePortForward(f);
      if (!parsed.ok()) return Fail(absl::StrCat("--forward: ", parsed.status().message()));
      o.proxies.forwards.push_back(*parsed);
    }
  }
  o.status_file = !absl::GetFlag(FLAGS_status_file).empty() ? absl::GetFlag(FLAGS_status_file)
                  : !state_dir.empty()                        ? absl::StrCat(state_dir, "/status.json")
                                                              : std::string();

  net::Loop loop;
  auto started = client::ClientNode::Start(loop, std::move(o));
  if (!started.ok()) return Fail(std::string(started.status().message()));
  std::unique_ptr<client::ClientNode> node = std::move(*started);

  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    P2P_LOG(kInfo, "client.stopping").Kv("signal", why);
    node.reset();
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
