// status_report_test.cc: the status file is written atomically, never through a link at its
// temporary name, and read back as written.
#include "client/status_report.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace p2proxy {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_CASE("WriteStatusFile: round trip, 0600, and a link at the .tmp name is not followed", "[client]") {
  char dir_template[] = "/tmp/p2proxy-status-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/status.json";
  const std::string victim = dir + "/victim";
  { std::ofstream(victim) << "untouched"; }
  REQUIRE(symlink(victim.c_str(), (path + ".tmp").c_str()) == 0);

  client::status::ClientStatus s;
  s.set_pid(4242);
  s.set_mode("userspace");
  REQUIRE(client::WriteStatusFile(path, s).ok());
  CHECK(Slurp(victim) == "untouched");
  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(access((path + ".tmp").c_str(), F_OK) != 0);  // renamed away
  auto back = client::ReadStatusFile(path);
  REQUIRE(back.ok());
  CHECK(back->pid() == 4242);
  CHECK(back->mode() == "userspace");

  // A directory the writer may not write into: PermissionDenied when not root (root may).
  if (geteuid() != 0) {
    REQUIRE(chmod(dir.c_str(), 0500) == 0);
    CHECK(client::WriteStatusFile(path, s).code() == absl::StatusCode::kPermissionDenied);
    REQUIRE(chmod(dir.c_str(), 0700) == 0);
  }
  const std::string cleanup = "rm -rf " + dir;
  CHECK(std::system(cleanup.c_str()) == 0);
}

}  // namespace
}  // namespace p2proxy
