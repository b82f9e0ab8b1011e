// temp_dir.h: a fresh directory under $TMPDIR for one test, removed with everything in it.
#ifndef P2PROXY_TESTS_SERVER_TEMP_DIR_H_
#define P2PROXY_TESTS_SERVER_TEMP_DIR_H_

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

namespace p2proxy::server::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "p2proxy_server_test.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace p2proxy::server::testing

#endif  // P2PROXY_TESTS_SERVER_TEMP_DIR_H_
