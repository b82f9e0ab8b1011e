// AdminServer and RunAdminClient over a real unix socket in a temp dir: a round trip, the file
// mode, stale/live/foreign files at the path, garbage and oversized requests closed without
// harm (and a good request after them), the deadline, peer checks by SO_PEERCRED, and the
// client's message when nothing listens.
#include "server/admin_socket.h"
#include "temp_dir.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/sqlite_store.h"

namespace {

using namespace p2proxy::server;
using p2proxy::net::Loop;

using p2proxy::server::testing::TempDir;

class Host : public AdminHost {
 public:
  explicit Host(Store& store) : store_(store) {}
  Store& store() override { return store_; }
  absl::Time Now() override { return absl::FromUnixSeconds(1'700'000'000); }
  std::string EnrollmentPin() override { return std::string(64, 'b'); }
  std::string ControlAddress() override { return "ctl.example.com:443"; }
  std::string CaCertificatePem() override { return "PEM\n"; }
  absl::Status RotateCertificates(const CertRotation&) override { return absl::OkStatus(); }
  void Changed() override { ++changed; }
  void Disconnect(absl::string_view) override {}
  std::vector<NodeLiveStatus> LiveStatus() override { return {}; }
  int changed = 0;

 private:
  Store& store_;
};

struct Env {
  TempDir dir;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<Host> host;
  Loop loop;
  std::unique_ptr<AdminServer> server;
  std::string path;

  explicit Env(AdminServerOptions options = NoGroup()) {
    auto s = SqliteStore::Open(dir.File("server.db"));
    REQUIRE(s.ok());
    store = std::move(s).value();
    host = std::make_unique<Host>(*store);
    path = dir.File("run/admin.sock");
    auto srv = AdminServer::Listen(loop, path, *host, options);
    INFO(srv.status().message());
    REQUIRE(srv.ok());
    server = std::move(srv).value();
  }
  static AdminServerOptions NoGroup() {
    AdminServerOptions o;
    o.group = "";
    return o;
  }

  struct ClientResult {
    int code = -1;
    std::string out, err;
  };
  // Client runs RunAdminClient on another thread while this one runs the loop.
  ClientResult Client(const std::vector<std::string>& args) {
    ClientResult r;
    std::atomic<bool> done{false};
    std::thread t([&] {
      std::ostringstream out, err;
      r.code = RunAdminClient(path, args, out, err, absl::Seconds(10));
      r.out = out.str();
      r.err = err.str();
      done = true;
    });
    // The loop wakes only for its own events, so wait on the server's side: the answer was
    // written and the connection closed. The client then finishes on its own.
    const AdminServer::Stats before = server->stats();
    const bool finished = loop.RunUntil(
        [&] {
          const auto& now = server->stats();
          return (now.served > before.served || now.refused_peers > before.refused_peers) &&
                 server->open_connections() == 0;
        },
        absl::Seconds(10));
    t.join();
    REQUIRE(finished);
    REQUIRE(done.load());
    return r;
  }

  // RawConnect opens a plain client socket to the server.
  int RawConnect() {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path.c_str(), sizeof(sun.sun_path) - 1);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
    return fd;
  }
  // SendRawAndExpectClose sends |bytes| and waits (bounded) until the server has dropped the
  // connection; the client then reads EOF.
  void SendRawAndExpectClose(const std::string& bytes, uint64_t AdminServer::Stats::*counter) {
    const uint64_t before = server->stats().*counter;
    const int fd = RawConnect();
    REQUIRE(loop.RunUntil([&] { return server->open_connections() == 1; }, absl::Seconds(5)));
    if (!bytes.empty()) {
      REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
    }
    REQUIRE(loop.RunUntil([&] { return server->stats().*counter == before + 1; }, absl::Seconds(5)));
    REQUIRE(loop.RunUntil([&] { return server->open_connections() == 0; }, absl::Seconds(5)));
    char buf[16];
    REQUIRE(recv(fd, buf, sizeof(buf), 0) == 0);  // closed, with no answer
    close(fd);
  }
};

std::string Frame(const std::string& payload) {
  std::string out(4, '\0');
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  return out + payload;
}

TEST_CASE("admin socket: the messages encode and decode strictly", "[admin_socket]") {
  const std::vector<std::string> args = {"resource", "add", "x y", ""};
  const std::string req = EncodeAdminRequest(args);
  auto decoded = DecodeAdminRequest(absl::string_view(req).substr(4));
  REQUIRE(decoded.ok());
  REQUIRE(*decoded == args);
  REQUIRE_FALSE(DecodeAdminRequest("").ok());
  REQUIRE_FALSE(DecodeAdminRequest(absl::string_view(req).substr(4, req.size() - 5)).ok());
  REQUIRE_FALSE(DecodeAdminRequest(req.substr(4) + "x").ok());  // trailing
  std::string v2 = req.substr(4);
  v2[0] = 2;
  REQUIRE(absl::StrContains(DecodeAdminRequest(v2).status().message(), "protocol version 2"));
  // A count far above what the payload holds is refused before allocating.
  REQUIRE_FALSE(DecodeAdminRequest(std::string("\x01\x00\x00\x01\x00", 5)).ok());
  REQUIRE_FALSE(DecodeAdminRequest(std::string("\x01\xff\xff\xff\xff", 5)).ok());
  REQUIRE_FALSE(DecodeAdminRequest(absl::string_view(EncodeAdminRequest({std::string("a\0b", 3)})).substr(4)).ok());
  REQUIRE_FALSE(DecodeAdminRequest(absl::string_view(EncodeAdminRequest(std::vector<std::string>(257, "a"))).substr(4)).ok());

  AdminResult r{2, "out\n", "err\n"};
  const std::string resp = EncodeAdminResponse(r);
  auto back = DecodeAdminResponse(absl::string_view(resp).substr(4));
  REQUIRE(back.ok());
  REQUIRE(back->exit_code == 2);
  REQUIRE(back->out == "out\n");
  REQUIRE(back->err == "err\n");
  REQUIRE_FALSE(DecodeAdminResponse(resp.substr(4, resp.size() - 5)).ok());
}

TEST_CASE("admin socket: a round trip, mode 0600, stale socket replaced, live one refused", "[admin_socket]") {
  Env env;
  struct stat st{};
  REQUIRE(stat(env.path.c_str(), &st) == 0);
  REQUIRE(S_ISSOCK(st.st_mode));
  REQUIRE((st.st_mode & 0777) == 0600);
  REQUIRE_FALSE(env.server->group_id().has_value());

  auto r = env.Client({"user", "add", "alice"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(r.out == "user 'alice' added\n");
  REQUIRE(env.host->changed == 1);
  r = env.Client({"user", "list", "--json"});
  REQUIRE(r.code == 0);
  REQUIRE(absl::StrContains(r.out, "\"name\":\"alice\""));
  r = env.Client({"user", "add", "alice"});
  REQUIRE(r.code == 1);
  REQUIRE(r.err == "user add: user 'alice' exists\n");
  r = env.Client({"nonsense"});
  REQUIRE(r.code == 2);
  REQUIRE(env.server->stats().served == 4);

  // Another server on the same live path is refused.
  Host other(*env.store);
  auto second = AdminServer::Listen(env.loop, env.path, other, Env::NoGroup());
  REQUIRE(second.status().code() == absl::StatusCode::kAlreadyExists);

  // The server goes: the file goes with it. A stale socket file is replaced.
  env.server.reset();
  REQUIRE_FALSE(std::filesystem::exists(env.path));
  {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, env.path.c_str(), sizeof(sun.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) == 0);
    close(fd);  // the file stays, nobody listens
  }
  REQUIRE(std::filesystem::exists(env.path));
  auto again = AdminServer::Listen(env.loop, env.path, *env.host, Env::NoGroup());
  INFO(again.status().message());
  REQUIRE(again.ok());
  env.server = std::move(again).value();
  REQUIRE(env.Client({"user", "list"}).code == 0);

  // A regular file at the path is never deleted.
  const std::string file = env.dir.File("run/not-a-socket");
  std::ofstream(file) << "keep me";
  auto refused = AdminServer::Listen(env.loop, file, *env.host, Env::NoGroup());
  REQUIRE(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(absl::StrContains(refused.status().message(), "is not a socket"));
  REQUIRE(std::filesystem::file_size(file) == 7);
}

TEST_CASE("admin socket: garbage, oversized and slow requests close - the server keeps serving", "[admin_socket]") {
  AdminServerOptions options = Env::NoGroup();
  options.deadline = absl::Milliseconds(200);
  Env env(options);
  using S = AdminServer::Stats;
  env.SendRawAndExpectClose(Frame("\x07garbage"), &S::bad_requests);                  // bad version
  env.SendRawAndExpectClose(std::string("\x7f\xff\xff\xff", 4), &S::bad_requests);    // 2 GiB claimed
  env.SendRawAndExpectClose(Frame(std::string(64 * 1024 + 1, 'x')).substr(0, 4), &S::bad_requests);
  env.SendRawAndExpectClose(Frame(std::string("\x01\x00\x00\x00\x09", 5)), &S::bad_requests);  // truncated
  env.SendRawAndExpectClose(EncodeAdminRequest({"user", "list"}) + "x", &S::bad_requests);    // trailing
  env.SendRawAndExpectClose(std::string("\x00\x00", 2), &S::timed_out);  // never finishes
  env.SendRawAndExpectClose("", &S::timed_out);                          // says nothing
  REQUIRE(env.server->stats().bad_requests == 5);
  REQUIRE(env.server->stats().served == 0);

  // A client that connects and hangs up early is a bad request, not a crash.
  {
    const int fd = env.RawConnect();
    REQUIRE(send(fd, "\x00\x00\x00\x10", 4, MSG_NOSIGNAL) == 4);
    close(fd);
    REQUIRE(env.loop.RunUntil([&] { return env.server->stats().bad_requests == 6; }, absl::Seconds(5)));
  }
  auto r = env.Client({"role", "add", "admins"});
  REQUIRE(r.code == 0);
  REQUIRE(r.out == "role 'admins' added\n");
  REQUIRE(env.server->stats().served == 1);
  REQUIRE(env.server->open_connections() == 0);
}

TEST_CASE("admin socket: the client names the socket when nothing listens, and refuses huge commands", "[admin_socket]") {
  TempDir dir;
  std::ostringstream out, err;
  const std::string path = dir.File("missing.sock");
  REQUIRE(RunAdminClient(path, {"user", "list"}, out, err) == 1);
  REQUIRE(absl::StartsWith(err.str(), "cannot reach the server at " + path +
                                          ": is p2proxy-server running? (connect: "));
  REQUIRE(out.str().empty());
  std::ostringstream out2, err2;
  REQUIRE(RunAdminClient(path, std::vector<std::string>(300, "a"), out2, err2) == 2);
  REQUIRE(absl::StrContains(err2.str(), "more than 256 arguments"));
  std::ostringstream out3, err3;
  REQUIRE(RunAdminClient(path, {"user", "add", std::string(70000, 'a')}, out3, err3) == 2);
  REQUIRE(absl::StrContains(err3.str(), "longer than 65536 bytes"));
}

// RunAs forks a child that drops to |uid|/|gid| and runs the client against |env|; the parent
// runs the loop until the child exits. Returns the child's exit status; *err_out gets its
// stderr.
// |reaches_server|: false when the file mode keeps the child out, so the loop has nothing to
// wait for.
int RunAs(Env& env, uid_t uid, gid_t gid, std::string* err_out, bool reaches_server = true) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(99);
    std::ostringstream out, err;
    const int code = RunAdminClient(env.path, {"user", "list"}, out, err, absl::Seconds(5));
    const std::string e = err.str();
    (void)!write(fds[1], e.data(), e.size());
    _exit(code);
  }
  close(fds[1]);
  // Serve until the child's connection was answered and closed (or the child could not even
  // connect, and exited), then collect the child.
  const AdminServer::Stats before = env.server->stats();
  int status = 0;
  bool reaped = false;
  if (reaches_server) env.loop.RunUntil(
      [&] {
        const auto& now = env.server->stats();
        if ((now.served > before.served || now.refused_peers > before.refused_peers) &&
            env.server->open_connections() == 0) {
          return true;
        }
        reaped = waitpid(pid, &status, WNOHANG) == pid;
        return reaped;
      },
      absl::Seconds(10));
  if (!reaped) REQUIRE(waitpid(pid, &status, 0) == pid);
  char buf[4096];
  const ssize_t n = read(fds[0], buf, sizeof(buf));
  close(fds[0]);
  *err_out = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("admin socket: SO_PEERCRED refuses others and admits the group", "[admin_socket]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root to change uid");
    return;
  }
  {
    // Without a group, a non-root peer that gets past the file mode is still refused.
    Env env;
    REQUIRE(chmod(env.path.c_str(), 0666) == 0);
    REQUIRE(chmod(env.dir.File("run").c_str(), 0755) == 0);
    REQUIRE(chmod(env.dir.File("").c_str(), 0755) == 0);
    std::string err;
    REQUIRE(RunAs(env, 65534, 65534, &err) == 1);
    REQUIRE(absl::StrContains(err, "permission denied: uid 65534 is not root: run it as root (sudo)"));
    REQUIRE(env.server->stats().refused_peers == 1);
    REQUIRE(env.server->stats().served == 0);
  }
  {
    // With a group that exists: the file is 0660 with its gid, and a member gets in.
    group* g = getgrgid(65534);
    if (!g) {
      WARN("skipped: no group 65534");
      return;
    }
    AdminServerOptions options;
    options.group = g->gr_name;
    Env env(options);
    REQUIRE(env.server->group_id() == gid_t{65534});
    struct stat st{};
    REQUIRE(stat(env.path.c_str(), &st) == 0);
    REQUIRE((st.st_mode & 0777) == 0660);
    REQUIRE(st.st_gid == 65534);
    REQUIRE(chmod(env.dir.File("").c_str(), 0755) == 0);
    std::string err;
    REQUIRE(RunAs(env, 65534, 65534, &err) == 0);
    REQUIRE(env.server->stats().served == 1);
    // Not in the group: the file mode already keeps it out (connect: permission denied).
    REQUIRE(RunAs(env, 65533, 65533, &err, /*reaches_server=*/false) == 1);
    REQUIRE(env.server->stats().served == 1);
    REQUIRE(absl::StrContains(err, "Permission denied"));
  }
}

}  // namespace
