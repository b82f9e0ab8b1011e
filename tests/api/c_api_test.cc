// The C API's refusals: every bad input is a status code and a message that names it, never a
// crash; a handle is safe to stop twice and to free. (Dialing through a real server and site
// is the e2e test `e2e:control:embed`: lwIP allows one stack per process.)
#include "p2proxy/p2proxy.h"

#include <catch2/catch.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "p2proxy/client.h"
#include "p2proxy/version.h"

namespace {

std::string Start(const char* json, int* rc) {
  char err[512] = "unset";
  p2proxy_client* c = nullptr;
  *rc = p2proxy_client_start(json, &c, err, sizeof err);
  CHECK(c == nullptr);
  return err;
}

}  // namespace

TEST_CASE("c api: the version", "[api]") { CHECK(std::string(p2proxy_version()) == P2PROXY_VERSION_STRING); }

TEST_CASE("c api: bad options are refused with a message naming them", "[api]") {
  int rc = 0;
  std::string err = Start("{", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "options"));
  err = Start("{\"state_dir\": \"/tmp/x\", \"colour\": 1}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "colour"));
  err = Start("{}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "state_dir"));
  err = Start("{\"state_dir\": \"/tmp/x\", \"log_level\": \"loud\"}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "log_level"));
  err = Start("{\"state_dir\": \"/tmp/x\", \"socks5\": \"here\"}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "socks5"));
  err = Start("{\"state_dir\": \"/tmp/x\", \"forwards\": [\"1:2\"]}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "forward"));
  err = Start("{\"state_dir\": \"/tmp/x\", \"start_timeout_ms\": 999999999}", &rc);
  CHECK(rc == 3);
  CHECK(absl::StrContains(err, "start_timeout_ms"));
  // Null arguments.
  char small[8];
  CHECK(p2proxy_client_start(nullptr, nullptr, small, sizeof small) == 3);
  CHECK(std::string(small).size() == 7);  // the message is cut to the buffer, NUL-terminated
  CHECK(p2proxy_client_start("{}", nullptr, nullptr, 0) == 3);
}

TEST_CASE("c api: a state dir that never enrolled, without a server, says what to do", "[api]") {
  const std::string dir = "/tmp/p2proxy-api-test-" + std::to_string(::getpid());
  int rc = 0;
  std::string err = Start(("{\"state_dir\": \"" + dir + "\"}").c_str(), &rc);
  CHECK(rc != 0);
  INFO(err);
  CHECK(absl::StrContains(err, "enroll"));
  std::string cleanup = "rm -rf " + dir;
  CHECK(std::system(cleanup.c_str()) == 0);
}

TEST_CASE("c api: calls on a null handle are refused", "[api]") {
  char err[128];
  int fd = 7;
  CHECK(p2proxy_client_dial(nullptr, "x", 1, 10, &fd, err, sizeof err) == 3);
  char out[32];
  CHECK(p2proxy_client_resolve(nullptr, "x", out, sizeof out, err, sizeof err) == 3);
  char* json = nullptr;
  CHECK(p2proxy_client_status_json(nullptr, &json, err, sizeof err) == 3);
  p2proxy_client_stop(nullptr);
  p2proxy_client_free(nullptr);
  p2proxy_free(nullptr);
}

TEST_CASE("c api: a site's bad options and null handles are refused", "[api]") {
  char err[256];
  p2proxy_site* site = nullptr;
  CHECK(p2proxy_site_start("{}", &site, err, sizeof err) == 3);
  CHECK(absl::StrContains(err, "state_dir"));
  CHECK(site == nullptr);
  CHECK(p2proxy_site_start("{\"state_dir\": \"/tmp/x\", \"listen_port\": 70000}", &site, err, sizeof err) == 3);
  CHECK(absl::StrContains(err, "listen_port"));
  CHECK(p2proxy_site_start("{\"state_dir\": \"/tmp/x\", \"target\": \"in-process\"}", &site, err, sizeof err) == 3);
  CHECK(absl::StrContains(err, "target"));
  CHECK(p2proxy_site_start(nullptr, &site, err, sizeof err) == 3);
  p2proxy_listener* listener = nullptr;
  CHECK(p2proxy_site_listen(nullptr, 80, &listener, err, sizeof err) == 3);
  char* json = nullptr;
  CHECK(p2proxy_site_status_json(nullptr, &json, err, sizeof err) == 3);
  int fd = 7;
  CHECK(p2proxy_listener_accept(nullptr, 0, &fd, nullptr, err, sizeof err) == 3);
  CHECK(p2proxy_listener_fd(nullptr) == -1);
  p2proxy_listener_close(nullptr);
  p2proxy_listener_free(nullptr);
  p2proxy_site_stop(nullptr);
  p2proxy_site_free(nullptr);
}

TEST_CASE("c api: a site state dir that never enrolled, without a server, says what to do", "[api]") {
  const std::string dir = "/tmp/p2proxy-api-site-test-" + std::to_string(::getpid());
  char err[512];
  p2proxy_site* site = nullptr;
  const std::string opts = "{\"state_dir\": \"" + dir + "\"}";
  const int rc = p2proxy_site_start(opts.c_str(), &site, err, sizeof err);
  CHECK(rc != 0);
  CHECK(site == nullptr);
  INFO(err);
  CHECK(absl::StrContains(err, "enroll"));
  std::string cleanup = "rm -rf " + dir;
  CHECK(std::system(cleanup.c_str()) == 0);
}

TEST_CASE("Result: a failure made from an OK status is kUnknown, and reading a failed value aborts", "[api]") {
  p2proxy::Result<int> odd{p2proxy::Status()};
  CHECK_FALSE(odd.ok());
  CHECK(odd.status().code() == p2proxy::Code::kUnknown);
  const p2proxy::Result<std::string> good{std::string("x")};
  CHECK(*good == "x");
  CHECK(good->size() == 1);
  // The value of a failed Result: the process aborts, naming the status (in a child).
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The test framework's own abort handler must not report from the child; keep its output clean.
    ::signal(SIGABRT, SIG_DFL);
    ::close(1);
    ::close(2);
    p2proxy::Result<int> failed{p2proxy::Status(p2proxy::Code::kNotFound, "nope")};
    volatile int v = *failed;
    (void)v;
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}
