// control_fanout: N simulated sites in one process, each a control::NodeAgent with its own state
// dir and its own mTLS control channel, enroll with a running p2proxy-server and connect; then
// one admin write (`resource add`) is timed until every node has applied the new snapshot (a
// node acks in the same turn it applies), and the server is asked until it shows every ack.
// The server's RSS and CPU seconds come from /proc/PID at each step. bench/control_fanout.sh
// drives it; a benchmark harness: it reports, and fails only when a phase cannot finish.
//
//   control_fanout --server 127.0.0.1:PORT --admin_socket PATH --server_pid PID --nodes N
//                  --state_dir DIR [--parallel 32] [--wait_s 120]
// Progress goes to stderr; the figures to stdout as one line of key=value pairs, "result ...".
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "control/node_agent.h"
#include "net/loop.h"
#include "net/timer.h"
#include "server/admin_socket.h"

using namespace p2proxy;
namespace wire = p2proxy::control::wire;

namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "control_fanout: %s\nusage: control_fanout --server HOST:PORT --admin_socket PATH "
               "--server_pid PID --nodes N --state_dir DIR [--parallel 32] [--wait_s 120]\n",
               why.c_str());
  return 2;
}

void Say(const std::string& line) { std::fprintf(stderr, "[control_fanout] %s\n", line.c_str()); }

int Fail(const std::string& why) {
  Say(absl::StrCat("FAIL: ", why));
  return 1;
}

// ProcSample is a process's resident set and the CPU seconds (user + system) it has used.
struct ProcSample {
  double rss_mib = 0;
  double cpu_s = 0;
  double run_s = 0;  // the same from schedstat, in nanoseconds rather than 10 ms clock ticks
};

// SampleProc reads VmRSS from /proc/PID/status, utime + stime from /proc/PID/stat (fields 14
// and 15, counted after the parenthesised command name, which may hold spaces) and the run
// time of each of its threads from /proc/PID/task/TID/schedstat.
ProcSample SampleProc(pid_t pid) {
  ProcSample p;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    double kib = 0;
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() >= 2 && absl::SimpleAtod(words[1], &kib)) p.rss_mib = kib / 1024;
  }
  std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    std::vector<std::string> fields = absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipEmpty());
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    double utime = 0, stime = 0;
    if (fields.size() > 12 && absl::SimpleAtod(fields[11], &utime) && absl::SimpleAtod(fields[12], &stime)) {
      p.cpu_s = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  // schedstat's first field: nanoseconds on a CPU, per thread; summed over the process's.
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream sched(task.path() / "schedstat");
    double ns = 0;
    if (sched >> ns) p.run_s += ns / 1e9;
  }
  return p;
}

double SelfCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// Admin runs one admin command in this process (RunAdminClient, blocking); *out gets its
// standard output. Its error output goes to stderr when it fails.
int Admin(const std::string& socket, const std::vector<std::string>& args, std::string* out) {
  std::ostringstream o, e;
  const int rc = server::RunAdminClient(socket, args, o, e, absl::Seconds(30));
  *out = o.str();
  if (rc != 0) Say(absl::StrCat("admin ", args[0], " ", args.size() > 1 ? args[1] : "", ": exit ", rc, ": ", e.str()));
  return rc;
}

// JsonString finds "key":"value" in the admin's flat JSON and returns value (no escapes in
// what is read here: tokens are hex and underscores).
std::string JsonString(const std::string& json, const std::string& key) {
  const std::string open = absl::StrCat("\"", key, "\":\"");
  const size_t at = json.find(open);
  if (at == std::string::npos) return "";
  const size_t start = at + open.size();
  const size_t end = json.find('"', start);
  return end == std::string::npos ? "" : json.substr(start, end - start);
}

// CountAcked counts, in `site list --json`, the sites that are connected and acked |version|
// or later (one object per site, its keys in NodeJson's order).
size_t CountAcked(const std::string& json, uint64_t version) {
  size_t n = 0;
  const std::string connected = "\"connected\":true,\"acked_version\":";
  for (size_t at = json.find(connected); at != std::string::npos; at = json.find(connected, at + 1)) {
    uint64_t v = 0;
    const size_t start = at + connected.size();
    const size_t end = json.find_first_not_of("0123456789", start);
    if (absl::SimpleAtoi(json.substr(start, end - start), &v) && v >= version) ++n;
  }
  return n;
}

struct Node {
  std::string name;
  std::string token;  // a secret until it is used; never printed
  std::unique_ptr<control::NodeAgent> agent;
  uint64_t version = 0;  // the last snapshot version applied
  absl::Time applied_at;
};

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }
double Secs(absl::Duration d) { return absl::ToDoubleSeconds(d); }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--parallel", "32"}, {"--wait_s", "120"}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* need : {"--server", "--admin_socket", "--server_pid", "--nodes", "--state_dir"}) {
    if (!args.count(need)) return Usage(absl::StrCat(need, " is required"));
  }
  int pid_value = 0, wait_s = 0;
  size_t num_nodes = 0, parallel = 0;
  if (!absl::SimpleAtoi(args["--server_pid"], &pid_value) || pid_value <= 0) return Usage("bad --server_pid");
  if (!absl::SimpleAtoi(args["--nodes"], &num_nodes) || num_nodes == 0) return Usage("bad --nodes");
  if (!absl::SimpleAtoi(args["--parallel"], &parallel) || parallel == 0) return Usage("bad --parallel");
  if (!absl::SimpleAtoi(args["--wait_s"], &wait_s) || wait_s <= 0) return Usage("bad --wait_s");
  const pid_t server_pid = pid_value;
  const std::string socket = args["--admin_socket"];
  const absl::Duration wait = absl::Seconds(wait_s);
  // Errors only: a line per node per snapshot would be the bench, and the refused dials of a
  // thundering herd (the server's max_pending) are counted in dial_failures instead.
  base::SetLogLevel(base::LogLevel::kError);
  signal(SIGPIPE, SIG_IGN);

  net::Loop loop;
  std::vector<Node> nodes(num_nodes);
  const ProcSample idle = SampleProc(server_pid);
  if (idle.rss_mib == 0) return Fail(absl::StrCat("cannot read /proc/", server_pid));

  // ---- tokens: one `token create site sI --json` each, through the admin socket ----
  absl::Time t = absl::Now();
  for (size_t i = 0; i < num_nodes; ++i) {
    nodes[i].name = absl::StrCat("s", i + 1);
    std::string out;
    if (Admin(socket, {"token", "create", "site", nodes[i].name, "--json"}, &out) != 0) {
      return Fail(absl::StrCat("token create site ", nodes[i].name));
    }
    nodes[i].token = JsonString(out, "token");
    if (nodes[i].token.empty()) return Fail("token create printed no token");
  }
  const absl::Duration tokens_time = absl::Now() - t;
  const ProcSample after_tokens = SampleProc(server_pid);
  Say(absl::StrCat(num_nodes, " tokens in ", Secs(tokens_time), " s"));

  // ---- enrollment: at most --parallel at once, as a fleet coming up would ----
  size_t next = 0, in_flight = 0, finished = 0, failed = 0;
  std::string first_error;
  std::function<void()> start_more = [&] {
    while (in_flight < parallel && next < nodes.size()) {
      Node* n = &nodes[next++];
      ++in_flight;
      control::NodeAgentOptions o;
      o.state_dir = absl::StrCat(args["--state_dir"], "/", n->name);
      o.kind = wire::NODE_KIND_SITE;
      o.server = args["--server"];
      o.token = std::move(n->token);
      // The reconnect backoff stays the daemons' default: when 1,000 nodes dial at once the
      // server takes max_pending handshakes and refuses the rest, who come back with it.
      control::NodeAgent::Open(loop, std::move(o), [&, n](absl::StatusOr<std::unique_ptr<control::NodeAgent>> r) {
        --in_flight;
        ++finished;
        if (r.ok()) {
          n->agent = std::move(*r);
        } else {
          ++failed;
          if (first_error.empty()) first_error = std::string(r.status().message());
        }
        start_more();
      });
    }
  };
  t = absl::Now();
  start_more();
  if (!loop.RunUntil([&] { return finished == nodes.size(); }, wait)) {
    return Fail(absl::StrCat("enrollment: ", finished, " of ", num_nodes, " answered within ", wait_s, " s"));
  }
  if (failed != 0) return Fail(absl::StrCat("enrollment: ", failed, " of ", num_nodes, " refused; first: ", first_error));
  const absl::Duration enroll_time = absl::Now() - t;
  const ProcSample after_enroll = SampleProc(server_pid);
  Say(absl::StrCat(num_nodes, " enrolled in ", Secs(enroll_time), " s"));

  // ---- connect: every agent runs; settled when all are up on one version, acked at the server ----
  // target: the version the fan-out waits for; reached counts the nodes that applied it.
  uint64_t target = UINT64_MAX;
  size_t reached = 0;
  t = absl::Now();
  for (Node& n : nodes) {
    n.agent->Run([&n, &target, &reached](const wire::Snapshot& s) {
      if (s.version() >= target && n.version < target) ++reached;
      n.version = s.version();
      n.applied_at = absl::Now();
      return absl::OkStatus();
    });
  }
  uint64_t settled = 0;
  const bool up = loop.RunUntil([&] {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const Node& n : nodes) {
      if (!n.agent->connected()) return false;
      lo = std::min(lo, n.version);
      hi = std::max(hi, n.version);
    }
    settled = hi;
    return lo == hi && lo != 0;
  }, wait);
  if (!up) return Fail(absl::StrCat("connect: not every node was up on one snapshot within ", wait_s, " s"));
  const absl::Duration connect_time = absl::Now() - t;
  // The server's view: every site connected and acked |settled| (the current version).
  std::string list;
  absl::Time give_up = absl::Now() + wait;
  size_t acked = 0;
  while (true) {
    loop.RunUntil([] { return false; }, absl::Milliseconds(20));
    if (Admin(socket, {"site", "list", "--json"}, &list) != 0) return Fail("site list");
    acked = CountAcked(list, settled);
    if (acked == num_nodes) break;
    if (absl::Now() > give_up) return Fail(absl::StrCat("connect: the server shows ", acked, " of ", num_nodes, " acked"));
  }
  const ProcSample connected = SampleProc(server_pid);
  Say(absl::StrCat(num_nodes, " connected on version ", settled, " in ", Secs(connect_time), " s"));

  // ---- fan-out: one admin write; every node's snapshot version moves on ----
  // The command runs on a thread so the agents' loop keeps running while the server answers
  // it (the server pushes every snapshot before it answers).
  target = settled + 1;
  reached = 0;
  std::atomic<bool> admin_done{false};
  std::atomic<int> admin_rc{-1};
  absl::Time admin_returned;
  net::Timer wake(loop);  // so a failed command is seen while no snapshot arrives
  wake.StartRepeating(absl::Milliseconds(50), [] {});
  const double self_before = SelfCpu();
  const ProcSample before = SampleProc(server_pid);
  const absl::Time t0 = absl::Now();
  std::thread admin_thread([&] {
    std::string out;
    admin_rc = Admin(socket,
                     {"resource", "add", "fanout", "--site", nodes[0].name, "--target", "10.0.0.1:22", "--kind", "tcp",
                      "--port", "22", "--allow", "user:*"},
                     &out);
    admin_returned = absl::Now();
    admin_done = true;
  });
  const bool all = loop.RunUntil([&] { return reached == num_nodes || (admin_done && admin_rc != 0); }, wait);
  const ProcSample after = SampleProc(server_pid);
  const double self_after = SelfCpu();
  admin_thread.join();
  wake.Stop();
  if (admin_rc != 0) return Fail("the admin write failed");
  if (!all) return Fail(absl::StrCat("fan-out: ", reached, " of ", num_nodes, " applied within ", wait_s, " s"));
  std::vector<double> latency_ms;
  uint64_t new_version = UINT64_MAX;
  for (const Node& n : nodes) {
    latency_ms.push_back(Ms(n.applied_at - t0));
    new_version = std::min(new_version, n.version);
  }
  // And the server's view of the acks, asked until it shows them all (late by at most one
  // `site list` round trip).
  give_up = absl::Now() + wait;
  while (true) {
    if (Admin(socket, {"site", "list", "--json"}, &list) != 0) return Fail("site list");
    acked = CountAcked(list, new_version);
    if (acked == num_nodes) break;
    if (absl::Now() > give_up) return Fail(absl::StrCat("fan-out: the server shows ", acked, " of ", num_nodes, " acked"));
    loop.RunUntil([] { return false; }, absl::Milliseconds(5));
  }
  const absl::Duration acked_seen = absl::Now() - t0;
  uint64_t sessions = 0, dial_failures = 0;
  for (const Node& n : nodes) {
    sessions += n.agent->counters().sessions;
    dial_failures += n.agent->counters().dial_failures;
  }
  Say(absl::StrCat("version ", new_version, " reached all ", num_nodes, " in ", Percentile(latency_ms, 1), " ms"));

  std::printf(
      "result nodes=%zu tokens_s=%.2f enroll_s=%.2f connect_s=%.2f admin_ms=%.1f fanout_p50_ms=%.1f "
      "fanout_p99_ms=%.1f fanout_ms=%.1f acked_seen_ms=%.1f rss_idle_mib=%.1f rss_enrolled_mib=%.1f "
      "rss_connected_mib=%.1f rss_after_mib=%.1f cpu_tokens_s=%.2f cpu_enroll_s=%.2f cpu_connect_s=%.2f "
      "cpu_fanout_s=%.3f cpu_fanout_ns_s=%.4f tool_cpu_fanout_s=%.4f reconnects=%llu dial_failures=%llu version=%llu\n",
      num_nodes, Secs(tokens_time), Secs(enroll_time), Secs(connect_time), Ms(admin_returned - t0),
      Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.99), Percentile(latency_ms, 1), Ms(acked_seen),
      idle.rss_mib, after_enroll.rss_mib, connected.rss_mib, after.rss_mib, after_tokens.cpu_s - idle.cpu_s,
      after_enroll.cpu_s - after_tokens.cpu_s, connected.cpu_s - after_enroll.cpu_s, after.cpu_s - before.cpu_s,
      after.run_s - before.run_s, self_after - self_before, static_cast<unsigned long long>(sessions - num_nodes),
      static_cast<unsigned long long>(dial_failures), static_cast<unsigned long long>(new_version));
  std::fflush(stdout);
  // The agents close their channels here, before the script stops the server.
  nodes.clear();
  loop.RunUntil([] { return false; }, absl::Milliseconds(100));
  return 0;
}
